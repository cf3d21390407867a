/*
 * The component against the scripted fake XMPP server of fake_xmpp.h, served
 * from the same poll loop as the component, so every test is single-threaded
 * and every wait is bounded by a deadline.
 *
 * The first test sends a stanza after the handshake: it guards the remedy for
 * libstrophe 0.12.2's component mode (see prime_connection()).
 */

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strophe.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#include "component/component.h"
#include "fake_xmpp.h"
#include "unit.h"

#define JID    "invites.localhost"
#define SECRET "s3cret"

/* Prosody 0.12.3's answers, verbatim but for the id. */
#define PROSODY_RESULT                                                                             \
	"<iq from='%s' type='result' id='%s' to='invites.localhost'>"                              \
	"<command node='urn:xmpp:invite#create-account' sessionid='s-1' "                          \
	"xmlns='http://jabber.org/protocol/commands' status='completed'>"                          \
	"<x xmlns='jabber:x:data' type='form'><title>Your invite has been created</title>"         \
	"<field var='landing-url' label='Invite web page' type='text-single'>"                     \
	"<desc>Share this "                                                                        \
	"link</desc><value>http://localhost:25280/invites_page?%s</value></field>"                 \
	"<field var='uri' label='Invite URI' type='text-single'><desc>This alternative link can "  \
	"be opened with some XMPP clients</desc><value>xmpp:localhost?register;preauth=%s</value>" \
	"</field><field var='expire' label='Invite valid until' type='text-single'>"               \
	"<value>2026-12-10T16:04:47Z</value></field></x></command></iq>"
#define PROSODY_FORBIDDEN                                                                          \
	"<iq from='%s' type='error' id='%s' to='invites.localhost'><error type='auth'>"            \
	"<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"                                 \
	"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>You don&apos;t have permission to "     \
	"execute this command</text></error><command node='urn:xmpp:invite#create-account' "       \
	"xmlns='http://jabber.org/protocol/commands' status='canceled'><note type='error'>You "    \
	"don&apos;t have permission to execute this command</note></command></iq>"

struct probe {
	struct harness *h;
	int calls;
	enum component_status status;
	bool has_invite, has_condition, has_reason;
	char uri[128], landing[128], expire[64], condition[64], reason[256];
};

struct harness {
	struct fake fake;
	struct component *comp;
	bool in_create;
	int calls_inside_create;
	int accepted, callbacks;
	struct probe probes[16];
	int n_probes;
};

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* ---- harness ------------------------------------------------------------- */

static void on_result(void *userdata, const struct component_result *r)
{
	struct probe *p = userdata;

	p->calls++;
	p->h->callbacks++;
	if (p->h->in_create)
		p->h->calls_inside_create++;
	p->status = r->status;
	p->has_invite = r->invite != NULL;
	p->has_condition = r->condition != NULL;
	p->has_reason = r->reason != NULL;
	if (r->invite) {
		copy(p->uri, sizeof(p->uri), r->invite->uri);
		copy(p->landing, sizeof(p->landing), r->invite->landing_url);
		copy(p->expire, sizeof(p->expire), r->invite->expire);
	}
	copy(p->condition, sizeof(p->condition), r->condition);
	copy(p->reason, sizeof(p->reason), r->reason);
}

static struct component *make_component(unsigned short port, unsigned timeout_ms)
{
	struct component_config cfg = {
	    .jid = JID,
	    .secret = SECRET,
	    .server = "127.0.0.1",
	    .port = port,
	    .request_timeout_ms = timeout_ms,
	};
	const char *err = NULL;
	struct component *comp = component_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL(comp);
	CU_ASSERT_PTR_NULL(err);
	return comp;
}

/* The fake server and a component for it, not started. */
static void harness_make(struct harness *h, bool reject_secret, unsigned timeout_ms)
{
	signal(SIGPIPE, SIG_IGN); /* the daemon does the same */
	memset(h, 0, sizeof(*h));
	fake_init(&h->fake, JID, SECRET, reject_secret);
	h->comp = make_component(h->fake.port, timeout_ms);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h->comp);
}

static void harness_init(struct harness *h, bool reject_secret, unsigned timeout_ms)
{
	harness_make(h, reject_secret, timeout_ms);
	CU_ASSERT_EQUAL(component_start(h->comp), 0);
}

/* One turn of the event loop; false once deadline has passed. */
static bool pump(struct harness *h, uint64_t deadline)
{
	return fake_pump(&h->fake, h->comp, deadline, 50);
}

static uint64_t within(unsigned ms)
{
	return now_ms() + ms;
}

