/*
 * Hostile input on the XMPP side, from the scripted fake server of
 * fake_xmpp.h: what Prosody itself would never send, or what only a broken or
 * compromised server could. Replies from the wrong sender with a pending id,
 * replies for ids never sent, error replies, replies without the form or with
 * missing or huge fields, huge and malformed stanzas. Each request must end
 * with exactly one clean outcome (or keep waiting when the stanza is not its
 * answer), nothing may be answered that should not be, and the component must
 * stay up. The suite runs under ASan and valgrind in scripts/test.sh, which
 * covers "nothing leaks".
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

#include "component/component.h"
#include "fake_xmpp.h"
#include "unit.h"

#define JID     "invites.localhost"
#define SECRET  "s3cret"
#define MIB     ((size_t)1024 * 1024)
#define WAIT_MS 20000 /* upper bound of every wait: valgrind is slow */

#define RESULT_HEAD                                                                                \
	"<iq from='%s' type='result' id='%s' to='" JID "'>"                                        \
	"<command node='urn:xmpp:invite#create-account' sessionid='s-1' "                          \
	"xmlns='http://jabber.org/protocol/commands' status='completed'>"                          \
	"<x xmlns='jabber:x:data' type='form'>"
#define RESULT_TAIL       "</x></command></iq>"
#define FIELD(var, value) "<field var='" var "' type='text-single'><value>" value "</value></field>"
#define RESULT_FIELDS(uri)                                                                         \
	FIELD("landing-url", "http://localhost/invites_page?t")                                    \
	FIELD("uri", uri) FIELD("expire", "2026-12-10T16:04:47Z")

struct outcome {
	int calls;
	enum component_status status;
	char uri[256], condition[64], reason[512];
};

struct harness {
	struct fake fake;
	struct component *comp;
	struct outcome outcomes[32];
	int n_outcomes, accepted, callbacks;
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

static void wait_online(struct harness *h)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	while (!component_online(h->comp) && pump(h, deadline))
		;
	CU_ASSERT_TRUE_FATAL(component_online(h->comp));
}

static void harness_init(struct harness *h, unsigned timeout_ms)
{
	struct component_config cfg = {
	    .jid = JID,
	    .secret = SECRET,
	    .server = "127.0.0.1",
	    .request_timeout_ms = timeout_ms,
	};
	const char *err = NULL;

	signal(SIGPIPE, SIG_IGN);
	memset(h, 0, sizeof(*h));
	fake_init(&h->fake, JID, SECRET, false);
	cfg.port = h->fake.port;
	h->comp = component_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h->comp);
	CU_ASSERT_EQUAL_FATAL(component_start(h->comp), 0);
	wait_online(h);
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
}

static const char *attr(xmpp_stanza_t *s, const char *name)
{
	const char *v = s ? xmpp_stanza_get_attribute(s, name) : NULL;
	return v ? v : "";
}

