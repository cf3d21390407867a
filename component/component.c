/*
 * The XEP-0114 component: one libstrophe context and connection for the
 * component's lifetime, driven by the caller's event loop.
 *
 * libstrophe runs its own timers only when xmpp_run_once() is called, and the
 * caller cannot see when they are due. So everything the caller must wake up
 * for (the reconnect deadline, request deadlines) is kept here, and
 * component_next_timeout() reports it exactly. Requests all get the same
 * timeout, so the FIFO of pending requests is also ordered by deadline.
 */

#include <dlfcn.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "component-internal.h"
#include "log.h"

#define BACKOFF_MIN_MS     1000
#define BACKOFF_MAX_MS     30000
#define TRANSITION_POLL_MS 100  /* see component_next_timeout() */
#define DESTROY_CLOSE_MS   1000 /* destroy without stop: how long to wait for the close */
#define PUMP_ROUNDS_MAX    8    /* xmpp_run_once() calls per component_run() */

uint64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* xorshift64*: only spreads reconnect times, nothing secret depends on it. */
static uint64_t next_random(struct component *comp)
{
	comp->rng ^= comp->rng >> 12;
	comp->rng ^= comp->rng << 25;
	comp->rng ^= comp->rng >> 27;
	return comp->rng * 2685821657736338717ULL;
}

static void seed_random(struct component *comp)
{
	if (getrandom(&comp->rng, sizeof(comp->rng), GRND_NONBLOCK) != sizeof(comp->rng))
		comp->rng = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid() ^ monotonic_ms();
	if (comp->rng == 0)
		comp->rng = 0x9e3779b97f4a7c15ULL;
}

/* ---- libstrophe glue ---------------------------------------------------- */

static void strophe_logger(void *userdata, xmpp_log_level_t level, const char *area,
                           const char *msg)
{
	struct component *comp = userdata;
	char line[ADHOC_REASON_MAX];

	/* libstrophe 0.12.2 answers XML it cannot parse with an invalid-xml
	 * stream error, but keeps the stream open with its parser stuck: every
	 * later stanza, answers included, would be lost until the server hung
	 * up. Its debug line is the only sign; run_strophe_once() closes. */
	if (level == XMPP_LEVEL_DEBUG && strcmp(area, "xmpp") == 0 &&
	    strncmp(msg, "parse error", 11) == 0)
		comp->stream_broken = true;
	/* Debug and info carry stanza dumps and the handshake digest: never. */
	if (level < XMPP_LEVEL_WARN)
		return;
	reason_copy(line, sizeof(line), msg);
	if (level == XMPP_LEVEL_WARN)
		log_warn("libstrophe %s: %s", area, line);
	else
		log_error("libstrophe %s: %s", area, line);
}

/* libstrophe passes no user data to the sockopt callback, which is the only
 * place the socket shows itself. It runs synchronously inside
 * xmpp_connect_component(), on the loop thread, so it hands the fd over through
 * this variable, which connect_attempt() reads right after that call. */
static int new_socket_fd = -1;

static int sockopt_cb(xmpp_conn_t *conn, void *sock)
{
	int fd = *(int *)sock;

	/* xmpp_run_once() select()s: an fd past FD_SETSIZE would corrupt memory. */
	if (fd >= FD_SETSIZE) {
		log_error("component socket fd %d is too large for libstrophe's select()", fd);
		return -1;
	}
	new_socket_fd = fd;
	return xmpp_sockopt_cb_keepalive(conn, sock);
}

static int refuse_socket(xmpp_conn_t *conn, void *sock)
{
	(void)conn;
	(void)sock;
	return -1;
}

/*
 * libstrophe 0.12.2 allocates the stream-management state only in
 * xmpp_connect_client(), yet its receive path, xmpp_send() and its disconnect
 * path dereference it in component mode too: without this, the first stanza
 * after the handshake, or the first disconnect, crashes. 0.14.0 (Debian 13) is
 * the same: its send loop reads sm_state, and the component tests crash with
 * SIGSEGV without this priming. A client connect whose every socket is
 * refused by the sockopt callback fails with XMPP_EINT before any network I/O, but leaves the state
 * allocated for the life of the connection object, reconnects included.
 */
