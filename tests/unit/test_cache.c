/*
 * The verification cache (keys/cache.c): that it notices every change to the
 * key store's files, and that a store verifying from it refuses a key deleted
 * by another process at the very next verification, whatever way the change
 * came (the CLI's delete, a raw SQL write, a file replaced, the directory
 * removed and made again). test_store_cached runs every key store test with
 * the cache on as well.
 */

#include "keys/keys-internal.h"
#include "keys/keys.h"
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HOST "example.com"
#define NOW  ((int64_t)time(NULL))

struct fixture {
	char dir[64];
	char path[96];
};

static void fixture_init(struct fixture *fx)
{
	CU_ASSERT_FATAL(keys_init() == 0);
	snprintf(fx->dir, sizeof fx->dir, "/tmp/test_cache.XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(fx->dir) != NULL);
	snprintf(fx->path, sizeof fx->path, "%s/keys.sqlite", fx->dir);
}

static void remove_store_files(const struct fixture *fx)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		char path[128];
		snprintf(path, sizeof path, "%s%s", fx->path, suffixes[i]);
		unlink(path);
	}
}

static void fixture_finish(struct fixture *fx)
{
	remove_store_files(fx);
	CU_ASSERT(rmdir(fx->dir) == 0);
}

/* keystore_cache_verification(): 0 with signals, 1 without (SIGIO blocked). */
static int cache_mode_expected;

static struct keystore *open_cached(const struct fixture *fx)
{
	const char *err = NULL;
	struct keystore *store = keystore_open(fx->path, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(store);
	CU_ASSERT_EQUAL_FATAL(keystore_cache_verification(store), cache_mode_expected);
	return store;
}

static struct keystore *open_plain(const struct fixture *fx)
{
	const char *err = NULL;
	struct keystore *store = keystore_open(fx->path, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(store);
	return store;
}

static void create_key(struct keystore *store, struct api_key_new *key)
{
	const char *err = NULL;
	CU_ASSERT_EQUAL_FATAL(keystore_create(store, HOST, "k", NULL, key, &err), KEYS_OK);
}

static enum keys_status verify(struct keystore *store, const char *text)
{
	const char *err = NULL;
	struct api_key_match match;
	return keystore_verify(store, text, strlen(text), NOW, &match, &err);
}

/* ---- the cache module alone ---- */

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, "x", 1) == 1);
	close(fd);
}

static void states(bool signalled)
{
	struct fixture fx;
	fixture_init(&fx);
	struct key_cache *cache = key_cache_create(fx.path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
	if (signalled)
		CU_ASSERT_EQUAL_FATAL(key_cache_signal(cache), 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE); /* never filled */
	key_cache_set_rows(cache, NULL, 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);

	/* Other files in the directory are not the store's. */
	char other[128];
	snprintf(other, sizeof other, "%s/keys.sqlite.bak", fx.dir);
	touch(other);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);
	unlink(other);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);

	/* The store, its WAL, its shared memory, its rollback journal. */
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		char path[128];
		snprintf(path, sizeof path, "%s%s", fx.path, suffixes[i]);
		touch(path);
		CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE);
		key_cache_set_rows(cache, NULL, 0);
		CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);
		if (i > 0) {
			unlink(path);
			CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE);
			key_cache_set_rows(cache, NULL, 0);
		}
	}

	/* The store's file removed or moved away: a new one may appear in
	 * another directory under the same path, so unwatched until told. */
	unlink(fx.path);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_UNWATCHED);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_UNWATCHED);
	key_cache_rewatch(cache);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE);
	key_cache_set_rows(cache, NULL, 0);
	touch(fx.path);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE);
	key_cache_set_rows(cache, NULL, 0);
	snprintf(other, sizeof other, "%s/moved", fx.dir);
	CU_ASSERT_FATAL(rename(fx.path, other) == 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_UNWATCHED);
	unlink(other);
	key_cache_rewatch(cache);
	key_cache_set_rows(cache, NULL, 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);

	/* A file renamed into place. */
	snprintf(other, sizeof other, "%s/new", fx.dir);
	touch(other);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);
	CU_ASSERT_FATAL(rename(other, fx.path) == 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE);
	key_cache_set_rows(cache, NULL, 0);
	unlink(fx.path);
	key_cache_rewatch(cache);
	key_cache_set_rows(cache, NULL, 0);

	/* The directory gone (nothing holds it): unwatched until it is back,
	 * then stale. */
	CU_ASSERT_FATAL(rmdir(fx.dir) == 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_UNWATCHED);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_UNWATCHED);
	CU_ASSERT_FATAL(mkdir(fx.dir, 0700) == 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE);
	key_cache_set_rows(cache, NULL, 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);
	touch(fx.path);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE);

	/* The directory replaced by another one of the same name. */
	snprintf(other, sizeof other, "%s.old", fx.dir);
	CU_ASSERT_FATAL(rename(fx.dir, other) == 0);
	CU_ASSERT_FATAL(mkdir(fx.dir, 0700) == 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE); /* watches the new one */
	key_cache_set_rows(cache, NULL, 0);
	touch(fx.path);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE);
	char old_file[160];
	snprintf(old_file, sizeof old_file, "%s/keys.sqlite", other);
	unlink(old_file);
	rmdir(other);

	key_cache_destroy(cache);
	fixture_finish(&fx);
}

