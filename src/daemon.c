/*
 * serve: the daemon. One thread owns everything: libstrophe (which is not
 * thread-safe), libmicrohttpd in external-loop mode, and a signalfd. The loop
 * poll()s three descriptors and sleeps at most a second when idle.
 *
 * This file is also the glue where an authenticated HTTP request becomes an
 * ad-hoc command (create-account, or a password reset): http/ knows nothing
 * of the key store or the component, and component/ nothing of HTTP.
 */

#include "adhoc_keys.h"
#include "commands.h"
#include "component.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "usage.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define RETRY_AFTER_S         5
#define MAX_IDLE_WAIT_MS      1000
#define STOP_TIMEOUT_MS       2000
#define FLUSH_DELAY_MS        5000 /* usage counters reach the disk at most this late */
#define STORE_BUSY_TIMEOUT_MS 100
#define FLUSH_WARN_EVERY_MS   60000 /* while usage cannot be written, say so this often */
#define FDS_BESIDES_HTTP      64    /* listener, epoll, XMPP socket, key store, log, ... */

struct daemon {
	struct adhoc_keys adhoc_keys;
	const struct config *cfg;
	struct keystore *keys;
	struct component *component;
	struct http_api *http;
	struct usage *usage;
	uint64_t flush_at; /* when usage must be written, ms monotonic; 0: nothing to write */
	bool flush_failing;
	uint64_t flush_warned_at; /* last warning while flush_failing */
	int signal_fd;
	bool stopping;
};

/* One HTTP request waiting for the XMPP server. */
struct invite_request {
	struct daemon *daemon;
	struct http_api_request *req;
	char key_id[sizeof(((struct http_api_key *)0)->id)];
	char host[sizeof(((struct http_api_key *)0)->host)];
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What a key may do, in the key store's terms and in the HTTP module's. */
static const struct {
	unsigned allow; /* KEYS_ALLOW_* */
	unsigned may;   /* HTTP_API_MAY_* */
} permissions[] = {
    {KEYS_ALLOW_ACCOUNT, HTTP_API_MAY_ACCOUNT},
    {KEYS_ALLOW_RESET, HTTP_API_MAY_RESET},
};

static unsigned http_permissions(unsigned allow)
{
	unsigned may = 0;
	for (size_t i = 0; i < sizeof(permissions) / sizeof(permissions[0]); i++) {
		if ((allow & permissions[i].allow) != 0)
			may |= permissions[i].may;
	}
	return may;
}

/* The command an HTTP request asks for. */
static const enum invite_kind invite_kinds[] = {
    [HTTP_API_INVITE_ACCOUNT] = INVITE_ACCOUNT,
    [HTTP_API_INVITE_RESET] = INVITE_RESET,
};

static enum http_api_auth authenticate(void *userdata, const char *credential, size_t len,
                                       struct http_api_key *key)
{
	struct daemon *d = userdata;
	struct api_key_match match;
	const char *errstr = NULL;