static int prime_connection(xmpp_conn_t *conn)
{
	xmpp_conn_set_sockopt_callback(conn, refuse_socket);
	int rc = xmpp_connect_client(conn, "127.0.0.1", 1, NULL, NULL);
	xmpp_conn_set_sockopt_callback(conn, sockopt_cb);
	return rc == XMPP_EINT ? 0 : -1;
}

/*
 * Expat's reparse deferral (expat 2.6, and Debian 12's 2.5.0 since its fix
 * for CVE-2023-52425) holds a partial token back until the buffered input has
 * doubled. That suits files, not a stream that goes quiet: after a start tag
 * of a few KB (an 8 KB id from anyone who can address the component) the
 * stanzas behind it, such as the answer a request waits for, stayed in the
 * buffer until more bytes came, or the request timed out. libstrophe 0.12.2
 * (and 0.14.0, Debian 13's, with expat 2.9.0) owns its parser, re-creates it
 * on every stream and offers no switch, so the
 * executable defines XML_Parse(), which the dynamic linker binds libstrophe
 * to, and turns deferral off before handing each chunk to expat's own.
 * Deferral never applies to a final chunk: documents parsed in one piece are
 * unaffected. The weak reference keeps older expat (no deferral) working.
 */
extern XML_Bool XML_SetReparseDeferralEnabled(XML_Parser parser, XML_Bool enabled)
    __attribute__((weak));

enum XML_Status XML_Parse(XML_Parser parser, const char *s, int len, int is_final)
{
	static enum XML_Status (*expat_parse)(XML_Parser, const char *, int, int);

	if (expat_parse == NULL) {
		*(void **)&expat_parse = dlsym(RTLD_NEXT, "XML_Parse");
		if (expat_parse == NULL)
			abort(); /* no expat loaded: libstrophe could not have called us */
	}
	if (XML_SetReparseDeferralEnabled != NULL)
		XML_SetReparseDeferralEnabled(parser, XML_FALSE);
	return expat_parse(parser, s, len, is_final);
}

/* ---- replies ------------------------------------------------------------ */

bool from_is(const char *from, const char *jid)
{
	size_t len = strcspn(from, "/");
	bool jid_is_user = strchr(jid, '@') != NULL;
	bool from_is_user = memchr(from, '@', len) != NULL;
	return len == strlen(jid) && strncasecmp(from, jid, len) == 0 &&
	       jid_is_user == from_is_user;
}

/* ---- connection --------------------------------------------------------- */

/*
 * libstrophe select()s on its socket, so the socket's descriptor must stay
 * below FD_SETSIZE (1024) however many HTTP connections the process has open.
 * socket() takes the lowest free descriptor. So the component holds a low
 * one (/dev/null, opened when it is created, before any HTTP connection)
 * whenever it has no socket, and gives it up right before libstrophe creates
 * one: that socket gets it or a lower one. libstrophe closes its socket right
 * before the DISCONNECT callback, where the reserve is taken again; the
 * lowest free descriptor then is at most the one just closed. Nothing else
 * runs in between (one thread). Without a reserve (no descriptor left), the
 * socket may come out too high: sockopt_cb() refuses it, and the next attempt
 * tries again.
 */
static void keep_low_fd(struct component *comp)
{
	if (comp->fd_reserve >= 0)
		return;
	comp->fd_reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (comp->fd_reserve < 0)
		log_warn("cannot hold a low descriptor for the XMPP socket (%s): with more than "
		         "about 1000 connections open, reconnecting may fail",
		         strerror(errno));
}

static void free_low_fd(struct component *comp)
{
	if (comp->fd_reserve >= 0)
		close(comp->fd_reserve);
	comp->fd_reserve = -1;
}

static unsigned schedule_reconnect(struct component *comp)
{
	/* +-20% so that many instances do not come back in step */
	unsigned spread = comp->backoff_ms * 2 / 5;
	unsigned delay =
	    comp->backoff_ms - spread / 2 + (unsigned)(next_random(comp) % (spread + 1));

	comp->reconnect_at = monotonic_ms() + delay;
	comp->backoff_ms =
	    comp->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : comp->backoff_ms * 2;
	return delay;
}