/* Every check drains the watch. */
static void test_states(void)
{
	states(false);
}

/* Checks drain only when SIGIO came: each change must still be seen by the
 * next check. */
static void test_states_signalled(void)
{
	states(true);
}

static void block_sigio(bool block)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	CU_ASSERT_FATAL(pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL) == 0);
}

/* What the signalled cache goes by: with SIGIO held back, a change goes
 * unseen (no read); let through, the next check sees it. */
static void test_signal_is_what_drains(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct key_cache *cache = key_cache_create(fx.path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
	CU_ASSERT_EQUAL_FATAL(key_cache_signal(cache), 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE);
	key_cache_set_rows(cache, NULL, 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);
	block_sigio(true);
	touch(fx.path);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);
	block_sigio(false); /* the pending signal arrives before this returns */
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE);
	key_cache_set_rows(cache, NULL, 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);
	key_cache_destroy(cache);
	fixture_finish(&fx);
}

static void ignore_signal(int sig)
{
	(void)sig;
}

/* SIGIO blocked, or someone else's: no signals, every check reads, and
 * changes are seen as ever. Someone else's handler stays. */
static void test_signal_refused(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct key_cache *cache = key_cache_create(fx.path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
	block_sigio(true);
	CU_ASSERT_EQUAL(key_cache_signal(cache), -1);
	block_sigio(false);
	struct sigaction theirs = {.sa_handler = ignore_signal}, previous, after;
	sigemptyset(&theirs.sa_mask);
	CU_ASSERT_FATAL(sigaction(SIGIO, &theirs, &previous) == 0);
	CU_ASSERT_EQUAL(key_cache_signal(cache), -1);
	CU_ASSERT_FATAL(sigaction(SIGIO, &previous, &after) == 0);
	CU_ASSERT(after.sa_handler == ignore_signal);
	key_cache_set_rows(cache, NULL, 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);
	touch(fx.path);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_STALE);
	key_cache_destroy(cache);
	fixture_finish(&fx);
}

/* Three rounds of: rows set (the check finds the cache current), the store's
 * file changed (the next check must find it stale). The checks that did not. */
static int changes_missed(struct key_cache *cache, const char *path)
{
	int missed = 0;
	for (int i = 0; i < 3; i++) {
		key_cache_set_rows(cache, NULL, 0);
		missed += key_cache_check(cache) != KEY_CACHE_CURRENT;
		touch(path);
		missed += key_cache_check(cache) != KEY_CACHE_STALE;
	}
	return missed;
}

static void *make_signalled(void *cache)
{
	CU_ASSERT_EQUAL(key_cache_signal(cache), 0);
	return NULL;
}

/* The signals go to the thread that asked for them. Once it has exited, no
 * signal comes for a change: a check from another thread must still see it. */
