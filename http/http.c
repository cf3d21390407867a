#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http-internal.h"
#include "log.h"

#define DEFAULT_CONNECTION_LIMIT     512
#define MAX_CONNECTION_LIMIT         900 /* libstrophe select()s: its fd must stay < 1024 */
#define DEFAULT_CONNECTION_TIMEOUT_S 30
#define PER_IP_CONNECTION_LIMIT      64
#define SHUTDOWN_FLUSH_MS            2000
#define CONNECTION_MEMORY            (48 * 1024) /* per connection: request + answer */
#define HTTP_MAX_REQUEST_HEADERS     (16 * 1024) /* URL, query and headers; see headers_too_large() */
#define ALLOWED_METHODS              "GET, POST, OPTIONS"
#define CONTENT_TYPE_TEXT            "text/plain; charset=utf-8"
#define CONTENT_TYPE_JSON            "application/json"
#define TLS_PRIORITIES               "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/*
 * A request goes RECEIVING (headers and body arrive) -> CREATING (inside the
 * create_invite handler) -> WAITING (connection suspended until the daemon
 * answers) -> RESUMED (answer stored, MHD will call us again) -> SENT.
 * Requests answered before create_invite returns skip WAITING and RESUMED.
 */
enum request_state {
	REQUEST_RECEIVING,
	REQUEST_CREATING,
	REQUEST_WAITING,
	REQUEST_RESUMED,
	REQUEST_SENT,
};

struct http_api_request {
	struct http_api *api;
	struct MHD_Connection *connection;
	struct http_api_request *prev, *next; /* api->waiting, while WAITING */
	enum request_state state;
	struct timespec start;
	char method[16]; /* escaped for the log */
	char path[128];  /* escaped for the log, never with a query */
	struct http_api_key key;
	bool authenticated;
	bool json;     /* answer in JSON (Accept) */
	bool redirect; /* answer an invite with 303 */
	size_t body_bytes;
	bool answered;
	unsigned status;               /* valid once answered */
	struct MHD_Response *response; /* answer not yet queued */
};

struct http_api {
	struct MHD_Daemon *daemon;
	struct http_api_handlers handlers;
	void *userdata;
	char *path;
	char *cors_origin;
	int epoll_fd;
	unsigned short port;
	bool quiesced;
	bool shutting_down;
	/* HTTPS: the certificate (NULL: plain HTTP), and the next in https_listeners */
	struct http_api_tls *tls;
	struct http_api *next_https;
	struct http_api_request *waiting; /* suspended, waiting for the daemon */
	unsigned waiting_count;
	unsigned resumed;   /* answered while suspended, not yet queued */
	unsigned unflushed; /* answered, not yet completed */
};

/* Answers the module gives on its own. */
enum answer {
	ANSWER_TOO_LARGE,
	ANSWER_HEADERS_TOO_LARGE,
	ANSWER_NOT_FOUND,
	ANSWER_NOT_ALLOWED,
	ANSWER_NO_KEY,
	ANSWER_SCHEME,
	ANSWER_BAD_KEY,
	ANSWER_CONFLICT,
	ANSWER_BAD_REDIRECT,
	ANSWER_STORE_ERROR,
	ANSWER_SHUTTING_DOWN,
};

