/*
 * Invite commands that take two steps, XEP-0356 privileged IQs and discovery,
 * against the scripted fake server of fake_xmpp.h. The server's side is
 * written from what ejabberd 26.07 and Prosody 13.0 sent (see
 * docs in component/requests.c and component/privilege.c), ids replaced.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <unistd.h>

#include "component/component-internal.h"
#include "fake_xmpp.h"
#include "unit.h"

#define JID     "invites.localhost"
#define SECRET  "s3cret"
#define BOT     "invitebot@localhost"
#define WAIT_MS 5000
#define NS_CMD  "http://jabber.org/protocol/commands"

#define RESULT_FORM(uri)                                                                           \
	"<x type='result' xmlns='jabber:x:data'><field var='landing-url' type='text-single'>"      \
	"<value>http://localhost:38280/invites/tok</value></field><field var='FORM_TYPE' "         \
	"type='hidden'><value>urn:xmpp:invite#invitation</value></field><field var='uri' "         \
	"type='text-single'><value>" uri "</value></field><field var='expire' "                    \
	"type='text-single'><value>2026-12-09T09:42:40Z</value></field></x>"

/* ejabberd 26's create-account form, reordered, with FORM_TYPE and an
 * unknown field added. */
#define ACCOUNT_FORM                                                                               \
	"<x type='form' xmlns='jabber:x:data'><title>Account Creation Invite</title>"              \
	"<field var='roster-subscription' type='boolean' label='Roster Subscription'/>"            \
	"<field var='x-color' type='text-single'><value>blue</value></field>"                      \
	"<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:invite</value></field>"              \
	"<field var='username' type='text-single' label='Username'/></x>"

#define PRIVILEGE_MESSAGE                                                                          \
	"<message to='" JID "' from='%s'><privilege xmlns='urn:xmpp:privilege:2'>"                 \
	"<perm type='none' access='message'/><perm type='none' access='roster'/>"                  \
	"<perm access='iq'>%s</perm><perm type='none' access='presence'/></privilege></message>"
#define GRANT_COMMANDS "<namespace type='set' ns='http://jabber.org/protocol/commands'/>"
#define GRANT_DISCO    "<namespace type='get' ns='http://jabber.org/protocol/disco#items'/>"

struct outcome {
	int calls;
	enum component_status status;
	char uri[256], condition[64], reason[512];
};

struct harness {
	struct fake fake;
	struct component *comp;
	struct outcome outcomes[16];
	int n_outcomes;
	FILE *log; /* stderr while capturing */
	int saved_stderr;
};

static void on_result(void *userdata, const struct component_result *r)
{
	struct outcome *o = userdata;

	o->calls++;
	o->status = r->status;
	snprintf(o->uri, sizeof(o->uri), "%s", r->invite ? r->invite->uri : "");
	snprintf(o->condition, sizeof(o->condition), "%s", r->condition ? r->condition : "");
	snprintf(o->reason, sizeof(o->reason), "%s", r->reason ? r->reason : "");
}

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

/* Log lines go to a file from here on, for log_text() to read. */
static void capture_log(struct harness *h)
{
	fflush(stderr);
	h->log = tmpfile();
	CU_ASSERT_PTR_NOT_NULL_FATAL(h->log);
	h->saved_stderr = dup(2);
	CU_ASSERT_FATAL(dup2(fileno(h->log), 2) == 2);
}

/* Everything logged since capture_log() (or the last call), NUL-terminated.
 * Read through the descriptor: stdio would trust a position it cached. */
static const char *log_text(struct harness *h)
{
	static char text[16384];
	int fd = fileno(h->log);
	fflush(stderr);
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	CU_ASSERT_EQUAL(ftruncate(fd, 0), 0);
	CU_ASSERT_EQUAL(lseek(fd, 0, SEEK_SET), 0);
	return text;
}

static void harness_init(struct harness *h, const struct component_host *hosts, size_t n_hosts,
                         unsigned timeout_ms)
{
	signal(SIGPIPE, SIG_IGN);
	memset(h, 0, sizeof(*h));
	capture_log(h);
	fake_init(&h->fake, JID, SECRET, false);
	struct component_config cfg = {
	    .jid = JID,
	    .secret = SECRET,
	    .server = "127.0.0.1",
	    .port = h->fake.port,
	    .request_timeout_ms = timeout_ms,
	    .hosts = hosts,
	    .n_hosts = n_hosts,
	};
	const char *err = NULL;
	h->comp = component_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h->comp);
	CU_ASSERT_EQUAL_FATAL(component_start(h->comp), 0);
	uint64_t deadline = now_ms() + WAIT_MS;
	while (!component_online(h->comp) && pump(h, deadline))
		;
	CU_ASSERT_TRUE_FATAL(component_online(h->comp));
}

static void harness_finish(struct harness *h)
{
	component_stop(h->comp, 0);
	uint64_t deadline = now_ms() + WAIT_MS;
	while (component_fd(h->comp) >= 0 && pump(h, deadline))
		;
	component_destroy(h->comp);
	for (int i = 0; i < h->n_outcomes; i++)
		CU_ASSERT_EQUAL(h->outcomes[i].calls, 1); /* exactly one outcome each */
	fake_finish(&h->fake);
	fflush(stderr);
	dup2(h->saved_stderr, 2);
	close(h->saved_stderr);
	fclose(h->log);
}

static const char *attr(xmpp_stanza_t *s, const char *name)
{
	const char *v = s ? xmpp_stanza_get_attribute(s, name) : NULL;
	return v ? v : "";
}

