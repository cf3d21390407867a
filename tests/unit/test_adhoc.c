/*
 * The component's ad-hoc command framework (XEP-0050) with dummy commands,
 * driven through the scripted fake XMPP server of fake_xmpp.h. The key
 * commands built on it are tested in test_adhoc_keys.c.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strophe.h>

#include "adhoc_harness.h"
#include "component/component.h"
#include "fake_xmpp.h"
#include "unit.h"

/* ---- dummy commands ------------------------------------------------------- */

#define NODE_ECHO "urn:test:echo"
#define NODE_NOW  "urn:test:now"

static const struct component_option colors[] = {{"red", "Red"}, {"green", "Green"}};
static const struct component_option tags[] = {{"a", NULL}, {"b", NULL}, {"c", NULL}};

static enum component_step_status echo_execute(void *userdata, struct component_step *step)
{
	struct harness *h = userdata;
	static const struct component_field fields[] = {
	    {.type = COMPONENT_FIELD_FIXED, .value = "Fill this in"},
	    {.type = COMPONENT_FIELD_TEXT_SINGLE, .var = "who", .label = "Who", .required = true},
	    {.type = COMPONENT_FIELD_LIST_SINGLE,
	     .var = "color",
	     .label = "Color",
	     .value = "red",
	     .options = colors,
	     .n_options = 2},
	    {.type = COMPONENT_FIELD_LIST_MULTI,
	     .var = "tags",
	     .label = "Tags",
	     .options = tags,
	     .n_options = 3},
	    {.type = COMPONENT_FIELD_HIDDEN, .var = "token", .value = "h1"},
	    {.type = COMPONENT_FIELD_BOOLEAN, .var = "flag", .label = "Flag"},
	    {.type = COMPONENT_FIELD_JID_SINGLE, .var = "jid", .label = "JID"},
	};
	static const struct component_form form = {
	    .title = "Echo", .fields = fields, .n_fields = sizeof(fields) / sizeof(fields[0])};

	h->executes++;
	CU_ASSERT_EQUAL(strncmp(component_step_requester(step), "admin", 5), 0);
	CU_ASSERT_PTR_NOT_NULL(strchr(component_step_requester(step), '/')); /* full JID */
	CU_ASSERT_EQUAL(component_step_count(step, "who"), 0);
	CU_ASSERT_EQUAL(component_step_form(step, &form), 0);
	return COMPONENT_STEP_EXECUTING;
}

static enum component_step_status echo_submit(void *userdata, struct component_step *step)
{
	struct harness *h = userdata;
	static const struct component_field more = {
	    .type = COMPONENT_FIELD_TEXT_SINGLE, .var = "more", .label = "More", .required = true};
	static const struct component_field columns[] = {{.var = "k", .label = "Key"},
	                                                 {.var = "v", .label = "Value"}};
	const char *who = component_step_value(step, "who", 0);

	h->submits++;
	if (component_step_count(step, "more") == 1) {
		component_step_note(step, COMPONENT_NOTE_INFO, "Second stage done.");
		return COMPONENT_STEP_COMPLETED;
	}
	snprintf(h->seen_token, sizeof(h->seen_token), "%s",
	         component_step_value(step, "token", 0));
	h->seen_tags = component_step_count(step, "tags");
	CU_ASSERT_PTR_NULL(component_step_value(step, "tags", h->seen_tags));
	CU_ASSERT_PTR_NULL(component_step_value(step, "unknown", 0));
	if (strcmp(who, "bad") == 0) {
		component_step_note(step, COMPONENT_NOTE_ERROR, "Who may not be bad.");
		return COMPONENT_STEP_INVALID;
	}
	if (strcmp(who, "again") == 0) {
		const struct component_form form = {.fields = &more, .n_fields = 1};
		component_step_form(step, &form);
		return COMPONENT_STEP_EXECUTING;
	}
	const char *cells[] = {"who", who, "color", component_step_value(step, "color", 0)};
	const struct component_field echo = {
	    .type = COMPONENT_FIELD_TEXT_SINGLE, .var = "echo", .label = "Echo", .value = who};
	const struct component_form result = {.title = "Echoed",
	                                      .fields = &echo,
	                                      .n_fields = 1,
	                                      .columns = columns,
	                                      .n_columns = 2,
	                                      .cells = cells,
	                                      .n_rows = 2};
	CU_ASSERT_EQUAL(component_step_form(step, &result), 0);
	CU_ASSERT_EQUAL(component_step_note(step, COMPONENT_NOTE_INFO, "Done."), 0);
	return COMPONENT_STEP_COMPLETED;
}

