/*
 * The component's own ad-hoc commands (XEP-0050), driven through the scripted
 * fake XMPP server of fake_xmpp.h: first the generic framework with dummy
 * commands, then the key commands of src/adhoc_keys.c on a real key store in a
 * temporary directory.
 */

#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "component/component.h"
#include "fake_xmpp.h"
#include "src/adhoc_keys.h"
#include "src/config.h"
#include "unit.h"

#define JID         "invites.localhost"
#define SECRET      "s3cret"
#define ADMIN       "admin@localhost/desk"
#define ADMIN_PHONE "admin@localhost/phone"
#define OTHER       "mallory@localhost/x"
#define NS_COMMANDS "http://jabber.org/protocol/commands"
#define NS_STANZAS  "urn:ietf:params:xml:ns:xmpp-stanzas"

struct harness {
	struct fake fake;
	struct component *comp;
	unsigned next_id;
	char last_id[16];
	char last_allowed[128]; /* the bare JID allowed() was last asked about */
	unsigned executes, submits;
	char seen_token[32]; /* the hidden field's value as submit() saw it */
	size_t seen_tags;
};

/* ---- harness --------------------------------------------------------------- */

static bool pump(struct harness *h, uint64_t deadline)
{
	return fake_pump(&h->fake, h->comp, deadline, 20);
}

static void settle(struct harness *h, unsigned ms)
{
	uint64_t deadline = now_ms() + ms;
	while (pump(h, deadline))
		;
}

static xmpp_stanza_t *next_stanza(struct harness *h)
{
	return fake_next_stanza(&h->fake, h->comp, 3000, 20);
}

static void harness_start(struct harness *h)
{
	uint64_t deadline = now_ms() + 3000;

	CU_ASSERT_EQUAL(component_start(h->comp), 0);
	while (!component_online(h->comp) && pump(h, deadline))
		;
	CU_ASSERT_TRUE_FATAL(component_online(h->comp));
}

static void harness_create(struct harness *h)
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

static void harness_finish(struct harness *h)
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

/* Send an IQ from from with payload; return the answer (NULL if none came),
 * checking it answers that IQ. */
static xmpp_stanza_t *ask(struct harness *h, const char *type, const char *from,
                          const char *payload_fmt, ...) __attribute__((format(printf, 4, 5)));

static xmpp_stanza_t *ask(struct harness *h, const char *type, const char *from,
                          const char *payload_fmt, ...)
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

static const char *attr(xmpp_stanza_t *s, const char *name)
{
	const char *v = s ? xmpp_stanza_get_attribute(s, name) : NULL;
	return v ? v : "";
}

static xmpp_stanza_t *child(xmpp_stanza_t *s, const char *name, const char *ns)
{
	if (!s)
		return NULL;
	return ns ? xmpp_stanza_get_child_by_name_and_ns(s, name, ns)
	          : xmpp_stanza_get_child_by_name(s, name);
}

static size_t count_children(xmpp_stanza_t *s, const char *name)
{
	size_t n = 0;
	for (xmpp_stanza_t *c = s ? xmpp_stanza_get_children(s) : NULL; c;
	     c = xmpp_stanza_get_next(c))
		n += xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), name) == 0;
	return n;
}

/* The text of s, copied into a static buffer ("" when none). */
static const char *text(xmpp_stanza_t *s)
{
	static char buf[1024];
	char *t = s ? xmpp_stanza_get_text(s) : NULL;
	snprintf(buf, sizeof(buf), "%s", t ? t : "");
	if (t)
		xmpp_free(xmpp_stanza_get_context(s), t);
	return buf;
}

static xmpp_stanza_t *field(xmpp_stanza_t *x, const char *var)
{
	for (xmpp_stanza_t *c = x ? xmpp_stanza_get_children(x) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "field") == 0 &&
		    strcmp(attr(c, "var"), var) == 0)
			return c;
	}
	return NULL;
}

static const char *value_of(xmpp_stanza_t *x, const char *var)
{
	return text(child(field(x, var), "value", NULL));
}

