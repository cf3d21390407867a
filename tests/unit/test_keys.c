#include "keys/keys.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024 * 1024)

static bool key_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static bool all_key_chars(const char *s)
{
	for (; *s != '\0'; s++) {
		if (!key_char((unsigned char)*s))
			return false;
	}
	return true;
}

/* Assert with the case's name in CUnit's failure report. */
#define CHECK_NAMED(cond, name)                                                                    \
	CU_assertImplementation((cond), __LINE__, (name), __FILE__, "", CU_FALSE)

static void test_generate_shape(void)
{
	CU_ASSERT_FATAL(keys_init() == 0);
	struct api_key_new key;
	memset(&key, 0x55, sizeof key);
	keys_generate(&key);
	CU_ASSERT_EQUAL(strlen(key.id), KEYS_ID_LEN);
	CU_ASSERT_EQUAL(strlen(key.secret), KEYS_SECRET_LEN);
	CU_ASSERT_EQUAL(strlen(key.text), KEYS_ID_LEN + 1 + KEYS_SECRET_LEN);
	CU_ASSERT(all_key_chars(key.id));
	CU_ASSERT(all_key_chars(key.secret));

	char expected[sizeof key.text];
	snprintf(expected, sizeof expected, "%s/%s", key.id, key.secret);
	CU_ASSERT_STRING_EQUAL(key.text, expected);

	struct api_key_parts parts;
	CU_ASSERT_FATAL(keys_parse(key.text, strlen(key.text), &parts));
	CU_ASSERT_EQUAL(parts.id_len, KEYS_ID_LEN);
	CU_ASSERT_EQUAL(memcmp(parts.id, key.id, KEYS_ID_LEN), 0);
	CU_ASSERT_EQUAL(parts.secret_len, KEYS_SECRET_LEN);
	CU_ASSERT_EQUAL(memcmp(parts.secret, key.secret, KEYS_SECRET_LEN), 0);
	keys_wipe(&key);
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_generate_distinct(void)
{
	enum { COUNT = 1000 };
	CU_ASSERT_FATAL(keys_init() == 0);
	char(*ids)[KEYS_ID_LEN + 1] = calloc(COUNT, sizeof *ids);
	char(*secrets)[KEYS_SECRET_LEN + 1] = calloc(COUNT, sizeof *secrets);
	CU_ASSERT_FATAL(ids != NULL && secrets != NULL);
	for (int i = 0; i < COUNT; i++) {
		struct api_key_new key;
		keys_generate(&key);
		memcpy(ids[i], key.id, sizeof ids[i]);
		memcpy(secrets[i], key.secret, sizeof secrets[i]);
		keys_wipe(&key);
	}
	qsort(ids, COUNT, sizeof *ids, compare_ids);
	qsort(secrets, COUNT, sizeof *secrets, compare_ids);
	int duplicate_ids = 0, duplicate_secrets = 0;
	for (int i = 1; i < COUNT; i++) {
		duplicate_ids += strcmp(ids[i - 1], ids[i]) == 0;
		duplicate_secrets += strcmp(secrets[i - 1], secrets[i]) == 0;
	}
	CU_ASSERT_EQUAL(duplicate_ids, 0);
	CU_ASSERT_EQUAL(duplicate_secrets, 0);
	free(ids);
	free(secrets);
}

static void test_wipe(void)
{
	CU_ASSERT_FATAL(keys_init() == 0);
	struct api_key_new key, zero;
	keys_generate(&key);
	memset(&zero, 0, sizeof zero);
	CU_ASSERT_NOT_EQUAL(memcmp(&key, &zero, sizeof key), 0);
	keys_wipe(&key);
	CU_ASSERT_EQUAL(memcmp(&key, &zero, sizeof key), 0);
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	CU_ASSERT_FATAL(s != NULL);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Parse id "/" secret and check the views point at the right bytes. */
static void expect_accepted(const char *name, const char *id, const char *secret)
{
	size_t id_len = strlen(id), secret_len = strlen(secret);
	char *text = malloc(id_len + 1 + secret_len);
	CU_ASSERT_FATAL(text != NULL);
	memcpy(text, id, id_len);
	text[id_len] = '/';
	memcpy(text + id_len + 1, secret, secret_len);

	struct api_key_parts parts;
	bool ok = keys_parse(text, id_len + 1 + secret_len, &parts);
	CHECK_NAMED(ok, name);
	if (ok) {
		CHECK_NAMED(parts.id == text && parts.id_len == id_len, name);
		CHECK_NAMED(parts.secret == text + id_len + 1 && parts.secret_len == secret_len,
		            name);
	}
	free(text);
}

static void test_parse_accepts(void)
{
	char *id64 = repeat('i', KEYS_ID_MAX), *secret128 = repeat('S', KEYS_SECRET_MAX);
	expect_accepted("one-character parts", "a", "b");
	expect_accepted("64-character ID", id64, "b");
	expect_accepted("128-character secret", "a", secret128);
	expect_accepted("longest key", id64, secret128);
	expect_accepted("every character class", "AZaz09_-", "-_90zaZA");
	free(id64);
	free(secret128);

	/* Only len bytes count: the rest of the buffer is not looked at. */
	struct api_key_parts parts;
	CU_ASSERT(keys_parse("a/bc def", 4, &parts));
	CU_ASSERT_EQUAL(parts.secret_len, 2);
}

struct bad_key {
	const char *name;
	const char *text;
	size_t len;
};

#define BAD(name, literal)                                                                         \
	{                                                                                          \
		name, literal, sizeof literal - 1                                                  \
	}

static const struct bad_key bad_keys[] = {
    BAD("empty", ""),
    BAD("no slash", "abcdef"),
    BAD("only a slash", "/"),
    BAD("leading slash", "/abc"),
    BAD("trailing slash", "abc/"),
    BAD("two slashes", "a/b/c"),
    BAD("double slash", "a//b"),
    BAD("space in ID", "a b/c"),
    BAD("leading space", " a/b"),
    BAD("trailing space", "a/b "),
    BAD("plus", "a+b/c"),
    BAD("percent escape", "a/b%2F"),
    BAD("padding", "a/b=="),
    BAD("dot", "a.b/c"),
    BAD("non-ASCII byte", "a/b\xc3\xa9"),
    BAD("high byte in ID", "\xff/b"),
    BAD("embedded NUL in ID", "a\0b/c"),
    BAD("embedded NUL in secret", "a/b\0c"),
    BAD("trailing NUL", "a/b\0"),
    BAD("newline", "a/b\n"),
    BAD("newline in ID", "a\n/b"),
    BAD("carriage return", "a/b\r"),
    BAD("tab", "a\t/b"),
};

static void test_parse_rejects(void)
{
	struct api_key_parts parts;
	for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
		const struct bad_key *bad = &bad_keys[i];
		CHECK_NAMED(!keys_parse(bad->text, bad->len, &parts), bad->name);
	}
	CU_ASSERT(!keys_parse(NULL, 0, &parts));
	CU_ASSERT(!keys_parse(NULL, 3, &parts));
}

static void test_parse_rejects_overlong(void)
{
	struct api_key_parts parts;
	char *buf = repeat('A', MIB);

	buf[KEYS_ID_MAX + 1] = '/'; /* 65-character ID */
	CU_ASSERT(!keys_parse(buf, KEYS_ID_MAX + 1 + 1 + 1, &parts));
	buf[KEYS_ID_MAX + 1] = 'A';

	buf[1] = '/'; /* 129-character secret */
	CU_ASSERT(!keys_parse(buf, 1 + 1 + KEYS_SECRET_MAX + 1, &parts));
	/* Same shape, one shorter: must pass, or the checks above prove nothing. */
	CU_ASSERT(keys_parse(buf, 1 + 1 + KEYS_SECRET_MAX, &parts));

	CU_ASSERT(!keys_parse(buf, MIB, &parts)); /* 1 MiB, one slash */
	buf[1] = 'A';
	CU_ASSERT(!keys_parse(buf, MIB, &parts)); /* 1 MiB, no slash */
	free(buf);
}

/* Every byte value, in the ID and in the secret: only [A-Za-z0-9_-] pass. */
static void test_parse_every_byte(void)
{
	struct api_key_parts parts;
	int wrong = 0;
	for (int c = 0; c < 256; c++) {
		char in_id[] = {'a', (char)c, '/', 'b'};
		char in_secret[] = {'a', '/', 'b', (char)c};
		bool expected = key_char((unsigned char)c);
		wrong += keys_parse(in_id, sizeof in_id, &parts) != expected;
		wrong += keys_parse(in_secret, sizeof in_secret, &parts) != expected;
	}
	CU_ASSERT_EQUAL(wrong, 0);
}

static void hex(const unsigned char *bytes, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", bytes[i]);
}

/* Expected values from Python: hashlib.blake2b(m, digest_size=32).hexdigest() */
static void test_hash_vectors(void)
{
	CU_ASSERT_FATAL(keys_init() == 0);
	static const struct {
		const char *message, *digest;
	} vectors[] = {
	    {"", "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"},
	    {"abc", "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"},
	    {"The quick brown fox jumps over the lazy dog",
	     "01718cec35cd3d796dd00020e0bfecb473ad23457d063b75eff29c0ffa2e58a9"},
	};
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		unsigned char hash[KEYS_HASH_BYTES];
		char text[2 * KEYS_HASH_BYTES + 1];
		keys_hash_secret(vectors[i].message, strlen(vectors[i].message), hash);
		hex(hash, sizeof hash, text);
		CU_ASSERT_STRING_EQUAL(text, vectors[i].digest);
	}

	/* Only len bytes are hashed. */
	unsigned char hash[KEYS_HASH_BYTES];
	char text[2 * KEYS_HASH_BYTES + 1];
	keys_hash_secret("abcdef", 3, hash);
	hex(hash, sizeof hash, text);
	CU_ASSERT_STRING_EQUAL(text, vectors[1].digest);
}