static enum component_step_status now_execute(void *userdata, struct component_step *step)
{
	(void)userdata;
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(
		    component_step_note(step, COMPONENT_NOTE_INFO, "Nothing to choose."), 0);
	CU_ASSERT_EQUAL(component_step_note(step, COMPONENT_NOTE_INFO, "fifth"), -1);
	return COMPONENT_STEP_COMPLETED;
}

static enum component_step_status never(void *userdata, struct component_step *step)
{
	(void)userdata;
	(void)step;
	CU_FAIL("submit without a session");
	return COMPONENT_STEP_COMPLETED;
}

static const struct component_command dummy_commands[] = {
    {NODE_ECHO, "Echo", echo_execute, echo_submit},
    {NODE_NOW, "At once", now_execute, never},
};

/* admin@localhost, admin1@localhost, ... may; nobody else. */
static bool dummy_allowed(void *userdata, const char *bare_jid)
{
	struct harness *h = userdata;
	snprintf(h->last_allowed, sizeof(h->last_allowed), "%s", bare_jid);
	const char *at = strchr(bare_jid, '@');
	return strncmp(bare_jid, "admin", 5) == 0 && at && strcmp(at, "@localhost") == 0;
}

static void dummy_start(struct harness *h, unsigned session_timeout_ms)
{
	harness_create(h);
	struct component_commands cmds = {
	    .commands = dummy_commands,
	    .n_commands = 2,
	    .allowed = dummy_allowed,
	    .userdata = h,
	    .session_timeout_ms = session_timeout_ms,
	};
	CU_ASSERT_EQUAL(component_commands_register(h->comp, &cmds), 0);
	CU_ASSERT_EQUAL(component_commands_register(h->comp, &cmds), -1); /* once */
	CU_ASSERT_EQUAL(component_set_version(h->comp, "invites-api", "1.2.3"), 0);
	harness_start(h);
}

/* Start an echo session as ADMIN; its id into sid. */
static void start_echo(struct harness *h, char *sid, size_t size)
{
	xmpp_stanza_t *r = execute(h, ADMIN, NODE_ECHO);
	check_status(r, "executing", sid, size);
}

/* ---- framework tests -------------------------------------------------------- */

static bool has_feature(xmpp_stanza_t *query, const char *var)
{
	for (xmpp_stanza_t *c = query ? xmpp_stanza_get_children(query) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "feature") == 0 &&
		    strcmp(attr(c, "var"), var) == 0)
			return true;
	}
	return false;
}