static void settle(struct harness *h, unsigned ms)
{
	uint64_t deadline = within(ms);
	while (pump(h, deadline))
		;
}

static struct probe *request(struct harness *h, const char *host)
{
	CU_ASSERT_FATAL(h->n_probes < 16);
	struct probe *p = &h->probes[h->n_probes++];
	p->h = h;
	h->in_create = true;
	int rc = component_create_invite(h->comp, host, on_result, p);
	h->in_create = false;
	if (rc == 0)
		h->accepted++;
	else
		h->n_probes--; /* no callback will come */
	return rc == 0 ? p : NULL;
}

/* The next stanza the fake received, waiting for it if need be. */
static xmpp_stanza_t *next_stanza(struct harness *h)
{
	return fake_next_stanza(&h->fake, h->comp, 2000, 50);
}

/* Run the loop until the component is online (or not), at most ms. */
static void wait_online_within(struct harness *h, bool online, unsigned ms)
{
	uint64_t deadline = within(ms);
	while (component_online(h->comp) != online && pump(h, deadline))
		;
	CU_ASSERT_EQUAL_FATAL(component_online(h->comp), online);
}

static void wait_online(struct harness *h)
{
	wait_online_within(h, true, 2000);
}

static bool wait_calls(struct harness *h, struct probe *p, unsigned ms)
{
	uint64_t deadline = within(ms);
	while (p->calls == 0 && pump(h, deadline))
		;
	return p->calls > 0;
}

/* Every accepted request got exactly one callback, none from inside create. */
static void harness_finish(struct harness *h)
{
	/* close cooperatively: the loop keeps serving the fake meanwhile */
	component_stop(h->comp, 0);
	uint64_t deadline = within(1000);
	while (component_fd(h->comp) >= 0 && pump(h, deadline))
		;
	CU_ASSERT_EQUAL(component_fd(h->comp), -1);
	component_destroy(h->comp);
	CU_ASSERT_EQUAL(h->callbacks, h->accepted);
	CU_ASSERT_EQUAL(h->calls_inside_create, 0);
	for (int i = 0; i < h->n_probes; i++)
		CU_ASSERT_EQUAL(h->probes[i].calls, 1);
	fake_finish(&h->fake);
}

static const char *attr(xmpp_stanza_t *s, const char *name)
{
	const char *v = s ? xmpp_stanza_get_attribute(s, name) : NULL;
	return v ? v : "";
}

/* Read one create-account request off the fake and check its shape. */
static const char *expect_request(struct harness *h, const char *host)
{
	xmpp_stanza_t *iq = next_stanza(h);
	CU_ASSERT_PTR_NOT_NULL_FATAL(iq);
	CU_ASSERT_STRING_EQUAL(xmpp_stanza_get_name(iq), "iq");
	CU_ASSERT_STRING_EQUAL(attr(iq, "type"), "set");
	CU_ASSERT_STRING_EQUAL(attr(iq, "from"), JID);
	CU_ASSERT_STRING_EQUAL(attr(iq, "to"), host);
	CU_ASSERT_NOT_EQUAL(strlen(attr(iq, "id")), 0);
	xmpp_stanza_t *command = xmpp_stanza_get_child_by_name_and_ns(
	    iq, "command", "http://jabber.org/protocol/commands");
	CU_ASSERT_PTR_NOT_NULL_FATAL(command);
	CU_ASSERT_STRING_EQUAL(attr(command, "node"), "urn:xmpp:invite#create-account");
	CU_ASSERT_STRING_EQUAL(attr(command, "action"), "execute");
	return attr(iq, "id");
}

/* Answer a request as Prosody does, from from, with an invite for token. */
static void send_result(struct harness *h, const char *from, const char *id, const char *token)
{
	fake_send(&h->fake, PROSODY_RESULT, from, id, token, token);
}

/* Online, with n requests to localhost accepted; their probes into p. */
static void start_with_pending(struct harness *h, unsigned timeout_ms, struct probe **p, int n)
{
	harness_init(h, false, timeout_ms);
	wait_online(h);
	for (int i = 0; i < n; i++) {
		p[i] = request(h, "localhost");
		CU_ASSERT_PTR_NOT_NULL_FATAL(p[i]);
	}
}

/* Each of the n requests has had its callback, with COMPONENT_SHUTDOWN. */
static void check_shut_down(struct probe **p, int n)
{
	for (int i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(p[i]->calls, 1);
		CU_ASSERT_EQUAL(p[i]->status, COMPONENT_SHUTDOWN);
	}
}

