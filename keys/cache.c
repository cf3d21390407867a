/*
 * The verification cache: every key's verification row in memory, sorted by
 * ID, for a long-lived store that verifies a key on every request.
 *
 * Reading SQLite on every request takes and drops a read lock (fcntl twice),
 * an fstat and a stat: most of the cost of refusing a wrong key. The cache
 * answers from memory instead and stays exactly as fresh: the key store's
 * directory is watched with inotify, and the kernel queues an event inside the
 * write() of a change's WAL frames, before the writer (the CLI's delete)
 * returns. A request sent after that is read after the event is queued, so
 * draining the queue at each verification (one read() that normally fails with
 * EAGAIN) sees every change committed before the request was sent. The commit
 * becomes visible a moment after that write, with no event of its own: the
 * store reloads under the write lock (load_rows() in store.c).
 *
 * That read() is a system call on every request, a tenth of the cost of
 * refusing a wrong key. key_cache_signal() makes it one per change instead:
 * the inotify descriptor raises SIGIO (O_ASYNC) at the verifying thread when
 * an event is queued, and the handler only counts. The signal is made
 * pending inside the writer's write(), before the request is sent; the
 * thread takes it on its way out of the recv() that reads the request, so
 * the count has moved before the request is verified, and a check that
 * finds it where it was needs no read().
 *
 * While the watch cannot be trusted (the directory removed or moved away, or
 * the store's file removed or moved out of it: a new file may then appear
 * elsewhere under the same path), key_cache_check() says so, and the store
 * verifies through SQLite as before until its file is back at the path and
 * key_cache_rewatch() watches the directory the path names then.
 */

#include "keys-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define WATCH_MASK                                                                                 \
	(IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |        \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct key_cache {
	int fd;          /* inotify instance, non-blocking */
	int wd;          /* watch of dir; -1 while there is none */
	int link_wd;     /* watch of link_dir (may equal wd); -1 while there is none */
	char *path;      /* the key store's path as given */
	char *dir;       /* directory holding the key store, symlinks resolved */
	char *base;      /* the key store's file name; its -wal, -shm, -journal too */
	char *link_dir;  /* while the path itself is a symlink: its directory, */
	char *link_base; /* and its name; else NULL */
	bool stale;      /* rows do not reflect the file: reload before use */
	bool file_left;  /* the store's file was removed or moved out of dir, or the
	                    link replaced: the path may name another file now */
	struct key_cache_row *rows;
	size_t n_rows;
	bool signalled;          /* key_cache_signal(): drain only when signals came */
	unsigned drained_signal; /* the count of signals at the last drain */
	uint64_t owner;          /* the thread the signals go to (thread_serial()), */
	unsigned owner_forks;    /* in the process forks had made then */
};

/* SIGIO received, in all: events may be queued. Lock-free, so the handler
 * may touch it. */
static atomic_uint signals;

static void on_sigio(int sig)
{
	(void)sig;
	atomic_fetch_add_explicit(&signals, 1, memory_order_relaxed);
}

/*
 * The signals go to one thread of one process. A check from any other (the
 * owner exited, or this is a child forked after the call) must not take the
 * unchanged count for "nothing changed": the events raise no signal here.
 * Telling them apart costs no system call: a serial number per thread, never
 * reused (a thread ID and a thread-local address are, once a thread exits),
 * and a count of forks, moved in every child.
 */
static _Thread_local uint64_t this_thread;
static atomic_uint_fast64_t threads_numbered;
static unsigned forks;
static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;

static uint64_t thread_serial(void)
{
	if (this_thread == 0)
		this_thread = atomic_fetch_add(&threads_numbered, 1) + 1;
	return this_thread;
}

static void in_child(void)
{
	forks++;
}

static bool forks_counted;

static void add_fork_handler(void)
{
	forks_counted = pthread_atfork(NULL, NULL, in_child) == 0;
}

static bool signals_come_here(const struct key_cache *cache)
{
	return cache->owner == this_thread && cache->owner_forks == forks;
}

static char *dup_dirname(const char *path)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return NULL;
	char *dir = strdup(dirname(copy));
	free(copy);
	return dir;
}

static char *dup_basename(const char *path)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return NULL;
	char *base = strdup(basename(copy));
	free(copy);
	return base;
}

/*
 * SQLite follows a symlink at the path and keeps its WAL beside the file
 * linked to: the directory watched is the target's, or a store kept on
 * another disk through a link would change unseen. The link's own directory
 * is watched too, to see the link replaced. (A link further up, or an
 * ancestor replaced, is seen by the store's check of the path, which calls
 * key_cache_rewatch().)
 */