/* A create-account request to host; its IQ id into id. */
static struct outcome *request(struct harness *h, const char *host, char *id, size_t id_size)
{
	CU_ASSERT_FATAL(h->n_outcomes < 32);
	struct outcome *o = &h->outcomes[h->n_outcomes++];
	CU_ASSERT_EQUAL_FATAL(component_create_invite(h->comp, host, on_result, o), 0);
	xmpp_stanza_t *iq = fake_next_stanza(&h->fake, h->comp, WAIT_MS, 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(iq);
	CU_ASSERT_STRING_EQUAL(attr(iq, "to"), host);
	snprintf(id, id_size, "%s", attr(iq, "id"));
	return o;
}

static bool wait_outcome(struct harness *h, struct outcome *o, unsigned ms)
{
	uint64_t deadline = now_ms() + ms;
	while (o->calls == 0 && pump(h, deadline))
		;
	return o->calls > 0;
}

/* Nothing was sent back, and the component is still up and answering. */
static void check_quiet_and_alive(struct harness *h)
{
	settle(h, 100);
	CU_ASSERT_EQUAL(h->fake.n_taken, h->fake.n_received);
	CU_ASSERT_TRUE_FATAL(component_online(h->comp));
	fake_send(&h->fake, "<iq type='get' id='alive' from='localhost' to='" JID "'>"
	                    "<ping xmlns='urn:xmpp:ping'/></iq>");
	xmpp_stanza_t *pong = fake_next_stanza(&h->fake, h->comp, WAIT_MS, 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pong);
	CU_ASSERT_STRING_EQUAL(attr(pong, "id"), "alive");
	CU_ASSERT_STRING_EQUAL(attr(pong, "type"), "result");
	CU_ASSERT_EQUAL(h->fake.accepts, 1); /* never reconnected */
	fake_forget_taken(&h->fake);
}

/* A reason as the HTTP side will show it: one line of bounded length. */
static void check_reason_line(const struct outcome *o)
{
	CU_ASSERT(strlen(o->reason) > 0);
	CU_ASSERT(strlen(o->reason) < 256);
	for (const char *p = o->reason; *p; p++)
		CU_ASSERT((unsigned char)*p >= ' ' && *p != 0x7f);
}

/* A string of n copies of c, malloc'd. */
static char *filled(char c, size_t n)
{
	char *s = malloc(n + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Send head, then n bytes of c, then tail, as one stanza. */
static void send_with_filler(struct harness *h, const char *head, char c, size_t n,
                             const char *tail)
{
	size_t head_len = strlen(head), tail_len = strlen(tail);
	char *buf = filled(c, head_len + n + tail_len);
	memcpy(buf, head, head_len);
	memcpy(buf + head_len + n, tail, tail_len);
	CU_ASSERT_TRUE_FATAL(
	    fake_send_bytes(&h->fake, h->comp, buf, head_len + n + tail_len, WAIT_MS));
	free(buf);
}

/* ---- tests --------------------------------------------------------------- */

/* Only a result or error from the host that was asked answers a request. */
static void test_wrong_sender_with_pending_id(void)
{
	static const char *const impostors[] = {
	    "other.localhost",        /* another host the component may serve */
	    JID,                      /* the component itself */
	    "admin@localhost",        /* a user of the host */
	    "admin@localhost/res",    /* the same with a resource */
	    "localhost@localhost",    /* a node named like the host */
	    "localhost.evil.example", /* a longer domain starting with the host */
	    "evil.localhost",         /* a subdomain */
	    "localhos",               /* a prefix */
	    "",                       /* empty */
	    "localhost\xc2\xa0",      /* trailing non-breaking space */
	};
	struct harness h;
	char id[128];

	harness_init(&h, 2 * WAIT_MS);
	struct outcome *o = request(&h, "localhost", id, sizeof(id));
	for (size_t i = 0; i < sizeof(impostors) / sizeof(impostors[0]); i++)
		fake_send(&h.fake, RESULT_HEAD RESULT_FIELDS("xmpp:evil?preauth=x") RESULT_TAIL,
		          impostors[i], id);
	/* no from at all, and the right sender with the wrong types */
	fake_send(&h.fake,
	          "<iq type='result' id='%s' to='" JID "'><command "
	          "xmlns='http://jabber.org/protocol/commands' status='completed'/></iq>",
	          id);
	fake_send(&h.fake, "<message from='localhost' id='%s' type='error'/>", id);
	fake_send(&h.fake, "<presence from='localhost' id='%s' type='error'/>", id);
	settle(&h, 150);
	CU_ASSERT_EQUAL(o->calls, 0);
	CU_ASSERT_EQUAL(component_pending(h.comp), 1);

	/* a get or set with the pending id is a request to us, not the answer */
	fake_send(&h.fake,
	          "<iq type='set' from='localhost' id='%s' to='" JID "'>"
	          "<command xmlns='http://jabber.org/protocol/commands' "
	          "node='urn:xmpp:invite#create-account' status='completed'/></iq>",
	          id);
	xmpp_stanza_t *answer = fake_next_stanza(&h.fake, h.comp, WAIT_MS, 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(answer);
	CU_ASSERT_STRING_EQUAL(attr(answer, "type"), "error");
	CU_ASSERT_EQUAL(o->calls, 0);

	/* the real answer still gets through, and only it counts */
	fake_send(&h.fake,
	          RESULT_HEAD RESULT_FIELDS("xmpp:localhost?register;preauth=good") RESULT_TAIL,
	          "LocalHost", id);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o, WAIT_MS));
	CU_ASSERT_EQUAL(o->status, COMPONENT_OK);
	CU_ASSERT_STRING_EQUAL(o->uri, "xmpp:localhost?register;preauth=good");
	check_quiet_and_alive(&h);
	harness_finish(&h);
}

/* Results and errors for ids the component never sent are ignored, never
 * answered (an answer to a result could loop between two entities). */
static void test_ids_never_sent(void)
{
	struct harness h;
	char id[128];

	harness_init(&h, 2 * WAIT_MS);
	struct outcome *o = request(&h, "localhost", id, sizeof(id));
	fake_send(&h.fake, RESULT_HEAD RESULT_FIELDS("xmpp:x") RESULT_TAIL, "localhost",
	          "never-sent");
	fake_send(&h.fake, "<iq type='error' from='localhost' id='%.8s' to='" JID "'/>", id);
	fake_send(&h.fake, "<iq type='result' from='localhost' id='' to='" JID "'/>");
	fake_send(&h.fake, "<iq type='error' from='localhost' to='" JID "'/>");
	fake_send(&h.fake, "<iq type='result' from='localhost' id='%s%s' to='" JID "'/>", id, id);
	check_quiet_and_alive(&h);
	CU_ASSERT_EQUAL(o->calls, 0);
	CU_ASSERT_EQUAL(component_pending(h.comp), 1);
	harness_finish(&h);
}

/* A large start tag (here a long id) must not hold back the stanzas behind
 * it. Expat's reparse deferral (CVE-2023-52425 fix, in Debian 12's expat)
 * kept a partial token until the buffered input doubled, so on a quiet
 * stream the ping after such a stanza, or the answer to a request, waited
 * for traffic that might never come. */
static void test_large_start_tag_then_more(void)
{
	static const size_t sizes[] = {4100, 8000, 12000, 20000, 65536};
	struct harness h;
	char id[128], head[128];

	harness_init(&h, 2 * WAIT_MS);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(head, sizeof(head),
		         "<iq type='result' from='localhost' to='" JID "' id='");
		send_with_filler(&h, head, 'a', sizes[i], "'/>");
		check_quiet_and_alive(&h);
	}

	/* the same before the answer to a pending request */
	struct outcome *o = request(&h, "localhost", id, sizeof(id));
	send_with_filler(&h, "<message from='a@localhost' to='" JID "' id='", 'b', 8000, "'/>");
	fake_send(&h.fake,
	          RESULT_HEAD RESULT_FIELDS("xmpp:localhost?register;preauth=ok") RESULT_TAIL,
	          "localhost", id);
	CU_ASSERT_TRUE(wait_outcome(&h, o, WAIT_MS));
	CU_ASSERT_EQUAL(o->status, COMPONENT_OK);
	harness_finish(&h);
}

/* Error replies of every shape end the request as a remote error (502) with
 * a one-line reason of bounded length. */
static void test_error_replies(void)
{
	static const struct {
		const char *body, *condition, *reason;
	} cases[] = {
	    {"", "undefined-condition", "undefined-condition"},
	    {"<error type='cancel'/>", "undefined-condition", "undefined-condition"},
	    {"<error type='cancel'><gone xmlns='urn:other'/></error>", "undefined-condition",
	     "undefined-condition"},
	    {"<error type='wait'><resource-constraint "
	     "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
	     "resource-constraint", "resource-constraint"},
	    {"<error type='auth'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>two\n"
	     "\tlines </text><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
	     "forbidden", "two lines"},
	    {"<error><made-up-condition-that-is-far-too-long-to-keep-in-the-condition-buffer-x"
	     " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
	     "made-up-condition-that-is-far-too-long-to-keep-in-the-condition",
	     "made-up-condition-that-is-far-too-long-to-keep-in-the-condition-buffer-x"},
	};
	struct harness h;
	char id[128];

	harness_init(&h, 2 * WAIT_MS);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct outcome *o = request(&h, "localhost", id, sizeof(id));
		fake_send(&h.fake, "<iq type='error' from='localhost' id='%s' to='" JID "'>%s</iq>",
		          id, cases[i].body);
		CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o, WAIT_MS));
		CU_ASSERT_EQUAL(o->status, COMPONENT_REMOTE_ERROR);
		CU_ASSERT_STRING_EQUAL(o->condition, cases[i].condition);
		CU_ASSERT_STRING_EQUAL(o->reason, cases[i].reason);
		check_reason_line(o);
	}

	/* a 256 KiB error text: cut to one short line */
	struct outcome *o = request(&h, "localhost", id, sizeof(id));
	char head[512];
	snprintf(head, sizeof(head),
	         "<iq type='error' from='localhost' id='%s' to='" JID "'><error type='cancel'>"
	         "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	         "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>",
	         id);
	send_with_filler(&h, head, 'e', 256 * 1024, "</text></error></iq>");
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o, WAIT_MS));
	CU_ASSERT_EQUAL(o->status, COMPONENT_REMOTE_ERROR);
	CU_ASSERT_STRING_EQUAL(o->condition, "conflict");
	check_reason_line(o);
	CU_ASSERT_EQUAL(strspn(o->reason, "e"), strlen(o->reason));
	check_quiet_and_alive(&h);
	harness_finish(&h);
}