/* ---- tests --------------------------------------------------------------- */

static void test_config_errors(void)
{
	struct component_config cfg = {.jid = JID,
	                               .secret = SECRET,
	                               .server = "127.0.0.1",
	                               .port = 5347,
	                               .request_timeout_ms = 1000};
	const char *err = NULL;

	cfg.jid = "user@invites.localhost";
	CU_ASSERT_PTR_NULL(component_create(&cfg, &err));
	CU_ASSERT_PTR_NOT_NULL(err);
	cfg.jid = JID;
	cfg.secret = "";
	err = NULL;
	CU_ASSERT_PTR_NULL(component_create(&cfg, &err));
	CU_ASSERT_PTR_NOT_NULL(err);
	cfg.secret = SECRET;
	cfg.request_timeout_ms = 0;
	err = NULL;
	CU_ASSERT_PTR_NULL(component_create(&cfg, &err));
	CU_ASSERT_PTR_NOT_NULL(err);
	component_destroy(NULL);
}

static void test_not_started_and_refused(void)
{
	struct harness h = {0};
	struct fake f;

	/* a port nobody listens on */
	fake_init(&f, JID, SECRET, false);
	unsigned short port = f.port;
	fake_finish(&f);

	memset(&h, 0, sizeof(h));
	h.comp = make_component(port, 1000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h.comp);
	CU_ASSERT_FALSE(component_online(h.comp));
	CU_ASSERT_EQUAL(component_fd(h.comp), -1);
	CU_ASSERT_EQUAL(component_next_timeout(h.comp), -1);
	CU_ASSERT_EQUAL(component_create_invite(h.comp, "localhost", on_result, NULL), -1);

	CU_ASSERT_EQUAL(component_start(h.comp), 0);
	CU_ASSERT_EQUAL(component_start(h.comp), -1);
	uint64_t deadline = within(300);
	while (now_ms() < deadline) {
		int fd = component_fd(h.comp);
		struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLOUT};
		int timeout = component_next_timeout(h.comp);
		poll(&pfd, fd >= 0 ? 1 : 0, timeout < 0 || timeout > 50 ? 50 : timeout);
		component_run(h.comp);
	}
	CU_ASSERT_FALSE(component_online(h.comp));
	CU_ASSERT_EQUAL(component_fd(h.comp), -1);
	int next = component_next_timeout(h.comp);
	CU_ASSERT(next > 300 && next <= 1200); /* first retry after ~1 s */
	CU_ASSERT_EQUAL(component_create_invite(h.comp, "localhost", on_result, NULL), -1);
	component_destroy(h.comp);
}

/* xmpp_connect_component() itself fails (TCP to a broadcast address is
 * refused synchronously): no callback follows, a retry must be scheduled,
 * and the low descriptor the socket had is held again for the next try. */
static void test_connect_fails_at_once(void)
{
	struct component_config cfg = {.jid = JID,
	                               .secret = SECRET,
	                               .server = "255.255.255.255",
	                               .port = 5347,
	                               .request_timeout_ms = 1000};
	const char *err = NULL;
	int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC); /* the lowest free descriptor */
	CU_ASSERT_FATAL(lowest >= 0);
	close(lowest);
	struct component *comp = component_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(comp);

	CU_ASSERT_EQUAL(component_start(comp), 0);
	CU_ASSERT_EQUAL(component_fd(comp), -1);
	int next_free = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CU_ASSERT(next_free > lowest); /* the component holds it */
	close(next_free);
	CU_ASSERT_FALSE(component_wants_write(comp));
	int next = component_next_timeout(comp);
	CU_ASSERT(next >= 700 && next <= 1200);
	component_run(comp);
	CU_ASSERT_FALSE(component_online(comp));
	CU_ASSERT(component_next_timeout(comp) > 0); /* still waiting, not spinning */
	component_destroy(comp);
}

