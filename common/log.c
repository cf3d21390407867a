#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024
#define BUFFER_BYTES   (16 * 1024)

static enum log_level min_level = LOG_INFO;

static const char *const level_names[] = {
    [LOG_DEBUG] = "debug",
    [LOG_INFO] = "info",
    [LOG_WARN] = "warn",
    [LOG_ERROR] = "error",
};

/* Lines waiting for log_flush(), while buffering is on. */
static struct {
	bool on;
	size_t used;
	char bytes[BUFFER_BYTES];
} pending;

/* The second of the last stamp and its text: formatting a date is most of
 * the cost of a line, and a busy daemon logs many lines a second. */
static struct {
	time_t second;
	char text[24];
} stamp_cache = {.second = -1};

void log_set_level(enum log_level level)
{
	min_level = level;
}

static void write_all(const char *bytes, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, bytes, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nowhere to report it */
		bytes += n;
		len -= (size_t)n;
	}
}

/*
 * A crash (a fault, an abort, a sanitizer's report ending in abort) would
 * take the round's lines with it, and they are the ones that tell what led
 * to it. While buffering, the crash signals first write them out, then go to
 * the handler that was there before (the sanitizer's, or the default), so
 * the process still dies as it would have. A fault raised by the kernel is
 * left to happen again on return; a signal sent (abort(), kill) is raised
 * again. write() and sigaction() are async-signal-safe.
 */
static const int crash_signals[] = {SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGSEGV};
static struct sigaction crash_previous[sizeof crash_signals / sizeof crash_signals[0]];

static void on_crash(int sig, siginfo_t *info, void *context)
{
	(void)context;
	write_all(pending.bytes, pending.used);
	pending.used = 0;
	for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
		sigaction(crash_signals[i], &crash_previous[i], NULL);
	if (info == NULL || info->si_code <= 0)
		raise(sig);
}

static void catch_crashes(bool on)
{
	struct sigaction action = {.sa_sigaction = on_crash,
	                           .sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK};
	sigemptyset(&action.sa_mask);
	for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++) {
		if (on)
			sigaction(crash_signals[i], &action, &crash_previous[i]);
		else
			sigaction(crash_signals[i], &crash_previous[i], NULL);
	}
}

void log_set_buffered(bool on)
{
	log_flush();
	if (on != pending.on)
		catch_crashes(on);
	pending.on = on;
}

void log_flush(void)
{
	write_all(pending.bytes, pending.used);
	pending.used = 0;
}

static const char *stamp(const struct timespec *now)
{
	if (now->tv_sec != stamp_cache.second) {
		struct tm tm;
		gmtime_r(&now->tv_sec, &tm);
		strftime(stamp_cache.text, sizeof stamp_cache.text, "%Y-%m-%dT%H:%M:%S", &tm);
		stamp_cache.second = now->tv_sec;
	}
	return stamp_cache.text;
}

/* "TIME LEVEL " at the start of line (64 bytes), without printf: a busy
 * daemon writes a line per request, and printf was most of its cost. */
static size_t line_head(char *line, enum log_level level)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	const char *date = stamp(&now);
	size_t n = strlen(date), len = strlen(level_names[level]);
	unsigned ms = (unsigned)(now.tv_nsec / 1000000);
	memcpy(line, date, n);
	line[n++] = '.';
	line[n++] = (char)('0' + ms / 100);
	line[n++] = (char)('0' + ms / 10 % 10);
	line[n++] = (char)('0' + ms % 10);
	line[n++] = 'Z';
	line[n++] = ' ';
	memcpy(line + n, level_names[level], len);
	n += len;
	line[n++] = ' ';
	return n;
}

/* The line ends at len: add its newline, then write or keep it. The whole
 * line is built first and written at once (or buffered), so that nothing
 * else written to stderr can land inside it. */
static void line_out(char *line, size_t len)
{
	line[len++] = '\n';
	if (!pending.on) {
		write_all(line, len);
		return;
	}
	if (pending.used + len > sizeof pending.bytes)
		log_flush();
	memcpy(pending.bytes + pending.used, line, len);
	pending.used += len;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level < min_level)
		return;
	char line[64 + LINE_MAX_BYTES];
	size_t head = line_head(line, level);
	va_list ap;
	va_start(ap, fmt);
	int body = vsnprintf(line + head, LINE_MAX_BYTES, fmt, ap); /* cut at 1 KiB */
	va_end(ap);
	size_t len = head + (body < 0 ? 0 : (size_t)body);
	if (len > head + LINE_MAX_BYTES - 1)
		len = head + LINE_MAX_BYTES - 1;
	line_out(line, len);
}

void log_text(enum log_level level, const char *text, size_t len)
{
	if (level < min_level)
		return;
	char line[64 + LINE_MAX_BYTES];
	size_t head = line_head(line, level);
	if (len > LINE_MAX_BYTES - 1)
		len = LINE_MAX_BYTES - 1; /* cut at 1 KiB, as log_msg() */
	memcpy(line + head, text, len);
	line_out(line, head + len);
}
