/*
 * Answers to the IQs others send the component: ping (XEP-0199), disco#info
 * and disco#items (XEP-0030), software version (XEP-0092) and the component's
 * own ad-hoc commands (adhoc.c). Anything else gets service-unavailable.
 *
 * Results and errors are never answered, whoever sent them: the answers to our
 * own requests went to their id handlers in component.c, and answering an
 * error with an error could loop between two entities forever.
 */

#include <stdlib.h>
#include <string.h>

#include "component-internal.h"

void iq_responder_init(struct iq_responder *responder, xmpp_ctx_t *ctx, const char *jid)
{
	*responder = (struct iq_responder){.ctx = ctx, .jid = jid};
}

void iq_responder_finish(struct iq_responder *responder)
{
	commands_destroy(responder->commands);
	free(responder->software_name);
	free(responder->software_version);
	responder->commands = NULL;
	responder->software_name = responder->software_version = NULL;
}

int iq_responder_register_commands(struct iq_responder *responder,
                                   const struct component_commands *cmds)
{
	if (responder->commands || !cmds || !cmds->commands || cmds->n_commands == 0 ||
	    !cmds->allowed)
		return -1;
	for (size_t i = 0; i < cmds->n_commands; i++) {
		const struct component_command *c = &cmds->commands[i];
		if (!c->node || !c->name || !c->execute || !c->submit)
			return -1;
	}
	responder->commands = commands_create(responder->ctx, cmds);
	return responder->commands ? 0 : -1;
}

int iq_responder_set_version(struct iq_responder *responder, const char *name, const char *version)
{
	char *n = name ? strdup(name) : NULL;
	char *v = version ? strdup(version) : NULL;

	if (!n || !v) {
		free(n);
		free(v);
		return -1;
	}
	free(responder->software_name);
	free(responder->software_version);
	responder->software_name = n;
	responder->software_version = v;
	return 0;
}

xmpp_stanza_t *iq_result(xmpp_stanza_t *iq)
{
	xmpp_stanza_t *reply = xmpp_stanza_reply(iq);
	const char *to = xmpp_stanza_get_to(iq);

	/* without a to, iq_responder_handle() sets our JID */
	if (reply && (xmpp_stanza_set_type(reply, "result") != XMPP_EOK ||
	              (to && xmpp_stanza_set_from(reply, to) != XMPP_EOK))) {
		xmpp_stanza_release(reply);
		return NULL;
	}
	return reply;
}

xmpp_stanza_t *first_tag(xmpp_stanza_t *stanza)
{
	xmpp_stanza_t *c = xmpp_stanza_get_children(stanza);
	while (c && !xmpp_stanza_is_tag(c))
		c = xmpp_stanza_get_next(c);
	return c;
}

static xmpp_stanza_t *service_unavailable(xmpp_stanza_t *iq)
{
	return xmpp_stanza_reply_error(iq, "cancel", "service-unavailable", NULL);
}

static xmpp_stanza_t *answer_ping(struct iq_responder *responder, xmpp_stanza_t *iq,
                                  xmpp_stanza_t *payload)
{
	(void)responder;
	(void)payload;
	return iq_result(iq);
}

static xmpp_stanza_t *answer_disco_info(struct iq_responder *responder, xmpp_stanza_t *iq,
                                        xmpp_stanza_t *payload)
{
	const char *node = xmpp_stanza_get_attribute(payload, "node");
	const char *features[] = {
	    NS_DISCO_INFO,
	    NS_PING,
	    responder->commands ? NS_COMMANDS : NULL,
	    responder->software_name ? NS_VERSION : NULL,
	};

	if (node && responder->commands)
		return commands_disco_info(responder->commands, iq, node);
	if (node)
		return xmpp_stanza_reply_error(iq, "cancel", "item-not-found", NULL);

	struct build b = {.ctx = responder->ctx};
	xmpp_stanza_t *reply = iq_result(iq);
	b.failed = !reply;
	xmpp_stanza_t *query = build_element(&b, reply, "query", NS_DISCO_INFO);
	xmpp_stanza_t *identity = build_element(&b, query, "identity", NULL);
	build_attribute(&b, identity, "category", "component");
	build_attribute(&b, identity, "type", "generic");
	build_attribute(&b, identity, "name", "Invites API");
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		if (features[i])
			build_attribute(&b, build_element(&b, query, "feature", NULL), "var",
			                features[i]);
	}
	return build_finish(&b, reply);
}