static void test_handshake_and_invite(void)
{
	struct harness h;

	harness_init(&h, false, 2000);
	wait_online(&h);
	CU_ASSERT_EQUAL(h.fake.handshakes, 1);
	CU_ASSERT(component_fd(h.comp) >= 0);

	/* idle and online: nothing to wake up for */
	settle(&h, 50);
	CU_ASSERT_EQUAL(component_next_timeout(h.comp), -1);
	CU_ASSERT_FALSE(component_wants_write(h.comp));
	struct pollfd pfd = {.fd = component_fd(h.comp), .events = POLLIN};
	CU_ASSERT_EQUAL(poll(&pfd, 1, 100), 0);

	struct probe *p = request(&h, "localhost");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->calls, 0);
	CU_ASSERT_EQUAL(component_pending(h.comp), 1);
	int next = component_next_timeout(h.comp);
	CU_ASSERT(next > 1000 && next <= 2000);

	const char *id = expect_request(&h, "localhost");
	send_result(&h, "localhost", id, "tok1");
	CU_ASSERT_TRUE_FATAL(wait_calls(&h, p, 2000));
	CU_ASSERT_EQUAL(p->status, COMPONENT_OK);
	CU_ASSERT_TRUE(p->has_invite);
	CU_ASSERT_FALSE(p->has_condition);
	CU_ASSERT_FALSE(p->has_reason);
	CU_ASSERT_STRING_EQUAL(p->uri, "xmpp:localhost?register;preauth=tok1");
	CU_ASSERT_STRING_EQUAL(p->landing, "http://localhost:25280/invites_page?tok1");
	CU_ASSERT_STRING_EQUAL(p->expire, "2026-12-10T16:04:47Z");
	CU_ASSERT_EQUAL(component_pending(h.comp), 0);
	CU_ASSERT_EQUAL(component_next_timeout(h.comp), -1);

	/* the same reply again is ignored */
	send_result(&h, "localhost", id, "tok1");
	settle(&h, 100);
	CU_ASSERT_EQUAL(p->calls, 1);
	CU_ASSERT_TRUE(component_online(h.comp));
	harness_finish(&h);
}

/* Run only when the socket is ready or the component is not idle, as the
 * daemon's loop does: requests still leave, answers and timeouts still come,
 * and an idle online component is not run at all. */
static void test_runs_skipped_when_idle(void)
{
	struct harness h;

	harness_init(&h, false, 300);
	h.fake.skip_idle = true;
	CU_ASSERT_FALSE(component_idle(h.comp)); /* connecting */
	wait_online(&h);
	settle(&h, 50);
	CU_ASSERT_TRUE(component_idle(h.comp));
	unsigned runs = h.fake.runs;
	settle(&h, 200);
	CU_ASSERT_EQUAL(h.fake.runs, runs);

	struct probe *p = request(&h, "localhost");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_FALSE(component_idle(h.comp)); /* output queued */
	const char *id = expect_request(&h, "localhost");
	CU_ASSERT_TRUE(component_idle(h.comp)); /* waiting, deadline ahead */
	send_result(&h, "localhost", id, "tok1");
	CU_ASSERT_TRUE_FATAL(wait_calls(&h, p, 2000));
	CU_ASSERT_EQUAL(p->status, COMPONENT_OK);
	CU_ASSERT_STRING_EQUAL(p->uri, "xmpp:localhost?register;preauth=tok1");

	uint64_t sent = now_ms();
	struct probe *q = request(&h, "localhost");
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	expect_request(&h, "localhost");
	CU_ASSERT_TRUE_FATAL(wait_calls(&h, q, 2000));
	CU_ASSERT_EQUAL(q->status, COMPONENT_TIMEOUT);
	CU_ASSERT(now_ms() - sent >= 300);
	CU_ASSERT_TRUE(component_online(h.comp));

	component_stop(h.comp, 0);
	CU_ASSERT_FALSE(component_idle(h.comp));
	harness_finish(&h); /* the close still completes */
	CU_ASSERT_TRUE(h.fake.got_stream_close);
}

static void test_pipelined_requests(void)
{
	struct harness h;
	struct probe *p[3];
	char ids[3][64], token[16];

	harness_init(&h, false, 2000);
	wait_online(&h);
	for (int i = 0; i < 3; i++) {
		p[i] = request(&h, i == 2 ? "other.localhost" : "localhost");
		CU_ASSERT_PTR_NOT_NULL_FATAL(p[i]);
	}
	CU_ASSERT_EQUAL(component_pending(h.comp), 3);
	/* all three are on the wire before any answer */
	for (int i = 0; i < 3; i++)
		copy(ids[i], sizeof(ids[i]),
		     expect_request(&h, i == 2 ? "other.localhost" : "localhost"));
	CU_ASSERT_STRING_NOT_EQUAL(ids[0], ids[1]);
	for (int i = 2; i >= 0; i--) {
		snprintf(token, sizeof(token), "tok%d", i);
		/* domain compared case-insensitively, resource ignored */
		send_result(&h, i == 2 ? "Other.LocalHost/res" : "localhost", ids[i], token);
	}
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_TRUE_FATAL(wait_calls(&h, p[i], 2000));
		char uri[64];
		snprintf(uri, sizeof(uri), "xmpp:localhost?register;preauth=tok%d", i);
		CU_ASSERT_EQUAL(p[i]->status, COMPONENT_OK);
		CU_ASSERT_STRING_EQUAL(p[i]->uri, uri);
	}
	CU_ASSERT_EQUAL(component_pending(h.comp), 0);
	harness_finish(&h);
}

