#ifndef INVITES_KEYS_H
#define INVITES_KEYS_H

/*
 * API keys: generation, parsing, hashing and the SQLite key store.
 *
 * A key is the text "ID/SECRET". Both parts use only [A-Za-z0-9_-], so a key
 * needs no escaping in a URL. New keys have a 16-character ID (12 random bytes)
 * and a 43-character SECRET (32 random bytes, 256 bits). Only a BLAKE2b hash of
 * the SECRET is stored. This module never logs: every failure comes back as a
 * status plus a one-line reason for the caller to report.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYS_ID_LEN     16 /* characters in a newly generated ID */
#define KEYS_SECRET_LEN 43 /* characters in a newly generated SECRET */
#define KEYS_ID_MAX     64 /* longest ID accepted when parsing (imported keys vary) */
#define KEYS_SECRET_MAX 128
#define KEYS_TEXT_MAX   (KEYS_ID_MAX + 1 + KEYS_SECRET_MAX) /* "ID/SECRET" without NUL */
#define KEYS_HASH_BYTES 32
#define KEYS_HOST_MAX   1023 /* longest host name stored with a key */
#define KEYS_NAME_MAX   200  /* longest key name, in bytes */

enum keys_status {
	KEYS_OK = 0,
	KEYS_DENIED,    /* verify: malformed key, unknown ID or wrong secret (indistinguishable) */
	KEYS_NOT_FOUND, /* delete: no such ID on that host */
	KEYS_INVALID,   /* an argument is unacceptable (empty or overlong name, bad host) */
	KEYS_EXISTS,    /* import: a key with that ID is already stored */
	KEYS_ERROR,     /* the store failed (I/O, corruption, read-only, ...) */
};

/* Initialise libsodium. Call once before anything else here; -1 is fatal. */
int keys_init(void);

/* "ID/SECRET" split into borrowed views of the parsed text (not NUL-terminated). */
struct api_key_parts {
	const char *id;
	size_t id_len;
	const char *secret;
	size_t secret_len;
};

/* Split untrusted bytes into ID and SECRET. Accepts exactly one '/', an ID of
 * 1..KEYS_ID_MAX and a SECRET of 1..KEYS_SECRET_MAX characters from
 * [A-Za-z0-9_-]. Returns false (and leaves *out unspecified) otherwise. */
bool keys_parse(const char *text, size_t len, struct api_key_parts *out);

/* BLAKE2b-256 of a secret. */
void keys_hash_secret(const char *secret, size_t len, unsigned char hash[KEYS_HASH_BYTES]);

/* A newly generated key, NUL-terminated. Wipe with keys_wipe() after use. */
struct api_key_new {
	char id[KEYS_ID_LEN + 1];
	char secret[KEYS_SECRET_LEN + 1];
	char text[KEYS_ID_LEN + 1 + KEYS_SECRET_LEN + 1]; /* "ID/SECRET" */
};

/* Fill *key with fresh random ID and SECRET. Cannot fail after keys_init(). */
void keys_generate(struct api_key_new *key);
void keys_wipe(struct api_key_new *key);

/* What a key may ask for (bits of api_key_limits.allow). A password-reset
 * invite can take over an account, so only keys made with KEYS_ALLOW_RESET
 * may ask for one. */
#define KEYS_ALLOW_ACCOUNT 1u /* account invites (the default) */
#define KEYS_ALLOW_RESET   2u /* password-reset invites */
#define KEYS_ALLOW_ALL     (KEYS_ALLOW_ACCOUNT | KEYS_ALLOW_RESET)

/* Permission names, for the CLI and forms: "account", "reset", joined by
 * commas ("account,reset"). Parse a comma-separated list into *allow (at
 * least one name, each known; repeats are harmless): 0, or -1 with *bad
 * pointing at the first unknown name in text. */
int keys_allow_parse(const char *text, unsigned *allow, const char **bad);

/* The names of the bits in allow, comma-separated, into buf (32 bytes are
 * enough); "none" for 0. Returns buf. */
char *keys_allow_format(unsigned allow, char *buf, size_t size);

/* The name of one KEYS_ALLOW_* bit, or NULL. Static. */
const char *keys_allow_name(unsigned bit);

/* Optional restrictions of a key. All zero: none beyond the default, which
 * is account invites only. */
struct api_key_limits {
	int64_t expires;      /* Unix time after which the key is refused; 0: never */
	unsigned max_invites; /* invites per period; 0: unlimited */
	unsigned period_s;    /* length of that period in seconds (> 0 when max_invites is) */
	unsigned allow;       /* KEYS_ALLOW_* bits; 0: KEYS_ALLOW_ACCOUNT. Read back from the
	                         store it is never 0 */
};

/* Metadata of a stored key, borrowed for the duration of a callback. */
struct api_key_info {
	const char *id;
	const char *host;
	const char *name;
	int64_t created;   /* Unix time */
	int64_t last_used; /* Unix time of the last invite made with it; 0: never */
	uint64_t invites;  /* invites made with it, as last recorded */
	struct api_key_limits limits;
};

