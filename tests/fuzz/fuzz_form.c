/*
 * Fuzz target: the parsers of the server's answers (component/form.c: an
 * invite command's reply, disco#items) and of XEP-0356 stanzas
 * (component/privilege.c: a privileged reply's forwarded IQ, the privilege
 * message). The input is XML text; libstrophe's own parser (expat) builds the
 * stanza, as it does for what arrives on the stream, and whatever it accepts
 * goes to each parser, and to the command parser again unwrapped.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

#include "component-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static xmpp_ctx_t *ctx;

static void check(const struct adhoc_reply *reply)
{
	/* What the daemon relies on: one terminated line, and a uri on success. */
	if (!memchr(reply->reason, '\0', sizeof(reply->reason)) ||
	    !memchr(reply->condition, '\0', sizeof(reply->condition)) ||
	    has_control_chars(reply->reason) || has_control_chars(reply->condition))
		abort();
	if (has_control_chars(reply->sessionid) ||
	    !memchr(reply->sessionid, '\0', sizeof(reply->sessionid)))
		abort();
	/* executing: a form to fill in, with a sessionid to send back, no invite */
	if (reply->executing &&
	    (reply->status != COMPONENT_OK || !reply->sessionid[0] || reply->invite.uri))
		abort();
	if (!reply->executing && reply->form_type)
		abort();
	if (reply->form_type && has_control_chars(reply->form_type))
		abort();
	if (reply->status == COMPONENT_OK && !reply->executing &&
	    (!reply->invite.uri || strncasecmp(reply->invite.uri, "xmpp:", 5) != 0))
		abort();
	if (reply->status == COMPONENT_OK && reply->invite.landing_url &&
	    strncasecmp(reply->invite.landing_url, "http", 4) != 0)
		abort();
	if (reply->status != COMPONENT_OK &&
	    (reply->invite.uri || reply->invite.landing_url || reply->invite.expire))
		abort();
}

static void parse_all(xmpp_stanza_t *stanza)
{
	struct adhoc_reply reply;
	adhoc_reply_parse(stanza, &reply);
	check(&reply);
	adhoc_reply_finish(&reply);

	struct discovery_reply found;
	discovery_reply_parse(stanza, &found);
	if (!memchr(found.reason, '\0', sizeof(found.reason)) || has_control_chars(found.reason) ||
	    has_control_chars(found.condition) || (found.ok && found.reason[0]))
		abort();

	struct privileges granted;
	if (privileges_parse(stanza, &granted) == 0 &&
	    (!memchr(granted.summary, '\0', sizeof(granted.summary)) ||
	     has_control_chars(granted.summary) || !granted.summary[0]))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ctx && !(ctx = xmpp_ctx_new(NULL, NULL)))
		abort();

	char *xml = malloc(size + 1);
	if (!xml)
		return 0;
	memcpy(xml, data, size);
	xml[size] = '\0';

	xmpp_stanza_t *stanza = xmpp_stanza_new_from_string(ctx, xml);
	if (stanza) {
		parse_all(stanza);
		xmpp_stanza_t *inner = privileged_unwrap(stanza);
		if (inner)
			parse_all(inner);
		xmpp_stanza_release(stanza);
	}
	free(xml);
	return 0;
}
