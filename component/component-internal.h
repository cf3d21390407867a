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
#define NODE_CREATE_ACCOUNT "urn:xmpp:invite#create-account"

#define ADHOC_VALUE_MAX     4096 /* longest form field value accepted, in bytes */
#define ADHOC_REASON_MAX    256  /* reasons are cut to this size, NUL included */
#define ADHOC_CONDITION_MAX 64

/* The server's answer to create-account, as far as the component cares. */
struct adhoc_reply {
	enum component_status status;        /* COMPONENT_OK, _REMOTE_ERROR or _BAD_REPLY */
	struct invite invite;                /* COMPONENT_OK: malloc'd copies, uri never NULL */
	char condition[ADHOC_CONDITION_MAX]; /* COMPONENT_REMOTE_ERROR: e.g. "forbidden" */
	char reason[ADHOC_REASON_MAX];       /* one line; empty on COMPONENT_OK */
};

/* Parse an <iq/> answering create-account. Never fails and never logs: every
 * outcome is a status and a reason in *reply. Nothing in *reply points into
 * iq. Release with adhoc_reply_finish(), whatever the status. */
void adhoc_reply_parse(xmpp_stanza_t *iq, struct adhoc_reply *reply);

/* Free the invite strings of a parsed reply. */
void adhoc_reply_finish(struct adhoc_reply *reply);

/* Copy src (may be NULL) into dst as one line for logs and HTTP bodies:
 * control characters and runs of spaces become one space, both ends are
 * trimmed, and a cut never splits a UTF-8 sequence. dst is always terminated. */
void reason_copy(char *dst, size_t size, const char *src);

/* True if s holds an ASCII control character (below space, or DEL). */
bool has_control_chars(const char *s);

/* ---- helpers of component.c ---------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t monotonic_ms(void);

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