static void test_wrong_from_then_timeout(void)
{
	struct harness h;
	struct probe *p;

	/* Taken before the request exists: under load (valgrind) the setup may
	 * return well after the component started the request's clock. */
	uint64_t sent = now_ms();
	start_with_pending(&h, 200, &p, 1);
	char id[64];
	copy(id, sizeof(id), expect_request(&h, "localhost"));

	/* right id, wrong sender or type: not the answer */
	send_result(&h, "evil.example", id, "bad");
	send_result(&h, "admin@localhost", id, "bad");
	fake_send(&h.fake, "<message from='localhost' id='%s' type='error'/>", id);
	settle(&h, 100);
	CU_ASSERT_EQUAL(p->calls, 0);

	CU_ASSERT_TRUE_FATAL(wait_calls(&h, p, 1000));
	CU_ASSERT_EQUAL(p->status, COMPONENT_TIMEOUT);
	CU_ASSERT_TRUE(p->has_reason);
	CU_ASSERT_FALSE(p->has_invite);
	CU_ASSERT(now_ms() - sent >= 200);
	CU_ASSERT_EQUAL(component_pending(h.comp), 0);

	/* a late answer is ignored */
	send_result(&h, "localhost", id, "late");
	settle(&h, 100);
	CU_ASSERT_EQUAL(p->calls, 1);
	CU_ASSERT_TRUE(component_online(h.comp));
	harness_finish(&h);
}

static void test_error_reply(void)
{
	struct harness h;
	struct probe *p;

	start_with_pending(&h, 2000, &p, 1);
	const char *id = expect_request(&h, "localhost");
	fake_send(&h.fake, PROSODY_FORBIDDEN, "LocalHost", id);
	CU_ASSERT_TRUE_FATAL(wait_calls(&h, p, 2000));
	CU_ASSERT_EQUAL(p->status, COMPONENT_REMOTE_ERROR);
	CU_ASSERT_FALSE(p->has_invite);
	CU_ASSERT_STRING_EQUAL(p->condition, "forbidden");
	CU_ASSERT_STRING_EQUAL(p->reason, "You don't have permission to execute this command");

	/* a reply the parser rejects */
	p = request(&h, "localhost");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	id = expect_request(&h, "localhost");
	fake_send(&h.fake, "<iq type='result' from='localhost' id='%s'/>", id);
	CU_ASSERT_TRUE_FATAL(wait_calls(&h, p, 2000));
	CU_ASSERT_EQUAL(p->status, COMPONENT_BAD_REPLY);
	CU_ASSERT_FALSE(p->has_condition);
	CU_ASSERT_STRING_EQUAL(p->reason, "the reply has no <command/> element");
	harness_finish(&h);
}

static void test_drop_with_pending(void)
{
	struct harness h;
	struct probe *p[3];

	start_with_pending(&h, 5000, p, 3);
	for (int i = 0; i < 3; i++)
		expect_request(&h, "localhost");

	fake_close(&h.fake);
	uint64_t dropped = now_ms();
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_TRUE_FATAL(wait_calls(&h, p[i], 1000));
		CU_ASSERT_EQUAL(p[i]->status, COMPONENT_OFFLINE);
		CU_ASSERT_TRUE(p[i]->has_reason);
	}
	CU_ASSERT(now_ms() - dropped < 2500); /* at once, not at their 5 s timeout */
	CU_ASSERT_FALSE(component_online(h.comp));
	CU_ASSERT_EQUAL(component_pending(h.comp), 0);
	CU_ASSERT_EQUAL(component_fd(h.comp), -1);
	CU_ASSERT_PTR_NULL(request(&h, "localhost"));
	int next = component_next_timeout(h.comp);
	CU_ASSERT(next >= 0 && next <= 1200);

	/* back after ~1 s, and working */
	wait_online_within(&h, true, 3000);
	CU_ASSERT_EQUAL(h.fake.accepts, 2);
	CU_ASSERT(now_ms() - dropped >= 700);
	struct probe *again = request(&h, "localhost");
	CU_ASSERT_PTR_NOT_NULL_FATAL(again);
	send_result(&h, "localhost", expect_request(&h, "localhost"), "t2");
	CU_ASSERT_TRUE(wait_calls(&h, again, 2000));
	CU_ASSERT_EQUAL(again->status, COMPONENT_OK);
	harness_finish(&h);
}