static void test_discovery(void)
{
	struct harness h;
	dummy_start(&h, 0);

	xmpp_stanza_t *r = ask(&h, "get", OTHER, "<query xmlns='" DISCO_INFO "'/>");
	xmpp_stanza_t *query = child(r, "query", DISCO_INFO);
	CU_ASSERT_TRUE(has_feature(query, NS_COMMANDS));
	CU_ASSERT_TRUE(has_feature(query, "jabber:iq:version"));
	CU_ASSERT_TRUE(has_feature(query, "urn:xmpp:ping"));
	CU_ASSERT_TRUE(has_feature(query, DISCO_INFO));
	CU_ASSERT_STRING_EQUAL(attr(child(query, "identity", NULL), "category"), "component");

	/* the command list: the admin sees both commands, others nothing */
	r = ask(&h, "get", ADMIN, "<query xmlns='" DISCO_ITEMS "' node='" NS_COMMANDS "'/>");
	CU_ASSERT_STRING_EQUAL(h.last_allowed, "admin@localhost"); /* bare, as stamped */
	query = child(r, "query", DISCO_ITEMS);
	CU_ASSERT_STRING_EQUAL(attr(query, "node"), NS_COMMANDS);
	CU_ASSERT_EQUAL(count_children(query, "item"), 2);
	xmpp_stanza_t *item = child(query, "item", NULL);
	CU_ASSERT_STRING_EQUAL(attr(item, "jid"), JID);
	CU_ASSERT_STRING_EQUAL(attr(item, "node"), NODE_ECHO);
	CU_ASSERT_STRING_EQUAL(attr(item, "name"), "Echo");
	r = ask(&h, "get", OTHER, "<query xmlns='" DISCO_ITEMS "' node='" NS_COMMANDS "'/>");
	CU_ASSERT_STRING_EQUAL(attr(r, "type"), "result");
	CU_ASSERT_STRING_EQUAL(h.last_allowed, "mallory@localhost");
	CU_ASSERT_EQUAL(count_children(child(r, "query", DISCO_ITEMS), "item"), 0);
	r = ask(&h, "get", ADMIN, "<query xmlns='" DISCO_ITEMS "'/>");
	CU_ASSERT_STRING_EQUAL(attr(r, "type"), "result");
	CU_ASSERT_EQUAL(count_children(child(r, "query", DISCO_ITEMS), "item"), 0);
	r = ask(&h, "get", ADMIN, "<query xmlns='" DISCO_ITEMS "' node='nope'/>");
	check_error(r, "cancel", "item-not-found", NULL);

	/* a command node: described to the admin, forbidden to others */
	r = ask(&h, "get", ADMIN, "<query xmlns='" DISCO_INFO "' node='" NODE_ECHO "'/>");
	query = child(r, "query", DISCO_INFO);
	CU_ASSERT_STRING_EQUAL(attr(query, "node"), NODE_ECHO);
	CU_ASSERT_STRING_EQUAL(attr(child(query, "identity", NULL), "category"), "automation");
	CU_ASSERT_STRING_EQUAL(attr(child(query, "identity", NULL), "type"), "command-node");
	CU_ASSERT_STRING_EQUAL(attr(child(query, "identity", NULL), "name"), "Echo");
	CU_ASSERT_TRUE(has_feature(query, NS_COMMANDS));
	CU_ASSERT_TRUE(has_feature(query, "jabber:x:data"));
	r = ask(&h, "get", OTHER, "<query xmlns='" DISCO_INFO "' node='" NODE_ECHO "'/>");
	check_error(r, "auth", "forbidden", NULL);
	r = ask(&h, "get", ADMIN, "<query xmlns='" DISCO_INFO "' node='nope'/>");
	check_error(r, "cancel", "item-not-found", NULL);
	r = ask(&h, "get", OTHER, "<query xmlns='" DISCO_INFO "' node='" NS_COMMANDS "'/>");
	CU_ASSERT_STRING_EQUAL(attr(child(child(r, "query", DISCO_INFO), "identity", NULL), "type"),
	                       "command-list");
	harness_finish(&h);
}

