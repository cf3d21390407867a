/*
 * Fuzz target: the parser of Prosody's answer to create-account
 * (component/form.c). The input is XML text; libstrophe's own parser (expat)
 * builds the stanza, as it does for what arrives on the stream, and whatever
 * it accepts goes to adhoc_reply_parse().
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
	if (reply->status == COMPONENT_OK &&
	    (!reply->invite.uri || strncasecmp(reply->invite.uri, "xmpp:", 5) != 0))
		abort();
	if (reply->status == COMPONENT_OK && reply->invite.landing_url &&
	    strncasecmp(reply->invite.landing_url, "http", 4) != 0)
		abort();
	if (reply->status != COMPONENT_OK &&
	    (reply->invite.uri || reply->invite.landing_url || reply->invite.expire))
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
		struct adhoc_reply reply;
		adhoc_reply_parse(stanza, &reply);
		check(&reply);
		adhoc_reply_finish(&reply);
		xmpp_stanza_release(stanza);
	}
	free(xml);
	return 0;
}
