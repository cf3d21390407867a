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
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "connections-internal.h"
#include "http-internal.h"
#include "log.h"

#define DEFAULT_CONNECTION_LIMIT     512
#define DEFAULT_CONNECTION_TIMEOUT_S 30
#define DEFAULT_PER_IP_LIMIT         64
#define DEFAULT_REQUEST_DEADLINE_S   10
#define THROTTLE_CAPACITY            16384 /* client address groups tracked at most */
#define MAX_FORWARDED_LINES          16    /* X-Forwarded-For lines read (the last ones) */
#define SHUTDOWN_FLUSH_MS            2000
#define THROTTLED_HOLD_NS            (1000 * 1000000LL) /* a throttled client is answered this late */
#define HTTP_MAX_REQUEST_HEADERS     (8 * 1024) /* URL, query and headers; see request_begin() */
#define POOL_BYTES_PER_ENTRY         64 /* MHD's struct MHD_HTTP_Header (48) and alignment */
/* Per connection: request and answer. libmicrohttpd 0.9.75 zeroes all of it
 * after every request, so a kept-alive connection holds all of it, and each
 * request pays for the memset: README, "Limits against hostile clients". */
#define CONNECTION_MEMORY     (20 * 1024)
#define POOL_ANSWER_ROOM      (2 * 1024) /* of it, kept for the answer's headers */
#define ALLOWED_METHODS       "GET, POST, OPTIONS"
#define RESET_ALLOWED_METHODS "POST, OPTIONS"
#define CONTENT_TYPE_TEXT     "text/plain; charset=utf-8"
#define CONTENT_TYPE_JSON     "application/json"
#define TLS_PRIORITIES        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/*
 * A request goes RECEIVING (headers and body arrive) -> CREATING (inside the
 * create_invite handler) -> WAITING (connection suspended until the daemon
 * answers) -> RESUMED (answer stored, MHD will call us again) -> SENT.
 * Requests answered before create_invite returns skip WAITING and RESUMED.
 * A throttled request goes RECEIVING -> DELAYED (suspended, answer stored
 * until a fixed time after the request began) -> RESUMED -> SENT.
 */
enum request_state {
	REQUEST_RECEIVING,
	REQUEST_CREATING,
	REQUEST_WAITING,
	REQUEST_DELAYED,
	REQUEST_RESUMED,
	REQUEST_SENT,
};

struct http_api_request {
	struct http_api *api;
	struct MHD_Connection *connection;
	struct http_conn *conn;               /* its deadline; NULL when out of memory */
	struct http_api_request *prev, *next; /* api->waiting, while WAITING */
	enum request_state state;
	struct delayed delay; /* in api->delayed, while DELAYED */
	struct timespec start;
	char method[16];                 /* escaped for the log */
	char path[128];                  /* escaped for the log, never with a query */
	struct net_addr client_addr;     /* after X-Forwarded-For from trusted proxies */
	const char *raw_target_end;      /* where the raw target's string ended, see */
	enum uri_problem target_problem; /* on_target() */
	bool begun;                      /* headers seen (request_begin) */
	bool refused;                    /* answered outside MHD, see conn_refuse() */
	struct http_api_key key;
	bool authenticated;
	bool json;                            /* answer in JSON (Accept) */
	bool redirect;                        /* answer an invite with 303 */
	enum http_api_invite_kind kind;       /* by the route */
	unsigned query_jids, query_usernames; /* times given in the query */
	bool form;                            /* an urlencoded body, kept in form_body */
	char *form_body;                      /* HTTP_MAX_FORM bytes once the body begins */
	bool form_lost;                       /* out of memory keeping it */
	struct request_params params;
	struct http_api_invite_request invite;
	size_t body_bytes;
	size_t target_bytes; /* the raw target's length, for the log */
	bool answered;
	unsigned status;               /* valid once answered */
	struct MHD_Response *response; /* answer not yet queued */
	bool response_shared;          /* api->fixed owns it */
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
	ANSWER_NUL_REQUEST,
	ANSWER_BAD_ESCAPE,
	ANSWER_NUL_URL,
	ANSWER_NUL_HEADER,
	ANSWER_FRAMING,
	ANSWER_TRANSFER_ENCODING,
	ANSWER_TRAILERS,
	ANSWER_DUPLICATE_KEY,
	ANSWER_DUPLICATE_AUTHORIZATION,
	ANSWER_THROTTLED,
	ANSWER_NOT_ALLOWED_RESET,
	ANSWER_FORM_TOO_LARGE,
	ANSWER_FORM_MALFORMED,
	ANSWER_FORBIDDEN_ACCOUNT,
	ANSWER_FORBIDDEN_RESET,
	ANSWER_OUT_OF_MEMORY,
	ANSWER_COUNT
};

