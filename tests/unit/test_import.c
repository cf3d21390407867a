#include "keys/keys.h"
#include "src/import.h"
#include "unit.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Made by fixtures/prosody/make-fixtures.sh with the real prosodyctl. */
#define FIXTURES SOURCE_ROOT "/tests/unit/fixtures/prosody"
#define INTERNAL FIXTURES "/internal"
#define SQL_DB   FIXTURES "/sql/prosody.sqlite"

/* ---- collecting what import_read() reports ---- */

#define MAX_ENTRIES 16

struct entry {
	bool has_id, has_token, has_name;
	char id[80];
	char token[160];
	char name[256];
	int64_t created;
	const char *problem;
};

struct entries {
	int count;
	int stop_after; /* 0: never */
	struct entry e[MAX_ENTRIES];
};

static void copy_opt(char *dst, size_t size, bool *has, const char *src)
{
	*has = src != NULL;
	snprintf(dst, size, "%s", src != NULL ? src : "");
}

static int collect(void *userdata, const struct prosody_key *key)
{
	struct entries *list = userdata;
	if (list->count < MAX_ENTRIES) {
		struct entry *e = &list->e[list->count];
		copy_opt(e->id, sizeof e->id, &e->has_id, key->id);
		copy_opt(e->token, sizeof e->token, &e->has_token, key->token);
		copy_opt(e->name, sizeof e->name, &e->has_name, key->name);
		e->created = key->created;
		e->problem = key->problem;
	}
	list->count++;
	return list->stop_after != 0 && list->count >= list->stop_after;
}

static const struct entry *find_entry(const struct entries *list, const char *id)
{
	for (int i = 0; i < list->count && i < MAX_ENTRIES; i++) {
		if (list->e[i].has_id && strcmp(list->e[i].id, id) == 0)
			return &list->e[i];
	}
	return NULL;
}

static int read_source(const char *path, const char *host, struct entries *list, char *err,
                       size_t err_size)
{
	struct import_source source;
	if (import_find(path, host, &source, err, err_size) < 0)
		return -1;
	return import_read(&source, host, collect, list, err, err_size);
}

/* ---- the tokens prosodyctl printed (fixtures/prosody/tokens.txt) ---- */

struct printed_key {
	char kind[16];
	char host[64];
	char id[80];
	char token[160];
	char name[128];
};