/* The server throws the stream out with a conflict, as Prosody does to the
 * old connection when another one for the same JID arrives
 * (component_conflict_resolve = "kick_old"); returns how long the component
 * took to be online again. */
static uint64_t replaced_then_back(struct harness *h, bool conflict)
{
	if (conflict)
		fake_send(&h->fake, "<stream:error><conflict "
		                    "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
		                    "xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by a new "
		                    "connection</text></stream:error></stream:stream>");
	fake_close(&h->fake);
	uint64_t dropped = now_ms();
	wait_online_within(h, false, 500);
	wait_online_within(h, true, 4000);
	return now_ms() - dropped;
}

/* Two instances with one JID on a kick_old server would throw each other out
 * every second for ever: after being replaced the backoff keeps growing. A
 * plain drop of an established stream reconnects quickly again. */
static void test_replaced_backs_off(void)
{
	struct harness h;

	harness_init(&h, false, 1000);
	wait_online(&h);
	uint64_t gap1 = replaced_then_back(&h, true);
	uint64_t gap2 = replaced_then_back(&h, true);
	uint64_t gap3 = replaced_then_back(&h, false);
	CU_ASSERT(gap1 >= 750 && gap1 <= 1400);
	CU_ASSERT(gap2 >= 1550 && gap2 <= 2600);
	CU_ASSERT(gap3 >= 750 && gap3 <= 1400);
	CU_ASSERT_EQUAL(h.fake.accepts, 4);
	harness_finish(&h);
}

static void test_rejected_secret(void)
{
	struct harness h;

	harness_init(&h, true, 1000);
	uint64_t deadline = within(5000);
	bool ever_online = false;
	while (h.fake.rejects < 3 && pump(&h, deadline))
		ever_online |= component_online(h.comp);
	CU_ASSERT_FALSE(ever_online);
	CU_ASSERT_EQUAL_FATAL(h.fake.rejects, 3);
	CU_ASSERT_EQUAL(h.fake.handshakes, 0);
	/* backoff: ~1 s then ~2 s, +-20% */
	uint64_t gap1 = h.fake.reject_at[1] - h.fake.reject_at[0];
	uint64_t gap2 = h.fake.reject_at[2] - h.fake.reject_at[1];
	CU_ASSERT(gap1 >= 750 && gap1 <= 1400);
	CU_ASSERT(gap2 >= 1550 && gap2 <= 2600);
	CU_ASSERT_PTR_NULL(request(&h, "localhost"));
	settle(&h, 50);
	CU_ASSERT(component_next_timeout(h.comp) >= 0); /* still retrying */
	harness_finish(&h);
}

static void test_stop_with_pending(void)
{
	struct harness h;
	struct probe *p[2];

	start_with_pending(&h, 5000, p, 2);
	expect_request(&h, "localhost");
	expect_request(&h, "localhost");

	component_stop(h.comp, 50); /* the fake is not served meanwhile: gives up */
	check_shut_down(p, 2);
	CU_ASSERT_PTR_NULL(request(&h, "localhost"));
	CU_ASSERT_EQUAL(component_pending(h.comp), 0);

	/* the fake sees the stream closed, answers, and the component lets go */
	uint64_t deadline = within(2000);
	while (component_fd(h.comp) >= 0 && pump(&h, deadline))
		;
	CU_ASSERT_TRUE(h.fake.got_stream_close);
	CU_ASSERT_EQUAL(component_fd(h.comp), -1);
	CU_ASSERT_FALSE(component_online(h.comp));
	settle(&h, 1300);
	CU_ASSERT_EQUAL(h.fake.accepts, 1); /* no reconnect after stop */
	harness_finish(&h);
}

static void test_destroy_with_pending(void)
{
	struct harness h;
	struct probe *p[2];

	start_with_pending(&h, 5000, p, 2);
	expect_request(&h, "localhost");

	component_destroy(h.comp);
	h.comp = NULL;
	check_shut_down(p, 2);
	/* it closed the stream politely on its way out */
	expect_request(&h, "localhost");
	uint64_t deadline = within(1000);
	while (!h.fake.got_stream_close && pump(&h, deadline))
		;
	CU_ASSERT_TRUE(h.fake.got_stream_close);
	harness_finish(&h);
}