static xmpp_stanza_t *command_of(xmpp_stanza_t *iq)
{
	return child(iq, "command", NS_COMMANDS);
}

static xmpp_stanza_t *form_of(xmpp_stanza_t *iq)
{
	return child(command_of(iq), "x", "jabber:x:data");
}

/* The text of the command's first note of type, "" if none. */
static const char *note(xmpp_stanza_t *iq, const char *type)
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
static void check_error(xmpp_stanza_t *iq, const char *type, const char *condition,
                        const char *specific)
{
	xmpp_stanza_t *error = child(iq, "error", NULL);
	CU_ASSERT_STRING_EQUAL(attr(iq, "type"), "error");
	CU_ASSERT_STRING_EQUAL(attr(error, "type"), type);
	CU_ASSERT_PTR_NOT_NULL(child(error, condition, NS_STANZAS));
	if (specific)
		CU_ASSERT_PTR_NOT_NULL(child(error, specific, NS_COMMANDS));
}

/* The command's error note reads want; a mismatch names case i of a table. */
static void check_error_note(xmpp_stanza_t *iq, const char *want, size_t i)
{
	if (strcmp(note(iq, "error"), want) != 0) {
		fprintf(stderr, "\n  case %zu: note \"%s\", want \"%s\"\n", i, note(iq, "error"),
		        want);
		CU_FAIL("error note");
	}
}

static xmpp_stanza_t *execute(struct harness *h, const char *from, const char *node)
{
	return ask(h, "set", from, "<command xmlns='" NS_COMMANDS "' node='%s' action='execute'/>",
	           node);
}

/* Submit fields (XML) to session sessionid with action (complete, ...). */
static xmpp_stanza_t *submit(struct harness *h, const char *from, const char *node,
                             const char *sessionid, const char *action, const char *fields)
{
	return ask(h, "set", from,
	           "<command xmlns='" NS_COMMANDS "' node='%s' sessionid='%s' action='%s'>"
	           "<x xmlns='jabber:x:data' type='submit'>%s</x></command>",
	           node, sessionid, action, fields);
}

static xmpp_stanza_t *cancel(struct harness *h, const char *from, const char *node,
                             const char *sessionid)
{
	return ask(h, "set", from,
	           "<command xmlns='" NS_COMMANDS "' node='%s' sessionid='%s' action='cancel'/>",
	           node, sessionid);
}

/* Status and sessionid of a command reply; sessionid copied into sid. */
static void check_status(xmpp_stanza_t *iq, const char *status, char *sid, size_t size)
{
	CU_ASSERT_STRING_EQUAL(attr(iq, "type"), "result");
	CU_ASSERT_STRING_EQUAL(attr(command_of(iq), "status"), status);
	CU_ASSERT_NOT_EQUAL(strlen(attr(command_of(iq), "sessionid")), 0);
	if (sid)
		snprintf(sid, size, "%s", attr(command_of(iq), "sessionid"));
}

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

#define DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define DISCO_ITEMS "http://jabber.org/protocol/disco#items"

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

/* ---- the key commands on a real key store ------------------------------------ */

struct keys_harness {
	struct harness h;
	struct keystore *store;
	struct config cfg;
	struct adhoc_keys keys;
	char dir[32], path[64];
};

static char host_a[] = "localhost", host_b[] = "other.localhost", admin_jid[] = "admin@localhost";

static void keys_start(struct keys_harness *k, size_t n_hosts)
{
	const char *err = NULL;

	memset(k, 0, sizeof(*k));
	CU_ASSERT_EQUAL_FATAL(keys_init(), 0);
	log_set_level(LOG_WARN);
	harness_create(&k->h);
	snprintf(k->dir, sizeof(k->dir), "/tmp/test_adhoc.XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(k->dir));
	snprintf(k->path, sizeof(k->path), "%s/keys.sqlite", k->dir);
	k->store = keystore_open(k->path, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k->store);
	k->cfg.component.hosts[0] = host_a;
	k->cfg.component.hosts[1] = host_b;
	k->cfg.component.n_hosts = n_hosts;
	k->cfg.component.admins[0] = admin_jid;
	k->cfg.component.n_admins = 1;
	CU_ASSERT_EQUAL(adhoc_keys_register(&k->keys, k->h.comp, k->store, &k->cfg), 0);
	harness_start(&k->h);
}

static void keys_finish(struct keys_harness *k)
{
	char path[96];

	harness_finish(&k->h);
	keystore_close(k->store);
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", k->path, suffixes[i]);
		unlink(path);
	}
	CU_ASSERT_EQUAL(rmdir(k->dir), 0);
}