static const char *stream_error_condition(const xmpp_stream_error_t *se)
{
	for (xmpp_stanza_t *c = se->stanza ? xmpp_stanza_get_children(se->stanza) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "text") != 0)
			return xmpp_stanza_get_name(c);
	}
	return "undefined-condition";
}

static void describe_connect_failure(const struct component *comp, const char *why, char *buf,
                                     size_t size)
{
	snprintf(buf, size,
	         "cannot connect to %s:%u (%s): check that the server runs and accepts "
	         "components there",
	         comp->server, comp->port, why);
}

/* One line naming what went wrong and, where we know it, how to fix it. */
static void describe_disconnect(const struct component *comp, bool was_online, int error,
                                const xmpp_stream_error_t *se, char *buf, size_t size)
{
	char text[ADHOC_REASON_MAX] = "";

	if (se && se->type == XMPP_SE_NOT_AUTHORIZED) {
		snprintf(buf, size,
		         "the server rejected the component secret: make [component] secret "
		         "match component_secret of Component \"%s\" in the server config",
		         comp->jid);
	} else if (se && se->type == XMPP_SE_HOST_UNKNOWN) {
		snprintf(buf, size,
		         "the server does not know component %s: declare Component \"%s\" in "
		         "the server config",
		         comp->jid, comp->jid);
	} else if (se && se->type == XMPP_SE_CONFLICT && was_online) {
		snprintf(buf, size,
		         "the server let another connection take over component %s (%u time%s in "
		         "a row): two instances with the same JID are taking turns; stop one, or "
		         "give each its own component JID",
		         comp->jid, comp->replaced, comp->replaced == 1 ? "" : "s");
	} else if (se && se->type == XMPP_SE_CONFLICT) {
		snprintf(buf, size,
		         "another instance is connected as component %s: stop it or give this "
		         "one its own component JID",
		         comp->jid);
	} else if (se) {
		reason_copy(text, sizeof(text), se->text);
		snprintf(buf, size, "%s:%u closed the stream with error %.64s%s%s", comp->server,
		         comp->port, stream_error_condition(se), *text ? ": " : "", text);
	} else if (!comp->tcp_up) {
		describe_connect_failure(
		    comp, error == ETIMEDOUT ? "timed out" : "refused or unreachable", buf, size);
	} else if (was_online) {
		/* libstrophe reports an orderly close as ECONNRESET too */
		snprintf(buf, size, "lost the connection to %s:%u (%s)", comp->server, comp->port,
		         error == ECONNRESET || error == 0 ? "closed by the server"
		                                           : strerror(error));
	} else {
		snprintf(buf, size,
		         "%s:%u closed the connection during the component handshake: is it the "
		         "server's component port?",
		         comp->server, comp->port);
	}
}

static void handle_disconnect(struct component *comp, int error, xmpp_stream_error_t *se)
{
	bool was_online = comp->online;
	char cause[512];

	comp->online = false;
	comp->fd = -1;
	keep_low_fd(comp); /* libstrophe has just closed its socket */
	requests_fail_all(comp, COMPONENT_OFFLINE, "the connection to the XMPP server was lost");
	if (comp->stopping) {
		if (was_online)
			log_info("disconnected from %s:%u", comp->server, comp->port);
		return;
	}
	/*
	 * A server told to let a new connection replace the old one (Prosody's
	 * component_conflict_resolve = "kick_old") makes two instances with one JID
	 * throw each other out for ever. Quick reconnects after losing an
	 * established stream are right otherwise; after being replaced, the
	 * backoff keeps growing, so the turns slow down to one per 30 s.
	 */
	if (was_online && se && se->type == XMPP_SE_CONFLICT)
		comp->replaced++;
	else if (was_online) {
		comp->replaced = 0;
		comp->backoff_ms = BACKOFF_MIN_MS;
	}
	describe_disconnect(comp, was_online, error, se, cause, sizeof(cause));
	snprintf(comp->last_error, sizeof(comp->last_error), "%s", cause);
	unsigned delay = schedule_reconnect(comp);
	log_warn("%s; retrying in %u.%u s", cause, delay / 1000, delay % 1000 / 100);
}

