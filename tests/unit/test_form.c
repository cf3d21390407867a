/*
 * Parser for the answer to create-account (component/form.c), fed with
 * stanzas built from strings. Each reply is parsed and its stanza freed before
 * the assertions, so a string still pointing into the stanza would show up
 * under ASan or valgrind.
 */

#include <string.h>
#include <strophe.h>

#include "component/component-internal.h"
#include "unit.h"

#define RESULT_OPEN                                                                                \
	"<iq type='result' from='localhost' to='invites.localhost' id='r1'>"                       \
	"<command xmlns='http://jabber.org/protocol/commands' "                                    \
	"node='urn:xmpp:invite#create-account' sessionid='s1' status='completed'>"
#define RESULT_CLOSE "</command></iq>"
#define FORM(type, fields)                                                                         \
	RESULT_OPEN "<x xmlns='jabber:x:data' type='" type "'>" fields "</x>" RESULT_CLOSE
#define FIELD(var, value) "<field var='" var "' type='text-single'><value>" value "</value></field>"

#define URI     "xmpp:localhost?register;preauth=tok123"
#define LANDING "http://localhost:25280/invites_page?tok123"
#define EXPIRE  "2024-01-08T12:00:00Z"

static void parse(const char *xml, struct adhoc_reply *reply)
{
	xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	xmpp_stanza_t *stanza = xmpp_stanza_new_from_string(ctx, xml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(stanza);
	adhoc_reply_parse(stanza, reply);
	xmpp_stanza_release(stanza);
	xmpp_ctx_free(ctx);
}

static void check_invite(const struct adhoc_reply *r, const char *landing, const char *expire)
{
	CU_ASSERT_EQUAL(r->status, COMPONENT_OK);
	CU_ASSERT_STRING_EQUAL(r->reason, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->invite.uri);
	CU_ASSERT_STRING_EQUAL(r->invite.uri, URI);
	if (landing) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(r->invite.landing_url);
		CU_ASSERT_STRING_EQUAL(r->invite.landing_url, landing);
	} else {
		CU_ASSERT_PTR_NULL(r->invite.landing_url);
	}
	if (expire) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(r->invite.expire);
		CU_ASSERT_STRING_EQUAL(r->invite.expire, expire);
	} else {
		CU_ASSERT_PTR_NULL(r->invite.expire);
	}
}

static void check_failure(const struct adhoc_reply *r, enum component_status status,
                          const char *condition, const char *reason)
{
	CU_ASSERT_EQUAL(r->status, status);
	CU_ASSERT_PTR_NULL(r->invite.uri);
	CU_ASSERT_PTR_NULL(r->invite.landing_url);
	CU_ASSERT_PTR_NULL(r->invite.expire);
	CU_ASSERT_STRING_EQUAL(r->condition, condition);
	CU_ASSERT_STRING_EQUAL(r->reason, reason);
}

static void test_result(void)
{
	struct adhoc_reply r;
	parse(FORM("result",
	           "<field var='FORM_TYPE' type='hidden'><value>urn:x</value></field>" FIELD(
	               "landing-url", LANDING) FIELD("uri", URI) FIELD("expire", EXPIRE)),
	      &r);
	check_invite(&r, LANDING, EXPIRE);
	adhoc_reply_finish(&r);
	CU_ASSERT_PTR_NULL(r.invite.uri);
	adhoc_reply_finish(&r); /* twice is harmless */
}

/* What Prosody 0.12.3 sends: the form is wrongly typed 'form', with labels,
 * a title and (without an invite page) a landing-url field with no value. */
static void test_prosody_form_type(void)
{
	struct adhoc_reply r;
	parse(RESULT_OPEN "<x xmlns='jabber:x:data' type='form'>"
	                  "<title>Your invite has been created</title>"
	                  "<field label='Invite web page' type='text-single' var='landing-url'>"
	                  "<desc>Share this link</desc></field>"
	                  "<field label='Invite URI' type='text-single' var='uri'>"
	                  "<desc>This alternative link can be opened with some XMPP clients</desc>"
	                  "<value>" URI "</value></field>"
	                  "<field label='Invite valid until' type='text-single' var='expire'>"
	                  "<value>" EXPIRE "</value></field></x>" RESULT_CLOSE,
	      &r);
	check_invite(&r, NULL, EXPIRE);
	adhoc_reply_finish(&r);
}