static void test_version_ping_and_others(void)
{
	struct harness h;
	dummy_start(&h, 0);

	xmpp_stanza_t *r = ask(&h, "get", OTHER, "<query xmlns='jabber:iq:version'/>");
	xmpp_stanza_t *query = child(r, "query", "jabber:iq:version");
	CU_ASSERT_STRING_EQUAL(attr(r, "type"), "result");
	CU_ASSERT_STRING_EQUAL(text(child(query, "name", NULL)), "invites-api");
	CU_ASSERT_STRING_EQUAL(text(child(query, "version", NULL)), "1.2.3");
	CU_ASSERT_PTR_NULL(child(query, "os", NULL));
	r = ask(&h, "get", OTHER, "<ping xmlns='urn:xmpp:ping'/>");
	CU_ASSERT_STRING_EQUAL(attr(r, "type"), "result");
	CU_ASSERT_PTR_NULL(xmpp_stanza_get_children(r));

	/* anything else: service-unavailable */
	r = ask(&h, "get", ADMIN, "<query xmlns='jabber:iq:last'/>");
	check_error(r, "cancel", "service-unavailable", NULL);
	r = ask(&h, "get", ADMIN, "<command xmlns='" NS_COMMANDS "' node='" NODE_ECHO "'/>");
	check_error(r, "cancel", "service-unavailable", NULL);
	r = ask(&h, "set", ADMIN, "<query xmlns='jabber:iq:version'/>");
	check_error(r, "cancel", "service-unavailable", NULL);
	CU_ASSERT_EQUAL(h.executes, 0);

	/* errors and results are never answered, commands included */
	fake_send(&h.fake, "<iq type='error' id='e1' from='" ADMIN "' to='" JID "'>"
	                   "<command xmlns='" NS_COMMANDS "' node='" NODE_ECHO "'/>"
	                   "<error type='cancel'><service-unavailable xmlns='" NS_STANZAS "'/>"
	                   "</error></iq>"
	                   "<iq type='result' id='r1' from='" ADMIN "' to='" JID "'>"
	                   "<command xmlns='" NS_COMMANDS "' node='" NODE_ECHO "'/></iq>");
	r = ask(&h, "get", OTHER, "<ping xmlns='urn:xmpp:ping'/>");
	CU_ASSERT_STRING_EQUAL(attr(r, "type"), "result"); /* the next answer is the ping's */
	CU_ASSERT_EQUAL(h.executes, 0);
	harness_finish(&h);
}

static void test_execute_then_complete(void)
{
	struct harness h;
	char sid[64];
	dummy_start(&h, 0);

	xmpp_stanza_t *r = execute(&h, ADMIN, NODE_ECHO);
	check_status(r, "executing", sid, sizeof(sid));
	xmpp_stanza_t *command = command_of(r);
	CU_ASSERT_STRING_EQUAL(attr(command, "node"), NODE_ECHO);
	xmpp_stanza_t *actions = child(command, "actions", NULL);
	CU_ASSERT_STRING_EQUAL(attr(actions, "execute"), "complete");
	CU_ASSERT_PTR_NOT_NULL(child(actions, "complete", NULL));
	CU_ASSERT_PTR_NULL(child(actions, "next", NULL));
	xmpp_stanza_t *x = form_of(r);
	CU_ASSERT_STRING_EQUAL(attr(x, "type"), "form");
	CU_ASSERT_STRING_EQUAL(text(child(x, "title", NULL)), "Echo");
	CU_ASSERT_EQUAL(count_children(x, "field"), 7);
	CU_ASSERT_STRING_EQUAL(attr(field(x, "who"), "type"), "text-single");
	CU_ASSERT_STRING_EQUAL(attr(field(x, "who"), "label"), "Who");
	CU_ASSERT_PTR_NOT_NULL(child(field(x, "who"), "required", NULL));
	CU_ASSERT_STRING_EQUAL(attr(field(x, "color"), "type"), "list-single");
	CU_ASSERT_STRING_EQUAL(value_of(x, "color"), "red");
	CU_ASSERT_EQUAL(count_children(field(x, "color"), "option"), 2);
	CU_ASSERT_STRING_EQUAL(attr(child(field(x, "color"), "option", NULL), "label"), "Red");
	CU_ASSERT_STRING_EQUAL(attr(field(x, "tags"), "type"), "list-multi");
	CU_ASSERT_STRING_EQUAL(attr(field(x, "token"), "type"), "hidden");
	CU_ASSERT_STRING_EQUAL(attr(field(x, "flag"), "type"), "boolean");
	CU_ASSERT_STRING_EQUAL(attr(field(x, "jid"), "type"), "jid-single");
	CU_ASSERT_EQUAL(h.executes, 1);

	/* the hidden field keeps our value whatever comes back */
	r = submit(&h, ADMIN, NODE_ECHO, sid, "complete",
	           "<field var='who'><value>Alice &amp; Bob</value></field>"
	           "<field var='color'><value>green</value></field>"
	           "<field var='tags'><value>a</value><value>c</value></field>"
	           "<field var='token'><value>evil</value></field>"
	           "<field var='flag'><value>1</value></field>"
	           "<field var='jid'><value>a@b/c</value></field>"
	           "<field var='unknown'><value>x</value></field>");
	char done[64];
	check_status(r, "completed", done, sizeof(done));
	CU_ASSERT_STRING_EQUAL(done, sid);
	CU_ASSERT_PTR_NULL(child(command_of(r), "actions", NULL));
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "Done.");
	x = form_of(r);
	CU_ASSERT_STRING_EQUAL(attr(x, "type"), "result");
	CU_ASSERT_STRING_EQUAL(value_of(x, "echo"), "Alice & Bob");
	CU_ASSERT_STRING_EQUAL(h.seen_token, "h1");
	CU_ASSERT_EQUAL(h.seen_tags, 2);
	/* the table: reported columns, then one item per row */
	xmpp_stanza_t *reported = child(x, "reported", NULL);
	CU_ASSERT_EQUAL(count_children(reported, "field"), 2);
	CU_ASSERT_STRING_EQUAL(attr(child(reported, "field", NULL), "label"), "Key");
	CU_ASSERT_EQUAL(count_children(x, "item"), 2);
	xmpp_stanza_t *second = xmpp_stanza_get_next(child(x, "item", NULL));
	CU_ASSERT_STRING_EQUAL(value_of(second, "k"), "color");
	CU_ASSERT_STRING_EQUAL(value_of(second, "v"), "green");

	/* the session is over */
	r = submit(&h, ADMIN, NODE_ECHO, sid, "complete", "");
	check_error(r, "modify", "bad-request", "bad-sessionid");
	CU_ASSERT_EQUAL(h.submits, 1);
	harness_finish(&h);
}