static void test_signal_owner_gone(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct key_cache *cache = key_cache_create(fx.path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
	pthread_t owner;
	CU_ASSERT_FATAL(pthread_create(&owner, NULL, make_signalled, cache) == 0);
	CU_ASSERT_FATAL(pthread_join(owner, NULL) == 0);
	CU_ASSERT_EQUAL(changes_missed(cache, fx.path), 0);
	CU_ASSERT_EQUAL(key_cache_signal_intact(cache), -1);
	key_cache_destroy(cache);
	fixture_finish(&fx);
}

/* A child forked after the call gets no signal for a change it makes: its
 * checks must see it all the same (exit status: the checks that did not). */
static void test_signal_after_fork(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct key_cache *cache = key_cache_create(fx.path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
	CU_ASSERT_EQUAL_FATAL(key_cache_signal(cache), 0);
	key_cache_set_rows(cache, NULL, 0);
	CU_ASSERT_EQUAL(key_cache_check(cache), KEY_CACHE_CURRENT);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0)
		_exit(changes_missed(cache, fx.path));
	int status;
	CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	key_cache_destroy(cache);
	fixture_finish(&fx);
}

/* SIGIO blocked or taken over after the call: key_cache_signal_intact()
 * says so, and from then on every check reads and sees each change. */
static void test_signal_lost_later(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct key_cache *cache = key_cache_create(fx.path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
	for (int how = 0; how < 2; how++) {
		CU_ASSERT_EQUAL_FATAL(key_cache_signal(cache), 0);
		CU_ASSERT_EQUAL(key_cache_signal_intact(cache), 0);
		struct sigaction theirs = {.sa_handler = ignore_signal}, previous;
		sigemptyset(&theirs.sa_mask);
		if (how == 0)
			block_sigio(true);
		else
			CU_ASSERT_FATAL(sigaction(SIGIO, &theirs, &previous) == 0);
		errno = 0;
		CU_ASSERT_EQUAL(key_cache_signal_intact(cache), -1);
		CU_ASSERT_EQUAL(errno, how == 0 ? ENOTSUP : EBUSY);
		CU_ASSERT_EQUAL(changes_missed(cache, fx.path), 0);
		if (how == 0)
			block_sigio(false);
		else
			CU_ASSERT_FATAL(sigaction(SIGIO, &previous, NULL) == 0);
		key_cache_check(cache); /* the signal held back */
	}
	key_cache_destroy(cache);
	fixture_finish(&fx);
}

/* Once the handler is found taken, the descriptor raises no more SIGIO: if
 * SIGIO then goes back to its default action, a change does not end the
 * process (a child tries: exit status 0, or killed by SIGIO). */
static void test_no_signal_once_taken(void)
{
	struct fixture fx;
	fixture_init(&fx);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct key_cache *cache = key_cache_create(fx.path);
		if (cache == NULL || key_cache_signal(cache) != 0)
			_exit(2);
		struct sigaction theirs = {.sa_handler = ignore_signal};
		sigemptyset(&theirs.sa_mask);
		sigaction(SIGIO, &theirs, NULL);
		if (key_cache_signal_intact(cache) != -1)
			_exit(3);
		signal(SIGIO, SIG_DFL);
		touch(fx.path);
		_exit(key_cache_check(cache) == KEY_CACHE_STALE ? 0 : 4);
	}
	int status;
	CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (WIFSIGNALED(status))
		fprintf(stderr, "\n  child killed by signal %d\n", WTERMSIG(status));
	fixture_finish(&fx);
}

static void test_unwatchable(void)
{
	CU_ASSERT_PTR_NULL(key_cache_create("/nonexistent-dir-for-test/keys.sqlite"));
}

static void test_find(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct key_cache *cache = key_cache_create(fx.path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
	enum { N = 257 };
	struct key_cache_row *rows = calloc(N, sizeof *rows);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rows);
	for (int i = 0; i < N; i++) /* out of order, of varying length */
		snprintf(rows[i].match.id, sizeof rows[i].match.id, "id%d", (i * 97) % N);
	key_cache_set_rows(cache, rows, N);
	for (int i = 0; i < N; i++) {
		char id[16];
		int len = snprintf(id, sizeof id, "id%d", i);
		const struct key_cache_row *row = key_cache_find(cache, id, (size_t)len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(row);
		CU_ASSERT_STRING_EQUAL(row->match.id, id);
	}
	CU_ASSERT_PTR_NULL(key_cache_find(cache, "id", 2));
	CU_ASSERT_PTR_NULL(key_cache_find(cache, "id1000", 6));
	CU_ASSERT_PTR_NULL(key_cache_find(cache, "id10x", 4 + 1));
	CU_ASSERT_PTR_NOT_NULL(key_cache_find(cache, "id10x", 4)); /* a prefix of the text */
	char longest[KEYS_ID_MAX + 2];
	memset(longest, 'a', sizeof longest);
	CU_ASSERT_PTR_NULL(key_cache_find(cache, longest, sizeof longest));
	key_cache_set_rows(cache, NULL, 0);
	CU_ASSERT_PTR_NULL(key_cache_find(cache, "id1", 3));
	key_cache_destroy(cache);
	fixture_finish(&fx);
}

/* ---- a store verifying from the cache ---- */

/* A daemon's store verifying from the cache and a CLI's beside it, the CLI
 * having made n keys that the daemon verifies. */
static void open_both_with_keys(const struct fixture *fx, struct keystore **daemon,
                                struct keystore **cli, struct api_key_new *keys, int n)
{
	*daemon = open_cached(fx);
	*cli = open_plain(fx);
	for (int i = 0; i < n; i++)
		create_key(*cli, &keys[i]);
	for (int i = 0; i < n; i++)
		CU_ASSERT_EQUAL(verify(*daemon, keys[i].text), KEYS_OK);
}

static void test_delete_by_others_seen_at_once(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *daemon, *cli;
	enum { N = 40 };
	struct api_key_new keys[N];
	const char *err = NULL;
	open_both_with_keys(&fx, &daemon, &cli, keys, N);
	/* Each delete is refused by the very next verification, and only it. */
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(keystore_delete(cli, HOST, keys[i].id, &err), KEYS_OK);
		CU_ASSERT_EQUAL(verify(daemon, keys[i].text), KEYS_DENIED);
		if (i + 1 < N)
			CU_ASSERT_EQUAL(verify(daemon, keys[i + 1].text), KEYS_OK);
		keys_wipe(&keys[i]);
	}
	keystore_close(cli);
	keystore_close(daemon);
	fixture_finish(&fx);
}

/* The store's cache without signals (SIGIO blocked when it was made): each
 * verification reads the watch, and deletes are refused at once as well. */
static void test_delete_seen_at_once_without_signals(void)
{
	block_sigio(true);
	cache_mode_expected = 1;
	test_delete_by_others_seen_at_once();
	cache_mode_expected = 0;
	block_sigio(false);
}

/* A second call says what the first did. */
static void test_cache_mode_repeated(void)
{
	struct fixture fx;
	fixture_init(&fx);
	for (int blocked = 0; blocked < 2; blocked++) {
		block_sigio(blocked);
		const char *err = NULL;
		struct keystore *store = keystore_open(fx.path, &err);
		CU_ASSERT_PTR_NOT_NULL_FATAL(store);
		CU_ASSERT_EQUAL(keystore_cache_verification(store), blocked);
		block_sigio(false);
		CU_ASSERT_EQUAL(keystore_cache_verification(store), blocked);
		keystore_close(store);
	}
	fixture_finish(&fx);
}

/* SIGIO blocked after the store began verifying from the cache: within the
 * path check's second the store notices and reads on every verification,
 * and a delete is refused by the next one. */
static void test_delete_seen_when_signals_stop(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *daemon, *cli;
	enum { N = 3 };
	struct api_key_new keys[N];
	const char *err = NULL;
	open_both_with_keys(&fx, &daemon, &cli, keys, N);
	block_sigio(true);
	nanosleep(&(struct timespec){.tv_sec = 1, .tv_nsec = 100 * 1000 * 1000}, NULL);
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(keystore_delete(cli, HOST, keys[i].id, &err), KEYS_OK);
		CU_ASSERT_EQUAL(verify(daemon, keys[i].text), KEYS_DENIED);
		keys_wipe(&keys[i]);
	}
	block_sigio(false);
	keystore_close(cli);
	keystore_close(daemon);
	fixture_finish(&fx);
}

