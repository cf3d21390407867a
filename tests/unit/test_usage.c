/* Unit tests for src/usage.c: rate windows, reservations, what a flush writes. */

#include "src/usage.h"
#include "unit.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct api_key_match key_with_limit(const char *id, unsigned max, unsigned period)
{
	struct api_key_match m;
	memset(&m, 0, sizeof(m));
	snprintf(m.id, sizeof(m.id), "%s", id);
	snprintf(m.host, sizeof(m.host), "example.com");
	m.limits.max_invites = max;
	m.limits.period_s = period;
	return m;
}

static void test_unlimited_key_is_never_refused(void)
{
	struct usage *u = usage_create();
	struct api_key_match k = key_with_limit("free", 0, 0);
	CU_ASSERT_EQUAL(usage_track(u, &k), 0);
	for (int i = 0; i < 1000; i++) {
		CU_ASSERT_EQUAL(usage_reserve(u, "free", 1000), 0);
		usage_settle(u, "free", true, 1000);
	}
	CU_ASSERT_TRUE(usage_dirty(u));
	usage_destroy(u);
}

static void test_limit_refuses_then_recovers_after_period(void)
{
	struct usage *u = usage_create();
	struct api_key_match k = key_with_limit("lim", 2, 60);
	usage_track(u, &k);
	CU_ASSERT_EQUAL(usage_reserve(u, "lim", 1000), 0);
	usage_settle(u, "lim", true, 1000);
	CU_ASSERT_EQUAL(usage_reserve(u, "lim", 1010), 0);
	usage_settle(u, "lim", true, 1010);
	/* Third within the window: refused, told to wait until 1000 + 60. */
	CU_ASSERT_EQUAL(usage_reserve(u, "lim", 1020), 40);
	CU_ASSERT_EQUAL(usage_reserve(u, "lim", 1059), 1);
	/* The window is over: allowed again. */
	CU_ASSERT_EQUAL(usage_reserve(u, "lim", 1060), 0);
	usage_settle(u, "lim", true, 1060);
	usage_destroy(u);
}

static void test_in_flight_counts_against_limit(void)
{
	struct usage *u = usage_create();
	struct api_key_match k = key_with_limit("conc", 3, 100);
	usage_track(u, &k);
	int allowed = 0;
	for (int i = 0; i < 10; i++)
		allowed += usage_reserve(u, "conc", 500) == 0;
	CU_ASSERT_EQUAL(allowed, 3);
	/* A failed invite gives its place back. */
	usage_settle(u, "conc", false, 501);
	CU_ASSERT_EQUAL(usage_reserve(u, "conc", 502), 0);
	usage_destroy(u);
}

static void test_failed_invites_are_not_counted(void)
{
	struct usage *u = usage_create();
	struct api_key_match k = key_with_limit("f", 1, 100);
	usage_track(u, &k);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(usage_reserve(u, "f", 10), 0);
		usage_settle(u, "f", false, 10);
	}
	CU_ASSERT_FALSE(usage_dirty(u));
	usage_destroy(u);
}

static void test_window_from_store_is_respected(void)
{
	struct usage *u = usage_create();
	/* The store says: window began at 900 and already holds 2 of 2. */
	struct api_key_match k = key_with_limit("w", 2, 300);
	k.window_start = 900;
	k.window_count = 2;
	usage_track(u, &k);
	CU_ASSERT_EQUAL(usage_reserve(u, "w", 1000), 200);
	CU_ASSERT_EQUAL(usage_reserve(u, "w", 1200), 0);
	usage_destroy(u);
}

static void test_limits_follow_the_store(void)
{
	struct usage *u = usage_create();
	struct api_key_match k = key_with_limit("c", 1, 100);
	usage_track(u, &k);
	CU_ASSERT_EQUAL(usage_reserve(u, "c", 10), 0);
	usage_settle(u, "c", true, 10);
	CU_ASSERT_NOT_EQUAL(usage_reserve(u, "c", 11), 0);
	k.limits.max_invites = 5;
	usage_track(u, &k);
	CU_ASSERT_EQUAL(usage_reserve(u, "c", 12), 0);
	usage_destroy(u);
}

static void test_settle_without_reserve_is_ignored(void)
{
	struct usage *u = usage_create();
	usage_settle(u, "nobody", true, 5);
	CU_ASSERT_FALSE(usage_dirty(u));
	struct api_key_match k = key_with_limit("k", 0, 0);
	usage_track(u, &k);
	usage_settle(u, "k", true, 5);
	CU_ASSERT_FALSE(usage_dirty(u));
	usage_destroy(u);
}

/* A flush writes what accumulated, once: the store then shows it. */
static int find_key(void *userdata, const struct api_key_info *info)
{
	struct api_key_info *out = userdata;
	out->invites = info->invites;
	out->last_used = info->last_used;
	return 0;
}

static void test_flush_writes_counts_once(void)
{
	char dir[] = "/tmp/test_usage.XXXXXX";
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	char path[64];
	snprintf(path, sizeof(path), "%s/keys.sqlite", dir);
	const char *errstr = NULL;
	CU_ASSERT_FATAL(keys_init() == 0);
	struct keystore *store = keystore_open(path, &errstr);
	CU_ASSERT_FATAL(store != NULL);
	struct api_key_new key;
	CU_ASSERT_EQUAL_FATAL(keystore_create(store, "example.com", "n", NULL, &key, &errstr),
	                      KEYS_OK);

	struct usage *u = usage_create();
	struct api_key_match m = key_with_limit(key.id, 0, 0);
	usage_track(u, &m);
	for (int i = 0; i < 3; i++) {
		usage_reserve(u, key.id, 2000 + i);
		usage_settle(u, key.id, true, 2000 + i);
	}
	CU_ASSERT_EQUAL(usage_flush(u, store, &errstr), KEYS_OK);
	CU_ASSERT_FALSE(usage_dirty(u));
	CU_ASSERT_EQUAL(usage_flush(u, store, &errstr), KEYS_OK); /* nothing new: no change */
	usage_reserve(u, key.id, 2100);
	usage_settle(u, key.id, true, 2100);
	CU_ASSERT_EQUAL(usage_flush(u, store, &errstr), KEYS_OK);

	struct api_key_info info = {0};
	CU_ASSERT_EQUAL(keystore_list(store, "example.com", find_key, &info, &errstr), KEYS_OK);
	CU_ASSERT_EQUAL(info.invites, 4);
	CU_ASSERT_EQUAL(info.last_used, 2100);

	usage_destroy(u);
	keys_wipe(&key);
	keystore_close(store);
	unlink(path);
	char wal[80];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	rmdir(dir);
}

static const struct unit_test tests[] = {
    {"unlimited key is never refused", test_unlimited_key_is_never_refused},
    {"limit refuses, then recovers after the period",
     test_limit_refuses_then_recovers_after_period},
    {"invites in flight count against the limit", test_in_flight_counts_against_limit},
    {"failed invites are not counted", test_failed_invites_are_not_counted},
    {"rate window from the store is respected", test_window_from_store_is_respected},
    {"limits follow the store", test_limits_follow_the_store},
    {"settle without reserve is ignored", test_settle_without_reserve_is_ignored},
    {"flush writes counts once", test_flush_writes_counts_once},
    {NULL, NULL},
};

UNIT_MAIN("usage", tests)
