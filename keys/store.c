#include "keys-internal.h"
#include "keys.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
#define CREATE_ATTEMPTS 3
#define ERROR_SIZE      (PATH_MAX + 256)
#define PATH_CHECK_MS   1000 /* see path_moved() */

/*
 * Schema migrations: migrations[i] takes the database from user_version i to
 * i + 1. All pending steps run in one write transaction together with the new
 * user_version, so a store is never left half-migrated. To extend the schema
 * (expiry, usage counters, limits, permissions), append a step; never edit one
 * that has shipped.
 */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  host TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  secret_hash BLOB NOT NULL"
    ");"
    "CREATE INDEX api_keys_host ON api_keys (host);",
    /* 1 -> 2: lifecycle. NULL expires and last_used mean never; a rate limit
     * is max_invites per period_s seconds, 0 for none. The window columns
     * are the daemon's rate window as last flushed. */
    "ALTER TABLE api_keys ADD COLUMN expires INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN max_invites INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE api_keys ADD COLUMN period_s INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE api_keys ADD COLUMN last_used INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN invites INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE api_keys ADD COLUMN window_start INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE api_keys ADD COLUMN window_count INTEGER NOT NULL DEFAULT 0;",
    /* 2 -> 3: an index holding every column a verification reads, so
     * looking up a key ID is one B-tree search whether the ID exists or not
     * (through the primary-key index, a known ID also searched the table:
     * a wrong secret took measurably longer to refuse than an unknown ID). */
    ("CREATE INDEX api_keys_verify ON api_keys (id, host, secret_hash, expires, max_invites,"
     "  period_s, window_start, window_count);"),
    /* 3 -> 4: what a key may ask for, KEYS_ALLOW_* bits. Keys made before
     * could only make account invites, and still can only do that. The
     * verification index is rebuilt with the column, so that verifying
     * stays one index search. */
    ("ALTER TABLE api_keys ADD COLUMN permissions INTEGER NOT NULL DEFAULT 1;"
     "DROP INDEX api_keys_verify;"
     "CREATE INDEX api_keys_verify ON api_keys (id, host, secret_hash, expires, max_invites,"
     "  period_s, window_start, window_count, permissions);"),
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

struct keystore {
	sqlite3 *db;
	sqlite3_stmt *verify;    /* kept prepared: verification runs on every request */
	struct key_cache *cache; /* NULL unless keystore_cache_verification() */
	int cache_mode;          /* what keystore_cache_verification() returned */
	int64_t path_checked_ms; /* CLOCK_MONOTONIC; see path_moved() */
	char *path;
	dev_t dev; /* the file opened, to notice it replaced (see refresh()) */
	ino_t ino;
	bool gone_reported;
	int busy_timeout_ms; /* -1: SQLite's default as configured at open */
	char error[ERROR_SIZE];
};

/* keystore_open() has no store to keep its reason in. */
static _Thread_local char open_error[ERROR_SIZE];

static void set_error(struct keystore *store, const char *reason)
{
	snprintf(store->error, sizeof store->error, "key store %s: %s", store->path, reason);
}

/* SQLite's "disk I/O error" hides the cause (a full disk growing the WAL
 * index, a file made immutable): add what the system said. */
static void set_db_error(struct keystore *store)
{
	int code = sqlite3_extended_errcode(store->db);
	int sys_errno = sqlite3_system_errno(store->db);
	if ((code & 0xff) == SQLITE_IOERR && sys_errno != 0) {
		char reason[256];
		snprintf(reason, sizeof reason, "%s (%s)", sqlite3_errmsg(store->db),
		         strerror(sys_errno));
		set_error(store, reason);
		return;
	}
	set_error(store, sqlite3_errmsg(store->db));
}

static void report(const char **errstr, const char *reason)
{
	if (errstr != NULL)
		*errstr = reason;
}

/* Run SQL without results; on failure record the reason and return -1. */
static int exec(struct keystore *store, const char *sql)
{
	if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		set_db_error(store);
		return -1;
	}
	return 0;
}

/* Undo an open transaction, keeping the reason already recorded. */
static void rollback(struct keystore *store)
{
	if (!sqlite3_get_autocommit(store->db))
		sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
}