static void test_raw_sql_write_seen(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *daemon = open_cached(&fx);
	struct api_key_new key;
	create_key(daemon, &key);
	CU_ASSERT_EQUAL(verify(daemon, key.text), KEYS_OK);
	char wrong[sizeof key.text];
	memcpy(wrong, key.text, sizeof wrong);
	wrong[KEYS_ID_LEN + 1] ^= 1; /* the secret one character off */
	CU_ASSERT_EQUAL(verify(daemon, wrong), KEYS_DENIED);

	/* An expiry set behind the store's back, by another connection. */
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(fx.path, &db), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "UPDATE api_keys SET expires = 1", NULL, NULL, NULL),
	                SQLITE_OK);
	CU_ASSERT_EQUAL(verify(daemon, key.text), KEYS_DENIED);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "UPDATE api_keys SET expires = NULL", NULL, NULL, NULL),
	                SQLITE_OK);
	CU_ASSERT_EQUAL(verify(daemon, key.text), KEYS_OK);
	sqlite3_close(db);
	keys_wipe(&key);
	keystore_close(daemon);
	fixture_finish(&fx);
}

static void test_own_usage_seen(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *daemon = open_cached(&fx);
	struct api_key_new key;
	create_key(daemon, &key);
	const char *err = NULL;
	struct api_key_match match;
	CU_ASSERT_EQUAL(keystore_verify(daemon, key.text, strlen(key.text), NOW, &match, &err),
	                KEYS_OK);
	CU_ASSERT_EQUAL(match.window_count, 0);
	struct api_key_usage usage = {key.id, 3, NOW, NOW - 10, 3};
	CU_ASSERT_EQUAL(keystore_record_usage(daemon, &usage, 1, &err), KEYS_OK);
	CU_ASSERT_EQUAL(keystore_verify(daemon, key.text, strlen(key.text), NOW, &match, &err),
	                KEYS_OK);
	CU_ASSERT_EQUAL(match.window_count, 3);
	CU_ASSERT_EQUAL(match.window_start, NOW - 10);
	CU_ASSERT_STRING_EQUAL(match.id, key.id);
	CU_ASSERT_STRING_EQUAL(match.host, HOST);
	keys_wipe(&key);
	keystore_close(daemon);
	fixture_finish(&fx);
}

