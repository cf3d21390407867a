#include "keys/keys.h"
#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HOST           "example.com"
#define OTHER          "other.example"
#define NOW            ((int64_t)time(NULL))
#define SCHEMA_VERSION 4 /* what keystore_open() migrates to */

/* ---- fixture: a fresh directory under /tmp with a store path in it ---- */

struct fixture {
	char dir[64];
	char path[96];
};

static void fixture_init(struct fixture *fx)
{
	CU_ASSERT_FATAL(keys_init() == 0);
	snprintf(fx->dir, sizeof fx->dir, "/tmp/test_store.XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(fx->dir) != NULL);
	snprintf(fx->path, sizeof fx->path, "%s/keys.sqlite", fx->dir);
}

static void fixture_finish(struct fixture *fx)
{
	DIR *dir = opendir(fx->dir);
	CU_ASSERT_FATAL(dir != NULL);
	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		CU_ASSERT(unlinkat(dirfd(dir), entry->d_name, 0) == 0);
	}
	closedir(dir);
	CU_ASSERT(rmdir(fx->dir) == 0);
}

static struct keystore *open_store(const struct fixture *fx)
{
	const char *err = NULL;
	struct keystore *store = keystore_open(fx->path, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(store);
#ifdef STORE_CACHED /* test_store_cached: every test again, verifying from memory */
	CU_ASSERT_EQUAL_FATAL(keystore_cache_verification(store), 0);
#endif
	return store;
}

static void create_key(struct keystore *store, const char *host, const char *name,
                       struct api_key_new *key)
{
	const char *err = NULL;
	CU_ASSERT_EQUAL_FATAL(keystore_create(store, host, name, NULL, key, &err), KEYS_OK);
}

static enum keys_status verify_text(struct keystore *store, const char *text,
                                    struct api_key_match *match)
{
	const char *err = NULL;
	return keystore_verify(store, text, strlen(text), NOW, match, &err);
}

/* ---- direct SQLite access, to inspect or sabotage the file ---- */

static sqlite3 *raw_open(const struct fixture *fx)
{
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READWRITE, NULL),
	                      SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static int raw_exec(const struct fixture *fx, const char *sql)
{
	sqlite3 *db = raw_open(fx);
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static long long raw_int(const struct fixture *fx, const char *sql)
{
	sqlite3 *db = raw_open(fx);
	sqlite3_stmt *stmt = NULL;
	long long value = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
	    sqlite3_step(stmt) == SQLITE_ROW)
		value = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return value;
}

static long long row_count(const struct fixture *fx)
{
	return raw_int(fx, "SELECT count(*) FROM api_keys");
}

/* ---- listing into an array ---- */

struct listing {
	int count;
	int stop_after; /* 0: never */
	char ids[8][KEYS_ID_MAX + 1];
	char names[8][KEYS_NAME_MAX + 1];
	char hosts[8][64];
	int64_t created[8];
	int64_t last_used[8];
	uint64_t invites[8];
	struct api_key_limits limits[8];
};

static int collect(void *userdata, const struct api_key_info *key)
{
	struct listing *list = userdata;
	if (list->count < 8) {
		snprintf(list->ids[list->count], sizeof list->ids[0], "%s", key->id);
		snprintf(list->names[list->count], sizeof list->names[0], "%s", key->name);
		snprintf(list->hosts[list->count], sizeof list->hosts[0], "%s", key->host);
		list->created[list->count] = key->created;
		list->last_used[list->count] = key->last_used;
		list->invites[list->count] = key->invites;
		list->limits[list->count] = key->limits;
	}
	list->count++;
	return list->stop_after != 0 && list->count >= list->stop_after;
}

static struct listing list_host(struct keystore *store, const char *host)
{
	struct listing list = {0};
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_list(store, host, collect, &list, &err), KEYS_OK);
	return list;
}

/* ---- a replayable random source, to force ID collisions ---- */

static uint64_t rng_state;
static bool rng_frozen; /* every byte the same: every ID collides */

static const char *rng_name(void)
{
	return "test replay";
}

static void rng_buf(void *const buf, const size_t size)
{
	unsigned char *bytes = buf;
	for (size_t i = 0; i < size; i++) {
		if (!rng_frozen)
			rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
		bytes[i] = (unsigned char)(rng_state >> 56);
	}
}

static uint32_t rng_random(void)
{
	uint32_t value;
	rng_buf(&value, sizeof value);
	return value;
}

static void rng_stir(void)
{
}

static int rng_close(void)
{
	return 0;
}

static randombytes_implementation replay_rng = {
    .implementation_name = rng_name,
    .random = rng_random,
    .stir = rng_stir,
    .uniform = NULL,
    .buf = rng_buf,
    .close = rng_close,
};

static void rng_replay(uint64_t seed, bool frozen)
{
	rng_state = seed;
	rng_frozen = frozen;
	CU_ASSERT_FATAL(randombytes_set_implementation(&replay_rng) == 0);
}

/* libsodium 1.0.18 on Linux defaults to the system RNG. */
static void rng_restore(void)
{
	CU_ASSERT_FATAL(randombytes_set_implementation(&randombytes_sysrandom_implementation) == 0);
}

/* ---- file helpers ---- */

static bool file_contains(const char *path, const void *needle, size_t len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return false;
	static char data[1 << 20];
	size_t n = fread(data, 1, sizeof data, f);
	fclose(f);
	return memmem(data, n, needle, len) != NULL;
}

static bool is_zero(const void *p, size_t len)
{
	const unsigned char *bytes = p;
	for (size_t i = 0; i < len; i++) {
		if (bytes[i] != 0)
			return false;
	}
	return true;
}

/* ---- tests ---- */