static int commit(struct keystore *store)
{
	if (exec(store, "COMMIT") < 0) {
		rollback(store);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *prepare(struct keystore *store, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		set_db_error(store);
		return NULL;
	}
	return stmt;
}

/* Whether path exists and belongs to another user than this process's
 * effective one; if so, owner gets that user's name (or uid). */
static bool owned_by_another(const char *path, char *owner, size_t size)
{
	struct stat st;
	if (stat(path, &st) < 0 || st.st_uid == geteuid())
		return false;
	struct passwd pwbuf, *pw = NULL;
	char buf[1024];
	if (getpwuid_r(st.st_uid, &pwbuf, buf, sizeof buf, &pw) == 0 && pw != NULL)
		snprintf(owner, size, "user %s", pw->pw_name);
	else
		snprintf(owner, size, "uid %lu", (unsigned long)st.st_uid);
	return true;
}

/* Why the store cannot be opened for writing, for the errors an operator
 * meets most: the directory missing, the file system read-only, the file
 * made by another user. */
static void set_create_error(struct keystore *store, int err)
{
	char reason[PATH_MAX + 64];
	char owner[64];
	char *dir = strdup(store->path);
	if (err == ENOENT && dir != NULL)
		snprintf(reason, sizeof reason, "directory %s does not exist", dirname(dir));
	else if (err == EROFS)
		snprintf(reason, sizeof reason, "%s (the key store must be writable)",
		         strerror(err));
	else if ((err == EACCES || err == EPERM) &&
	         owned_by_another(store->path, owner, sizeof owner))
		/* Typically a key command run as root before the service user. */
		snprintf(reason, sizeof reason,
		         "%s (it belongs to %s, not to the user running this: chown it and its "
		         "-wal and -shm files to the service user)",
		         strerror(err), owner);
	else
		snprintf(reason, sizeof reason, "%s", strerror(err));
	free(dir);
	set_error(store, reason);
}

/* Create the file ourselves: SQLite would apply the umask to 0644. Run as
 * root, the key commands first become the owner of the store's directory
 * (src/cli.c): a store they make is that user's. */
static int create_file(struct keystore *store)
{
	int fd = open(store->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		set_create_error(store, errno);
		return -1;
	}
	if (close(fd) < 0) {
		set_error(store, strerror(errno));
		return -1;
	}
	return 0;
}

static int open_db(struct keystore *store)
{
	/* On failure the handle (if any) is closed by the caller's unwinding. */
	int rc = sqlite3_open_v2(store->path, &store->db, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		set_error(store,
		          store->db != NULL ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc));
		return -1;
	}
	if (sqlite3_extended_result_codes(store->db, 1) != SQLITE_OK ||
	    sqlite3_busy_timeout(store->db, BUSY_TIMEOUT_MS) != SQLITE_OK) {
		set_db_error(store);
		return -1;
	}
	return 0;
}

/* Run a pragma that answers with one integer, stored in *value; 0 or -1. */
static int pragma_int(struct keystore *store, const char *sql, int *value)
{
	sqlite3_stmt *stmt = prepare(store, sql);
	if (stmt == NULL)
		return -1;
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*value = sqlite3_column_int(stmt, 0);
	else
		set_db_error(store);
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* WAL lets the daemon keep verifying while the CLI writes; FULL makes a
 * commit durable before the CLI prints the key. */
static int configure(struct keystore *store)
{
	sqlite3_stmt *stmt = prepare(store, "PRAGMA journal_mode = WAL");
	if (stmt == NULL)
		return -1;
	int rc = sqlite3_step(stmt);
	const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0) : NULL;
	bool wal = mode != NULL && strcmp(mode, "wal") == 0;
	if (rc != SQLITE_ROW)
		set_db_error(store);
	else if (!wal)
		set_error(store, "cannot switch to write-ahead logging");
	sqlite3_finalize(stmt);
	if (!wal)
		return -1;
	return exec(store, "PRAGMA synchronous = FULL");
}

static int apply_migrations(struct keystore *store, int from)
{
	for (int v = from; v < SCHEMA_VERSION; v++) {
		if (exec(store, migrations[v]) < 0)
			return -1;
	}
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
	return exec(store, sql);
}

static int check_version(struct keystore *store, int version)
{
	if (version >= 0 && version <= SCHEMA_VERSION)
		return 0;
	char reason[96];
	snprintf(reason, sizeof reason, "schema version %d is not supported (newest known is %d)",
	         version, SCHEMA_VERSION);
	set_error(store, reason);
	return -1;
}

/* Bring the schema up to date. The version is read again inside the write
 * transaction because another process may have migrated in the meantime. */
static int migrate(struct keystore *store)
{
	int version;
	if (pragma_int(store, "PRAGMA user_version", &version) < 0 ||
	    check_version(store, version) < 0)
		return -1;
	if (version == SCHEMA_VERSION)
		return 0;
	if (exec(store, "BEGIN IMMEDIATE") < 0)
		return -1;
	if (pragma_int(store, "PRAGMA user_version", &version) < 0 ||
	    check_version(store, version) < 0 || apply_migrations(store, version) < 0)
		goto err_transaction;
	return commit(store);

err_transaction:
	rollback(store);
	return -1;
}

