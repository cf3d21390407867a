#ifndef INVITES_COMPONENT_INTERNAL_H
#define INVITES_COMPONENT_INTERNAL_H

/*
 * Helpers shared inside component/ (and by its unit tests); no other folder
 * includes this header.
 */

#include <stddef.h>
#include <strophe.h>

#include "component.h"

#define NS_COMMANDS         "http://jabber.org/protocol/commands"
#define NS_DATA_FORMS       "jabber:x:data"
#define NS_STANZAS          "urn:ietf:params:xml:ns:xmpp-stanzas"
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

#endif