static int locate(struct key_cache *cache)
{
	char *real = realpath(cache->path, NULL); /* NULL: the file is gone, watch the path's */
	struct stat st;
	bool link = lstat(cache->path, &st) == 0 && S_ISLNK(st.st_mode);
	char *dir = dup_dirname(real != NULL ? real : cache->path);
	char *base = dup_basename(real != NULL ? real : cache->path);
	char *link_dir = link ? dup_dirname(cache->path) : NULL;
	char *link_base = link ? dup_basename(cache->path) : NULL;
	free(real);
	if (dir == NULL || base == NULL || (link && (link_dir == NULL || link_base == NULL))) {
		free(dir);
		free(base);
		free(link_dir);
		free(link_base);
		return -1;
	}
	free(cache->dir);
	free(cache->base);
	free(cache->link_dir);
	free(cache->link_base);
	cache->dir = dir;
	cache->base = base;
	cache->link_dir = link_dir;
	cache->link_base = link_base;
	return 0;
}

static void watch(struct key_cache *cache)
{
	cache->wd = cache->dir != NULL ? inotify_add_watch(cache->fd, cache->dir, WATCH_MASK) : -1;
	cache->link_wd = cache->link_dir != NULL
	                     ? inotify_add_watch(cache->fd, cache->link_dir, WATCH_MASK)
	                     : -1;
	cache->stale = true; /* whatever happened while nothing watched */
}

static void unwatch(struct key_cache *cache)
{
	if (cache->wd >= 0)
		inotify_rm_watch(cache->fd, cache->wd);
	if (cache->link_wd >= 0 && cache->link_wd != cache->wd)
		inotify_rm_watch(cache->fd, cache->link_wd);
	cache->wd = cache->link_wd = -1;
}

/* Every watch the path needs is in place. */
static bool watched(const struct key_cache *cache)
{
	return cache->wd >= 0 && (cache->link_dir == NULL || cache->link_wd >= 0);
}

struct key_cache *key_cache_create(const char *path)
{
	struct key_cache *cache = calloc(1, sizeof *cache);
	if (cache == NULL)
		return NULL;
	cache->path = strdup(path);
	cache->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (cache->path == NULL || cache->fd < 0 || locate(cache) < 0)
		goto err;
	watch(cache);
	if (!watched(cache))
		goto err;
	return cache;

err:
	key_cache_destroy(cache);
	return NULL;
}

void key_cache_destroy(struct key_cache *cache)
{
	if (cache == NULL)
		return;
	if (cache->fd >= 0)
		close(cache->fd);
	free(cache->rows);
	free(cache->path);
	free(cache->dir);
	free(cache->base);
	free(cache->link_dir);
	free(cache->link_base);
	free(cache);
}

/* An event's name is the store's file or one of SQLite's files beside it. */
static bool names_store(const struct key_cache *cache, const struct inotify_event *ev)
{
	if (ev->len == 0)
		return false;
	size_t n = strlen(cache->base);
	if (strncmp(ev->name, cache->base, n) != 0)
		return false;
	const char *rest = ev->name + n;
	return *rest == '\0' || strcmp(rest, "-wal") == 0 || strcmp(rest, "-shm") == 0 ||
	       strcmp(rest, "-journal") == 0;
}

static void read_events(struct key_cache *cache)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t got;
	while ((got = read(cache->fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + got;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF) &&
			    (ev->wd == cache->wd || ev->wd == cache->link_wd)) {
				if (!(ev->mask & IN_IGNORED))
					inotify_rm_watch(cache->fd, ev->wd);
				if (ev->wd == cache->wd)
					cache->wd = -1;
				if (ev->wd == cache->link_wd)
					cache->link_wd = -1;
			}
			if (ev->mask & IN_Q_OVERFLOW || names_store(cache, ev))
				cache->stale = true;
			if (ev->mask & (IN_DELETE | IN_MOVED_FROM) && ev->len > 0 &&
			    strcmp(ev->name, cache->base) == 0)
				cache->file_left = true;
			if (ev->wd == cache->link_wd && ev->len > 0 &&
			    strcmp(ev->name, cache->link_base) == 0)
				cache->file_left = true;
			p += sizeof *ev + ev->len;
		}
	}
}

void key_cache_rewatch(struct key_cache *cache)
{
	read_events(cache);
	unwatch(cache);
	cache->file_left = false;
	locate(cache); /* out of memory: the directory found before */
	/* A new watch has a new descriptor (they are not reused at once), so the
	 * IN_IGNORED of the one removed is told apart by read_events(). */
	watch(cache);
}

/* Whether SIGIO reaches on_sigio() in this thread. errno: ENOTSUP when it is
 * blocked here or the count is not lock-free, EBUSY when SIGIO has another
 * handler. */
