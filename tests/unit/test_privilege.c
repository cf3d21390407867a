/*
 * XEP-0356 helpers (component/privilege.c), fed with stanzas built from
 * strings: the wrapper around an IQ, the unwrapping of replies, and the
 * privilege message, as ejabberd 26.07 sends them.
 */

#include <string.h>
#include <strophe.h>

#include "component/component-internal.h"
#include "unit.h"

static xmpp_ctx_t *ctx;

static xmpp_stanza_t *parse(const char *xml)
{
	xmpp_stanza_t *s = xmpp_stanza_new_from_string(ctx, xml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	return s;
}

static const char *attr(xmpp_stanza_t *s, const char *name)
{
	const char *v = s ? xmpp_stanza_get_attribute(s, name) : NULL;
	return v ? v : "";
}

static void test_wrap(void)
{
	ctx = xmpp_ctx_new(NULL, NULL);
	xmpp_stanza_t *inner = parse("<iq type='set' id='x1' to='localhost'><command "
	                             "xmlns='http://jabber.org/protocol/commands' node='n'/></iq>");
	xmpp_stanza_t *outer = privileged_wrap(ctx, "invites.localhost", "bot@localhost", inner);
	xmpp_stanza_release(inner); /* the wrapper holds its own reference */
	CU_ASSERT_PTR_NOT_NULL_FATAL(outer);
	CU_ASSERT_STRING_EQUAL(xmpp_stanza_get_name(outer), "iq");
	CU_ASSERT_STRING_EQUAL(attr(outer, "type"), "set");
	CU_ASSERT_STRING_EQUAL(attr(outer, "id"), "x1");
	CU_ASSERT_STRING_EQUAL(attr(outer, "from"), "invites.localhost");
	CU_ASSERT_STRING_EQUAL(attr(outer, "to"), "bot@localhost");
	xmpp_stanza_t *wrapper =
	    xmpp_stanza_get_child_by_name_and_ns(outer, "privileged_iq", "urn:xmpp:privilege:2");
	xmpp_stanza_t *iq = wrapper ? xmpp_stanza_get_child_by_name(wrapper, "iq") : NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(iq);
	CU_ASSERT_STRING_EQUAL(attr(iq, "xmlns"), "jabber:client");
	CU_ASSERT_STRING_EQUAL(attr(iq, "from"), "bot@localhost");
	CU_ASSERT_STRING_EQUAL(attr(iq, "to"), "localhost");
	CU_ASSERT_STRING_EQUAL(attr(iq, "type"), "set");
	CU_ASSERT_PTR_NOT_NULL(xmpp_stanza_get_child_by_name(iq, "command"));
	xmpp_stanza_release(outer);

	inner = parse("<iq to='localhost'/>"); /* no type, no id: refused */
	CU_ASSERT_PTR_NULL(privileged_wrap(ctx, "invites.localhost", "bot@localhost", inner));
	xmpp_stanza_release(inner);
	xmpp_ctx_free(ctx);
}

static void test_unwrap(void)
{
	ctx = xmpp_ctx_new(NULL, NULL);
	xmpp_stanza_t *reply =
	    parse("<iq to='invites.localhost' from='bot@localhost' type='result' id='d1'>"
	          "<privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'>"
	          "<iq to='bot@localhost' from='localhost' type='result' id='d1' "
	          "xmlns='jabber:client'><query xmlns='http://jabber.org/protocol/disco#items'/>"
	          "</iq></forwarded></privilege></iq>");
	xmpp_stanza_t *inner = privileged_unwrap(reply);
	CU_ASSERT_PTR_NOT_NULL_FATAL(inner);
	CU_ASSERT_STRING_EQUAL(attr(inner, "from"), "localhost");
	xmpp_stanza_release(reply);

	static const char *const not_wrapped[] = {
	    "<iq type='result' id='d1'/>",
	    "<iq type='result' id='d1'><privilege xmlns='urn:xmpp:privilege:2'/></iq>",
	    "<iq type='result'><privilege xmlns='urn:xmpp:privilege:1'><forwarded "
	    "xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client'/></forwarded></privilege></iq>",
	    "<iq type='result'><privilege xmlns='urn:xmpp:privilege:2'><forwarded "
	    "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'/></forwarded>"
	    "</privilege></iq>",
	    "<iq type='result'><privilege xmlns='urn:xmpp:privilege:2'><forwarded "
	    "xmlns='urn:xmpp:forward:0'><iq xmlns='urn:other'/></forwarded></privilege></iq>",
	};
	for (size_t i = 0; i < sizeof(not_wrapped) / sizeof(not_wrapped[0]); i++) {
		reply = parse(not_wrapped[i]);
		CU_ASSERT_PTR_NULL(privileged_unwrap(reply));
		xmpp_stanza_release(reply);
	}
	xmpp_ctx_free(ctx);
}

static void test_privilege_message(void)
{
	struct privileges got;

	ctx = xmpp_ctx_new(NULL, NULL);
	xmpp_stanza_t *m =
	    parse("<message to='invites.localhost' from='localhost'><privilege "
	          "xmlns='urn:xmpp:privilege:2'><perm type='none' access='message'/><perm "
	          "type='none' access='roster'/><perm access='iq'><namespace type='set' "
	          "ns='http://jabber.org/protocol/commands'/><namespace type='get' "
	          "ns='http://jabber.org/protocol/disco#items'/></perm><perm type='none' "
	          "access='presence'/></privilege></message>");
	CU_ASSERT_EQUAL(privileges_parse(m, &got), 0);
	CU_ASSERT_TRUE(got.commands_set);
	CU_ASSERT_TRUE(got.disco_items_get);
	CU_ASSERT_STRING_EQUAL(got.summary, "message none, roster none, iq "
	                                    "http://jabber.org/protocol/commands set, iq "
	                                    "http://jabber.org/protocol/disco#items get, presence "
	                                    "none");
	xmpp_stanza_release(m);

	/* "both" grants get and set; a get alone is no set */
	m = parse("<message><privilege xmlns='urn:xmpp:privilege:2'><perm access='iq'>"
	          "<namespace type='both' ns='http://jabber.org/protocol/disco#items'/>"
	          "<namespace type='get' ns='http://jabber.org/protocol/commands'/>"
	          "<namespace ns='urn:no-type'/></perm></privilege></message>");
	CU_ASSERT_EQUAL(privileges_parse(m, &got), 0);
	CU_ASSERT_FALSE(got.commands_set);
	CU_ASSERT_TRUE(got.disco_items_get);
	xmpp_stanza_release(m);

	m = parse("<message><privilege xmlns='urn:xmpp:privilege:2'/></message>");
	CU_ASSERT_EQUAL(privileges_parse(m, &got), 0);
	CU_ASSERT_STRING_EQUAL(got.summary, "nothing");
	CU_ASSERT_FALSE(got.commands_set);
	xmpp_stanza_release(m);

	m = parse("<message><body>hi</body></message>");
	CU_ASSERT_EQUAL(privileges_parse(m, &got), -1);
	xmpp_stanza_release(m);

	/* control characters from the wire never reach a log line raw */
	m = parse("<message><privilege xmlns='urn:xmpp:privilege:2'><perm access='x&#10;y' "
	          "type='a&#9;b&#13;'/></privilege></message>");
	CU_ASSERT_EQUAL(privileges_parse(m, &got), 0);
	CU_ASSERT_FALSE(has_control_chars(got.summary));
	xmpp_stanza_release(m);
	xmpp_ctx_free(ctx);
}

static const struct unit_test tests[] = {
    {"wrap an IQ (exact attributes)", test_wrap},
    {"unwrap a reply, or nothing", test_unwrap},
    {"the privilege message", test_privilege_message},
    {NULL, NULL},
};

UNIT_MAIN("privilege", tests)