struct keystore *keystore_open(const char *path, const char **errstr)
{
	struct keystore *store = calloc(1, sizeof *store);
	if (store == NULL)
		goto err_alloc;
	store->path = strdup(path);
	if (store->path == NULL)
		goto err_store;
	if (create_file(store) < 0 || open_db(store) < 0 || configure(store) < 0 ||
	    migrate(store) < 0)
		goto err_db;
	/* Exactly one row whether the ID exists or not (then a decoy of the same
	 * shape, flagged by the last column), so both take the same path. */
	store->verify = prepare(
	    store, "SELECT coalesce(k.host, ''), coalesce(k.secret_hash, zeroblob(32)), k.expires,"
	           " coalesce(k.max_invites, 0), coalesce(k.period_s, 0),"
	           " coalesce(k.window_start, 0), coalesce(k.window_count, 0), k.id IS NOT NULL,"
	           " coalesce(k.permissions, 1)"
	           " FROM (SELECT ?1 AS wanted) LEFT JOIN api_keys AS k INDEXED BY api_keys_verify"
	           " ON k.id = wanted");
	if (store->verify == NULL)
		goto err_db;
	struct stat st;
	if (stat(store->path, &st) == 0) {
		store->dev = st.st_dev;
		store->ino = st.st_ino;
	}
	store->busy_timeout_ms = -1;
	return store;

err_db:
	sqlite3_close(store->db); /* harmless on NULL */
	memcpy(open_error, store->error, sizeof open_error);
	free(store->path);
	free(store);
	report(errstr, open_error);
	return NULL;
err_store:
	free(store);
err_alloc:
	snprintf(open_error, sizeof open_error, "key store %s: out of memory", path);
	report(errstr, open_error);
	return NULL;
}

int keystore_set_busy_timeout(struct keystore *store, unsigned timeout_ms)
{
	if (timeout_ms > INT_MAX || sqlite3_busy_timeout(store->db, (int)timeout_ms) != SQLITE_OK)
		return -1;
	store->busy_timeout_ms = (int)timeout_ms;
	return 0;
}

void keystore_close(struct keystore *store)
{
	if (store == NULL)
		return;
	key_cache_destroy(store->cache);
	sqlite3_finalize(store->verify);
	sqlite3_close(store->db);
	free(store->path);
	free(store);
}

/*
 * A long-lived handle (the daemon's) must see the file the CLI sees: when the
 * file at the path was replaced (a backup restored by rename, or deleted and
 * made anew by "create"), keys revoked in the new file would otherwise still
 * work here. So every operation first compares the path's inode with the one
 * opened and reopens on a change. A path with no file at all keeps the open
 * one, so a removed directory does not stop existing keys from working; that
 * is said once, since revoking is then impossible until it is back.
 */
static void refresh(struct keystore *store)
{
	struct stat st;
	if (stat(store->path, &st) != 0) {
		if (!store->gone_reported)
			log_warn("key store %s: %s; still serving the keys it held, but none can "
			         "be created or revoked until it is back (restore it, or restart "
			         "to start an empty one)",
			         store->path, strerror(errno));
		store->gone_reported = true;
		return;
	}
	if (store->gone_reported)
		log_info("key store %s: the file is back", store->path);
	store->gone_reported = false;
	if (st.st_dev == store->dev && st.st_ino == store->ino)
		return;

	const char *err = NULL;
	struct keystore *fresh = keystore_open(store->path, &err);
	if (fresh == NULL) {
		log_warn("%s; still using the file opened before", err);
		return;
	}
	if (store->busy_timeout_ms >= 0)
		sqlite3_busy_timeout(fresh->db, store->busy_timeout_ms);
	log_info("key store %s was replaced: reopened it", store->path);
	sqlite3_finalize(store->verify);
	sqlite3_close(store->db);
	store->db = fresh->db;
	store->verify = fresh->verify;
	store->dev = fresh->dev;
	store->ino = fresh->ino;
	free(fresh->path);
	free(fresh);
	/* The new file may be in another directory (an ancestor or a symlink
	 * replaced): the cache must watch that one, and reload. */
	if (store->cache != NULL)
		key_cache_rewatch(store->cache);
}

/* ---- create and import ---- */

/* One row to insert. */
struct key_row {
	const char *id;
	const char *host;
	const char *name;
	int64_t created;
	const unsigned char *hash;
	struct api_key_limits limits;
};