static void handle_connection(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                              xmpp_stream_error_t *stream_error, void *userdata)
{
	struct component *comp = userdata;
	(void)conn;

	if (event == XMPP_CONN_CONNECT) {
		comp->online = true;
		comp->last_error[0] = '\0';
		log_info("connected to %s:%u as component %s", comp->server, comp->port, comp->jid);
		discovery_start(comp);
	} else if (event == XMPP_CONN_DISCONNECT || event == XMPP_CONN_FAIL) {
		handle_disconnect(comp, error, stream_error);
	}
}

static void connect_attempt(struct component *comp)
{
	comp->reconnect_at = 0;
	comp->tcp_up = false;
	comp->stream_broken = comp->closing_broken = false;
	new_socket_fd = -1;
	free_low_fd(comp); /* for the socket */
	int rc =
	    xmpp_connect_component(comp->conn, comp->server, comp->port, handle_connection, comp);
	comp->fd = rc == XMPP_EOK ? new_socket_fd : -1;
	new_socket_fd = -1;
	if (rc != XMPP_EOK) {
		keep_low_fd(comp);
		/* No callback follows a failure here: retry like after a refusal. */
		char cause[512];
		describe_connect_failure(comp, "refused, unreachable or not resolvable", cause,
		                         sizeof(cause));
		snprintf(comp->last_error, sizeof(comp->last_error), "%s", cause);
		unsigned delay = schedule_reconnect(comp);
		log_warn("%s; retrying in %u.%u s", cause, delay / 1000, delay % 1000 / 100);
	}
}

static void run_strophe_once(struct component *comp, unsigned long timeout_ms)
{
	comp->busy++;
	xmpp_run_once(comp->ctx, timeout_ms);
	comp->busy--;
	if (xmpp_conn_is_connected(comp->conn))
		comp->tcp_up = true;
	if (comp->stream_broken && !comp->closing_broken && xmpp_conn_is_connected(comp->conn)) {
		comp->closing_broken = true;
		log_warn("%s:%u sent XML that cannot be parsed; closing the stream", comp->server,
		         comp->port);
		xmpp_disconnect(comp->conn); /* then as any disconnect: 503s, reconnect */
	}
}