/*
 * A writer that stays open (a second daemon on the same store, an sqlite3
 * shell) deleting keys while the store keeps verifying. A WAL commit writes
 * its frames (the event) and only then publishes them in the -shm index,
 * which no event tells: a reload between the two read the old keys and
 * took them as current. The writer (a thread with its own connection)
 * deletes while the store verifies in a loop; each delete must be refused
 * by the first verification after it.
 */
enum { WRITER_ROUNDS = 40 };

struct writer {
	const char *path;
	int to_writer[2], to_daemon[2];
	bool failed;
};

static void *write_and_delete(void *arg)
{
	struct writer *w = arg;
	const char *err = NULL;
	struct keystore *store = keystore_open(w->path, &err);
	w->failed = store == NULL;
	for (int i = 0; !w->failed && i < WRITER_ROUNDS; i++) {
		struct api_key_new key;
		char go;
		w->failed = keystore_create(store, HOST, "k", NULL, &key, &err) != KEYS_OK ||
		            write(w->to_daemon[1], key.text, sizeof key.text) != sizeof key.text ||
		            read(w->to_writer[0], &go, 1) != 1 ||
		            keystore_delete(store, HOST, key.id, &err) != KEYS_OK ||
		            write(w->to_daemon[1], "d", 1) != 1;
		keys_wipe(&key);
	}
	keystore_close(store);
	close(w->to_daemon[1]); /* the store's side stops waiting */
	return NULL;
}

static void test_delete_during_verification(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *daemon = open_cached(&fx);
	struct writer w = {.path = fx.path};
	CU_ASSERT_FATAL(pipe(w.to_writer) == 0 && pipe(w.to_daemon) == 0);
	CU_ASSERT_FATAL(fcntl(w.to_daemon[0], F_SETFL, O_NONBLOCK) == 0);
	pthread_t thread;
	CU_ASSERT_FATAL(pthread_create(&thread, NULL, write_and_delete, &w) == 0);
	int accepted = 0, rounds = 0;
	for (; rounds < WRITER_ROUNDS; rounds++) {
		char text[sizeof(struct api_key_new){0}.text];
		char done;
		ssize_t n;
		while ((n = read(w.to_daemon[0], text, sizeof text)) < 0)
			;
		if (n != (ssize_t)sizeof text)
			break; /* the writer failed */
		CU_ASSERT_EQUAL(verify(daemon, text), KEYS_OK);
		CU_ASSERT_FATAL(write(w.to_writer[1], "g", 1) == 1);
		while ((n = read(w.to_daemon[0], &done, 1)) < 0)
			verify(daemon, text); /* while the writer commits */
		accepted += verify(daemon, text) != KEYS_DENIED;
	}
	close(w.to_writer[1]); /* a writer still waiting for "g" stops */
	CU_ASSERT_EQUAL(pthread_join(thread, NULL), 0);
	CU_ASSERT_FALSE(w.failed);
	CU_ASSERT_EQUAL(rounds, WRITER_ROUNDS);
	CU_ASSERT_EQUAL(accepted, 0);
	close(w.to_writer[0]);
	close(w.to_daemon[0]);
	keystore_close(daemon);
	fixture_finish(&fx);
}

/* The directory removed: the keys held keep working (as without the cache);
 * made again with a new store: only the new store's keys work, and deletes
 * in it are seen at once again (the watch is back). */
