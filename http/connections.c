#include "connections-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/*
 * libmicrohttpd's connection timeout is an idle timeout: a client that sends
 * one header byte every few seconds keeps its connection (and a slot of the
 * connection limit) forever. So every connection also gets a deadline for
 * delivering its whole request, counted from when it opened or from the end
 * of its previous request. MHD 0.9.75 has no call to close a connection from
 * outside its handlers; shutdown(2) on its socket does it cleanly: MHD reads
 * end-of-file on its next run and closes the connection itself (the fd stays
 * MHD's, so it cannot be reused under its feet).
 *
 * Connections are kept in deadline order simply by appending: every deadline
 * is "now + the same duration".
 */

void conn_table_init(struct conn_table *t, unsigned deadline_ms, bool raw_answers,
                     const char *headers)
{
	memset(t, 0, sizeof(*t));
	t->deadline_ms = deadline_ms;
	t->raw_answers = raw_answers;
	t->headers = headers;
}

static void unlink_conn(struct conn_table *t, struct http_conn *c)
{
	if (!c->listed)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		t->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		t->tail = c->prev;
	c->prev = c->next = NULL;
	c->listed = false;
}

static void append_conn(struct conn_table *t, struct http_conn *c, int64_t now_ms)
{
	unlink_conn(t, c);
	c->deadline_ms = now_ms + t->deadline_ms;
	c->prev = t->tail;
	c->next = NULL;
	if (t->tail != NULL)
		t->tail->next = c;
	else
		t->head = c;
	t->tail = c;
	c->listed = true;
}

/* Shut c down: 408 where a request had begun; a connection that sent
 * nothing is closed without a word (an unasked answer could be read as the
 * answer to its next request). */
static void drop_conn(struct conn_table *t, struct http_conn *c, const char *reason)
{
	if (c->request_line) {
		conn_refuse(t, c, 408, "Request Timeout", reason);
		return;
	}
	unlink_conn(t, c);
	c->shut = true;
	t->shut++;
	shutdown(c->fd, SHUT_RDWR);
}

struct http_conn *conn_open(struct conn_table *t, int fd, int64_t now_ms)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->fd = fd;
	append_conn(t, c, now_ms);
	t->count++;
	/* The oldest awaited request is the head; c itself is the tail. */
	if (t->limit != 0 && t->count - t->shut > t->limit && t->head != c)
		drop_conn(t, t->head,
		          "request not received in time: its slot went to a new connection");
	return c;
}

void conn_close(struct conn_table *t, struct http_conn *c)
{
	if (c == NULL)
		return;
	unlink_conn(t, c);
	t->count--;
	if (c->shut)
		t->shut--;
	free(c);
}

void conn_received(struct conn_table *t, struct http_conn *c)
{
	if (c != NULL)
		unlink_conn(t, c);
}

void conn_rearm(struct conn_table *t, struct http_conn *c, int64_t now_ms)
{
	if (c == NULL || c->shut)
		return;
	c->request_line = false;
	append_conn(t, c, now_ms);
}

int conn_next_timeout(const struct conn_table *t, int64_t now_ms)
{
	if (t->head == NULL)
		return -1;
	int64_t left = t->head->deadline_ms - now_ms;
	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Best effort: a few hundred bytes fit any fresh socket buffer, and nothing
 * of MHD's is queued on this connection at this point. */
static void write_answer(const struct conn_table *t, int fd, unsigned status, const char *phrase,
                         const char *reason)
{
	char answer[2048];
	int n = snprintf(answer, sizeof(answer),
	                 "HTTP/1.1 %u %s\r\n"
	                 "Connection: close\r\n"
	                 "Content-Type: text/plain; charset=utf-8\r\n"
	                 "Content-Length: %zu\r\n"
	                 "%s"
	                 "\r\n"
	                 "%s\n",
	                 status, phrase, strlen(reason) + 1, t->headers != NULL ? t->headers : "",
	                 reason);
	if (n > 0 && (size_t)n < sizeof(answer))
		(void)send(fd, answer, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void conn_refuse(struct conn_table *t, struct http_conn *c, unsigned status, const char *phrase,
                 const char *reason)
{
	if (c == NULL || c->shut)
		return;
	unlink_conn(t, c);
	c->shut = true;
	t->shut++;
	if (t->raw_answers)
		write_answer(t, c->fd, status, phrase, reason);
	shutdown(c->fd, SHUT_RDWR);
}

unsigned conn_expire(struct conn_table *t, int64_t now_ms)
{
	unsigned n = 0;

	while (t->head != NULL && t->head->deadline_ms <= now_ms) {
		drop_conn(t, t->head, "request not received in time");
		n++;
	}
	return n;
}

static void delay_arm(struct delay_queue *q)
{
	struct itimerspec when = {0};

	if (q->head != NULL) {
		int64_t due = q->head->due_ns > 0 ? q->head->due_ns : 1;
		when.it_value.tv_sec = (time_t)(due / 1000000000);
		when.it_value.tv_nsec = (long)(due % 1000000000);
	}
	/* Cannot fail with a valid fd and value; all zero disarms it. */
	(void)timerfd_settime(q->timer_fd, TFD_TIMER_ABSTIME, &when, NULL);
}

int delay_init(struct delay_queue *q)
{
	memset(q, 0, sizeof(*q));
	q->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	return q->timer_fd < 0 ? -1 : 0;
}

void delay_finish(struct delay_queue *q)
{
	if (q->timer_fd >= 0)
		close(q->timer_fd);
	q->timer_fd = -1;
}

void delay_add(struct delay_queue *q, struct delayed *d, int64_t due_ns)
{
	struct delayed *after = q->tail;

	/* Due times nearly always come in order: walk back from the tail. */
	while (after != NULL && after->due_ns > due_ns)
		after = after->prev;
	d->due_ns = due_ns;
	d->prev = after;
	d->next = after != NULL ? after->next : q->head;
	if (d->next != NULL)
		d->next->prev = d;
	else
		q->tail = d;
	if (after != NULL)
		after->next = d;
	else
		q->head = d;
	q->count++;
	if (q->head == d)
		delay_arm(q);
}

void delay_remove(struct delay_queue *q, struct delayed *d)
{
	bool was_head = q->head == d;

	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		q->head = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	else
		q->tail = d->prev;
	d->prev = d->next = NULL;
	q->count--;
	if (was_head)
		delay_arm(q);
}

/*
 * Called every loop round, so it makes no system call unless the head is due.
 * The timer is always armed for the head (disarmed when the queue is empty)
 * and every timerfd_settime() discards the expirations counted before: the fd
 * is readable only while a due head waits. Popping the head re-arms the timer
 * for the next one (which, if due too, the caller pops next), so once the
 * caller has taken every due entry the fd is unreadable again without a
 * read().
 */
struct delayed *delay_pop_due(struct delay_queue *q, int64_t now_ns)
{
	struct delayed *d = q->head;

	if (d == NULL || d->due_ns > now_ns)
		return NULL;
	delay_remove(q, d);
	return d;
}
