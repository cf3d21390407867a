/*
 * XEP-0356 (Privileged Entity), version 2 (urn:xmpp:privilege:2), as far as
 * the component needs it: wrapping an IQ so that the server runs it as one of
 * its local JIDs, unwrapping the reply, and reading the message in which the
 * server lists what it granted. Pure functions of stanzas, tested with stanzas
 * built from strings.
 *
 * The shape was checked against ejabberd 26.07's mod_privilege: the outer IQ
 * goes to the bare JID acted as, the inner one (xmlns jabber:client) from that
 * JID to the host, both of the same type; the reply comes from that JID as
 * <privilege><forwarded xmlns='urn:xmpp:forward:0'><iq/></forwarded>.
 */

#include <stdio.h>
#include <string.h>

#include "component-internal.h"

xmpp_stanza_t *privileged_wrap(xmpp_ctx_t *ctx, const char *comp_jid, const char *act_as,
                               xmpp_stanza_t *inner)
{
	const char *type = xmpp_stanza_get_type(inner);
	const char *id = xmpp_stanza_get_id(inner);
	struct build b = {.ctx = ctx};

	if (!type || !id || xmpp_stanza_set_ns(inner, NS_CLIENT) != XMPP_EOK ||
	    xmpp_stanza_set_from(inner, act_as) != XMPP_EOK)
		return NULL;
	xmpp_stanza_t *outer = build_element(&b, NULL, "iq", NULL);
	build_attribute(&b, outer, "type", type);
	build_attribute(&b, outer, "id", id);
	build_attribute(&b, outer, "from", comp_jid);
	build_attribute(&b, outer, "to", act_as);
	xmpp_stanza_t *wrapper = build_element(&b, outer, "privileged_iq", NS_PRIVILEGE);
	if (wrapper && xmpp_stanza_add_child(wrapper, inner) != XMPP_EOK)
		b.failed = true;
	return build_finish(&b, outer);
}

/* The first element child called name in namespace ns (NULL: any or none). */
static xmpp_stanza_t *child(xmpp_stanza_t *parent, const char *name, const char *ns)
{
	for (xmpp_stanza_t *c = parent ? xmpp_stanza_get_children(parent) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		const char *c_ns = xmpp_stanza_get_ns(c);
		if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), name) == 0 &&
		    (!ns || (c_ns && strcmp(c_ns, ns) == 0)))
			return c;
	}
	return NULL;
}

xmpp_stanza_t *privileged_unwrap(xmpp_stanza_t *outer)
{
	xmpp_stanza_t *forwarded =
	    child(child(outer, "privilege", NS_PRIVILEGE), "forwarded", NS_FORWARD);
	xmpp_stanza_t *iq = child(forwarded, "iq", NULL);
	const char *ns = iq ? xmpp_stanza_get_ns(iq) : NULL;

	/* jabber:client, as ejabberd writes it; a forwarded stanza may also
	 * inherit the namespace of its stream (none of its own) */
	if (iq && ns && strcmp(ns, NS_CLIENT) != 0 && strcmp(ns, NS_PRIVILEGE) != 0 &&
	    strcmp(ns, NS_FORWARD) != 0)
		return NULL;
	return iq;
}

/* Append "PART" to the summary, separated by sep, as one clean line. */
static void append(struct privileges *got, const char *sep, const char *part)
{
	char clean[ADHOC_REASON_MAX];
	size_t len = strlen(got->summary);

	reason_copy(clean, sizeof(clean), part);
	snprintf(got->summary + len, sizeof(got->summary) - len, "%s%s", len ? sep : "", clean);
}

static bool grants(const char *type, const char *wanted)
{
	return type && (strcmp(type, wanted) == 0 || strcmp(type, "both") == 0);
}

static void read_iq_perm(xmpp_stanza_t *perm, struct privileges *got)
{
	char part[ADHOC_REASON_MAX];

	for (xmpp_stanza_t *c = xmpp_stanza_get_children(perm); c; c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "namespace") != 0)
			continue;
		const char *ns = xmpp_stanza_get_attribute(c, "ns");
		const char *type = xmpp_stanza_get_attribute(c, "type");
		if (!ns)
			continue;
		got->commands_set |= strcmp(ns, NS_COMMANDS) == 0 && grants(type, "set");
		got->disco_items_get |= strcmp(ns, NS_DISCO_ITEMS) == 0 && grants(type, "get");
		snprintf(part, sizeof(part), "iq %.200s %.16s", ns, type ? type : "?");
		append(got, ", ", part);
	}
}

int privileges_parse(xmpp_stanza_t *message, struct privileges *got)
{
	xmpp_stanza_t *privilege = child(message, "privilege", NS_PRIVILEGE);
	char part[ADHOC_REASON_MAX];

	memset(got, 0, sizeof(*got));
	if (!privilege)
		return -1;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(privilege); c;
	     c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "perm") != 0)
			continue;
		const char *access = xmpp_stanza_get_attribute(c, "access");
		const char *type = xmpp_stanza_get_attribute(c, "type");
		if (!access)
			continue;
		if (strcmp(access, "iq") == 0) {
			read_iq_perm(c, got);
			continue;
		}
		snprintf(part, sizeof(part), "%.32s %.32s", access, type ? type : "?");
		append(got, ", ", part);
	}
	if (!got->summary[0])
		snprintf(got->summary, sizeof(got->summary), "nothing");
	return 0;
}
