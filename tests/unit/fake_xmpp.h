#ifndef INVITES_TESTS_FAKE_XMPP_H
#define INVITES_TESTS_FAKE_XMPP_H

/*
 * A scripted fake XMPP server for the component's unit tests. It listens on a
 * loopback port, answers the XEP-0114 stream header and handshake (checking
 * the digest), and keeps every stanza the component sends for the test to
 * look at; the test writes the server's side with fake_send().
 *
 * The fake is served from the same poll loop as the component (fake_pump()),
 * so every test is single-threaded and every wait is bounded by a deadline.
 * Whatever goes wrong is a CUnit assertion failure.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strophe.h>

#include "component/component.h"

#define FAKE_RECEIVED_MAX 256 /* stanzas kept per test */
#define FAKE_REJECTS_KEPT 8

enum fake_phase { FAKE_WAIT_HEADER, FAKE_WAIT_HANDSHAKE, FAKE_ONLINE };

struct fake {
	xmpp_ctx_t *ctx;          /* sha1 and stanza parsing */
	const char *jid, *secret; /* borrowed */
	bool reject_secret;       /* refuse every handshake, as for a wrong secret */
	int listen_fd, conn_fd;   /* conn_fd -1: no component connected */
	unsigned short port;
	enum fake_phase phase;
	char stream_id[32];
	char in[1 << 17];
	size_t in_len;
	unsigned accepts, handshakes, rejects;
	uint64_t reject_at[FAKE_REJECTS_KEPT]; /* now_ms() of the first rejects */
	bool got_stream_close;                 /* the component sent </stream:stream> */
	unsigned stream_errors;                /* <stream:error/>s the component sent */
	bool skip_idle; /* fake_pump() runs comp as the daemon does: only when its
	                   socket is ready or it is not component_idle() */
	unsigned runs;  /* component_run() calls by fake_pump() */
	xmpp_stanza_t *received[FAKE_RECEIVED_MAX];
	unsigned n_received, n_taken; /* stanzas received, and looked at by the test */
};

/* Listen on a free loopback port (f->port) as the server of component jid
 * with secret; both strings must outlive f. */
void fake_init(struct fake *f, const char *jid, const char *secret, bool reject_secret);
/* Release the stanzas the test has looked at, making room for more (long
 * tests that would pass FAKE_RECEIVED_MAX). */
void fake_forget_taken(struct fake *f);

/* Close everything and release the received stanzas. */
void fake_finish(struct fake *f);

/* Send a printf-formatted string to the connected component. */
void fake_send(struct fake *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Send len bytes of data, of any size, to the connected component, serving
 * comp between partial writes so that neither side blocks; false if it could
 * not all be written within wait_ms. */
bool fake_send_bytes(struct fake *f, struct component *comp, const char *data, size_t len,
                     unsigned wait_ms);
/* Drop the connection, as a server going away. */
void fake_close(struct fake *f);

/* CLOCK_MONOTONIC in milliseconds: the clock of every deadline here. */
uint64_t now_ms(void);

/* One turn of the loop serving the fake and comp (which may be NULL): wait
 * for either, at most poll_max_ms, then let both act. False once deadline has
 * passed. */
bool fake_pump(struct fake *f, struct component *comp, uint64_t deadline, int poll_max_ms);

/* The next stanza received that the test has not taken, waiting up to wait_ms
 * for it; NULL if none came. Borrowed: released by fake_finish(). */
xmpp_stanza_t *fake_next_stanza(struct fake *f, struct component *comp, unsigned wait_ms,
                                int poll_max_ms);

#endif
