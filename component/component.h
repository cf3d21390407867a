#ifndef INVITES_COMPONENT_H
#define INVITES_COMPONENT_H

/*
 * The XEP-0114 component: one libstrophe connection to the XMPP server that
 * creates invites by executing the server's ad-hoc commands (XEP-0050) on a
 * host: urn:xmpp:invite#create-account (XEP-0401), and Prosody's
 * xmpp:prosody.im/mod_invites_adhoc#password-reset. Each host is reached
 * either as its admin (Prosody's host-level admins) or through XEP-0356
 * privileged IQs acting as a local JID (ejabberd's mod_privilege).
 *
 * Single-threaded: every function here must be called from the thread that
 * runs the event loop. The component never blocks; the loop waits on
 * component_fd() and calls component_run() when it is readable (or writable,
 * if component_wants_write()) or when component_next_timeout() has passed.
 */

#include <stdbool.h>
#include <stddef.h>

/* How the component reaches a host's commands. */
struct component_host {
	const char *name;   /* a host, e.g. example.com */
	const char *act_as; /* NULL: the component is the host's admin; else the bare JID
	                       privileged IQs act as (XEP-0356), on that host */
};

struct component_config {
	const char *jid;    /* the component's JID, e.g. invites.example.com */
	const char *secret; /* component secret; never logged */
	const char *server; /* address of the server, preferably a literal IP */
	unsigned short port;
	unsigned request_timeout_ms; /* how long to wait for the server's reply (whole exchange) */
	/* The hosts, each discovered on every (re)connect. A host missing here is
	 * reached as its admin and never discovered. Copied. */
	const struct component_host *hosts;
	size_t n_hosts;
};

enum invite_kind {
	INVITE_ACCOUNT, /* urn:xmpp:invite#create-account */
	INVITE_RESET,   /* xmpp:prosody.im/mod_invites_adhoc#password-reset */
};

/* What to ask for. Strings are copied by component_request_invite(). */
struct invite_params {
	enum invite_kind kind;
	const char *username;    /* INVITE_ACCOUNT: reserve this username (already validated by
	                            the caller); NULL: none */
	const char *account_jid; /* INVITE_RESET: bare JID of the account, on host */
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
	COMPONENT_TIMEOUT,      /* no reply within request_timeout_ms (privileged: an IQ in a
	                           namespace the server did not grant gets none; the reason
	                           says so) */
	COMPONENT_REMOTE_ERROR, /* the server answered with an error */
	COMPONENT_BAD_REPLY,    /* the reply could not be understood */
	COMPONENT_SHUTDOWN,     /* the component is being stopped */
	COMPONENT_UNSUPPORTED,  /* the server does not offer the command, or cannot take a
	                           parameter asked for (username) */
	COMPONENT_CONFLICT,     /* the server refused the username: taken or reserved */
};

/* Outcome of one invite request; everything in it is borrowed and
 * valid only during the callback. */