/* Each submission is refused with an error note naming the problem; the
 * session and its form stay, and submit() is not called. */
static void test_invalid_input(void)
{
	static const struct {
		const char *fields;
		const char *note;
	} cases[] = {
	    {"", "Who is required."},
	    {"<field var='who'><value></value></field>", "Who is required."},
	    {"<field var='who'><value>a</value><value>b</value></field>",
	     "Who takes a single value."},
	    {"<field var='who'><value>a</value></field><field var='color'><value>blue</value>"
	     "</field>",
	     "Color: \"blue\" is not one of the choices."},
	    {"<field var='who'><value>a</value></field><field var='color'><value>Red</value>"
	     "</field>",
	     "Color: \"Red\" is not one of the choices."}, /* a label is not a value */
	    {"<field var='who'><value>a</value></field><field var='tags'><value>a</value>"
	     "<value>z</value></field>",
	     "Tags: \"z\" is not one of the choices."},
	    {"<field var='who'><value>a</value></field><field var='flag'><value>maybe</value>"
	     "</field>",
	     "Flag must be true or false."},
	    {"<field var='who'><value>a&#10;b</value></field>", "Who must be one line of text."},
	    {"<field var='who'><value>a</value></field><field var='jid'><value>a b@c</value>"
	     "</field>",
	     "JID is not a JID."},
	};
	struct harness h;
	char sid[64], again[64];
	dummy_start(&h, 0);
	start_echo(&h, sid, sizeof(sid));

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		xmpp_stanza_t *r = submit(&h, ADMIN, NODE_ECHO, sid, "complete", cases[i].fields);
		check_status(r, "executing", again, sizeof(again));
		CU_ASSERT_STRING_EQUAL(again, sid);
		check_error_note(r, cases[i].note, i);
		CU_ASSERT_STRING_EQUAL(attr(form_of(r), "type"), "form");
		CU_ASSERT_EQUAL(count_children(form_of(r), "field"), 7);
		CU_ASSERT_PTR_NOT_NULL(child(command_of(r), "actions", NULL));
	}
	CU_ASSERT_EQUAL(h.submits, 0);

	/* refused by the command itself */
	xmpp_stanza_t *r = submit(&h, ADMIN, NODE_ECHO, sid, "complete",
	                          "<field var='who'><value>bad</value></field>");
	check_status(r, "executing", again, sizeof(again));
	CU_ASSERT_STRING_EQUAL(again, sid);
	CU_ASSERT_STRING_EQUAL(note(r, "error"), "Who may not be bad.");
	CU_ASSERT_EQUAL(count_children(form_of(r), "field"), 7);
	CU_ASSERT_EQUAL(h.submits, 1);

	/* and then accepted, with next and with execute (both mean complete here) */
	r = submit(&h, ADMIN, NODE_ECHO, sid, "next", "<field var='who'><value>ok</value></field>");
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "echo"), "ok");
	start_echo(&h, sid, sizeof(sid));
	r = submit(&h, ADMIN, NODE_ECHO, sid, "execute",
	           "<field var='who'><value>ok</value></field>");
	check_status(r, "completed", NULL, 0);
	harness_finish(&h);
}

