#include "import-internal.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEPTH_MAX 32 /* keys nest three deep */

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
		key.created = import_time_of(created->number);
	if (key.problem == NULL && key.token == NULL)
		key.problem = "no token";
	return cb(userdata, &key);
}

static char *read_file(const char *path, size_t *len, char *err, size_t err_size)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		import_set_err(err, err_size, "cannot open %s: %s", path, strerror(errno));
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
		import_set_err(err, err_size, "cannot read %s: %s", path, why);
		if (data != NULL)
			explicit_bzero(data, n);
		free(data);
		return NULL;
	}
	*len = n;
	return data;
}

int import_read_internal(const char *path, import_key_cb cb, void *userdata, char *err,
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
		import_set_err(err, err_size, "%s: line %d: %s", path, ps.line, ps.error);
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
		import_set_err(err, err_size, "%s: not a table of keys", path);
		count = -1;
	}
	value_free(&root);
	return count;
}