static void check_result_to(xmpp_stanza_t *s, const char *id)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(attr(s, "type"), "result");
	CU_ASSERT_STRING_EQUAL(attr(s, "id"), id);
	CU_ASSERT_STRING_EQUAL(attr(s, "from"), JID);
	CU_ASSERT_STRING_EQUAL(attr(s, "to"), "localhost");
}

static void check_unavailable(xmpp_stanza_t *s, const char *id)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(attr(s, "type"), "error");
	CU_ASSERT_STRING_EQUAL(attr(s, "id"), id);
	CU_ASSERT_STRING_EQUAL(attr(s, "from"), JID);
	xmpp_stanza_t *error = xmpp_stanza_get_child_by_name(s, "error");
	CU_ASSERT_STRING_EQUAL(attr(error, "type"), "cancel");
	CU_ASSERT_PTR_NOT_NULL(
	    error ? xmpp_stanza_get_child_by_name_and_ns(error, "service-unavailable",
	                                                 "urn:ietf:params:xml:ns:xmpp-stanzas")
	          : NULL);
}

static void test_incoming_iqs(void)
{
	struct harness h;

	harness_init(&h, false, 2000);
	wait_online(&h);

	fake_send(&h.fake, "<iq type='get' id='p1' from='localhost' to='" JID "'>"
	                   "<ping xmlns='urn:xmpp:ping'/></iq>");
	check_result_to(next_stanza(&h), "p1");

	fake_send(&h.fake, "<iq type='get' id='d1' from='localhost' to='" JID "'>"
	                   "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
	xmpp_stanza_t *disco = next_stanza(&h);
	check_result_to(disco, "d1");
	xmpp_stanza_t *query = xmpp_stanza_get_child_by_name_and_ns(
	    disco, "query", "http://jabber.org/protocol/disco#info");
	xmpp_stanza_t *identity = query ? xmpp_stanza_get_child_by_name(query, "identity") : NULL;
	CU_ASSERT_STRING_EQUAL(attr(identity, "category"), "component");
	CU_ASSERT_STRING_EQUAL(attr(identity, "type"), "generic");
	CU_ASSERT_STRING_EQUAL(attr(identity, "name"), "Invites API");
	int features = 0;
	for (xmpp_stanza_t *c = query ? xmpp_stanza_get_children(query) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		if (strcmp(xmpp_stanza_get_name(c), "feature") == 0 &&
		    (strcmp(attr(c, "var"), "urn:xmpp:ping") == 0 ||
		     strcmp(attr(c, "var"), "http://jabber.org/protocol/disco#info") == 0))
			features++;
	}
	CU_ASSERT_EQUAL(features, 2);

	fake_send(&h.fake, "<iq type='set' id='s1' from='localhost' to='" JID "'>"
	                   "<ping xmlns='urn:xmpp:ping'/></iq>");
	check_unavailable(next_stanza(&h), "s1");
	fake_send(&h.fake, "<iq type='get' id='g1' from='localhost' to='" JID "'>"
	                   "<query xmlns='jabber:iq:version'/></iq>");
	check_unavailable(next_stanza(&h), "g1");

	/* never answered: errors, results that are not ours, messages, presence */
	fake_send(&h.fake, "<iq type='error' id='e1' from='localhost' to='" JID "'>"
	                   "<error type='cancel'><service-unavailable "
	                   "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
	                   "<iq type='result' id='r1' from='localhost' to='" JID "'/>"
	                   "<message from='a@localhost' to='" JID "'><body>hi</body></message>"
	                   "<presence from='a@localhost' to='" JID "'/>"
	                   "<iq type='get' id='p2' from='localhost' to='" JID "'>"
	                   "<ping xmlns='urn:xmpp:ping'/></iq>");
	check_result_to(next_stanza(&h), "p2");
	settle(&h, 50);
	CU_ASSERT_EQUAL(h.fake.n_taken, h.fake.n_received);
	CU_ASSERT_TRUE(component_online(h.comp));
	harness_finish(&h);
}

/* Requests answered one after another must not leave memory behind.
 * libstrophe's id handlers did: ~80 bytes a request, ~80 KB here. (Under a
 * sanitizer or valgrind, mallinfo2() does not see their allocator: the check
 * then only holds in the normal build, which the test routine runs too.) */
/* Descriptors taken by fill_descriptors(), as HTTP connections would take them. */
#define FILLED_MAX (FD_SETSIZE + 64)
static int filled[FILLED_MAX];
static int n_filled;

/* Take every free descriptor up to FD_SETSIZE and a few beyond, as a daemon
 * with more than a thousand HTTP connections open has them. */
static void fill_descriptors(void)
{
	while (n_filled < FILLED_MAX) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		CU_ASSERT_FATAL(fd >= 0);
		filled[n_filled++] = fd;
		if (fd >= FD_SETSIZE + 8)
			break;
	}
}

