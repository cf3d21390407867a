#include "import-internal.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
			key.created = import_time_of(json_number_value(created));
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
		import_set_err(err, err_size,
		               "%s: gave up after %g s (a hostile or damaged database?)", path,
		               source->time_limit_ms / 1000.0);
	} else if (why != NULL) {
		import_set_err(err, err_size, "%s: %s", path, why);
	} else if (db == NULL) {
		import_set_err(err, err_size, "%s: out of memory", path);
	} else if (sqlite3_errcode(db) == SQLITE_TOOBIG) {
		import_set_err(err, err_size, "%s: a value is larger than 1 MiB (not a key store?)",
		               path);
	} else {
		why = sqlite3_errmsg(db);
		import_set_err(err, err_size, "%s: %s%s", path, why,
		               strstr(why, "no such") != NULL ? " (not a Prosody SQL database?)"
		                                              : "");
	}
}

int import_read_sql(const struct import_source *source, const char *host, import_key_cb cb,
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