/* Result of a successful verification, NUL-terminated copies. The rate window
 * is what keystore_record_usage() last stored for the key. */
struct api_key_match {
	char id[KEYS_ID_MAX + 1];
	char host[KEYS_HOST_MAX + 1];
	struct api_key_limits limits;
	int64_t window_start;  /* Unix time the current rate window began; 0: none yet */
	unsigned window_count; /* invites counted in that window */
};

/* Usage of one key since the last flush, for keystore_record_usage(). */
struct api_key_usage {
	const char *id;
	uint64_t invites;     /* to add to the key's count */
	int64_t last_used;    /* Unix time; the stored value only moves forward */
	int64_t window_start; /* current rate window, stored as given */
	unsigned window_count;
};

struct keystore;

/* Open (creating if needed, mode 0600) the SQLite key store at path.
 * Returns NULL on failure and sets *errstr to a static or thread-local reason
 * valid until the next keystore call. Free with keystore_close(). */
struct keystore *keystore_open(const char *path, const char **errstr);
void keystore_close(struct keystore *store); /* accepts NULL */

/* How long a write waits for another process's lock before failing with
 * KEYS_ERROR (default 5 s, right for the CLI). An event loop sets it short:
 * the wait blocks everything else. 0 or -1. */
int keystore_set_busy_timeout(struct keystore *store, unsigned timeout_ms);

/* True when a key with these limits is refused at now (Unix time). */
bool keys_expired(const struct api_key_limits *limits, int64_t now);

/* Generate a key for host with a display name and optional limits (NULL: none)
 * and store its hash in one committed transaction. Only on KEYS_OK is *key
 * filled (caller wipes it). KEYS_INVALID for a bad host, name or limits
 * (max_invites and period_s must both be zero or both non-zero; allow has
 * only KEYS_ALLOW_* bits).
 * *errstr, on failure, stays valid until the next call on store. */
enum keys_status keystore_create(struct keystore *store, const char *host, const char *name,
                                 const struct api_key_limits *limits, struct api_key_new *key,
                                 const char **errstr);

/* Store a key made elsewhere (e.g. by Prosody's mod_invites_api), keeping its
 * ID; only the hash of secret is kept. The ID must be 1..KEYS_ID_MAX and the
 * secret 16..KEYS_SECRET_MAX characters of [A-Za-z0-9_-] (KEYS_INVALID with a
 * reason otherwise). created is Unix time, 0 for now. An imported key may
 * make account invites only (mod_invites_api keys could do no more). KEYS_EXISTS when host
 * has a key with that ID already; KEYS_INVALID when another host's key has it. */
enum keys_status keystore_import(struct keystore *store, const char *host, const char *id,
                                 const char *secret, const char *name, int64_t created,
                                 const char **errstr);

/* Call cb for every key of host, oldest first. A non-zero return from cb stops
 * the walk (the function still returns KEYS_OK). */
typedef int (*keystore_list_cb)(void *userdata, const struct api_key_info *key);
enum keys_status keystore_list(struct keystore *store, const char *host, keystore_list_cb cb,
                               void *userdata, const char **errstr);

/* Remove key id of host. KEYS_NOT_FOUND if there is none. */
enum keys_status keystore_delete(struct keystore *store, const char *host, const char *id,
                                 const char **errstr);

/* Check an untrusted credential "ID/SECRET" at now (Unix time). Malformed
 * text, an unknown ID, a wrong secret and an expired key all take the same path
 * (a hash is always computed and compared in constant time) and return
 * KEYS_DENIED. KEYS_OK fills *match. KEYS_ERROR means the store could not be
 * read. Sees changes other processes committed. */
enum keys_status keystore_verify(struct keystore *store, const char *credential, size_t len,
                                 int64_t now, struct api_key_match *match, const char **errstr);

/* Answer keystore_verify() from an in-memory copy of the keys, kept current
 * by watching the store's directory (inotify): for a long-lived process that
 * verifies on every request. It sees every change committed before the
 * request came, as reading the file does. The watch raises SIGIO at the
 * calling thread (a handler that only counts, installed unless SIGIO has one
 * already), so that a verification with no change since the last needs no
 * system call. Verify from this thread, keep SIGIO unblocked in it and leave
 * the handler in place: otherwise every verification drains the watch with a
 * read(), from the start when that is so at this call; when it changes later,
 * from the next path check (at most a second; until then a change may go
 * unseen). A process forked after this call shares the watch: it must not
 * verify with this store. 0; 1 when verifications will drain the watch with
 * a read() each (errno tells why); -1 when the directory cannot be watched
 * (verification then reads the file, as without this call). */
int keystore_cache_verification(struct keystore *store);

/* Write the usage of n keys in one transaction: adds invites, moves last_used
 * forward only, stores the rate window as given. Keys deleted meanwhile are
 * skipped. On KEYS_ERROR nothing was written. */
enum keys_status keystore_record_usage(struct keystore *store, const struct api_key_usage *usage,
                                       size_t n, const char **errstr);

#endif