struct component_result {
	enum component_status status;
	const struct invite *invite; /* COMPONENT_OK only */
	const char *condition;       /* COMPONENT_REMOTE_ERROR, _CONFLICT, _UNSUPPORTED: the
	                                server's error condition (e.g. "forbidden"), else NULL */
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

/* True when component_run() has nothing to do unless the socket is readable:
 * online, no output queued, nothing due, no close under way. A loop that saw
 * the socket unreadable may skip component_run() then (it costs system calls
 * even when idle). */
bool component_idle(const struct component *comp);

/*
 * Run the command params asks for on host, following its flow: execute; if
 * the server answers with a form (status executing), fill in what we know
 * (username, roster-subscription = false; accountjid) and complete it, at
 * most two round trips, all within request_timeout_ms. Returns 0 when the
 * request is on its way: cb will then be called exactly once, later, from
 * component_run(), component_stop() or component_destroy(), never from inside
 * this call. Returns -1 when offline or params is invalid: cb is not called.
 *
 * With a username, a server whose create-account completes at once (Prosody)
 * has made an invite without it: the outcome is COMPONENT_UNSUPPORTED, and
 * that invite stays unused until it expires. Once a host was seen doing that
 * (with or without a username) on the current connection, requests with a
 * username to it are answered COMPONENT_UNSUPPORTED without asking it.
 * A server error refusing the username (conflict, or bad-request saying it is
 * reserved or taken) is COMPONENT_CONFLICT; item-not-found,
 * feature-not-implemented or service-unavailable for a reset is
 * COMPONENT_UNSUPPORTED.
 */
int component_request_invite(struct component *comp, const char *host,
                             const struct invite_params *params, component_invite_cb cb,
                             void *userdata);

/* component_request_invite() of an account invite without a username. */
int component_create_invite(struct component *comp, const char *host, component_invite_cb cb,
                            void *userdata);

enum component_offer { COMPONENT_OFFER_UNKNOWN, COMPONENT_OFFER_YES, COMPONENT_OFFER_NO };

/* Whether host lists the command for kind among the commands it offers us
 * (disco#items of http://jabber.org/protocol/commands, asked on every
 * connect). UNKNOWN until that query was answered, when it failed, and for a
 * host not in component_config.hosts. */
enum component_offer component_host_offers(const struct component *comp, const char *host,
                                           enum invite_kind kind);

/* True once discovery of host has an outcome (answered or failed) since the
 * stream came up. */
bool component_host_discovered(const struct component *comp, const char *host);

/* The line logged for host's discovery into buf (always terminated), e.g.
 * "example.com: account invites yes, password resets no", or
 * "example.com: commands unknown (REASON)". */
void component_host_describe(const struct component *comp, const char *host, char *buf,
                             size_t size);

/* What the server granted in its XEP-0356 privilege message since the stream
 * came up, as one line ("SERVER: iq NS set, ..."), or NULL when none came.
 * Borrowed, valid until the next component_run(). */
const char *component_privileges(const struct component *comp);

/* Whether that message granted the iq permission http://jabber.org/protocol/commands
 * set (false when none came). Not read from the line, which a long list cuts. */
bool component_commands_granted(const struct component *comp);

/* Why the last connection attempt failed or the stream went down, with the
 * fix where known; "" if it never did. Borrowed, valid until the next
 * component_run(). */
const char *component_last_error(const struct component *comp);

/* Number of requests waiting for the server. */
unsigned component_pending(const struct component *comp);

/* ---- ad-hoc commands offered to XMPP users (XEP-0050) -------------------- */

/*
 * The component can offer its own ad-hoc commands to authorised users. A
 * command runs in a session of at most a few steps: execute() shows a form (or
 * completes at once), then submit() gets the filled form and either completes
 * or rejects the input, in which case the form is shown again, still in the
 * same session, with the notes the callback added. Submitted forms are checked
 * against the form that was shown before submit() sees them: only its fields
 * are read, required fields are present, list values are among the options,
 * single fields have one value and one line, hidden fields keep the values
 * that were sent, and a field left out keeps the value shown. Callbacks run
 * inside component_run() and must not stop or destroy the component.
 */

enum component_field_type {
	COMPONENT_FIELD_TEXT_SINGLE,
	COMPONENT_FIELD_LIST_SINGLE,
	COMPONENT_FIELD_LIST_MULTI,
	COMPONENT_FIELD_BOOLEAN,
	COMPONENT_FIELD_JID_SINGLE,
	COMPONENT_FIELD_FIXED,
	COMPONENT_FIELD_HIDDEN,
};

struct component_option {
	const char *value;
	const char *label; /* NULL: the client shows the value */
};

/* One field of a jabber:x:data form. Everything is borrowed, and only read
 * while the form is being sent. */
struct component_field {
	enum component_field_type type;
	const char *var;   /* NULL only for a fixed field */
	const char *label; /* may be NULL */
	const char *desc;  /* may be NULL */
	bool required;
	const char *value;         /* one value, or NULL; used when values is NULL */
	const char *const *values; /* n_values values (a list-multi's selection) */
	size_t n_values;
	const struct component_option *options; /* list-single, list-multi */
	size_t n_options;
};

/* A form to fill in, or a result. A result may carry a table: n_rows rows of
 * n_columns cells, row by row (a NULL cell is empty), under column headers of
 * which only type, var and label are used. */
struct component_form {
	const char *title;        /* may be NULL */
	const char *instructions; /* may be NULL */
	const struct component_field *fields;
	size_t n_fields;
	const struct component_field *columns;
	size_t n_columns;
	const char *const *cells;
	size_t n_rows;
};

enum component_note_type {
	COMPONENT_NOTE_INFO,
	COMPONENT_NOTE_WARN,
	COMPONENT_NOTE_ERROR,
};

/* What a command callback returns. */
enum component_step_status {
	COMPONENT_STEP_EXECUTING, /* show the form given with component_step_form(), wait */
	COMPONENT_STEP_COMPLETED, /* done: show the result form and notes, if any; ends the session
	                           */
	COMPONENT_STEP_INVALID,   /* submit() only: nothing was done; the form is shown again
	                             (or the one given instead), with the notes */
};

/* One step of a command session, valid during the callback only. */
struct component_step;

struct component_command {
	const char *node; /* e.g. urn:invites-api:create-key */
	const char *name; /* shown in the client's command list */
	/* First step. Must return EXECUTING (with a form) or COMPLETED. */
	enum component_step_status (*execute)(void *userdata, struct component_step *step);
	/* The form shown by the previous step came back, checked. */
	enum component_step_status (*submit)(void *userdata, struct component_step *step);
};

struct component_commands {
	const struct component_command *commands; /* borrowed: must outlive the component */
	size_t n_commands;
	/* Whether bare_jid (as the server stamped it, without resource) may see
	 * and run the commands. Asked on every request. */
	bool (*allowed)(void *userdata, const char *bare_jid);
	void *userdata;              /* passed to allowed and to every command callback */
	unsigned session_timeout_ms; /* idle session lifetime; 0: 10 minutes */
};

/* Offer the commands (once per component; the struct is copied, the table
 * is not). Advertises http://jabber.org/protocol/commands in disco#info.
 * Returns 0, or -1 if already done, the table is empty or out of memory. */
int component_commands_register(struct component *comp, const struct component_commands *cmds);

/* Answer XEP-0092 software version requests with name and version (copied)
 * and advertise jabber:iq:version. Until then such requests get
 * service-unavailable. Returns 0 or -1. */
int component_set_version(struct component *comp, const char *name, const char *version);

/* The requester's full JID as the server stamped it. Borrowed. */
const char *component_step_requester(const struct component_step *step);

/* Submitted values of var (in submit() only; none in execute()): how many,
 * and each one. Empty values are dropped. Borrowed; NULL past the end. */
size_t component_step_count(const struct component_step *step, const char *var);
const char *component_step_value(const struct component_step *step, const char *var, size_t index);

/* Set the form this step shows (serialised at once: form may be freed after
 * the call; a later call replaces it). Returns 0, or -1 out of memory. */
int component_step_form(struct component_step *step, const struct component_form *form);

/* Add a note (text copied; at most 4 per step). Returns 0 or -1. */
int component_step_note(struct component_step *step, enum component_note_type type,
                        const char *text);

#endif
