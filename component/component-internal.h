#ifndef INVITES_COMPONENT_INTERNAL_H
#define INVITES_COMPONENT_INTERNAL_H

/*
 * Helpers shared inside component/ (and by its unit tests); no other folder
 * includes this header.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strophe.h>

#include "component.h"

#define NS_COMMANDS         "http://jabber.org/protocol/commands"
#define NS_DATA_FORMS       "jabber:x:data"
#define NS_STANZAS          "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_DISCO_INFO       "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS      "http://jabber.org/protocol/disco#items"
#define NS_PING             "urn:xmpp:ping"
#define NS_VERSION          "jabber:iq:version"
#define NS_PRIVILEGE        "urn:xmpp:privilege:2"
#define NS_FORWARD          "urn:xmpp:forward:0"
#define NS_CLIENT           "jabber:client"
#define NODE_CREATE_ACCOUNT "urn:xmpp:invite#create-account"
#define NODE_PASSWORD_RESET "xmpp:prosody.im/mod_invites_adhoc#password-reset"

#define ADHOC_VALUE_MAX     4096 /* longest form field value accepted, in bytes */
#define ADHOC_REASON_MAX    256  /* reasons are cut to this size, NUL included */
#define ADHOC_CONDITION_MAX 64
#define ADHOC_SESSIONID_MAX 256

/* Fields of a form the server asks us to fill (bits of adhoc_reply.vars). */
enum adhoc_var {
	ADHOC_VAR_USERNAME = 1 << 0,   /* create-account on ejabberd */
	ADHOC_VAR_ROSTER = 1 << 1,     /* roster-subscription, ditto */
	ADHOC_VAR_ACCOUNTJID = 1 << 2, /* password-reset on Prosody 13 */
};

/* The server's answer to an invite command, as far as the component cares. */
struct adhoc_reply {
	enum component_status status; /* COMPONENT_OK, _REMOTE_ERROR or _BAD_REPLY */
	/* COMPONENT_OK and executing: the server asks for a form (vars, form_type;
	 * sessionid is set), invite is empty. Otherwise OK means completed. */
	bool executing;
	struct invite invite; /* completed: malloc'd copies, uri never NULL */
	unsigned vars;        /* executing: the adhoc_var fields the form has */
	char *form_type;      /* executing: the form's FORM_TYPE value, malloc'd, or NULL */
	char sessionid[ADHOC_SESSIONID_MAX]; /* any status: "" when none (or unusable) */
	char condition[ADHOC_CONDITION_MAX]; /* COMPONENT_REMOTE_ERROR: e.g. "forbidden" */
	char reason[ADHOC_REASON_MAX];       /* one line; empty on COMPONENT_OK */
};

/* Parse an <iq/> answering an invite command. Never fails and never logs:
 * every outcome is a status and a reason in *reply. Nothing in *reply points
 * into iq. Release with adhoc_reply_finish(), whatever the status. */
void adhoc_reply_parse(xmpp_stanza_t *iq, struct adhoc_reply *reply);

/* Free the strings of a parsed reply. */
void adhoc_reply_finish(struct adhoc_reply *reply);

/* The answer to disco#items on the commands node. */
struct discovery_reply {
	bool ok;                             /* a result: offers below are known */
	bool offers[2];                      /* by enum invite_kind */
	char condition[ADHOC_CONDITION_MAX]; /* !ok and an error: e.g. "forbidden" */
	char reason[ADHOC_REASON_MAX];       /* !ok: one line */
};

/* Parse an <iq/> answering disco#items; never fails, never logs. */
void discovery_reply_parse(xmpp_stanza_t *iq, struct discovery_reply *reply);

/* The command node of kind. */
const char *invite_node(enum invite_kind kind);

/* Copy src (may be NULL) into dst as one line for logs and HTTP bodies:
 * control characters and runs of spaces become one space, both ends are
 * trimmed, and a cut never splits a UTF-8 sequence. dst is always terminated. */
void reason_copy(char *dst, size_t size, const char *src);

/* True if s holds an ASCII control character (below space, or DEL). */
bool has_control_chars(const char *s);

/* ---- XEP-0356 privileged IQs (privilege.c) ---------------------------------- */