static void test_directory_removed_and_back(void)
{
	struct fixture fx;
	fixture_init(&fx);
	struct keystore *daemon = open_cached(&fx);
	struct api_key_new old, fresh, later;
	create_key(daemon, &old);
	CU_ASSERT_EQUAL(verify(daemon, old.text), KEYS_OK);
	remove_store_files(&fx);
	CU_ASSERT_FATAL(rmdir(fx.dir) == 0);
	CU_ASSERT_EQUAL(verify(daemon, old.text), KEYS_OK);

	CU_ASSERT_FATAL(mkdir(fx.dir, 0700) == 0);
	struct keystore *cli = open_plain(&fx);
	create_key(cli, &fresh);
	CU_ASSERT_EQUAL(verify(daemon, old.text), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify(daemon, fresh.text), KEYS_OK);
	create_key(cli, &later);
	CU_ASSERT_EQUAL(verify(daemon, later.text), KEYS_OK);
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_delete(cli, HOST, fresh.id, &err), KEYS_OK);
	CU_ASSERT_EQUAL(verify(daemon, fresh.text), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify(daemon, later.text), KEYS_OK);
	keystore_close(cli);
	keys_wipe(&old);
	keys_wipe(&fresh);
	keys_wipe(&later);
	keystore_close(daemon);
	fixture_finish(&fx);
}

/* An ancestor of the directory renamed and made again: the watch cannot see
 * it, the once-a-second check of the path does. */