	switch (keystore_verify(d->keys, credential, len, time(NULL), &match, &errstr)) {
	case KEYS_OK:
		break;
	case KEYS_ERROR:
		log_error("key store: %s", errstr);
		return HTTP_API_AUTH_ERROR;
	default:
		return HTTP_API_AUTH_DENIED;
	}
	const char *host = config_host(d->cfg, match.host);
	if (host == NULL) {
		log_warn("key %s belongs to %s, which is no longer in [component] hosts", match.id,
		         match.host);
		return HTTP_API_AUTH_DENIED;
	}
	if (usage_track(d->usage, &match) < 0) {
		log_error("out of memory");
		return HTTP_API_AUTH_ERROR;
	}
	snprintf(key->id, sizeof(key->id), "%s", match.id);
	snprintf(key->host, sizeof(key->host), "%s", host);
	key->may = http_permissions(match.limits.allow);
	return HTTP_API_AUTH_OK;
}

/* What the operator must change, by the error condition the server gave.
 * Each hint is a format taking the component JID and the host, in that order
 * (%1$s, %2$s). */
static const struct {
	const char *condition;
	const char *hint;
} remote_error_hints[] = {
    {"forbidden", "add \"%1$s\" to admins of VirtualHost \"%2$s\" in the server config, "
                  "e.g. admins = { \"%1$s\" }"},
    {"not-authorized", "add \"%1$s\" to admins of VirtualHost \"%2$s\" in the server "
                       "config"},
    {"item-not-found", "load mod_invites_adhoc (and mod_adhoc) on VirtualHost \"%2$s\"; "
                       "on ejabberd, reach it with access = privileged in [host:%2$s]"},
    {"service-unavailable", "load mod_invites_adhoc (and mod_adhoc) on VirtualHost \"%2$s\""},
    {"feature-not-implemented", "load mod_invites_adhoc on VirtualHost \"%2$s\""},
    /* Prosody treats an unknown host as a remote domain. */
    {"not-allowed", "is \"%2$s\" a VirtualHost of the server? check [component] hosts"},
    {"remote-server-not-found", "\"%2$s\" is not a VirtualHost of the server: check "
                                "[component] hosts"},
    {"remote-server-timeout", "\"%2$s\" is not a VirtualHost of the server: check "
                              "[component] hosts"},
};

/* Say what the operator must change when the server refuses the command. */
static void log_remote_error(const struct daemon *d, const char *host,
                             const struct component_result *res)
{
	const char *condition = res->condition != NULL ? res->condition : "";
	const char *act_as = config_act_as(d->cfg, host);
	if (act_as != NULL && strcmp(condition, "forbidden") == 0) {
		log_error("%s refused to create an invite for %s (forbidden: %s): let %s create "
		          "invites on the server (ejabberd: mod_invites access_create_account)",
		          host, act_as, res->reason, act_as);
		return;
	}
	for (size_t i = 0; i < sizeof(remote_error_hints) / sizeof(remote_error_hints[0]); i++) {
		if (strcmp(condition, remote_error_hints[i].condition) != 0)
			continue;
		char hint[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(hint, sizeof(hint), remote_error_hints[i].hint, d->cfg->component.jid,
		         host);
#pragma GCC diagnostic pop
		log_error("%s refused to create an invite (%s: %s): %s", host, condition,
		          res->reason, hint);
		return;
	}
	log_error("%s refused to create an invite (%s): %s", host,
	          condition[0] != '\0' ? condition : "no condition", res->reason);
}

static void on_invite(void *userdata, const struct component_result *res)
{
	struct invite_request *ir = userdata;
	struct daemon *d = ir->daemon;
	char reason[512];

	usage_settle(d->usage, ir->key_id, res->status == COMPONENT_OK, time(NULL));
	if (d->flush_at == 0 && usage_dirty(d->usage))
		d->flush_at = now_ms() + FLUSH_DELAY_MS;

	switch (res->status) {
	case COMPONENT_OK: {
		const struct invite *inv = res->invite;
		struct http_api_invite answer = {
		    .url = inv->landing_url != NULL ? inv->landing_url : inv->uri,
		    .uri = inv->uri,
		    .expires = inv->expire,
		};
		http_api_request_invite(ir->req, &answer);
		break;
	}
	case COMPONENT_OFFLINE:
		http_api_request_fail(ir->req, 503, "the connection to the XMPP server was lost",
		                      RETRY_AFTER_S);
		break;
	case COMPONENT_SHUTDOWN:
		http_api_request_fail(ir->req, 503, "the service is shutting down", RETRY_AFTER_S);
		break;
	case COMPONENT_TIMEOUT:
		http_api_request_fail(ir->req, 504, "the XMPP server did not answer in time", 0);
		break;
	case COMPONENT_REMOTE_ERROR:
		log_remote_error(ir->daemon, ir->host, res);
		snprintf(reason, sizeof(reason), "the XMPP server refused to create an invite: %s",
		         res->reason);
		http_api_request_fail(ir->req, 502, reason, 0);
		break;
	case COMPONENT_UNSUPPORTED:
		snprintf(reason, sizeof(reason), "the XMPP server cannot do this: %s", res->reason);
		http_api_request_fail(ir->req, 501, reason, 0);
		break;
	case COMPONENT_CONFLICT:
		snprintf(reason, sizeof(reason), "the XMPP server refused the username: %s",
		         res->reason);
		http_api_request_fail(ir->req, 409, reason, 0);
		break;
	case COMPONENT_BAD_REPLY:
		log_error("%s sent an unexpected reply: %s", ir->host, res->reason);
		snprintf(reason, sizeof(reason), "unexpected reply from the XMPP server: %s",
		         res->reason);
		http_api_request_fail(ir->req, 502, reason, 0);
		break;
	}
	free(ir);
}

static void create_invite(void *userdata, struct http_api_request *req,
                          const struct http_api_key *key,
                          const struct http_api_invite_request *invite)
{
	struct daemon *d = userdata;
	const struct invite_params params = {
	    .kind = invite_kinds[invite->kind],
	    .username = invite->username,
	    .account_jid = invite->account_jid,
	};

	if (d->stopping) {
		http_api_request_fail(req, 503, "the service is shutting down", RETRY_AFTER_S);
		return;
	}
	if (!component_online(d->component)) {
		http_api_request_fail(req, 503, "not connected to the XMPP server", RETRY_AFTER_S);
		return;
	}
	if (component_pending(d->component) >= d->cfg->component.max_pending) {
		http_api_request_fail(req, 503, "too many requests waiting for the XMPP server",
		                      RETRY_AFTER_S);
		return;
	}
	/* Known from discovery: no need to ask (Prosody before 13 has no reset). */
	if (params.kind == INVITE_RESET &&
	    component_host_offers(d->component, key->host, INVITE_RESET) == COMPONENT_OFFER_NO) {
		http_api_request_fail(req, 501,
		                      "the XMPP server does not offer password-reset invites", 0);
		return;
	}
	struct invite_request *ir = calloc(1, sizeof(*ir));
	if (ir == NULL) {
		http_api_request_fail(req, 500, "out of memory", 0);
		return;
	}
	long wait = usage_reserve(d->usage, key->id, time(NULL));
	if (wait > 0) {
		free(ir);
		http_api_request_fail(req, 429, "this key has reached its invite limit",
		                      (unsigned)wait);
		return;
	}
	ir->daemon = d;
	ir->req = req;
	snprintf(ir->key_id, sizeof(ir->key_id), "%s", key->id);
	snprintf(ir->host, sizeof(ir->host), "%s", key->host);
	if (component_request_invite(d->component, ir->host, &params, on_invite, ir) < 0) {
		usage_settle(d->usage, ir->key_id, false, time(NULL));
		free(ir);
		http_api_request_fail(req, 503, "not connected to the XMPP server", RETRY_AFTER_S);
	}
}

/* Write usage counters in batches, off the requests' path. A full disk or a
 * store that became read-only fails every attempt: that is said when it
 * starts, then once a minute, and when it is over. */
static void flush_usage(struct daemon *d)
{
	const char *errstr = NULL;
	uint64_t now = now_ms();
	if (usage_flush(d->usage, d->keys, &errstr) != KEYS_OK) {
		if (!d->flush_failing || now - d->flush_warned_at >= FLUSH_WARN_EVERY_MS) {
			log_warn("cannot record key usage (retrying every %d s): %s",
			         FLUSH_DELAY_MS / 1000, errstr);
			d->flush_warned_at = now;
		}
		d->flush_failing = true;
		d->flush_at = now + FLUSH_DELAY_MS;
		return;
	}
	if (d->flush_failing)
		log_info("key usage recorded again");
	d->flush_failing = false;
	d->flush_at = 0;
}

static const struct http_api_handlers http_handlers = {
    .authenticate = authenticate,
    .create_invite = create_invite,
};

/* SIGTERM/SIGINT end the loop; SIGPIPE is ignored (a peer that went away is
 * an error return, not a reason to die). */
static int open_signal_fd(void)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* Read the HTTPS certificate and key; NULL after logging why. */
static struct http_api_tls *load_tls(const struct config *cfg)
{
	char err[PATH_MAX * 2 + 256];
	struct http_api_tls *tls = NULL;
	if (config_check_private(cfg->http.tls_key, "[http] tls_key", err, sizeof(err)) == 0)
		tls = http_api_tls_load(cfg->http.tls_certificate, cfg->http.tls_key, err,
		                        sizeof(err));
	if (tls == NULL) {
		log_error("HTTPS: %s", err);
		return NULL;
	}
	time_t expires = http_api_tls_expires(tls);
	if (expires != (time_t)-1 && expires < time(NULL))
		log_warn("HTTPS: the certificate in %s has expired", cfg->http.tls_certificate);
	return tls;
}

/*
 * SIGHUP re-reads the certificate and key files (e.g. after a renewal): new
 * handshakes get the new certificate, open connections and the XMPP stream
 * are untouched. Files that do not load leave the current certificate in
 * place. The rest of the configuration needs a restart.
 */
static void reload(struct daemon *d)
{
	if (d->cfg->http.tls_certificate == NULL) {
		log_info("SIGHUP: nothing to reload (no HTTPS certificate; keys are read on every "
		         "request; other configuration changes need a restart)");
		return;
	}
	struct http_api_tls *tls = load_tls(d->cfg);
	if (tls == NULL) {
		log_error("SIGHUP: keeping the current HTTPS certificate");
		return;
	}
	char description[512];
	snprintf(description, sizeof(description), "%s", http_api_tls_describe(tls));
	if (http_api_set_tls(d->http, tls) < 0) {
		log_error("SIGHUP: the HTTP listener has no TLS to reload");
		return;
	}
	log_info("SIGHUP: reloaded the HTTPS certificate from %s (%s); other configuration "
	         "changes need a restart",
	         d->cfg->http.tls_certificate, description);
}

static void read_signals(struct daemon *d)
{
	struct signalfd_siginfo info;
	while (read(d->signal_fd, &info, sizeof(info)) == sizeof(info)) {
		if (info.ssi_signo == SIGHUP) {
			reload(d);
			continue;
		}
		log_info("%s received, shutting down", strsignal((int)info.ssi_signo));
		d->stopping = true;
	}
}

/*
 * Each HTTP connection is a descriptor, and Debian's soft limit on them is
 * 1024 (the hard limit is far higher; systemd's default is 1024:524288). Raise
 * the soft limit to what max_connections needs, or refuse to start with the
 * fix: at the limit, accept() would fail while the listener stays readable.
 */
static int raise_fd_limit(unsigned max_connections, char *err, size_t size)
{
	rlim_t need = (rlim_t)HTTP_API_DESCRIPTORS(max_connections) + FDS_BESIDES_HTTP;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		snprintf(err, size, "cannot read the open file limit: %s", strerror(errno));
		return -1;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		snprintf(err, size,
		         "[http] max_connections = %u needs %llu open files, but this process may "
		         "have at most %llu: lower max_connections, or raise the limit (systemd: "
		         "LimitNOFILE=%llu; a shell: ulimit -n %llu)",
		         max_connections, (unsigned long long)need, (unsigned long long)rl.rlim_max,
		         (unsigned long long)need, (unsigned long long)need);
		return -1;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		snprintf(err, size, "cannot raise the open file limit to %llu: %s",
		         (unsigned long long)need, strerror(errno));
		return -1;
	}
	return 0;
}

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

/* Wait for work (at most max_wait_ms) and do it. -1 if polling failed. */
static int run_once(struct daemon *d, int max_wait_ms)
{
	int comp_fd = component_fd(d->component);
	struct pollfd fds[] = {
	    {.fd = d->signal_fd, .events = POLLIN},
	    {.fd = http_api_fd(d->http), .events = POLLIN},
	    {.fd = comp_fd, .events = POLLIN | (component_wants_write(d->component) ? POLLOUT : 0)},
	};
	int timeout =
	    min_timeout(component_next_timeout(d->component), http_api_next_timeout(d->http));
	timeout = min_timeout(timeout, max_wait_ms);

	log_flush(); /* what this round logged, before waiting */
	if (poll(fds, comp_fd >= 0 ? 3 : 2, timeout) < 0 && errno != EINTR) {
		log_error("poll: %s", strerror(errno));
		return -1;
	}
	if (fds[0].revents & POLLIN)
		read_signals(d);
	/* Most rounds are HTTP only: then the component is left alone (each
	 * xmpp_run_once() is an ioctl() and a select()). */
	if (comp_fd < 0 || fds[2].revents != 0 || !component_idle(d->component))
		component_run(d->component);
	http_api_run(d->http);
	/* Send what the HTTP handlers just queued without another round. */
	if (component_wants_write(d->component))
		component_run(d->component);
	if (d->flush_at != 0 && now_ms() >= d->flush_at)
		flush_usage(d);
	return 0;
}

static int run_loop(struct daemon *d)
{
	while (!d->stopping) {
		if (run_once(d, MAX_IDLE_WAIT_MS) < 0)
			return -1;
	}
	return 0;
}

/*
 * Shutdown: stop accepting, fail every request still waiting on the server
 * (the component answers them with COMPONENT_SHUTDOWN, so 503), and keep
 * running the loop while the stream closes, so those 503s leave at once
 * rather than after the server acknowledged the close (or did not).
 */
static void shut_down(struct daemon *d)
{
	http_api_quiesce(d->http);
	component_stop(d->component, 0);
	uint64_t deadline = now_ms() + STOP_TIMEOUT_MS;
	for (uint64_t now = now_ms(); now < deadline; now = now_ms()) {
		if (component_fd(d->component) < 0 && http_api_waiting(d->http) == 0)
			break;
		if (run_once(d, (int)(deadline - now)) < 0)
			break;
	}
	const char *errstr = NULL;
	if (usage_dirty(d->usage) && usage_flush(d->usage, d->keys, &errstr) != KEYS_OK)
		log_warn("key usage since the last write is lost: %s", errstr);
}

int cmd_serve(const struct config *cfg, const char *cfg_path, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct daemon d = {.cfg = cfg, .signal_fd = -1};
	const char *errstr = NULL;
	int status = EXIT_FAILURE;
	char *secret = NULL;
	char err[PATH_MAX * 2 + 256];

	log_info("invites-api %s starting with %s (%zu host%s, %zu XMPP admin%s)",
	         INVITES_API_VERSION, cfg_path, cfg->component.n_hosts,
	         cfg->component.n_hosts == 1 ? "" : "s", cfg->component.n_admins,
	         cfg->component.n_admins == 1 ? "" : "s");
	if (raise_fd_limit(cfg->http.max_connections, err, sizeof(err)) < 0 ||
	    config_check_files(cfg, cfg_path, err, sizeof(err)) < 0 ||
	    config_secret(cfg, &secret, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	d.signal_fd = open_signal_fd();
	if (d.signal_fd < 0) {
		log_error("signalfd: %s", strerror(errno));
		config_secret_free(secret);
		return EXIT_FAILURE;
	}
	if (keys_init() < 0) {
		log_error("cannot initialise libsodium");
		goto err_signal;
	}
	d.keys = keystore_open(cfg->keys.database, &errstr);
	if (d.keys == NULL) {
		log_error("%s", errstr);
		goto err_signal;
	}
	/* The loop must not stall while the CLI writes: a usage flush that finds
	 * the store locked is retried later; an ad-hoc change reports the error.
	 * The wait can end sooner: the writes that hold the lock raise SIGIO (the
	 * key cache's watch), which cuts SQLite's sleeps between tries short. */
	keystore_set_busy_timeout(d.keys, STORE_BUSY_TIMEOUT_MS);
	int cached = keystore_cache_verification(d.keys);
	if (cached < 0)
		log_warn("cannot watch the key store's directory (inotify: %s): every request "
		         "reads the key store",
		         strerror(errno));
	else if (cached > 0)
		log_info(
		    "SIGIO is %s (%s): every request drains the key store's watch with a read()",
		    errno == EBUSY ? "ignored or handled elsewhere" : "blocked or unusable",
		    strerror(errno));
	d.usage = usage_create();
	if (d.usage == NULL) {
		log_error("out of memory");
		goto err_keys;
	}

	/* The component discovers every host on each connect and logs one line each. */
	struct component_host hosts[CONFIG_HOSTS_MAX];
	for (size_t i = 0; i < cfg->component.n_hosts; i++)
		hosts[i] = (struct component_host){cfg->component.hosts[i],
		                                   config_act_as(cfg, cfg->component.hosts[i])};
	struct component_config ccfg = {
	    .jid = cfg->component.jid,
	    .secret = secret,
	    .server = cfg->component.server,
	    .port = cfg->component.port,
	    .request_timeout_ms = cfg->component.request_timeout_s * 1000,
	    .hosts = hosts,
	    .n_hosts = cfg->component.n_hosts,
	};
	d.component = component_create(&ccfg, &errstr);
	if (d.component == NULL) {
		log_error("component: %s", errstr);
		goto err_keys;
	}
	if (component_set_version(d.component, "invites-api", INVITES_API_VERSION) < 0 ||
	    adhoc_keys_register(&d.adhoc_keys, d.component, d.keys, cfg) < 0) {
		log_error("component: out of memory");
		goto err_component;
	}

	struct http_api_tls *tls = NULL;
	if (cfg->http.tls_certificate != NULL && (tls = load_tls(cfg)) == NULL)
		goto err_component;
	struct http_api_config hcfg = {
	    .bind = cfg->http.bind,
	    .port = cfg->http.port,
	    .path = cfg->http.path,
	    .cors_origin = cfg->http.cors_origin,
	    .max_connections = cfg->http.max_connections,
	    .connection_timeout_s = cfg->http.connection_timeout_s,
	    .tls = tls,
	    .request_deadline_s = cfg->http.request_deadline_s,
	    .max_connections_per_ip = cfg->http.max_connections_per_ip,
	    .auth_failure_burst = cfg->http.auth_failure_burst,
	    .auth_failure_rate = cfg->http.auth_failure_rate,
	    .trusted_proxies = (const char *const *)cfg->http.trusted_proxies,
	    .n_trusted_proxies = cfg->http.n_trusted_proxies,
	};
	d.http = http_api_create(&hcfg, &http_handlers, &d, &errstr);
	if (d.http == NULL) {
		log_error("HTTP on %s port %u: %s", cfg->http.bind, cfg->http.port, errstr);
		goto err_component;
	}
	bool ipv6 = strchr(cfg->http.bind, ':') != NULL;
	log_info("listening on %s://%s%s%s:%u%s", tls != NULL ? "https" : "http", ipv6 ? "[" : "",
	         cfg->http.bind, ipv6 ? "]" : "", http_api_port(d.http), cfg->http.path);
	if (tls != NULL)
		log_info("HTTPS certificate from %s: %s", cfg->http.tls_certificate,
		         http_api_tls_describe(tls));

	if (component_start(d.component) < 0) {
		log_error("component: cannot start the XMPP connection");
		goto err_http;
	}
	log_set_buffered(true); /* flushed before every wait, and when turned off */
	int loop_status = run_loop(&d);
	log_set_buffered(false);
	shut_down(&d);
	status = loop_status == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
err_http:
	http_api_destroy(d.http);
err_component:
	component_destroy(d.component);
err_keys:
	usage_destroy(d.usage);
	keystore_close(d.keys);
err_signal:
	close(d.signal_fd);
	config_secret_free(secret);
	if (status == EXIT_SUCCESS)
		log_info("stopped");
	return status;
}
