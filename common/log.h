#ifndef INVITES_LOG_H
#define INVITES_LOG_H

/*
 * Daemon logging: one line per call to stderr, "TIME LEVEL message".
 * Library-like modules (keys/, the parsers) never log; they return a reason.
 * Never pass a key secret or the component secret to these functions.
 */

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
};

/* Messages below this level are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);

/* With buffering on, lines are kept in memory (up to 16 KiB) until
 * log_flush(): an event loop flushes before it waits, so that a busy round
 * costs one write() instead of one per line. Off by default; turning it off
 * flushes. While on, a crash signal (SIGSEGV, SIGABRT, ...) writes the lines
 * kept before the process dies of it. */
void log_set_buffered(bool on);
void log_flush(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same with the message as it is (len bytes, no format): for a line per
 * request, made without printf. */
void log_text(enum log_level level, const char *text, size_t len);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