static void test_ancestor_replaced(void)
{
	struct fixture fx;
	fixture_init(&fx);
	char a[96], b[112], path[128], moved[96];
	snprintf(a, sizeof a, "%s/a", fx.dir);
	snprintf(b, sizeof b, "%s/b", a);
	snprintf(path, sizeof path, "%s/keys.sqlite", b);
	snprintf(moved, sizeof moved, "%s/gone", fx.dir);
	CU_ASSERT_FATAL(mkdir(a, 0700) == 0 && mkdir(b, 0700) == 0);
	const char *err = NULL;
	struct keystore *daemon = keystore_open(path, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(daemon);
	CU_ASSERT_EQUAL_FATAL(keystore_cache_verification(daemon), 0);
	struct api_key_new old, fresh;
	create_key(daemon, &old);
	CU_ASSERT_EQUAL(verify(daemon, old.text), KEYS_OK);

	CU_ASSERT_FATAL(rename(a, moved) == 0);
	CU_ASSERT_FATAL(mkdir(a, 0700) == 0 && mkdir(b, 0700) == 0);
	struct keystore *cli = keystore_open(path, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cli);
	create_key(cli, &fresh);
	keystore_close(cli);
	struct timespec pause = {1, 100 * 1000 * 1000};
	nanosleep(&pause, NULL);
	CU_ASSERT_EQUAL(verify(daemon, old.text), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify(daemon, fresh.text), KEYS_OK);
	keystore_close(daemon);

	static const char *const files[] = {"keys.sqlite", "keys.sqlite-wal", "keys.sqlite-shm"};
	const char *dirs[] = {b, a};
	char moved_b[128];
	snprintf(moved_b, sizeof moved_b, "%s/b", moved);
	const char *old_dirs[] = {moved_b, moved};
	for (size_t i = 0; i < 3; i++) {
		char f[160];
		snprintf(f, sizeof f, "%s/%s", b, files[i]);
		unlink(f);
		snprintf(f, sizeof f, "%s/%s", moved_b, files[i]);
		unlink(f);
	}
	for (size_t i = 0; i < 2; i++) {
		CU_ASSERT(rmdir(dirs[i]) == 0);
		CU_ASSERT(rmdir(old_dirs[i]) == 0);
	}
	keys_wipe(&old);
	keys_wipe(&fresh);
	CU_ASSERT(rmdir(fx.dir) == 0);
}

/* The same, but another operation (the daemon's usage write) reopens the
 * store at its new place before the once-a-second check: the cache must
 * follow it there, not keep the old file's keys and the old directory. */
static void test_ancestor_replaced_then_written(void)
{
	struct fixture fx;
	fixture_init(&fx);
	char a[96], b[112], path[128], moved[96];
	snprintf(a, sizeof a, "%s/a", fx.dir);
	snprintf(b, sizeof b, "%s/b", a);
	snprintf(path, sizeof path, "%s/keys.sqlite", b);
	snprintf(moved, sizeof moved, "%s/gone", fx.dir);
	CU_ASSERT_FATAL(mkdir(a, 0700) == 0 && mkdir(b, 0700) == 0);
	const char *err = NULL;
	struct keystore *daemon = keystore_open(path, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(daemon);
	CU_ASSERT_EQUAL_FATAL(keystore_cache_verification(daemon), 0);
	struct api_key_new old, fresh, gone;
	create_key(daemon, &old);
	CU_ASSERT_EQUAL(verify(daemon, old.text), KEYS_OK);

	CU_ASSERT_FATAL(rename(a, moved) == 0);
	CU_ASSERT_FATAL(mkdir(a, 0700) == 0 && mkdir(b, 0700) == 0);
	struct keystore *cli = keystore_open(path, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cli);
	create_key(cli, &fresh);
	create_key(cli, &gone);
	struct api_key_usage usage = {"nobody", 1, NOW, NOW, 1};
	CU_ASSERT_EQUAL(keystore_record_usage(daemon, &usage, 1, &err), KEYS_OK);
	struct timespec pause = {1, 100 * 1000 * 1000};
	nanosleep(&pause, NULL);
	CU_ASSERT_EQUAL(verify(daemon, old.text), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify(daemon, fresh.text), KEYS_OK);
	CU_ASSERT_EQUAL(verify(daemon, gone.text), KEYS_OK);
	CU_ASSERT_EQUAL(keystore_delete(cli, HOST, gone.id, &err), KEYS_OK);
	CU_ASSERT_EQUAL(verify(daemon, gone.text), KEYS_DENIED);
	keystore_close(cli);
	keystore_close(daemon);

	static const char *const files[] = {"keys.sqlite", "keys.sqlite-wal", "keys.sqlite-shm"};
	char moved_b[128];
	snprintf(moved_b, sizeof moved_b, "%s/b", moved);
	for (size_t i = 0; i < 3; i++) {
		char f[160];
		snprintf(f, sizeof f, "%s/%s", b, files[i]);
		unlink(f);
		snprintf(f, sizeof f, "%s/%s", moved_b, files[i]);
		unlink(f);
	}
	CU_ASSERT(rmdir(b) == 0 && rmdir(a) == 0);
	CU_ASSERT(rmdir(moved_b) == 0 && rmdir(moved) == 0);
	keys_wipe(&old);
	keys_wipe(&fresh);
	keys_wipe(&gone);
	CU_ASSERT(rmdir(fx.dir) == 0);
}

/* The store's path a symlink to a file in another directory (a store kept
 * on another disk): SQLite follows the link, so its writes, WAL included,
 * happen in the target's directory, and a delete made through the link is
 * refused at once all the same. */
static void test_store_file_symlinked(void)
{
	struct fixture fx, target;
	fixture_init(&fx);
	fixture_init(&target);
	CU_ASSERT_FATAL(symlink(target.path, fx.path) == 0);
	struct keystore *daemon = open_cached(&fx);
	struct keystore *cli = open_plain(&fx);
	struct api_key_new gone, kept;
	create_key(cli, &gone);
	create_key(cli, &kept);
	CU_ASSERT_EQUAL(verify(daemon, gone.text), KEYS_OK);
	CU_ASSERT_EQUAL(verify(daemon, kept.text), KEYS_OK);
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_delete(cli, HOST, gone.id, &err), KEYS_OK);
	keystore_close(cli);
	CU_ASSERT_EQUAL(verify(daemon, gone.text), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify(daemon, kept.text), KEYS_OK);
	keystore_close(daemon);
	keys_wipe(&gone);
	keys_wipe(&kept);
	fixture_finish(&fx);
	fixture_finish(&target);
}

/* The link retargeted (ln -sfn: a new link renamed over it), at once: the
 * link's directory is watched as well as the target's. */
static void test_store_symlink_retargeted(void)
{
	struct fixture fx, first, second;
	fixture_init(&fx);
	fixture_init(&first);
	fixture_init(&second);
	CU_ASSERT_FATAL(symlink(first.path, fx.path) == 0);
	struct keystore *daemon = open_cached(&fx);
	struct keystore *cli = open_plain(&second);
	struct api_key_new old, fresh;
	create_key(daemon, &old);
	create_key(cli, &fresh);
	CU_ASSERT_EQUAL(verify(daemon, old.text), KEYS_OK);
	CU_ASSERT_EQUAL(verify(daemon, fresh.text), KEYS_DENIED);

	char link[128];
	snprintf(link, sizeof link, "%s/new-link", fx.dir);
	CU_ASSERT_FATAL(symlink(second.path, link) == 0);
	CU_ASSERT_FATAL(rename(link, fx.path) == 0);
	CU_ASSERT_EQUAL(verify(daemon, old.text), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify(daemon, fresh.text), KEYS_OK);
	/* and the new target's directory is the one watched now */
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_delete(cli, HOST, fresh.id, &err), KEYS_OK);
	CU_ASSERT_EQUAL(verify(daemon, fresh.text), KEYS_DENIED);
	keystore_close(cli);
	keystore_close(daemon);
	keys_wipe(&old);
	keys_wipe(&fresh);
	fixture_finish(&fx);
	fixture_finish(&first);
	fixture_finish(&second);
}

