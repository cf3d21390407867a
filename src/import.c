#include "import.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define STORE_NAME   "invite_api_keys"
#define SQL_FILE     "prosody.sqlite" /* mod_storage_sql's default database name */
#define FILE_MAX     (16 << 20)       /* a store of keys is a few KiB */
#define DEPTH_MAX    32               /* keys nest three deep */
#define NOT_A_RECORD "not a key record (no table)"

static const char sqlite_magic[16] = "SQLite format 3";

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

/* ---- finding the source ---- */

int import_escape_host(const char *host, char *out, size_t out_size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)host; *p != '\0'; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		             (*p >= '0' && *p <= '9');
		if (n + (plain ? 1 : 3) >= out_size)
			return -1;
		if (plain) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	if (n >= out_size)
		return -1;
	out[n] = '\0';
	return 0;
}

/* False with errno set when stat() fails (EACCES: a directory on the way is
 * not readable), false with errno 0 when it is not a regular file. */
static bool is_regular(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return false;
	errno = 0;
	return S_ISREG(st.st_mode);
}

/* An SQLite database starts with its magic string; anything else is taken
 * for a Lua table literal. -1 if the file cannot be read. */
static int detect_kind(const char *path, enum import_kind *kind, char *err, size_t err_size)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		set_err(err, err_size, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	char head[sizeof sqlite_magic];
	size_t n = fread(head, 1, sizeof head, f);
	bool failed = ferror(f);
	fclose(f);
	if (failed) {
		set_err(err, err_size, "cannot read %s", path);
		return -1;
	}
	*kind = n == sizeof head && memcmp(head, sqlite_magic, sizeof head) == 0 ? IMPORT_SQL
	                                                                         : IMPORT_INTERNAL;
	return 0;
}

static int set_path(struct import_source *source, const char *dir, const char *escaped_host)
{
	int n = escaped_host != NULL
	            ? snprintf(source->path, sizeof source->path, "%s/%s/" STORE_NAME ".dat", dir,
	                       escaped_host)
	            : snprintf(source->path, sizeof source->path, "%s/" SQL_FILE, dir);
	return n > 0 && (size_t)n < sizeof source->path ? 0 : -1;
}

/* In a data_path, internal storage has a file per host and store; with
 * mod_storage_sql and its default name, the database sits there instead. */
static int find_in_directory(const char *dir, const char *host, struct import_source *source,
                             char *err, size_t err_size)
{
	char escaped[3 * 1024];
	if (import_escape_host(host, escaped, sizeof escaped) < 0 ||
	    set_path(source, dir, escaped) < 0) {
		set_err(err, err_size, "host or path too long");
		return -1;
	}
	if (is_regular(source->path)) {
		source->kind = IMPORT_INTERNAL;
		return 0;
	}
	if (errno == EACCES)
		goto err_access;
	if (set_path(source, dir, NULL) == 0 && is_regular(source->path)) {
		source->kind = IMPORT_SQL;
		return 0;
	}
	if (errno == EACCES)
		goto err_access;
	set_err(err, err_size,
	        "%s has neither %s/" STORE_NAME ".dat nor " SQL_FILE
	        " (is it Prosody's data_path, and has %s any API keys?)",
	        dir, escaped, host);
	return -1;

err_access:
	set_err(err, err_size,
	        "cannot read %s: %s (run import as root, or as a user who can read Prosody's data)",
	        dir, strerror(EACCES));
	return -1;
}

