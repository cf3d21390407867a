/*
 * Log buffering (common/log.c): lines kept for one loop round reach stderr
 * when buffering is turned off, and also when the process dies of a crash
 * signal before the round ends: those are the lines that explain the crash.
 */

#include "log.h"
#include "unit.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run fn in a child whose stderr is a pipe; what it wrote into out, and how
 * it ended into *status. */
static void run_child(void (*fn)(void), char *out, size_t size, int *status)
{
	int fds[2];
	CU_ASSERT_FATAL(pipe(fds) == 0);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		fn();
		_exit(0);
	}
	close(fds[1]);
	size_t used = 0;
	ssize_t n;
	while (used + 1 < size && (n = read(fds[0], out + used, size - 1 - used)) > 0)
		used += (size_t)n;
	out[used] = '\0';
	close(fds[0]);
	CU_ASSERT_EQUAL(waitpid(pid, status, 0), pid);
}

static void buffered_then_off(void)
{
	log_set_buffered(true);
	log_info("first line");
	log_warn("second line");
	log_set_buffered(false);
}

static void buffered_then_abort(void)
{
	log_set_buffered(true);
	log_info("the request before the crash");
	log_error("what went wrong");
	abort();
}

static void buffered_then_segv(void)
{
	log_set_buffered(true);
	log_info("the request before the crash");
	raise(SIGSEGV);
}

static void plain_segv(void)
{
	raise(SIGSEGV);
}

static void test_flushed_when_turned_off(void)
{
	char out[4096];
	int status;
	run_child(buffered_then_off, out, sizeof out, &status);
	CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, " info first line\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, " warn second line\n"));
}

/* The lines come out, and the process still dies of the signal (a core
 * dump, systemd's restart) rather than exiting. */
static void test_flushed_at_a_crash(void)
{
	char out[4096];
	int status;
	run_child(buffered_then_abort, out, sizeof out, &status);
	CU_ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, " info the request before the crash\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, " error what went wrong\n"));
	run_child(buffered_then_segv, out, sizeof out, &status);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, " info the request before the crash\n"));
	/* As it ends without the log in the way: of the signal, or under a
	 * sanitizer as its own SIGSEGV handler decides (abort_on_error or not). */
	int plain_status;
	run_child(plain_segv, out, sizeof out, &plain_status);
	CU_ASSERT_EQUAL(status, plain_status);
	CU_ASSERT_TRUE(WIFSIGNALED(plain_status) || WIFEXITED(plain_status));
	CU_ASSERT_FALSE(WIFEXITED(plain_status) && WEXITSTATUS(plain_status) == 0);
}

static void text_and_formatted(void)
{
	static char long_text[3000];
	memset(long_text, 'x', sizeof long_text - 1);
	log_text(LOG_WARN, "100% as given %s", 16);
	log_msg(LOG_WARN, "%s", "100% as given %s");
	log_text(LOG_DEBUG, "below the level", 15);
	log_text(LOG_INFO, long_text, sizeof long_text - 1);
	log_msg(LOG_INFO, "%s", long_text);
}

/* "TIME LEVEL text": a line of log_text() is the line log_msg() writes of
 * the same text, cut at the same length, below the level dropped alike. */
static void test_text_lines_as_formatted_ones(void)
{
	char out[8192];
	int status;
	run_child(text_and_formatted, out, sizeof out, &status);
	CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char *lines[5] = {0}, *save = NULL;
	int n = 0;
	for (char *l = strtok_r(out, "\n", &save); l != NULL && n < 5;
	     l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	CU_ASSERT_EQUAL_FATAL(n, 4);
	for (int i = 0; i < 4; i++) {
		/* 2026-12-04T19:04:15.123Z */
		CU_ASSERT_EQUAL(strlen(lines[i]) > 25 ? lines[i][19] : 0, '.');
		CU_ASSERT_EQUAL(lines[i][23], 'Z');
		CU_ASSERT_EQUAL(lines[i][24], ' ');
	}
	CU_ASSERT_STRING_EQUAL(lines[0] + 25, "warn 100% as given %s");
	CU_ASSERT_STRING_EQUAL(lines[1] + 25, "warn 100% as given %s");
	CU_ASSERT_STRING_EQUAL(lines[2] + 25, lines[3] + 25);
	CU_ASSERT_EQUAL(strlen(lines[2] + 25), strlen("info ") + 1023);
}

static const struct unit_test tests[] = {
    {"buffered lines flushed when buffering is turned off", test_flushed_when_turned_off},
    {"buffered lines written at a crash", test_flushed_at_a_crash},
    {"a text line is the formatted line of the same text", test_text_lines_as_formatted_ones},
    {NULL, NULL},
};

UNIT_MAIN("log", tests)