/* A link to a file beside it (one directory, one watch for both). */
static void test_store_symlink_in_same_directory(void)
{
	struct fixture fx;
	fixture_init(&fx);
	char v2[128], link[128];
	snprintf(v2, sizeof v2, "%s-v2", fx.path);
	snprintf(link, sizeof link, "%s.link", fx.path);
	CU_ASSERT_FATAL(symlink("keys.sqlite-v1", fx.path) == 0);
	struct keystore *daemon = open_cached(&fx);
	const char *err = NULL;
	struct keystore *cli = keystore_open(v2, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cli);
	struct api_key_new old, fresh;
	create_key(daemon, &old);
	create_key(cli, &fresh);
	CU_ASSERT_EQUAL(verify(daemon, old.text), KEYS_OK);
	CU_ASSERT_FATAL(symlink("keys.sqlite-v2", link) == 0);
	CU_ASSERT_FATAL(rename(link, fx.path) == 0);
	CU_ASSERT_EQUAL(verify(daemon, old.text), KEYS_DENIED);
	CU_ASSERT_EQUAL(verify(daemon, fresh.text), KEYS_OK);
	CU_ASSERT_EQUAL(keystore_delete(cli, HOST, fresh.id, &err), KEYS_OK);
	CU_ASSERT_EQUAL(verify(daemon, fresh.text), KEYS_DENIED);
	keystore_close(cli);
	keystore_close(daemon);
	keys_wipe(&old);
	keys_wipe(&fresh);
	static const char *const suffixes[] = {"-v1", "-v1-wal", "-v1-shm",
	                                       "-v2", "-v2-wal", "-v2-shm"};
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		char path[160];
		snprintf(path, sizeof path, "%s%s", fx.path, suffixes[i]);
		unlink(path);
	}
	fixture_finish(&fx);
}

static const struct unit_test tests[] = {
    {"cache states follow the store's files", test_states},
    {"cache states follow the store's files, drained on SIGIO", test_states_signalled},
    {"a signalled cache drains when SIGIO comes", test_signal_is_what_drains},
    {"SIGIO blocked or taken: the cache reads on every check", test_signal_refused},
    {"the thread given the signals exited: checks read", test_signal_owner_gone},
    {"a child forked after: its checks read", test_signal_after_fork},
    {"SIGIO blocked or taken later: noticed, checks read", test_signal_lost_later},
    {"... and no more SIGIO raised once taken", test_no_signal_once_taken},
    {"an unwatchable directory gives no cache", test_unwatchable},
    {"binary search finds every ID and no other", test_find},
    {"a delete by another process is refused at once", test_delete_by_others_seen_at_once},
    {"... and without signals", test_delete_seen_at_once_without_signals},
    {"keystore_cache_verification() called twice", test_cache_mode_repeated},
    {"... and when signals stop", test_delete_seen_when_signals_stop},
    {"a raw SQL write is seen at once", test_raw_sql_write_seen},
    {"a delete while verifying, by a writer kept open", test_delete_during_verification},
    {"the store's own usage writes are seen", test_own_usage_seen},
    {"directory removed and made again", test_directory_removed_and_back},
    {"an ancestor directory replaced is seen within a second", test_ancestor_replaced},
    {"an ancestor replaced, then the store reopened by a write",
     test_ancestor_replaced_then_written},
    {"a store path that is a symlink to another directory", test_store_file_symlinked},
    {"the store's symlink retargeted", test_store_symlink_retargeted},
    {"the store's symlink to a file beside it", test_store_symlink_in_same_directory},
    {NULL, NULL},
};

UNIT_MAIN("cache", tests)