/* Store a key directly; its ID into id. */
static void make_key(struct keys_harness *k, const char *host, const char *name,
                     const struct api_key_limits *limits, char *id)
{
	struct api_key_new key;
	const char *err = NULL;

	CU_ASSERT_EQUAL_FATAL(keystore_create(k->store, host, name, limits, &key, &err), KEYS_OK);
	strcpy(id, key.id);
	keys_wipe(&key);
}

static int count_key(void *userdata, const struct api_key_info *key)
{
	(void)key;
	(*(int *)userdata)++;
	return 0;
}

static int stored_keys(struct keys_harness *k, const char *host)
{
	int n = 0;
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_list(k->store, host, count_key, &n, &err), KEYS_OK);
	return n;
}

static bool key_chars(const char *s, size_t len)
{
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

static void test_keys_create(void)
{
	struct keys_harness k;
	char sid[64];
	keys_start(&k, 1);

	xmpp_stanza_t *r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE);
	check_status(r, "executing", sid, sizeof(sid));
	xmpp_stanza_t *x = form_of(r);
	CU_ASSERT_STRING_EQUAL(attr(field(x, "host"), "type"), "list-single");
	CU_ASSERT_STRING_EQUAL(value_of(x, "host"), "localhost"); /* the only one: chosen */
	CU_ASSERT_EQUAL(count_children(field(x, "host"), "option"), 1);
	CU_ASSERT_PTR_NOT_NULL(child(field(x, "name"), "required", NULL));
	CU_ASSERT_PTR_NULL(child(field(x, "lifetime"), "required", NULL));
	CU_ASSERT_PTR_NOT_NULL(field(x, "limit"));

	/* refused input: the form again, with what was typed, nothing stored */
	static const struct {
		const char *name, *lifetime, *limit;
		const char *note;
	} bad[] = {
	    {"Kept", "30x", "",
	     "Lifetime: a duration is a number with an optional unit s, m, h, d or w (e.g. 30d)."},
	    {"Kept", "", "20",
	     "Invite limit: write a number of invites (1 to 1000000), a slash and a period, "
	     "e.g. 20/1d."},
	    {"Kept", "", "0/1d",
	     "Invite limit: write a number of invites (1 to 1000000), a slash and a period, "
	     "e.g. 20/1d."},
	    {"Kept", "1d", "5/0d", "Invite limit: a duration must be longer than zero."},
	    {"", "1d", "", "Name is required."},
	    {"   ", "", "", "The key was not created: name is empty."},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char fields[512];
		snprintf(fields, sizeof(fields),
		         "<field var='host'><value>localhost</value></field>"
		         "<field var='name'><value>%s</value></field>"
		         "<field var='lifetime'><value>%s</value></field>"
		         "<field var='limit'><value>%s</value></field>",
		         bad[i].name, bad[i].lifetime, bad[i].limit);
		r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete", fields);
		check_status(r, "executing", NULL, 0);
		check_error_note(r, bad[i].note, i);
		if (i < 4) {
			CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "name"), bad[i].name);
			CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "lifetime"), bad[i].lifetime);
			CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "limit"), bad[i].limit);
		}
		CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "host"), "localhost");
	}
	/* a field left out keeps what the form showed: here the invalid lifetime */
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete",
	           "<field var='name'><value>Kept</value></field>"
	           "<field var='lifetime'><value>2x</value></field>");
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "lifetime"), "2x");
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete",
	           "<field var='name'><value>Other</value></field>");
	CU_ASSERT_EQUAL(strncmp(note(r, "error"), "Lifetime:", 9), 0);
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "name"), "Other");
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 0);

	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete",
	           "<field var='host'><value>localhost</value></field>"
	           "<field var='name'><value>  Signup page </value></field>"
	           "<field var='lifetime'><value>30d</value></field>"
	           "<field var='limit'><value>20/1d</value></field>");
	check_status(r, "completed", NULL, 0);
	x = form_of(r);
	CU_ASSERT_STRING_EQUAL(attr(x, "type"), "result");
	char key[256], id[64];
	snprintf(key, sizeof(key), "%s", value_of(x, "key"));
	snprintf(id, sizeof(id), "%s", value_of(x, "id"));
	CU_ASSERT_EQUAL_FATAL(strlen(key), KEYS_ID_LEN + 1 + KEYS_SECRET_LEN);
	CU_ASSERT(key_chars(key, KEYS_ID_LEN) && key[KEYS_ID_LEN] == '/' &&
	          key_chars(key + KEYS_ID_LEN + 1, KEYS_SECRET_LEN));
	CU_ASSERT_EQUAL(strncmp(key, id, KEYS_ID_LEN), 0);
	CU_ASSERT_STRING_EQUAL(value_of(x, "host"), "localhost");
	CU_ASSERT_STRING_EQUAL(value_of(x, "name"), "Signup page");
	CU_ASSERT_STRING_EQUAL(value_of(x, "limit"), "20/1d");
	CU_ASSERT_EQUAL(strlen(value_of(x, "expires")), 20); /* 2026-01-01T00:00:00Z */
	CU_ASSERT_PTR_NOT_NULL(strstr(note(r, "info"), "will not be shown again"));

	/* the key works, with its limits */
	struct api_key_match match;
	const char *err = NULL;
	int64_t now = time(NULL);
	CU_ASSERT_EQUAL(keystore_verify(k.store, key, strlen(key), now, &match, &err), KEYS_OK);
	CU_ASSERT_STRING_EQUAL(match.id, id);
	CU_ASSERT_EQUAL(match.limits.max_invites, 20);
	CU_ASSERT_EQUAL(match.limits.period_s, 86400);
	CU_ASSERT(match.limits.expires >= now + 30 * 86400 - 5 &&
	          match.limits.expires <= now + 30 * 86400);
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 1);

	/* without lifetime and limit, in one request */
	r = ask(&k.h, "set", ADMIN,
	        "<command xmlns='" NS_COMMANDS "' node='" ADHOC_KEYS_NODE_CREATE "'>"
	        "<x xmlns='jabber:x:data' type='submit'><field var='host'><value>localhost</value>"
	        "</field><field var='name'><value>Bookmark</value></field></x></command>");
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "expires"), "never");
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "limit"), "none");
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 2);
	keys_finish(&k);
}

