#ifndef INVITES_COMPONENT_H
#define INVITES_COMPONENT_H

/*
 * The XEP-0114 component: one libstrophe connection to the XMPP server that
 * creates invites by executing the server's ad-hoc command
 * urn:xmpp:invite#create-account (XEP-0050) on a host.
 *
 * Single-threaded: every function here must be called from the thread that
 * runs the event loop. The component never blocks; the loop waits on
 * component_fd() and calls component_run() when it is readable (or writable,
 * if component_wants_write()) or when component_next_timeout() has passed.
 */

#include <stdbool.h>

struct component_config {
	const char *jid;    /* the component's JID, e.g. invites.example.com */
	const char *secret; /* component secret; never logged */
	const char *server; /* address of the server, preferably a literal IP */
	unsigned short port;
	unsigned request_timeout_ms; /* how long to wait for the server's reply */
};

/* An invite as the server returned it. Strings are NUL-terminated; any of
 * landing_url and expire may be NULL, uri never is on success. */
struct invite {
	char *landing_url; /* invite page (landing-url), if the server has one */
	char *uri;         /* xmpp: URI */
	char *expire;      /* XEP-0082 datetime */
};

enum component_status {
	COMPONENT_OK = 0,
	COMPONENT_OFFLINE,      /* not connected, or the stream went down while waiting */
	COMPONENT_TIMEOUT,      /* no reply within request_timeout_ms */
	COMPONENT_REMOTE_ERROR, /* the server answered with an error */
	COMPONENT_BAD_REPLY,    /* the reply could not be understood */
	COMPONENT_SHUTDOWN,     /* the component is being stopped */
};

/* Outcome of one create-account request; everything in it is borrowed and
 * valid only during the callback. */
struct component_result {
	enum component_status status;
	const struct invite *invite; /* COMPONENT_OK only */
	const char *condition;       /* COMPONENT_REMOTE_ERROR: e.g. "forbidden", else NULL */
	const char *reason;          /* one line for logs and HTTP bodies, never NULL on error */
};

typedef void (*component_invite_cb)(void *userdata, const struct component_result *result);

struct component;

/* Allocate a component. Does not connect. NULL on failure with *errstr set
 * to a static reason. Strings in cfg are copied. */
struct component *component_create(const struct component_config *cfg, const char **errstr);

/* Fail every pending request with COMPONENT_SHUTDOWN, close the stream and
 * free everything. Accepts NULL. Must not be called from a result callback. */
void component_destroy(struct component *comp);

/* Start connecting; reconnects by itself from then on (backoff 1 s doubling to
 * 30 s, with jitter). Returns 0, or -1 if the connection could not be set up. */
int component_start(struct component *comp);

/* Close the stream politely (</stream:stream>) after failing every pending
 * request with COMPONENT_SHUTDOWN. Gives up after timeout_ms. No reconnect. */
void component_stop(struct component *comp, unsigned timeout_ms);

/* True once the server accepted the handshake and until the stream drops. */
bool component_online(const struct component *comp);

/* The stream's socket, or -1 when there is none. May change after every
 * component_run(). */
int component_fd(const struct component *comp);

/* True when queued output waits for the socket to become writable (also while
 * the TCP connect is in progress). */
bool component_wants_write(const struct component *comp);

/* Milliseconds until the component has timed work to do (reconnect, a request
 * timeout), 0 if due now, -1 if nothing is scheduled. */
int component_next_timeout(const struct component *comp);

/* Do all pending I/O and due timed work without blocking. May call result
 * callbacks. */
void component_run(struct component *comp);

/* Send create-account to host. Returns 0 when the request is on its way: cb
 * will then be called exactly once, later, from component_run(),
 * component_stop() or component_destroy(), never from inside this call.
 * Returns -1 when offline: cb is not called. */
int component_create_invite(struct component *comp, const char *host, component_invite_cb cb,
                            void *userdata);

/* Number of requests waiting for the server. */
unsigned component_pending(const struct component *comp);

#endif
