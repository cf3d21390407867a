#include "usage.h"

#include <stdlib.h>
#include <string.h>

/* One key seen since the daemon started. Keys are few (an operator makes them
 * by hand), so a flat array searched linearly is plenty. */
struct key_usage {
	char id[KEYS_ID_MAX + 1];
	unsigned max_invites;
	unsigned period_s;
	int64_t window_start;
	unsigned window_count; /* invites made in the window */
	unsigned in_flight;    /* reserved, not settled */
	uint64_t unflushed;    /* invites not yet written */
	int64_t last_used;
	bool dirty;
};

struct usage {
	struct key_usage *keys;
	size_t n_keys, capacity;
};

struct usage *usage_create(void)
{
	return calloc(1, sizeof(struct usage));
}

void usage_destroy(struct usage *usage)
{
	if (usage == NULL)
		return;
	free(usage->keys);
	free(usage);
}

static struct key_usage *find(struct usage *usage, const char *id)
{
	for (size_t i = 0; i < usage->n_keys; i++) {
		if (strcmp(usage->keys[i].id, id) == 0)
			return &usage->keys[i];
	}
	return NULL;
}

/* First sight of a key: its rate window starts as the store last saw it. */
static struct key_usage *add(struct usage *usage, const struct api_key_match *key)
{
	if (usage->n_keys == usage->capacity) {
		size_t capacity = usage->capacity == 0 ? 16 : usage->capacity * 2;
		struct key_usage *keys = realloc(usage->keys, capacity * sizeof(*keys));
		if (keys == NULL)
			return NULL;
		usage->keys = keys;
		usage->capacity = capacity;
	}
	struct key_usage *k = &usage->keys[usage->n_keys++];
	memset(k, 0, sizeof(*k));
	memcpy(k->id, key->id, sizeof(k->id));
	k->window_start = key->window_start;
	k->window_count = key->window_count;
	return k;
}

int usage_track(struct usage *usage, const struct api_key_match *key)
{
	struct key_usage *k = find(usage, key->id);
	if (k == NULL && (k = add(usage, key)) == NULL)
		return -1;
	/* Limits come from the store on every request: the newest ones apply. */
	k->max_invites = key->limits.max_invites;
	k->period_s = key->limits.period_s;
	return 0;
}

long usage_reserve(struct usage *usage, const char *key_id, int64_t now)
{
	struct key_usage *k = find(usage, key_id);
	if (k == NULL)
		return 0; /* never tracked: nothing to limit (cannot happen in the daemon) */

	if (k->max_invites > 0) {
		if (now >= k->window_start + (int64_t)k->period_s) {
			k->window_start = now;
			k->window_count = 0;
			k->dirty = true;
		}
		if (k->window_count + k->in_flight >= k->max_invites) {
			long wait = (long)(k->window_start + (int64_t)k->period_s - now);
			return wait > 0 ? wait : 1;
		}
	}
	k->in_flight++;
	return 0;
}

void usage_settle(struct usage *usage, const char *key_id, bool created, int64_t now)
{
	struct key_usage *k = find(usage, key_id);
	if (k == NULL || k->in_flight == 0)
		return;
	k->in_flight--;
	if (!created)
		return;
	k->window_count++;
	k->unflushed++;
	if (now > k->last_used)
		k->last_used = now;
	k->dirty = true;
}

bool usage_dirty(const struct usage *usage)
{
	for (size_t i = 0; i < usage->n_keys; i++) {
		if (usage->keys[i].dirty)
			return true;
	}
	return false;
}

enum keys_status usage_flush(struct usage *usage, struct keystore *store, const char **errstr)
{
	size_t n = 0;
	struct api_key_usage *batch =
	    calloc(usage->n_keys == 0 ? 1 : usage->n_keys, sizeof(*batch));
	if (batch == NULL) {
		*errstr = "out of memory";
		return KEYS_ERROR;
	}
	for (size_t i = 0; i < usage->n_keys; i++) {
		struct key_usage *k = &usage->keys[i];
		if (!k->dirty)
			continue;
		batch[n++] = (struct api_key_usage){
		    .id = k->id,
		    .invites = k->unflushed,
		    .last_used = k->last_used,
		    .window_start = k->window_start,
		    .window_count = k->window_count,
		};
	}
	enum keys_status status = n == 0 ? KEYS_OK : keystore_record_usage(store, batch, n, errstr);
	if (status == KEYS_OK) {
		for (size_t i = 0; i < usage->n_keys; i++) {
			if (usage->keys[i].dirty) {
				usage->keys[i].unflushed = 0;
				usage->keys[i].dirty = false;
			}
		}
	}
	free(batch);
	return status;
}