static void test_keys_list(void)
{
	struct keys_harness k;
	char sid[64], id_a[64], id_b1[64], id_b2[64];
	keys_start(&k, 2);

	make_key(&k, "localhost", "A", NULL, id_a);
	make_key(&k, "other.localhost", "B one", NULL, id_b1);
	struct api_key_limits limits = {.expires = 1, .max_invites = 5, .period_s = 3600};
	make_key(&k, "other.localhost", "B two", &limits, id_b2);
	struct api_key_usage usage = {.id = id_b1, .invites = 3, .last_used = 1767225600};
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_record_usage(k.store, &usage, 1, &err), KEYS_OK);

	/* several hosts: choose one first */
	xmpp_stanza_t *r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST);
	check_status(r, "executing", sid, sizeof(sid));
	CU_ASSERT_EQUAL(count_children(field(form_of(r), "host"), "option"), 2);
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST, sid, "complete",
	           "<field var='host'><value>other.localhost</value></field>");
	check_status(r, "completed", NULL, 0);
	xmpp_stanza_t *x = form_of(r);
	CU_ASSERT_STRING_EQUAL(attr(x, "type"), "result");
	CU_ASSERT_STRING_EQUAL(text(child(x, "title", NULL)), "API keys on other.localhost");
	static const char *const columns[] = {"id",        "name",    "created", "expires",
	                                      "last-used", "invites", "limit"};
	xmpp_stanza_t *reported = child(x, "reported", NULL);
	for (size_t i = 0; i < 7; i++)
		CU_ASSERT_PTR_NOT_NULL(field(reported, columns[i]));
	CU_ASSERT_EQUAL(count_children(x, "item"), 2);
	xmpp_stanza_t *first = child(x, "item", NULL), *second = xmpp_stanza_get_next(first);
	CU_ASSERT_STRING_EQUAL(value_of(first, "id"), id_b1);
	CU_ASSERT_STRING_EQUAL(value_of(first, "name"), "B one");
	CU_ASSERT_STRING_EQUAL(value_of(first, "expires"), "never");
	CU_ASSERT_STRING_EQUAL(value_of(first, "last-used"), "2026-01-01T00:00:00Z");
	CU_ASSERT_STRING_EQUAL(value_of(first, "invites"), "3");
	CU_ASSERT_STRING_EQUAL(value_of(first, "limit"), "none");
	CU_ASSERT_EQUAL(strlen(value_of(first, "created")), 20);
	CU_ASSERT_STRING_EQUAL(value_of(second, "id"), id_b2);
	CU_ASSERT_STRING_EQUAL(value_of(second, "expires"), "1970-01-01T00:00:01Z (expired)");
	CU_ASSERT_STRING_EQUAL(value_of(second, "last-used"), "never");
	CU_ASSERT_STRING_EQUAL(value_of(second, "invites"), "0");
	CU_ASSERT_STRING_EQUAL(value_of(second, "limit"), "5/1h");

	/* a host that is not served */
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST, sid, "complete", "");
	check_error(r, "modify", "bad-request", "bad-sessionid"); /* that session is done */
	check_status(execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST), "executing", sid, sizeof(sid));
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST, sid, "complete",
	           "<field var='host'><value>evil.example</value></field>");
	CU_ASSERT_STRING_EQUAL(note(r, "error"),
	                       "Host: \"evil.example\" is not one of the choices.");
	keys_finish(&k);

	/* one host: the list at once; none there: a note */
	keys_start(&k, 1);
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "No API keys on localhost.");
	CU_ASSERT_PTR_NULL(form_of(r));
	make_key(&k, "localhost", "A", NULL, id_a);
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_EQUAL(count_children(form_of(r), "item"), 1);
	keys_finish(&k);
}