static int load_printed(struct printed_key *keys, int max)
{
	FILE *f = fopen(FIXTURES "/tokens.txt", "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	char line[512];
	int n = 0;
	while (fgets(line, sizeof line, f) != NULL && n < max) {
		if (line[0] == '#')
			continue;
		line[strcspn(line, "\n")] = '\0';
		char *fields[4] = {0};
		char *p = line;
		for (int i = 0; i < 4; i++) {
			fields[i] = p;
			p = i < 3 ? strchr(p, '\t') : NULL;
			if (i < 3) {
				CU_ASSERT_PTR_NOT_NULL_FATAL(p);
				*p++ = '\0';
			}
		}
		/* the name is the rest of the line: it may hold a tab itself */
		struct printed_key *k = &keys[n++];
		snprintf(k->kind, sizeof k->kind, "%s", fields[0]);
		snprintf(k->host, sizeof k->host, "%s", fields[1]);
		char *slash = strchr(fields[2], '/');
		CU_ASSERT_PTR_NOT_NULL_FATAL(slash);
		*slash = '\0';
		snprintf(k->id, sizeof k->id, "%s", fields[2]);
		snprintf(k->token, sizeof k->token, "%s", slash + 1);
		snprintf(k->name, sizeof k->name, "%s", fields[3]);
	}
	fclose(f);
	return n;
}

/* ---- temporary files ---- */

struct tmpdir {
	char dir[64];
	char file[128];
};

static void tmp_init(struct tmpdir *t)
{
	snprintf(t->dir, sizeof t->dir, "/tmp/test_import.XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(t->dir) != NULL);
	snprintf(t->file, sizeof t->file, "%s/invite_api_keys.dat", t->dir);
}

static void tmp_write(const struct tmpdir *t, const char *text, size_t len)
{
	FILE *f = fopen(t->file, "wb");
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_FATAL(fwrite(text, 1, len, f) == len);
	CU_ASSERT_FATAL(fclose(f) == 0);
}

static void tmp_finish(struct tmpdir *t)
{
	char path[128];
	static const char *const names[] = {"invite_api_keys.dat", "prosody.sqlite", "keys.sqlite",
	                                    "keys.sqlite-wal", "keys.sqlite-shm"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", t->dir, names[i]);
		unlink(path);
	}
	CU_ASSERT(rmdir(t->dir) == 0);
}

/* Parse text as an internal storage file. */
static int read_text(const char *text, struct entries *list, char *err, size_t err_size)
{
	struct tmpdir t;
	tmp_init(&t);
	tmp_write(&t, text, strlen(text));
	int n = read_source(t.file, "localhost", list, err, err_size);
	tmp_finish(&t);
	return n;
}

/* ---- tests ---- */

static void test_escape_host(void)
{
	char out[64];
	CU_ASSERT_EQUAL(import_escape_host("localhost", out, sizeof out), 0);
	CU_ASSERT_STRING_EQUAL(out, "localhost");
	CU_ASSERT_EQUAL(import_escape_host("example.com", out, sizeof out), 0);
	CU_ASSERT_STRING_EQUAL(out, "example%2ecom");
	CU_ASSERT_EQUAL(import_escape_host("b\xc3\xbc\x63her-x_y.example", out, sizeof out), 0);
	CU_ASSERT_STRING_EQUAL(out, "b%c3%bccher%2dx%5fy%2eexample");
	CU_ASSERT_EQUAL(import_escape_host("a.b", out, 6), 0); /* "a%2eb" and NUL */
	CU_ASSERT_EQUAL(import_escape_host("a.b", out, 5), -1);
	CU_ASSERT_EQUAL(import_escape_host("ab", out, 2), -1);
}

static void test_find(void)
{
	struct import_source source;
	char err[512];
	CU_ASSERT_EQUAL_FATAL(import_find(INTERNAL, "localhost", &source, err, sizeof err), 0);
	CU_ASSERT_EQUAL(source.kind, IMPORT_INTERNAL);
	CU_ASSERT_STRING_EQUAL(source.path, INTERNAL "/localhost/invite_api_keys.dat");
	CU_ASSERT_EQUAL_FATAL(import_find(INTERNAL, "example.com", &source, err, sizeof err), 0);
	CU_ASSERT_STRING_EQUAL(source.path, INTERNAL "/example%2ecom/invite_api_keys.dat");
	CU_ASSERT_EQUAL_FATAL(
	    import_find(INTERNAL "/localhost/invite_api_keys.dat", "x", &source, err, sizeof err),
	    0);
	CU_ASSERT_EQUAL(source.kind, IMPORT_INTERNAL);

	CU_ASSERT_EQUAL_FATAL(import_find(SQL_DB, "localhost", &source, err, sizeof err), 0);
	CU_ASSERT_EQUAL(source.kind, IMPORT_SQL);
	CU_ASSERT_EQUAL_FATAL(import_find(FIXTURES "/sql", "localhost", &source, err, sizeof err),
	                      0);
	CU_ASSERT_EQUAL(source.kind, IMPORT_SQL);
	CU_ASSERT_STRING_EQUAL(source.path, SQL_DB);

	/* A data_path without the host's file (and no database) is an error. */
	CU_ASSERT_EQUAL(import_find(INTERNAL, "nobody.example", &source, err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "nobody%2eexample/invite_api_keys.dat"));
	CU_ASSERT_EQUAL(import_find(FIXTURES "/missing", "localhost", &source, err, sizeof err),
	                -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "No such file or directory"));
	CU_ASSERT_EQUAL(import_find("/dev/null", "localhost", &source, err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "neither a file nor a directory"));
}

/* Every key prosodyctl printed is read back with its token and name. */
static void check_fixture(const char *kind, const char *path, const char *host)
{
	struct printed_key printed[16];
	int n_printed = load_printed(printed, 16);
	struct entries list = {0};
	char err[512] = "";
	int count = read_source(path, host, &list, err, sizeof err);
	CU_ASSERT_EQUAL(count, list.count);
	int expected = 0;
	for (int i = 0; i < n_printed; i++) {
		if (strcmp(printed[i].kind, kind) != 0 || strcmp(printed[i].host, host) != 0)
			continue;
		expected++;
		const struct entry *e = find_entry(&list, printed[i].id);
		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		CU_ASSERT_PTR_NULL(e->problem);
		CU_ASSERT_STRING_EQUAL(e->token, printed[i].token);
		CU_ASSERT_EQUAL(e->has_name, printed[i].name[0] != '\0');
		CU_ASSERT_STRING_EQUAL(e->name, printed[i].name);
		CU_ASSERT(e->created > 1600000000 && e->created < 4000000000);
	}
	CU_ASSERT(expected > 0);
	CU_ASSERT_EQUAL(list.count, expected);
}

static void test_internal_fixture(void)
{
	check_fixture("internal", INTERNAL, "localhost");
	check_fixture("internal", INTERNAL, "example.com");
	/* The file itself, given directly. */
	check_fixture("internal", INTERNAL "/localhost/invite_api_keys.dat", "localhost");
}

static void test_sql_fixture(void)
{
	check_fixture("sql", SQL_DB, "localhost");
	check_fixture("sql", SQL_DB, "example.com");
	check_fixture("sql", FIXTURES "/sql", "localhost");
	struct entries list = {0};
	char err[256];
	CU_ASSERT_EQUAL(read_source(SQL_DB, "nobody.example", &list, err, sizeof err), 0);
	CU_ASSERT_EQUAL(list.count, 0);
}

/* What the CLI's import does, then the Prosody key must verify as is. */
static void import_all(struct keystore *store, const char *path, const char *host, int *ok,
                       int *exists, int *invalid)
{
	struct entries list = {0};
	char err[256];
	CU_ASSERT_FATAL(read_source(path, host, &list, err, sizeof err) > 0);
	for (int i = 0; i < list.count; i++) {
		const struct entry *e = &list.e[i];
		const char *errstr = NULL;
		CU_ASSERT_PTR_NULL_FATAL(e->problem);
		switch (keystore_import(store, host, e->id, e->token,
		                        e->has_name ? e->name : "<unknown>", e->created, &errstr)) {
		case KEYS_OK:
			++*ok;
			break;
		case KEYS_EXISTS:
			++*exists;
			break;
		case KEYS_INVALID:
			CU_ASSERT_PTR_NOT_NULL(strstr(errstr, "control character"));
			++*invalid;
			break;
		default:
			CU_FAIL("store error");
		}
	}
}

static void test_imported_keys_verify(void)
{
	struct tmpdir t;
	tmp_init(&t);
	CU_ASSERT_FATAL(keys_init() == 0);
	char path[128];
	snprintf(path, sizeof path, "%s/keys.sqlite", t.dir);
	const char *errstr = NULL;
	struct keystore *store = keystore_open(path, &errstr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(store);

	int ok = 0, exists = 0, invalid = 0;
	import_all(store, INTERNAL, "localhost", &ok, &exists, &invalid);
	import_all(store, SQL_DB, "localhost", &ok, &exists, &invalid);
	import_all(store, SQL_DB, "example.com", &ok, &exists, &invalid);
	CU_ASSERT_EQUAL(ok, 7); /* the name with a tab is refused in each source */
	CU_ASSERT_EQUAL(invalid, 2);
	CU_ASSERT_EQUAL(exists, 0);
	ok = invalid = 0;
	import_all(store, INTERNAL, "localhost", &ok, &exists, &invalid); /* again: harmless */
	CU_ASSERT_EQUAL(ok, 0);
	CU_ASSERT_EQUAL(exists, 3);

	struct printed_key printed[16];
	int n = load_printed(printed, 16);
	int verified = 0;
	for (int i = 0; i < n; i++) {
		const struct printed_key *k = &printed[i];
		if (strcmp(k->kind, "internal") == 0 && strcmp(k->host, "localhost") != 0)
			continue; /* not imported above */
		char text[256];
		snprintf(text, sizeof text, "%s/%s", k->id, k->token);
		struct api_key_match match;
		enum keys_status status =
		    keystore_verify(store, text, strlen(text), time(NULL), &match, &errstr);
		if (strchr(k->name, '\t') != NULL) {
			CU_ASSERT_EQUAL(status, KEYS_DENIED);
			continue;
		}
		CU_ASSERT_EQUAL(status, KEYS_OK);
		CU_ASSERT_STRING_EQUAL(match.id, k->id);
		CU_ASSERT_STRING_EQUAL(match.host, k->host);
		verified++;
		/* A wrong token is still refused. */
		text[strlen(text) - 1] ^= 1;
		CU_ASSERT_EQUAL(
		    keystore_verify(store, text, strlen(text), time(NULL), &match, &errstr),
		    KEYS_DENIED);
	}
	CU_ASSERT_EQUAL(verified, 7);
	keystore_close(store);
	tmp_finish(&t);
}

static void test_lua_spellings(void)
{
	/* What util.serialization writes and what a hand edit may: all the same. */
	static const char text[] =
	    "return {\n"
	    "\t[\"k1\"] = { [\"token\"] = \"tok\\065\\x42\\\\\\\"\\'\\n\"; [\"name\"] = 'it''s';"
	    " created_at = 1700000000.9, allowed_methods = { GET = true, POST = false, 1, 2.5e3, "
	    "-7, (1/0), (-1/0), (0/0), nil } };\n"
	    "\t[\"k2\"] = { [\"token\"] = \"t2\", [\"name\"] = \"Schl\\195\\188ssel\", "
	    "[\"created_at\"] = -5 },\n"
	    "}  ;  \n";
	struct entries list = {0};
	char err[256] = "";
	/* 'it''s' is two strings in Lua, not one: refused. */
	CU_ASSERT_EQUAL(read_text(text, &list, err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 2"));

	static const char fixed[] =
	    "return {\n"
	    "\t[\"k1\"] = { [\"token\"] = \"tok\\065\\x42\\\\\\\"\\'\\n\"; [\"name\"] = 'it\\'s';"
	    " created_at = 1700000000.9, allowed_methods = { GET = true, POST = false, 1, 2.5e3, "
	    "-7, (1/0), (-1/0), (0/0), nil } };\n"
	    "\t[\"k2\"] = { [\"token\"] = \"t2\", [\"name\"] = \"Schl\\195\\188ssel\", "
	    "[\"created_at\"] = -5 },\n"
	    "}  ;  \n";
	memset(&list, 0, sizeof list);
	CU_ASSERT_EQUAL_FATAL(read_text(fixed, &list, err, sizeof err), 2);
	const struct entry *k1 = find_entry(&list, "k1");
	const struct entry *k2 = find_entry(&list, "k2");
	CU_ASSERT_PTR_NOT_NULL_FATAL(k1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k2);
	CU_ASSERT_STRING_EQUAL(k1->token, "tokAB\\\"'\n");
	CU_ASSERT_STRING_EQUAL(k1->name, "it's");
	CU_ASSERT_EQUAL(k1->created, 1700000000);
	CU_ASSERT_STRING_EQUAL(k2->name, "Schl\xc3\xbcssel");
	CU_ASSERT_EQUAL(k2->created, 0); /* negative: unknown */

	memset(&list, 0, sizeof list);
	CU_ASSERT_EQUAL(read_text("return {};\n", &list, err, sizeof err), 0);
	CU_ASSERT_EQUAL(read_text("return {}", &list, err, sizeof err), 0);
	CU_ASSERT_EQUAL(read_text("return nil;\n", &list, err, sizeof err), 0);
	CU_ASSERT_EQUAL(list.count, 0);
}

static void test_lua_refused(void)
{
	static const struct {
		const char *text;
		const char *reason;
	} cases[] = {
	    {"", "expected \"return\""},
	    {"{}", "expected \"return\""},
	    {"returnx {}", "expected \"return\""},
	    {"return", "end of file"},
	    {"return {} x", "after the table"},
	    {"return {};;", "after the table"},
	    {"return {} return {}", "after the table"},
	    {"return os.execute('rm -rf /')", "expected a value"},
	    {"return { a = b }", "expected a value"},
	    {"return { [\"a\"] = f() }", "expected a value"},
	    {"return { [\"a\"] = \"x\" .. \"y\" }", "expected ';' or '}'"},
	    {"return { [\"a\"] = 1 + 1 }", "expected ';' or '}'"},
	    {"return { [\"a\"] }", "expected '='"},
	    {"return { [\"a\" = 1 }", "expected ']'"},
	    {"return { [\"a\"] = 1", "expected ';' or '}'"},
	    {"return { [\"a\"] = 1;", "end of file"},
	    {"return { [\"a\"] = \"abc }", "unfinished string"},
	    {"return { [\"a\"] = \"ab\nc\" }", "unfinished string"},
	    {"return { [\"a\"] = \"ab\n\" }", "unfinished string"},
	    {"return { [\"a\"] = \"ab\r\" }", "unfinished string"},
	    {"return { [\"a\"] = \"\\256\" }", "above 255"},
	    {"return { [\"a\"] = \"\\z  x\" }", "unsupported escape"},
	    {"return { [\"a\"] = \"\\u{41}\" }", "unsupported escape"},
	    {"return { [\"a\"] = \"\\xg0\" }", "\\x escape"},
	    {"return { [\"a\"] = \"\\x4\" }", "\\x escape"},
	    {"return { [\"a\"] = \"\\", "unfinished string"},
	    {"return { [\"a\"] = [[long]] }", "expected a value"},
	    {"return { [\"a\"] = 0x10 }", "expected ';' or '}'"},
	    {"return { [\"a\"] = 1. }", "malformed number"},
	    {"return { [\"a\"] = 1e }", "malformed number"},
	    {"return { [\"a\"] = .5 }", "expected a value"},
	    {"return { [\"a\"] = - 5 }", "expected a value"},
	    {"return { [\"a\"] = (2/0) }", "expected a value"},
	    {"return { [\"a\"] = 1111111111111111111111111111111111111111111111111111111111111111 "
	     "}",
	     "number too long"},
	    {"-- comment\nreturn {}", "expected \"return\""},
	    {"return \"not a table\"", "not a table of keys"},
	    {"return 5", "not a table of keys"},
	    {"return true", "not a table of keys"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct entries list = {0};
		char err[256] = "";
		int n = read_text(cases[i].text, &list, err, sizeof err);
		CU_assertImplementation(n == -1 && list.count == 0, __LINE__, cases[i].text,
		                        __FILE__, "", CU_FALSE);
		CU_assertImplementation(strstr(err, cases[i].reason) != NULL, __LINE__, err,
		                        __FILE__, "", CU_FALSE);
	}
}

static void test_lua_depth_and_lines(void)
{
	char text[512];
	int n = snprintf(text, sizeof text, "return ");
	for (int i = 0; i < 40; i++)
		n += snprintf(text + n, sizeof text - (size_t)n, "{");
	struct entries list = {0};
	char err[256];
	CU_ASSERT_EQUAL(read_text(text, &list, err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "nested too deeply"));

	/* 32 levels are fine. */
	n = snprintf(text, sizeof text, "return ");
	for (int i = 0; i < 32; i++)
		n += snprintf(text + n, sizeof text - (size_t)n, "{");
	for (int i = 0; i < 32; i++)
		n += snprintf(text + n, sizeof text - (size_t)n, "}");
	CU_ASSERT_EQUAL(read_text(text, &list, err, sizeof err), 1); /* one positional entry */
	CU_ASSERT_PTR_NOT_NULL(list.e[0].problem);

	CU_ASSERT_EQUAL(
	    read_text("return {\n\n\t[\"a\"] = {\n\t\t[\"token\"] = 1 +\n", &list, err, sizeof err),
	    -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 4"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "invite_api_keys.dat"));
}

static void test_entry_problems(void)
{
	static const char text[] =
	    "return {\n"
	    "\t[\"good\"] = { [\"token\"] = \"abcdefghijklmnopqrstuvwxyz\" };\n"
	    "\t[\"scalar\"] = \"just a string\";\n"
	    "\t[\"notoken\"] = { [\"name\"] = \"n\" };\n"
	    "\t[\"numtoken\"] = { [\"token\"] = 12345 };\n"
	    "\t[\"numname\"] = { [\"token\"] = \"abcdefghijklmnopqrstuvwxyz\", [\"name\"] = {} };\n"
	    "\t[\"nul\"] = { [\"token\"] = \"abc\\0def\" };\n"
	    "\t[7] = { [\"token\"] = \"abcdefghijklmnopqrstuvwxyz\" };\n"
	    "\t[true] = { [\"token\"] = \"abcdefghijklmnopqrstuvwxyz\" };\n"
	    "\t{ [\"token\"] = \"abcdefghijklmnopqrstuvwxyz\" };\n"
	    "\t[\"nu\\0l\"] = { [\"token\"] = \"abcdefghijklmnopqrstuvwxyz\" };\n"
	    "};\n";
	struct entries list = {0};
	char err[256];
	CU_ASSERT_EQUAL_FATAL(read_text(text, &list, err, sizeof err), 10);
	static const struct {
		const char *id;
		const char *problem; /* NULL: usable */
	} expect[] = {
	    {"good", NULL},
	    {"scalar", "not a key record"},
	    {"notoken", "no token"},
	    {"numtoken", "token is not a string"},
	    {"numname", "name is not a string"},
	    {"nul", "token is not a string"},
	};
	for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
		const struct entry *e = find_entry(&list, expect[i].id);
		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		bool as_expected =
		    expect[i].problem == NULL
		        ? e->problem == NULL
		        : e->problem != NULL && strstr(e->problem, expect[i].problem);
		CU_assertImplementation(as_expected, __LINE__, expect[i].id, __FILE__, "",
		                        CU_FALSE);
	}
	for (int i = 6; i < 10; i++) {
		CU_ASSERT_FALSE(list.e[i].has_id);
		CU_ASSERT_PTR_NOT_NULL(list.e[i].problem);
	}

	/* The callback can stop the walk. */
	struct entries stopped = {.stop_after = 3};
	CU_ASSERT_EQUAL(read_text(text, &stopped, err, sizeof err), 3);
	CU_ASSERT_EQUAL(stopped.count, 3);
}

/* mod_storage_sql's table, as the fixture has it. */
#define PROSODY_TABLE                                                                              \
	"CREATE TABLE prosody (host TEXT NOT NULL, user TEXT NOT NULL, store TEXT NOT NULL,"       \
	" key TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL);"

/* A database made by running sql, e.g. Prosody's table and rows a real
 * server would not write. */
static void make_db(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "\n  make_db: %s\n", msg);
		CU_FAIL("make_db");
	}
	sqlite3_free(msg);
	CU_ASSERT_EQUAL(sqlite3_close(db), SQLITE_OK);
}

static void test_sql_problems(void)
{
	struct tmpdir t;
	tmp_init(&t);
	char path[128];
	snprintf(path, sizeof path, "%s/prosody.sqlite", t.dir);
	make_db(path, PROSODY_TABLE
	        "INSERT INTO prosody VALUES"
	        " ('h', '', 'invite_api_keys', 'good', 'json', '{\"token\":\"t\",\"name\":\"n\","
	        "\"created_at\":1700000000}'),"
	        " ('h', '', 'invite_api_keys', 'str', 'string', 'hello'),"
	        " ('h', '', 'invite_api_keys', 'bad', 'json', '{not json'),"
	        " ('h', '', 'invite_api_keys', 'arr', 'json', '[1,2]'),"
	        " ('h', '', 'invite_api_keys', 'notoken', 'json', '{\"name\":\"n\"}'),"
	        " ('h', '', 'invite_api_keys', 'numname', 'json', '{\"token\":\"t\",\"name\":5}'),"
	        " ('h', '', 'invite_api_keys', 'dup', 'json', '{\"token\":\"t\",\"token\":\"u\"}'),"
	        " ('h', '', 'invite_api_keys', '', 'json', '{}'),"
	        " ('h', 'someone', 'invite_api_keys', 'user', 'json', '{\"token\":\"t\"}'),"
	        " ('h', '', 'other_store', 'other', 'json', '{\"token\":\"t\"}'),"
	        " ('other.host', '', 'invite_api_keys', 'foreign', 'json', '{\"token\":\"t\"}');");
	struct entries list = {0};
	char err[256];
	CU_ASSERT_EQUAL_FATAL(read_source(path, "h", &list, err, sizeof err), 8);
	static const struct {
		const char *id;
		const char *problem;
	} expect[] = {
	    {"good", NULL},
	    {"str", "not a key record"},
	    {"bad", "not valid JSON"},
	    {"arr", "not a key record"},
	    {"notoken", "no token"},
	    {"numname", "name is not a string"},
	    {"dup", "not valid JSON"},
	};
	for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
		const struct entry *e = find_entry(&list, expect[i].id);
		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		bool as_expected =
		    expect[i].problem == NULL
		        ? e->problem == NULL
		        : e->problem != NULL && strstr(e->problem, expect[i].problem);
		CU_assertImplementation(as_expected, __LINE__, expect[i].id, __FILE__, "",
		                        CU_FALSE);
	}
	const struct entry *good = find_entry(&list, "good");
	CU_ASSERT_EQUAL(good->created, 1700000000);
	CU_ASSERT_STRING_EQUAL(good->name, "n");
	CU_ASSERT_FALSE(list.e[7].has_id); /* the '' row */
	CU_ASSERT_PTR_NULL(find_entry(&list, "user"));
	CU_ASSERT_PTR_NULL(find_entry(&list, "other"));
	CU_ASSERT_PTR_NULL(find_entry(&list, "foreign"));

	struct entries stopped = {.stop_after = 2};
	CU_ASSERT_EQUAL(read_source(path, "h", &stopped, err, sizeof err), 2);
	unlink(path);

	/* An SQLite file that is not Prosody's. */
	make_db(path, "CREATE TABLE something (x);");
	CU_ASSERT_EQUAL(read_source(path, "h", &list, err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a Prosody SQL database"));
	unlink(path);

	/* A file that claims to be SQLite but is not. */
	snprintf(t.file, sizeof t.file, "%s", path);
	tmp_write(&t, "SQLite format 3\0garbage garbage garbage", 40);
	memset(&list, 0, sizeof list);
	CU_ASSERT_EQUAL(read_source(path, "h", &list, err, sizeof err), -1);
	CU_ASSERT_EQUAL(list.count, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	tmp_finish(&t);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static long max_rss_kib(void)
{
	struct rusage usage;
	CU_ASSERT_EQUAL_FATAL(getrusage(RUSAGE_SELF, &usage), 0);
	return usage.ru_maxrss;
}

/* Build a database from sql in a temporary directory and read host "h" from
 * it with a time limit (0: import_find()'s): it must fail within limit_ms
 * with a reason holding want, without a single callback. */
static void check_refused(const char *sql, unsigned time_limit_ms, const char *want,
                          unsigned limit_ms)
{
	struct tmpdir t;
	tmp_init(&t);
	char path[128];
	snprintf(path, sizeof path, "%s/prosody.sqlite", t.dir);
	make_db(path, sql);
	struct import_source source;
	char err[512] = "";
	CU_ASSERT_EQUAL_FATAL(import_find(path, "h", &source, err, sizeof err), 0);
	CU_ASSERT_EQUAL(source.kind, IMPORT_SQL);
	CU_ASSERT_EQUAL(source.time_limit_ms, IMPORT_TIME_LIMIT_MS);
	if (time_limit_ms != 0)
		source.time_limit_ms = time_limit_ms;
	struct entries list = {0};
	uint64_t start = now_ms();
	int n = import_read(&source, "h", collect, &list, err, sizeof err);
	uint64_t took = now_ms() - start;
	CU_assertImplementation(n == -1 && list.count == 0, __LINE__, sql, __FILE__, "", CU_FALSE);
	CU_assertImplementation(strstr(err, want) != NULL && strstr(err, path) != NULL, __LINE__,
	                        err, __FILE__, "", CU_FALSE);
	CU_assertImplementation(took < limit_ms, __LINE__, "bounded in time", __FILE__, "",
	                        CU_FALSE);
	unlink(path);
	tmp_finish(&t);
}

/* Endless, huge or enormous rows from a view or a virtual table: the file is
 * refused before any row is read, at once and in little memory. */
static void test_sql_hostile_schema(void)
{
#define PROSODY_VIEW   "CREATE VIEW prosody(host, user, store, key, type, value) AS "
#define COUNTER(limit) "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n" limit ") "
#define KEY_ROWS       "SELECT 'h', '', 'invite_api_keys', 'k' || i, 'json', '{\"token\":\"t\"}' FROM n;"
	static const struct {
		const char *sql;
		const char *want;
	} cases[] = {
	    {PROSODY_VIEW COUNTER("") KEY_ROWS, "prosody is a view"},
	    {PROSODY_VIEW COUNTER(" LIMIT 100000000") KEY_ROWS, "prosody is a view"},
	    {PROSODY_VIEW "SELECT 'h', '', 'invite_api_keys', 'k', 'json', zeroblob(900000000);",
	     "prosody is a view"},
	    /* sqlite_schema calls this one a table; it reads the endless view */
	    {"CREATE VIEW v(host, user, store, key, type, value) AS " COUNTER("") KEY_ROWS
	     "CREATE VIRTUAL TABLE prosody USING fts5(host, user, store, key, type, value,"
	     " content='v');",
	     "prosody is a virtual table"},
	    {"CREATE VIEW \"PROSODY\" AS SELECT 1 AS x;", "prosody is a view"},
	    {"CREATE TABLE other (x);", "no table prosody"},
	};
#undef PROSODY_VIEW
#undef COUNTER
#undef KEY_ROWS
	long rss = max_rss_kib();
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (strstr(cases[i].sql, "fts5") != NULL &&
		    !sqlite3_compileoption_used("ENABLE_FTS5"))
			continue;
		check_refused(cases[i].sql, 0, cases[i].want, 2000);
	}
	CU_ASSERT(max_rss_kib() - rss < 64 * 1024);
}

/* A real table can still be too much: values over 1 MiB, more than 16 MiB in
 * all, a read that takes too long, columns that are missing. */
static void test_sql_bounds(void)
{
#define GOOD_ROW "('h', '', 'invite_api_keys', 'good', 'json', '{\"token\":\"t\"}')"
	check_refused(PROSODY_TABLE "INSERT INTO prosody VALUES " GOOD_ROW ","
	                            " ('h', '', 'invite_api_keys', 'big', 'json',"
	                            " '{\"token\":\"' || hex(zeroblob(600000)) || '\"}');",
	              0, "a value is larger than 1 MiB", 5000);
	/* 18 values of just under 1 MiB */
	check_refused(PROSODY_TABLE "INSERT INTO prosody VALUES " GOOD_ROW ";"
	                            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
	                            " LIMIT 18) INSERT INTO prosody SELECT 'h', '', "
	                            "'invite_api_keys', 'k' || i, 'json',"
	                            " '{\"token\":\"' || hex(zeroblob(500000)) || '\"}' FROM n;",
	              0, "the keys take more than 16 MiB", 5000);
	/* columns SQLite would read as the strings "user" and "type" if quoted */
	check_refused("CREATE TABLE prosody (host, store, key, type, value);"
	              "INSERT INTO prosody VALUES ('h', 'invite_api_keys', 'k', 'json', '{}');",
	              0, "no such column: user (not a Prosody SQL database?)", 2000);
	check_refused("CREATE TABLE prosody (host, user, store, key, value);"
	              "INSERT INTO prosody VALUES ('h', '', 'invite_api_keys', 'k', '{}');",
	              0, "no such column: type", 2000);
	check_refused("CREATE TABLE prosody (host, user, store, key, type, value,"
	              " PRIMARY KEY (host, user, store, key)) WITHOUT ROWID;",
	              0, "no such column: rowid", 2000);
#undef GOOD_ROW

	/* 100000 keys read in time; given a millisecond, none reaches the callback */
	static const char many[] =
	    PROSODY_TABLE "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
	                  " LIMIT 100000) INSERT INTO prosody SELECT 'h', '', 'invite_api_keys',"
	                  " 'k' || i, 'json', '{\"token\":\"abcdefghijklmnopqrstuvwxyz\"}' FROM n;";
	struct tmpdir t;
	tmp_init(&t);
	char path[128], err[512];
	snprintf(path, sizeof path, "%s/prosody.sqlite", t.dir);
	make_db(path, many);
	struct entries list = {0};
	CU_ASSERT_EQUAL(read_source(path, "h", &list, err, sizeof err), 100000);
	CU_ASSERT_EQUAL(list.count, 100000);
	CU_ASSERT_STRING_EQUAL(list.e[0].id, "k1");
	CU_ASSERT_PTR_NULL(list.e[0].problem);
	unlink(path);
	tmp_finish(&t);
	check_refused(many, 1, "gave up after 0.001 s", 2000);
}

/* A key must be text as a whole: X'41424300444546' is not "ABC". */
static void test_sql_nul_bytes(void)
{
	struct tmpdir t;
	tmp_init(&t);
	char path[128];
	snprintf(path, sizeof path, "%s/prosody.sqlite", t.dir);
	make_db(path,
	        PROSODY_TABLE "INSERT INTO prosody VALUES"
	                      " ('h', '', 'invite_api_keys', X'41424300444546', 'json',"
	                      " '{\"token\":\"abcdefghijklmnopqrstuvwxyz\"}'),"
	                      " ('h', '', 'invite_api_keys', CAST(X'414243' AS BLOB), 'json',"
	                      " '{\"token\":\"abcdefghijklmnopqrstuvwxyz\"}'),"
	                      " ('h', '', 'invite_api_keys', 'nulvalue', 'json',"
	                      " '{\"token\":\"abcdefghijklmnopqrstuvwxyz\"}' || char(0) || 'x'),"
	                      " ('h', '', 'invite_api_keys', 'nultype', 'json' || char(0) || 'x',"
	                      " '{\"token\":\"abcdefghijklmnopqrstuvwxyz\"}'),"
	                      " ('h', '', 'invite_api_keys', 'good', 'json',"
	                      " '{\"token\":\"abcdefghijklmnopqrstuvwxyz\"}');");
	struct entries list = {0};
	char err[256] = "";
	CU_ASSERT_EQUAL_FATAL(read_source(path, "h", &list, err, sizeof err), 5);
	CU_ASSERT_FALSE(list.e[0].has_id);
	CU_ASSERT_PTR_NOT_NULL(list.e[0].problem && strstr(list.e[0].problem, "NUL byte"));
	/* a blob without NUL is the same bytes as text */
	CU_ASSERT_STRING_EQUAL(list.e[1].id, "ABC");
	CU_ASSERT_PTR_NULL(list.e[1].problem);
	CU_ASSERT_PTR_NOT_NULL(list.e[2].problem && strstr(list.e[2].problem, "not valid JSON"));
	CU_ASSERT_PTR_NOT_NULL(list.e[3].problem && strstr(list.e[3].problem, "not a key record"));
	CU_ASSERT_STRING_EQUAL(list.e[4].id, "good");
	CU_ASSERT_PTR_NULL(list.e[4].problem);
	unlink(path);
	tmp_finish(&t);
}

static void test_unreadable(void)
{
	struct tmpdir t;
	tmp_init(&t);
	tmp_write(&t, "return {}", 9);
	struct import_source source;
	char err[256];
	CU_ASSERT_EQUAL_FATAL(import_find(t.file, "h", &source, err, sizeof err), 0);
	unlink(t.file); /* gone between finding and reading */
	CU_ASSERT_EQUAL(import_read(&source, "h", collect, &(struct entries){0}, err, sizeof err),
	                -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "No such file or directory"));

	/* A store of keys is small: a huge file is refused before it is read. */
	tmp_write(&t, "return {}", 9);
	CU_ASSERT_EQUAL_FATAL(truncate(t.file, 17 << 20), 0); /* sparse */
	CU_ASSERT_EQUAL(import_read(&source, "h", collect, &(struct entries){0}, err, sizeof err),
	                -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than 16 MiB"));
	tmp_finish(&t);
}

static const struct unit_test tests[] = {
    {"host names are escaped like Prosody's datamanager", test_escape_host},
    {"find: data_path, store file, database", test_find},
    {"the internal storage fixture reads back", test_internal_fixture},
    {"the SQL fixture reads back", test_sql_fixture},
    {"imported Prosody keys verify with their tokens", test_imported_keys_verify},
    {"Lua: the spellings of util.serialization", test_lua_spellings},
    {"Lua: anything else is refused", test_lua_refused},
    {"Lua: nesting limit and line numbers", test_lua_depth_and_lines},
    {"entries that are no usable key", test_entry_problems},
    {"SQL: odd rows and foreign databases", test_sql_problems},
    {"SQL: views and virtual tables are refused at once", test_sql_hostile_schema},
    {"SQL: size, time and columns are bounded", test_sql_bounds},
    {"SQL: keys and values with NUL bytes", test_sql_nul_bytes},
    {"a file gone before reading, a file too large", test_unreadable},
    {NULL, NULL},
};

UNIT_MAIN("import", tests)