int import_find(const char *path, const char *host, struct import_source *source, char *err,
                size_t err_size)
{
	*source = (struct import_source){.time_limit_ms = IMPORT_TIME_LIMIT_MS};
	struct stat st;
	if (stat(path, &st) < 0) {
		set_err(err, err_size, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return find_in_directory(path, host, source, err, err_size);
	if (!S_ISREG(st.st_mode)) {
		set_err(err, err_size, "%s is neither a file nor a directory", path);
		return -1;
	}
	if (strlen(path) >= sizeof source->path) {
		set_err(err, err_size, "path too long");
		return -1;
	}
	strcpy(source->path, path);
	return detect_kind(path, &source->kind, err, err_size);
}

/* ---- a strict parser for what util.serialization writes ---- */

/*
 * Prosody's datamanager writes "return " .. serialize(data) .. ";\n". The
 * serializer emits tables with ["key"] = value; items, strings in double
 * quotes with \a \b \f \n \r \t \v \\ \" \' and \ddd escapes (every byte
 * outside printable ASCII is escaped), integers with %d, floats with %.18g
 * or (1/0), (-1/0), (0/0), and true, false, nil. We accept that, plus the
 * other spellings of the same values a hand edit might produce (single
 * quotes, Name = value, positional items, ',' separators, \xXX), and refuse
 * everything else: the file is data, never code.
 */

enum lua_type { LUA_NIL, LUA_BOOLEAN, LUA_NUMBER, LUA_STRING, LUA_TABLE };

struct lua_field;

struct lua_value {
	enum lua_type type;
	union {
		bool boolean;
		double number;
		struct {
			char *bytes; /* NUL-terminated; len excludes the NUL */
			size_t len;
		} string;
		struct {
			struct lua_field *fields;
			size_t n, cap;
		} table;
	};
};

struct lua_field {
	struct lua_value key, value;
};

struct parser {
	const char *p, *end;
	int line;
	int depth;
	const char *error; /* static text, set once */
};

static void value_free(struct lua_value *v)
{
	if (v->type == LUA_STRING) {
		explicit_bzero(v->string.bytes, v->string.len); /* it may be a token */
		free(v->string.bytes);
	} else if (v->type == LUA_TABLE) {
		for (size_t i = 0; i < v->table.n; i++) {
			value_free(&v->table.fields[i].key);
			value_free(&v->table.fields[i].value);
		}
		free(v->table.fields);
	}
	v->type = LUA_NIL;
}

static int fail(struct parser *ps, const char *why)
{
	if (ps->error == NULL)
		ps->error = why;
	return -1;
}

static void skip_space(struct parser *ps)
{
	for (; ps->p < ps->end; ps->p++) {
		if (*ps->p == '\n')
			ps->line++;
		else if (*ps->p != ' ' && *ps->p != '\t' && *ps->p != '\r')
			break;
	}
}

static bool accept(struct parser *ps, char c)
{
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == c) {
		ps->p++;
		return true;
	}
	return false;
}

static bool is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t name_len(const struct parser *ps)
{
	size_t n = 0;
	if (ps->p < ps->end && is_name_start(*ps->p))
		for (n = 1; ps->p + n < ps->end && (is_name_start(ps->p[n]) || is_digit(ps->p[n]));
		     n++)
			;
	return n;
}

static bool keyword(struct parser *ps, const char *word)
{
	size_t len = strlen(word);
	if (name_len(ps) != len || memcmp(ps->p, word, len) != 0)
		return false;
	ps->p += len;
	return true;
}

static int hex_digit(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte an escape stands for (ps->p is just after the backslash), or -1. */
static int escape(struct parser *ps)
{
	static const char simple[] = "a\ab\bf\fn\nr\rt\tv\v\\\\\"\"''";
	if (ps->p >= ps->end)
		return fail(ps, "unfinished string");
	char c = *ps->p++;
	for (size_t i = 0; simple[i] != '\0'; i += 2) {
		if (simple[i] == c)
			return (unsigned char)simple[i + 1];
	}
	if (c == 'x') {
		int hi = ps->end - ps->p >= 2 ? hex_digit(ps->p[0]) : -1;
		int lo = hi >= 0 ? hex_digit(ps->p[1]) : -1;
		if (lo < 0)
			return fail(ps, "bad \\x escape in a string");
		ps->p += 2;
		return hi * 16 + lo;
	}
	if (!is_digit(c))
		return fail(ps, "unsupported escape in a string");
	int value = c - '0';
	for (int i = 0; i < 2 && ps->p < ps->end && is_digit(*ps->p); i++)
		value = value * 10 + (*ps->p++ - '0');
	return value <= 255 ? value : fail(ps, "decimal escape above 255 in a string");
}

/* Source bytes up to the closing quote (or the end of the line): the decoded
 * string is never longer. */
static size_t quoted_len(const struct parser *ps, char quote)
{
	const char *q = ps->p;
	while (q < ps->end && *q != quote && *q != '\n')
		q += *q == '\\' && q + 1 < ps->end ? 2 : 1;
	return (size_t)(q - ps->p);
}

static int parse_string(struct parser *ps, struct lua_value *out)
{
	char quote = *ps->p++;
	char *bytes = malloc(quoted_len(ps, quote) + 1);
	size_t len = 0;
	if (bytes == NULL)
		return fail(ps, "out of memory");
	bool closed = false;
	while (ps->p < ps->end) {
		char c = *ps->p++;
		int byte = (unsigned char)c;
		if (c == quote) {
			closed = true;
			break;
		}
		if (c == '\n' || c == '\r')
			break; /* Lua forbids a raw line break in a quoted string */
		if (c == '\\' && (byte = escape(ps)) < 0)
			break;
		bytes[len++] = (char)byte;
	}
	if (!closed) {
		explicit_bzero(bytes, len);
		free(bytes);
		return fail(ps, "unfinished string"); /* unless escape() said why */
	}
	bytes[len] = '\0';
	out->type = LUA_STRING;
	out->string.bytes = bytes;
	out->string.len = len;
	return 0;
}

/* [-]digits[.digits][(e|E)[+|-]digits], as %d and %.18g write them. */
static int parse_number(struct parser *ps, struct lua_value *out)
{
	const char *start = ps->p, *q = ps->p;
	if (q < ps->end && *q == '-')
		q++;
	const char *digits = q;
	while (q < ps->end && is_digit(*q))
		q++;
	if (q == digits)
		return fail(ps, "expected a value");
	if (q < ps->end && *q == '.') {
		const char *fraction = ++q;
		while (q < ps->end && is_digit(*q))
			q++;
		if (q == fraction)
			return fail(ps, "malformed number");
	}
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		if (++q < ps->end && (*q == '+' || *q == '-'))
			q++;
		const char *exponent = q;
		while (q < ps->end && is_digit(*q))
			q++;
		if (q == exponent)
			return fail(ps, "malformed number");
	}
	char text[64];
	if ((size_t)(q - start) >= sizeof text)
		return fail(ps, "number too long");
	memcpy(text, start, (size_t)(q - start));
	text[q - start] = '\0';
	out->type = LUA_NUMBER;
	out->number = strtod(text, NULL); /* validated above; the C locale is in effect */
	ps->p = q;
	return 0;
}

/* (1/0), (-1/0) and (0/0): infinities and NaN. */
static int parse_special_number(struct parser *ps, struct lua_value *out)
{
	static const struct {
		const char *text;
		double value;
	} specials[] = {{"(1/0)", HUGE_VAL}, {"(-1/0)", -HUGE_VAL}, {"(0/0)", NAN}};
	for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
		size_t len = strlen(specials[i].text);
		if ((size_t)(ps->end - ps->p) >= len && memcmp(ps->p, specials[i].text, len) == 0) {
			ps->p += len;
			out->type = LUA_NUMBER;
			out->number = specials[i].value;
			return 0;
		}
	}
	return fail(ps, "expected a value");
}