static void test_keys_revoke(void)
{
	struct keys_harness k;
	char sid[64], id_a[64], id_b1[64], id_b2[64], value[128], fields[512];
	keys_start(&k, 2);

	xmpp_stanza_t *r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "There are no API keys to revoke.");

	make_key(&k, "localhost", "A", NULL, id_a);
	make_key(&k, "other.localhost", "B one", NULL, id_b1);
	make_key(&k, "other.localhost", "B two", NULL, id_b2);
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE);
	check_status(r, "executing", sid, sizeof(sid));
	xmpp_stanza_t *keys = field(form_of(r), "keys");
	CU_ASSERT_STRING_EQUAL(attr(keys, "type"), "list-multi");
	CU_ASSERT_PTR_NOT_NULL(child(keys, "required", NULL));
	CU_ASSERT_EQUAL(count_children(keys, "option"), 3);
	xmpp_stanza_t *option = child(keys, "option", NULL);
	char label[128];
	snprintf(label, sizeof(label), "localhost: %s \u2014 A", id_a);
	CU_ASSERT_STRING_EQUAL(attr(option, "label"), label);
	snprintf(value, sizeof(value), "localhost %s", id_a);
	CU_ASSERT_STRING_EQUAL(text(child(option, "value", NULL)), value);

	/* only keys that were offered */
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE, sid, "complete",
	           "<field var='keys'><value>other.localhost nosuchkey</value></field>");
	check_status(r, "executing", NULL, 0);
	CU_ASSERT_STRING_EQUAL(note(r, "error"),
	                       "Keys to revoke: \"other.localhost nosuchkey\" is not one of the "
	                       "choices.");
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE, sid, "complete", "");
	CU_ASSERT_STRING_EQUAL(note(r, "error"), "Keys to revoke is required.");
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost") + stored_keys(&k, "other.localhost"), 3);

	/* revoke two, one of which someone else revoked meanwhile */
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_delete(k.store, "other.localhost", id_b2, &err), KEYS_OK);
	snprintf(fields, sizeof(fields),
	         "<field var='keys'><value>localhost %s</value><value>other.localhost %s</value>"
	         "<value>other.localhost %s</value></field>",
	         id_a, id_b1, id_b2);
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE, sid, "complete", fields);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "Revoked 2 API keys.");
	char gone[96];
	snprintf(gone, sizeof(gone), "Already revoked: %s.", id_b2);
	CU_ASSERT_STRING_EQUAL(note(r, "warn"), gone);
	xmpp_stanza_t *x = form_of(r);
	CU_ASSERT_EQUAL(count_children(x, "field"), 2);
	snprintf(label, sizeof(label), "other.localhost: %s \u2014 B one", id_b1);
	CU_ASSERT_STRING_EQUAL(
	    text(child(xmpp_stanza_get_next(child(x, "field", NULL)), "value", NULL)), label);
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost") + stored_keys(&k, "other.localhost"), 0);
	keys_finish(&k);

	/* one host: no host in the labels */
	keys_start(&k, 1);
	make_key(&k, "localhost", "A", NULL, id_a);
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE);
	check_status(r, "executing", sid, sizeof(sid));
	snprintf(label, sizeof(label), "%s \u2014 A", id_a);
	CU_ASSERT_STRING_EQUAL(attr(child(field(form_of(r), "keys"), "option", NULL), "label"),
	                       label);
	snprintf(fields, sizeof(fields), "<field var='keys'><value>localhost %s</value></field>",
	         id_a);
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE, sid, "complete", fields);
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "Revoked 1 API key.");
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 0);
	keys_finish(&k);
}