static void test_no_landing_url(void)
{
	struct adhoc_reply r;
	parse(FORM("result", FIELD("uri", URI) FIELD("expire", EXPIRE)), &r);
	check_invite(&r, NULL, EXPIRE);
	adhoc_reply_finish(&r);

	parse(FORM("result", FIELD("uri", URI)), &r);
	check_invite(&r, NULL, NULL);
	adhoc_reply_finish(&r);
}

static void test_empty_landing_url(void)
{
	struct adhoc_reply r;
	parse(FORM("result", "<field var='landing-url'><value/></field>" FIELD("uri", URI)), &r);
	check_invite(&r, NULL, NULL);
	adhoc_reply_finish(&r);

	parse(FORM("result", FIELD("landing-url", "") FIELD("uri", URI) FIELD("expire", "")), &r);
	check_invite(&r, NULL, NULL);
	adhoc_reply_finish(&r);
}

static void test_reordered_and_unknown_fields(void)
{
	struct adhoc_reply r;
	parse(
	    FORM("result",
	         FIELD("expire", EXPIRE) "<instructions>read me</instructions>" FIELD("color",
	                                                                              "blue")
	             FIELD("uri",
	                   URI) "<field var='FORM_TYPE' type='hidden'><value>urn:x</value></field>"
	                        "<field type='fixed'><value>no var</value></field>" FIELD(
	                            "landing-url", LANDING)
	                            FIELD("uri", "xmpp:second")) "<note type='info'>done</note>",
	    &r);
	check_invite(&r, LANDING, EXPIRE); /* the first uri wins */
	adhoc_reply_finish(&r);
}

static void test_error_with_text(void)
{
	struct adhoc_reply r;
	parse("<iq type='error' from='localhost' id='r1'>"
	      "<command xmlns='http://jabber.org/protocol/commands' status='canceled'/>"
	      "<error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	      "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>You are not\n  allowed\r\n"
	      "</text></error></iq>",
	      &r);
	check_failure(&r, COMPONENT_REMOTE_ERROR, "forbidden", "You are not allowed");
	adhoc_reply_finish(&r);
}

static void test_error_without_text(void)
{
	struct adhoc_reply r;
	parse("<iq type='error' from='localhost' id='r1'><error type='auth'>"
	      "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
	      &r);
	check_failure(&r, COMPONENT_REMOTE_ERROR, "forbidden", "forbidden");

	/* text first, condition second, an application condition ignored */
	parse("<iq type='error' from='localhost' id='r1'><error type='cancel'>"
	      "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>No such command</text>"
	      "<bad xmlns='urn:example:app'/>"
	      "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
	      &r);
	check_failure(&r, COMPONENT_REMOTE_ERROR, "item-not-found", "No such command");

	parse("<iq type='error' from='localhost' id='r1'/>", &r);
	check_failure(&r, COMPONENT_REMOTE_ERROR, "undefined-condition", "undefined-condition");

	parse("<iq type='error' from='localhost' id='r1'><error type='cancel'>"
	      "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
	      &r);
	check_failure(&r, COMPONENT_REMOTE_ERROR, "undefined-condition", "undefined-condition");
}

static void test_canceled_with_note(void)
{
	struct adhoc_reply r;
	parse("<iq type='result' from='localhost' id='r1'>"
	      "<command xmlns='http://jabber.org/protocol/commands' status='canceled'>"
	      "<note type='info'>fyi</note><note type='error'>Invites are disabled\non this "
	      "host</note></command></iq>",
	      &r);
	check_failure(&r, COMPONENT_REMOTE_ERROR, "undefined-condition",
	              "Invites are disabled on this host");

	parse("<iq type='result' from='localhost' id='r1'>"
	      "<command xmlns='http://jabber.org/protocol/commands' status='canceled'/></iq>",
	      &r);
	check_failure(&r, COMPONENT_REMOTE_ERROR, "undefined-condition",
	              "the server canceled the command");
}

static void test_completed_with_error_note(void)
{
	struct adhoc_reply r;
	parse("<iq type='result' from='localhost' id='r1'>"
	      "<command xmlns='http://jabber.org/protocol/commands' status='completed'>"
	      "<note type='error'>Only for users of localhost</note></command></iq>",
	      &r);
	check_failure(&r, COMPONENT_REMOTE_ERROR, "undefined-condition",
	              "Only for users of localhost");
}