static int parse_value(struct parser *ps, struct lua_value *out);

static int add_field(struct parser *ps, struct lua_value *table, struct lua_field *field)
{
	if (table->table.n == table->table.cap) {
		size_t cap = table->table.cap == 0 ? 8 : table->table.cap * 2;
		struct lua_field *fields = realloc(table->table.fields, cap * sizeof *fields);
		if (fields == NULL)
			return fail(ps, "out of memory");
		table->table.fields = fields;
		table->table.cap = cap;
	}
	table->table.fields[table->table.n++] = *field;
	return 0;
}

static bool is_value_keyword(const struct parser *ps, size_t len)
{
	static const char *const words[] = {"true", "false", "nil"};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		if (strlen(words[i]) == len && memcmp(ps->p, words[i], len) == 0)
			return true;
	}
	return false;
}

/* One item: [key] = value, Name = value, or a positional value. */
static int parse_field(struct parser *ps, struct lua_field *field, double *next_index)
{
	*field = (struct lua_field){0};
	if (accept(ps, '[')) {
		if (parse_value(ps, &field->key) < 0)
			return -1;
		if (!accept(ps, ']'))
			return fail(ps, "expected ']'");
		if (!accept(ps, '='))
			return fail(ps, "expected '='");
		return parse_value(ps, &field->value);
	}
	size_t len = name_len(ps); /* accept() skipped the space */
	if (len > 0 && !is_value_keyword(ps, len)) {
		char *name = strndup(ps->p, len);
		if (name == NULL)
			return fail(ps, "out of memory");
		field->key = (struct lua_value){.type = LUA_STRING, .string = {name, len}};
		ps->p += len;
		if (!accept(ps, '='))
			return fail(ps, "expected '='");
		return parse_value(ps, &field->value);
	}
	field->key = (struct lua_value){.type = LUA_NUMBER, .number = (*next_index)++};
	return parse_value(ps, &field->value);
}