/* Results without the form, or with missing, empty or unusable fields, end
 * the request as a bad reply (502) that says what was wrong. */
static void test_results_without_usable_form(void)
{
	static const struct {
		const char *command, *reason;
	} cases[] = {
	    {"", "the reply has no <command/> element"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='completed'/>",
	     "the completed command has no data form"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='completed'>"
	     "<x xmlns='urn:not-a-form'>" FIELD("uri", "xmpp:x") "</x></command>",
	     "the completed command has no data form"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='completed'>"
	     "<x xmlns='jabber:x:data'/></command>",
	     "the invite form has no uri value"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='completed'>"
	     "<x xmlns='jabber:x:data'><field var='uri'/>" FIELD("landing-url",
	                                                         "http://x/") "</x></command>",
	     "the invite form has no uri value"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='completed'>"
	     "<x xmlns='jabber:x:data'>" FIELD("uri", "") "</x></command>",
	     "the invite form has no uri value"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='completed'>"
	     "<x xmlns='jabber:x:data'>" FIELD("uri", "https://evil.example/") "</x></command>",
	     "the uri value is not an xmpp: URI"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='completed'>"
	     "<x xmlns='jabber:x:data'>" FIELD("uri", "xmpp:ok")
	         FIELD("landing-url", "javascript:alert(document.cookie)") "</x></command>",
	     "the landing-url value is not an http(s) URL"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='completed'>"
	     "<x xmlns='jabber:x:data'>" FIELD("uri", "xmpp:ok")
	         FIELD("landing-url", "data:text/html,&lt;script&gt;") "</x></command>",
	     "the landing-url value is not an http(s) URL"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='completed'>"
	     "<x xmlns='jabber:x:data'>" FIELD("uri",
	                                       "xmpp:a&#10;Set-Cookie: x=1") "</x></command>",
	     "the uri field contains control characters"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='executing'>"
	     "<x xmlns='jabber:x:data' type='form'/></command>",
	     "the server asked for more input without a usable sessionid"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='executing' "
	     "sessionid='s&#10;1'><x xmlns='jabber:x:data' type='form'/></command>",
	     "the server asked for more input without a usable sessionid"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='executing' "
	     "sessionid='s1'/>",
	     "the server asked for more input without a data form"},
	    {"<command xmlns='http://jabber.org/protocol/commands' status='bogus\x7f'/>",
	     "unknown command status 'bogus '"},
	};
	struct harness h;
	char id[128];

	harness_init(&h, 2 * WAIT_MS);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct outcome *o = request(&h, "localhost", id, sizeof(id));
		fake_send(&h.fake,
		          "<iq type='result' from='localhost' id='%s' to='" JID "'>%s</iq>", id,
		          cases[i].command);
		CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o, WAIT_MS));
		CU_ASSERT_EQUAL(o->status, COMPONENT_BAD_REPLY);
		CU_ASSERT_STRING_EQUAL(o->reason, cases[i].reason);
		CU_ASSERT_STRING_EQUAL(o->uri, "");
		check_reason_line(o);
	}
	check_quiet_and_alive(&h);
	harness_finish(&h);
}