static xmpp_stanza_t *answer_disco_items(struct iq_responder *responder, xmpp_stanza_t *iq,
                                         xmpp_stanza_t *payload)
{
	if (!responder->commands)
		return service_unavailable(iq);
	return commands_disco_items(responder->commands, iq,
	                            xmpp_stanza_get_attribute(payload, "node"));
}

static xmpp_stanza_t *answer_version(struct iq_responder *responder, xmpp_stanza_t *iq,
                                     xmpp_stanza_t *payload)
{
	(void)payload;
	if (!responder->software_name)
		return service_unavailable(iq);

	struct build b = {.ctx = responder->ctx};
	xmpp_stanza_t *reply = iq_result(iq);
	b.failed = !reply;
	xmpp_stanza_t *query = build_element(&b, reply, "query", NS_VERSION);
	build_text(&b, query, "name", responder->software_name);
	build_text(&b, query, "version", responder->software_version);
	return build_finish(&b, reply);
}

static xmpp_stanza_t *answer_command(struct iq_responder *responder, xmpp_stanza_t *iq,
                                     xmpp_stanza_t *payload)
{
	if (!responder->commands)
		return service_unavailable(iq);
	return commands_execute(responder->commands, iq, payload);
}

/* The IQs the component answers; anything else gets service-unavailable. */
static const struct iq_handler {
	const char *type;
	const char *name;
	const char *ns;
	xmpp_stanza_t *(*answer)(struct iq_responder *responder, xmpp_stanza_t *iq,
	                         xmpp_stanza_t *payload);
} iq_handlers[] = {
    {"get", "ping", NS_PING, answer_ping},
    {"get", "query", NS_DISCO_INFO, answer_disco_info},
    {"get", "query", NS_DISCO_ITEMS, answer_disco_items},
    {"get", "query", NS_VERSION, answer_version},
    {"set", "command", NS_COMMANDS, answer_command},
};

static xmpp_stanza_t *answer_iq(struct iq_responder *responder, xmpp_stanza_t *iq, const char *type)
{
	xmpp_stanza_t *payload = first_tag(iq);
	const char *ns = payload ? xmpp_stanza_get_ns(payload) : NULL;

	for (size_t i = 0; payload && ns && i < sizeof(iq_handlers) / sizeof(iq_handlers[0]); i++) {
		const struct iq_handler *h = &iq_handlers[i];
		if (strcmp(type, h->type) == 0 &&
		    strcmp(xmpp_stanza_get_name(payload), h->name) == 0 && strcmp(ns, h->ns) == 0)
			return h->answer(responder, iq, payload);
	}
	return service_unavailable(iq);
}

int iq_responder_handle(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *userdata)
{
	struct iq_responder *responder = userdata;
	const char *type = xmpp_stanza_get_type(iq);

	/* Results and errors are never answered: ours went to their id handler. */
	if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0) ||
	    !xmpp_stanza_get_id(iq) || !xmpp_stanza_get_from(iq))
		return 1;
	xmpp_stanza_t *reply = answer_iq(responder, iq, type);
	if (!reply)
		return 1;
	/* always from someone: Prosody 13 closes the stream otherwise */
	if (xmpp_stanza_get_from(reply) || xmpp_stanza_set_from(reply, responder->jid) == XMPP_EOK)
		xmpp_send(conn, reply);
	xmpp_stanza_release(reply);
	return 1;
}