static xmpp_stanza_t *next_stanza(struct harness *h)
{
	xmpp_stanza_t *s = fake_next_stanza(&h->fake, h->comp, WAIT_MS, 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	return s;
}

static struct outcome *request(struct harness *h, const struct invite_params *params)
{
	CU_ASSERT_FATAL(h->n_outcomes < 16);
	struct outcome *o = &h->outcomes[h->n_outcomes++];
	CU_ASSERT_EQUAL_FATAL(component_request_invite(h->comp, "localhost", params, on_result, o),
	                      0);
	return o;
}

static bool wait_outcome(struct harness *h, struct outcome *o)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	while (o->calls == 0 && pump(h, deadline))
		;
	return o->calls > 0;
}

static xmpp_stanza_t *field(xmpp_stanza_t *x, const char *var)
{
	for (xmpp_stanza_t *c = x ? xmpp_stanza_get_children(x) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		if (xmpp_stanza_is_tag(c) && strcmp(attr(c, "var"), var) == 0)
			return c;
	}
	return NULL;
}

/* The value of var in form x, copied to buf ("" when absent). */
static const char *field_value(xmpp_stanza_t *x, const char *var, char *buf, size_t size)
{
	xmpp_stanza_t *value = xmpp_stanza_get_child_by_name(field(x, var), "value");
	char *text = value ? xmpp_stanza_get_text(value) : NULL;
	snprintf(buf, size, "%s", text ? text : "");
	if (text)
		xmpp_free(xmpp_stanza_get_context(value), text);
	return buf;
}

static int count_fields(xmpp_stanza_t *x)
{
	int n = 0;
	for (xmpp_stanza_t *c = x ? xmpp_stanza_get_children(x) : NULL; c;
	     c = xmpp_stanza_get_next(c))
		n += xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "field") == 0;
	return n;
}

/* A direct command to localhost: its <command/>; its id into id. */
static xmpp_stanza_t *expect_command(struct harness *h, const char *node, const char *action,
                                     char *id, size_t id_size)
{
	xmpp_stanza_t *iq = next_stanza(h);
	CU_ASSERT_STRING_EQUAL(attr(iq, "type"), "set");
	CU_ASSERT_STRING_EQUAL(attr(iq, "from"), JID);
	CU_ASSERT_STRING_EQUAL(attr(iq, "to"), "localhost");
	snprintf(id, id_size, "%s", attr(iq, "id"));
	xmpp_stanza_t *command = xmpp_stanza_get_child_by_name_and_ns(iq, "command", NS_CMD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(command);
	CU_ASSERT_STRING_EQUAL(attr(command, "node"), node);
	CU_ASSERT_STRING_EQUAL(attr(command, "action"), action);
	return command;
}

static void send_executing(struct harness *h, const char *id, const char *node, const char *form)
{
	fake_send(&h->fake,
	          "<iq to='" JID "' from='localhost' type='result' id='%s'><command "
	          "status='executing' sessionid='sess-1' node='%s' xmlns='" NS_CMD "'><actions "
	          "execute='complete'><complete/></actions>%s</command></iq>",
	          id, node, form);
}

static void send_completed(struct harness *h, const char *id, const char *node)
{
	fake_send(&h->fake,
	          "<iq to='" JID "' from='localhost' type='result' id='%s'><command "
	          "status='completed' sessionid='sess-1' node='%s' xmlns='" NS_CMD
	          "'>" RESULT_FORM("xmpp:alice@localhost?register;preauth=tok") "</command></iq>",
	          id, node);
}

/* ---- two steps ------------------------------------------------------------- */

/* ejabberd: execute, a form, complete with the sessionid and the fields we
 * know (read by var in any order; FORM_TYPE copied back; unknown ignored). */
static void test_two_steps_with_username(void)
{
	struct harness h;
	char id1[64], id2[64], value[128];

	harness_init(&h, NULL, 0, WAIT_MS);
	const struct invite_params params = {.kind = INVITE_ACCOUNT, .username = "alice"};
	struct outcome *o = request(&h, &params);
	xmpp_stanza_t *command =
	    expect_command(&h, NODE_CREATE_ACCOUNT, "execute", id1, sizeof(id1));
	CU_ASSERT_STRING_EQUAL(attr(command, "sessionid"), "");
	CU_ASSERT_PTR_NULL(xmpp_stanza_get_child_by_name(command, "x"));
	send_executing(&h, id1, NODE_CREATE_ACCOUNT, ACCOUNT_FORM);

	command = expect_command(&h, NODE_CREATE_ACCOUNT, "complete", id2, sizeof(id2));
	CU_ASSERT_STRING_NOT_EQUAL(id1, id2); /* a new id for the second step */
	CU_ASSERT_STRING_EQUAL(attr(command, "sessionid"), "sess-1");
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(command, "x", "jabber:x:data");
	CU_ASSERT_STRING_EQUAL(attr(x, "type"), "submit");
	CU_ASSERT_EQUAL(count_fields(x), 3);
	CU_ASSERT_STRING_EQUAL(field_value(x, "FORM_TYPE", value, sizeof(value)),
	                       "urn:xmpp:invite");
	CU_ASSERT_STRING_EQUAL(field_value(x, "username", value, sizeof(value)), "alice");
	CU_ASSERT_STRING_EQUAL(field_value(x, "roster-subscription", value, sizeof(value)),
	                       "false");
	CU_ASSERT_PTR_NULL(field(x, "x-color"));
	CU_ASSERT_EQUAL(component_pending(h.comp), 1);

	/* a repeated answer to the first step is no answer to the second */
	send_executing(&h, id1, NODE_CREATE_ACCOUNT, ACCOUNT_FORM);
	settle(&h, 50);
	CU_ASSERT_EQUAL(o->calls, 0);
	send_completed(&h, id2, NODE_CREATE_ACCOUNT);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_OK);
	CU_ASSERT_STRING_EQUAL(o->uri, "xmpp:alice@localhost?register;preauth=tok");
	CU_ASSERT_EQUAL(component_pending(h.comp), 0);
	settle(&h, 50);
	CU_ASSERT_EQUAL(h.fake.n_taken, h.fake.n_received); /* nothing else sent */
	harness_finish(&h);
}

