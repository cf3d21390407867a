#ifndef INVITES_IMPORT_H
#define INVITES_IMPORT_H

/*
 * Reading the API keys that Prosody's mod_invites_api keeps in its map store
 * "invite_api_keys", either in internal storage (a Lua table literal written
 * by util.serialization, <data_path>/<host>/invite_api_keys.dat) or in a
 * mod_storage_sql SQLite database (rows of table "prosody" with JSON values).
 * Nothing here logs or writes: each key goes to a callback, failures come back
 * as a reason in the caller's buffer.
 */

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

enum import_kind {
	IMPORT_INTERNAL, /* Prosody internal storage file */
	IMPORT_SQL,      /* Prosody SQLite database */
};

#define IMPORT_TIME_LIMIT_MS 10000 /* what import_find() gives a database to be read */

/* A source found by import_find(). */
struct import_source {
	enum import_kind kind;
	char path[PATH_MAX];    /* the file to read */
	unsigned time_limit_ms; /* IMPORT_SQL: reading fails after this long */
};

/* One entry of the store, borrowed for the duration of the callback. Prosody
 * looks keys up by the entry's key, so that is the ID. */
struct prosody_key {
	const char *id;      /* NULL if the entry's key is not a string */
	const char *token;   /* the secret; NULL if missing */
	const char *name;    /* NULL if missing */
	int64_t created;     /* created_at, Unix time; 0 if missing */
	const char *problem; /* NULL, or why the entry is not a usable key (static text) */
};

/* Return non-zero to stop reading. */
typedef int (*import_key_cb)(void *userdata, const struct prosody_key *key);

/* Work out what path is: an internal storage file, an SQLite database, or a
 * Prosody data_path directory holding host's internal storage file or
 * prosody.sqlite. 0 with *source filled, or -1 with a reason in err. */
int import_find(const char *path, const char *host, struct import_source *source, char *err,
                size_t err_size);

/* Read the keys of host from source and call cb for each entry, in file or
 * row order (for an internal storage file, host is implied by the file).
 * Returns the number of entries seen, or -1 with a reason in err when the
 * source cannot be read or parsed; a source that fails yields no callback at
 * all. The file may be hostile: reading it is bounded in time and memory.
 * Copies of tokens in memory this owns are wiped. */
int import_read(const struct import_source *source, const char *host, import_key_cb cb,
                void *userdata, char *err, size_t err_size);

/* host as Prosody spells it in a file name: bytes other than [A-Za-z0-9] as
 * %xx ("example.com" -> "example%2ecom"). Returns -1 if it does not fit. */
int import_escape_host(const char *host, char *out, size_t out_size);

#endif
