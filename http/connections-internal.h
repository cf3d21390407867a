#ifndef INVITES_HTTP_CONNECTIONS_INTERNAL_H
#define INVITES_HTTP_CONNECTIONS_INTERNAL_H

/*
 * The connections of the HTTP listener, as http.c tracks them beside
 * libmicrohttpd: a deadline for receiving each request, and answers given
 * outside MHD (straight on the socket, then shut down) where MHD cannot be
 * asked to answer. Plain sockets only, so the unit tests can use socketpairs.
 */

#include <stdbool.h>
#include <stdint.h>

struct http_conn {
	struct http_conn *prev, *next; /* in the table, while a request is awaited */
	int fd;                        /* MHD's socket: never closed here */
	int64_t deadline_ms;           /* valid while listed */
	bool listed;
	bool request_line; /* a request line arrived since the last answer */
	bool shut;         /* refused or expired: shut down, MHD closes it next */
};

struct conn_table {
	struct http_conn *head, *tail; /* awaited requests, earliest deadline first */
	unsigned count;                /* open connections */
	unsigned shut;                 /* of them shut down here, not yet closed by MHD */
	unsigned deadline_ms;          /* for receiving one request */
	unsigned limit;                /* live connections kept; 0: no limit */
	bool raw_answers;              /* false under TLS: close without a word */
	const char *headers;           /* extra header lines for own answers, borrowed */
};

/* headers: "Name: value\r\n" lines added to answers written here (CORS). */
void conn_table_init(struct conn_table *t, unsigned deadline_ms, bool raw_answers,
                     const char *headers);

/* A new connection on fd, its deadline running. NULL when out of memory.
 * Past the table's limit, the oldest connection still awaiting a request is
 * dropped to make room (idle connections cannot keep others out). */
struct http_conn *conn_open(struct conn_table *t, int fd, int64_t now_ms);

/* Forget and free c (MHD closed it). Accepts NULL. */
void conn_close(struct conn_table *t, struct http_conn *c);

/* The whole request arrived: no deadline until conn_rearm(). */
void conn_received(struct conn_table *t, struct http_conn *c);

/* The answer was sent and the connection stays open: the next request's
 * deadline runs from now. */
void conn_rearm(struct conn_table *t, struct http_conn *c, int64_t now_ms);

/* Milliseconds until the earliest deadline, 0 if one passed, -1 if none. */
int conn_next_timeout(const struct conn_table *t, int64_t now_ms);

/* Shut down every connection past its deadline, answering 408 where a
 * request had begun. Returns how many. */
unsigned conn_expire(struct conn_table *t, int64_t now_ms);

/* Answer c with status (one-line reason, text/plain, Connection: close)
 * written straight to its socket, then shut it down. For requests MHD would
 * mishandle if it went on parsing them. */
void conn_refuse(struct conn_table *t, struct http_conn *c, unsigned status, const char *phrase,
                 const char *reason);

/*
 * Answers held back until a fixed time: a timerfd armed at the earliest due
 * time (absolute, CLOCK_MONOTONIC, nanoseconds), so that the moment an answer
 * leaves does not depend on how long it took to make.
 */
struct delayed {
	struct delayed *prev, *next;
	int64_t due_ns;
};

struct delay_queue {
	struct delayed *head, *tail; /* by due time */
	int timer_fd;                /* readable once the head is due */
	unsigned count;
};

/* 0, or -1 with errno when the timerfd cannot be made. */
int delay_init(struct delay_queue *q);
void delay_finish(struct delay_queue *q);

/* Queue d (caller-owned, unlinked) until due_ns. */
void delay_add(struct delay_queue *q, struct delayed *d, int64_t due_ns);

/* Unlink d (queued) before it is due. */
void delay_remove(struct delay_queue *q, struct delayed *d);

/* Unlink and return one entry due at now_ns (all of them when now_ns is
 * INT64_MAX), or NULL; the timer follows the new head. Call it until it
 * returns NULL: only then is the timer's fd sure to be unreadable. */
struct delayed *delay_pop_due(struct delay_queue *q, int64_t now_ns);

#endif