/* Without a username: no username field, roster-subscription only when the
 * form has it, no FORM_TYPE when the form had none. */
static void test_two_steps_without_username(void)
{
	struct harness h;
	char id[64];

	harness_init(&h, NULL, 0, WAIT_MS);
	const struct invite_params params = {.kind = INVITE_ACCOUNT};
	struct outcome *o = request(&h, &params);
	expect_command(&h, NODE_CREATE_ACCOUNT, "execute", id, sizeof(id));
	send_executing(&h, id, NODE_CREATE_ACCOUNT,
	               "<x type='form' xmlns='jabber:x:data'><field var='username'/></x>");
	xmpp_stanza_t *command =
	    expect_command(&h, NODE_CREATE_ACCOUNT, "complete", id, sizeof(id));
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(command, "x", "jabber:x:data");
	CU_ASSERT_PTR_NOT_NULL(x);
	CU_ASSERT_EQUAL(count_fields(x), 0);
	send_completed(&h, id, NODE_CREATE_ACCOUNT);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_OK);
	harness_finish(&h);
}

/* Prosody completes at once: without a username that is the invite; with
 * one, it was made without it: UNSUPPORTED, said once in the log per host.
 * Once seen, later requests with a username are answered without asking. */
static void test_completed_at_once(void)
{
	static const struct component_host hosts[] = {{"localhost", NULL}};
	struct harness h;
	char id[64];

	harness_init(&h, hosts, 1, WAIT_MS);
	xmpp_stanza_t *disco = next_stanza(&h); /* discovery, left unanswered */
	CU_ASSERT_STRING_EQUAL(attr(disco, "type"), "get");
	log_text(&h);

	const struct invite_params named = {.kind = INVITE_ACCOUNT, .username = "alice"};
	struct outcome *o = request(&h, &named);
	expect_command(&h, NODE_CREATE_ACCOUNT, "execute", id, sizeof(id));
	send_completed(&h, id, NODE_CREATE_ACCOUNT);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_UNSUPPORTED);
	CU_ASSERT_STRING_EQUAL(o->reason, "localhost does not support reserved usernames (its "
	                                  "create-account completes at once)");
	CU_ASSERT_STRING_EQUAL(o->uri, "");
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(&h), "localhost does not support reserved "
	                                            "usernames (its create-account completes at "
	                                            "once); the invite it made is unused\n"));

	/* learned: answered without a command, from the loop, not from inside */
	o = request(&h, &named);
	CU_ASSERT_EQUAL(o->calls, 0);
	CU_ASSERT_EQUAL(component_next_timeout(h.comp), 0);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_UNSUPPORTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(o->reason, "does not support reserved usernames"));
	settle(&h, 50);
	CU_ASSERT_EQUAL(h.fake.n_taken, h.fake.n_received); /* nothing sent */
	CU_ASSERT_STRING_EQUAL(log_text(&h), "");           /* said once */

	/* without a username, the invite is what was asked for */
	const struct invite_params plain = {.kind = INVITE_ACCOUNT};
	o = request(&h, &plain);
	expect_command(&h, NODE_CREATE_ACCOUNT, "execute", id, sizeof(id));
	send_completed(&h, id, NODE_CREATE_ACCOUNT);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_OK);

	/* one answered at once is still answered when the component stops */
	o = request(&h, &named);
	harness_finish(&h);
	CU_ASSERT_EQUAL(o->status, COMPONENT_UNSUPPORTED);
}

/* A form without a username field cannot reserve one: nothing is created,
 * the session is canceled. */
static void test_form_without_username_field(void)
{
	struct harness h;
	char id[64], cancel_id[64];

	harness_init(&h, NULL, 0, WAIT_MS);
	const struct invite_params params = {.kind = INVITE_ACCOUNT, .username = "alice"};
	struct outcome *o = request(&h, &params);
	expect_command(&h, NODE_CREATE_ACCOUNT, "execute", id, sizeof(id));
	send_executing(&h, id, NODE_CREATE_ACCOUNT,
	               "<x type='form' xmlns='jabber:x:data'><field var='roster-subscription' "
	               "type='boolean'/></x>");
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_UNSUPPORTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(o->reason, "no username field"));
	xmpp_stanza_t *command =
	    expect_command(&h, NODE_CREATE_ACCOUNT, "cancel", cancel_id, sizeof(cancel_id));
	CU_ASSERT_STRING_EQUAL(attr(command, "sessionid"), "sess-1");
	CU_ASSERT_PTR_NULL(xmpp_stanza_get_child_by_name(command, "x"));
	/* the answer to the cancel is ignored */
	fake_send(&h.fake,
	          "<iq type='result' from='localhost' id='%s'><command xmlns='" NS_CMD "' "
	          "status='canceled' sessionid='sess-1'/></iq>",
	          cancel_id);
	settle(&h, 50);
	CU_ASSERT_EQUAL(o->calls, 1);
	harness_finish(&h);
}

/* ejabberd's answer to a username already reserved, verbatim (ids aside);
 * then a conflict condition. */