static void test_cancel_and_bad_sessions(void)
{
	struct harness h;
	char sid[64];
	dummy_start(&h, 0);

	start_echo(&h, sid, sizeof(sid));
	xmpp_stanza_t *r = cancel(&h, ADMIN, NODE_ECHO, sid);
	char canceled[64];
	check_status(r, "canceled", canceled, sizeof(canceled));
	CU_ASSERT_STRING_EQUAL(canceled, sid);
	CU_ASSERT_PTR_NULL(form_of(r));
	r = submit(&h, ADMIN, NODE_ECHO, sid, "complete",
	           "<field var='who'><value>x</value></field>");
	check_error(r, "modify", "bad-request", "bad-sessionid");
	r = cancel(&h, ADMIN, NODE_ECHO, sid);
	check_error(r, "modify", "bad-request", "bad-sessionid");

	/* never existed, or no session given */
	r = submit(&h, ADMIN, NODE_ECHO, "no-such-session", "complete", "");
	check_error(r, "modify", "bad-request", "bad-sessionid");
	r = ask(&h, "set", ADMIN,
	        "<command xmlns='" NS_COMMANDS "' node='" NODE_ECHO "' "
	        "action='complete'/>");
	check_error(r, "modify", "bad-request", "bad-sessionid");

	/* a session of another command */
	start_echo(&h, sid, sizeof(sid));
	r = submit(&h, ADMIN, NODE_NOW, sid, "complete", "");
	check_error(r, "modify", "bad-request", "bad-sessionid");

	/* actions we do not offer or do not know */
	r = ask(&h, "set", ADMIN,
	        "<command xmlns='" NS_COMMANDS "' node='" NODE_ECHO "' sessionid='%s' "
	        "action='prev'/>",
	        sid);
	check_error(r, "modify", "bad-request", "bad-action");
	r = ask(&h, "set", ADMIN,
	        "<command xmlns='" NS_COMMANDS "' node='" NODE_ECHO "' action='jump'/>");
	check_error(r, "modify", "bad-request", "malformed-action");

	/* a form of type cancel cancels too */
	r = ask(&h, "set", ADMIN,
	        "<command xmlns='" NS_COMMANDS "' node='" NODE_ECHO "' sessionid='%s'>"
	        "<x xmlns='jabber:x:data' type='cancel'/></command>",
	        sid);
	check_status(r, "canceled", NULL, 0);
	r = cancel(&h, ADMIN, NODE_ECHO, sid);
	check_error(r, "modify", "bad-request", "bad-sessionid");
	CU_ASSERT_EQUAL(h.submits, 0);
	harness_finish(&h);
}