static int parse_table(struct parser *ps, struct lua_value *out)
{
	ps->p++; /* '{' */
	out->type = LUA_TABLE;
	out->table.fields = NULL;
	out->table.n = out->table.cap = 0;
	if (++ps->depth > DEPTH_MAX)
		return fail(ps, "tables nested too deeply");
	double next_index = 1;
	while (!accept(ps, '}')) {
		struct lua_field field;
		int rc = parse_field(ps, &field, &next_index);
		if (rc == 0)
			rc = add_field(ps, out, &field);
		if (rc < 0) {
			value_free(&field.key);
			value_free(&field.value);
			return -1;
		}
		if (!accept(ps, ';') && !accept(ps, ',')) {
			if (!accept(ps, '}'))
				return fail(ps, "expected ';' or '}'");
			break;
		}
	}
	ps->depth--;
	return 0;
}

static int parse_value(struct parser *ps, struct lua_value *out)
{
	*out = (struct lua_value){.type = LUA_NIL};
	skip_space(ps);
	if (ps->p >= ps->end)
		return fail(ps, "unexpected end of file");
	char c = *ps->p;
	if (c == '{')
		return parse_table(ps, out);
	if (c == '"' || c == '\'')
		return parse_string(ps, out);
	if (c == '(')
		return parse_special_number(ps, out);
	if (c == '-' || is_digit(c))
		return parse_number(ps, out);
	bool truth = keyword(ps, "true");
	if (truth || keyword(ps, "false")) {
		out->type = LUA_BOOLEAN;
		out->boolean = truth;
		return 0;
	}
	if (keyword(ps, "nil"))
		return 0;
	return fail(ps, "expected a value");
}

/* "return" value [";"], and nothing else. */
static int parse_document(struct parser *ps, struct lua_value *out)
{
	*out = (struct lua_value){.type = LUA_NIL};
	skip_space(ps);
	if (!keyword(ps, "return"))
		return fail(ps, "expected \"return\" (not a Prosody internal storage file?)");
	if (parse_value(ps, out) < 0)
		return -1;
	accept(ps, ';');
	skip_space(ps);
	return ps->p == ps->end ? 0 : fail(ps, "unexpected text after the table");
}

/* ---- keys from the parsed table ---- */

static const struct lua_value *table_get(const struct lua_value *table, const char *key)
{
	for (size_t i = 0; i < table->table.n; i++) {
		const struct lua_field *f = &table->table.fields[i];
		if (f->key.type == LUA_STRING && strcmp(f->key.string.bytes, key) == 0 &&
		    strlen(key) == f->key.string.len)
			return &f->value;
	}
	return NULL;
}

/* A string value usable as C text, or NULL with *problem set. */
static const char *text_of(const struct lua_value *v, const char *what, const char **problem)
{
	if (v == NULL || v->type == LUA_NIL)
		return NULL;
	if (v->type == LUA_STRING && strlen(v->string.bytes) == v->string.len)
		return v->string.bytes;
	if (*problem == NULL)
		*problem = what;
	return NULL;
}

static int64_t time_of(double t)
{
	return t >= 1 && t < 1e15 ? (int64_t)t : 0; /* also drops NaN and infinities */
}

static int emit_entry(const struct lua_field *entry, import_key_cb cb, void *userdata)
{
	struct prosody_key key = {0};
	key.id = text_of(&entry->key, "the entry's key is not a string", &key.problem);
	const struct lua_value *record = &entry->value;
	if (key.problem == NULL && key.id == NULL)
		key.problem = "the entry's key is not a string";
	if (record->type != LUA_TABLE) {
		if (key.problem == NULL)
			key.problem = NOT_A_RECORD;
		return cb(userdata, &key);
	}
	key.token = text_of(table_get(record, "token"), "token is not a string", &key.problem);
	key.name = text_of(table_get(record, "name"), "name is not a string", &key.problem);
	const struct lua_value *created = table_get(record, "created_at");
	if (created != NULL && created->type == LUA_NUMBER)
		key.created = time_of(created->number);
	if (key.problem == NULL && key.token == NULL)
		key.problem = "no token";
	return cb(userdata, &key);
}