/* A field value over 4096 bytes (up to a 1 MiB uri) is refused, not copied
 * to the HTTP answer, whichever field it is in; the component stays up. */
static void test_huge_fields(void)
{
	static const struct {
		const char *before, *after, *reason;
		size_t size;
	} cases[] = {
	    {"<field var='uri'><value>xmpp:", "</value></field>",
	     "the uri field is longer than 4096 bytes", MIB},
	    {FIELD("uri", "xmpp:ok") "<field var='landing-url'><value>http://x/",
	     "</value></field>", "the landing-url field is longer than 4096 bytes", 4097},
	    {FIELD("uri", "xmpp:ok") "<field var='expire'><value>", "</value></field>",
	     "the expire field is longer than 4096 bytes", 64 * 1024},
	};
	struct harness h;
	char id[128], head[1024];

	harness_init(&h, 2 * WAIT_MS);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct outcome *o = request(&h, "localhost", id, sizeof(id));
		snprintf(head, sizeof(head), RESULT_HEAD "%s", "localhost", id, cases[i].before);
		char tail[256];
		snprintf(tail, sizeof(tail), "%s" RESULT_TAIL, cases[i].after);
		send_with_filler(&h, head, 'u', cases[i].size, tail);
		CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o, WAIT_MS));
		CU_ASSERT_EQUAL(o->status, COMPONENT_BAD_REPLY);
		CU_ASSERT_STRING_EQUAL(o->reason, cases[i].reason);
		CU_ASSERT_STRING_EQUAL(o->uri, "");
	}

	/* many fields: only the known ones are read, the first of each wins */
	struct outcome *o = request(&h, "localhost", id, sizeof(id));
	snprintf(head, sizeof(head), RESULT_HEAD FIELD("uri", "xmpp:first"), "localhost", id);
	size_t n = 2000;
	char *fields = malloc(n * 128);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fields);
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(
		    fields + len, i % 2 ? FIELD("uri", "xmpp:later%zu") : FIELD("x-%zu", "junk"),
		    i);
	fake_send(&h.fake, "%s", head);
	CU_ASSERT_TRUE_FATAL(fake_send_bytes(&h.fake, h.comp, fields, len, WAIT_MS));
	fake_send(&h.fake, RESULT_TAIL);
	free(fields);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o, WAIT_MS));
	CU_ASSERT_EQUAL(o->status, COMPONENT_OK);
	CU_ASSERT_STRING_EQUAL(o->uri, "xmpp:first");
	check_quiet_and_alive(&h);
	harness_finish(&h);
}

