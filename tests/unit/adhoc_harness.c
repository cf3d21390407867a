/*
 * The harness of adhoc_harness.h: the component under test and the fake
 * server share one poll loop, so every wait below is bounded by a deadline.
 */

#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strophe.h>

#include "adhoc_harness.h"
#include "component/component.h"
#include "fake_xmpp.h"

static bool pump(struct harness *h, uint64_t deadline)
{
	return fake_pump(&h->fake, h->comp, deadline, 20);
}

void settle(struct harness *h, unsigned ms)
{
	uint64_t deadline = now_ms() + ms;
	while (pump(h, deadline))
		;
}

static xmpp_stanza_t *next_stanza(struct harness *h)
{
	return fake_next_stanza(&h->fake, h->comp, 3000, 20);
}

void harness_start(struct harness *h)
{
	uint64_t deadline = now_ms() + 3000;

	CU_ASSERT_EQUAL(component_start(h->comp), 0);
	while (!component_online(h->comp) && pump(h, deadline))
		;
	CU_ASSERT_TRUE_FATAL(component_online(h->comp));
}

void harness_create(struct harness *h)
{
	signal(SIGPIPE, SIG_IGN);
	memset(h, 0, sizeof(*h));
	fake_init(&h->fake, JID, SECRET, false);
	struct component_config cfg = {
	    .jid = JID,
	    .secret = SECRET,
	    .server = "127.0.0.1",
	    .port = h->fake.port,
	    .request_timeout_ms = 2000,
	};
	const char *err = NULL;
	h->comp = component_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h->comp);
}

void harness_finish(struct harness *h)
{
	component_stop(h->comp, 0);
	uint64_t deadline = now_ms() + 1000;
	while (component_fd(h->comp) >= 0 && pump(h, deadline))
		;
	component_destroy(h->comp);
	/* every stanza the component sent was looked at */
	CU_ASSERT_EQUAL(h->fake.n_taken, h->fake.n_received);
	fake_finish(&h->fake);
}

xmpp_stanza_t *ask(struct harness *h, const char *type, const char *from, const char *payload_fmt,
                   ...)
{
	char payload[12288];
	va_list ap;

	va_start(ap, payload_fmt);
	vsnprintf(payload, sizeof(payload), payload_fmt, ap);
	va_end(ap);
	snprintf(h->last_id, sizeof(h->last_id), "q%u", ++h->next_id);
	fake_send(&h->fake, "<iq type='%s' id='%s' from='%s' to='" JID "'>%s</iq>", type,
	          h->last_id, from, payload);
	xmpp_stanza_t *reply = next_stanza(h);
	CU_ASSERT_PTR_NOT_NULL(reply);
	if (reply) {
		const char *id = xmpp_stanza_get_id(reply);
		CU_ASSERT_STRING_EQUAL(id ? id : "", h->last_id);
		const char *rfrom = xmpp_stanza_get_from(reply);
		CU_ASSERT_STRING_EQUAL(rfrom ? rfrom : "", JID);
		const char *to = xmpp_stanza_get_to(reply);
		CU_ASSERT_STRING_EQUAL(to ? to : "", from);
	}
	return reply;
}

/* ---- looking at answers ----------------------------------------------------- */

const char *attr(xmpp_stanza_t *s, const char *name)
{
	const char *v = s ? xmpp_stanza_get_attribute(s, name) : NULL;
	return v ? v : "";
}

xmpp_stanza_t *child(xmpp_stanza_t *s, const char *name, const char *ns)
{
	if (!s)
		return NULL;
	return ns ? xmpp_stanza_get_child_by_name_and_ns(s, name, ns)
	          : xmpp_stanza_get_child_by_name(s, name);
}

size_t count_children(xmpp_stanza_t *s, const char *name)
{
	size_t n = 0;
	for (xmpp_stanza_t *c = s ? xmpp_stanza_get_children(s) : NULL; c;
	     c = xmpp_stanza_get_next(c))
		n += xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), name) == 0;
	return n;
}