/* Others see no commands and can run none; the key store is not touched. */
static void test_keys_not_admin(void)
{
	static const char *const nodes[] = {ADHOC_KEYS_NODE_CREATE, ADHOC_KEYS_NODE_LIST,
	                                    ADHOC_KEYS_NODE_REVOKE};
	struct keys_harness k;
	keys_start(&k, 1);

	xmpp_stanza_t *r =
	    ask(&k.h, "get", ADMIN, "<query xmlns='" DISCO_ITEMS "' node='" NS_COMMANDS "'/>");
	xmpp_stanza_t *query = child(r, "query", DISCO_ITEMS);
	CU_ASSERT_EQUAL(count_children(query, "item"), 3);
	CU_ASSERT_STRING_EQUAL(attr(child(query, "item", NULL), "name"), "Create API key");
	static const char *const others[] = {OTHER, "localhost", "admin@other.localhost/x",
	                                     "ADMIN@localhost.evil/x"};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		r = ask(&k.h, "get", others[i],
		        "<query xmlns='" DISCO_ITEMS "' node='" NS_COMMANDS "'/>");
		CU_ASSERT_EQUAL(count_children(child(r, "query", DISCO_ITEMS), "item"), 0);
		for (size_t n = 0; n < 3; n++) {
			check_error(execute(&k.h, others[i], nodes[n]), "auth", "forbidden", NULL);
			r = ask(&k.h, "get", others[i], "<query xmlns='" DISCO_INFO "' node='%s'/>",
			        nodes[n]);
			check_error(r, "auth", "forbidden", NULL);
		}
	}
	/* JIDs compare without case, as servers normalise them */
	r = execute(&k.h, "Admin@LocalHost/x", ADHOC_KEYS_NODE_LIST);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 0);
	keys_finish(&k);
}