/* Large stanzas that are not answers (a 256 KiB message, a 256 KiB IQ set
 * to an unknown namespace, 2,000 nested elements) are dropped or refused; the
 * pending request is unaffected. 256 KiB is Prosody's default limit on what a
 * user may send (c2s_stanza_size_limit); libstrophe 0.12.2 joins text with
 * strncat(), quadratic in its length, so much more makes valgrind crawl. */
static void test_huge_unrelated_stanzas(void)
{
	struct harness h;
	char id[128];

	harness_init(&h, 2 * WAIT_MS);
	struct outcome *o = request(&h, "localhost", id, sizeof(id));
	send_with_filler(&h, "<message from='a@localhost' to='" JID "'><body>", 'm', 256 * 1024,
	                 "</body></message>");
	send_with_filler(&h,
	                 "<iq type='set' id='big' from='a@localhost/r' to='" JID "'>"
	                 "<query xmlns='urn:example:unknown'><data>",
	                 'q', 256 * 1024, "</data></query></iq>");
	xmpp_stanza_t *answer = fake_next_stanza(&h.fake, h.comp, WAIT_MS, 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(answer);
	CU_ASSERT_STRING_EQUAL(attr(answer, "id"), "big");
	CU_ASSERT_STRING_EQUAL(attr(answer, "type"), "error");
	CU_ASSERT_STRING_EQUAL(attr(answer, "to"), "a@localhost/r");
	fake_forget_taken(&h.fake);
	/* deeply nested elements */
	fake_send(&h.fake, "<message from='a@localhost' to='" JID "'>");
	for (int i = 0; i < 2000; i++)
		CU_ASSERT_TRUE_FATAL(fake_send_bytes(&h.fake, h.comp, "<a>", 3, WAIT_MS));
	for (int i = 0; i < 2000; i++)
		CU_ASSERT_TRUE_FATAL(fake_send_bytes(&h.fake, h.comp, "</a>", 4, WAIT_MS));
	fake_send(&h.fake, "</message>");
	check_quiet_and_alive(&h);
	CU_ASSERT_EQUAL(o->calls, 0);

	fake_send(&h.fake,
	          RESULT_HEAD RESULT_FIELDS("xmpp:localhost?register;preauth=ok") RESULT_TAIL,
	          "localhost", id);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o, WAIT_MS));
	CU_ASSERT_EQUAL(o->status, COMPONENT_OK);
	harness_finish(&h);
}