static int bind_row(sqlite3_stmt *insert, const struct key_row *row)
{
	int rc = sqlite3_bind_text(insert, 1, row->id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(insert, 2, row->host, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(insert, 3, row->name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(insert, 4, row->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(insert, 5, row->hash, KEYS_HASH_BYTES, SQLITE_STATIC);
	if (rc == SQLITE_OK && row->limits.expires != 0) /* else NULL: never */
		rc = sqlite3_bind_int64(insert, 6, row->limits.expires);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(insert, 7, row->limits.max_invites);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(insert, 8, row->limits.period_s);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(
		    insert, 9, row->limits.allow != 0 ? row->limits.allow : KEYS_ALLOW_ACCOUNT);
	return rc;
}

static sqlite3_stmt *prepare_insert(struct keystore *store)
{
	return prepare(store, "INSERT INTO api_keys (id, host, name, created, secret_hash,"
	                      " expires, max_invites, period_s, permissions)"
	                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
}

/* Insert one row in its own transaction. Returns 0 when committed, 1 when
 * the ID is taken (nothing written), -1 on failure. */
static int insert_row(struct keystore *store, sqlite3_stmt *insert, const struct key_row *row)
{
	if (exec(store, "BEGIN IMMEDIATE") < 0)
		return -1;
	int result = -1;
	if (bind_row(insert, row) == SQLITE_OK) {
		if (sqlite3_step(insert) == SQLITE_DONE)
			result = 0;
		else if (sqlite3_extended_errcode(store->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
			result = 1;
	}
	if (result < 0)
		set_db_error(store);
	sqlite3_reset(insert);
	sqlite3_clear_bindings(insert);
	if (result != 0) {
		rollback(store);
		return result;
	}
	return commit(store);
}

static enum keys_status create_key(struct keystore *store, const char *host, const char *name,
                                   const struct api_key_limits *limits, struct api_key_new *key)
{
	sqlite3_stmt *insert = prepare_insert(store);
	if (insert == NULL)
		return KEYS_ERROR;
	unsigned char hash[KEYS_HASH_BYTES];
	struct key_row row = {.host = host, .name = name, .hash = hash, .limits = *limits};
	int result = 1;
	for (int attempt = 0; attempt < CREATE_ATTEMPTS && result == 1; attempt++) {
		keys_generate(key);
		keys_hash_secret(key->secret, KEYS_SECRET_LEN, hash);
		row.id = key->id;
		row.created = (int64_t)time(NULL);
		result = insert_row(store, insert, &row);
	}
	sqlite3_finalize(insert);
	if (result == 1)
		set_error(store, "no unused key ID found (random source broken?)");
	return result == 0 ? KEYS_OK : KEYS_ERROR;
}

enum keys_status keystore_create(struct keystore *store, const char *host, const char *name,
                                 const struct api_key_limits *limits, struct api_key_new *key,
                                 const char **errstr)
{
	refresh(store);
	static const struct api_key_limits unlimited;
	if (limits == NULL)
		limits = &unlimited;
	const char *invalid = keys_check_host(host);
	if (invalid == NULL)
		invalid = keys_check_name(name);
	if (invalid == NULL)
		invalid = keys_check_limits(limits);
	if (invalid != NULL) {
		report(errstr, invalid);
		return KEYS_INVALID;
	}
	enum keys_status status = create_key(store, host, name, limits, key);
	if (status != KEYS_OK) {
		keys_wipe(key);
		report(errstr, store->error);
	}
	return status;
}

/* After a conflicting import: 1 if the ID's key belongs to host, 0 if to
 * another host, -1 on failure. */
static int same_host(struct keystore *store, const char *id, const char *host)
{
	sqlite3_stmt *stmt = prepare(store, "SELECT host = ?2 FROM api_keys WHERE id = ?1");
	if (stmt == NULL)
		return -1;
	int result = -1, rc = SQLITE_OK;
	if (sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_text(stmt, 2, host, -1, SQLITE_STATIC) == SQLITE_OK &&
	    (rc = sqlite3_step(stmt)) == SQLITE_ROW)
		result = sqlite3_column_int(stmt, 0) != 0;
	else if (rc == SQLITE_DONE)
		set_error(store, "the key was deleted while being imported");
	else
		set_db_error(store);
	sqlite3_finalize(stmt);
	return result;
}

static enum keys_status import_key(struct keystore *store, const struct key_row *row,
                                   const char **errstr)
{
	sqlite3_stmt *insert = prepare_insert(store);
	int result = insert != NULL ? insert_row(store, insert, row) : -1;
	sqlite3_finalize(insert);
	if (result == 1) {
		result = same_host(store, row->id, row->host);
		if (result == 1) {
			report(errstr, "already imported");
			return KEYS_EXISTS;
		}
		if (result == 0) {
			report(errstr, "a key of another host has this ID");
			return KEYS_INVALID;
		}
	}
	if (result < 0) {
		report(errstr, store->error);
		return KEYS_ERROR;
	}
	return KEYS_OK;
}

enum keys_status keystore_import(struct keystore *store, const char *host, const char *id,
                                 const char *secret, const char *name, int64_t created,
                                 const char **errstr)
{
	refresh(store);
	const char *invalid = keys_check_host(host);
	if (invalid == NULL)
		invalid = keys_check_name(name);
	if (invalid == NULL)
		invalid = keys_check_credential(id, secret);
	if (invalid == NULL && created < 0)
		invalid = "creation time is negative";
	if (invalid != NULL) {
		report(errstr, invalid);
		return KEYS_INVALID;
	}
	unsigned char hash[KEYS_HASH_BYTES];
	keys_hash_secret(secret, strlen(secret), hash);
	struct key_row row = {
	    .id = id,
	    .host = host,
	    .name = name,
	    .created = created != 0 ? created : (int64_t)time(NULL),
	    .hash = hash,
	};
	return import_key(store, &row, errstr);
}

/* ---- list and delete ---- */

/* Read limits from columns first..first+2 (expires, max_invites, period_s);
 * -1 if they are out of range. NULL reads as 0. */
static int column_limits(sqlite3_stmt *stmt, int first, struct api_key_limits *limits)
{
	int64_t expires = sqlite3_column_int64(stmt, first);
	int64_t max_invites = sqlite3_column_int64(stmt, first + 1);
	int64_t period_s = sqlite3_column_int64(stmt, first + 2);
	if (expires < 0 || max_invites < 0 || max_invites > UINT_MAX || period_s < 0 ||
	    period_s > UINT_MAX)
		return -1;
	*limits = (struct api_key_limits){expires, (unsigned)max_invites, (unsigned)period_s, 0};
	return 0;
}

/* Read the permissions from column col into limits->allow; -1 unless it is
 * a non-empty set of known bits. */
static int column_allow(sqlite3_stmt *stmt, int col, struct api_key_limits *limits)
{
	int64_t allow = sqlite3_column_int64(stmt, col);
	if (allow <= 0 || (allow & ~(int64_t)KEYS_ALLOW_ALL) != 0)
		return -1;
	limits->allow = (unsigned)allow;
	return 0;
}

static int list_row(struct keystore *store, sqlite3_stmt *list, keystore_list_cb cb, void *userdata)
{
	struct api_key_info info = {
	    .id = (const char *)sqlite3_column_text(list, 0),
	    .host = (const char *)sqlite3_column_text(list, 1),
	    .name = (const char *)sqlite3_column_text(list, 2),
	    .created = sqlite3_column_int64(list, 3),
	    .last_used = sqlite3_column_int64(list, 7),
	    .invites = (uint64_t)sqlite3_column_int64(list, 8),
	};
	if (info.id == NULL || info.host == NULL || info.name == NULL) {
		set_db_error(store); /* out of memory converting a column */
		return -1;
	}
	if (column_limits(list, 4, &info.limits) < 0 || column_allow(list, 9, &info.limits) < 0 ||
	    sqlite3_column_int64(list, 8) < 0) {
		set_error(store, "malformed key record");
		return -1;
	}
	return cb(userdata, &info) != 0 ? 1 : 0;
}

enum keys_status keystore_list(struct keystore *store, const char *host, keystore_list_cb cb,
                               void *userdata, const char **errstr)
{
	refresh(store);
	int rc = SQLITE_OK, stop = 0;
	sqlite3_stmt *list =
	    prepare(store, "SELECT id, host, name, created, expires, max_invites,"
	                   " period_s, last_used, invites, permissions FROM api_keys"
	                   " WHERE host = ?1 ORDER BY created, rowid");
	if (list == NULL)
		goto err;
	if (sqlite3_bind_text(list, 1, host, -1, SQLITE_STATIC) != SQLITE_OK)
		goto err_statement;
	while (stop == 0 && (rc = sqlite3_step(list)) == SQLITE_ROW)
		stop = list_row(store, list, cb, userdata);
	if (stop < 0)
		goto err_row;
	if (stop == 0 && rc != SQLITE_DONE)
		goto err_statement;
	sqlite3_finalize(list);
	return KEYS_OK;

err_statement:
	set_db_error(store);
err_row:
	sqlite3_finalize(list);
err:
	report(errstr, store->error);
	return KEYS_ERROR;
}

/* Delete in one transaction; 1 when a row went, 0 when none matched, -1. */
static int delete_key(struct keystore *store, sqlite3_stmt *del, const char *host, const char *id)
{
	if (sqlite3_bind_text(del, 1, host, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(del, 2, id, -1, SQLITE_STATIC) != SQLITE_OK) {
		set_db_error(store);
		return -1;
	}
	if (exec(store, "BEGIN IMMEDIATE") < 0)
		return -1;
	if (sqlite3_step(del) != SQLITE_DONE) {
		set_db_error(store);
		rollback(store);
		return -1;
	}
	int deleted = sqlite3_changes(store->db) > 0;
	return commit(store) < 0 ? -1 : deleted;
}

enum keys_status keystore_delete(struct keystore *store, const char *host, const char *id,
                                 const char **errstr)
{
	refresh(store);
	sqlite3_stmt *del = prepare(store, "DELETE FROM api_keys WHERE host = ?1 AND id = ?2");
	int deleted = del != NULL ? delete_key(store, del, host, id) : -1;
	sqlite3_finalize(del);
	if (deleted > 0)
		return KEYS_OK;
	if (deleted == 0)
		report(errstr, "no key with that ID on that host");
	else
		report(errstr, store->error);
	return deleted == 0 ? KEYS_NOT_FOUND : KEYS_ERROR;
}

/* ---- verify ---- */

/*
 * Verification must not tell a malformed key, an unknown ID and a wrong
 * secret apart, by answer or by timing. So a malformed credential is replaced
 * by a dummy one, the lookup and the hash always run, the hash is always
 * compared (against a dummy when there is no row), and the outcome is decided
 * once at the end. The dummy hash needs no special value: an unknown ID is
 * denied whatever the comparison says.
 */
static const char dummy_id[] = "AAAAAAAAAAAAAAAA";
static const char dummy_secret[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
static const unsigned char dummy_hash[KEYS_HASH_BYTES];

/* Copy the row's host, hash, limits and rate window into *match and hash.
 * 1 on success, -1 if the row is unusable. */
static int copy_row(struct keystore *store, sqlite3_stmt *row, struct api_key_match *match,
                    unsigned char hash[KEYS_HASH_BYTES])
{
	const unsigned char *text = sqlite3_column_text(row, 0);
	size_t host_len = (size_t)sqlite3_column_bytes(row, 0);
	const void *blob = sqlite3_column_blob(row, 1);
	size_t hash_len = (size_t)sqlite3_column_bytes(row, 1);
	int64_t window_count = sqlite3_column_int64(row, 6);
	if (text == NULL || host_len > KEYS_HOST_MAX || blob == NULL ||
	    hash_len != KEYS_HASH_BYTES || column_limits(row, 2, &match->limits) < 0 ||
	    column_allow(row, 8, &match->limits) < 0 || window_count < 0 ||
	    window_count > UINT_MAX) {
		set_error(store, "malformed key record");
		return -1;
	}
	memcpy(match->host, text, host_len + 1);
	memcpy(hash, blob, KEYS_HASH_BYTES);
	match->window_start = sqlite3_column_int64(row, 5);
	match->window_count = (unsigned)window_count;
	return 1;
}

/* Look up id. 1 with *match (but its id) and hash filled, 0 for no such ID,
 * -1 on failure. The statement is reset before returning so no read
 * transaction stays open and the next lookup sees what other processes
 * committed. */
static int lookup(struct keystore *store, const char *id, size_t id_len,
                  struct api_key_match *match, unsigned char hash[KEYS_HASH_BYTES])
{
	int found = -1;
	int rc = sqlite3_bind_text(store->verify, 1, id, (int)id_len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(store->verify);
	if (rc == SQLITE_ROW) {
		/* The decoy row is copied too, into scratch space, so an unknown ID
		 * does the same work as a known one. */
		bool exists = sqlite3_column_int(store->verify, 7) != 0;
		struct api_key_match decoy;
		unsigned char decoy_hash[KEYS_HASH_BYTES];
		found = exists ? copy_row(store, store->verify, match, hash)
		               : copy_row(store, store->verify, &decoy, decoy_hash);
		if (found > 0 && !exists)
			found = 0;
	} else {
		set_db_error(store);
	}
	sqlite3_reset(store->verify);
	sqlite3_clear_bindings(store->verify);
	return found;
}

/* ---- the verification cache (see cache.c) ---- */

/*
 * Every key's row, in the column order of store->verify (copy_row()), then
 * the ID.
 *
 * Read under the write lock (BEGIN IMMEDIATE, rolled back). A WAL commit
 * writes its frames, which is the event that sends us here, and only then
 * publishes them in the -shm index, which no event tells: a plain read in
 * between sees the keys as they were, and nothing would mark them stale
 * again. A writer publishes before it lets go of the lock, so what is read
 * holding it is every commit whose writes came before. The lock is not
 * waited for: while a writer holds it, the caller verifies through SQLite
 * and the rows stay stale until it is free.
 */
static int lock_without_waiting(struct keystore *store)
{
	int rc = sqlite3_busy_timeout(store->db, 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(store->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	int timeout_ms = store->busy_timeout_ms >= 0 ? store->busy_timeout_ms : BUSY_TIMEOUT_MS;
	if (sqlite3_busy_timeout(store->db, timeout_ms) != SQLITE_OK || rc != SQLITE_OK) {
		set_db_error(store);
		rollback(store);
		return -1;
	}
	return 0;
}

static int load_rows(struct keystore *store, struct key_cache_row **rows, size_t *n)
{
	if (lock_without_waiting(store) < 0)
		return -1;
	sqlite3_stmt *all = prepare(
	    store, "SELECT host, secret_hash, expires, coalesce(max_invites, 0),"
	           " coalesce(period_s, 0), coalesce(window_start, 0), coalesce(window_count, 0),"
	           " 1, coalesce(permissions, 1), id FROM api_keys");
	if (all == NULL) {
		rollback(store);
		return -1;
	}
	size_t used = 0, size = 0;
	struct key_cache_row *got = NULL;
	int rc;
	while ((rc = sqlite3_step(all)) == SQLITE_ROW) {
		if (used == size) {
			size_t grown = size ? size * 2 : 16;
			struct key_cache_row *bigger = realloc(got, grown * sizeof *got);
			if (bigger == NULL) {
				set_error(store, "out of memory");
				goto err;
			}
			got = bigger;
			size = grown;
		}
		struct key_cache_row *row = &got[used];
		const unsigned char *id = sqlite3_column_text(all, 9);
		size_t id_len = (size_t)sqlite3_column_bytes(all, 9);
		if (id == NULL || id_len > KEYS_ID_MAX) {
			set_error(store, "malformed key record");
			goto err;
		}
		if (copy_row(store, all, &row->match, row->hash) < 0)
			goto err;
		memcpy(row->match.id, id, id_len + 1);
		used++;
	}
	if (rc != SQLITE_DONE) {
		set_db_error(store);
		goto err;
	}
	sqlite3_finalize(all);
	rollback(store);
	*rows = got;
	*n = used;
	return 0;

err:
	sqlite3_finalize(all);
	rollback(store);
	free(got);
	return -1;
}

int keystore_cache_verification(struct keystore *store)
{
	if (store->cache != NULL)
		return store->cache_mode;
	store->cache = key_cache_create(store->path);
	if (store->cache == NULL)
		return -1;
	/* Otherwise each verification drains the watch with a read(). */
	store->cache_mode = key_cache_signal(store->cache) == 0 ? 0 : 1;
	return store->cache_mode;
}

/* At most once a second, whether the path still names the file open. The
 * directory watch sees what happens inside the directory, not an ancestor
 * renamed or replaced; this bounds how long such a change goes unseen, and
 * how long signals blocked or taken over after keystore_cache_verification()
 * go unnoticed. */
static bool path_moved(struct keystore *store)
{
	int64_t now = clock_monotonic_ms();
	if (now - store->path_checked_ms < PATH_CHECK_MS)
		return false;
	store->path_checked_ms = now;
	int saved = errno;
	key_cache_signal_intact(store->cache); /* if not, every check reads */
	errno = saved;
	struct stat st;
	return stat(store->path, &st) != 0 || st.st_dev != store->dev || st.st_ino != store->ino;
}

/* Whether to verify from the cache: it is watched and, reloaded if need be,
 * current. Otherwise the file is read, as without a cache. */
static bool cache_usable(struct keystore *store)
{
	if (store->cache == NULL)
		return false;
	if (path_moved(store))
		key_cache_rewatch(store->cache);
	switch (key_cache_check(store->cache)) {
	case KEY_CACHE_CURRENT:
		return true;
	case KEY_CACHE_UNWATCHED:
		refresh(store); /* reopens a file that is back at the path */
		if (store->gone_reported)
			return false;
		key_cache_rewatch(store->cache);
		if (key_cache_check(store->cache) == KEY_CACHE_UNWATCHED)
			return false;
		break;
	case KEY_CACHE_STALE:
		refresh(store);
		break;
	}
	struct key_cache_row *rows = NULL;
	size_t n = 0;
	if (load_rows(store, &rows, &n) < 0)
		return false;
	key_cache_set_rows(store->cache, rows, n);
	return true;
}

/* lookup() from the cache: an unknown ID copies a decoy row instead, as the
 * SQL lookup does. */
static int cache_lookup(struct keystore *store, const char *id, size_t id_len,
                        struct api_key_match *match, unsigned char hash[KEYS_HASH_BYTES])
{
	static const struct key_cache_row decoy_row;
	const struct key_cache_row *row = key_cache_find(store->cache, id, id_len);
	struct api_key_match decoy;
	unsigned char decoy_hash[KEYS_HASH_BYTES];
	const struct key_cache_row *from = row != NULL ? row : &decoy_row;
	struct api_key_match *to = row != NULL ? match : &decoy;
	memcpy(to, &from->match, sizeof *to);
	memcpy(row != NULL ? hash : decoy_hash, from->hash, KEYS_HASH_BYTES);
	return row != NULL;
}

enum keys_status keystore_verify(struct keystore *store, const char *credential, size_t len,
                                 int64_t now, struct api_key_match *match, const char **errstr)
{
	bool cached = cache_usable(store);
	if (!cached)
		refresh(store);
	struct api_key_parts parts;
	bool parsed = keys_parse(credential, len, &parts);
	if (!parsed)
		parts = (struct api_key_parts){dummy_id, sizeof dummy_id - 1, dummy_secret,
		                               sizeof dummy_secret - 1};
	unsigned char presented[KEYS_HASH_BYTES], stored[KEYS_HASH_BYTES];
	struct api_key_match row = {0};
	memcpy(stored, dummy_hash, sizeof stored);
	keys_hash_secret(parts.secret, parts.secret_len, presented);
	int found = cached ? cache_lookup(store, parts.id, parts.id_len, &row, stored)
	                   : lookup(store, parts.id, parts.id_len, &row, stored);
	bool equal = crypto_verify_32(presented, stored) == 0;
	bool live = !keys_expired(&row.limits, now); /* an unknown ID has no expiry */
	sodium_memzero(presented, sizeof presented);

	if (found < 0) {
		report(errstr, store->error);
		return KEYS_ERROR;
	}
	/* An expired key is one more way for the one condition to be false. */
	if (!(parsed & (found == 1) & equal & live)) {
		report(errstr, "unknown API key or wrong secret");
		return KEYS_DENIED;
	}
	memcpy(row.id, parts.id, parts.id_len);
	row.id[parts.id_len] = '\0';
	*match = row;
	return KEYS_OK;
}

/* ---- usage ---- */

static int bind_usage(sqlite3_stmt *update, const struct api_key_usage *usage)
{
	int64_t invites = usage->invites > INT64_MAX ? INT64_MAX : (int64_t)usage->invites;
	int rc = sqlite3_bind_text(update, 1, usage->id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(update, 2, invites);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(update, 3, usage->last_used);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(update, 4, usage->window_start);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(update, 5, usage->window_count);
	return rc;
}

/* Apply every update inside the caller's transaction; 0 or -1. An update
 * that matches no row (a deleted key) is not an error. */
static int update_usage(struct keystore *store, sqlite3_stmt *update,
                        const struct api_key_usage *usage, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = bind_usage(update, &usage[i]);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(update);
		sqlite3_reset(update);
		sqlite3_clear_bindings(update);
		if (rc != SQLITE_DONE) {
			set_db_error(store);
			return -1;
		}
	}
	return 0;
}

enum keys_status keystore_record_usage(struct keystore *store, const struct api_key_usage *usage,
                                       size_t n, const char **errstr)
{
	refresh(store);
	sqlite3_stmt *update = prepare(
	    store, "UPDATE api_keys SET invites = invites + ?2,"
	           " last_used = CASE WHEN ?3 > coalesce(last_used, 0) THEN ?3 ELSE last_used END,"
	           " window_start = ?4, window_count = ?5 WHERE id = ?1");
	if (update == NULL)
		goto err;
	if (exec(store, "BEGIN IMMEDIATE") < 0)
		goto err_statement;
	if (update_usage(store, update, usage, n) < 0) {
		rollback(store);
		goto err_statement;
	}
	if (commit(store) < 0)
		goto err_statement;
	sqlite3_finalize(update);
	return KEYS_OK;

err_statement:
	sqlite3_finalize(update);
err:
	report(errstr, store->error);
	return KEYS_ERROR;
}
