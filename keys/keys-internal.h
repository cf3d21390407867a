#ifndef INVITES_KEYS_INTERNAL_H
#define INVITES_KEYS_INTERNAL_H

/* Shared inside keys/ only. Each check returns NULL when the value is
 * acceptable, else a static one-line reason. */

#include "keys.h"

#define IMPORT_SECRET_MIN 16 /* shortest secret accepted from elsewhere (96 bits in base64) */

/* 1..KEYS_HOST_MAX bytes of UTF-8, no whitespace, control characters or '/'. */
const char *keys_check_host(const char *host);

/* 1..KEYS_NAME_MAX bytes of UTF-8, no control characters, nothing XML cannot carry. */
const char *keys_check_name(const char *name);

/* Expiry not negative; max_invites and period_s both set or both zero. */
const char *keys_check_limits(const struct api_key_limits *limits);

/* An imported ID and secret that keys_parse() will accept once joined. */
const char *keys_check_credential(const char *id, const char *secret);

/* ---- the verification cache (cache.c) ---- */

/* One key as verification needs it. */
struct key_cache_row {
	struct api_key_match match; /* id included */
	unsigned char hash[KEYS_HASH_BYTES];
};

struct key_cache;

enum key_cache_state {
	KEY_CACHE_CURRENT,   /* the rows are what the file holds */
	KEY_CACHE_STALE,     /* the file changed since the rows were set: reload them */
	KEY_CACHE_UNWATCHED, /* changes may go unseen (the directory or the file went away):
	                        do not use until key_cache_rewatch() */
};

/* Watch the directory of the key store at path, symlinks resolved (inotify). The cache starts
 * stale. NULL when out of memory or the directory cannot be watched. */
struct key_cache *key_cache_create(const char *path);
void key_cache_destroy(struct key_cache *cache); /* accepts NULL */

/* Drain the events only when SIGIO says some came, raised at the calling
 * thread. A check from another thread, or in a process forked since, reads.
 * 0, or -1 (errno set) when SIGIO is blocked in this thread or has another
 * handler: then every check reads. */
int key_cache_signal(struct key_cache *cache);

/* Whether what key_cache_signal() set up still holds: called from the owning
 * thread, SIGIO unblocked there and its handler in place. If not, every check
 * reads from now on and this returns -1 (errno ESRCH: another thread or
 * process; else as key_cache_signal()). 0 also without key_cache_signal(). */
int key_cache_signal_intact(struct key_cache *cache);

/* Take in what changed since the last call (one read() when nothing did, or
 * none after key_cache_signal() while no signal came). */
enum key_cache_state key_cache_check(struct key_cache *cache);

/* Watch the directory the store's path names now (it may have been replaced),
 * and mark the cache stale. */
void key_cache_rewatch(struct key_cache *cache);

/* Replace the rows with rows[0..n) (malloc'd; the cache owns and sorts them)
 * and mark the cache current. */
void key_cache_set_rows(struct key_cache *cache, struct key_cache_row *rows, size_t n);

/* The row of id (id_len bytes of [A-Za-z0-9_-]), or NULL. Borrowed until the
 * next key_cache_set_rows(). */
const struct key_cache_row *key_cache_find(const struct key_cache *cache, const char *id,
                                           size_t id_len);

#endif