/* A key expires after its second: valid at expires, refused from expires + 1. */
static void test_expired(void)
{
	const struct api_key_limits never = {0}, limited = {.expires = 1000};
	CU_ASSERT_FALSE(keys_expired(&never, 0));
	CU_ASSERT_FALSE(keys_expired(&never, INT64_MAX));
	CU_ASSERT_FALSE(keys_expired(&never, INT64_MIN));
	CU_ASSERT_FALSE(keys_expired(&limited, 0));
	CU_ASSERT_FALSE(keys_expired(&limited, 999));
	CU_ASSERT_FALSE(keys_expired(&limited, 1000));
	CU_ASSERT_TRUE(keys_expired(&limited, 1001));
	CU_ASSERT_TRUE(keys_expired(&limited, INT64_MAX));
	/* Rate limits have nothing to do with expiry. */
	const struct api_key_limits rate = {.max_invites = 1, .period_s = 1};
	CU_ASSERT_FALSE(keys_expired(&rate, INT64_MAX));
}

static void test_allow_names(void)
{
	static const struct {
		const char *text;
		int rc;
		unsigned allow;
		const char *canonical;
	} rows[] = {
	    {"account", 0, KEYS_ALLOW_ACCOUNT, "account"},
	    {"reset", 0, KEYS_ALLOW_RESET, "reset"},
	    {"account,reset", 0, KEYS_ALLOW_ALL, "account,reset"},
	    {"reset,account", 0, KEYS_ALLOW_ALL, "account,reset"},
	    {"reset,reset", 0, KEYS_ALLOW_RESET, "reset"},
	    {"", -1, 0, NULL},
	    {",", -1, 0, NULL},
	    {"account,", -1, 0, NULL},
	    {"Account", -1, 0, NULL},
	    {"account, reset", -1, 0, NULL},
	    {"admin", -1, 0, NULL},
	    {"resets", -1, 0, NULL},
	};
	char buf[32];
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		unsigned allow = 99;
		const char *bad = NULL;
		CU_ASSERT_EQUAL(keys_allow_parse(rows[i].text, &allow, &bad), rows[i].rc);
		if (rows[i].rc == 0) {
			CU_ASSERT_EQUAL(allow, rows[i].allow);
			CU_ASSERT_STRING_EQUAL(keys_allow_format(allow, buf, sizeof buf),
			                       rows[i].canonical);
		} else {
			CU_ASSERT_PTR_NOT_NULL(bad);
			CU_ASSERT_EQUAL(allow, 99);
		}
	}
	const char *bad = NULL;
	unsigned allow = 0;
	CU_ASSERT_EQUAL(keys_allow_parse("account,admin", &allow, &bad), -1);
	CU_ASSERT_STRING_EQUAL(bad, "admin");
	CU_ASSERT_STRING_EQUAL(keys_allow_format(0, buf, sizeof buf), "none");
	CU_ASSERT_STRING_EQUAL(keys_allow_name(KEYS_ALLOW_RESET), "reset");
	CU_ASSERT_PTR_NULL(keys_allow_name(4));
}

static const struct unit_test tests[] = {
    {"generated key shape", test_generate_shape},
    {"1000 generated IDs are distinct", test_generate_distinct},
    {"wipe zeroes the key", test_wipe},
    {"parse accepts boundary cases", test_parse_accepts},
    {"parse rejects malformed keys", test_parse_rejects},
    {"parse rejects overlong parts and 1 MiB input", test_parse_rejects_overlong},
    {"parse checks every byte value", test_parse_every_byte},
    {"hash matches BLAKE2b-256 vectors", test_hash_vectors},
    {"expiry boundary", test_expired},
    {"permission names parse and format", test_allow_names},
    {NULL, NULL},
};

UNIT_MAIN("keys", tests)