static void test_username_conflict(void)
{
	static const char *const errors[] = {
	    "<error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	    "<text xml:lang='en' xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Username is "
	    "reserved</text></error>",
	    "<error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
	};
	static const char *const conditions[] = {"bad-request", "conflict"};
	struct harness h;
	char id[64];

	harness_init(&h, NULL, 0, WAIT_MS);
	for (int i = 0; i < 2; i++) {
		const struct invite_params params = {.kind = INVITE_ACCOUNT, .username = "bob"};
		struct outcome *o = request(&h, &params);
		expect_command(&h, NODE_CREATE_ACCOUNT, "execute", id, sizeof(id));
		send_executing(&h, id, NODE_CREATE_ACCOUNT, ACCOUNT_FORM);
		expect_command(&h, NODE_CREATE_ACCOUNT, "complete", id, sizeof(id));
		fake_send(&h.fake,
		          "<iq to='" JID "' from='localhost' type='error' id='%s'><command "
		          "action='complete' sessionid='sess-1' node='" NODE_CREATE_ACCOUNT
		          "' xmlns='" NS_CMD "'/>%s</iq>",
		          id, errors[i]);
		CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
		CU_ASSERT_EQUAL(o->status, COMPONENT_CONFLICT);
		CU_ASSERT_STRING_EQUAL(o->condition, conditions[i]);
	}
	/* without a username, a bad-request is just a refusal */
	const struct invite_params plain = {.kind = INVITE_ACCOUNT};
	struct outcome *o = request(&h, &plain);
	expect_command(&h, NODE_CREATE_ACCOUNT, "execute", id, sizeof(id));
	fake_send(&h.fake, "<iq from='localhost' type='error' id='%s'>%s</iq>", id, errors[0]);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_REMOTE_ERROR);
	harness_finish(&h);
}

/* A server that keeps asking is stopped after two round trips. */
static void test_steps_bounded(void)
{
	struct harness h;
	char id[64];

	harness_init(&h, NULL, 0, WAIT_MS);
	const struct invite_params params = {.kind = INVITE_ACCOUNT};
	struct outcome *o = request(&h, &params);
	expect_command(&h, NODE_CREATE_ACCOUNT, "execute", id, sizeof(id));
	send_executing(&h, id, NODE_CREATE_ACCOUNT, ACCOUNT_FORM);
	expect_command(&h, NODE_CREATE_ACCOUNT, "complete", id, sizeof(id));
	send_executing(&h, id, NODE_CREATE_ACCOUNT, ACCOUNT_FORM);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_BAD_REPLY);
	CU_ASSERT_PTR_NOT_NULL(strstr(o->reason, "asked for more input again"));
	expect_command(&h, NODE_CREATE_ACCOUNT, "cancel", id, sizeof(id));
	harness_finish(&h);
}

/* One deadline for the whole exchange, not one per step. */
static void test_timeout_covers_both_steps(void)
{
	struct harness h;
	char id[64];

	harness_init(&h, NULL, 0, 400);
	uint64_t start = now_ms();
	const struct invite_params params = {.kind = INVITE_ACCOUNT};
	struct outcome *o = request(&h, &params);
	expect_command(&h, NODE_CREATE_ACCOUNT, "execute", id, sizeof(id));
	settle(&h, 250);
	send_executing(&h, id, NODE_CREATE_ACCOUNT, ACCOUNT_FORM);
	expect_command(&h, NODE_CREATE_ACCOUNT, "complete", id, sizeof(id));
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_TIMEOUT);
	CU_ASSERT(now_ms() - start < 400 + 300);
	harness_finish(&h);
}

/* The stream lost between the steps: the request fails OFFLINE at once (the
 * daemon's 503), not at its deadline; the server's late completion, after
 * the reconnect, is no answer to anything. */
static void test_disconnect_between_steps(void)
{
	struct harness h;
	char id[64];

	harness_init(&h, NULL, 0, WAIT_MS);
	const struct invite_params params = {.kind = INVITE_ACCOUNT, .username = "alice"};
	struct outcome *o = request(&h, &params);
	expect_command(&h, NODE_CREATE_ACCOUNT, "execute", id, sizeof(id));
	send_executing(&h, id, NODE_CREATE_ACCOUNT, ACCOUNT_FORM);
	expect_command(&h, NODE_CREATE_ACCOUNT, "complete", id, sizeof(id));
	uint64_t start = now_ms();
	fake_close(&h.fake);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_OFFLINE);
	CU_ASSERT(now_ms() - start < 1000);
	CU_ASSERT_EQUAL(component_pending(h.comp), 0);
	uint64_t deadline = now_ms() + WAIT_MS;
	while (!component_online(h.comp) && pump(&h, deadline))
		;
	CU_ASSERT_TRUE_FATAL(component_online(h.comp));
	send_completed(&h, id, NODE_CREATE_ACCOUNT);
	settle(&h, 100);
	CU_ASSERT_EQUAL(o->calls, 1);
	harness_finish(&h);
}

/* ---- password reset ---------------------------------------------------------- */