/* A store that fails: the command ends with the reason, nothing is changed. */
static void test_keys_store_fails(void)
{
	struct keys_harness k;
	char sid[64];
	keys_start(&k, 1);

	check_status(execute(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE), "executing", sid, sizeof(sid));
	/* someone breaks the database under the open store */
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(k.path, &db), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "DROP TABLE api_keys", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	xmpp_stanza_t *r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete",
	                          "<field var='name'><value>x</value></field>");
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_EQUAL(strncmp(note(r, "error"), "The key store failed: ", 22), 0);
	CU_ASSERT_PTR_NULL(form_of(r));
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_EQUAL(strncmp(note(r, "error"), "The key store failed: ", 22), 0);
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_EQUAL(strncmp(note(r, "error"), "The key store failed: ", 22), 0);
	keys_finish(&k);
}

/* Bytes stanza takes as XML; SIZE_MAX for none. */
static size_t stanza_size(xmpp_stanza_t *stanza)
{
	char *buf = NULL;
	size_t len = 0;
	if (!stanza)
		return SIZE_MAX;
	CU_ASSERT_EQUAL_FATAL(xmpp_stanza_to_text(stanza, &buf, &len), XMPP_EOK);
	xmpp_free(xmpp_stanza_get_context(stanza), buf);
	return len;
}

/* 500 names of 200 quotes are 600 KB of XML, more than Prosody takes in one
 * stanza: the forms stop early and say so. */
static void test_keys_bounded_in_bytes(void)
{
	struct keys_harness k;
	char sid[64], id[64], quotes[KEYS_NAME_MAX + 1];
	keys_start(&k, 2);

	memset(quotes, '"', KEYS_NAME_MAX);
	quotes[KEYS_NAME_MAX] = '\0';
	for (int i = 0; i < 500; i++)
		make_key(&k, "localhost", quotes, NULL, id);
	make_key(&k, "other.localhost", "B", NULL, id);

	xmpp_stanza_t *r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST);
	check_status(r, "executing", sid, sizeof(sid));
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST, sid, "complete",
	           "<field var='host'><value>localhost</value></field>");
	check_status(r, "completed", NULL, 0);
	size_t shown = count_children(form_of(r), "item");
	CU_ASSERT(shown >= 40 && shown < 500);
	CU_ASSERT_STRING_EQUAL(value_of(child(form_of(r), "item", NULL), "name"), quotes);
	char want[128];
	snprintf(want, sizeof(want), "Showing the first %zu of 500 keys.", shown);
	CU_ASSERT_STRING_EQUAL(note(r, "warn"), want);
	CU_ASSERT(stanza_size(r) < 128 * 1024);

	/* the other host's key is listed as ever */
	check_status(execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST), "executing", sid, sizeof(sid));
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST, sid, "complete",
	           "<field var='host'><value>other.localhost</value></field>");
	CU_ASSERT_EQUAL(count_children(form_of(r), "item"), 1);
	CU_ASSERT_STRING_EQUAL(note(r, "warn"), "");

	/* revoke: one form for both hosts, full before the other host's key */
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE);
	check_status(r, "executing", sid, sizeof(sid));
	xmpp_stanza_t *keys = field(form_of(r), "keys");
	shown = count_children(keys, "option");
	CU_ASSERT(shown >= 40 && shown < 500);
	CU_ASSERT_STRING_EQUAL(note(r, "warn"), "There are too many keys to show them all: only "
	                                        "the oldest are listed.");
	CU_ASSERT(stanza_size(r) < 128 * 1024);
	char value[128];
	snprintf(value, sizeof(value), "%s",
	         text(child(child(keys, "option", NULL), "value", NULL)));
	char fields[256];
	snprintf(fields, sizeof(fields), "<field var='keys'><value>%s</value></field>", value);
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE, sid, "complete", fields);
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "Revoked 1 API key.");
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 499);
	keys_finish(&k);
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
    {"keys: create", test_keys_create},
    {"keys: list", test_keys_list},
    {"keys: revoke", test_keys_revoke},
    {"keys: nothing for others", test_keys_not_admin},
    {"keys: the store fails", test_keys_store_fails},
    {"keys: list and revoke forms are bounded in bytes", test_keys_bounded_in_bytes},
    {NULL, NULL},
};

UNIT_MAIN("adhoc", tests)
