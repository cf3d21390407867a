#ifndef INVITES_TESTS_ADHOC_HARNESS_H
#define INVITES_TESTS_ADHOC_HARNESS_H

/*
 * The harness shared by the ad-hoc command tests (test_adhoc.c for the
 * XEP-0050 framework, test_adhoc_keys.c for the key commands): a component
 * connected to the scripted fake server of fake_xmpp.h, IQs sent as a given
 * JID, and helpers that look at the answers. Every failure is a CUnit
 * assertion; stanzas returned are borrowed and released by harness_finish().
 */

#include <stdbool.h>
#include <stddef.h>
#include <strophe.h>

#include "component/component.h"
#include "fake_xmpp.h"

#define JID         "invites.localhost"
#define SECRET      "s3cret"
#define ADMIN       "admin@localhost/desk"
#define ADMIN_PHONE "admin@localhost/phone"
#define OTHER       "mallory@localhost/x"
#define NS_COMMANDS "http://jabber.org/protocol/commands"
#define NS_STANZAS  "urn:ietf:params:xml:ns:xmpp-stanzas"
#define DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define DISCO_ITEMS "http://jabber.org/protocol/disco#items"

struct harness {
	struct fake fake;
	struct component *comp;
	unsigned next_id;
	char last_id[16];
	/* kept by the dummy commands of test_adhoc.c */
	char last_allowed[128]; /* the bare JID allowed() was last asked about */
	unsigned executes, submits;
	char seen_token[32]; /* the hidden field's value as submit() saw it */
	size_t seen_tags;
};

/* ---- driving the component ---- */

/* Zero h, start the fake server and create (not start) the component h->comp. */
void harness_create(struct harness *h);
/* Start the component and wait until it is online (fatal if it does not come). */
void harness_start(struct harness *h);
/* Stop and destroy the component, check every stanza it sent was looked at,
 * and release the fake server. */
void harness_finish(struct harness *h);
/* Serve the component and the fake for ms milliseconds. */
void settle(struct harness *h, unsigned ms);

/* Send an IQ of type from from with payload; return the answer (NULL if none
 * came), checking it answers that IQ. */
xmpp_stanza_t *ask(struct harness *h, const char *type, const char *from, const char *payload_fmt,
                   ...) __attribute__((format(printf, 4, 5)));
/* Execute command node as from. */
xmpp_stanza_t *execute(struct harness *h, const char *from, const char *node);
/* Submit fields (XML) to session sessionid with action (complete, ...). */
xmpp_stanza_t *submit(struct harness *h, const char *from, const char *node, const char *sessionid,
                      const char *action, const char *fields);
/* Cancel session sessionid of command node. */
xmpp_stanza_t *cancel(struct harness *h, const char *from, const char *node, const char *sessionid);

/* ---- looking at answers (NULL stanzas are welcome) ---- */

/* Attribute name of s, "" if none. Borrowed from s. */
const char *attr(xmpp_stanza_t *s, const char *name);
/* The first child named name (in ns unless NULL), or NULL. */
xmpp_stanza_t *child(xmpp_stanza_t *s, const char *name, const char *ns);
size_t count_children(xmpp_stanza_t *s, const char *name);
/* The text of s, copied into a static buffer ("" when none): valid until the
 * next call of text(), value_of() or note(). */
const char *text(xmpp_stanza_t *s);
/* The data form field var of form x, or NULL. */
xmpp_stanza_t *field(xmpp_stanza_t *x, const char *var);
/* The first value of field var of form x, as text(). */
const char *value_of(xmpp_stanza_t *x, const char *var);
/* The XEP-0050 command of an IQ, and its data form. */
xmpp_stanza_t *command_of(xmpp_stanza_t *iq);
xmpp_stanza_t *form_of(xmpp_stanza_t *iq);
/* The text of the command's first note of type, "" if none; as text(). */
const char *note(xmpp_stanza_t *iq, const char *type);

/* An error reply with type and condition (and, unless NULL, a XEP-0050 one). */
void check_error(xmpp_stanza_t *iq, const char *type, const char *condition, const char *specific);
/* The command's error note reads want; a mismatch names case i of a table. */
void check_error_note(xmpp_stanza_t *iq, const char *want, size_t i);
/* Status and sessionid of a command reply; sessionid copied into sid unless NULL. */
void check_status(xmpp_stanza_t *iq, const char *status, char *sid, size_t size);

#endif