static void test_forbidden(void)
{
	struct harness h;
	char sid[64];
	dummy_start(&h, 0);

	xmpp_stanza_t *r = execute(&h, OTHER, NODE_ECHO);
	check_error(r, "auth", "forbidden", NULL);
	CU_ASSERT_PTR_NULL(command_of(r));
	r = execute(&h, "localhost", NODE_ECHO); /* the server itself is nobody's admin */
	check_error(r, "auth", "forbidden", NULL);
	r = execute(&h, "admin@evil.example/x", NODE_ECHO);
	check_error(r, "auth", "forbidden", NULL);
	r = execute(&h, ADMIN, "urn:test:nope");
	check_error(r, "cancel", "item-not-found", NULL);
	CU_ASSERT_EQUAL(h.executes, 0);

	/* nor can others touch an admin's session */
	start_echo(&h, sid, sizeof(sid));
	r = submit(&h, OTHER, NODE_ECHO, sid, "complete",
	           "<field var='who'><value>x</value></field>");
	check_error(r, "auth", "forbidden", NULL);
	r = cancel(&h, OTHER, NODE_ECHO, sid);
	check_error(r, "auth", "forbidden", NULL);
	r = submit(&h, ADMIN, NODE_ECHO, sid, "complete",
	           "<field var='who'><value>x</value></field>");
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_EQUAL(h.submits, 1);
	harness_finish(&h);
}

static void test_session_bound_to_full_jid(void)
{
	struct harness h;
	char sid[64];
	dummy_start(&h, 0);

	start_echo(&h, sid, sizeof(sid));
	/* the same user from another client: allowed to run commands, not this session */
	xmpp_stanza_t *r = submit(&h, ADMIN_PHONE, NODE_ECHO, sid, "complete",
	                          "<field var='who'><value>x</value></field>");
	check_error(r, "modify", "bad-request", "bad-sessionid");
	r = cancel(&h, ADMIN_PHONE, NODE_ECHO, sid);
	check_error(r, "modify", "bad-request", "bad-sessionid");
	r = cancel(&h, "admin@localhost", NODE_ECHO, sid);
	check_error(r, "modify", "bad-request", "bad-sessionid");
	CU_ASSERT_EQUAL(h.submits, 0);

	/* untouched for its owner */
	r = submit(&h, ADMIN, NODE_ECHO, sid, "complete",
	           "<field var='who'><value>x</value></field>");
	check_status(r, "completed", NULL, 0);
	harness_finish(&h);
}

static void test_session_timeout(void)
{
	struct harness h;
	char sid[64];
	dummy_start(&h, 600);

	/* each step restarts the clock */
	start_echo(&h, sid, sizeof(sid));
	settle(&h, 400);
	xmpp_stanza_t *r = submit(&h, ADMIN, NODE_ECHO, sid, "complete", "");
	check_status(r, "executing", NULL, 0);
	settle(&h, 400);
	r = submit(&h, ADMIN, NODE_ECHO, sid, "complete",
	           "<field var='who'><value>x</value></field>");
	check_status(r, "completed", NULL, 0);

	/* idle past the timeout: gone */
	start_echo(&h, sid, sizeof(sid));
	uint64_t started = now_ms();
	CU_ASSERT_EQUAL(component_next_timeout(h.comp), -1); /* no wake-up needed for it */
	settle(&h, 700);
	r = submit(&h, ADMIN, NODE_ECHO, sid, "complete",
	           "<field var='who'><value>x</value></field>");
	check_error(r, "modify", "bad-request", "bad-sessionid");
	CU_ASSERT(now_ms() - started >= 600);
	CU_ASSERT_EQUAL(h.submits, 1); /* the first session's only */
	harness_finish(&h);
}

static void test_complete_at_once(void)
{
	struct harness h;
	char sid[64];
	dummy_start(&h, 0);

	xmpp_stanza_t *r = execute(&h, ADMIN, NODE_NOW);
	check_status(r, "completed", sid, sizeof(sid));
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "Nothing to choose.");
	CU_ASSERT_EQUAL(count_children(command_of(r), "note"), 4);
	CU_ASSERT_PTR_NULL(form_of(r));
	CU_ASSERT_PTR_NULL(child(command_of(r), "actions", NULL));
	/* nothing to continue */
	r = submit(&h, ADMIN, NODE_NOW, sid, "complete", "");
	check_error(r, "modify", "bad-request", "bad-sessionid");
	harness_finish(&h);
}