static void test_executing(void)
{
	struct adhoc_reply r;
	parse("<iq type='result' from='localhost' id='r1'>"
	      "<command xmlns='http://jabber.org/protocol/commands' status='executing' "
	      "sessionid='s1'><actions execute='complete'><complete/></actions>"
	      "<x xmlns='jabber:x:data' type='form'><field var='group' type='list-single'/></x>"
	      "</command></iq>",
	      &r);
	CU_ASSERT_EQUAL(r.status, COMPONENT_OK);
	CU_ASSERT_TRUE(r.executing);
	CU_ASSERT_STRING_EQUAL(r.sessionid, "s1");
	CU_ASSERT_EQUAL(r.vars, 0);
	CU_ASSERT_PTR_NULL(r.form_type);
	CU_ASSERT_PTR_NULL(r.invite.uri);
	adhoc_reply_finish(&r);
}

/* ejabberd 26's create-account form, reordered, with FORM_TYPE and more. */
static void test_executing_fields_by_var(void)
{
	struct adhoc_reply r;
	parse("<iq type='result' from='localhost' id='r1'>"
	      "<command xmlns='http://jabber.org/protocol/commands' status='executing' "
	      "node='urn:xmpp:invite#create-account' sessionid='2026-12-04T10:00:00.1Z'>"
	      "<x xmlns='jabber:x:data' type='result'>"
	      "<field var='roster-subscription' type='boolean'><value>1</value></field>"
	      "<field var='x-unknown' type='text-single'/>"
	      "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:invite</value></field>"
	      "<field type='fixed'><value>Pick a name</value></field>"
	      "<field var='username' type='text-single' label='User'/>"
	      "</x></command></iq>",
	      &r);
	CU_ASSERT_EQUAL(r.status, COMPONENT_OK);
	CU_ASSERT_TRUE(r.executing);
	CU_ASSERT_STRING_EQUAL(r.sessionid, "2026-12-04T10:00:00.1Z");
	CU_ASSERT_EQUAL(r.vars, ADHOC_VAR_USERNAME | ADHOC_VAR_ROSTER);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.form_type);
	CU_ASSERT_STRING_EQUAL(r.form_type, "urn:xmpp:invite");
	adhoc_reply_finish(&r);
	CU_ASSERT_PTR_NULL(r.form_type);

	/* Prosody 13's password-reset form */
	parse("<iq type='result' from='localhost' id='r1'>"
	      "<command xmlns='http://jabber.org/protocol/commands' status='executing' "
	      "sessionid='abc'><x xmlns='jabber:x:data' type='form'>"
	      "<field var='accountjid' type='jid-single' required='1'/></x></command></iq>",
	      &r);
	CU_ASSERT_EQUAL(r.status, COMPONENT_OK);
	CU_ASSERT_EQUAL(r.vars, ADHOC_VAR_ACCOUNTJID);
	adhoc_reply_finish(&r);
}

static void test_executing_with_error_note(void)
{
	struct adhoc_reply r;
	parse("<iq type='result' from='localhost' id='r1'>"
	      "<command xmlns='http://jabber.org/protocol/commands' status='executing' "
	      "sessionid='s1'><note type='error'>Invalid JID</note>"
	      "<x xmlns='jabber:x:data' type='form'><field var='accountjid'/></x></command></iq>",
	      &r);
	CU_ASSERT_EQUAL(r.status, COMPONENT_REMOTE_ERROR);
	CU_ASSERT_FALSE(r.executing);
	CU_ASSERT_STRING_EQUAL(r.reason, "Invalid JID");
	CU_ASSERT_STRING_EQUAL(r.sessionid, "s1");
	adhoc_reply_finish(&r);
}