/* The text of s, copied into a static buffer ("" when none). */
const char *text(xmpp_stanza_t *s)
{
	static char buf[1024];
	char *t = s ? xmpp_stanza_get_text(s) : NULL;
	snprintf(buf, sizeof(buf), "%s", t ? t : "");
	if (t)
		xmpp_free(xmpp_stanza_get_context(s), t);
	return buf;
}

xmpp_stanza_t *field(xmpp_stanza_t *x, const char *var)
{
	for (xmpp_stanza_t *c = x ? xmpp_stanza_get_children(x) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "field") == 0 &&
		    strcmp(attr(c, "var"), var) == 0)
			return c;
	}
	return NULL;
}

const char *value_of(xmpp_stanza_t *x, const char *var)
{
	return text(child(field(x, var), "value", NULL));
}

xmpp_stanza_t *command_of(xmpp_stanza_t *iq)
{
	return child(iq, "command", NS_COMMANDS);
}

xmpp_stanza_t *form_of(xmpp_stanza_t *iq)
{
	return child(command_of(iq), "x", "jabber:x:data");
}

/* The text of the command's first note of type, "" if none. */
const char *note(xmpp_stanza_t *iq, const char *type)
{
	for (xmpp_stanza_t *c = command_of(iq) ? xmpp_stanza_get_children(command_of(iq)) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "note") == 0 &&
		    strcmp(attr(c, "type"), type) == 0)
			return text(c);
	}
	return "";
}

/* An error reply with type and condition (and, unless NULL, a XEP-0050 one). */
void check_error(xmpp_stanza_t *iq, const char *type, const char *condition, const char *specific)
{
	xmpp_stanza_t *error = child(iq, "error", NULL);
	CU_ASSERT_STRING_EQUAL(attr(iq, "type"), "error");
	CU_ASSERT_STRING_EQUAL(attr(error, "type"), type);
	CU_ASSERT_PTR_NOT_NULL(child(error, condition, NS_STANZAS));
	if (specific)
		CU_ASSERT_PTR_NOT_NULL(child(error, specific, NS_COMMANDS));
}

/* The command's error note reads want; a mismatch names case i of a table. */
void check_error_note(xmpp_stanza_t *iq, const char *want, size_t i)
{
	if (strcmp(note(iq, "error"), want) != 0) {
		fprintf(stderr, "\n  case %zu: note \"%s\", want \"%s\"\n", i, note(iq, "error"),
		        want);
		CU_FAIL("error note");
	}
}

xmpp_stanza_t *execute(struct harness *h, const char *from, const char *node)
{
	return ask(h, "set", from, "<command xmlns='" NS_COMMANDS "' node='%s' action='execute'/>",
	           node);
}

/* Submit fields (XML) to session sessionid with action (complete, ...). */
xmpp_stanza_t *submit(struct harness *h, const char *from, const char *node, const char *sessionid,
                      const char *action, const char *fields)
{
	return ask(h, "set", from,
	           "<command xmlns='" NS_COMMANDS "' node='%s' sessionid='%s' action='%s'>"
	           "<x xmlns='jabber:x:data' type='submit'>%s</x></command>",
	           node, sessionid, action, fields);
}

xmpp_stanza_t *cancel(struct harness *h, const char *from, const char *node, const char *sessionid)
{
	return ask(h, "set", from,
	           "<command xmlns='" NS_COMMANDS "' node='%s' sessionid='%s' action='cancel'/>",
	           node, sessionid);
}

/* Status and sessionid of a command reply; sessionid copied into sid. */
void check_status(xmpp_stanza_t *iq, const char *status, char *sid, size_t size)
{
	CU_ASSERT_STRING_EQUAL(attr(iq, "type"), "result");
	CU_ASSERT_STRING_EQUAL(attr(command_of(iq), "status"), status);
	CU_ASSERT_NOT_EQUAL(strlen(attr(command_of(iq), "sessionid")), 0);
	if (sid)
		snprintf(sid, size, "%s", attr(command_of(iq), "sessionid"));
}