static void test_form_with_execute(void)
{
	struct harness h;
	char sid[64], again[64];
	dummy_start(&h, 0);

	/* a script may send the filled form along with execute */
	xmpp_stanza_t *r = ask(&h, "set", ADMIN,
	                       "<command xmlns='" NS_COMMANDS "' node='" NODE_ECHO "'>"
	                       "<x xmlns='jabber:x:data' type='submit'><field var='who'>"
	                       "<value>quick</value></field></x></command>");
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "echo"), "quick");

	/* a wrong one leaves a session with the form and the reason */
	r = ask(&h, "set", ADMIN,
	        "<command xmlns='" NS_COMMANDS "' node='" NODE_ECHO "' action='execute'>"
	        "<x xmlns='jabber:x:data' type='submit'/></command>");
	check_status(r, "executing", sid, sizeof(sid));
	CU_ASSERT_STRING_EQUAL(note(r, "error"), "Who is required.");

	/* two stages: the second form replaces the first */
	r = submit(&h, ADMIN, NODE_ECHO, sid, "complete",
	           "<field var='who'><value>again</value></field>");
	check_status(r, "executing", again, sizeof(again));
	CU_ASSERT_STRING_EQUAL(again, sid);
	CU_ASSERT_EQUAL(count_children(form_of(r), "field"), 1);
	CU_ASSERT_PTR_NOT_NULL(field(form_of(r), "more"));
	r = submit(&h, ADMIN, NODE_ECHO, sid, "complete",
	           "<field var='who'><value>x</value></field>");
	CU_ASSERT_STRING_EQUAL(note(r, "error"), "More is required.");
	r = submit(&h, ADMIN, NODE_ECHO, sid, "complete",
	           "<field var='more'><value>y</value></field>");
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "Second stage done.");
	harness_finish(&h);
}

static void test_session_limits(void)
{
	struct harness h;
	char sids[5][64], from[64];
	dummy_start(&h, 0);

	/* a fifth session of one user ends that user's oldest */
	for (int i = 0; i < 5; i++)
		start_echo(&h, sids[i], sizeof(sids[i]));
	xmpp_stanza_t *r = cancel(&h, ADMIN, NODE_ECHO, sids[0]);
	check_error(r, "modify", "bad-request", "bad-sessionid");
	for (int i = 1; i < 5; i++)
		check_status(cancel(&h, ADMIN, NODE_ECHO, sids[i]), "canceled", NULL, 0);

	/* 32 in all; then new ones wait until one ends */
	for (int user = 0; user < 8; user++) {
		for (int i = 0; i < 4; i++) {
			snprintf(from, sizeof(from), "admin%d@localhost/r%d", user, i);
			check_status(execute(&h, from, NODE_ECHO), "executing",
			             user == 0 && i == 0 ? sids[0] : NULL, sizeof(sids[0]));
		}
	}
	r = execute(&h, ADMIN, NODE_ECHO);
	check_error(r, "wait", "resource-constraint", NULL);
	/* a user at their own limit still gets in, at their oldest's expense */
	r = execute(&h, "admin7@localhost/r9", NODE_ECHO);
	check_status(r, "executing", NULL, 0);
	check_status(cancel(&h, "admin0@localhost/r0", NODE_ECHO, sids[0]), "canceled", NULL, 0);
	start_echo(&h, sids[1], sizeof(sids[1]));
	harness_finish(&h); /* the rest are freed with the component */
}

static const struct unit_test tests[] = {
    {"discovery: admins see the commands, others nothing", test_discovery},
    {"version, ping, service-unavailable, no answer to errors", test_version_ping_and_others},
    {"execute shows a form, complete completes", test_execute_then_complete},
    {"invalid input: the form again with an error note", test_invalid_input},
    {"cancel, bad sessions, bad actions", test_cancel_and_bad_sessions},
    {"forbidden to others", test_forbidden},
    {"a session is bound to the full JID", test_session_bound_to_full_jid},
    {"sessions time out when idle", test_session_timeout},
    {"a command that completes at once", test_complete_at_once},
    {"a form sent with execute; two stages", test_form_with_execute},
    {"session limits", test_session_limits},
    {NULL, NULL},
};

UNIT_MAIN("adhoc", tests)