/* Prosody 13: execute, a form with accountjid, complete; its form verbatim. */
static void test_reset(void)
{
	struct harness h;
	char id[64], value[128];

	harness_init(&h, NULL, 0, WAIT_MS);
	const struct invite_params params = {.kind = INVITE_RESET,
	                                     .account_jid = "alice@localhost"};
	struct outcome *o = request(&h, &params);
	expect_command(&h, NODE_PASSWORD_RESET, "execute", id, sizeof(id));
	send_executing(&h, id, NODE_PASSWORD_RESET,
	               "<x xmlns='jabber:x:data' type='form'><title>Generate Password Reset "
	               "Invite</title><field label='The XMPP ID for the account to generate a "
	               "password reset invite for' type='jid-single' var='accountjid'><required/>"
	               "</field></x>");
	xmpp_stanza_t *command =
	    expect_command(&h, NODE_PASSWORD_RESET, "complete", id, sizeof(id));
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(command, "x", "jabber:x:data");
	CU_ASSERT_EQUAL(count_fields(x), 1);
	CU_ASSERT_STRING_EQUAL(field_value(x, "accountjid", value, sizeof(value)),
	                       "alice@localhost");
	send_completed(&h, id, NODE_PASSWORD_RESET);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_OK);

	/* a reset that completes at once was not for our account */
	o = request(&h, &params);
	expect_command(&h, NODE_PASSWORD_RESET, "execute", id, sizeof(id));
	send_completed(&h, id, NODE_PASSWORD_RESET);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_BAD_REPLY);

	/* invalid parameters are refused at once */
	const struct invite_params none = {.kind = INVITE_RESET};
	CU_ASSERT_EQUAL(component_request_invite(h.comp, "localhost", &none, on_result, NULL), -1);
	const struct invite_params bad = {.kind = INVITE_ACCOUNT, .username = "a\nb"};
	CU_ASSERT_EQUAL(component_request_invite(h.comp, "localhost", &bad, on_result, NULL), -1);
	harness_finish(&h);
}

/* A server without the reset command: UNSUPPORTED (ejabberd's answer first). */
static void test_reset_unsupported(void)
{
	static const char *const conditions[] = {"item-not-found", "feature-not-implemented"};
	struct harness h;
	char id[64];

	harness_init(&h, NULL, 0, WAIT_MS);
	for (int i = 0; i < 2; i++) {
		const struct invite_params params = {.kind = INVITE_RESET,
		                                     .account_jid = "alice@localhost"};
		struct outcome *o = request(&h, &params);
		expect_command(&h, NODE_PASSWORD_RESET, "execute", id, sizeof(id));
		fake_send(&h.fake,
		          "<iq to='" JID "' from='localhost' type='error' id='%s'><error "
		          "type='cancel'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
		          "xml:lang='en' xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>No hook has "
		          "processed this command</text></error></iq>",
		          id, conditions[i]);
		CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
		CU_ASSERT_EQUAL(o->status, COMPONENT_UNSUPPORTED);
		CU_ASSERT_STRING_EQUAL(o->condition, conditions[i]);
		CU_ASSERT_PTR_NOT_NULL(
		    strstr(o->reason, "localhost does not offer password resets"));
	}
	harness_finish(&h);
}

/* ---- privileged IQs (XEP-0356) --------------------------------------------- */

/* The outer IQ to BOT and the inner one to localhost, as ejabberd wants
 * them; returns the inner payload, its id (outer and inner alike) in id. */
static xmpp_stanza_t *expect_privileged(struct harness *h, const char *type, char *id,
                                        size_t id_size)
{
	xmpp_stanza_t *outer = next_stanza(h);
	CU_ASSERT_STRING_EQUAL(xmpp_stanza_get_name(outer), "iq");
	CU_ASSERT_STRING_EQUAL(attr(outer, "type"), type);
	CU_ASSERT_STRING_EQUAL(attr(outer, "from"), JID);
	CU_ASSERT_STRING_EQUAL(attr(outer, "to"), BOT);
	snprintf(id, id_size, "%s", attr(outer, "id"));
	CU_ASSERT_NOT_EQUAL(strlen(id), 0);
	xmpp_stanza_t *wrapper =
	    xmpp_stanza_get_child_by_name_and_ns(outer, "privileged_iq", "urn:xmpp:privilege:2");
	CU_ASSERT_PTR_NOT_NULL_FATAL(wrapper);
	xmpp_stanza_t *inner = xmpp_stanza_get_child_by_name(wrapper, "iq");
	CU_ASSERT_PTR_NOT_NULL_FATAL(inner);
	CU_ASSERT_STRING_EQUAL(attr(inner, "xmlns"), "jabber:client");
	CU_ASSERT_STRING_EQUAL(attr(inner, "type"), type);
	CU_ASSERT_STRING_EQUAL(attr(inner, "from"), BOT);
	CU_ASSERT_STRING_EQUAL(attr(inner, "to"), "localhost");
	CU_ASSERT_STRING_EQUAL(attr(inner, "id"), id);
	return first_tag(inner);
}

/* ejabberd's wrapped reply: type, id, and the inner iq's payload. */
static void send_wrapped(struct harness *h, const char *from, const char *type, const char *id,
                         const char *inner_from, const char *payload)
{
	fake_send(&h->fake,
	          "<iq to='" JID "' from='%s' type='%s' id='%s'><privilege "
	          "xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'><iq "
	          "to='" BOT "' from='%s' type='%s' id='%s' xmlns='jabber:client'>%s</iq>"
	          "</forwarded></privilege></iq>",
	          from, type, id, inner_from, type, id, payload);
}

#define EJABBERD_ITEMS                                                                             \
	"<query node='http://jabber.org/protocol/commands' "                                       \
	"xmlns='http://jabber.org/protocol/disco#items'><item node='urn:xmpp:invite#invite' "      \
	"name='Invite User' jid='localhost'/><item node='urn:xmpp:invite#create-account' "         \
	"name='Create Account' jid='localhost'/><item node='ping' name='Ping' "                    \
	"jid='localhost'/></query>"

static const struct component_host privileged_host[] = {{"localhost", BOT}};

/* Online, privileges granted, discovery answered: as after ejabberd's
 * connect. */
