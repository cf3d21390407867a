#include "http-internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define WAYS      8    /* entries per set; a new address evicts within its set */
#define MILLI     1000 /* tokens are counted in thousandths */
#define MINUTE_MS 60000

struct throttle_entry {
	struct net_addr group;
	int64_t updated_ms;
	int64_t tokens; /* thousandths, as of updated_ms */
	bool used;
};

struct throttle {
	unsigned burst, per_minute;
	size_t n_sets;
	unsigned char hash_key[crypto_shorthash_KEYBYTES];
	struct throttle_entry *entries; /* n_sets * WAYS */
};

/*
 * A fixed table, never grown: an attacker with many addresses (an IPv6
 * provider hands out /48s) can only make addresses compete for slots. The
 * set is picked with a keyed hash, so nobody can aim addresses at one set,
 * and the entry evicted is the one closest to a full bucket, which is what a
 * missing entry means anyway.
 */
struct throttle *throttle_create(unsigned burst, unsigned per_minute, size_t capacity)
{
	if (burst == 0 || per_minute == 0 || capacity < WAYS)
		return NULL;
	struct throttle *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->burst = burst;
	t->per_minute = per_minute;
	t->n_sets = capacity / WAYS;
	t->entries = calloc(t->n_sets * WAYS, sizeof(*t->entries));
	if (t->entries == NULL) {
		free(t);
		return NULL;
	}
	randombytes_buf(t->hash_key, sizeof(t->hash_key));
	return t;
}

void throttle_destroy(struct throttle *t)
{
	if (t == NULL)
		return;
	free(t->entries);
	free(t);
}

static struct throttle_entry *set_of(const struct throttle *t, const struct net_addr *group)
{
	unsigned char hash[crypto_shorthash_BYTES];
	uint64_t h = 0;

	crypto_shorthash(hash, group->bytes, sizeof(group->bytes), t->hash_key);
	memcpy(&h, hash, sizeof(h));
	return &t->entries[(h % t->n_sets) * WAYS];
}

/* The entry's tokens at now, refilled since its last update. */
static int64_t tokens_at(const struct throttle *t, const struct throttle_entry *e, int64_t now_ms)
{
	int64_t full = (int64_t)t->burst * MILLI;
	int64_t elapsed = now_ms > e->updated_ms ? now_ms - e->updated_ms : 0;
	/* per_minute tokens every 60000 ms, in thousandths of a token */
	int64_t tokens = e->tokens + elapsed * t->per_minute / (MINUTE_MS / MILLI);
	return tokens > full ? full : tokens;
}

static struct throttle_entry *find(const struct throttle *t, const struct net_addr *group)
{
	struct throttle_entry *set = set_of(t, group);
	for (size_t i = 0; i < WAYS; i++) {
		if (set[i].used && memcmp(&set[i].group, group, sizeof(*group)) == 0)
			return &set[i];
	}
	return NULL;
}

unsigned throttle_wait_s(const struct throttle *t, const struct net_addr *group, int64_t now_ms)
{
	if (t == NULL)
		return 0;
	const struct throttle_entry *e = find(t, group);
	if (e == NULL)
		return 0;
	int64_t tokens = tokens_at(t, e, now_ms);
	if (tokens >= MILLI)
		return 0;
	/* Milliseconds until one whole token, rounded up to seconds. */
	int64_t ms = ((MILLI - tokens) * (MINUTE_MS / MILLI) + t->per_minute - 1) / t->per_minute;
	return (unsigned)((ms + 999) / 1000);
}

void throttle_failure(struct throttle *t, const struct net_addr *group, int64_t now_ms)
{
	if (t == NULL)
		return;
	struct throttle_entry *e = find(t, group);
	if (e == NULL) {
		struct throttle_entry *set = set_of(t, group);
		int64_t most = -1;
		for (size_t i = 0; i < WAYS; i++) {
			int64_t tokens = set[i].used ? tokens_at(t, &set[i], now_ms) : INT64_MAX;
			if (tokens > most) {
				most = tokens;
				e = &set[i];
			}
		}
		e->used = true;
		e->group = *group;
		e->tokens = (int64_t)t->burst * MILLI;
		e->updated_ms = now_ms;
	}
	e->tokens = tokens_at(t, e, now_ms) - MILLI;
	if (e->tokens < 0)
		e->tokens = 0;
	e->updated_ms = now_ms;
}

size_t throttle_capacity(const struct throttle *t)
{
	return t == NULL ? 0 : t->n_sets * WAYS;
}

size_t throttle_tracked(const struct throttle *t, int64_t now_ms)
{
	size_t n = 0;
	int64_t full = t == NULL ? 0 : (int64_t)t->burst * MILLI;
	for (size_t i = 0; t != NULL && i < t->n_sets * WAYS; i++) {
		if (t->entries[i].used && tokens_at(t, &t->entries[i], now_ms) < full)
			n++;
	}
	return n;
}