/* Wrap inner (an <iq/> to the host, with id and type set) for sending as
 * act_as: inner gets xmlns jabber:client and from act_as, and goes into
 * <iq type=TYPE from=comp_jid to=act_as id=ID><privileged_iq/></iq> with
 * inner's type and id. Returns the outer iq (the caller releases it and
 * inner), or NULL when out of memory. */
xmpp_stanza_t *privileged_wrap(xmpp_ctx_t *ctx, const char *comp_jid, const char *act_as,
                               xmpp_stanza_t *inner);

/* The forwarded <iq/> of a privileged reply (<privilege><forwarded><iq/>),
 * borrowed from outer; NULL when outer has none. */
xmpp_stanza_t *privileged_unwrap(xmpp_stanza_t *outer);

/* What a <message><privilege xmlns='urn:xmpp:privilege:2'> grants. */
struct privileges {
	bool commands_set;    /* iq http://jabber.org/protocol/commands set (or both) */
	bool disco_items_get; /* iq http://jabber.org/protocol/disco#items get (or both) */
	char summary[512];    /* one line: "iq NS (TYPE), ...; roster both; ..." */
};

/* Parse message's privilege element: 0, or -1 when it has none. */
int privileges_parse(xmpp_stanza_t *message, struct privileges *granted);

/* ---- helpers of component.c ---------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t monotonic_ms(void);

/* Does from name the bare JID or domain jid (case-insensitive, a resource
 * ignored)? A domain never matches a user JID, nor the reverse. */
bool from_is(const char *from, const char *jid);

/* ---- answering others' IQs (iq.c) ----------------------------------------- */

struct command_registry;

/* What the component answers to the IQs others send it. */
struct iq_responder {
	xmpp_ctx_t *ctx;                        /* borrowed */
	const char *jid;                        /* the component's, borrowed */
	struct command_registry *commands;      /* owned; NULL until registered */
	char *software_name, *software_version; /* owned (XEP-0092); NULL until set */
};

/* Ping and disco#info only, until commands or a version are set. ctx and jid
 * must outlive it. */
void iq_responder_init(struct iq_responder *responder, xmpp_ctx_t *ctx, const char *jid);
/* Free the commands and version strings; ctx and jid stay the caller's. */
void iq_responder_finish(struct iq_responder *responder);

/* Offer cmds as component_commands_register() describes: 0, or -1 when cmds
 * is invalid, commands were registered already, or out of memory. */
int iq_responder_register_commands(struct iq_responder *responder,
                                   const struct component_commands *cmds);
/* Answer XEP-0092 with copies of name and version: 0, or -1 when either is
 * NULL or out of memory (the previous ones stay then). */
int iq_responder_set_version(struct iq_responder *responder, const char *name, const char *version);

/* libstrophe handler for every <iq/>, userdata the responder: sends the answer
 * to a get or set on conn, never answers a result or an error. Returns 1, so
 * that it stays registered. */
int iq_responder_handle(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *userdata);

/* An empty result answering iq, from the address iq was sent to. The caller
 * releases it. NULL when out of memory. */
xmpp_stanza_t *iq_result(xmpp_stanza_t *iq);

/* First element child of stanza, or NULL. Borrowed. */
xmpp_stanza_t *first_tag(xmpp_stanza_t *stanza);

/* ---- building stanzas (dataform.c) ---------------------------------------- */

/* Builders record the first failure in failed and then do nothing, so that a
 * tree is built without a check per call, and checked once at the end. */
struct build {
	xmpp_ctx_t *ctx;
	bool failed;
};

/* Append element name (with xmlns ns unless NULL) to parent, or create a
 * root when parent is NULL (the caller releases a root). Returns the element,
 * borrowed from its parent, or NULL after a failure. */
xmpp_stanza_t *build_element(struct build *b, xmpp_stanza_t *parent, const char *name,
                             const char *ns);
/* Same, with text content (skipped when text is NULL). */
xmpp_stanza_t *build_text(struct build *b, xmpp_stanza_t *parent, const char *name,
                          const char *text);
/* Set an attribute; nothing when el or value is NULL. */
void build_attribute(struct build *b, xmpp_stanza_t *el, const char *name, const char *value);
/* root, or NULL (root released) if anything failed. */
xmpp_stanza_t *build_finish(struct build *b, xmpp_stanza_t *root);