static void start_privileged(struct harness *h)
{
	char id[64];

	harness_init(h, privileged_host, 1, WAIT_MS);
	settle(h, 50);
	CU_ASSERT_EQUAL(h->fake.n_received, 0); /* waits for the privileges */
	fake_send(&h->fake, PRIVILEGE_MESSAGE, "localhost", GRANT_COMMANDS GRANT_DISCO);
	xmpp_stanza_t *query = expect_privileged(h, "get", id, sizeof(id));
	CU_ASSERT_STRING_EQUAL(xmpp_stanza_get_name(query), "query");
	CU_ASSERT_STRING_EQUAL(attr(query, "xmlns"), "http://jabber.org/protocol/disco#items");
	CU_ASSERT_STRING_EQUAL(attr(query, "node"), NS_CMD);
	CU_ASSERT_EQUAL(component_host_offers(h->comp, "localhost", INVITE_ACCOUNT),
	                COMPONENT_OFFER_UNKNOWN);
	send_wrapped(h, BOT, "result", id, "localhost", EJABBERD_ITEMS);
	uint64_t deadline = now_ms() + WAIT_MS;
	while (!component_host_discovered(h->comp, "localhost") && pump(h, deadline))
		;
	CU_ASSERT_EQUAL(component_host_offers(h->comp, "localhost", INVITE_ACCOUNT),
	                COMPONENT_OFFER_YES);
	CU_ASSERT_EQUAL(component_host_offers(h->comp, "localhost", INVITE_RESET),
	                COMPONENT_OFFER_NO);
}

static void test_privileged_flow(void)
{
	struct harness h;
	char id1[64], id2[64], value[64];

	start_privileged(&h);
	const char *log = log_text(&h);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "privileges granted by localhost: message none, "
	                                   "roster none, iq " NS_CMD " set, iq "
	                                   "http://jabber.org/protocol/disco#items get, presence "
	                                   "none\n"));
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(log, " localhost: account invites yes, password resets no\n"));
	CU_ASSERT_PTR_NULL(strstr(log, "did not grant"));

	const struct invite_params params = {.kind = INVITE_ACCOUNT, .username = "alice"};
	struct outcome *o = request(&h, &params);
	xmpp_stanza_t *command = expect_privileged(&h, "set", id1, sizeof(id1));
	CU_ASSERT_STRING_EQUAL(attr(command, "node"), NODE_CREATE_ACCOUNT);
	CU_ASSERT_STRING_EQUAL(attr(command, "action"), "execute");

	/* forged: not wrapped, or wrapped from someone else */
	send_executing(&h, id1, NODE_CREATE_ACCOUNT, ACCOUNT_FORM);
	send_wrapped(&h, "mallory@localhost", "result", id1, "localhost",
	             "<command xmlns='" NS_CMD
	             "' status='completed'>" RESULT_FORM("xmpp:evil") "</command>");
	send_wrapped(&h, "localhost", "result", id1, "localhost",
	             "<command xmlns='" NS_CMD
	             "' status='completed'>" RESULT_FORM("xmpp:evil") "</command>");
	settle(&h, 50);
	CU_ASSERT_EQUAL(o->calls, 0);
	CU_ASSERT_EQUAL(h.fake.n_taken, h.fake.n_received);

	send_wrapped(&h, BOT, "result", id1, "localhost",
	             "<command status='executing' sessionid='u6ry' node='" NODE_CREATE_ACCOUNT
	             "' xmlns='" NS_CMD "'><actions execute='complete'><complete/></actions>"
	             "<x type='form' xmlns='jabber:x:data'><title>Account Creation Invite</title>"
	             "<field var='username' type='text-single' label='Username'/><field "
	             "var='roster-subscription' type='boolean' label='Roster Subscription'/></x>"
	             "</command>");
	command = expect_privileged(&h, "set", id2, sizeof(id2));
	CU_ASSERT_STRING_NOT_EQUAL(id1, id2);
	CU_ASSERT_STRING_EQUAL(attr(command, "action"), "complete");
	CU_ASSERT_STRING_EQUAL(attr(command, "sessionid"), "u6ry");
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(command, "x", "jabber:x:data");
	CU_ASSERT_STRING_EQUAL(field_value(x, "username", value, sizeof(value)), "alice");
	CU_ASSERT_PTR_NULL(field(x, "FORM_TYPE"));
	send_wrapped(&h, "InviteBot@LocalHost", "result", id2, "localhost",
	             "<command status='completed' sessionid='u6ry' node='" NODE_CREATE_ACCOUNT
	             "' xmlns='" NS_CMD
	             "'>" RESULT_FORM("xmpp:alice@localhost?register;preauth=yl4k") "</command>");
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_OK);
	CU_ASSERT_STRING_EQUAL(o->uri, "xmpp:alice@localhost?register;preauth=yl4k");
	harness_finish(&h);
}

/* ejabberd wraps the host's error in an outer error; an outer error that
 * forwards nothing is about the privileged IQ; a forwarded reply from
 * another host is a bad reply. */