struct http_api {
	struct MHD_Daemon *daemon;
	struct http_api_handlers handlers;
	void *userdata;
	char *path;
	char *cors_origin;
	int epoll_fd; /* MHD's */
	int loop_fd;  /* what the daemon watches: MHD's epoll fd and the delay timer */
	struct delay_queue delayed;
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
	struct conn_table conns;
	char *own_headers; /* CORS lines for answers written outside MHD */
	struct throttle *throttle;
	struct net_prefix *proxies;
	size_t n_proxies;
	bool refusal_closing; /* see on_mhd_log() */
	/* Fixed answers are the same every time (but the Connection: close of
	 * a shutdown): each is made once, in text and in JSON, and queued as
	 * often as it is needed (libmicrohttpd counts the references). Refusing
	 * a key costs no allocation. */
	struct MHD_Response *fixed[ANSWER_COUNT][2];
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
    [ANSWER_BAD_REDIRECT] = {MHD_HTTP_BAD_REQUEST,
                             "redirect must be true or false (or 1, yes, 0, no)", NULL, NULL},
    [ANSWER_STORE_ERROR] = {MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error", NULL, NULL},
    [ANSWER_SHUTTING_DOWN] = {MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down", NULL, NULL},
    [ANSWER_NUL_REQUEST] = {MHD_HTTP_BAD_REQUEST, "NUL byte in the request line", NULL, NULL},
    [ANSWER_BAD_ESCAPE] = {MHD_HTTP_BAD_REQUEST, "malformed percent-encoding in the URL", NULL,
                           NULL},
    [ANSWER_NUL_URL] = {MHD_HTTP_BAD_REQUEST, "NUL byte (%00) in the URL", NULL, NULL},
    [ANSWER_NUL_HEADER] = {MHD_HTTP_BAD_REQUEST, "NUL byte in a header", NULL, NULL},
    /* The body's length is ambiguous: the connection cannot be read on. */
    [ANSWER_FRAMING] = {MHD_HTTP_BAD_REQUEST,
                        "more than one Content-Length, or Content-Length with Transfer-Encoding",
                        "Connection", "close"},
    [ANSWER_TRANSFER_ENCODING] = {MHD_HTTP_NOT_IMPLEMENTED, "Transfer-Encoding other than chunked",
                                  "Connection", "close"},
    [ANSWER_TRAILERS] = {MHD_HTTP_BAD_REQUEST, "trailers after a chunked body are not accepted",
                         "Connection", "close"},
    [ANSWER_DUPLICATE_KEY] = {MHD_HTTP_BAD_REQUEST, "more than one key parameter", NULL, NULL},
    [ANSWER_DUPLICATE_AUTHORIZATION] = {MHD_HTTP_BAD_REQUEST, "more than one Authorization header",
                                        NULL, NULL},
    [ANSWER_THROTTLED] = {MHD_HTTP_TOO_MANY_REQUESTS,
                          "too many failed authentications from this address", NULL, NULL},
    [ANSWER_NOT_ALLOWED_RESET] = {MHD_HTTP_METHOD_NOT_ALLOWED,
                                  "method not allowed: password-reset invites take POST", "Allow",
                                  RESET_ALLOWED_METHODS},
    [ANSWER_FORM_TOO_LARGE] = {MHD_HTTP_CONTENT_TOO_LARGE, "form body too large", NULL, NULL},
    [ANSWER_FORM_MALFORMED] = {MHD_HTTP_BAD_REQUEST,
                               "malformed percent-encoding (or %00) in the form body", NULL, NULL},
    [ANSWER_FORBIDDEN_ACCOUNT] = {MHD_HTTP_FORBIDDEN, "this key may not create account invites",
                                  NULL, NULL},
    [ANSWER_FORBIDDEN_RESET] = {MHD_HTTP_FORBIDDEN,
                                "this key may not create password-reset invites", NULL, NULL},
    [ANSWER_OUT_OF_MEMORY] = {MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error", NULL, NULL},
};

/* By the route's kind. */
static const enum answer not_allowed_answers[] = {
    [HTTP_API_INVITE_ACCOUNT] = ANSWER_NOT_ALLOWED,
    [HTTP_API_INVITE_RESET] = ANSWER_NOT_ALLOWED_RESET,
};

static const enum answer forbidden_answers[] = {
    [HTTP_API_INVITE_ACCOUNT] = ANSWER_FORBIDDEN_ACCOUNT,
    [HTTP_API_INVITE_RESET] = ANSWER_FORBIDDEN_RESET,
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
	req->response_shared = false;
	req->api->unflushed++;
	conn_received(&req->api->conns, req->conn);
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
	if (!req->response_shared)
		MHD_destroy_response(response);
	if (ret != MHD_YES)
		req->status = 0;
	return ret;
}

/* A fixed answer as a response of its own, in text or JSON. */
static struct MHD_Response *fixed_response(const struct http_api *api, enum answer which, bool json)
{
	const struct fixed_answer *a = &fixed_answers[which];
	size_t len = 0;
	char *body = body_error(a->reason, json, &len);
	struct MHD_Response *response = body_response(api, body, len, json);

	if (a->header != NULL)
		response = with_header(response, a->header, a->value);
	return response;
}

static enum MHD_Result answer_fixed(struct http_api_request *req, enum answer which)
{
	struct http_api *api = req->api;
	bool shareable = !api->shutting_down; /* then answers carry Connection: close */
	struct MHD_Response **made = &api->fixed[which][req->json ? 1 : 0];
	struct MHD_Response *response = shareable ? *made : NULL;

	if (response == NULL) {
		response = fixed_response(api, which, req->json);
		if (shareable)
			*made = response;
	}
	request_store(req, fixed_answers[which].status, response);
	req->response_shared = shareable;
	return request_send(req);
}

static int64_t timespec_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/*
 * A throttled client (too many failed authentications from its address) is
 * answered THROTTLED_HOLD_NS after its request began. Answering at once
 * would cost next to nothing per answer, but a client that keeps guessing
 * on many connections would get as many answers as the CPU can make, all of
 * it taken from the invites others are waiting for. Held, each connection
 * gets one answer a second, so a guessing address (at most
 * max_connections_per_ip connections) costs almost nothing. The connection
 * is suspended meanwhile; the loop never sleeps for it.
 */
static enum MHD_Result answer_throttled(struct http_api_request *req, unsigned retry_after_s)
{
	const struct fixed_answer *a = &fixed_answers[ANSWER_THROTTLED];

	request_store(req, a->status, error_response(req, a->reason, retry_after_s));
	if (req->api->shutting_down)
		return request_send(req);
	req->state = REQUEST_DELAYED;
	delay_add(&req->api->delayed, &req->delay, timespec_ns(&req->start) + THROTTLED_HOLD_NS);
	MHD_suspend_connection(req->connection);
	return MHD_YES;
}

/* Resume the delayed answers due at now_ns (every one: INT64_MAX). */
static void release_delayed(struct http_api *api, int64_t now_ns)
{
	struct delayed *d;

	while ((d = delay_pop_due(&api->delayed, now_ns)) != NULL) {
		struct http_api_request *req =
		    (struct http_api_request *)(void *)((char *)d -
		                                        offsetof(struct http_api_request, delay));
		req->state = REQUEST_RESUMED;
		api->resumed++;
		MHD_resume_connection(req->connection);
	}
}

static enum MHD_Result answer_error(struct http_api_request *req, unsigned status,
                                    const char *reason)
{
	request_store(req, status, error_response(req, reason, 0));
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
	 * Duplicated names were refused by request_begin(). */
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

static void query_param(struct http_api_request *req, const char *name, unsigned count,
                        struct raw_param *param)
{
	const char *value = NULL;
	size_t len = 0;

	param->count = count;
	if (count == 0)
		return;
	MHD_lookup_connection_value_n(req->connection, MHD_GET_ARGUMENT_KIND, name, strlen(name),
	                              &value, &len);
	param->value = value != NULL ? value : ""; /* "?jid" without "=" */
	param->len = value != NULL ? len : 0;
}

/* jid and username from the form body, decoded into values (2 * (len + 1)
 * bytes). 0, or -1 if the body is malformed. */
static int form_params(const struct http_api_request *req, size_t len, char *values,
                       struct raw_params *raw)
{
	if (form_find(req->form_body, len, "jid", values, len + 1, &raw->jid) < 0 ||
	    form_find(req->form_body, len, "username", values + len + 1, len + 1, &raw->username) <
	        0)
		return -1;
	return 0;
}

/* Gather jid and username from the query and the form body, check them
 * (params.c) and fill req->invite. *answered tells whether an error answer
 * was given instead, with the result to return to MHD. */
static enum MHD_Result request_params(struct http_api_request *req, bool *answered)
{
	struct raw_params raw = {0};
	const char *reason = NULL;
	size_t form_len = req->form_body != NULL ? req->body_bytes : 0;
	char *values = NULL;

	*answered = true;
	query_param(req, "jid", req->query_jids, &raw.jid);
	query_param(req, "username", req->query_usernames, &raw.username);
	if (form_len > 0) {
		values = malloc(2 * (form_len + 1));
		if (values == NULL)
			return answer_fixed(req, ANSWER_OUT_OF_MEMORY);
		if (form_params(req, form_len, values, &raw) < 0) {
			free(values);
			return answer_fixed(req, ANSWER_FORM_MALFORMED);
		}
	}
	unsigned status = params_check(req->kind, &raw, req->key.host, &req->params, &reason);
	free(values);
	if (status != 0)
		return answer_error(req, status, reason);
	req->invite = (struct http_api_invite_request){
	    .kind = req->kind,
	    .username = req->params.username[0] != '\0' ? req->params.username : NULL,
	    .account_jid = req->params.account_jid[0] != '\0' ? req->params.account_jid : NULL,
	};
	*answered = false;
	return MHD_YES;
}

/* Authenticate, then hand over to the daemon. Unless create_invite answered
 * at once, the connection is suspended: MHD neither times it out nor calls
 * us again until http_api_request_*() resumes it. */
static enum MHD_Result request_invite(struct http_api_request *req)
{
	struct http_api *api = req->api;
	const char *credential = NULL;
	size_t len = 0;
	struct net_addr group;

	/* A throttled client waits whatever it sends, a right key included:
	 * checking it first would let guesses go on at full speed. */
	address_group(&req->client_addr, &group);
	unsigned wait_s = throttle_wait_s(api->throttle, &group, clock_monotonic_ms());
	if (wait_s > 0)
		return answer_throttled(req, wait_s);
	enum credential_result found = request_credential(req, &credential, &len);
	if (found == CREDENTIAL_MALFORMED)
		throttle_failure(api->throttle, &group, clock_monotonic_ms());
	if (found != CREDENTIAL_OK)
		return answer_fixed(req, credential_answers[found]);
	if (request_redirect(req) != 0)
		return answer_fixed(req, ANSWER_BAD_REDIRECT);
	switch (api->handlers.authenticate(api->userdata, credential, len, &req->key)) {
	case HTTP_API_AUTH_OK:
		break;
	case HTTP_API_AUTH_DENIED:
		throttle_failure(api->throttle, &group, clock_monotonic_ms());
		return answer_fixed(req, ANSWER_BAD_KEY);
	default:
		return answer_fixed(req, ANSWER_STORE_ERROR);
	}
	req->key.id[sizeof(req->key.id) - 1] = '\0';
	req->key.host[sizeof(req->key.host) - 1] = '\0';
	req->authenticated = true;
	/* Only a key that proved itself learns what it may not do. */
	if ((req->key.may & (1u << req->kind)) == 0)
		return answer_fixed(req, forbidden_answers[req->kind]);
	bool answered = false;
	enum MHD_Result result = request_params(req, &answered);
	if (answered)
		return result;
	req->state = REQUEST_CREATING;
	api->handlers.create_invite(api->userdata, req, &req->key, &req->invite);
	if (req->answered)
		return request_send(req);
	req->state = REQUEST_WAITING;
	conn_received(&api->conns, req->conn);
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
	if (!route_match(url, req->api->path, &req->kind))
		return answer_fixed(req, ANSWER_NOT_FOUND);
	switch (method_action(req->kind, method)) {
	case METHOD_NOT_ALLOWED:
		return answer_fixed(req, not_allowed_answers[req->kind]);
	case METHOD_PREFLIGHT:
		return answer_preflight(req);
	case METHOD_INVITE:
		break;
	}
	if (req->form && req->body_bytes > HTTP_MAX_FORM)
		return answer_fixed(req, ANSWER_FORM_TOO_LARGE);
	if (req->form_lost)
		return answer_fixed(req, ANSWER_OUT_OF_MEMORY);
	if (req->api->shutting_down)
		return answer_fixed(req, ANSWER_SHUTTING_DOWN);
	/* Trailers arrive after the body and take of the connection's pool as
	 * headers do, with whitespace libmicrohttpd skips and counts nowhere: the
	 * answer might no longer fit. Nothing here has a use for them. */
	if (MHD_get_connection_values_n(req->connection, MHD_FOOTER_KIND, NULL, NULL) > 0)
		return answer_fixed(req, ANSWER_TRAILERS);
	return request_invite(req);
}

static bool content_length_too_large(struct MHD_Connection *connection, size_t max)
{
	const char *value =
	    MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Content-Length");
	if (value == NULL)
		return false;
	errno = 0;
	unsigned long long length = strtoull(value, NULL, 10);
	return errno != 0 || length > max;
}

/* What request_begin() learns from one pass over headers and query. */
struct request_scan {
	size_t bytes;        /* names and values of headers and arguments, separators, entries */
	size_t entries;      /* headers, query arguments and cookies MHD keeps */
	size_t cookie_bytes; /* names and values of cookies: MHD copies them */
	unsigned content_lengths, transfer_encodings, authorizations, keys, jids, usernames;
	bool chunked; /* the Transfer-Encoding is "chunked" alone */
	bool nul;
	const char *forwarded[MAX_FORWARDED_LINES]; /* the last X-Forwarded-For lines */
	size_t forwarded_lens[MAX_FORWARDED_LINES];
	size_t n_forwarded;
};

static bool named(const char *key, size_t key_size, const char *name)
{
	return key_size == strlen(name) && strncasecmp(key, name, key_size) == 0;
}

static void scan_forwarded(struct request_scan *scan, const char *value, size_t len)
{
	if (scan->n_forwarded == MAX_FORWARDED_LINES) {
		memmove(scan->forwarded, scan->forwarded + 1,
		        (MAX_FORWARDED_LINES - 1) * sizeof(scan->forwarded[0]));
		memmove(scan->forwarded_lens, scan->forwarded_lens + 1,
		        (MAX_FORWARDED_LINES - 1) * sizeof(scan->forwarded_lens[0]));
		scan->n_forwarded--;
	}
	scan->forwarded[scan->n_forwarded] = value;
	scan->forwarded_lens[scan->n_forwarded++] = len;
}

static enum MHD_Result scan_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
	struct request_scan *scan = cls;

	/* ": " and CRLF (or "&" and "="), and what MHD keeps for each entry in
	 * the connection's pool: many tiny headers cost more than their bytes. */
	if (value == NULL)
		value_size = 0;
	scan->entries++;
	if (kind == MHD_COOKIE_KIND) { /* its Cookie header is counted already */
		scan->cookie_bytes += key_size + value_size + 2;
		return MHD_YES;
	}
	scan->bytes += key_size + value_size + 4 + POOL_BYTES_PER_ENTRY;
	if (memchr(key, '\0', key_size) != NULL ||
	    (value != NULL && memchr(value, '\0', value_size) != NULL))
		scan->nul = true;
	if (kind == MHD_GET_ARGUMENT_KIND) {
		scan->keys += named(key, key_size, "key");
		scan->jids += named(key, key_size, "jid");
		scan->usernames += named(key, key_size, "username");
		return MHD_YES;
	}
	scan->content_lengths += named(key, key_size, "Content-Length");
	if (named(key, key_size, "Transfer-Encoding")) {
		scan->transfer_encodings++;
		scan->chunked = value != NULL && named(value, value_size, "chunked");
	}
	scan->authorizations += named(key, key_size, "Authorization");
	if (named(key, key_size, "X-Forwarded-For") && value != NULL)
		scan_forwarded(scan, value, value_size);
	return MHD_YES;
}

static void request_peer(struct http_api_request *req)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(req->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	if (info == NULL || address_from_sockaddr(info->client_addr, &req->client_addr) != 0)
		memset(&req->client_addr, 0, sizeof(req->client_addr));
}

/* The client's address: the peer, or whom a trusted proxy names. */
static void request_client(struct http_api_request *req, const struct request_scan *scan)
{
	struct net_addr peer = req->client_addr;

	forwarded_client(&peer, scan->forwarded, scan->forwarded_lens, scan->n_forwarded,
	                 req->api->proxies, req->api->n_proxies, &req->client_addr);
}

/*
 * A request's headers against the limits. Its size, as the 8 KiB limit
 * counts it: names and values with their separators, and what MHD keeps for
 * each header and argument; the values MHD hands over lack the whitespace it
 * skipped, still in its buffer, so its own count of the raw header bytes is
 * taken when larger. And what is left of the connection's pool for the
 * answer: MHD's read buffer takes half of it from the first byte, each header,
 * argument and cookie an entry, and the Cookie header's value is copied once
 * more, cut into cookies. Either over its limit: 431, before anything else.
 */
static bool headers_too_large(struct MHD_Connection *connection, const struct request_scan *scan)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	size_t raw = info != NULL ? info->header_size : 0;
	size_t size = raw + scan->entries * POOL_BYTES_PER_ENTRY;
	if (size < scan->bytes)
		size = scan->bytes;
	size_t pool = CONNECTION_MEMORY / 2 + scan->entries * POOL_BYTES_PER_ENTRY +
	              scan->cookie_bytes + POOL_ANSWER_ROOM;
	return size > HTTP_MAX_REQUEST_HEADERS || pool > CONNECTION_MEMORY;
}

/*
 * First call, headers only. Anything that makes the request ambiguous or too
 * big is refused here, before the body is read (a too large Content-Length
 * too: MHD then closes the connection after the answer).
 *
 * The request and the answer share one memory pool per connection
 * (MHD_OPTION_CONNECTION_MEMORY_LIMIT). A request that filled most of it
 * would leave no room for the answer's headers: the invite would be made and
 * the answer lost. So requests are capped well below the pool size.
 */
static enum MHD_Result request_begin(struct http_api_request *req, const char *url,
                                     const char *method, const char *version)
{
	struct MHD_Connection *connection = req->connection;
	struct request_scan scan = {.bytes = strlen(url)};

	req->begun = true;
	log_escape(req->method, sizeof(req->method), method, true);
	log_escape(req->path, sizeof(req->path), url, true);
	req->json =
	    accept_wants_json(MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Accept"));
	req->form = form_content_type(
	    MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Content-Type"));
	MHD_get_connection_values_n(connection,
	                            MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND | MHD_COOKIE_KIND,
	                            scan_value, &scan);
	request_client(req, &scan);
	/* MHD hands the target over as a C string: a raw NUL in it would cut
	 * the path short ("/invites_api\0junk" would match the route). The
	 * target's string must end right before the version, as on_target()
	 * saw it. */
	if (req->raw_target_end != NULL && req->raw_target_end + 1 != version)
		return answer_fixed(req, ANSWER_NUL_REQUEST);
	if (req->target_problem == URI_BAD_ESCAPE)
		return answer_fixed(req, ANSWER_BAD_ESCAPE);
	if (req->target_problem == URI_NUL)
		return answer_fixed(req, ANSWER_NUL_URL);
	if (scan.content_lengths > 1 || scan.transfer_encodings > 1 ||
	    (scan.content_lengths > 0 && scan.transfer_encodings > 0))
		return answer_fixed(req, ANSWER_FRAMING);
	if (scan.transfer_encodings > 0 && !scan.chunked)
		return answer_fixed(req, ANSWER_TRANSFER_ENCODING);
	if (content_length_too_large(connection, HTTP_MAX_BODY))
		return answer_fixed(req, ANSWER_TOO_LARGE);
	if (req->form && content_length_too_large(connection, HTTP_MAX_FORM))
		return answer_fixed(req, ANSWER_FORM_TOO_LARGE);
	if (headers_too_large(connection, &scan))
		return answer_fixed(req, ANSWER_HEADERS_TOO_LARGE);
	if (scan.nul)
		return answer_fixed(req, ANSWER_NUL_HEADER);
	if (scan.keys > 1)
		return answer_fixed(req, ANSWER_DUPLICATE_KEY);
	if (scan.authorizations > 1)
		return answer_fixed(req, ANSWER_DUPLICATE_AUTHORIZATION);
	req->query_jids = scan.jids;
	req->query_usernames = scan.usernames;
	return MHD_YES;
}

static struct http_conn *connection_conn(struct MHD_Connection *connection)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return info != NULL ? info->socket_context : NULL;
}

static struct http_api_request *request_new(struct http_api *api, struct MHD_Connection *connection)
{
	struct http_api_request *req = calloc(1, sizeof(*req));
	if (req == NULL)
		return NULL;
	req->api = api;
	req->connection = connection;
	req->conn = connection_conn(connection);
	req->state = REQUEST_RECEIVING;
	clock_gettime(CLOCK_MONOTONIC, &req->start);
	memcpy(req->method, "-", 2);
	request_peer(req);
	return req;
}

/*
 * MHD's URI log callback: the raw request target, before MHD splits and
 * decodes it, and the first sight of a request. It starts our request.
 *
 * MHD 0.9.75 stores every query parameter in the connection's memory pool
 * and, when the pool runs out there, queues its error answer and then
 * carries on as if nothing happened: the client gets no answer at all. So
 * targets that could exhaust the pool are answered here, on the socket,
 * before MHD parses them, and the connection is shut down.
 */
static void *on_target(void *cls, const char *uri, struct MHD_Connection *connection)
{
	struct http_api *api = cls;
	struct http_api_request *req = request_new(api, connection);

	if (req == NULL)
		return NULL;
	req->target_bytes = strlen(uri);
	req->raw_target_end = uri + req->target_bytes;
	/* For the log until the decoded path is known: an escaped '?' (%3F)
	 * could start a key, so the raw path is cut at the first '%' too. */
	char raw_path[sizeof(req->path)];
	size_t raw_len = strcspn(uri, "%?");
	if (raw_len >= sizeof(raw_path))
		raw_len = sizeof(raw_path) - 1;
	memcpy(raw_path, uri, raw_len);
	raw_path[raw_len] = '\0';
	log_escape(req->path, sizeof(req->path), raw_path, true);
	if (req->conn != NULL)
		req->conn->request_line = true;
	req->target_problem = uri_check(uri);
	if (req->target_problem == URI_TOO_LONG || req->target_problem == URI_TOO_MANY) {
		req->refused = true;
		req->status = MHD_HTTP_URI_TOO_LONG;
		conn_refuse(&api->conns, req->conn, MHD_HTTP_URI_TOO_LONG, "URI Too Long",
		            req->target_problem == URI_TOO_LONG ? "URL too long"
		                                                : "too many query parameters");
	}
	return req;
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	struct http_api *api = cls;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		conn_close(&api->conns, *socket_context);
		*socket_context = NULL;
		return;
	}
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
	*socket_context =
	    info != NULL ? conn_open(&api->conns, info->connect_fd, clock_monotonic_ms()) : NULL;
	if (*socket_context == NULL)
		log_warn("http: cannot track a connection (out of memory): no request deadline");
}

/* Append a piece of the body to the form, while it fits in HTTP_MAX_FORM. */
static void form_keep(struct http_api_request *req, const char *data, size_t size)
{
	if (!req->form || req->form_lost || req->body_bytes + size > HTTP_MAX_FORM)
		return;
	if (req->form_body == NULL && (req->form_body = malloc(HTTP_MAX_FORM)) == NULL) {
		req->form_lost = true;
		return;
	}
	memcpy(req->form_body + req->body_bytes, data, size);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
	struct http_api *api = cls;
	struct http_api_request *req = *req_cls;
	if (req == NULL) {
		/* on_target() ran out of memory */
		req = request_new(api, connection);
		if (req == NULL)
			return MHD_NO;
		*req_cls = req;
	}
	if (req->refused) {
		api->refusal_closing = true; /* MHD's log line about it is noise */
		return MHD_NO;
	}
	if (!req->begun)
		return request_begin(req, url, method, version);
	if (*upload_data_size > 0) {
		/* Kept if it is a form of reasonable size, else counted and dropped. */
		form_keep(req, upload_data, *upload_data_size);
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

/*
 * Only the configured path and the methods HTTP defines are logged as sent:
 * a client that pastes its key into the path (/invites_api/ID/SECRET) or
 * into the method would otherwise put the secret in the log.
 */
static const char *log_method(const char *method)
{
	static const char *const known[] = {"CONNECT", "DELETE", "GET", "HEAD",  "OPTIONS",
	                                    "PATCH",   "POST",   "PUT", "TRACE", "-"};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(method, known[i]) == 0)
			return known[i];
	return "OTHER";
}

/* The access line is put together piece by piece rather than with printf,
 * which was a tenth of the CPU time of refusing a wrong key (bench/). */
struct line {
	char bytes[512];
	size_t used;
};

static void put(struct line *line, const char *text)
{
	size_t n = strlen(text), room = sizeof(line->bytes) - line->used;
	if (n > room)
		n = room;
	memcpy(line->bytes + line->used, text, n);
	line->used += n;
}

static void put_number(struct line *line, unsigned long value)
{
	char digits[24];
	size_t i = sizeof(digits) - 1;
	digits[i] = '\0';
	do
		digits[--i] = (char)('0' + value % 10);
	while ((value /= 10) > 0);
	put(line, digits + i);
}

/* "CLIENT METHOD PATH STATUS key=ID MSms NOTE" */
static void request_log(const struct http_api_request *req, enum MHD_RequestTerminationCode toe)
{
	char key_id[sizeof(req->key.id)] = "-";
	char client[INET6_ADDRSTRLEN];
	struct timespec now;
	const char *note = "";

	unsigned code = req->status;
	if (code == 0) {
		/* Answered by MHD itself (malformed or oversized requests). */
		const union MHD_ConnectionInfo *info =
		    MHD_get_connection_info(req->connection, MHD_CONNECTION_INFO_HTTP_STATUS);
		code = info != NULL ? info->http_status : 0;
	}
	if ((size_t)toe < sizeof(termination_notes) / sizeof(termination_notes[0]))
		note = termination_notes[toe];
	if (code == 0 && req->conn != NULL && req->conn->shut) {
		code = 408;
		note = " (request deadline)";
	}
	if (req->authenticated)
		log_escape(key_id, sizeof(key_id), req->key.id, true);
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (long)(now.tv_sec - req->start.tv_sec) * 1000 +
	          (now.tv_nsec - req->start.tv_nsec) / 1000000;
	enum http_api_invite_kind kind;
	bool api_path = route_match(req->path, req->api->path, &kind);
	address_format(&req->client_addr, client, sizeof(client));

	struct line line = {.used = 0};
	put(&line, client);
	put(&line, " ");
	put(&line, log_method(req->method));
	put(&line, " ");
	put(&line, api_path ? req->path : "-");
	put(&line, " ");
	if (code != 0)
		put_number(&line, code);
	else
		put(&line, "-");
	put(&line, " key=");
	put(&line, key_id);
	put(&line, " ");
	put_number(&line, ms > 0 ? (unsigned long)ms : 0);
	put(&line, "ms");
	put(&line, note);
	if (!api_path) {
		put(&line, " (not the API path, ");
		put_number(&line, req->target_bytes);
		put(&line, " bytes)");
	}
	log_text(LOG_INFO, line.bytes, line.used);
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
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		conn_rearm(&api->conns, req->conn, clock_monotonic_ms());
	if (req->state == REQUEST_WAITING) {
		/* Cannot happen while every suspended connection is resumed
		 * before MHD_stop_daemon(); the daemon would hold a dangling req. */
		log_error("http: a waiting request was closed");
		waiting_remove(api, req);
	}
	if (req->state == REQUEST_DELAYED) {
		log_error("http: a delayed request was closed");
		delay_remove(&api->delayed, &req->delay);
	}
	if (req->state == REQUEST_RESUMED)
		api->resumed--;
	if (req->answered)
		api->unflushed--;
	if (req->response != NULL && !req->response_shared)
		MHD_destroy_response(req->response);
	free(req->form_body);
	free(req);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_api *api = cls;
	char message[512], line[512];

	vsnprintf(message, sizeof(message), fmt, ap);
	/* Closing a connection answered by conn_refuse() is no error, nor is
	 * finding the end of one shut down by a deadline. */
	if (api->refusal_closing && strncmp(message, "Application reported", 20) == 0) {
		api->refusal_closing = false;
		return;
	}
	api->refusal_closing = false;
	if (api->conns.shut > 0 && strncmp(message, "Connection socket is closed", 27) == 0)
		return;
	size_t n = strlen(message);
	while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' '))
		message[--n] = '\0';
	mhd_message_redact(message, sizeof(message));
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
	char *body = body_invite(&copy, &req->invite, req->json, &len);
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
	if (cfg->max_connections > HTTP_API_MAX_CONNECTIONS)
		return "HTTP max connections must be at most 10000";
	if (cfg->max_connections_per_ip > HTTP_API_MAX_CONNECTIONS)
		return "HTTP max connections per IP must be at most 10000";
	if (cfg->auth_failure_burst > 0 && cfg->auth_failure_rate == 0)
		return "HTTP auth failure rate must be at least 1 per minute";
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
	/* MHD refuses past its limit by not accepting at all; a little above
	 * ours, so that an idle connection can be dropped for a new one
	 * (conn_open()) instead. */
	unsigned int limit = HTTP_API_DESCRIPTORS(cfg->max_connections ? cfg->max_connections
	                                                               : DEFAULT_CONNECTION_LIMIT);
	unsigned int timeout =
	    cfg->connection_timeout_s ? cfg->connection_timeout_s : DEFAULT_CONNECTION_TIMEOUT_S;
	struct MHD_OptionItem tls_options[] = {
	    {MHD_OPTION_HTTPS_CERT_CALLBACK2, 0, (void *)on_tls_certificate},
	    {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
	    {MHD_OPTION_END, 0, NULL},
	};
	unsigned int per_ip =
	    cfg->max_connections_per_ip ? cfg->max_connections_per_ip : DEFAULT_PER_IP_LIMIT;

	if (ipv6)
		flags |= MHD_USE_IPv6;
	if (api->tls != NULL)
		flags |= MHD_USE_TLS;
	/* clang-format off */
	return MHD_start_daemon(flags, 0, NULL, NULL, on_access, api,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, api, /* first, to catch every message */
		MHD_OPTION_SOCK_ADDR, &addr->sa,
		MHD_OPTION_CONNECTION_TIMEOUT, timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		MHD_OPTION_CONNECTION_LIMIT, limit,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, api,
		MHD_OPTION_URI_LOG_CALLBACK, on_target, api,
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
	/* Under TLS, bytes written past MHD would corrupt the stream. */
	info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_FLAGS);
	api->conns.raw_answers = info != NULL && (info->flags & MHD_USE_TLS) == 0;
	return 0;
}

/* One fd for the daemon to watch: an epoll set holding MHD's epoll fd (a
 * nested epoll only reports it readable, it does not consume its events) and
 * the delay timer. */
static int watch_fds(struct http_api *api)
{
	struct epoll_event mhd = {.events = EPOLLIN, .data.fd = api->epoll_fd};
	struct epoll_event timer = {.events = EPOLLIN, .data.fd = api->delayed.timer_fd};

	api->loop_fd = epoll_create1(EPOLL_CLOEXEC);
	if (api->loop_fd < 0)
		return -1;
	if (epoll_ctl(api->loop_fd, EPOLL_CTL_ADD, api->epoll_fd, &mhd) != 0 ||
	    epoll_ctl(api->loop_fd, EPOLL_CTL_ADD, api->delayed.timer_fd, &timer) != 0)
		return -1;
	return 0;
}

/* "Name: value\r\n" lines of the CORS headers, for answers written outside
 * MHD. malloc'd; NULL when out of memory. */
static char *own_headers(const char *cors_origin)
{
	size_t rows = sizeof(common_headers) / sizeof(common_headers[0]);
	size_t size =
	    strlen("Access-Control-Allow-Origin: \r\nVary: Origin\r\n") + strlen(cors_origin) + 1;
	for (size_t i = 0; i < rows; i++)
		size += strlen(common_headers[i].name) + strlen(common_headers[i].value) + 4;
	char *text = malloc(size);
	if (text == NULL)
		return NULL;
	int n = snprintf(text, size, "Access-Control-Allow-Origin: %s\r\n", cors_origin);
	for (size_t i = 0; i < rows; i++)
		n += snprintf(text + n, size - (size_t)n, "%s: %s\r\n", common_headers[i].name,
		              common_headers[i].value);
	if (strcmp(cors_origin, "*") != 0)
		snprintf(text + n, size - (size_t)n, "Vary: Origin\r\n");
	return text;
}

static const char *parse_proxies(struct http_api *api, const struct http_api_config *cfg)
{
	if (cfg->n_trusted_proxies == 0)
		return NULL;
	api->proxies = calloc(cfg->n_trusted_proxies, sizeof(*api->proxies));
	if (api->proxies == NULL)
		return "out of memory";
	for (size_t i = 0; i < cfg->n_trusted_proxies; i++) {
		if (prefix_parse(cfg->trusted_proxies[i], &api->proxies[i]) != 0)
			return "HTTP trusted proxies must be IP addresses or CIDR prefixes";
	}
	api->n_proxies = cfg->n_trusted_proxies;
	return NULL;
}

/* Everything but the listener; undone by free_api(). */
static const char *prepare_api(struct http_api *api, const struct http_api_config *cfg)
{
	unsigned deadline_s =
	    cfg->request_deadline_s ? cfg->request_deadline_s : DEFAULT_REQUEST_DEADLINE_S;

	api->path = strdup(cfg->path);
	api->cors_origin = strdup(cfg->cors_origin != NULL ? cfg->cors_origin : "*");
	if (api->path == NULL || api->cors_origin == NULL)
		return "out of memory";
	api->own_headers = own_headers(api->cors_origin);
	if (api->own_headers == NULL)
		return "out of memory";
	conn_table_init(&api->conns, deadline_s * 1000, false, api->own_headers);
	api->conns.limit = cfg->max_connections ? cfg->max_connections : DEFAULT_CONNECTION_LIMIT;
	if (delay_init(&api->delayed) != 0)
		return "cannot create a timer";
	if (cfg->auth_failure_burst > 0) {
		api->throttle = throttle_create(cfg->auth_failure_burst, cfg->auth_failure_rate,
		                                THROTTLE_CAPACITY);
		if (api->throttle == NULL)
			return "out of memory";
	}
	return parse_proxies(api, cfg);
}

static void free_api(struct http_api *api)
{
	if (api->loop_fd >= 0)
		close(api->loop_fd);
	delay_finish(&api->delayed);
	for (size_t i = 0; i < ANSWER_COUNT; i++)
		for (size_t json = 0; json < 2; json++)
			if (api->fixed[i][json] != NULL)
				MHD_destroy_response(api->fixed[i][json]);
	free(api->path);
	free(api->cors_origin);
	free(api->own_headers);
	free(api->proxies);
	throttle_destroy(api->throttle);
	free(api);
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
	api->loop_fd = -1;
	api->delayed.timer_fd = -1;
	*errstr = prepare_api(api, cfg);
	if (*errstr != NULL)
		goto err_strings;
	/* The answer to running out of memory is made while there is some. */
	for (size_t json = 0; json < 2; json++) {
		api->fixed[ANSWER_OUT_OF_MEMORY][json] =
		    fixed_response(api, ANSWER_OUT_OF_MEMORY, json == 1);
		if (api->fixed[ANSWER_OUT_OF_MEMORY][json] == NULL)
			goto err_strings;
	}
	api->daemon = start_daemon(api, cfg, &addr, ipv6);
	if (api->daemon == NULL) {
		*errstr = "cannot listen on the HTTP address";
		goto err_strings;
	}
	if (daemon_info(api) != 0) {
		*errstr = "cannot query the HTTP listener";
		goto err_daemon;
	}
	if (watch_fds(api) != 0) {
		*errstr = "cannot create the HTTP event set";
		goto err_daemon;
	}
	if (api->tls != NULL)
		https_add(api);
	return api;

err_daemon:
	MHD_stop_daemon(api->daemon);
err_strings:
	free_api(api);
err_alloc:
	http_api_tls_free(cfg->tls);
	if (*errstr == NULL)
		*errstr = "out of memory";
	return NULL;
}

/* Run MHD until every answer given is on its way, for at most budget_ms. */
static void flush_answers(struct http_api *api, int budget_ms)
{
	int64_t deadline = clock_monotonic_ms() + budget_ms;

	while (api->unflushed > 0) {
		int64_t left = deadline - clock_monotonic_ms();
		if (left <= 0) {
			log_warn("http: %u answers not sent at shutdown", api->unflushed);
			return;
		}
		int timeout = http_api_next_timeout(api);
		if (timeout < 0 || timeout > left)
			timeout = (int)left;
		/* poll(), not epoll_wait(): waiting on MHD's own epoll fd would
		 * consume its edge-triggered events. */
		struct pollfd pfd = {.fd = api->loop_fd, .events = POLLIN};
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
	release_delayed(api, INT64_MAX);
	flush_answers(api, SHUTDOWN_FLUSH_MS);
	MHD_stop_daemon(api->daemon);
	https_remove(api);
	http_api_tls_free(api->tls);
	free_api(api);
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
	return api->loop_fd;
}

int http_api_next_timeout(const struct http_api *api)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;

	/* MHD_get_timeout() does not count resumed connections (0.9.75): only
	 * its ITC wakes the fd. Say "now" so the loop runs MHD before sleeping. */
	if (api->resumed > 0)
		return 0;
	int deadline = conn_next_timeout(&api->conns, clock_monotonic_ms());
	if (MHD_get_timeout(api->daemon, &ms) != MHD_YES)
		return deadline;
	int mhd = ms > INT_MAX ? INT_MAX : (int)ms;
	return deadline >= 0 && deadline < mhd ? deadline : mhd;
}

void http_api_run(struct http_api *api)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	release_delayed(api, timespec_ns(&now));
	/* Shut down late connections first: MHD sees them closed in this run. */
	conn_expire(&api->conns, clock_monotonic_ms());
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