/* ---- data forms (dataform.c) --------------------------------------------- */

#define FORM_VALUES_MAX 256 /* values accepted in one submitted form */

/* <x xmlns='jabber:x:data' type='TYPE'/> holding form. Caller releases. NULL
 * when out of memory. */
xmpp_stanza_t *dataform_build(xmpp_ctx_t *ctx, const struct component_form *form, const char *type);

/* Values of a submitted form, by var. */
struct dataform_values;

enum dataform_check {
	DATAFORM_OK,
	DATAFORM_INVALID, /* why holds a sentence for the user */
	DATAFORM_NO_MEMORY,
};

/* Check submitted (an <x/>, or NULL when nothing was submitted) against sent,
 * the XML of the form it answers, and keep the values of sent's fields only;
 * hidden fields keep the values sent. On DATAFORM_OK, *values is set (free
 * with dataform_values_free()); otherwise it is NULL. */
enum dataform_check dataform_read(xmpp_ctx_t *ctx, const char *sent, xmpp_stanza_t *submitted,
                                  struct dataform_values **values, char *why, size_t why_size);
void dataform_values_free(struct dataform_values *values); /* accepts NULL */
size_t dataform_count(const struct dataform_values *values, const char *var);
const char *dataform_value(const struct dataform_values *values, const char *var, size_t index);

/* ---- the component's state (component.c, requests.c) ---------------------- */

#define PENDING_BUCKETS 1024 /* hash of pending requests by IQ id */
#define HOST_MAX        1023

/* A configured host and what discovery found on it. */
struct host_state {
	char *name;
	char *act_as;                   /* NULL: as the host's admin */
	bool discovered;                /* discovery has an outcome since the last connect */
	bool warned_username;           /* logged that it takes no username, this connection */
	bool completes_at_once;         /* its create-account completed on execute, ditto */
	enum component_offer offers[2]; /* by enum invite_kind */
	char reason[ADHOC_REASON_MAX];  /* discovery failed: why */
};

struct adhoc_request;

struct component {
	xmpp_ctx_t *ctx;
	xmpp_conn_t *conn;
	xmpp_log_t strophe_log; /* must outlive ctx */
	char *jid;
	char *server;
	unsigned short port;
	unsigned request_timeout_ms;

	int fd;
	int fd_reserve; /* a low descriptor held while there is no socket: keep_low_fd() */
	bool started, stopping;
	bool online;           /* handshake accepted, stream up */
	bool tcp_up;           /* this attempt got past the TCP connect */
	bool stream_broken;    /* libstrophe could not parse what the server sent */
	bool closing_broken;   /* and we are closing that stream */
	unsigned busy;         /* > 0 while inside xmpp_run_once() */
	uint64_t reconnect_at; /* ms, monotonic; 0: none scheduled */
	unsigned backoff_ms;
	unsigned replaced; /* times in a row another connection took over our JID */
	uint64_t rng;
	char last_error[512];

	struct host_state *hosts;
	size_t n_hosts;

	struct adhoc_request *head, *tail; /* FIFO, so ordered by deadline */
	struct adhoc_request *by_id[PENDING_BUCKETS];
	unsigned pending;                 /* requests in the table, discovery included */
	unsigned discovering;             /* of which disco#items queries */
	uint64_t privileged_discovery_at; /* ms, monotonic; 0: none waiting (requests.c) */
	struct adhoc_request *settled;    /* answered without asking the server, due now */
	char privileges[600];             /* the last privilege message; "" when none */
	bool commands_granted;            /* by it: iq commands set */

	struct iq_responder responder; /* answers others' IQs (iq.c) */
};

/* One request waiting for the server's answer (requests.c). */
enum request_purpose { PURPOSE_INVITE, PURPOSE_DISCOVERY };