static void test_privileged_errors(void)
{
	struct harness h;
	char id[64];

	start_privileged(&h);
	const struct invite_params params = {.kind = INVITE_ACCOUNT, .username = "bob"};
	struct outcome *o = request(&h, &params);
	expect_privileged(&h, "set", id, sizeof(id));
	send_wrapped(&h, BOT, "result", id, "localhost",
	             "<command status='executing' sessionid='s' xmlns='" NS_CMD "'>" ACCOUNT_FORM
	             "</command>");
	expect_privileged(&h, "set", id, sizeof(id));
	send_wrapped(
	    &h, BOT, "error", id, "localhost",
	    "<error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	    "<text xml:lang='en' xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Username is "
	    "reserved</text></error>");
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_CONFLICT);
	CU_ASSERT_STRING_EQUAL(o->reason, "Username is reserved");

	const struct invite_params plain = {.kind = INVITE_ACCOUNT};
	o = request(&h, &plain);
	expect_privileged(&h, "set", id, sizeof(id));
	fake_send(&h.fake,
	          "<iq from='" BOT "' type='error' id='%s'><error type='auth'><forbidden "
	          "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
	          id);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_REMOTE_ERROR);
	CU_ASSERT_STRING_EQUAL(o->condition, "forbidden");

	o = request(&h, &plain);
	expect_privileged(&h, "set", id, sizeof(id));
	send_wrapped(&h, BOT, "result", id, "evil.example",
	             "<command xmlns='" NS_CMD
	             "' status='completed'>" RESULT_FORM("xmpp:evil") "</command>");
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_BAD_REPLY);
	CU_ASSERT_STRING_EQUAL(o->reason, "the forwarded reply is not from localhost");

	o = request(&h, &plain);
	expect_privileged(&h, "set", id, sizeof(id));
	fake_send(&h.fake, "<iq from='" BOT "' type='result' id='%s'/>", id);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_BAD_REPLY);
	CU_ASSERT_STRING_EQUAL(o->reason, "the privileged reply carries no forwarded <iq/>");
	harness_finish(&h);
}

/* An ungranted namespace gets no answer: the timeout says what it may mean. */
static void test_privileged_timeout(void)
{
	struct harness h;
	char id[64];

	harness_init(&h, privileged_host, 1, 300);
	fake_send(&h.fake, PRIVILEGE_MESSAGE, "localhost", GRANT_DISCO);
	expect_privileged(&h, "get", id, sizeof(id));
	uint64_t deadline = now_ms() + WAIT_MS;
	while (!component_host_discovered(h.comp, "localhost") && pump(&h, deadline))
		;
	char line[512];
	component_host_describe(h.comp, "localhost", line, sizeof(line));
	CU_ASSERT_PTR_NOT_NULL(strstr(line,
	                              "localhost: commands unknown (localhost did not answer "
	                              "within 300 ms; no answer to a privileged IQ may mean"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "disco#items get"));
	const char *log = log_text(&h);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "localhost: privileged IQs as " BOT
	                                   " need the iq permission " NS_CMD " set"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, line));

	const struct invite_params plain = {.kind = INVITE_ACCOUNT};
	struct outcome *o = request(&h, &plain);
	expect_privileged(&h, "set", id, sizeof(id));
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o));
	CU_ASSERT_EQUAL(o->status, COMPONENT_TIMEOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(o->reason, "mod_privilege iq permissions: " NS_CMD " set"));
	harness_finish(&h);
}

/* Only the server's privilege message counts; without one, privileged
 * discovery starts after a grace period. */
static void test_privilege_message_from_others(void)
{
	struct harness h;
	char id[64];

	harness_init(&h, privileged_host, 1, WAIT_MS);
	uint64_t start = now_ms();
	fake_send(&h.fake, PRIVILEGE_MESSAGE, "mallory@localhost", GRANT_COMMANDS GRANT_DISCO);
	fake_send(&h.fake, PRIVILEGE_MESSAGE, "localhost/res", GRANT_COMMANDS GRANT_DISCO);
	fake_send(&h.fake, PRIVILEGE_MESSAGE, "evil.example", GRANT_COMMANDS GRANT_DISCO);
	settle(&h, 200);
	CU_ASSERT_EQUAL(h.fake.n_received, 0);
	CU_ASSERT_PTR_NULL(strstr(log_text(&h), "privileges granted"));
	expect_privileged(&h, "get", id, sizeof(id));
	CU_ASSERT(now_ms() - start >= 2500);
	harness_finish(&h);
}

/* ejabberd lists every namespace it grants; a long list is cut in the
 * summary line, but what check --online asks must not be. */
static void test_privilege_message_long(void)
{
	struct harness h;
	char grants[4096] = "";

	harness_init(&h, privileged_host, 1, WAIT_MS);
	for (int i = 0; i < 20; i++) {
		size_t len = strlen(grants);
		snprintf(grants + len, sizeof(grants) - len,
		         "<namespace type='both' ns='urn:example:some-long-namespace:%d'/>", i);
	}
	strcat(grants, GRANT_COMMANDS GRANT_DISCO);
	fake_send(&h.fake, PRIVILEGE_MESSAGE, "localhost", grants);
	settle(&h, 200);
	CU_ASSERT_PTR_NOT_NULL(component_privileges(h.comp));
	CU_ASSERT_TRUE(component_commands_granted(h.comp));
	fake_send(&h.fake, PRIVILEGE_MESSAGE, "localhost", GRANT_DISCO);
	settle(&h, 200);
	CU_ASSERT_FALSE(component_commands_granted(h.comp));
	harness_finish(&h);
}

/* ---- discovery --------------------------------------------------------------- */