static void release_descriptors(void)
{
	while (n_filled > 0)
		close(filled[--n_filled]);
}

/* Online on a socket select() can watch, and an invite goes through it. */
static void invite_on_low_socket(struct harness *h, const char *token)
{
	CU_ASSERT(component_fd(h->comp) >= 0 && component_fd(h->comp) < FD_SETSIZE);
	struct probe *p = request(h, "localhost");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	send_result(h, "localhost", expect_request(h, "localhost"), token);
	CU_ASSERT_TRUE_FATAL(wait_calls(h, p, 2000));
	CU_ASSERT_EQUAL(p->status, COMPONENT_OK);
}

/* libstrophe select()s on the component's socket, whose descriptor must stay
 * below FD_SETSIZE: with every other low descriptor taken, the component still
 * connects, works, and reconnects after losing the stream, each time on a
 * socket select() can watch. */
static void test_socket_stays_below_fd_setsize(void)
{
	struct rlimit rl;
	CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_cur < FILLED_MAX + 64) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < FILLED_MAX + 64) {
			fprintf(stderr, "\n  skipped: the open file limit is %llu\n",
			        (unsigned long long)rl.rlim_max);
			return;
		}
		rl.rlim_cur = FILLED_MAX + 64;
		CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	}

	struct harness h;
	harness_make(&h, false, 2000);
	fill_descriptors(); /* after the component was made, before it connects */
	CU_ASSERT_EQUAL(component_start(h.comp), 0);
	wait_online(&h);
	invite_on_low_socket(&h, "low1");

	/* The stream drops; while the component waits to reconnect, new
	 * connections take every descriptor that became free. */
	fake_close(&h.fake);
	wait_online_within(&h, false, 1000);
	fill_descriptors();
	wait_online_within(&h, true, 4000);
	invite_on_low_socket(&h, "low2");
	harness_finish(&h);
	release_descriptors();
}

static void test_no_memory_kept_per_request(void)
{
	struct harness h;
	size_t before = 0;

	harness_init(&h, false, 2000);
	wait_online(&h);
	for (int i = 0; i < 1200; i++) {
		if (i == 200)
			before = mallinfo2().uordblks; /* after warm-up */
		struct probe *p = request(&h, "localhost");
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		char id[64];
		copy(id, sizeof(id), expect_request(&h, "localhost"));
		send_result(&h, "localhost", id, "tok");
		CU_ASSERT_TRUE_FATAL(wait_calls(&h, p, 2000));
		CU_ASSERT_EQUAL_FATAL(p->status, COMPONENT_OK);
		h.n_probes--; /* reuse the probe: it had its one callback */
		memset(p, 0, sizeof(*p));
		fake_forget_taken(&h.fake);
	}
	size_t after = mallinfo2().uordblks;
	if (after > before + 16 * 1024)
		fprintf(stderr, "\n  heap grew by %zu bytes over 1000 requests\n", after - before);
	CU_ASSERT(after <= before + 16 * 1024);
	CU_ASSERT_EQUAL(component_pending(h.comp), 0);
	harness_finish(&h);
}

static const struct unit_test tests[] = {
    {"config errors", test_config_errors},
    {"not started, then refused", test_not_started_and_refused},
    {"connect fails at once", test_connect_fails_at_once},
    {"handshake, then an invite (stanza after handshake)", test_handshake_and_invite},
    {"runs skipped while idle", test_runs_skipped_when_idle},
    {"pipelined requests answered out of order", test_pipelined_requests},
    {"reply from the wrong sender, then timeout", test_wrong_from_then_timeout},
    {"error reply", test_error_reply},
    {"server drops the stream with requests pending", test_drop_with_pending},
    {"secret rejected: offline, retrying with backoff", test_rejected_secret},
    {"replaced by another connection: backoff keeps growing", test_replaced_backs_off},
    {"stop with requests pending", test_stop_with_pending},
    {"destroy with requests pending", test_destroy_with_pending},
    {"incoming iqs", test_incoming_iqs},
    {"no memory kept per request", test_no_memory_kept_per_request},
    {"socket below FD_SETSIZE with every low descriptor taken", test_socket_stays_below_fd_setsize},
    {NULL, NULL},
};

UNIT_MAIN("component", tests)