static bool input_waiting(int fd)
{
	int n = 0;
	return fd >= 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/*
 * xmpp_run_once() writes its queue first, then reads at most 4096 bytes and
 * dispatches them. Output the dispatch produces waits for the next call, and
 * libstrophe's own (the stream header once TCP is up, the handshake once the
 * server's header arrived) is not counted by xmpp_conn_send_queue_len(), so
 * component_wants_write() cannot ask for it. Run again while there was input
 * or the connect just completed, a bounded number of times.
 */
static void pump_strophe(struct component *comp)
{
	for (int round = 0; round < PUMP_ROUNDS_MAX; round++) {
		bool had_input = input_waiting(comp->fd);
		bool was_connecting = xmpp_conn_is_connecting(comp->conn);
		run_strophe_once(comp, 0);
		if (!had_input && !(was_connecting && !xmpp_conn_is_connecting(comp->conn)))
			break;
	}
}

/* ---- public API ----------------------------------------------------------- */

static bool valid_jid(const char *jid)
{
	return jid && *jid && strlen(jid) <= HOST_MAX && strcspn(jid, "@/ \t\r\n") == strlen(jid);
}

/*
 * xmpp_initialize() sets up sockets (nothing to do on POSIX), c-ares (when
 * libstrophe was built with it) and OpenSSL. A component never speaks TLS,
 * and OpenSSL's initialisation alone brings about 1.8 MiB of libcrypto and
 * libssl pages into the daemon's resident memory (bench/RESULTS.md). So it
 * is called only when libstrophe links c-ares (meson.build checks), whose
 * initialisation is needed. Nothing else in libstrophe depends on it.
 */
static void library_init(void)
{
#ifdef STROPHE_WITH_CARES
	xmpp_initialize();
#endif
}

static void library_shutdown(void)
{
#ifdef STROPHE_WITH_CARES
	xmpp_shutdown();
#endif
}

/* act_as: a bare JID (no resource) whose domain is the host. */
static bool valid_act_as(const char *act_as, const char *host)
{
	const char *at = strchr(act_as, '@');
	return at && at != act_as && strlen(act_as) <= HOST_MAX && !strchr(act_as, '/') &&
	       !has_control_chars(act_as) && strcasecmp(at + 1, host) == 0;
}

static const char *check_hosts(const struct component_config *cfg)
{
	if (cfg->n_hosts && !cfg->hosts)
		return "the host table is missing";
	for (size_t i = 0; i < cfg->n_hosts; i++) {
		const struct component_host *h = &cfg->hosts[i];
		if (!valid_jid(h->name))
			return "a host must be a domain, e.g. example.com";
		if (h->act_as && !valid_act_as(h->act_as, h->name))
			return "act_as must be a bare JID on its host, e.g. invitebot@example.com";
	}
	return NULL;
}

struct component *component_create(const struct component_config *cfg, const char **errstr)
{
	const char *why = "out of memory";

	if (!valid_jid(cfg->jid)) {
		*errstr = "the component JID must be a domain, e.g. invites.example.com";
		return NULL;
	}
	if (!cfg->secret || !*cfg->secret || !cfg->server || !*cfg->server) {
		*errstr = "the component secret and the server address must be set";
		return NULL;
	}
	if (cfg->request_timeout_ms == 0 || cfg->request_timeout_ms > INT_MAX) {
		*errstr = "the component request timeout must be positive";
		return NULL;
	}
	if ((*errstr = check_hosts(cfg)) != NULL)
		return NULL;

	struct component *comp = calloc(1, sizeof(*comp));
	if (!comp)
		goto err;
	comp->fd = -1;
	comp->fd_reserve = -1;
	keep_low_fd(comp);
	comp->port = cfg->port ? cfg->port : 5347;
	comp->request_timeout_ms = cfg->request_timeout_ms;
	comp->backoff_ms = BACKOFF_MIN_MS;
	comp->strophe_log = (xmpp_log_t){.handler = strophe_logger, .userdata = comp};
	seed_random(comp);
	comp->jid = strdup(cfg->jid);
	comp->server = strdup(cfg->server);
	if (!comp->jid || !comp->server || hosts_init(comp, cfg->hosts, cfg->n_hosts) < 0)
		goto err_comp;

	library_init();
	comp->ctx = xmpp_ctx_new(NULL, &comp->strophe_log);
	if (!comp->ctx)
		goto err_init;
	comp->conn = xmpp_conn_new(comp->ctx);
	if (!comp->conn)
		goto err_ctx;
	xmpp_conn_set_jid(comp->conn, comp->jid);
	xmpp_conn_set_pass(comp->conn, cfg->secret);
	if (!xmpp_conn_get_jid(comp->conn) || !xmpp_conn_get_pass(comp->conn))
		goto err_conn;
	if (prime_connection(comp->conn) != 0) {
		why = "cannot prepare the libstrophe connection";
		goto err_conn;
	}
	iq_responder_init(&comp->responder, comp->ctx, comp->jid);
	xmpp_handler_add(comp->conn, iq_responder_handle, NULL, "iq", NULL, &comp->responder);
	xmpp_handler_add(comp->conn, requests_handle_iq, NULL, "iq", NULL, comp);
	xmpp_handler_add(comp->conn, privilege_handle_message, NULL, "message", NULL, comp);
	return comp;

err_conn:
	xmpp_conn_release(comp->conn);
err_ctx:
	xmpp_ctx_free(comp->ctx);
err_init:
	library_shutdown();
err_comp:
	hosts_finish(comp);
	free_low_fd(comp);
	free(comp->server);
	free(comp->jid);
	free(comp);
err:
	*errstr = why;
	return NULL;
}

int component_start(struct component *comp)
{
	if (!comp || comp->started || comp->stopping)
		return -1;
	comp->started = true;
	connect_attempt(comp);
	return 0;
}

void component_stop(struct component *comp, unsigned timeout_ms)
{
	if (!comp || comp->stopping)
		return;
	comp->stopping = true;
	comp->reconnect_at = 0;
	requests_fail_all(comp, COMPONENT_SHUTDOWN, "the component is shutting down");
	if (xmpp_conn_is_disconnected(comp->conn))
		return;
	xmpp_disconnect(comp->conn);
	/* From inside a callback, component_run() is on the stack: let the
	 * caller's loop finish the close instead of nesting xmpp_run_once(). */
	if (comp->busy)
		return;

	uint64_t deadline = monotonic_ms() + timeout_ms;
	for (uint64_t now = monotonic_ms();
	     !xmpp_conn_is_disconnected(comp->conn) && now < deadline; now = monotonic_ms()) {
		uint64_t left = deadline - now;
		run_strophe_once(comp, left < TRANSITION_POLL_MS ? left : TRANSITION_POLL_MS);
	}
}

void component_destroy(struct component *comp)
{
	if (!comp)
		return;
	component_stop(comp, DESTROY_CLOSE_MS);
	/* Releases a still open socket too, firing one last DISCONNECT. */
	xmpp_conn_release(comp->conn);
	iq_responder_finish(&comp->responder);
	xmpp_ctx_free(comp->ctx);
	library_shutdown();
	hosts_finish(comp);
	free_low_fd(comp);
	free(comp->server);
	free(comp->jid);
	free(comp);
}

bool component_online(const struct component *comp)
{
	return comp && comp->online;
}

int component_fd(const struct component *comp)
{
	return comp ? comp->fd : -1;
}

bool component_wants_write(const struct component *comp)
{
	return comp && comp->fd >= 0 &&
	       (xmpp_conn_is_connecting(comp->conn) || xmpp_conn_send_queue_len(comp->conn) > 0);
}

/*
 * Besides our own deadlines: while the stream is neither down nor online (TCP
 * connect, handshake, closing), libstrophe runs its own timers (connect 5 s,
 * handshake 15 s, close 2 s) and may hold its own output where we cannot see
 * it, so ask to be called every TRANSITION_POLL_MS. An idle online component
 * asks for nothing.
 */
int component_next_timeout(const struct component *comp)
{
	if (!comp)
		return -1;
	uint64_t now = monotonic_ms();
	uint64_t due = UINT64_MAX;

	if (comp->reconnect_at)
		due = comp->reconnect_at;
	if (requests_next_deadline(comp) < due)
		due = requests_next_deadline(comp);
	if ((!comp->online || comp->stopping) && !xmpp_conn_is_disconnected(comp->conn) &&
	    now + TRANSITION_POLL_MS < due)
		due = now + TRANSITION_POLL_MS;
	if (due == UINT64_MAX)
		return -1;
	if (due <= now)
		return 0;
	return due - now > INT_MAX ? INT_MAX : (int)(due - now);
}

void component_run(struct component *comp)
{
	if (!comp || !comp->started)
		return;
	pump_strophe(comp);

	uint64_t now = monotonic_ms();
	requests_expire(comp, now);
	commands_expire(comp->responder.commands, now);
	if (comp->reconnect_at && now >= comp->reconnect_at && !comp->stopping &&
	    xmpp_conn_is_disconnected(comp->conn))
		connect_attempt(comp);
}

/*
 * Our own output is counted by xmpp_conn_send_queue_len(), libstrophe's is
 * not: but while online it queues some only when we call xmpp_disconnect()
 * (stopping, or stream_broken), and runs timers only for those closes. Idle
 * ad-hoc sessions wait for the next component_run(), as adhoc.c says.
 */
bool component_idle(const struct component *comp)
{
	return comp && comp->started && comp->online && !comp->stopping && !comp->stream_broken &&
	       xmpp_conn_is_connected(comp->conn) && xmpp_conn_send_queue_len(comp->conn) == 0 &&
	       component_next_timeout(comp) != 0;
}

int component_commands_register(struct component *comp, const struct component_commands *cmds)
{
	return comp ? iq_responder_register_commands(&comp->responder, cmds) : -1;
}

int component_set_version(struct component *comp, const char *name, const char *version)
{
	return comp ? iq_responder_set_version(&comp->responder, name, version) : -1;
}

const char *component_last_error(const struct component *comp)
{
	return comp ? comp->last_error : "";
}
