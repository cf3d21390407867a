#include "keys.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_BYTES     12
#define SECRET_BYTES 32

/* The generated text lengths in keys.h must match what base64 makes of the
 * random bytes, or keys_generate() would overflow or truncate. */
_Static_assert(sodium_base64_ENCODED_LEN(ID_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
                   KEYS_ID_LEN + 1,
               "KEYS_ID_LEN does not match ID_BYTES");
_Static_assert(sodium_base64_ENCODED_LEN(SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
                   KEYS_SECRET_LEN + 1,
               "KEYS_SECRET_LEN does not match SECRET_BYTES");

int keys_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

/* [A-Za-z0-9_-], spelled out: isalnum() depends on the locale. */
static bool key_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static bool all_key_chars(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (!key_char((unsigned char)s[i]))
			return false;
	}
	return true;
}

bool keys_parse(const char *text, size_t len, struct api_key_parts *out)
{
	if (text == NULL || len > KEYS_TEXT_MAX)
		return false;
	const char *slash = memchr(text, '/', len);
	if (slash == NULL)
		return false;
	size_t id_len = (size_t)(slash - text);
	size_t secret_len = len - id_len - 1;
	if (id_len < 1 || id_len > KEYS_ID_MAX || secret_len < 1 || secret_len > KEYS_SECRET_MAX)
		return false;
	/* A second '/' is not a key character, so this also rejects it. */
	if (!all_key_chars(text, id_len) || !all_key_chars(slash + 1, secret_len))
		return false;
	out->id = text;
	out->id_len = id_len;
	out->secret = slash + 1;
	out->secret_len = secret_len;
	return true;
}

void keys_hash_secret(const char *secret, size_t len, unsigned char hash[KEYS_HASH_BYTES])
{
	/* Only fails for an output or key length out of range, and both are
	 * constants here: a failure means a broken libsodium. */
	if (crypto_generichash(hash, KEYS_HASH_BYTES, (const unsigned char *)secret, len, NULL,
	                       0) != 0)
		abort();
}

static void random_text(char *text, size_t text_size, size_t random_len)
{
	unsigned char bytes[SECRET_BYTES];

	randombytes_buf(bytes, random_len);
	/* Only fails when text_size is too small, which the static asserts rule out. */
	if (sodium_bin2base64(text, text_size, bytes, random_len,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) == NULL)
		abort();
	sodium_memzero(bytes, sizeof bytes);
}

void keys_generate(struct api_key_new *key)
{
	random_text(key->id, sizeof key->id, ID_BYTES);
	random_text(key->secret, sizeof key->secret, SECRET_BYTES);
	memcpy(key->text, key->id, KEYS_ID_LEN);
	key->text[KEYS_ID_LEN] = '/';
	memcpy(key->text + KEYS_ID_LEN + 1, key->secret, KEYS_SECRET_LEN + 1);
}

void keys_wipe(struct api_key_new *key)
{
	sodium_memzero(key, sizeof *key);
}

bool keys_expired(const struct api_key_limits *limits, int64_t now)
{
	return limits->expires != 0 && now > limits->expires;
}

/* In the order they are listed. */
static const struct allow_name {
	const char *name;
	unsigned bit;
} allow_names[] = {
    {"account", KEYS_ALLOW_ACCOUNT},
    {"reset", KEYS_ALLOW_RESET},
};

#define N_ALLOW_NAMES (sizeof allow_names / sizeof allow_names[0])

static unsigned allow_bit(const char *name, size_t len)
{
	for (size_t i = 0; i < N_ALLOW_NAMES; i++) {
		if (strlen(allow_names[i].name) == len &&
		    strncmp(allow_names[i].name, name, len) == 0)
			return allow_names[i].bit;
	}
	return 0;
}

int keys_allow_parse(const char *text, unsigned *allow, const char **bad)
{
	unsigned bits = 0;
	for (const char *p = text;;) {
		size_t len = strcspn(p, ",");
		unsigned bit = allow_bit(p, len);
		if (bit == 0) {
			*bad = p;
			return -1;
		}
		bits |= bit;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	*allow = bits;
	return 0;
}

char *keys_allow_format(unsigned allow, char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < N_ALLOW_NAMES; i++) {
		if ((allow & allow_names[i].bit) == 0)
			continue;
		int written =
		    snprintf(buf + n, size - n, "%s%s", n > 0 ? "," : "", allow_names[i].name);
		if (written < 0 || (size_t)written >= size - n)
			break;
		n += (size_t)written;
	}
	if (n == 0)
		snprintf(buf, size, "none");
	return buf;
}

const char *keys_allow_name(unsigned bit)
{
	for (size_t i = 0; i < N_ALLOW_NAMES; i++) {
		if (allow_names[i].bit == bit)
			return allow_names[i].name;
	}
	return NULL;
}