static char *read_file(const char *path, size_t *len, char *err, size_t err_size)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		set_err(err, err_size, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	const char *why = NULL;
	char *data = NULL;
	size_t n = 0;
	if (fstat(fileno(f), &st) < 0)
		why = strerror(errno);
	else if (st.st_size > FILE_MAX)
		why = "larger than 16 MiB";
	else if ((data = malloc((size_t)st.st_size + 1)) == NULL)
		why = "out of memory";
	else if ((n = fread(data, 1, (size_t)st.st_size + 1, f)) > (size_t)st.st_size || ferror(f))
		why = ferror(f) ? "read error" : "the file grew while being read";
	fclose(f);
	if (why != NULL) {
		set_err(err, err_size, "cannot read %s: %s", path, why);
		if (data != NULL)
			explicit_bzero(data, n);
		free(data);
		return NULL;
	}
	*len = n;
	return data;
}

static int read_internal(const char *path, import_key_cb cb, void *userdata, char *err,
                         size_t err_size)
{
	size_t len;
	char *text = read_file(path, &len, err, err_size);
	if (text == NULL)
		return -1;
	struct parser ps = {.p = text, .end = text + len, .line = 1};
	struct lua_value root;
	int rc = parse_document(&ps, &root);
	explicit_bzero(text, len);
	free(text);
	if (rc < 0) {
		set_err(err, err_size, "%s: line %d: %s", path, ps.line, ps.error);
		value_free(&root);
		return -1;
	}
	int count = 0;
	if (root.type == LUA_TABLE) {
		for (size_t i = 0; i < root.table.n; i++) {
			count++;
			if (emit_entry(&root.table.fields[i], cb, userdata) != 0)
				break;
		}
	} else if (root.type != LUA_NIL) {
		set_err(err, err_size, "%s: not a table of keys", path);
		count = -1;
	}
	value_free(&root);
	return count;
}

/* ---- mod_storage_sql ---- */

/*
 * mod_storage_sql keeps a map store as one row per key in table "prosody":
 * host, user '' (no user), store, key, type, value. A table value has type
 * 'json' and a JSON object as value. The row with key '' holds entries whose
 * keys are not strings, which a key store never has.
 *
 * The database is whatever file we were given, so it may be built to hurt: a
 * view or virtual table "prosody" can yield endless or enormous rows, and any
 * real table can be huge. Hence: "prosody" must be an ordinary table (asked
 * of the parsed schema, PRAGMA table_list, not of sqlite_schema's type
 * column, which calls a virtual table a table), views are off altogether,
 * schema code is untrusted, a value may have 1 MiB, all the keys together 16
 * MiB, and a clock stops the lot. Rows are copied out first and only handed
 * to the callback once the query has finished, so that a failure part way
 * through imports nothing. Identifiers are bare and double-quoted strings are
 * off: a missing column is an error, never SQLite's fallback to a string.
 */
#define SQL_VALUE_MAX (1 << 20)

static const char select_table[] = "SELECT schema, type FROM pragma_table_list('prosody')";
static const char select_keys[] = "SELECT key, type, value FROM main.prosody"
                                  " WHERE host = ?1 AND user = '' AND store = '" STORE_NAME "'"
                                  " ORDER BY rowid";

struct sql_budget {
	uint64_t deadline_ms; /* CLOCK_MONOTONIC */
	bool expired;
};

/* A column of a row, copied: NUL-terminated, bytes NULL for SQL NULL. */
struct sql_column {
	char *bytes;
	size_t len;
};

struct sql_row {
	struct sql_column key, type, value;
};

struct sql_rows {
	struct sql_row *rows;
	size_t n, cap;
	size_t size; /* bytes held, counted against FILE_MAX */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* SQLite's progress handler: non-zero interrupts the statement. */
static int past_deadline(void *userdata)
{
	struct sql_budget *budget = userdata;
	if (now_ms() >= budget->deadline_ms)
		budget->expired = true;
	return budget->expired;
}

static int harden(sqlite3 *db, struct sql_budget *budget)
{
	static const struct {
		int op, value;
	} settings[] = {
	    {SQLITE_DBCONFIG_DEFENSIVE, 1},
	    {SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0},
	    {SQLITE_DBCONFIG_ENABLE_VIEW, 0},
	    {SQLITE_DBCONFIG_DQS_DML, 0},
	};
	for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
		int now_set;
		if (sqlite3_db_config(db, settings[i].op, settings[i].value, &now_set) != SQLITE_OK)
			return -1;
	}
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, SQL_VALUE_MAX);
	sqlite3_progress_handler(db, 1000, past_deadline, budget);
	if (sqlite3_busy_timeout(db, 5000) != SQLITE_OK)
		return -1;
	return sqlite3_exec(db, "PRAGMA cell_size_check = ON", NULL, NULL, NULL) == SQLITE_OK ? 0
	                                                                                      : -1;
}

