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
#define HOST_MAX           1023
#define PENDING_BUCKETS    1024 /* hash of pending requests by IQ id */

/* One create-account request waiting for the server's answer. */
struct adhoc_request {
	struct component *comp;
	struct adhoc_request *prev, *next; /* FIFO */
	struct adhoc_request *next_same_bucket;
	char *id; /* from xmpp_uuid_gen(): xmpp_free() */
	char *host;
	uint64_t deadline; /* ms, monotonic */
	component_invite_cb cb;
	void *userdata;
};

struct component {
	xmpp_ctx_t *ctx;
	xmpp_conn_t *conn;
	xmpp_log_t strophe_log; /* must outlive ctx */
	char *jid;
	char *server;
	unsigned short port;
	unsigned request_timeout_ms;

	int fd;
	bool started, stopping;
	bool online;           /* handshake accepted, stream up */
	bool tcp_up;           /* this attempt got past the TCP connect */
	bool stream_broken;    /* libstrophe could not parse what the server sent */
	bool closing_broken;   /* and we are closing that stream */
	unsigned busy;         /* > 0 while inside xmpp_run_once() */
	uint64_t reconnect_at; /* ms, monotonic; 0: none scheduled */
	unsigned backoff_ms;
	unsigned replaced; /* times in a row another connection took over our JID */
	uint64_t rng;

	struct adhoc_request *head, *tail; /* FIFO, so ordered by deadline */
	struct adhoc_request *by_id[PENDING_BUCKETS];
	unsigned pending;

	struct iq_responder responder; /* answers others' IQs (iq.c) */
};

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
 * after the handshake, or the first disconnect, crashes. A client connect whose every socket is
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
 * owns its parser, re-creates it on every stream and offers no switch, so the
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

/* ---- requests ----------------------------------------------------------- */

/*
 * Replies are matched by id in a table of our own rather than with
 * xmpp_id_handler_add(): libstrophe 0.12.2 never removes an id from its
 * handler hash once the handler is gone, so every request would leave ~80
 * bytes behind for the life of the connection object, and its 32-bucket hash
 * would slow every stanza down as the ids piled up.
 */
static size_t id_bucket(const char *id)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % PENDING_BUCKETS;
}

static struct adhoc_request *find_request(struct component *comp, const char *id)
{
	struct adhoc_request *req = comp->by_id[id_bucket(id)];
	while (req != NULL && strcmp(req->id, id) != 0)
		req = req->next_same_bucket;
	return req;
}

static void link_request(struct component *comp, struct adhoc_request *req)
{
	req->prev = comp->tail;
	if (comp->tail)
		comp->tail->next = req;
	else
		comp->head = req;
	comp->tail = req;
	size_t b = id_bucket(req->id);
	req->next_same_bucket = comp->by_id[b];
	comp->by_id[b] = req;
	comp->pending++;
}

static void unlink_request(struct component *comp, struct adhoc_request *req)
{
	struct adhoc_request **link = &comp->by_id[id_bucket(req->id)];
	while (*link != req)
		link = &(*link)->next_same_bucket;
	*link = req->next_same_bucket;

	if (req->prev)
		req->prev->next = req->next;
	else
		comp->head = req->next;
	if (req->next)
		req->next->prev = req->prev;
	else
		comp->tail = req->prev;
	req->prev = req->next = NULL;
	comp->pending--;
}

/* Unlink and free req, then report the result: the callback may queue new
 * requests or look at the component, which is consistent by then. */
static void finish_request(struct adhoc_request *req, const struct component_result *result)
{
	component_invite_cb cb = req->cb;
	void *userdata = req->userdata;

	unlink_request(req->comp, req);
	xmpp_free(req->comp->ctx, req->id);
	free(req->host);
	free(req);
	cb(userdata, result);
}

static void fail_request(struct adhoc_request *req, enum component_status status,
                         const char *reason)
{
	struct component_result result = {.status = status, .reason = reason};

	finish_request(req, &result);
}

