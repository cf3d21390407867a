/*
 * Fuzz target: key parsing and verification. The input is an untrusted
 * credential "ID/SECRET"; it goes through keys_parse() and keystore_verify()
 * against a small SQLite key store in a temporary directory, made once at
 * start-up, that holds a few keys with known IDs and secrets (one of them
 * expired), so that the fuzzer can reach every outcome: malformed, unknown ID,
 * wrong secret, expired and accepted.
 */

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Also in the seed corpus (tests/fuzz/corpus/keys/). */
static const struct {
	const char *host, *id, *secret;
} known[] = {
    {"localhost", "AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"},
    {"localhost", "short", "sixteen-chars-ok"},
    {"other.localhost", "0123456789abcdef", "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-"},
};

#define NOW ((int64_t)1700000000) /* fixed: verification must not depend on the clock */

static struct keystore *store;
static char dir[] = "/tmp/fuzz_keys.XXXXXX";
static char path[PATH_MAX];

static void cleanup(void)
{
	keystore_close(store);
	unlink(path);
	rmdir(dir);
}

static void fail(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_keys: %s: %s\n", what, why ? why : "?");
	exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *err = NULL;
	(void)argc;
	(void)argv;

	if (keys_init() < 0)
		fail("keys_init", "libsodium");
	if (!mkdtemp(dir))
		fail("mkdtemp", dir);
	snprintf(path, sizeof(path), "%s/keys.sqlite", dir);
	atexit(cleanup);
	if (!(store = keystore_open(path, &err)))
		fail("keystore_open", err);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (keystore_import(store, known[i].host, known[i].id, known[i].secret, "fuzz",
		                    NOW - 60, &err) != KEYS_OK)
			fail("keystore_import", err);
	}
	/* A key with a limit, and one that has expired by NOW. */
	struct api_key_new key;
	struct api_key_limits limited = {.max_invites = 5, .period_s = 3600};
	struct api_key_limits expired = {.expires = NOW - 1};
	if (keystore_create(store, "localhost", "limited", &limited, &key, &err) != KEYS_OK ||
	    keystore_create(store, "localhost", "expired", &expired, &key, &err) != KEYS_OK)
		fail("keystore_create", err);
	keys_wipe(&key);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exactly sized copy, so that reading past the credential is caught. */
	char *credential = malloc(size ? size : 1);
	if (!credential)
		return 0;
	memcpy(credential, data, size);

	struct api_key_parts parts;
	bool parsed = keys_parse(credential, size, &parts);

	struct api_key_match match;
	const char *err = NULL;
	enum keys_status status = keystore_verify(store, credential, size, NOW, &match, &err);
	if (status == KEYS_ERROR)
		fail("keystore_verify", err);
	if (status == KEYS_OK) {
		/* Only a well-formed key of the store gets in, and as itself. */
		if (!parsed || parts.id_len != strlen(match.id) ||
		    memcmp(parts.id, match.id, parts.id_len) != 0)
			abort();
		if (keys_expired(&match.limits, NOW))
			abort();
	}
	if (status != KEYS_OK && status != KEYS_DENIED)
		abort();
	free(credential);
	return 0;
}