static void test_create_list_delete(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new first, second, other;
	const char *err = NULL;
	int64_t before = time(NULL);
	create_key(store, HOST, "first", &first);
	create_key(store, HOST, "second", &second);
	create_key(store, OTHER, "other", &other);
	int64_t after = time(NULL);

	struct listing list = list_host(store, HOST);
	CU_ASSERT_EQUAL_FATAL(list.count, 2);
	CU_ASSERT_STRING_EQUAL(list.ids[0], first.id);
	CU_ASSERT_STRING_EQUAL(list.names[0], "first");
	CU_ASSERT_STRING_EQUAL(list.hosts[0], HOST);
	CU_ASSERT(list.created[0] >= before && list.created[0] <= after);
	CU_ASSERT_STRING_EQUAL(list.ids[1], second.id);
	CU_ASSERT_STRING_EQUAL(list.names[1], "second");

	CU_ASSERT_EQUAL(keystore_delete(store, HOST, first.id, &err), KEYS_OK);
	list = list_host(store, HOST);
	CU_ASSERT_EQUAL_FATAL(list.count, 1);
	CU_ASSERT_STRING_EQUAL(list.ids[0], second.id);
	CU_ASSERT_EQUAL(keystore_delete(store, HOST, first.id, &err), KEYS_NOT_FOUND);
	CU_ASSERT_EQUAL(list_host(store, OTHER).count, 1);
	CU_ASSERT_EQUAL(list_host(store, "nobody.example").count, 0);

	keys_wipe(&first);
	keys_wipe(&second);
	keys_wipe(&other);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_persistence(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	create_key(store, HOST, "kept", &key);
	keystore_close(store);

	store = open_store(&fx);
	struct listing list = list_host(store, HOST);
	CU_ASSERT_EQUAL_FATAL(list.count, 1);
	CU_ASSERT_STRING_EQUAL(list.ids[0], key.id);
	CU_ASSERT_STRING_EQUAL(list.names[0], "kept");
	struct api_key_match match;
	CU_ASSERT_EQUAL(verify_text(store, key.text, &match), KEYS_OK);
	keystore_close(store);
	keystore_close(NULL);
	keys_wipe(&key);
	fixture_finish(&fx);
}

static void test_verify(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key, second, unstored;
	create_key(store, HOST, "verify", &key);
	create_key(store, HOST, "second", &second);
	keys_generate(&unstored);

	struct api_key_match match;
	memset(&match, 'x', sizeof match);
	const char *err = "untouched";
	CU_ASSERT_EQUAL(keystore_verify(store, key.text, strlen(key.text), NOW, &match, &err),
	                KEYS_OK);
	CU_ASSERT_STRING_EQUAL(match.id, key.id);
	CU_ASSERT_STRING_EQUAL(match.host, HOST);

	char text[KEYS_TEXT_MAX + 2];
	snprintf(text, sizeof text, "%s", key.text);
	text[strlen(text) - 1] ^= 1; /* wrong secret, same length and alphabet */
	CU_ASSERT_EQUAL(verify_text(store, text, &match), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify_text(store, unstored.text, &match), KEYS_DENIED);
	snprintf(text, sizeof text, "%s/%s", key.id, second.secret); /* another key's secret */
	CU_ASSERT_EQUAL(verify_text(store, text, &match), KEYS_DENIED);
	snprintf(text, sizeof text, "%s/%s", "AAAAAAAAAAAAAAAA", key.secret);
	CU_ASSERT_EQUAL(verify_text(store, text, &match), KEYS_DENIED);
	keys_wipe(&unstored);
	keys_wipe(&second);
	keystore_close(store);
	keys_wipe(&key);
	fixture_finish(&fx);
}

static void test_verify_malformed(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	create_key(store, HOST, "verify", &key);
	struct api_key_match match;
	const char *err = NULL;
	size_t len = strlen(key.text);
	char text[KEYS_TEXT_MAX + 2];

	snprintf(text, sizeof text, "%s ", key.text); /* valid key plus a byte */
	CU_ASSERT_EQUAL(verify_text(store, text, &match), KEYS_DENIED);
	/* the key with its NUL terminator counted */
	CU_ASSERT_EQUAL(keystore_verify(store, key.text, len + 1, NOW, &match, &err), KEYS_DENIED);
	CU_ASSERT_EQUAL(keystore_verify(store, key.text, len - 1, NOW, &match, &err), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify_text(store, key.id, &match), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify_text(store, key.secret, &match), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify_text(store, "", &match), KEYS_DENIED);
	CU_ASSERT_EQUAL(keystore_verify(store, NULL, 0, NOW, &match, &err), KEYS_DENIED);

	char *huge = malloc(1 << 20);
	CU_ASSERT_FATAL(huge != NULL);
	memset(huge, 'A', 1 << 20);
	memcpy(huge, key.text, len);
	CU_ASSERT_EQUAL(keystore_verify(store, huge, 1 << 20, NOW, &match, &err), KEYS_DENIED);
	free(huge);

	/* Still fine afterwards: the dummy lookups left nothing behind. */
	CU_ASSERT_EQUAL(verify_text(store, key.text, &match), KEYS_OK);
	keystore_close(store);
	keys_wipe(&key);
	fixture_finish(&fx);
}

/* Malformed input is checked with a stand-in ID and secret; even a stored
 * key that happens to have exactly those must not let it through. */
static void test_verify_malformed_never_matches(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	static const char id[] = "AAAAAAAAAAAAAAAA";
	static const char secret[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	unsigned char hash[KEYS_HASH_BYTES];
	keys_hash_secret(secret, sizeof secret - 1, hash);
	sqlite3 *db = raw_open(&fx);
	sqlite3_stmt *insert = NULL;
	CU_ASSERT_EQUAL_FATAL(
	    sqlite3_prepare_v2(db,
	                       "INSERT INTO api_keys (id, host, name, created, secret_hash)"
	                       " VALUES (?1, ?2, 'n', 0, ?3)",
	                       -1, &insert, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(insert, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(insert, 2, HOST, -1, SQLITE_STATIC);
	sqlite3_bind_blob(insert, 3, hash, sizeof hash, SQLITE_STATIC);
	CU_ASSERT_EQUAL(sqlite3_step(insert), SQLITE_DONE);
	sqlite3_finalize(insert);
	sqlite3_close(db);

	struct api_key_match match;
	char text[KEYS_TEXT_MAX + 2];
	snprintf(text, sizeof text, "%s/%s", id, secret);
	CU_ASSERT_EQUAL_FATAL(verify_text(store, text, &match), KEYS_OK); /* the row is usable */
	CU_ASSERT_EQUAL(verify_text(store, "", &match), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify_text(store, "not a key", &match), KEYS_DENIED);
	snprintf(text, sizeof text, "%s/%s.", id, secret);
	CU_ASSERT_EQUAL(verify_text(store, text, &match), KEYS_DENIED);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_verify_other_host(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new mine, theirs;
	create_key(store, HOST, "mine", &mine);
	create_key(store, OTHER, "theirs", &theirs);
	struct api_key_match match;
	CU_ASSERT_EQUAL(verify_text(store, theirs.text, &match), KEYS_OK);
	CU_ASSERT_STRING_EQUAL(match.host, OTHER);
	CU_ASSERT_STRING_EQUAL(match.id, theirs.id);
	CU_ASSERT_EQUAL(verify_text(store, mine.text, &match), KEYS_OK);
	CU_ASSERT_STRING_EQUAL(match.host, HOST);
	keys_wipe(&mine);
	keys_wipe(&theirs);
	keystore_close(store);
	fixture_finish(&fx);
}

/* The CLI and the daemon are separate processes: what one commits, the
 * other's very next verification must see. */
static void test_cross_connection(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *daemon = open_store(&fx);
	struct keystore *cli = open_store(&fx);
	struct api_key_new key, later;
	struct api_key_match match;
	const char *err = NULL;
	create_key(daemon, HOST, "cross", &key);
	CU_ASSERT_EQUAL(verify_text(daemon, key.text, &match), KEYS_OK);

	/* No read transaction may stay open between verifications: a
	 * truncating checkpoint only succeeds if no reader holds a snapshot. */
	sqlite3 *db = raw_open(&fx);
	sqlite3_busy_timeout(db, 0);
	int log = -1, checkpointed = -1;
	CU_ASSERT_EQUAL(
	    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &checkpointed),
	    SQLITE_OK);
	sqlite3_close(db);

	CU_ASSERT_EQUAL(keystore_delete(cli, HOST, key.id, &err), KEYS_OK);
	CU_ASSERT_EQUAL(verify_text(daemon, key.text, &match), KEYS_DENIED);

	create_key(cli, HOST, "later", &later);
	CU_ASSERT_EQUAL(verify_text(daemon, later.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(list_host(daemon, HOST).count, 1);
	keys_wipe(&key);
	keys_wipe(&later);
	keystore_close(cli);
	keystore_close(daemon);
	fixture_finish(&fx);
}

/* The CLI writes while the daemon verifies: WAL readers do not wait. */
static void test_verify_during_write(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	struct api_key_match match;
	create_key(store, HOST, "busy", &key);
	sqlite3 *db = raw_open(&fx);
	CU_ASSERT_EQUAL(sqlite3_exec(db,
	                             "BEGIN IMMEDIATE; INSERT INTO api_keys"
	                             " (id, host, name, created, secret_hash)"
	                             " VALUES ('x', 'h', 'n', 0, zeroblob(32))",
	                             NULL, NULL, NULL),
	                SQLITE_OK);
	time_t start = time(NULL);
	CU_ASSERT_EQUAL(verify_text(store, key.text, &match), KEYS_OK);
	CU_ASSERT(time(NULL) - start <= 1);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	keys_wipe(&key);
	keystore_close(store);
	fixture_finish(&fx);
}

static mode_t file_mode(const char *path)
{
	struct stat st;
	CU_ASSERT_FATAL(stat(path, &st) == 0);
	return st.st_mode & 07777;
}

static void test_file_mode(void)
{
	struct fixture fx;
	fixture_init(&fx);
	mode_t saved = umask(0);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	create_key(store, HOST, "mode", &key);
	CU_ASSERT_EQUAL(file_mode(fx.path), 0600);
	char wal[128];
	snprintf(wal, sizeof wal, "%s-wal", fx.path);
	CU_ASSERT_EQUAL(file_mode(wal), 0600);
	umask(saved);
	keys_wipe(&key);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_delete_not_found(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	struct api_key_match match;
	const char *err = NULL;
	create_key(store, HOST, "keep", &key);
	CU_ASSERT_EQUAL(keystore_delete(store, HOST, "unknownunknown00", &err), KEYS_NOT_FOUND);
	CU_ASSERT_PTR_NOT_NULL(err);
	CU_ASSERT_EQUAL(keystore_delete(store, OTHER, key.id, &err), KEYS_NOT_FOUND);
	CU_ASSERT_EQUAL(keystore_delete(store, HOST, "", &err), KEYS_NOT_FOUND);
	CU_ASSERT_EQUAL(verify_text(store, key.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(row_count(&fx), 1);
	keys_wipe(&key);
	keystore_close(store);
	fixture_finish(&fx);
}

struct argument_case {
	const char *what;
	const char *host;
	const char *name;
	bool valid;
};

static void test_invalid_arguments(void)
{
	struct fixture fx;
	fixture_init(&fx);
	char host_max[KEYS_HOST_MAX + 2], name_max[KEYS_NAME_MAX + 2];
	memset(host_max, 'h', sizeof host_max - 1);
	host_max[sizeof host_max - 1] = '\0';
	memset(name_max, 'n', sizeof name_max - 1);
	name_max[sizeof name_max - 1] = '\0';
	const struct argument_case cases[] = {
	    {"host of 1024 bytes", host_max, "n", false},
	    {"name of 201 bytes", HOST, name_max, false},
	    {"host of 1023 bytes", host_max + 1, "n", true},
	    {"name of 200 bytes", HOST, name_max + 1, true},
	    {"UTF-8 name", HOST, "Schl\xc3\xbcssel \xe2\x9c\x93 \xf0\x9f\x94\x91", true},
	    {"IDN host", "b\xc3\xbc\x63her.example", "n", true},
	    {"empty host", "", "n", false},
	    {"NULL host", NULL, "n", false},
	    {"empty name", HOST, "", false},
	    {"NULL name", HOST, NULL, false},
	    {"space in host", "exa mple.com", "n", false},
	    {"slash in host", "example.com/x", "n", false},
	    {"tab in host", "example.com\t", "n", false},
	    {"newline in host", "example.com\n", "n", false},
	    {"invalid UTF-8 host", "ex\xff.com", "n", false},
	    {"tab in name", HOST, "a\tb", false},
	    {"newline in name", HOST, "a\nb", false},
	    {"carriage return in name", HOST, "a\rb", false},
	    {"escape in name", HOST, "a\x1b[31m", false},
	    {"DEL in name", HOST, "a\x7f", false},
	    {"C1 control in name", HOST, "a\xc2\x85", false},
	    {"invalid byte in name", HOST, "a\xff", false},
	    {"truncated sequence in name", HOST, "a\xe2\x9c", false},
	    {"overlong encoding in name", HOST, "a\xc0\xaf", false},
	    {"overlong 3-byte encoding in name", HOST, "a\xe0\x80\xaf", false},
	    {"overlong 4-byte encoding in name", HOST, "a\xf0\x80\x80\xaf", false},
	    {"surrogate in name", HOST, "a\xed\xa0\x80", false},
	    {"beyond U+10FFFF in name", HOST, "a\xf4\x90\x80\x80", false},
	    {"U+FFFE (not XML) in name", HOST, "a\xef\xbf\xbe", false},
	    {"U+FFFF (not XML) in name", HOST, "a\xef\xbf\xbf", false},
	    {"U+FFFD in name", HOST, "a\xef\xbf\xbd", true},
	    {"U+10FFFD in name", HOST, "a\xf4\x8f\xbf\xbd", true},
	};
	struct keystore *store = open_store(&fx);
	long long expected_rows = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct argument_case *c = &cases[i];
		struct api_key_new key;
		const char *err = NULL;
		enum keys_status status =
		    keystore_create(store, c->host, c->name, NULL, &key, &err);
		enum keys_status expected = c->valid ? KEYS_OK : KEYS_INVALID;
		CU_assertImplementation(status == expected, __LINE__, c->what, __FILE__, "",
		                        CU_FALSE);
		CU_assertImplementation(status == KEYS_OK || err != NULL, __LINE__, c->what,
		                        __FILE__, "", CU_FALSE);
		expected_rows += c->valid;
		if (status == KEYS_OK)
			keys_wipe(&key);
	}
	CU_ASSERT_EQUAL(row_count(&fx), expected_rows);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_no_secret_in_file(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	create_key(store, HOST, "secret", &key);
	unsigned char hash[KEYS_HASH_BYTES];
	keys_hash_secret(key.secret, KEYS_SECRET_LEN, hash);
	char wal[128];
	snprintf(wal, sizeof wal, "%s-wal", fx.path);

	/* While open the row may still be in the WAL; after closing it is
	 * checkpointed into the main file. The ID and hash must be found, or
	 * not finding the secret would prove nothing. */
	CU_ASSERT(file_contains(fx.path, key.id, KEYS_ID_LEN) ||
	          file_contains(wal, key.id, KEYS_ID_LEN));
	CU_ASSERT(file_contains(fx.path, hash, sizeof hash) ||
	          file_contains(wal, hash, sizeof hash));
	CU_ASSERT(!file_contains(fx.path, key.secret, KEYS_SECRET_LEN));
	CU_ASSERT(!file_contains(wal, key.secret, KEYS_SECRET_LEN));
	keystore_close(store);
	CU_ASSERT(file_contains(fx.path, key.id, KEYS_ID_LEN));
	CU_ASSERT(file_contains(fx.path, hash, sizeof hash));
	CU_ASSERT(!file_contains(fx.path, key.secret, KEYS_SECRET_LEN));
	keys_wipe(&key);
	fixture_finish(&fx);
}

/* A long-lived handle (the daemon's) follows the file at the path: a store
 * replaced by rename (a backup restored) or deleted and made anew is
 * reopened, so a key revoked in the new file is refused at once; while no
 * file is there at all, the keys already open keep working. */
static void test_replaced_file(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *daemon = open_store(&fx);
	struct api_key_new k1, k2, k3;
	struct api_key_match match;
	const char *err = NULL;
	create_key(daemon, HOST, "one", &k1);
	create_key(daemon, HOST, "two", &k2);

	/* Restore a copy over the file, then revoke k1 in it with a new handle. */
	char copy[128], sql[256];
	snprintf(copy, sizeof copy, "%s.new", fx.path);
	snprintf(sql, sizeof sql, "VACUUM INTO '%s'", copy);
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, sql), SQLITE_OK);
	CU_ASSERT_FATAL(rename(copy, fx.path) == 0);
	struct keystore *cli = open_store(&fx);
	CU_ASSERT_EQUAL(keystore_delete(cli, HOST, k1.id, &err), KEYS_OK);
	keystore_close(cli);
	CU_ASSERT_EQUAL(verify_text(daemon, k1.text, &match), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify_text(daemon, k2.text, &match), KEYS_OK);

	/* Removed: the open keys keep working, creating or revoking fails... */
	char side[128];
	snprintf(side, sizeof side, "%s-wal", fx.path);
	unlink(side);
	snprintf(side, sizeof side, "%s-shm", fx.path);
	unlink(side);
	CU_ASSERT_FATAL(unlink(fx.path) == 0);
	CU_ASSERT_EQUAL(verify_text(daemon, k2.text, &match), KEYS_OK);
	/* ...until a new store is made there: then only its keys work. */
	cli = open_store(&fx);
	create_key(cli, HOST, "three", &k3);
	keystore_close(cli);
	CU_ASSERT_EQUAL(verify_text(daemon, k2.text, &match), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify_text(daemon, k3.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(keystore_delete(daemon, HOST, k3.id, &err), KEYS_OK);
	CU_ASSERT_EQUAL(row_count(&fx), 0);

	keystore_close(daemon);
	keys_wipe(&k1);
	keys_wipe(&k2);
	keys_wipe(&k3);
	fixture_finish(&fx);
}

static void test_schema(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	create_key(store, HOST, "schema", &key);
	CU_ASSERT_EQUAL(raw_int(&fx, "PRAGMA user_version"), SCHEMA_VERSION);
	CU_ASSERT_EQUAL(raw_int(&fx, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
	CU_ASSERT_EQUAL(raw_int(&fx,
	                        "SELECT count(*) FROM pragma_table_info('api_keys')"
	                        " WHERE name IN ('id', 'host', 'name', 'created', 'secret_hash',"
	                        " 'expires', 'max_invites', 'period_s', 'last_used', 'invites',"
	                        " 'window_start', 'window_count', 'permissions')"),
	                13);
	/* "never" is NULL, counters start at 0 */
	CU_ASSERT_EQUAL(raw_int(&fx, "SELECT expires IS NULL AND last_used IS NULL AND"
	                             " max_invites = 0 AND period_s = 0 AND invites = 0 AND"
	                             " window_start = 0 AND window_count = 0 AND permissions = 1"
	                             " FROM api_keys"),
	                1);
	CU_ASSERT_EQUAL(raw_int(&fx, "SELECT count(*) FROM pragma_index_info('api_keys_host')"
	                             " WHERE name = 'host'"),
	                1);
	/* Verification reads only this index, whether the ID exists or not. */
	CU_ASSERT_EQUAL(raw_int(&fx, "SELECT group_concat(name) = 'id,host,secret_hash,expires,"
	                             "max_invites,period_s,window_start,window_count,permissions'"
	                             " FROM pragma_index_info('api_keys_verify')"),
	                1);
	CU_ASSERT_EQUAL(raw_int(&fx, "SELECT length(secret_hash) FROM api_keys"), KEYS_HASH_BYTES);
	keystore_close(store);
	/* Reopening an up-to-date store changes nothing. */
	store = open_store(&fx);
	CU_ASSERT_EQUAL(raw_int(&fx, "PRAGMA user_version"), SCHEMA_VERSION);
	CU_ASSERT_EQUAL(row_count(&fx), 1);
	keystore_close(store);
	keys_wipe(&key);
	fixture_finish(&fx);
}

static void test_open_missing_directory(void)
{
	struct fixture fx;
	fixture_init(&fx);
	char path[160];
	snprintf(path, sizeof path, "%s/missing/keys.sqlite", fx.dir);
	const char *err = NULL;
	CU_ASSERT_PTR_NULL(keystore_open(path, &err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	char reason[200];
	snprintf(reason, sizeof reason, "directory %s/missing does not exist", fx.dir);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, reason));
	fixture_finish(&fx);
}

static void test_open_corrupt(void)
{
	struct fixture fx;
	fixture_init(&fx);
	char garbage[4096];
	for (size_t i = 0; i < sizeof garbage; i++)
		garbage[i] = (char)(i * 7 + 13);
	FILE *f = fopen(fx.path, "wb");
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_FATAL(fwrite(garbage, 1, sizeof garbage, f) == sizeof garbage);
	CU_ASSERT_FATAL(fclose(f) == 0);

	const char *err = NULL;
	CU_ASSERT_PTR_NULL(keystore_open(fx.path, &err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, fx.path));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a database"));
	/* Refused, not "repaired". */
	CU_ASSERT(file_contains(fx.path, garbage, sizeof garbage));
	fixture_finish(&fx);
}

static void test_open_newer_schema(void)
{
	struct fixture fx;
	fixture_init(&fx);
	keystore_close(open_store(&fx));
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "PRAGMA user_version = 99"), SQLITE_OK);
	const char *err = NULL;
	CU_ASSERT_PTR_NULL(keystore_open(fx.path, &err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, fx.path));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "99"));
	fixture_finish(&fx);
}

/* A trigger makes the INSERT fail inside the transaction. */
static void test_create_failure(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "CREATE TRIGGER sabotage BEFORE INSERT ON api_keys"
	                                    " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"),
	                      SQLITE_OK);
	/* The replayed random source tells which key create will try. */
	struct api_key_new expected, key;
	rng_replay(42, false);
	keys_generate(&expected);
	rng_replay(42, false);
	memset(&key, 0x55, sizeof key);
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_create(store, HOST, "fails", NULL, &key, &err), KEYS_ERROR);
	rng_restore();
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, fx.path));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "injected failure"));
	CU_ASSERT_PTR_NULL(strstr(err, expected.secret));
	CU_ASSERT(is_zero(&key, sizeof key));
	CU_ASSERT_EQUAL(row_count(&fx), 0);

	/* Nothing is left half-done: once the trigger is gone, create works. */
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "DROP TRIGGER sabotage"), SQLITE_OK);
	create_key(store, HOST, "works", &key);
	CU_ASSERT_EQUAL(row_count(&fx), 1);
	keys_wipe(&key);
	keys_wipe(&expected);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_delete_failure(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	struct api_key_match match;
	create_key(store, HOST, "stays", &key);
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "CREATE TRIGGER sabotage BEFORE DELETE ON api_keys"
	                                    " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"),
	                      SQLITE_OK);
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_delete(store, HOST, key.id, &err), KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "injected failure"));
	CU_ASSERT_EQUAL(verify_text(store, key.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(row_count(&fx), 1);
	keys_wipe(&key);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_id_collision_retried(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new first, second;
	struct api_key_match match;
	rng_replay(7, false);
	create_key(store, HOST, "first", &first);
	rng_replay(7, false); /* the same ID comes up again */
	create_key(store, HOST, "second", &second);
	rng_restore();
	CU_ASSERT_STRING_NOT_EQUAL(first.id, second.id);
	CU_ASSERT_EQUAL(row_count(&fx), 2);
	CU_ASSERT_EQUAL(verify_text(store, first.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(verify_text(store, second.text, &match), KEYS_OK);
	keys_wipe(&first);
	keys_wipe(&second);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_id_collision_exhausted(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new first, second;
	rng_replay(9, true); /* every ID is the same */
	create_key(store, HOST, "first", &first);
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_create(store, HOST, "second", NULL, &second, &err), KEYS_ERROR);
	rng_restore();
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, fx.path));
	CU_ASSERT(is_zero(&second, sizeof second));
	CU_ASSERT_EQUAL(row_count(&fx), 1);
	keys_wipe(&first);
	keystore_close(store);
	fixture_finish(&fx);
}

/* A store that cannot be read is an error, never a denial. */
static void test_store_errors(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	struct api_key_match match;
	create_key(store, HOST, "gone", &key);
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "DROP TABLE api_keys"), SQLITE_OK);

	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_verify(store, key.text, strlen(key.text), NOW, &match, &err),
	                KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, fx.path));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no such table"));
	err = NULL;
	CU_ASSERT_EQUAL(keystore_verify(store, "bad", 3, NOW, &match, &err), KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(err);
	err = NULL;
	CU_ASSERT_EQUAL(keystore_list(store, HOST, collect, &(struct listing){0}, &err),
	                KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(err);
	err = NULL;
	CU_ASSERT_EQUAL(keystore_delete(store, HOST, key.id, &err), KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(err);
	keys_wipe(&key);
	err = NULL;
	CU_ASSERT_EQUAL(keystore_create(store, HOST, "new", NULL, &key, &err), KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(err);
	CU_ASSERT(is_zero(&key, sizeof key));
	err = NULL;
	CU_ASSERT_EQUAL(keystore_import(store, HOST, "imported", "0123456789abcdef", "n", 0, &err),
	                KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(err);
	err = NULL;
	struct api_key_usage usage = {.id = "x", .invites = 1};
	CU_ASSERT_EQUAL(keystore_record_usage(store, &usage, 1, &err), KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(err);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_malformed_record(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	struct api_key_match match;
	create_key(store, HOST, "short hash", &key);
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "UPDATE api_keys SET secret_hash = x'00'"), SQLITE_OK);
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_verify(store, key.text, strlen(key.text), NOW, &match, &err),
	                KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL(err);
	keys_wipe(&key);
	keystore_close(store);
	fixture_finish(&fx);
}

/* The CLI waits for another writer, but not for ever: past the busy
 * timeout, create fails cleanly. */
static void test_create_busy(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	sqlite3 *db = raw_open(&fx);
	CU_ASSERT_EQUAL_FATAL(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	const char *err = NULL;
	time_t start = time(NULL);
	CU_ASSERT_EQUAL(keystore_create(store, HOST, "waits", NULL, &key, &err), KEYS_ERROR);
	time_t waited = time(NULL) - start;
	CU_ASSERT(waited >= 4 && waited <= 7); /* the 5 s busy timeout */
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "database is locked"));
	CU_ASSERT(is_zero(&key, sizeof key));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	create_key(store, HOST, "after", &key);
	CU_ASSERT_EQUAL(row_count(&fx), 1);
	keys_wipe(&key);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_list_order_and_stop(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new a, b, c;
	create_key(store, HOST, "a", &a);
	create_key(store, HOST, "b", &b);
	create_key(store, HOST, "c", &c);
	/* Same second: insertion order. Then make "a" the newest. */
	struct listing list = list_host(store, HOST);
	CU_ASSERT_EQUAL_FATAL(list.count, 3);
	CU_ASSERT_STRING_EQUAL(list.names[0], "a");
	CU_ASSERT_STRING_EQUAL(list.names[2], "c");
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "UPDATE api_keys SET created = 100 WHERE name = 'a';"
	                                    "UPDATE api_keys SET created = 50 WHERE name != 'a'"),
	                      SQLITE_OK);
	list = list_host(store, HOST);
	CU_ASSERT_EQUAL_FATAL(list.count, 3);
	CU_ASSERT_STRING_EQUAL(list.names[0], "b");
	CU_ASSERT_STRING_EQUAL(list.names[1], "c");
	CU_ASSERT_STRING_EQUAL(list.names[2], "a");
	CU_ASSERT_EQUAL(list.created[2], 100);

	struct listing stopped = {.stop_after = 2};
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_list(store, HOST, collect, &stopped, &err), KEYS_OK);
	CU_ASSERT_EQUAL(stopped.count, 2);
	keys_wipe(&a);
	keys_wipe(&b);
	keys_wipe(&c);
	keystore_close(store);
	fixture_finish(&fx);
}

/* ---- lifecycle: limits, expiry, import, usage, migration ---- */

static void create_limited(struct keystore *store, const char *name, struct api_key_limits limits,
                           struct api_key_new *key)
{
	const char *err = NULL;
	CU_ASSERT_EQUAL_FATAL(keystore_create(store, HOST, name, &limits, key, &err), KEYS_OK);
}

static void test_limits_round_trip(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new plain, limited;
	struct api_key_limits limits = {.expires = NOW + 3600,
	                                .max_invites = 20,
	                                .period_s = 86400,
	                                .allow = KEYS_ALLOW_ACCOUNT | KEYS_ALLOW_RESET};
	create_key(store, HOST, "plain", &plain);
	create_limited(store, "limited", limits, &limited);

	struct listing list = list_host(store, HOST);
	CU_ASSERT_EQUAL_FATAL(list.count, 2);
	CU_ASSERT_EQUAL(list.limits[0].expires, 0);
	CU_ASSERT_EQUAL(list.limits[0].max_invites, 0);
	CU_ASSERT_EQUAL(list.limits[0].period_s, 0);
	CU_ASSERT_EQUAL(list.limits[0].allow, KEYS_ALLOW_ACCOUNT); /* 0 given: the default */
	CU_ASSERT_EQUAL(list.limits[1].allow, KEYS_ALLOW_ALL);
	CU_ASSERT_EQUAL(list.last_used[0], 0);
	CU_ASSERT_EQUAL(list.invites[0], 0);
	CU_ASSERT_EQUAL(list.limits[1].expires, limits.expires);
	CU_ASSERT_EQUAL(list.limits[1].max_invites, 20);
	CU_ASSERT_EQUAL(list.limits[1].period_s, 86400);

	struct api_key_match match;
	memset(&match, 'x', sizeof match);
	CU_ASSERT_EQUAL_FATAL(verify_text(store, limited.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(match.limits.expires, limits.expires);
	CU_ASSERT_EQUAL(match.limits.max_invites, 20);
	CU_ASSERT_EQUAL(match.limits.period_s, 86400);
	CU_ASSERT_EQUAL(match.limits.allow, KEYS_ALLOW_ALL);
	CU_ASSERT_EQUAL(match.window_start, 0);
	CU_ASSERT_EQUAL(match.window_count, 0);
	memset(&match, 'x', sizeof match);
	CU_ASSERT_EQUAL_FATAL(verify_text(store, plain.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(match.limits.expires, 0);
	CU_ASSERT_EQUAL(match.limits.max_invites, 0);
	CU_ASSERT_EQUAL(match.limits.period_s, 0);
	CU_ASSERT_EQUAL(match.limits.allow, KEYS_ALLOW_ACCOUNT);
	CU_ASSERT_EQUAL(raw_int(&fx, "SELECT count(*) FROM api_keys WHERE expires IS NULL"), 1);
	/* A reset-only key is a reset-only key. */
	struct api_key_new reset_only;
	create_limited(store, "reset only", (struct api_key_limits){.allow = KEYS_ALLOW_RESET},
	               &reset_only);
	CU_ASSERT_EQUAL_FATAL(verify_text(store, reset_only.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(match.limits.allow, KEYS_ALLOW_RESET);
	CU_ASSERT_EQUAL(list_host(store, HOST).limits[2].allow, KEYS_ALLOW_RESET);
	keys_wipe(&reset_only);
	keys_wipe(&plain);
	keys_wipe(&limited);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_invalid_limits(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	static const struct api_key_limits bad[] = {
	    {.max_invites = 5}, {.period_s = 60},
	    {.expires = -1},    {.expires = -1, .max_invites = 1, .period_s = 1},
	    {.allow = 4},       {.allow = KEYS_ALLOW_ALL | 8},
	    {.allow = ~0u},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct api_key_new key;
		const char *err = NULL;
		CU_ASSERT_EQUAL(keystore_create(store, HOST, "n", &bad[i], &key, &err),
		                KEYS_INVALID);
		CU_ASSERT_PTR_NOT_NULL(err);
	}
	CU_ASSERT_EQUAL(row_count(&fx), 0);
	keystore_close(store);
	fixture_finish(&fx);
}

/* Expired is denied on the very path of a wrong secret: same status, same
 * reason; valid up to and including the second it expires. */
static void test_expiry_boundary(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	const int64_t expires = 2000000000;
	struct api_key_new key;
	create_limited(store, "expiring", (struct api_key_limits){.expires = expires}, &key);
	struct api_key_match match;
	const char *err = NULL, *wrong_err = NULL;
	size_t len = strlen(key.text);
	CU_ASSERT_EQUAL(keystore_verify(store, key.text, len, expires - 1, &match, &err), KEYS_OK);
	CU_ASSERT_EQUAL(keystore_verify(store, key.text, len, expires, &match, &err), KEYS_OK);
	CU_ASSERT_EQUAL(keystore_verify(store, key.text, len, expires + 1, &match, &err),
	                KEYS_DENIED);
	CU_ASSERT_EQUAL(keystore_verify(store, key.text, len, INT64_MAX, &match, &err),
	                KEYS_DENIED);

	char wrong[KEYS_TEXT_MAX + 2];
	snprintf(wrong, sizeof wrong, "%s", key.text);
	wrong[len - 1] ^= 1;
	CU_ASSERT_EQUAL(keystore_verify(store, wrong, len, expires - 1, &match, &wrong_err),
	                KEYS_DENIED);
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(wrong_err);
	CU_ASSERT_STRING_EQUAL(err, wrong_err);
	CU_ASSERT_EQUAL(keystore_verify(store, wrong, len, expires + 1, &match, &err), KEYS_DENIED);
	/* Expiry is not deletion: it still lists, and verifies "in the past". */
	CU_ASSERT_EQUAL(list_host(store, HOST).count, 1);
	CU_ASSERT_EQUAL(keystore_verify(store, key.text, len, 0, &match, &err), KEYS_OK);
	keys_wipe(&key);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_import(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	static const char id[] = "N_cvD9Oyp7id";
	static const char secret[] = "DfV4nuUy79CF-IH6uBwFZKbptjrMh6Z25aGT";
	const char *err = NULL;
	CU_ASSERT_EQUAL_FATAL(keystore_import(store, HOST, id, secret, "Key one", 1700000000, &err),
	                      KEYS_OK);
	struct api_key_match match;
	char text[KEYS_TEXT_MAX + 1];
	snprintf(text, sizeof text, "%s/%s", id, secret);
	CU_ASSERT_EQUAL(verify_text(store, text, &match), KEYS_OK);
	CU_ASSERT_STRING_EQUAL(match.id, id);
	CU_ASSERT_STRING_EQUAL(match.host, HOST);
	CU_ASSERT_EQUAL(match.limits.allow,
	                KEYS_ALLOW_ACCOUNT); /* mod_invites_api's could no more */
	struct listing list = list_host(store, HOST);
	CU_ASSERT_EQUAL_FATAL(list.count, 1);
	CU_ASSERT_EQUAL(list.limits[0].allow, KEYS_ALLOW_ACCOUNT);
	CU_ASSERT_STRING_EQUAL(list.ids[0], id);
	CU_ASSERT_STRING_EQUAL(list.names[0], "Key one");
	CU_ASSERT_EQUAL(list.created[0], 1700000000);
	CU_ASSERT(!file_contains(fx.path, secret, strlen(secret)));

	/* Twice: KEYS_EXISTS, nothing changed, even with another secret or name. */
	err = NULL;
	CU_ASSERT_EQUAL(keystore_import(store, HOST, id, secret, "Key one", 1700000000, &err),
	                KEYS_EXISTS);
	CU_ASSERT_STRING_EQUAL(err, "already imported");
	CU_ASSERT_EQUAL(keystore_import(store, HOST, id, "0123456789abcdefgh", "x", 5, &err),
	                KEYS_EXISTS);
	CU_ASSERT_EQUAL(verify_text(store, text, &match), KEYS_OK);
	CU_ASSERT_STRING_EQUAL(list_host(store, HOST).names[0], "Key one");
	/* The ID belongs to another host's key. */
	err = NULL;
	CU_ASSERT_EQUAL(keystore_import(store, OTHER, id, secret, "Key one", 0, &err),
	                KEYS_INVALID);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "another host"));
	CU_ASSERT_EQUAL(row_count(&fx), 1);

	/* created 0 means now. */
	int64_t before = NOW;
	CU_ASSERT_EQUAL(keystore_import(store, OTHER, "fresh", secret, "n", 0, &err), KEYS_OK);
	list = list_host(store, OTHER);
	CU_ASSERT_EQUAL_FATAL(list.count, 1);
	CU_ASSERT(list.created[0] >= before && list.created[0] <= NOW);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_import_invalid(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	char id_max[KEYS_ID_MAX + 2], secret_max[KEYS_SECRET_MAX + 2];
	memset(id_max, 'i', sizeof id_max - 1);
	id_max[sizeof id_max - 1] = '\0';
	memset(secret_max, 's', sizeof secret_max - 1);
	secret_max[sizeof secret_max - 1] = '\0';
	static const char ok_secret[] = "0123456789abcdef"; /* the shortest accepted */
	const struct {
		const char *what, *host, *id, *secret, *name;
		int64_t created;
		enum keys_status expected;
	} cases[] = {
	    {"16-character secret", HOST, "a", ok_secret, "n", 0, KEYS_OK},
	    {"128-character secret", HOST, "b", secret_max + 1, "n", 0, KEYS_OK},
	    {"64-character ID", HOST, id_max + 1, ok_secret, "n", 0, KEYS_OK},
	    {"15-character secret", HOST, "c", ok_secret + 1, "n", 0, KEYS_INVALID},
	    {"129-character secret", HOST, "c", secret_max, "n", 0, KEYS_INVALID},
	    {"65-character ID", HOST, id_max, ok_secret, "n", 0, KEYS_INVALID},
	    {"empty secret", HOST, "c", "", "n", 0, KEYS_INVALID},
	    {"NULL secret", HOST, "c", NULL, "n", 0, KEYS_INVALID},
	    {"empty ID", HOST, "", ok_secret, "n", 0, KEYS_INVALID},
	    {"NULL ID", HOST, NULL, ok_secret, "n", 0, KEYS_INVALID},
	    {"dot in secret", HOST, "c", "0123456789abcdef.", "n", 0, KEYS_INVALID},
	    {"slash in secret", HOST, "c", "0123456789abcdef/x", "n", 0, KEYS_INVALID},
	    {"space in secret", HOST, "c", "0123456789 abcdef", "n", 0, KEYS_INVALID},
	    {"slash in ID", HOST, "c/d", ok_secret, "n", 0, KEYS_INVALID},
	    {"UTF-8 in ID", HOST, "c\xc3\xbc", ok_secret, "n", 0, KEYS_INVALID},
	    {"tab in name", HOST, "c", ok_secret, "a\tb", 0, KEYS_INVALID},
	    {"empty name", HOST, "c", ok_secret, "", 0, KEYS_INVALID},
	    {"bad host", "a b", "c", ok_secret, "n", 0, KEYS_INVALID},
	    {"negative created", HOST, "c", ok_secret, "n", -1, KEYS_INVALID},
	};
	long long rows = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *err = NULL;
		enum keys_status status =
		    keystore_import(store, cases[i].host, cases[i].id, cases[i].secret,
		                    cases[i].name, cases[i].created, &err);
		CU_assertImplementation(status == cases[i].expected, __LINE__, cases[i].what,
		                        __FILE__, "", CU_FALSE);
		CU_assertImplementation(status == KEYS_OK || err != NULL, __LINE__, cases[i].what,
		                        __FILE__, "", CU_FALSE);
		rows += status == KEYS_OK;
	}
	CU_ASSERT_EQUAL(row_count(&fx), rows);
	/* What was accepted verifies. */
	struct api_key_match match;
	char text[KEYS_TEXT_MAX + 1];
	snprintf(text, sizeof text, "b/%s", secret_max + 1);
	CU_ASSERT_EQUAL(verify_text(store, text, &match), KEYS_OK);
	snprintf(text, sizeof text, "%s/%s", id_max + 1, ok_secret);
	CU_ASSERT_EQUAL(verify_text(store, text, &match), KEYS_OK);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_import_failure(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "CREATE TRIGGER sabotage BEFORE INSERT ON api_keys"
	                                    " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"),
	                      SQLITE_OK);
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_import(store, HOST, "id", "0123456789abcdef", "n", 0, &err),
	                KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "injected failure"));
	CU_ASSERT_PTR_NULL(strstr(err, "0123456789abcdef"));
	CU_ASSERT_EQUAL(row_count(&fx), 0);
	keystore_close(store);
	fixture_finish(&fx);
}

static void test_record_usage(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new a, b, c;
	create_key(store, HOST, "a", &a);
	create_key(store, HOST, "b", &b);
	create_limited(store, "c", (struct api_key_limits){.max_invites = 3, .period_s = 60}, &c);
	const char *err = NULL;

	struct api_key_usage batch[] = {
	    {.id = a.id, .invites = 2, .last_used = 1000, .window_start = 900, .window_count = 2},
	    {.id = b.id, .invites = 1, .last_used = 2000, .window_start = 1900, .window_count = 1},
	    {.id = c.id, .invites = 0, .last_used = 0, .window_start = 100, .window_count = 0},
	};
	CU_ASSERT_EQUAL_FATAL(keystore_record_usage(store, batch, 3, &err), KEYS_OK);
	struct listing list = list_host(store, HOST);
	CU_ASSERT_EQUAL_FATAL(list.count, 3);
	CU_ASSERT_EQUAL(list.invites[0], 2);
	CU_ASSERT_EQUAL(list.last_used[0], 1000);
	CU_ASSERT_EQUAL(list.invites[1], 1);
	CU_ASSERT_EQUAL(list.last_used[1], 2000);
	CU_ASSERT_EQUAL(list.invites[2], 0);
	CU_ASSERT_EQUAL(list.last_used[2], 0);
	CU_ASSERT_EQUAL(raw_int(&fx, "SELECT count(*) FROM api_keys WHERE last_used IS NULL"), 1);
	struct api_key_match match;
	CU_ASSERT_EQUAL_FATAL(verify_text(store, a.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(match.window_start, 900);
	CU_ASSERT_EQUAL(match.window_count, 2);
	CU_ASSERT_EQUAL_FATAL(verify_text(store, c.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(match.window_start, 100);
	CU_ASSERT_EQUAL(match.limits.max_invites, 3);

	/* Counts add up; last_used only moves forward; the window is as given. */
	struct api_key_usage again[] = {
	    {.id = a.id, .invites = 3, .last_used = 500, .window_start = 0, .window_count = 0},
	    {.id = b.id, .invites = 4, .last_used = 2500, .window_start = 2400, .window_count = 4},
	};
	CU_ASSERT_EQUAL_FATAL(keystore_record_usage(store, again, 2, &err), KEYS_OK);
	list = list_host(store, HOST);
	CU_ASSERT_EQUAL(list.invites[0], 5);
	CU_ASSERT_EQUAL(list.last_used[0], 1000);
	CU_ASSERT_EQUAL(list.invites[1], 5);
	CU_ASSERT_EQUAL(list.last_used[1], 2500);
	CU_ASSERT_EQUAL_FATAL(verify_text(store, a.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(match.window_start, 0);
	CU_ASSERT_EQUAL(match.window_count, 0);

	/* An empty batch is fine. */
	CU_ASSERT_EQUAL(keystore_record_usage(store, again, 0, &err), KEYS_OK);
	keys_wipe(&a);
	keys_wipe(&b);
	keys_wipe(&c);
	keystore_close(store);
	fixture_finish(&fx);
}

/* The daemon flushes usage of a key the CLI deleted meanwhile. */
static void test_record_usage_deleted_key(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new a, b;
	create_key(store, HOST, "a", &a);
	create_key(store, HOST, "b", &b);
	const char *err = NULL;
	CU_ASSERT_EQUAL_FATAL(keystore_delete(store, HOST, b.id, &err), KEYS_OK);
	struct api_key_usage batch[] = {
	    {.id = b.id, .invites = 1, .last_used = 10},
	    {.id = a.id, .invites = 1, .last_used = 10},
	    {.id = "never-existed", .invites = 1, .last_used = 10},
	};
	CU_ASSERT_EQUAL(keystore_record_usage(store, batch, 3, &err), KEYS_OK);
	CU_ASSERT_EQUAL(row_count(&fx), 1);
	struct listing list = list_host(store, HOST);
	CU_ASSERT_EQUAL_FATAL(list.count, 1);
	CU_ASSERT_EQUAL(list.invites[0], 1);
	keys_wipe(&a);
	keys_wipe(&b);
	keystore_close(store);
	fixture_finish(&fx);
}

/* One failing update undoes the whole batch. */
static void test_record_usage_atomic(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new a, b;
	create_key(store, HOST, "a", &a);
	create_key(store, HOST, "b", &b);
	char sql[256];
	snprintf(sql, sizeof sql,
	         "CREATE TRIGGER sabotage BEFORE UPDATE ON api_keys WHEN old.id = '%s'"
	         " BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
	         b.id);
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, sql), SQLITE_OK);
	struct api_key_usage batch[] = {
	    {.id = a.id, .invites = 7, .last_used = 10},
	    {.id = b.id, .invites = 7, .last_used = 10},
	};
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_record_usage(store, batch, 2, &err), KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "injected failure"));
	CU_ASSERT_EQUAL(raw_int(&fx, "SELECT sum(invites) FROM api_keys"), 0);
	/* and the store works on */
	CU_ASSERT_EQUAL(keystore_record_usage(store, batch, 1, &err), KEYS_OK);
	CU_ASSERT_EQUAL(raw_int(&fx, "SELECT sum(invites) FROM api_keys"), 7);
	keys_wipe(&a);
	keys_wipe(&b);
	keystore_close(store);
	fixture_finish(&fx);
}

/* A store written by the first release (user_version 1) upgrades in place. */
static void test_migrate_from_v1(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct api_key_new key;
	keys_generate(&key);
	unsigned char hash[KEYS_HASH_BYTES];
	keys_hash_secret(key.secret, KEYS_SECRET_LEN, hash);

	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(fx.path, &db), SQLITE_OK);
	CU_ASSERT_EQUAL_FATAL(sqlite3_exec(db,
	                                   "PRAGMA journal_mode = WAL;"
	                                   "CREATE TABLE api_keys ("
	                                   "  id TEXT PRIMARY KEY NOT NULL,"
	                                   "  host TEXT NOT NULL,"
	                                   "  name TEXT NOT NULL,"
	                                   "  created INTEGER NOT NULL,"
	                                   "  secret_hash BLOB NOT NULL"
	                                   ");"
	                                   "CREATE INDEX api_keys_host ON api_keys (host);"
	                                   "PRAGMA user_version = 1;",
	                                   NULL, NULL, NULL),
	                      SQLITE_OK);
	sqlite3_stmt *insert = NULL;
	CU_ASSERT_EQUAL_FATAL(
	    sqlite3_prepare_v2(db,
	                       "INSERT INTO api_keys VALUES (?1, ?2, 'old key', 1600000000, ?3)",
	                       -1, &insert, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(insert, 1, key.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(insert, 2, HOST, -1, SQLITE_STATIC);
	sqlite3_bind_blob(insert, 3, hash, sizeof hash, SQLITE_STATIC);
	CU_ASSERT_EQUAL(sqlite3_step(insert), SQLITE_DONE);
	sqlite3_finalize(insert);
	sqlite3_close(db);

	struct keystore *store = open_store(&fx);
	CU_ASSERT_EQUAL(raw_int(&fx, "PRAGMA user_version"), SCHEMA_VERSION);
	struct api_key_match match;
	CU_ASSERT_EQUAL(verify_text(store, key.text, &match), KEYS_OK);
	CU_ASSERT_STRING_EQUAL(match.host, HOST);
	CU_ASSERT_EQUAL(match.limits.expires, 0);
	CU_ASSERT_EQUAL(match.limits.max_invites, 0);
	CU_ASSERT_EQUAL(match.limits.allow, KEYS_ALLOW_ACCOUNT);
	CU_ASSERT_EQUAL(match.window_start, 0);
	struct listing list = list_host(store, HOST);
	CU_ASSERT_EQUAL_FATAL(list.count, 1);
	CU_ASSERT_STRING_EQUAL(list.names[0], "old key");
	CU_ASSERT_EQUAL(list.created[0], 1600000000);
	CU_ASSERT_EQUAL(list.last_used[0], 0);
	CU_ASSERT_EQUAL(list.invites[0], 0);
	/* The new features work on the upgraded store. */
	const char *err = NULL;
	struct api_key_usage usage = {.id = key.id, .invites = 1, .last_used = 1700000000};
	CU_ASSERT_EQUAL(keystore_record_usage(store, &usage, 1, &err), KEYS_OK);
	CU_ASSERT_EQUAL(list_host(store, HOST).invites[0], 1);
	struct api_key_new limited;
	create_limited(store, "new", (struct api_key_limits){.expires = 1}, &limited);
	CU_ASSERT_EQUAL(verify_text(store, limited.text, &match), KEYS_DENIED);
	keystore_close(store);

	/* A second process opening it later finds it current. */
	store = open_store(&fx);
	CU_ASSERT_EQUAL(raw_int(&fx, "PRAGMA user_version"), SCHEMA_VERSION);
	CU_ASSERT_EQUAL(row_count(&fx), 2);
	keystore_close(store);
	keys_wipe(&key);
	keys_wipe(&limited);
	fixture_finish(&fx);
}

/* A store of the previous release (user_version 3, no permissions) upgrades
 * in place: its keys stay account-only, the verification index is rebuilt
 * with the new column, and the new permission works. */
static void test_migrate_from_v3(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct api_key_new key;
	keys_generate(&key);
	unsigned char hash[KEYS_HASH_BYTES];
	keys_hash_secret(key.secret, KEYS_SECRET_LEN, hash);

	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(fx.path, &db), SQLITE_OK);
	CU_ASSERT_EQUAL_FATAL(
	    sqlite3_exec(
	        db,
	        "PRAGMA journal_mode = WAL;"
	        "CREATE TABLE api_keys (id TEXT PRIMARY KEY NOT NULL, host TEXT NOT NULL,"
	        "  name TEXT NOT NULL, created INTEGER NOT NULL, secret_hash BLOB NOT NULL,"
	        "  expires INTEGER, max_invites INTEGER NOT NULL DEFAULT 0,"
	        "  period_s INTEGER NOT NULL DEFAULT 0, last_used INTEGER,"
	        "  invites INTEGER NOT NULL DEFAULT 0,"
	        "  window_start INTEGER NOT NULL DEFAULT 0,"
	        "  window_count INTEGER NOT NULL DEFAULT 0);"
	        "CREATE INDEX api_keys_host ON api_keys (host);"
	        "CREATE INDEX api_keys_verify ON api_keys (id, host, secret_hash, expires,"
	        "  max_invites, period_s, window_start, window_count);"
	        "PRAGMA user_version = 3;",
	        NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_stmt *insert = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db,
	                                         "INSERT INTO api_keys (id, host, name, created,"
	                                         " secret_hash, max_invites, period_s, invites)"
	                                         " VALUES (?1, ?2, 'v3 key', 1700000000, ?3, 5,"
	                                         " 3600, 42)",
	                                         -1, &insert, NULL),
	                      SQLITE_OK);
	sqlite3_bind_text(insert, 1, key.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(insert, 2, HOST, -1, SQLITE_STATIC);
	sqlite3_bind_blob(insert, 3, hash, sizeof hash, SQLITE_STATIC);
	CU_ASSERT_EQUAL(sqlite3_step(insert), SQLITE_DONE);
	sqlite3_finalize(insert);
	sqlite3_close(db);

	struct keystore *store = open_store(&fx);
	CU_ASSERT_EQUAL(raw_int(&fx, "PRAGMA user_version"), SCHEMA_VERSION);
	CU_ASSERT_EQUAL(raw_int(&fx, "SELECT group_concat(name) = 'id,host,secret_hash,expires,"
	                             "max_invites,period_s,window_start,window_count,permissions'"
	                             " FROM pragma_index_info('api_keys_verify')"),
	                1);
	struct api_key_match match;
	CU_ASSERT_EQUAL_FATAL(verify_text(store, key.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(match.limits.allow, KEYS_ALLOW_ACCOUNT);
	CU_ASSERT_EQUAL(match.limits.max_invites, 5);
	struct listing list = list_host(store, HOST);
	CU_ASSERT_EQUAL_FATAL(list.count, 1);
	CU_ASSERT_STRING_EQUAL(list.names[0], "v3 key");
	CU_ASSERT_EQUAL(list.invites[0], 42);
	CU_ASSERT_EQUAL(list.limits[0].allow, KEYS_ALLOW_ACCOUNT);
	struct api_key_new reset;
	create_limited(store, "reset", (struct api_key_limits){.allow = KEYS_ALLOW_ALL}, &reset);
	CU_ASSERT_EQUAL_FATAL(verify_text(store, reset.text, &match), KEYS_OK);
	CU_ASSERT_EQUAL(match.limits.allow, KEYS_ALLOW_ALL);
	keystore_close(store);
	keys_wipe(&key);
	keys_wipe(&reset);
	fixture_finish(&fx);
}

/* A failing step leaves the v1 store as it was. */
static void test_migration_failure(void)
{
	struct fixture fx;
	fixture_init(&fx);
	FILE *f = fopen(fx.path, "w"); /* raw_exec() opens, never creates */
	CU_ASSERT_FATAL(f != NULL && fclose(f) == 0);
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "CREATE TABLE api_keys (id TEXT PRIMARY KEY NOT NULL,"
	                                    " host TEXT NOT NULL, name TEXT NOT NULL,"
	                                    " created INTEGER NOT NULL, secret_hash BLOB NOT NULL,"
	                                    " invites INTEGER);"
	                                    "PRAGMA user_version = 1;"),
	                      SQLITE_OK);
	const char *err = NULL;
	CU_ASSERT_PTR_NULL(keystore_open(fx.path, &err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "duplicate column"));
	CU_ASSERT_EQUAL(raw_int(&fx, "PRAGMA user_version"), 1);
	CU_ASSERT_EQUAL(raw_int(&fx, "SELECT count(*) FROM pragma_table_info('api_keys')"), 6);
	fixture_finish(&fx);
}

static void test_malformed_limits(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *store = open_store(&fx);
	struct api_key_new key;
	struct api_key_match match;
	create_key(store, HOST, "tampered", &key);
	static const char *const sabotage[] = {
	    "UPDATE api_keys SET max_invites = -1",
	    "UPDATE api_keys SET max_invites = 0, period_s = 4294967296",
	    "UPDATE api_keys SET period_s = 0, expires = -5",
	    "UPDATE api_keys SET expires = NULL, window_count = -1",
	    "UPDATE api_keys SET window_count = 0, permissions = 0",
	    "UPDATE api_keys SET permissions = 4",
	    "UPDATE api_keys SET permissions = -1",
	};
	for (size_t i = 0; i < sizeof sabotage / sizeof sabotage[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, sabotage[i]), SQLITE_OK);
		const char *err = NULL;
		CU_ASSERT_EQUAL(
		    keystore_verify(store, key.text, strlen(key.text), NOW, &match, &err),
		    KEYS_ERROR);
		CU_ASSERT_PTR_NOT_NULL(err);
	}
	/* list reads the limits too (not the window) */
	const char *err = NULL;
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "UPDATE api_keys SET permissions = 1"), SQLITE_OK);
	CU_ASSERT_EQUAL(keystore_list(store, HOST, collect, &(struct listing){0}, &err), KEYS_OK);
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "UPDATE api_keys SET permissions = 7"), SQLITE_OK);
	CU_ASSERT_EQUAL(keystore_list(store, HOST, collect, &(struct listing){0}, &err),
	                KEYS_ERROR);
	CU_ASSERT_EQUAL_FATAL(raw_exec(&fx, "UPDATE api_keys SET permissions = 1, window_count = 0,"
	                                    " invites = -1"),
	                      SQLITE_OK);
	CU_ASSERT_EQUAL(keystore_list(store, HOST, collect, &(struct listing){0}, &err),
	                KEYS_ERROR);
	CU_ASSERT_PTR_NOT_NULL_FATAL(err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "malformed"));
	keys_wipe(&key);
	keystore_close(store);
	fixture_finish(&fx);
}

static const struct unit_test tests[] = {
    {"create, list, delete", test_create_list_delete},
    {"keys persist across close and reopen", test_persistence},
    {"verify: OK, wrong secret, unknown ID", test_verify},
    {"verify: malformed credentials are denied", test_verify_malformed},
    {"verify: malformed never matches a stored key", test_verify_malformed_never_matches},
    {"verify: a key of another host verifies", test_verify_other_host},
    {"changes through another handle are seen at once", test_cross_connection},
    {"verify is not blocked by a writer", test_verify_during_write},
    {"file mode is 0600 with umask 0", test_file_mode},
    {"delete of an unknown key: not found", test_delete_not_found},
    {"invalid hosts and names are refused", test_invalid_arguments},
    {"the file holds no secret", test_no_secret_in_file},
    {"schema version, WAL, table and index", test_schema},
    {"open in a missing directory fails", test_open_missing_directory},
    {"open of a corrupt file fails", test_open_corrupt},
    {"open of a newer schema fails", test_open_newer_schema},
    {"create failure wipes the key", test_create_failure},
    {"delete failure keeps the key", test_delete_failure},
    {"an ID collision is retried", test_id_collision_retried},
    {"endless ID collisions fail", test_id_collision_exhausted},
    {"store errors are errors, not denials", test_store_errors},
    {"a malformed record is an error", test_malformed_record},
    {"create fails after the busy timeout", test_create_busy},
    {"list order and early stop", test_list_order_and_stop},
    {"limits round-trip through list and verify", test_limits_round_trip},
    {"inconsistent limits are refused", test_invalid_limits},
    {"expiry: valid through its second, then denied like a wrong secret", test_expiry_boundary},
    {"import keeps ID, name and creation time; twice is KEYS_EXISTS", test_import},
    {"import refuses unusable IDs, secrets and names", test_import_invalid},
    {"import failure writes nothing", test_import_failure},
    {"usage: counts add, last_used moves forward, window as given", test_record_usage},
    {"usage of a deleted key is skipped", test_record_usage_deleted_key},
    {"usage batch is one transaction", test_record_usage_atomic},
    {"a version 1 store upgrades in place", test_migrate_from_v1},
    {"a version 3 store upgrades in place, account-only", test_migrate_from_v3},
    {"a failed migration changes nothing", test_migration_failure},
    {"out-of-range limits are a malformed record", test_malformed_limits},
    {"a replaced or removed store file is followed", test_replaced_file},
    {NULL, NULL},
};

UNIT_MAIN("store", tests)