/* 0 if main.prosody is an ordinary table; -1 with *why set (NULL: ask db). */
static int check_table(sqlite3 *db, const char **why)
{
	enum { MISSING, TABLE, VIEW, VIRTUAL, OTHER } kind = MISSING;
	sqlite3_stmt *stmt = NULL;
	int rc;
	*why = NULL;
	if (sqlite3_prepare_v2(db, select_table, -1, &stmt, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *schema = (const char *)sqlite3_column_text(stmt, 0);
		const char *type = (const char *)sqlite3_column_text(stmt, 1);
		if (schema == NULL || type == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		if (strcmp(schema, "main") == 0)
			kind = strcmp(type, "table") == 0     ? TABLE
			       : strcmp(type, "view") == 0    ? VIEW
			       : strcmp(type, "virtual") == 0 ? VIRTUAL
			                                      : OTHER;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return -1;
	switch (kind) {
	case TABLE:
		return 0;
	case MISSING:
		*why = "no table prosody (not a Prosody SQL database?)";
		break;
	case VIEW:
		*why = "prosody is a view, not a table (not a Prosody SQL database?)";
		break;
	case VIRTUAL:
		*why = "prosody is a virtual table, not a table (not a Prosody SQL database?)";
		break;
	case OTHER:
		*why = "prosody is not an ordinary table (not a Prosody SQL database?)";
		break;
	}
	return -1;
}

static void column_finish(struct sql_column *column)
{
	if (column->bytes != NULL)
		explicit_bzero(column->bytes, column->len); /* a value holds a token */
	free(column->bytes);
}

static void rows_finish(struct sql_rows *rows)
{
	for (size_t i = 0; i < rows->n; i++) {
		column_finish(&rows->rows[i].key);
		column_finish(&rows->rows[i].type);
		column_finish(&rows->rows[i].value);
	}
	free(rows->rows);
	*rows = (struct sql_rows){0};
}

/* Copy column i of the current row; -1 when out of memory. */
static int copy_column(sqlite3_stmt *stmt, int i, struct sql_column *out)
{
	*out = (struct sql_column){0};
	if (sqlite3_column_type(stmt, i) == SQLITE_NULL)
		return 0;
	const char *text = (const char *)sqlite3_column_text(stmt, i);
	if (text == NULL && sqlite3_errcode(sqlite3_db_handle(stmt)) == SQLITE_NOMEM)
		return -1;
	out->len = text != NULL ? (size_t)sqlite3_column_bytes(stmt, i) : 0;
	if ((out->bytes = malloc(out->len + 1)) == NULL)
		return -1;
	if (out->len > 0)
		memcpy(out->bytes, text, out->len);
	out->bytes[out->len] = '\0';
	return 0;
}

/* Append the current row; -1 with *why when it does not fit or fails. */
static int add_row(sqlite3_stmt *stmt, struct sql_rows *rows, const char **why)
{
	if (rows->n == rows->cap) {
		size_t cap = rows->cap == 0 ? 16 : rows->cap * 2;
		struct sql_row *grown = realloc(rows->rows, cap * sizeof *grown);
		if (grown == NULL)
			goto err_nomem;
		rows->rows = grown;
		rows->cap = cap;
	}
	struct sql_row *row = &rows->rows[rows->n];
	*row = (struct sql_row){0};
	rows->n++; /* rows_finish() frees what was copied */
	if (copy_column(stmt, 0, &row->key) < 0 || copy_column(stmt, 1, &row->type) < 0 ||
	    copy_column(stmt, 2, &row->value) < 0)
		goto err_nomem;
	rows->size += sizeof *row + row->key.len + row->type.len + row->value.len + 3;
	if (rows->size > FILE_MAX) {
		*why = "the keys take more than 16 MiB (not a Prosody SQL database?)";
		return -1;
	}
	return 0;

err_nomem:
	*why = "out of memory";
	return -1;
}

/* All the rows of host's key store; -1 with *why set (NULL: ask db). */
static int read_rows(sqlite3 *db, const char *host, struct sql_rows *rows, const char **why)
{
	sqlite3_stmt *stmt = NULL;
	int rc = SQLITE_ERROR;
	*why = NULL;
	if (sqlite3_prepare_v2(db, select_keys, -1, &stmt, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(stmt, 1, host, -1, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (add_row(stmt, rows, why) < 0)
			break;
	}
out:
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

static bool is_text(const struct sql_column *column, const char *text)
{
	return column->bytes != NULL && column->len == strlen(text) &&
	       memcmp(column->bytes, text, column->len) == 0;
}

static const char *json_text(json_t *record, const char *field, const char *problem,
                             const char **out_problem)
{
	json_t *value = json_object_get(record, field);
	if (value == NULL || json_is_null(value))
		return NULL;
	if (json_is_string(value))
		return json_string_value(value);
	if (*out_problem == NULL)
		*out_problem = problem;
	return NULL;
}

static int emit_row(const struct sql_row *row, import_key_cb cb, void *userdata)
{
	struct prosody_key key = {.id = row->key.bytes};
	json_t *record = NULL;
	if (key.id == NULL || key.id[0] == '\0') {
		key.id = NULL;
		key.problem = "the entry's key is not a string";
	} else if (strlen(key.id) != row->key.len) {
		key.id = NULL; /* a blob: "ABC\0DEF" must not become "ABC" */
		key.problem = "the entry's key holds a NUL byte";
	} else if (!is_text(&row->type, "json") || row->value.bytes == NULL) {
		key.problem = NOT_A_RECORD;
	} else if ((record = json_loadb(row->value.bytes, row->value.len, JSON_REJECT_DUPLICATES,
	                                NULL)) == NULL) {
		key.problem = "the stored value is not valid JSON";
	} else if (!json_is_object(record)) {
		key.problem = NOT_A_RECORD;
	} else {
		key.token = json_text(record, "token", "token is not a string", &key.problem);
		key.name = json_text(record, "name", "name is not a string", &key.problem);
		json_t *created = json_object_get(record, "created_at");
		if (json_is_number(created))
			key.created = time_of(json_number_value(created));
		if (key.problem == NULL && key.token == NULL)
			key.problem = "no token";
	}
	int rc = cb(userdata, &key);
	json_decref(record);
	return rc;
}

static void sql_failed(sqlite3 *db, const struct import_source *source,
                       const struct sql_budget *budget, const char *why, char *err, size_t err_size)
{
	const char *path = source->path;
	if (budget->expired) {
		set_err(err, err_size, "%s: gave up after %g s (a hostile or damaged database?)",
		        path, source->time_limit_ms / 1000.0);
	} else if (why != NULL) {
		set_err(err, err_size, "%s: %s", path, why);
	} else if (db == NULL) {
		set_err(err, err_size, "%s: out of memory", path);
	} else if (sqlite3_errcode(db) == SQLITE_TOOBIG) {
		set_err(err, err_size, "%s: a value is larger than 1 MiB (not a key store?)", path);
	} else {
		why = sqlite3_errmsg(db);
		set_err(err, err_size, "%s: %s%s", path, why,
		        strstr(why, "no such") != NULL ? " (not a Prosody SQL database?)" : "");
	}
}

static int read_sql(const struct import_source *source, const char *host, import_key_cb cb,
                    void *userdata, char *err, size_t err_size)
{
	struct sql_budget budget = {.deadline_ms = now_ms() + source->time_limit_ms};
	struct sql_rows rows = {0};
	sqlite3 *db = NULL;
	const char *why = NULL;
	int count = -1;
	if (sqlite3_open_v2(source->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    harden(db, &budget) < 0 || check_table(db, &why) < 0 ||
	    read_rows(db, host, &rows, &why) < 0) {
		sql_failed(db, source, &budget, why, err, err_size);
		goto out;
	}
	sqlite3_close(db); /* the rows are ours now */
	db = NULL;
	count = 0;
	for (size_t i = 0; i < rows.n; i++) {
		count++;
		if (emit_row(&rows.rows[i], cb, userdata) != 0)
			break;
	}
out:
	rows_finish(&rows);
	sqlite3_close(db);
	return count;
}

int import_read(const struct import_source *source, const char *host, import_key_cb cb,
                void *userdata, char *err, size_t err_size)
{
	if (source->kind == IMPORT_SQL)
		return read_sql(source, host, cb, userdata, err, err_size);
	return read_internal(source->path, cb, userdata, err, err_size);
}
