#ifndef INVITES_USAGE_H
#define INVITES_USAGE_H

/*
 * Per-key usage (invites made, last use) and per-key rate windows, kept in
 * memory by the daemon and written to the key store in batches, so that no
 * request waits for a disk write. A crash loses at most one batch of
 * counters, never a key.
 *
 * Rate limits use a fixed window per key: it starts with the first invite
 * after the previous window ended and lasts limits.period_s. Invites still in
 * flight count against the limit, so concurrent requests cannot overshoot it.
 */

#include "keys.h"

#include <stdbool.h>
#include <stdint.h>

struct usage;

/* NULL on allocation failure. Free with usage_destroy(). */
struct usage *usage_create(void);
void usage_destroy(struct usage *usage); /* accepts NULL; unflushed usage is lost */

/* Note a key that just authenticated: its current limits, and on first sight
 * the rate window the store last recorded. -1 if out of memory. */
int usage_track(struct usage *usage, const struct api_key_match *key);

/* Count one invite about to be made with a tracked key at now (Unix). Returns
 * 0 when allowed (then call usage_settle() exactly once), or the number of
 * seconds until the key's window ends when its limit is reached. */
long usage_reserve(struct usage *usage, const char *key_id, int64_t now);

/* End a reservation: created says whether the invite was really made. */
void usage_settle(struct usage *usage, const char *key_id, bool created, int64_t now);

/* True when there is usage not yet written. */
bool usage_dirty(const struct usage *usage);

/* Write everything not yet written in one transaction. On failure the usage
 * is kept for the next attempt. */
enum keys_status usage_flush(struct usage *usage, struct keystore *store, const char **errstr);

#endif
