#include "connections-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

struct http_conn *conn_open(struct conn_table *t, int fd, int64_t now_ms)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->fd = fd;
	append_conn(t, c, now_ms);
	t->count++;
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
		struct http_conn *c = t->head;
		if (c->request_line) {
			conn_refuse(t, c, 408, "Request Timeout", "request not received in time");
		} else {
			/* No request begun: nothing to answer (an unasked 408
			 * could be read as the answer to the next request). */
			unlink_conn(t, c);
			c->shut = true;
			t->shut++;
			shutdown(c->fd, SHUT_RDWR);
		}
		n++;
	}
	return n;
}