/* Malformed XML on the stream (here: a DOCTYPE with an entity, which XMPP
 * forbids) cannot be parsed around: the component drops the stream, fails
 * the pending request as offline (503) and connects again. */
static void test_malformed_stream(void)
{
	struct harness h;
	char id[128];

	harness_init(&h, 2 * WAIT_MS);
	struct outcome *o = request(&h, "localhost", id, sizeof(id));
	fake_send(&h.fake,
	          "<!DOCTYPE x [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;'>]>"
	          "<iq type='result' from='localhost' id='%s'>&b;</iq>",
	          id);
	CU_ASSERT_TRUE_FATAL(wait_outcome(&h, o, WAIT_MS));
	CU_ASSERT_EQUAL(o->status, COMPONENT_OFFLINE);
	CU_ASSERT_EQUAL(h.fake.stream_errors, 1); /* invalid-xml, once */
	CU_ASSERT_TRUE(h.fake.got_stream_close);  /* and the component closed */
	check_reason_line(o);
	uint64_t deadline = now_ms() + WAIT_MS;
	while (h.fake.handshakes < 2 && pump(&h, deadline))
		;
	CU_ASSERT_EQUAL(h.fake.handshakes, 2);
	wait_online(&h);
	harness_finish(&h);
}

static const struct unit_test tests[] = {
    {"reply from the wrong sender with a pending id", test_wrong_sender_with_pending_id},
    {"results and errors for ids never sent", test_ids_never_sent},
    {"a large start tag does not hold back what follows", test_large_start_tag_then_more},
    {"error replies of every shape", test_error_replies},
    {"results without a usable form", test_results_without_usable_form},
    {"huge field values and many fields", test_huge_fields},
    {"huge stanzas that are not answers", test_huge_unrelated_stanzas},
    {"malformed XML on the stream", test_malformed_stream},
    {NULL, NULL},
};

UNIT_MAIN("hostile_xmpp", tests)