static void parse_discovery(const char *xml, struct discovery_reply *reply)
{
	xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	xmpp_stanza_t *stanza = xmpp_stanza_new_from_string(ctx, xml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(stanza);
	discovery_reply_parse(stanza, reply);
	xmpp_stanza_release(stanza);
	xmpp_ctx_free(ctx);
}

static void test_discovery(void)
{
	struct discovery_reply d;

	parse_discovery(
	    "<iq type='result' from='localhost' id='d1'>"
	    "<query xmlns='http://jabber.org/protocol/disco#items' "
	    "node='http://jabber.org/protocol/commands'>"
	    "<item jid='localhost' node='xmpp:prosody.im/mod_invites_adhoc#password-reset'"
	    " name='Create password reset invite'/>"
	    "<item jid='localhost' node='ping'/>"
	    "<item jid='localhost' node='urn:xmpp:invite#create-account'/>"
	    "</query></iq>",
	    &d);
	CU_ASSERT_TRUE(d.ok);
	CU_ASSERT_TRUE(d.offers[INVITE_ACCOUNT]);
	CU_ASSERT_TRUE(d.offers[INVITE_RESET]);

	parse_discovery("<iq type='result' from='localhost' id='d1'>"
	                "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
	                &d);
	CU_ASSERT_TRUE(d.ok);
	CU_ASSERT_FALSE(d.offers[INVITE_ACCOUNT]);
	CU_ASSERT_FALSE(d.offers[INVITE_RESET]);

	parse_discovery("<iq type='error' from='localhost' id='d1'><error type='cancel'>"
	                "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	                "</error></iq>",
	                &d);
	CU_ASSERT_FALSE(d.ok);
	CU_ASSERT_STRING_EQUAL(d.condition, "service-unavailable");
	CU_ASSERT_STRING_EQUAL(d.reason, "service-unavailable");

	parse_discovery("<iq type='error' from='localhost' id='d1'><error type='auth'>"
	                "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
	                "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>No</text></error></iq>",
	                &d);
	CU_ASSERT_FALSE(d.ok);
	CU_ASSERT_STRING_EQUAL(d.reason, "forbidden: No");

	parse_discovery("<iq type='result' from='localhost' id='d1'/>", &d);
	CU_ASSERT_FALSE(d.ok);
	CU_ASSERT_STRING_EQUAL(d.reason, "the reply is not a disco#items result");
}

static void test_missing_uri(void)
{
	struct adhoc_reply r;
	parse(FORM("result", FIELD("landing-url", LANDING) FIELD("expire", EXPIRE)), &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the invite form has no uri value");

	parse(FORM("result", "<field var='uri'/>" FIELD("landing-url", LANDING)), &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the invite form has no uri value");
}

static void test_uri_not_xmpp(void)
{
	struct adhoc_reply r;
	parse(FORM("result", FIELD("landing-url", LANDING) FIELD("uri", "https://evil.example/")),
	      &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the uri value is not an xmpp: URI");

	parse(FORM("result", FIELD("uri", "xmpp")), &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the uri value is not an xmpp: URI");

	parse(FORM("result", FIELD("uri", "XMPP:localhost?register")), &r);
	CU_ASSERT_EQUAL(r.status, COMPONENT_OK); /* schemes are case-insensitive */
	adhoc_reply_finish(&r);
}

static void test_control_characters(void)
{
	struct adhoc_reply r;
	parse(FORM("result", FIELD("uri", URI) FIELD("landing-url", "http://x/\nSet-Cookie: a")),
	      &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "",
	              "the landing-url field contains control characters");
}

static void test_huge_value(void)
{
	static char xml[16384];
	char value[ADHOC_VALUE_MAX + 2];
	struct adhoc_reply r;

	memcpy(value, "xmpp:", 5);
	memset(value + 5, 'a', sizeof(value) - 6);
	value[sizeof(value) - 1] = '\0'; /* one byte too long */
	snprintf(xml, sizeof(xml), FORM("result", FIELD("landing-url", LANDING) FIELD("uri", "%s")),
	         value);
	parse(xml, &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the uri field is longer than 4096 bytes");

	value[sizeof(value) - 2] = '\0'; /* exactly the limit */
	snprintf(xml, sizeof(xml), FORM("result", FIELD("uri", "%s")), value);
	parse(xml, &r);
	CU_ASSERT_EQUAL(r.status, COMPONENT_OK);
	CU_ASSERT_EQUAL(strlen(r.invite.uri), ADHOC_VALUE_MAX);
	adhoc_reply_finish(&r);
}

static void test_not_an_iq(void)
{
	struct adhoc_reply r;
	parse("<message from='localhost' id='r1'><body>hi</body></message>", &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the reply is not an <iq/> stanza");

	parse("<iq type='get' from='localhost' id='r1'><ping xmlns='urn:xmpp:ping'/></iq>", &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the reply has type 'get', not result");

	parse("<iq from='localhost' id='r1'/>", &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the reply has type '', not result");

	adhoc_reply_parse(NULL, &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the reply is not an <iq/> stanza");
}

static void test_garbage_children(void)
{
	struct adhoc_reply r;
	parse("<iq type='result' from='localhost' id='r1'/>", &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the reply has no <command/> element");

	parse("<iq type='result' from='localhost' id='r1'>junk<foo><bar/></foo>"
	      "<command xmlns='urn:wrong' status='completed'/></iq>",
	      &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the reply has no <command/> element");

	parse("<iq type='result' from='localhost' id='r1'>"
	      "<command xmlns='http://jabber.org/protocol/commands'><x xmlns='jabber:x:data'/>"
	      "</command></iq>",
	      &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the <command/> has no status");

	parse("<iq type='result' from='localhost' id='r1'>"
	      "<command xmlns='http://jabber.org/protocol/commands' status='dancing\nwildly'/>"
	      "</iq>",
	      &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "unknown command status 'dancing wildly'");

	parse(RESULT_OPEN "<x xmlns='urn:not-a-form'>" FIELD("uri", URI) "</x>" RESULT_CLOSE, &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the completed command has no data form");

	parse(FORM("result", "<field var='uri'>stray text<value><b>bold</b></value></field>"
	                     "<fields><field var='uri'/></fields>"),
	      &r);
	check_failure(&r, COMPONENT_BAD_REPLY, "", "the invite form has no uri value");
}

static void test_reason_copy(void)
{
	char buf[16];

	reason_copy(buf, sizeof(buf), "  a\r\n\tb  c ");
	CU_ASSERT_STRING_EQUAL(buf, "a b c");
	reason_copy(buf, sizeof(buf), NULL);
	CU_ASSERT_STRING_EQUAL(buf, "");
	reason_copy(buf, sizeof(buf), "0123456789abcdefghij");
	CU_ASSERT_STRING_EQUAL(buf, "0123456789abcde");
	/* 13 ASCII bytes, then a 3-byte character that does not fit whole */
	reason_copy(buf, sizeof(buf), "0123456789abc\xe2\x82\xac");
	CU_ASSERT_STRING_EQUAL(buf, "0123456789abc");
	reason_copy(buf, sizeof(buf), "0123456789ab\xe2\x82\xac");
	CU_ASSERT_STRING_EQUAL(buf, "0123456789ab\xe2\x82\xac");
	reason_copy(buf, 1, "abc");
	CU_ASSERT_STRING_EQUAL(buf, "");
}

static void test_long_remote_text_is_cut(void)
{
	static char xml[8192];
	char text[1000];
	struct adhoc_reply r;

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	snprintf(xml, sizeof(xml),
	         "<iq type='error' from='localhost' id='r1'><error type='cancel'>"
	         "<%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	         "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>%s</text></error></iq>",
	         "a-very-long-condition-name-that-goes-on-and-on-and-on-and-on-and-on-forever",
	         text);
	parse(xml, &r);
	CU_ASSERT_EQUAL(r.status, COMPONENT_REMOTE_ERROR);
	CU_ASSERT_EQUAL(strlen(r.reason), ADHOC_REASON_MAX - 1);
	CU_ASSERT_EQUAL(strlen(r.condition), ADHOC_CONDITION_MAX - 1);
}

static const struct unit_test tests[] = {
    {"completed result form", test_result},
    {"prosody 0.12 type='form' result", test_prosody_form_type},
    {"no landing-url", test_no_landing_url},
    {"empty landing-url value", test_empty_landing_url},
    {"reordered, FORM_TYPE and unknown fields", test_reordered_and_unknown_fields},
    {"error with text", test_error_with_text},
    {"error without text", test_error_without_text},
    {"canceled with note", test_canceled_with_note},
    {"completed with only an error note", test_completed_with_error_note},
    {"executing asks for a form", test_executing},
    {"executing form: fields by var, FORM_TYPE kept", test_executing_fields_by_var},
    {"executing with an error note", test_executing_with_error_note},
    {"disco#items of the commands node", test_discovery},
    {"missing uri", test_missing_uri},
    {"uri not xmpp:", test_uri_not_xmpp},
    {"control characters in a value", test_control_characters},
    {"huge value", test_huge_value},
    {"not an iq result", test_not_an_iq},
    {"garbage children", test_garbage_children},
    {"reason_copy", test_reason_copy},
    {"long remote text is cut", test_long_remote_text_is_cut},
    {NULL, NULL},
};

UNIT_MAIN("form", tests)