static void test_discovery_per_host(void)
{
	static const struct component_host hosts[] = {{"localhost", NULL},
	                                              {"other.localhost", NULL}};
	struct harness h;
	char ids[2][64];

	harness_init(&h, hosts, 2, WAIT_MS);
	for (int i = 0; i < 2; i++) {
		xmpp_stanza_t *iq = next_stanza(&h);
		CU_ASSERT_STRING_EQUAL(attr(iq, "type"), "get");
		CU_ASSERT_STRING_EQUAL(attr(iq, "from"), JID);
		CU_ASSERT_STRING_EQUAL(attr(iq, "to"), hosts[i].name);
		xmpp_stanza_t *query = xmpp_stanza_get_child_by_name_and_ns(
		    iq, "query", "http://jabber.org/protocol/disco#items");
		CU_ASSERT_STRING_EQUAL(attr(query, "node"), NS_CMD);
		snprintf(ids[i], sizeof(ids[i]), "%s", attr(iq, "id"));
	}
	CU_ASSERT_EQUAL(component_pending(h.comp), 0); /* discovery is not a request */
	CU_ASSERT_FALSE(component_host_discovered(h.comp, "localhost"));
	CU_ASSERT_EQUAL(component_host_offers(h.comp, "localhost", INVITE_RESET),
	                COMPONENT_OFFER_UNKNOWN);

	/* Prosody 13's answer, and a refusal */
	fake_send(&h.fake,
	          "<iq id='%s' to='" JID "' from='localhost' type='result'><query "
	          "xmlns='http://jabber.org/protocol/disco#items' node='" NS_CMD "'><item "
	          "name='Create new account invite' node='urn:xmpp:invite#create-account' "
	          "jid='localhost'/><item name='Create password reset invite' "
	          "node='xmpp:prosody.im/mod_invites_adhoc#password-reset' jid='localhost'/>"
	          "</query></iq>",
	          ids[0]);
	fake_send(&h.fake,
	          "<iq id='%s' from='other.localhost' type='error'><error type='auth'><forbidden "
	          "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
	          ids[1]);
	uint64_t deadline = now_ms() + WAIT_MS;
	while (!component_host_discovered(h.comp, "other.localhost") && pump(&h, deadline))
		;
	CU_ASSERT_EQUAL(component_host_offers(h.comp, "LocalHost", INVITE_ACCOUNT),
	                COMPONENT_OFFER_YES);
	CU_ASSERT_EQUAL(component_host_offers(h.comp, "localhost", INVITE_RESET),
	                COMPONENT_OFFER_YES);
	CU_ASSERT_EQUAL(component_host_offers(h.comp, "other.localhost", INVITE_ACCOUNT),
	                COMPONENT_OFFER_UNKNOWN);
	CU_ASSERT_EQUAL(component_host_offers(h.comp, "nowhere", INVITE_ACCOUNT),
	                COMPONENT_OFFER_UNKNOWN);
	const char *log = log_text(&h);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, " info localhost: account invites yes, password "
	                                   "resets yes\n"));
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(log, " warn other.localhost: commands unknown (forbidden) (invites-api check "
	                "--online prints what to change on the server)\n"));

	/* a reconnect forgets and asks again; an empty list is "no" */
	fake_close(&h.fake);
	deadline = now_ms() + WAIT_MS;
	while (h.fake.n_received < 4 && pump(&h, deadline))
		;
	CU_ASSERT_FALSE(component_host_discovered(h.comp, "localhost"));
	CU_ASSERT_EQUAL(component_host_offers(h.comp, "localhost", INVITE_ACCOUNT),
	                COMPONENT_OFFER_UNKNOWN);
	for (int i = 0; i < 2; i++) {
		xmpp_stanza_t *iq = next_stanza(&h);
		fake_send(&h.fake,
		          "<iq id='%s' from='%s' type='result'><query "
		          "xmlns='http://jabber.org/protocol/disco#items' node='" NS_CMD "'/></iq>",
		          attr(iq, "id"), attr(iq, "to"));
	}
	deadline = now_ms() + WAIT_MS;
	while (!component_host_discovered(h.comp, "other.localhost") && pump(&h, deadline))
		;
	char line[256];
	component_host_describe(h.comp, "other.localhost", line, sizeof(line));
	CU_ASSERT_STRING_EQUAL(line, "other.localhost: account invites no, password resets no");
	CU_ASSERT_EQUAL(component_host_offers(h.comp, "localhost", INVITE_ACCOUNT),
	                COMPONENT_OFFER_NO);
	harness_finish(&h);
}

static void test_host_config_errors(void)
{
	static const struct component_host bad[][1] = {
	    {{"user@localhost", NULL}},
	    {{"localhost", "localhost"}},
	    {{"localhost", "bot@other.localhost"}},
	    {{"localhost", "bot@localhost/res"}},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct component_config cfg = {.jid = JID,
		                               .secret = SECRET,
		                               .server = "127.0.0.1",
		                               .request_timeout_ms = 1000,
		                               .hosts = bad[i],
		                               .n_hosts = 1};
		const char *err = NULL;
		CU_ASSERT_PTR_NULL(component_create(&cfg, &err));
		CU_ASSERT_PTR_NOT_NULL(err);
	}
}

static const struct unit_test tests[] = {
    {"two steps with a username (ejabberd)", test_two_steps_with_username},
    {"two steps without a username", test_two_steps_without_username},
    {"completed at once (Prosody), with and without a username", test_completed_at_once},
    {"a form without a username field", test_form_without_username_field},
    {"username reserved or taken: conflict", test_username_conflict},
    {"steps are bounded", test_steps_bounded},
    {"one timeout over both steps", test_timeout_covers_both_steps},
    {"the stream lost between the steps", test_disconnect_between_steps},
    {"password reset (Prosody 13)", test_reset},
    {"password reset unsupported", test_reset_unsupported},
    {"privileged: wrapping, unwrapping, forged replies ignored", test_privileged_flow},
    {"privileged: errors", test_privileged_errors},
    {"privileged: timeout names the permission", test_privileged_timeout},
    {"privilege message only from the server", test_privilege_message_from_others},
    {"a long privilege message", test_privilege_message_long},
    {"discovery per host, log lines, reconnect", test_discovery_per_host},
    {"host table errors", test_host_config_errors},
    {NULL, NULL},
};

UNIT_MAIN("flow", tests)