static const struct fixed_answer {
	unsigned status;
	const char *reason;
	const char *header; /* one extra header, or NULL */
	const char *value;
} fixed_answers[] = {
    [ANSWER_TOO_LARGE] = {MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", NULL, NULL},
    [ANSWER_HEADERS_TOO_LARGE] = {MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
                                  "request headers too large", NULL, NULL},
    [ANSWER_NOT_FOUND] = {MHD_HTTP_NOT_FOUND, "not found", NULL, NULL},
    [ANSWER_NOT_ALLOWED] = {MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", "Allow",
                            ALLOWED_METHODS},
    [ANSWER_NO_KEY] = {MHD_HTTP_UNAUTHORIZED, "missing key", "WWW-Authenticate", "Bearer"},
    [ANSWER_SCHEME] = {MHD_HTTP_UNAUTHORIZED, "Authorization must use the Bearer scheme",
                       "WWW-Authenticate", "Bearer"},
    [ANSWER_BAD_KEY] = {MHD_HTTP_UNAUTHORIZED, "invalid key", "WWW-Authenticate",
                        "Bearer error=\"invalid_token\""},
    [ANSWER_CONFLICT] = {MHD_HTTP_BAD_REQUEST, "conflicting keys in query and Authorization header",
                         NULL, NULL},
    [ANSWER_BAD_REDIRECT] = {MHD_HTTP_BAD_REQUEST, "redirect must be true or false", NULL, NULL},
    [ANSWER_STORE_ERROR] = {MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error", NULL, NULL},
    [ANSWER_SHUTTING_DOWN] = {MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down", NULL, NULL},
};

static const enum answer credential_answers[] = {
    [CREDENTIAL_MISSING] = ANSWER_NO_KEY,
    [CREDENTIAL_SCHEME] = ANSWER_SCHEME,
    [CREDENTIAL_MALFORMED] = ANSWER_BAD_KEY,
    [CREDENTIAL_CONFLICT] = ANSWER_CONFLICT,
};

/* On every answer, errors and preflights included. */
static const struct header {
	const char *name;
	const char *value;
} common_headers[] = {
    {"Access-Control-Allow-Methods", ALLOWED_METHODS},
    {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
    {"Access-Control-Expose-Headers", "Location"},
    {"Access-Control-Max-Age", "7200"},
    {"Cache-Control", "no-store"}, /* an invite must never be cached */
};

static const char *const termination_notes[] = {
    [MHD_REQUEST_TERMINATED_COMPLETED_OK] = "",
    [MHD_REQUEST_TERMINATED_WITH_ERROR] = " (aborted)",
    [MHD_REQUEST_TERMINATED_TIMEOUT_REACHED] = " (timeout)",
    [MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN] = " (shutdown)",
    [MHD_REQUEST_TERMINATED_READ_ERROR] = " (read error)",
    [MHD_REQUEST_TERMINATED_CLIENT_ABORT] = " (client abort)",
};

static int64_t monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Add a header, or destroy the response (NULL passes through). */
static struct MHD_Response *with_header(struct MHD_Response *response, const char *name,
                                        const char *value)
{
	if (response == NULL || MHD_add_response_header(response, name, value) == MHD_YES)
		return response;
	MHD_destroy_response(response);
	return NULL;
}

static struct MHD_Response *with_common_headers(const struct http_api *api,
                                                struct MHD_Response *response)
{
	size_t rows = sizeof(common_headers) / sizeof(common_headers[0]);

	response = with_header(response, "Access-Control-Allow-Origin", api->cors_origin);
	for (size_t i = 0; i < rows; i++)
		response = with_header(response, common_headers[i].name, common_headers[i].value);
	if (strcmp(api->cors_origin, "*") != 0)
		response = with_header(response, "Vary", "Origin");
	if (api->shutting_down)
		response = with_header(response, "Connection", "close");
	return response;
}

/* A response that owns body (malloc'd; NULL means out of memory). */
static struct MHD_Response *body_response(const struct http_api *api, char *body, size_t len,
                                          bool json)
{
	if (body == NULL)
		return NULL;
	struct MHD_Response *response =
	    MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (response == NULL) {
		free(body);
		return NULL;
	}
	response =
	    with_header(response, "Content-Type", json ? CONTENT_TYPE_JSON : CONTENT_TYPE_TEXT);
	return with_common_headers(api, response);
}

static struct MHD_Response *error_response(const struct http_api_request *req, const char *reason,
                                           unsigned retry_after_s)
{
	size_t len = 0;
	char *body = body_error(reason, req->json, &len);
	struct MHD_Response *response = body_response(req->api, body, len, req->json);
	if (retry_after_s > 0) {
		char seconds[16];
		snprintf(seconds, sizeof(seconds), "%u", retry_after_s);
		response = with_header(response, "Retry-After", seconds);
	}
	return response;
}

/* Keep the answer until it can be queued. A NULL response (out of memory)
 * makes request_send() drop the connection. */
static void request_store(struct http_api_request *req, unsigned status,
                          struct MHD_Response *response)
{
	req->answered = true;
	req->status = status;
	req->response = response;
	req->api->unflushed++;
}

static enum MHD_Result request_send(struct http_api_request *req)
{
	struct MHD_Response *response = req->response;

	req->response = NULL;
	req->state = REQUEST_SENT;
	if (response == NULL) {
		req->status = 0;
		return MHD_NO;
	}
	enum MHD_Result ret = MHD_queue_response(req->connection, req->status, response);
	MHD_destroy_response(response);
	if (ret != MHD_YES)
		req->status = 0;
	return ret;
}

static enum MHD_Result answer_fixed(struct http_api_request *req, enum answer which)
{
	const struct fixed_answer *a = &fixed_answers[which];
	struct MHD_Response *response = error_response(req, a->reason, 0);

	if (a->header != NULL)
		response = with_header(response, a->header, a->value);
	request_store(req, a->status, response);
	return request_send(req);
}

static enum MHD_Result answer_preflight(struct http_api_request *req)
{
	struct MHD_Response *response =
	    MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

	request_store(req, MHD_HTTP_NO_CONTENT, with_common_headers(req->api, response));
	return request_send(req);
}

static void waiting_add(struct http_api *api, struct http_api_request *req)
{
	req->prev = NULL;
	req->next = api->waiting;
	if (api->waiting != NULL)
		api->waiting->prev = req;
	api->waiting = req;
	api->waiting_count++;
}

static void waiting_remove(struct http_api *api, struct http_api_request *req)
{
	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		api->waiting = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
	api->waiting_count--;
}

static enum credential_result request_credential(struct http_api_request *req,
                                                 const char **credential, size_t *len)
{
	const char *header = NULL, *query = NULL;
	size_t header_len = 0, query_len = 0;

	/* Values are looked up with their length: a decoded key may hold NUL.
	 * For duplicated names MHD returns the first one only. */
	MHD_lookup_connection_value_n(req->connection, MHD_HEADER_KIND, "Authorization",
	                              strlen("Authorization"), &header, &header_len);
	MHD_lookup_connection_value_n(req->connection, MHD_GET_ARGUMENT_KIND, "key", strlen("key"),
	                              &query, &query_len);
	return credential_pick(header, header_len, query, query_len, credential, len);
}

static int request_redirect(struct http_api_request *req)
{
	const char *value = NULL;
	size_t len = 0;

	MHD_lookup_connection_value_n(req->connection, MHD_GET_ARGUMENT_KIND, "redirect",
	                              strlen("redirect"), &value, &len);
	return redirect_parse(value, len, &req->redirect);
}

/* Authenticate, then hand over to the daemon. Unless create_invite answered
 * at once, the connection is suspended: MHD neither times it out nor calls
 * us again until http_api_request_*() resumes it. */
static enum MHD_Result request_invite(struct http_api_request *req)
{
	struct http_api *api = req->api;
	const char *credential = NULL;
	size_t len = 0;

	enum credential_result found = request_credential(req, &credential, &len);
	if (found != CREDENTIAL_OK)
		return answer_fixed(req, credential_answers[found]);
	if (request_redirect(req) != 0)
		return answer_fixed(req, ANSWER_BAD_REDIRECT);
	switch (api->handlers.authenticate(api->userdata, credential, len, &req->key)) {
	case HTTP_API_AUTH_OK:
		break;
	case HTTP_API_AUTH_DENIED:
		return answer_fixed(req, ANSWER_BAD_KEY);
	default:
		return answer_fixed(req, ANSWER_STORE_ERROR);
	}
	req->key.id[sizeof(req->key.id) - 1] = '\0';
	req->key.host[sizeof(req->key.host) - 1] = '\0';
	req->authenticated = true;
	req->state = REQUEST_CREATING;
	api->handlers.create_invite(api->userdata, req, &req->key);
	if (req->answered)
		return request_send(req);
	req->state = REQUEST_WAITING;
	waiting_add(api, req);
	MHD_suspend_connection(req->connection);
	return MHD_YES;
}

/* The whole request has arrived: route it. */
static enum MHD_Result request_dispatch(struct http_api_request *req, const char *url,
                                        const char *method)
{
	if (req->body_bytes > HTTP_MAX_BODY)
		return answer_fixed(req, ANSWER_TOO_LARGE);
	if (!path_matches(url, req->api->path))
		return answer_fixed(req, ANSWER_NOT_FOUND);
	switch (method_action(method)) {
	case METHOD_NOT_ALLOWED:
		return answer_fixed(req, ANSWER_NOT_ALLOWED);
	case METHOD_PREFLIGHT:
		return answer_preflight(req);
	case METHOD_INVITE:
		break;
	}
	if (req->api->shutting_down)
		return answer_fixed(req, ANSWER_SHUTTING_DOWN);
	return request_invite(req);
}

static bool content_length_too_large(struct MHD_Connection *connection)
{
	const char *value =
	    MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Content-Length");
	if (value == NULL)
		return false;
	errno = 0;
	unsigned long long length = strtoull(value, NULL, 10);
	return errno != 0 || length > HTTP_MAX_BODY;
}

/* First call, headers only. A too large Content-Length is refused before the
 * body is read; MHD then closes the connection after the answer. */
static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
	size_t *total = cls;
	(void)kind;
	*total += strlen(key) + (value != NULL ? strlen(value) : 0) + 4; /* ": " and CRLF */
	return MHD_YES;
}

/*
 * The request and the answer share one memory pool per connection
 * (MHD_OPTION_CONNECTION_MEMORY_LIMIT). A request that filled most of it
 * would leave no room for the answer's headers: the invite would be made and
 * the answer lost. So requests are capped well below the pool size.
 */
static bool headers_too_large(struct MHD_Connection *connection, const char *url)
{
	size_t total = strlen(url);
	MHD_get_connection_values(connection, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND,
	                          add_header_size, &total);
	return total > HTTP_MAX_REQUEST_HEADERS;
}

static enum MHD_Result request_begin(struct http_api *api, struct MHD_Connection *connection,
                                     const char *url, const char *method, void **req_cls)
{
	struct http_api_request *req = calloc(1, sizeof(*req));
	if (req == NULL)
		return MHD_NO;
	req->api = api;
	req->connection = connection;
	req->state = REQUEST_RECEIVING;
	clock_gettime(CLOCK_MONOTONIC, &req->start);
	log_escape(req->method, sizeof(req->method), method, true);
	log_escape(req->path, sizeof(req->path), url, true);
	req->json =
	    accept_wants_json(MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Accept"));
	*req_cls = req;
	if (content_length_too_large(connection))
		return answer_fixed(req, ANSWER_TOO_LARGE);
	if (headers_too_large(connection, url))
		return answer_fixed(req, ANSWER_HEADERS_TOO_LARGE);
	return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
	struct http_api *api = cls;
	struct http_api_request *req = *req_cls;
	(void)version;
	(void)upload_data;

	if (req == NULL)
		return request_begin(api, connection, url, method, req_cls);
	if (*upload_data_size > 0) {
		/* The body means nothing to us: count it and drop it. */
		if (req->body_bytes <= HTTP_MAX_BODY)
			req->body_bytes += *upload_data_size;
		*upload_data_size = 0;
		return MHD_YES;
	}
	switch (req->state) {
	case REQUEST_RECEIVING:
		return request_dispatch(req, url, method);
	case REQUEST_RESUMED:
		api->resumed--;
		return request_send(req);
	default:
		log_error("http: unexpected call for a request in state %d", (int)req->state);
		return MHD_NO;
	}
}

static void request_log(const struct http_api_request *req, enum MHD_RequestTerminationCode toe)
{
	char status[16] = "-", key_id[sizeof(req->key.id)] = "-";
	struct timespec now;
	const char *note = "";

	if (req->status != 0)
		snprintf(status, sizeof(status), "%u", req->status);
	if (req->authenticated)
		log_escape(key_id, sizeof(key_id), req->key.id, true);
	if ((size_t)toe < sizeof(termination_notes) / sizeof(termination_notes[0]))
		note = termination_notes[toe];
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (long)(now.tv_sec - req->start.tv_sec) * 1000 +
	          (now.tv_nsec - req->start.tv_nsec) / 1000000;
	log_info("%s %s %s key=%s %ldms%s", req->method, req->path, status, key_id, ms, note);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct http_api *api = cls;
	struct http_api_request *req = *req_cls;
	(void)connection;

	if (req == NULL)
		return;
	*req_cls = NULL;
	request_log(req, toe);
	if (req->state == REQUEST_WAITING) {
		/* Cannot happen while every suspended connection is resumed
		 * before MHD_stop_daemon(); the daemon would hold a dangling req. */
		log_error("http: a waiting request was closed");
		waiting_remove(api, req);
	}
	if (req->state == REQUEST_RESUMED)
		api->resumed--;
	if (req->answered)
		api->unflushed--;
	if (req->response != NULL)
		MHD_destroy_response(req->response);
	free(req);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char message[512], line[512];
	(void)cls;

	vsnprintf(message, sizeof(message), fmt, ap);
	size_t n = strlen(message);
	while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' '))
		message[--n] = '\0';
	log_escape(line, sizeof(line), message, false);
	log_warn("http: %s", line);
}

/* Answers from the daemon: inside create_invite they are sent when it
 * returns; later (connection suspended) they are stored and the connection
 * resumed, and MHD calls on_access() again from the next http_api_run(). */
static bool request_can_answer(const struct http_api_request *req)
{
	if (!req->answered && (req->state == REQUEST_CREATING || req->state == REQUEST_WAITING))
		return true;
	log_error("http: request answered twice; ignored");
	return false;
}

static void request_deliver(struct http_api_request *req, unsigned status,
                            struct MHD_Response *response)
{
	request_store(req, status, response);
	if (req->state != REQUEST_WAITING)
		return;
	waiting_remove(req->api, req);
	req->state = REQUEST_RESUMED;
	req->api->resumed++;
	MHD_resume_connection(req->connection);
}

void http_api_request_invite(struct http_api_request *req, const struct http_api_invite *invite)
{
	if (!request_can_answer(req))
		return;
	struct http_api_invite copy = *invite;
	if (copy.url == NULL || copy.url[0] == '\0')
		copy.url = copy.uri;
	if (copy.url == NULL || copy.url[0] == '\0') {
		log_error("http: invite without a URL");
		request_deliver(req, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                error_response(req, "internal error", 0));
		return;
	}
	if (strpbrk(copy.url, "\r\n") != NULL) {
		request_deliver(req, MHD_HTTP_BAD_GATEWAY,
		                error_response(req, "invalid invite URL", 0));
		return;
	}
	size_t len = 0;
	char *body = body_invite(&copy, req->json, &len);
	struct MHD_Response *response = body_response(req->api, body, len, req->json);
	response = with_header(response, "Location", copy.url);
	request_deliver(req, req->redirect ? MHD_HTTP_SEE_OTHER : MHD_HTTP_CREATED, response);
}

void http_api_request_fail(struct http_api_request *req, unsigned status, const char *reason,
                           unsigned retry_after_s)
{
	if (!request_can_answer(req))
		return;
	if (status < 400 || status > 599) {
		log_error("http: refusing to fail a request with status %u", status);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	request_deliver(req, status, error_response(req, reason, retry_after_s));
}

union sock_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

static int parse_bind(const char *bind, unsigned short port, union sock_addr *addr, bool *ipv6)
{
	memset(addr, 0, sizeof(*addr));
	if (bind == NULL)
		return -1;
	if (inet_pton(AF_INET, bind, &addr->in.sin_addr) == 1) {
		addr->in.sin_family = AF_INET;
		addr->in.sin_port = htons(port);
		*ipv6 = false;
		return 0;
	}
	if (inet_pton(AF_INET6, bind, &addr->in6.sin6_addr) == 1) {
		addr->in6.sin6_family = AF_INET6;
		addr->in6.sin6_port = htons(port);
		*ipv6 = true;
		return 0;
	}
	return -1;
}

static const char *check_config(const struct http_api_config *cfg,
                                const struct http_api_handlers *handlers)
{
	if (handlers == NULL || handlers->authenticate == NULL || handlers->create_invite == NULL)
		return "HTTP handlers missing";
	if (cfg->path == NULL || cfg->path[0] != '/')
		return "HTTP path must start with /";
	if (cfg->cors_origin != NULL &&
	    (cfg->cors_origin[0] == '\0' || strpbrk(cfg->cors_origin, "\r\n") != NULL))
		return "CORS origin must be one non-empty line";
	if (cfg->max_connections > MAX_CONNECTION_LIMIT)
		return "HTTP max connections must be at most 900";
	return NULL;
}

/*
 * GnuTLS asks for the certificate in every handshake through a callback that
 * has no closure argument. MHD hangs the connection on the session, and the
 * connection knows its MHD daemon: this list (one thread, like everything
 * here) finds the listener of that daemon, and so its current certificate.
 */
static struct http_api *https_listeners;

static const struct http_api_tls *tls_of_session(gnutls_session_t session)
{
	struct MHD_Connection *connection = gnutls_session_get_ptr(session);
	const union MHD_ConnectionInfo *info =
	    connection != NULL ? MHD_get_connection_info(connection, MHD_CONNECTION_INFO_DAEMON)
	                       : NULL;
	if (info == NULL)
		return NULL;
	for (struct http_api *api = https_listeners; api != NULL; api = api->next_https) {
		if (api->daemon == info->daemon)
			return api->tls;
	}
	return NULL;
}

static int on_tls_certificate(gnutls_session_t session, const struct gnutls_cert_retr_st *info,
                              gnutls_pcert_st **certs, unsigned int *n_certs,
                              gnutls_ocsp_data_st **ocsp, unsigned int *n_ocsp,
                              gnutls_privkey_t *privkey, unsigned int *flags)
{
	const struct http_api_tls *tls = tls_of_session(session);
	(void)info;

	*ocsp = NULL;
	*n_ocsp = 0;
	*flags = GNUTLS_CERT_RETR_DEINIT_ALL;
	if (tls == NULL || tls_session_credentials(tls, certs, n_certs, privkey) < 0) {
		log_error("http: no certificate for a TLS handshake");
		return -1;
	}
	return 0;
}

static void https_add(struct http_api *api)
{
	api->next_https = https_listeners;
	https_listeners = api;
}

static void https_remove(struct http_api *api)
{
	for (struct http_api **p = &https_listeners; *p != NULL; p = &(*p)->next_https) {
		if (*p == api) {
			*p = api->next_https;
			return;
		}
	}
}

static struct MHD_Daemon *start_daemon(struct http_api *api, const struct http_api_config *cfg,
                                       const union sock_addr *addr, bool ipv6)
{
	unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	unsigned int limit = cfg->max_connections ? cfg->max_connections : DEFAULT_CONNECTION_LIMIT;
	unsigned int timeout =
	    cfg->connection_timeout_s ? cfg->connection_timeout_s : DEFAULT_CONNECTION_TIMEOUT_S;
	struct MHD_OptionItem tls_options[] = {
	    {MHD_OPTION_HTTPS_CERT_CALLBACK2, 0, (void *)on_tls_certificate},
	    {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
	    {MHD_OPTION_END, 0, NULL},
	};

	if (ipv6)
		flags |= MHD_USE_IPv6;
	if (api->tls != NULL)
		flags |= MHD_USE_TLS;
	/* clang-format off */
	return MHD_start_daemon(flags, 0, NULL, NULL, on_access, api,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, /* first, to catch every message */
		MHD_OPTION_SOCK_ADDR, &addr->sa,
		MHD_OPTION_CONNECTION_TIMEOUT, timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		MHD_OPTION_CONNECTION_LIMIT, limit,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)PER_IP_CONNECTION_LIMIT,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
		MHD_OPTION_ARRAY, api->tls != NULL ? tls_options : &tls_options[2],
		MHD_OPTION_END);
	/* clang-format on */
}

static int daemon_info(struct http_api *api)
{
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL || info->epoll_fd < 0)
		return -1;
	api->epoll_fd = info->epoll_fd;
	info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (info == NULL || info->port == 0)
		return -1;
	api->port = info->port;
	return 0;
}

struct http_api *http_api_create(const struct http_api_config *cfg,
                                 const struct http_api_handlers *handlers, void *userdata,
                                 const char **errstr)
{
	union sock_addr addr;
	bool ipv6 = false;

	*errstr = check_config(cfg, handlers);
	if (*errstr != NULL)
		goto err_alloc;
	if (parse_bind(cfg->bind, cfg->port, &addr, &ipv6) != 0) {
		*errstr = "HTTP bind must be an IPv4 or IPv6 literal";
		goto err_alloc;
	}
	struct http_api *api = calloc(1, sizeof(*api));
	if (api == NULL)
		goto err_alloc;
	api->tls = cfg->tls;
	api->handlers = *handlers;
	api->userdata = userdata;
	api->path = strdup(cfg->path);
	api->cors_origin = strdup(cfg->cors_origin != NULL ? cfg->cors_origin : "*");
	if (api->path == NULL || api->cors_origin == NULL)
		goto err_strings;
	api->daemon = start_daemon(api, cfg, &addr, ipv6);
	if (api->daemon == NULL) {
		*errstr = "cannot listen on the HTTP address";
		goto err_strings;
	}
	if (daemon_info(api) != 0) {
		*errstr = "cannot query the HTTP listener";
		goto err_daemon;
	}
	if (api->tls != NULL)
		https_add(api);
	return api;

err_daemon:
	MHD_stop_daemon(api->daemon);
err_strings:
	free(api->path);
	free(api->cors_origin);
	free(api);
err_alloc:
	http_api_tls_free(cfg->tls);
	if (*errstr == NULL)
		*errstr = "out of memory";
	return NULL;
}

/* Run MHD until every answer given is on its way, for at most budget_ms. */
static void flush_answers(struct http_api *api, int budget_ms)
{
	int64_t deadline = monotonic_ms() + budget_ms;

	while (api->unflushed > 0) {
		int64_t left = deadline - monotonic_ms();
		if (left <= 0) {
			log_warn("http: %u answers not sent at shutdown", api->unflushed);
			return;
		}
		int timeout = http_api_next_timeout(api);
		if (timeout < 0 || timeout > left)
			timeout = (int)left;
		/* poll(), not epoll_wait(): waiting on MHD's own epoll fd would
		 * consume its edge-triggered events. */
		struct pollfd pfd = {.fd = api->epoll_fd, .events = POLLIN};
		if (poll(&pfd, 1, timeout) < 0 && errno != EINTR) {
			log_warn("http: poll at shutdown: %s", strerror(errno));
			return;
		}
		http_api_run(api);
	}
}

void http_api_destroy(struct http_api *api)
{
	if (api == NULL)
		return;
	http_api_quiesce(api);
	api->shutting_down = true;
	while (api->waiting != NULL)
		http_api_request_fail(api->waiting, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down",
		                      0);
	flush_answers(api, SHUTDOWN_FLUSH_MS);
	MHD_stop_daemon(api->daemon);
	https_remove(api);
	http_api_tls_free(api->tls);
	free(api->path);
	free(api->cors_origin);
	free(api);
}

int http_api_set_tls(struct http_api *api, struct http_api_tls *tls)
{
	if (api->tls == NULL || tls == NULL) {
		http_api_tls_free(tls);
		return -1;
	}
	/* Sessions hold copies of their own (tls.c): the old one can go now. */
	http_api_tls_free(api->tls);
	api->tls = tls;
	return 0;
}

void http_api_quiesce(struct http_api *api)
{
	if (api->quiesced)
		return;
	api->quiesced = true;
	MHD_socket listen_fd = MHD_quiesce_daemon(api->daemon);
	if (listen_fd != MHD_INVALID_SOCKET)
		close(listen_fd);
}

int http_api_fd(const struct http_api *api)
{
	return api->epoll_fd;
}

int http_api_next_timeout(const struct http_api *api)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;

	/* MHD_get_timeout() does not count resumed connections (0.9.75): only
	 * its ITC wakes the fd. Say "now" so the loop runs MHD before sleeping. */
	if (api->resumed > 0)
		return 0;
	if (MHD_get_timeout(api->daemon, &ms) != MHD_YES)
		return -1;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

void http_api_run(struct http_api *api)
{
	if (MHD_run(api->daemon) != MHD_YES)
		log_warn("http: MHD_run failed");
}

unsigned short http_api_port(const struct http_api *api)
{
	return api->port;
}

unsigned http_api_waiting(const struct http_api *api)
{
	return api->waiting_count;
}