struct adhoc_request {
	struct component *comp;
	struct adhoc_request *prev, *next; /* FIFO; next also links comp->settled */
	struct adhoc_request *next_same_bucket;
	char *id; /* from xmpp_uuid_gen(): xmpp_free() */
	char *host;
	const char *act_as; /* borrowed from comp->hosts; NULL: as the host's admin */
	uint64_t deadline;  /* ms, monotonic; one for the whole exchange */
	enum request_purpose purpose;
	size_t host_index; /* PURPOSE_DISCOVERY */
	enum invite_kind kind;
	char *username, *account_jid; /* owned; NULL when not asked for */
	char *settled_reason;         /* on comp->settled: why it is UNSUPPORTED; owned */
	unsigned steps;               /* commands sent so far */
	component_invite_cb cb;
	void *userdata;
};

/* A request to host (routed as comp->hosts says), not yet in the table;
 * NULL when out of memory. Free with request_free() unless linked. */
struct adhoc_request *request_new(struct component *comp, const char *host);
void request_free(struct adhoc_request *req);
/* Into, and out of, the table of pending requests. */
void request_link(struct component *comp, struct adhoc_request *req);
void request_unlink(struct component *comp, struct adhoc_request *req);
/* Send payload (a root the caller releases) in an <iq/> of type to req's
 * host, directly or privileged. 0, or -1 out of memory. */
int request_send_iq(struct adhoc_request *req, const char *type, xmpp_stanza_t *payload);
/* The configured host called name (case-insensitive), or NULL. */
struct host_state *host_find(const struct component *comp, const char *name);
/* "account invites" or "password resets", for log lines. */
const char *invite_what(enum invite_kind kind);

/* Fail every request (discovery included) with status and reason. */
void requests_fail_all(struct component *comp, enum component_status status, const char *reason);
/* Fail the requests due by now with COMPONENT_TIMEOUT, report those answered
 * without asking, and start the discovery of privileged hosts when due. */
void requests_expire(struct component *comp, uint64_t now);
/* When requests_expire() is next due, or UINT64_MAX when nothing waits. */
uint64_t requests_next_deadline(const struct component *comp);
/* libstrophe handler for every <iq/> (userdata comp): replies to our IQs.
 * Returns 1, to stay registered. */
int requests_handle_iq(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata);

/* discovery.c */

/* Copy the host table into comp: 0, or -1 out of memory (then hosts_finish()
 * frees what was copied). */
int hosts_init(struct component *comp, const struct component_host *hosts, size_t n);
void hosts_finish(struct component *comp);
/* The stream is up: forget what discovery knew and ask every host again. */
void discovery_start(struct component *comp);
/* Record req's outcome (reply; outcome false: the stream went down, nothing
 * learned), log it, and free req, which must be linked. */
void discovery_finish(struct adhoc_request *req, const struct discovery_reply *reply, bool outcome);
/* The discovery of privileged hosts, when due (see discovery_start()). */
void discovery_due(struct component *comp, uint64_t now);
uint64_t discovery_next(const struct component *comp); /* when due; UINT64_MAX: never */
/* libstrophe handler for every <message/> (userdata comp): the server's
 * privilege message. Returns 1. */
int privilege_handle_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata);

/* ---- the component's own commands (adhoc.c) ------------------------------ */

#define COMMAND_SESSIONS_MAX      32 /* live sessions in all */
#define COMMAND_SESSIONS_PER_USER 4  /* per bare JID: a fifth ends that user's oldest */
#define COMMAND_TIMEOUT_MS        (10 * 60 * 1000)
#define COMMAND_NOTES_MAX         4

struct command_registry;

/* NULL when out of memory. cmds is copied, its table is not. */
struct command_registry *commands_create(xmpp_ctx_t *ctx, const struct component_commands *cmds);
void commands_destroy(struct command_registry *reg); /* accepts NULL */

/* Answers to an IQ (the reply, which the caller sends and releases; NULL only
 * when out of memory): a set with <command/>, a disco#items get and a
 * disco#info get on node (NULL: the component itself; not answered here). */
xmpp_stanza_t *commands_execute(struct command_registry *reg, xmpp_stanza_t *iq,
                                xmpp_stanza_t *command);
xmpp_stanza_t *commands_disco_items(struct command_registry *reg, xmpp_stanza_t *iq,
                                    const char *node);
xmpp_stanza_t *commands_disco_info(struct command_registry *reg, xmpp_stanza_t *iq,
                                   const char *node);

/* End sessions idle past their timeout. */
void commands_expire(struct command_registry *reg, uint64_t now);

#endif