static bool sigio_counted(struct sigaction *current)
{
	sigset_t blocked;
	if (!atomic_is_lock_free(&signals) || sigaction(SIGIO, NULL, current) < 0 ||
	    pthread_sigmask(SIG_BLOCK, NULL, &blocked) != 0 || sigismember(&blocked, SIGIO)) {
		errno = ENOTSUP;
		return false;
	}
	if (current->sa_handler != on_sigio) {
		errno = EBUSY;
		return false;
	}
	return true;
}

/*
 * SIGIO from the inotify descriptor, to this thread. Not when SIGIO has a
 * handler of someone else's (it stays theirs), is blocked in this thread (it
 * would wait), or the count is not lock-free.
 */
int key_cache_signal(struct key_cache *cache)
{
	struct sigaction current;
	if (pthread_once(&fork_handler_once, add_fork_handler) != 0 || !forks_counted) {
		errno = ENOMEM;
		return -1;
	}
	if (!sigio_counted(&current)) {
		if (errno != EBUSY)
			return -1;
		if ((current.sa_flags & SA_SIGINFO) || current.sa_handler != SIG_DFL)
			return -1;
		struct sigaction action = {.sa_handler = on_sigio, .sa_flags = SA_RESTART};
		sigemptyset(&action.sa_mask);
		if (sigaction(SIGIO, &action, NULL) < 0)
			return -1;
	}
	struct f_owner_ex owner = {.type = F_OWNER_TID, .pid = gettid()};
	int flags = fcntl(cache->fd, F_GETFL);
	if (fcntl(cache->fd, F_SETOWN_EX, &owner) < 0 || flags < 0 ||
	    fcntl(cache->fd, F_SETFL, flags | O_ASYNC) < 0)
		return -1;
	cache->owner = thread_serial();
	cache->owner_forks = forks;
	/* Events queued before O_ASYNC raised no signal: drain once. */
	cache->drained_signal = atomic_load(&signals) - 1;
	cache->signalled = true;
	return 0;
}

int key_cache_signal_intact(struct key_cache *cache)
{
	struct sigaction current;
	if (!cache->signalled)
		return 0;
	if (signals_come_here(cache) && sigio_counted(&current))
		return 0;
	int saved = errno;
	cache->signalled = false;
	if (signals_come_here(cache)) {
		/* No more signals: SIGIO set back to its default later would end
		 * the process at the next change. (Not in another process: the
		 * open file, and its flags, are shared with the one that set it.) */
		int flags = fcntl(cache->fd, F_GETFL);
		if (flags >= 0)
			fcntl(cache->fd, F_SETFL, flags & ~O_ASYNC);
		errno = saved;
	} else {
		errno = ESRCH; /* another thread, or a process forked since */
	}
	return -1;
}

enum key_cache_state key_cache_check(struct key_cache *cache)
{
	if (cache->signalled && signals_come_here(cache) && watched(cache) && !cache->file_left) {
		unsigned now = atomic_load(&signals);
		if (now == cache->drained_signal)
			return cache->stale ? KEY_CACHE_STALE : KEY_CACHE_CURRENT;
		/* Before the read: a signal during it drains again next time. */
		cache->drained_signal = now;
	}
	read_events(cache);
	if (!watched(cache) && !cache->file_left) {
		unwatch(cache);
		watch(cache);
	}
	if (!watched(cache) || cache->file_left)
		return KEY_CACHE_UNWATCHED;
	return cache->stale ? KEY_CACHE_STALE : KEY_CACHE_CURRENT;
}

static int compare_rows(const void *a, const void *b)
{
	const struct key_cache_row *x = a, *y = b;
	return strcmp(x->match.id, y->match.id);
}

void key_cache_set_rows(struct key_cache *cache, struct key_cache_row *rows, size_t n)
{
	free(cache->rows);
	if (n > 1) /* qsort() must not get NULL, which an empty store gives */
		qsort(rows, n, sizeof *rows, compare_rows);
	cache->rows = rows;
	cache->n_rows = n;
	cache->stale = false;
}

/*
 * Binary search over the sorted IDs. A miss does the same number of probes
 * as a hit on a table of that size, give or take the last one, and the caller
 * hashes and compares in constant time either way.
 */
const struct key_cache_row *key_cache_find(const struct key_cache *cache, const char *id,
                                           size_t id_len)
{
	if (id_len > KEYS_ID_MAX)
		return NULL;
	char wanted[KEYS_ID_MAX + 1];
	memcpy(wanted, id, id_len);
	wanted[id_len] = '\0';
	size_t lo = 0, hi = cache->n_rows;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(wanted, cache->rows[mid].match.id);
		if (cmp == 0)
			return &cache->rows[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