static void fail_all_requests(struct component *comp, enum component_status status,
                              const char *reason)
{
	while (comp->head)
		fail_request(comp->head, status, reason);
}

static void expire_requests(struct component *comp, uint64_t now)
{
	char reason[ADHOC_REASON_MAX];

	while (comp->head && comp->head->deadline <= now) {
		snprintf(reason, sizeof(reason), "%s did not answer within %u ms", comp->head->host,
		         comp->request_timeout_ms);
		fail_request(comp->head, COMPONENT_TIMEOUT, reason);
	}
}

/* Does the from of a reply name host? Domains compare case-insensitively, a
 * resource is ignored; a node (user@host) never matches a bare host. */
static bool from_is_host(const char *from, const char *host)
{
	size_t len = strcspn(from, "/");
	return len == strlen(host) && strncasecmp(from, host, len) == 0 &&
	       memchr(from, '@', len) == NULL;
}

/* libstrophe fires an id handler for any stanza with that id, whoever sent it:
 * only a result or error from the host we asked answers the request. */
/* Every IQ passes here; answers to our requests are picked out by id and
 * sender. Anything else is left to the IQ responder (iq.c). */
static int handle_reply(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
	struct component *comp = userdata;
	const char *from = xmpp_stanza_get_from(stanza);
	const char *type = xmpp_stanza_get_type(stanza);
	const char *id = xmpp_stanza_get_id(stanza);
	struct adhoc_reply reply;
	(void)conn;

	if (!from || !type || !id || (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
		return 1;
	struct adhoc_request *req = find_request(comp, id);
	if (req == NULL || !from_is_host(from, req->host))
		return 1; /* not an answer we wait for (or from the wrong sender): ignore */

	adhoc_reply_parse(stanza, &reply);
	struct component_result result = {
	    .status = reply.status,
	    .invite = reply.status == COMPONENT_OK ? &reply.invite : NULL,
	    .condition = reply.status == COMPONENT_REMOTE_ERROR ? reply.condition : NULL,
	    .reason = reply.status == COMPONENT_OK ? NULL : reply.reason,
	};
	finish_request(req, &result);
	adhoc_reply_finish(&reply);
	return 1; /* stays registered for the next reply */
}

static xmpp_stanza_t *build_request(struct component *comp, const char *host, const char *id)
{
	xmpp_stanza_t *iq = xmpp_iq_new(comp->ctx, "set", id);
	xmpp_stanza_t *command = xmpp_stanza_new(comp->ctx);

	if (!iq || !command || xmpp_stanza_set_from(iq, comp->jid) != XMPP_EOK ||
	    xmpp_stanza_set_to(iq, host) != XMPP_EOK ||
	    xmpp_stanza_set_name(command, "command") != XMPP_EOK ||
	    xmpp_stanza_set_ns(command, NS_COMMANDS) != XMPP_EOK ||
	    xmpp_stanza_set_attribute(command, "node", NODE_CREATE_ACCOUNT) != XMPP_EOK ||
	    xmpp_stanza_set_attribute(command, "action", "execute") != XMPP_EOK ||
	    xmpp_stanza_add_child(iq, command) != XMPP_EOK)
		goto err;
	xmpp_stanza_release(command);
	return iq;
err:
	if (command)
		xmpp_stanza_release(command);
	if (iq)
		xmpp_stanza_release(iq);
	return NULL;
}

int component_create_invite(struct component *comp, const char *host, component_invite_cb cb,
                            void *userdata)
{
	const struct invite_params params = {.kind = INVITE_ACCOUNT};
	return component_request_invite(comp, host, &params, cb, userdata);
}

int component_request_invite(struct component *comp, const char *host,
                             const struct invite_params *params, component_invite_cb cb,
                             void *userdata)
{
	if (!comp || !comp->online || comp->stopping || !host || !*host ||
	    strlen(host) > HOST_MAX || !cb || !params || params->kind != INVITE_ACCOUNT ||
	    params->username)
		return -1;

	struct adhoc_request *req = calloc(1, sizeof(*req));
	if (!req)
		return -1;
	req->comp = comp;
	req->cb = cb;
	req->userdata = userdata;
	req->id = xmpp_uuid_gen(comp->ctx);
	req->host = strdup(host);
	if (!req->id || !req->host)
		goto err_req;
	xmpp_stanza_t *iq = build_request(comp, host, req->id);
	if (!iq)
		goto err_req;

	req->deadline = monotonic_ms() + comp->request_timeout_ms;
	link_request(comp, req);
	xmpp_send(comp->conn, iq);
	xmpp_stanza_release(iq);
	return 0;

err_req:
	if (req->id)
		xmpp_free(comp->ctx, req->id);
	free(req->host);
	free(req);
	return -1;
}

/* ---- connection --------------------------------------------------------- */

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
	fail_all_requests(comp, COMPONENT_OFFLINE, "the connection to the XMPP server was lost");
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
		log_info("connected to %s:%u as component %s", comp->server, comp->port, comp->jid);
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
	int rc =
	    xmpp_connect_component(comp->conn, comp->server, comp->port, handle_connection, comp);
	comp->fd = rc == XMPP_EOK ? new_socket_fd : -1;
	new_socket_fd = -1;
	if (rc != XMPP_EOK) {
		/* No callback follows a failure here: retry like after a refusal. */
		char cause[512];
		describe_connect_failure(comp, "refused, unreachable or not resolvable", cause,
		                         sizeof(cause));
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

	struct component *comp = calloc(1, sizeof(*comp));
	if (!comp)
		goto err;
	comp->fd = -1;
	comp->port = cfg->port ? cfg->port : 5347;
	comp->request_timeout_ms = cfg->request_timeout_ms;
	comp->backoff_ms = BACKOFF_MIN_MS;
	comp->strophe_log = (xmpp_log_t){.handler = strophe_logger, .userdata = comp};
	seed_random(comp);
	comp->jid = strdup(cfg->jid);
	comp->server = strdup(cfg->server);
	if (!comp->jid || !comp->server)
		goto err_comp;

	xmpp_initialize();
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
	xmpp_handler_add(comp->conn, handle_reply, NULL, "iq", NULL, comp);
	return comp;

err_conn:
	xmpp_conn_release(comp->conn);
err_ctx:
	xmpp_ctx_free(comp->ctx);
err_init:
	xmpp_shutdown();
err_comp:
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
	fail_all_requests(comp, COMPONENT_SHUTDOWN, "the component is shutting down");
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
	xmpp_shutdown();
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
	if (comp->head && comp->head->deadline < due)
		due = comp->head->deadline;
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
	expire_requests(comp, now);
	commands_expire(comp->responder.commands, now);
	if (comp->reconnect_at && now >= comp->reconnect_at && !comp->stopping &&
	    xmpp_conn_is_disconnected(comp->conn))
		connect_attempt(comp);
}

unsigned component_pending(const struct component *comp)
{
	return comp ? comp->pending : 0;
}

int component_commands_register(struct component *comp, const struct component_commands *cmds)
{
	return comp ? iq_responder_register_commands(&comp->responder, cmds) : -1;
}

int component_set_version(struct component *comp, const char *name, const char *version)
{
	return comp ? iq_responder_set_version(&comp->responder, name, version) : -1;
}

enum component_offer component_host_offers(const struct component *comp, const char *host,
                                           enum invite_kind kind)
{
	(void)comp;
	(void)host;
	(void)kind;
	return COMPONENT_OFFER_UNKNOWN;
}

bool component_host_discovered(const struct component *comp, const char *host)
{
	(void)comp;
	(void)host;
	return false;
}

void component_host_describe(const struct component *comp, const char *host, char *buf, size_t size)
{
	(void)comp;
	snprintf(buf, size, "%s: commands unknown (not asked yet)", host);
}

const char *component_last_error(const struct component *comp)
{
	(void)comp;
	return "";
}
