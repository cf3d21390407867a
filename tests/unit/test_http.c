/*
 * Tests of the HTTP module as it runs: http_api on a loopback port with fake
 * handlers, driven by a small event loop in the test's thread, while client
 * threads speak real HTTP/1.1 over sockets. Every wait has a deadline.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http/connections-internal.h"
#include "http/http.h"
#include "unit.h"

#define DEADLINE_MS           5000
#define API_PATH              "/invites_api"
#define KEY                   "k1/s3cret"
#define MAX_PENDING           64
#define MAX_REQUESTS          2
#define HTTP_TARGET_TEST_SIZE 10000
#define HTTP_FORM_TEST_SIZE   (16 * 1024)

enum mode {
	MODE_DEFER_AUTO,   /* suspend; the loop answers on its next turn */
	MODE_DEFER_MANUAL, /* suspend; the test answers */
	MODE_SYNC_INVITE,  /* answer inside create_invite */
	MODE_SYNC_FAIL,
	MODE_SYNC_TWICE, /* answer twice inside create_invite */
};

struct pending {
	struct http_api_request *req;
	char key_id[65];
};

static struct fixture {
	struct http_api *api;
	struct http_api_invite_request last_invite; /* as create_invite saw it, strings copied */
	char last_username[1024], last_jid[2048];
	unsigned short port;
	enum mode mode;
	unsigned fail_status; /* non-zero: answer with http_api_request_fail */
	const char *fail_reason;
	unsigned fail_retry;
	unsigned auth_calls;
	size_t last_credential_len;
	unsigned create_calls;
	struct pending pending[MAX_PENDING];
	size_t npending;
} fx;

/* --- fake handlers ------------------------------------------------------- */

#define MAY_BOTH (HTTP_API_MAY_ACCOUNT | HTTP_API_MAY_RESET)

static const struct fake_key {
	const char *credential;
	enum http_api_auth result;
	const char *id;
	unsigned may;
} fake_keys[] = {
    {KEY, HTTP_API_AUTH_OK, "k1", MAY_BOTH},
    {"k2/0ther", HTTP_API_AUTH_OK, "k2", MAY_BOTH},
    {"broken/x", HTTP_API_AUTH_ERROR, NULL, 0},
    {"acct/only", HTTP_API_AUTH_OK, "acct", HTTP_API_MAY_ACCOUNT},
    {"rset/only", HTTP_API_AUTH_OK, "rset", HTTP_API_MAY_RESET},
};

static enum http_api_auth fake_authenticate(void *userdata, const char *credential, size_t len,
                                            struct http_api_key *key)
{
	struct fixture *f = userdata;
	const char *multi = "/multi"; /* "cN/multi": one key per concurrent client */
	size_t mlen = strlen(multi);

	f->auth_calls++;
	f->last_credential_len = len;
	for (size_t i = 0; i < sizeof(fake_keys) / sizeof(fake_keys[0]); i++) {
		const struct fake_key *k = &fake_keys[i];
		if (len != strlen(k->credential) || memcmp(credential, k->credential, len) != 0)
			continue;
		if (k->result == HTTP_API_AUTH_OK) {
			snprintf(key->id, sizeof(key->id), "%s", k->id);
			snprintf(key->host, sizeof(key->host), "example.com");
			key->may = k->may;
		}
		return k->result;
	}
	if (len > mlen + 1 && len < 20 && credential[0] == 'c' &&
	    memcmp(credential + len - mlen, multi, mlen) == 0) {
		snprintf(key->id, sizeof(key->id), "%.*s", (int)(len - mlen), credential);
		snprintf(key->host, sizeof(key->host), "example.com");
		key->may = HTTP_API_MAY_ACCOUNT;
		return HTTP_API_AUTH_OK;
	}
	return HTTP_API_AUTH_DENIED;
}

static void answer_invite(struct http_api_request *req, const char *key_id)
{
	char url[128], uri[128];
	snprintf(url, sizeof(url), "https://example.com/invite/%s", key_id);
	snprintf(uri, sizeof(uri), "xmpp:example.com?register;preauth=%s", key_id);
	struct http_api_invite invite = {url, uri, "2026-12-10T15:54:46Z"};
	http_api_request_invite(req, &invite);
}

static void answer(struct http_api_request *req, const char *key_id)
{
	if (fx.fail_status != 0)
		http_api_request_fail(req, fx.fail_status, fx.fail_reason, fx.fail_retry);
	else
		answer_invite(req, key_id);
}

static void fake_create_invite(void *userdata, struct http_api_request *req,
                               const struct http_api_key *key,
                               const struct http_api_invite_request *invite)
{
	struct fixture *f = userdata;

	f->create_calls++;
	f->last_invite = *invite;
	if (invite->username != NULL) {
		snprintf(f->last_username, sizeof(f->last_username), "%s", invite->username);
		f->last_invite.username = f->last_username;
	}
	if (invite->account_jid != NULL) {
		snprintf(f->last_jid, sizeof(f->last_jid), "%s", invite->account_jid);
		f->last_invite.account_jid = f->last_jid;
	}
	CU_ASSERT_STRING_EQUAL(key->host, "example.com");
	switch (f->mode) {
	case MODE_SYNC_INVITE:
	case MODE_SYNC_FAIL:
		answer(req, key->id);
		return;
	case MODE_SYNC_TWICE:
		answer_invite(req, key->id);
		http_api_request_fail(req, 500, "second answer", 0);
		return;
	default:
		CU_ASSERT_FATAL(f->npending < MAX_PENDING);
		f->pending[f->npending].req = req;
		snprintf(f->pending[f->npending].key_id, sizeof(f->pending[0].key_id), "%s",
		         key->id);
		f->npending++;
	}
}

static void answer_pending(void)
{
	for (size_t i = 0; i < fx.npending; i++)
		answer(fx.pending[i].req, fx.pending[i].key_id);
	fx.npending = 0;
}

static const struct http_api_handlers fake_handlers = {fake_authenticate, fake_create_invite};

/* --- the loop ------------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void loop_once(int max_wait_ms)
{
	/* Readability of MHD's epoll fd, as the daemon's loop sees it. Never
	 * epoll_wait() on that fd itself: it would eat MHD's events. */
	struct pollfd pfd = {.fd = http_api_fd(fx.api), .events = POLLIN};
	int timeout = http_api_next_timeout(fx.api);

	if (timeout < 0 || timeout > max_wait_ms)
		timeout = max_wait_ms;
	poll(&pfd, 1, timeout);
	http_api_run(fx.api);
	if (fx.mode == MODE_DEFER_AUTO)
		answer_pending();
}

/* Run the loop until done(arg) or the deadline; false on timeout. */
static bool loop_until(bool (*done)(const void *), const void *arg)
{
	int64_t deadline = now_ms() + DEADLINE_MS;

	while (!done(arg)) {
		if (now_ms() > deadline)
			return false;
		loop_once(10);
	}
	return true;
}

static void loop_for(int ms)
{
	int64_t end = now_ms() + ms;
	while (now_ms() < end)
		loop_once(5);
}

static bool waiting_reached(const void *count)
{
	return http_api_waiting(fx.api) >= *(const unsigned *)count;
}

static void start_with(const struct http_api_config *cfg)
{
	const char *errstr = NULL;
	enum mode mode = fx.mode;

	memset(&fx, 0, sizeof(fx));
	fx.mode = mode;
	fx.api = http_api_create(cfg, &fake_handlers, &fx, &errstr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx.api);
	CU_ASSERT_PTR_NULL(errstr);
	fx.port = http_api_port(fx.api);
	CU_ASSERT_NOT_EQUAL(fx.port, 0);
}

static void start(enum mode mode)
{
	struct http_api_config cfg = {.bind = "127.0.0.1", .path = API_PATH};
	fx.mode = mode;
	start_with(&cfg);
}

static void stop(void)
{
	http_api_destroy(fx.api);
	fx.api = NULL;
}

/* --- the client ---------------------------------------------------------- */

struct response {
	int status;
	char head[4096];
	char body[4096];
	size_t body_len;
};

struct client {
	pthread_t thread;
	int family;
	unsigned short port;
	char *requests[MAX_REQUESTS];
	size_t request_lens[MAX_REQUESTS];
	int nrequests;
	bool head;          /* responses carry no body */
	bool hang_up;       /* close right after sending, read nothing */
	int trickle_ms;     /* send the one request a byte at a time, this far apart */
	const char *source; /* local address to connect from (127.0.0.x), or NULL */
	struct response responses[MAX_REQUESTS];
	int answered; /* responses read */
	bool closed;  /* the server closed the connection (checked after the last) */
	atomic_bool done;
};

static int client_connect(int family, unsigned short port, const char *source)
{
	int fd = socket(family, SOCK_STREAM, 0);
	struct timeval tv = {DEADLINE_MS / 1000, 0};
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (source != NULL) {
		struct sockaddr_in local = {.sin_family = AF_INET};
		inet_pton(AF_INET, source, &local.sin_addr);
		if (bind(fd, (struct sockaddr *)&local, sizeof(local)) != 0) {
			close(fd);
			return -1;
		}
	}
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	inet_pton(AF_INET6, "::1", &in6.sin6_addr);
	int rc = family == AF_INET ? connect(fd, (struct sockaddr *)&in, sizeof(in))
	                           : connect(fd, (struct sockaddr *)&in6, sizeof(in6));
	if (rc != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static size_t content_length(const char *head)
{
	const char *p = strcasestr(head, "\r\nContent-Length:");
	return p == NULL ? 0 : strtoul(p + strlen("\r\nContent-Length:"), NULL, 10);
}

/* One response: headers, then Content-Length bytes (none if head). */
static int read_response(int fd, struct response *r, bool head)
{
	char buf[16384];
	size_t len = 0;
	char *end = NULL;

	while (end == NULL) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	size_t head_len = (size_t)(end + 2 - buf);
	snprintf(r->head, sizeof(r->head), "%.*s", (int)head_len, buf);
	if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1)
		return -1;
	size_t want = head ? 0 : content_length(r->head);
	size_t have = len - head_len - 2;
	while (have < want && len < sizeof(buf) - 1) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		have += (size_t)n;
	}
	r->body_len = want < sizeof(r->body) - 1 ? want : sizeof(r->body) - 1;
	memcpy(r->body, end + 4, r->body_len);
	r->body[r->body_len] = '\0';
	return 0;
}

/* A slow client: the request line at once, then one byte at a time until the
 * server answers or hangs up. */
static void trickle(struct client *c, int fd)
{
	const char *eol = strstr(c->requests[0], "\r\n");
	size_t i = eol != NULL ? (size_t)(eol + 2 - c->requests[0]) : 0;

	if (send_all(fd, c->requests[0], i) != 0)
		return;
	for (; i < c->request_lens[0]; i++) {
		char byte;
		if (recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
			break; /* an answer, or the end */
		if (send(fd, c->requests[0] + i, 1, MSG_NOSIGNAL) != 1)
			break;
		usleep((useconds_t)c->trickle_ms * 1000);
	}
	if (read_response(fd, &c->responses[0], false) == 0)
		c->answered++;
	char byte;
	c->closed = recv(fd, &byte, 1, 0) <= 0;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	int fd = client_connect(c->family, c->port, c->source);

	if (fd >= 0 && c->trickle_ms > 0) {
		trickle(c, fd);
		close(fd);
	} else if (fd >= 0 && c->hang_up) {
		send_all(fd, c->requests[0], c->request_lens[0]);
		close(fd);
	} else if (fd >= 0) {
		for (int i = 0; i < c->nrequests; i++) {
			if (send_all(fd, c->requests[i], c->request_lens[i]) != 0 ||
			    read_response(fd, &c->responses[i], c->head) != 0)
				break;
			c->answered++;
		}
		char byte;
		c->closed = recv(fd, &byte, 1, 0) == 0;
		close(fd);
	}
	atomic_store(&c->done, true);
	return NULL;
}

static void client_add(struct client *c, const char *data, size_t len)
{
	CU_ASSERT_FATAL(c->nrequests < MAX_REQUESTS);
	c->requests[c->nrequests] = malloc(len + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->requests[c->nrequests]);
	memcpy(c->requests[c->nrequests], data, len);
	c->request_lens[c->nrequests++] = len;
}

__attribute__((format(printf, 2, 3))) static void client_addf(struct client *c, const char *fmt,
                                                              ...)
{
	char buf[16384];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(buf));
	client_add(c, buf, (size_t)n);
}

static void client_start(struct client *c)
{
	if (c->family == 0)
		c->family = AF_INET;
	c->port = fx.port;
	atomic_init(&c->done, false);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&c->thread, NULL, client_main, c), 0);
}

static bool client_done(const void *arg)
{
	return atomic_load(&((const struct client *)arg)->done);
}

/* Wait for the client (the loop runs meanwhile) and reap it. */
static void client_finish(struct client *c)
{
	CU_ASSERT_TRUE(loop_until(client_done, c));
	pthread_join(c->thread, NULL);
	for (int i = 0; i < c->nrequests; i++)
		free(c->requests[i]);
	CU_ASSERT_EQUAL(c->answered, c->nrequests);
}

__attribute__((format(printf, 3, 0))) static void exchange_va(struct response *r, const char *body,
                                                              const char *fmt, va_list ap)
{
	struct client c = {0};
	char buf[16384];

	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(buf));
	c.head = strncmp(buf, "HEAD ", 5) == 0;
	client_addf(&c, "%s\r\nHost: localhost\r\nConnection: close\r\n\r\n%s", buf,
	            body != NULL ? body : "");
	client_start(&c);
	client_finish(&c);
	*r = c.responses[0];
}

/* One request (line and headers from fmt) on its own connection;
 * "Connection: close" is added. */
__attribute__((format(printf, 2, 3))) static void exchange(struct response *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	exchange_va(r, NULL, fmt, ap);
	va_end(ap);
}

/* The same with a request body. */
__attribute__((format(printf, 3, 4))) static void
exchange_body(struct response *r, const char *body, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	exchange_va(r, body, fmt, ap);
	va_end(ap);
}

/* --- response checks ----------------------------------------------------- */

static bool header(const struct response *r, const char *name, char *value, size_t size)
{
	size_t n = strlen(name);
	for (const char *line = strstr(r->head, "\r\n"); line != NULL;
	     line = strstr(line + 2, "\r\n")) {
		const char *start = line + 2;
		if (strncasecmp(start, name, n) != 0 || start[n] != ':')
			continue;
		start += n + 1;
		while (*start == ' ')
			start++;
		const char *end = strstr(start, "\r\n");
		snprintf(value, size, "%.*s", (int)(end - start), start);
		return true;
	}
	return false;
}

static void assert_header(const struct response *r, const char *name, const char *expected)
{
	char value[1024];
	bool found = header(r, name, value, sizeof(value));
	CU_ASSERT_TRUE(found);
	if (found)
		CU_ASSERT_STRING_EQUAL(value, expected);
}

static void assert_no_header(const struct response *r, const char *name)
{
	char value[1024];
	CU_ASSERT_FALSE(header(r, name, value, sizeof(value)));
}

static void assert_cors(const struct response *r, const char *origin)
{
	assert_header(r, "Access-Control-Allow-Origin", origin);
	assert_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
	assert_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
	assert_header(r, "Access-Control-Expose-Headers", "Location");
	assert_header(r, "Access-Control-Max-Age", "7200");
	assert_header(r, "Cache-Control", "no-store");
	if (strcmp(origin, "*") == 0)
		assert_no_header(r, "Vary");
	else
		assert_header(r, "Vary", "Origin");
}

static void assert_answer(const struct response *r, int status, const char *body)
{
	CU_ASSERT_EQUAL(r->status, status);
	CU_ASSERT_STRING_EQUAL(r->body, body);
	assert_cors(r, "*");
}

static void assert_invite(const struct response *r, int status, const char *key_id)
{
	char url[128], body[130];
	snprintf(url, sizeof(url), "https://example.com/invite/%s", key_id);
	snprintf(body, sizeof(body), "%s\n", url);
	assert_answer(r, status, body);
	assert_header(r, "Location", url);
	assert_header(r, "Content-Type", "text/plain; charset=utf-8");
}

/* --- tests: creation ----------------------------------------------------- */

static void assert_create_fails(const struct http_api_config *cfg)
{
	const char *errstr = NULL;
	CU_ASSERT_PTR_NULL(http_api_create(cfg, &fake_handlers, NULL, &errstr));
	CU_ASSERT_PTR_NOT_NULL(errstr);
}

static void test_create_errors(void)
{
	struct http_api_config cfg = {.bind = "localhost", .path = API_PATH};
	const char *errstr = NULL;

	assert_create_fails(&cfg); /* not a literal */
	cfg.bind = NULL;
	assert_create_fails(&cfg);
	cfg.bind = "127.0.0.1";
	cfg.path = "invites_api";
	assert_create_fails(&cfg);
	cfg.path = API_PATH;
	cfg.cors_origin = "https://a.example\r\nX-Evil: 1";
	assert_create_fails(&cfg);
	cfg.cors_origin = "";
	assert_create_fails(&cfg);
	cfg.cors_origin = NULL;
	cfg.max_connections = HTTP_API_MAX_CONNECTIONS + 1;
	assert_create_fails(&cfg);
	cfg.max_connections = 0;
	struct http_api_handlers none = {NULL, NULL};
	CU_ASSERT_PTR_NULL(http_api_create(&cfg, &none, NULL, &errstr));

	start(MODE_SYNC_INVITE);
	cfg.port = fx.port; /* in use */
	assert_create_fails(&cfg);
	CU_ASSERT_EQUAL(http_api_next_timeout(fx.api), -1); /* idle: nothing timed */
	CU_ASSERT_EQUAL(http_api_waiting(fx.api), 0);
	stop();
	http_api_destroy(NULL);
}

/* --- tests: success ------------------------------------------------------ */

static void test_get_query_key(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1");
	assert_invite(&r, 201, "k1");
	CU_ASSERT_EQUAL(fx.create_calls, 1);
	exchange(&r, "GET " API_PATH "/?key=k1%%2Fs3cret HTTP/1.1"); /* decoded, trailing slash */
	assert_invite(&r, 201, "k1");
	stop();
}

static void test_redirect(void)
{
	static const char *const see_other[] = {"true", "1", "yes", "TRUE"};
	static const char *const created[] = {"false", "0", "no", ""};
	struct response r;

	start(MODE_DEFER_AUTO);
	for (size_t i = 0; i < sizeof(see_other) / sizeof(see_other[0]); i++) {
		exchange(&r, "GET " API_PATH "?key=" KEY "&redirect=%s HTTP/1.1", see_other[i]);
		assert_invite(&r, 303, "k1");
	}
	for (size_t i = 0; i < sizeof(created) / sizeof(created[0]); i++) {
		exchange(&r, "GET " API_PATH "?redirect=%s&key=" KEY " HTTP/1.1", created[i]);
		assert_invite(&r, 201, "k1");
	}
	exchange(&r, "GET " API_PATH "?key=" KEY "&redirect HTTP/1.1");
	assert_invite(&r, 201, "k1");
	unsigned calls = fx.create_calls;
	exchange(&r, "GET " API_PATH "?key=" KEY "&redirect=maybe HTTP/1.1");
	assert_answer(&r, 400, "redirect must be true or false (or 1, yes, 0, no)\n");
	CU_ASSERT_EQUAL(fx.create_calls, calls);
	stop();
}

static void test_json(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nAccept: application/json");
	CU_ASSERT_EQUAL(r.status, 201);
	assert_cors(&r, "*");
	assert_header(&r, "Content-Type", "application/json");
	assert_header(&r, "Location", "https://example.com/invite/k1");
	json_t *json = json_loads(r.body, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "url")),
	                       "https://example.com/invite/k1");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "uri")),
	                       "xmpp:example.com?register;preauth=k1");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "expires")),
	                       "2026-12-10T15:54:46Z");
	json_decref(json);

	exchange(&r, "GET " API_PATH " HTTP/1.1\r\nAccept: text/html, application/json");
	CU_ASSERT_EQUAL(r.status, 401);
	assert_header(&r, "Content-Type", "application/json");
	CU_ASSERT_STRING_EQUAL(r.body, "{\"error\":\"missing key\"}\n");

	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nAccept: */*");
	assert_invite(&r, 201, "k1");
	stop();
}

static void test_bearer_and_post(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	exchange(&r, "GET " API_PATH " HTTP/1.1\r\nAuthorization: Bearer " KEY);
	assert_invite(&r, 201, "k1");
	exchange(&r, "POST " API_PATH " HTTP/1.1\r\nAuthorization: bearer k2/0ther");
	assert_invite(&r, 201, "k2");
	exchange_body(&r, "ignored=1",
	              "POST " API_PATH "?key=" KEY " HTTP/1.1\r\nContent-Length: 9\r\n"
	              "Content-Type: application/x-www-form-urlencoded");
	assert_invite(&r, 201, "k1");
	exchange_body(&r, "5\r\nhello\r\n0\r\n\r\n",
	              "POST " API_PATH "?key=" KEY "&redirect=true HTTP/1.1\r\n"
	              "Transfer-Encoding: chunked");
	assert_invite(&r, 303, "k1");
	/* Both, byte-identical. */
	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nAuthorization: Bearer " KEY);
	assert_invite(&r, 201, "k1");
	stop();
}

static void test_sync_invite(void)
{
	struct response r;

	start(MODE_SYNC_INVITE);
	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1");
	assert_invite(&r, 201, "k1");
	CU_ASSERT_EQUAL(http_api_waiting(fx.api), 0);
	stop();

	start(MODE_SYNC_TWICE); /* the second answer is ignored */
	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1");
	assert_invite(&r, 201, "k1");
	stop();
}

/* --- tests: refusals ----------------------------------------------------- */

static void test_unauthorized(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	exchange(&r, "GET " API_PATH " HTTP/1.1");
	assert_answer(&r, 401, "missing key\n");
	assert_header(&r, "WWW-Authenticate", "Bearer");
	exchange(&r, "GET " API_PATH "?key= HTTP/1.1");
	assert_answer(&r, 401, "missing key\n");

	static const char *const bad[] = {"k1/wrong", "nobody/s3cret", "garbage", "k1%2Fs3cret%01"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		exchange(&r, "GET " API_PATH "?key=%s HTTP/1.1", bad[i]);
		assert_answer(&r, 401, "invalid key\n");
		assert_header(&r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	}
	CU_ASSERT_EQUAL(fx.last_credential_len, strlen(KEY) + 1); /* passed on as it is */
	exchange(&r, "GET " API_PATH " HTTP/1.1\r\nAuthorization: Bearer k2/wrong");
	assert_answer(&r, 401, "invalid key\n");
	exchange(&r, "GET " API_PATH " HTTP/1.1\r\nAuthorization: Bearer");
	assert_answer(&r, 401, "invalid key\n");

	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nAuthorization: Basic azE6cw==");
	assert_answer(&r, 401, "Authorization must use the Bearer scheme\n");
	assert_header(&r, "WWW-Authenticate", "Bearer");
	CU_ASSERT_EQUAL(fx.create_calls, 0);
	stop();
}

/* A refusal is made once and queued again and again: every one arrives
 * whole, text and JSON kept apart, on fresh and on kept-alive connections. */
static void test_refusals_reused(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	for (int i = 0; i < 40; i++) {
		bool json = i % 3 == 0;
		exchange(&r, "GET " API_PATH "?key=k1/wrong HTTP/1.1%s",
		         json ? "\r\nAccept: application/json" : "");
		assert_cors(&r, "*");
		assert_header(&r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		if (json) {
			CU_ASSERT_EQUAL(r.status, 401);
			assert_header(&r, "Content-Type", "application/json");
			CU_ASSERT_STRING_EQUAL(r.body, "{\"error\":\"invalid key\"}\n");
		} else {
			assert_answer(&r, 401, "invalid key\n");
		}
	}
	struct client c = {0};
	client_addf(&c, "GET " API_PATH "?key=k1/wrong HTTP/1.1\r\nHost: x\r\n\r\n");
	client_addf(&c, "GET " API_PATH " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	client_start(&c);
	client_finish(&c);
	assert_answer(&c.responses[0], 401, "invalid key\n");
	assert_answer(&c.responses[1], 401, "missing key\n");
	CU_ASSERT_EQUAL(fx.create_calls, 0);
	stop();
}

static void test_huge_key(void)
{
	char key[5001];
	struct response r;

	memset(key, 'a', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	start(MODE_DEFER_AUTO);
	exchange(&r, "GET " API_PATH "?key=%s HTTP/1.1", key);
	assert_answer(&r, 401, "invalid key\n");
	assert_header(&r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	CU_ASSERT_EQUAL(fx.auth_calls, 0); /* refused before any lookup */
	stop();
}

static void test_conflict_and_store_error(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nAuthorization: Bearer k2/0ther");
	assert_answer(&r, 400, "conflicting keys in query and Authorization header\n");
	CU_ASSERT_EQUAL(fx.auth_calls, 0);
	exchange(&r, "GET " API_PATH "?key=broken/x HTTP/1.1");
	assert_answer(&r, 500, "internal error\n");
	CU_ASSERT_EQUAL(fx.create_calls, 0);
	stop();
}

static void test_methods(void)
{
	static const char *const refused[] = {"PUT", "DELETE", "PATCH", "TRACE", "get"};
	struct response r;

	start(MODE_DEFER_AUTO);
	exchange(&r, "HEAD " API_PATH "?key=" KEY " HTTP/1.1");
	CU_ASSERT_EQUAL(r.status, 405);
	assert_cors(&r, "*");
	assert_header(&r, "Allow", "GET, POST, OPTIONS");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		exchange(&r, "%s " API_PATH "?key=" KEY " HTTP/1.1", refused[i]);
		assert_answer(&r, 405, "method not allowed\n");
		assert_header(&r, "Allow", "GET, POST, OPTIONS");
	}
	CU_ASSERT_EQUAL(fx.auth_calls, 0);
	CU_ASSERT_EQUAL(fx.create_calls, 0);
	stop();
}

static void test_preflight(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	exchange(&r, "OPTIONS " API_PATH " HTTP/1.1\r\nOrigin: https://app.example\r\n"
	             "Access-Control-Request-Method: GET\r\n"
	             "Access-Control-Request-Headers: authorization");
	assert_answer(&r, 204, "");
	assert_no_header(&r, "Allow");
	exchange(&r, "OPTIONS /elsewhere HTTP/1.1");
	assert_answer(&r, 404, "not found\n");
	CU_ASSERT_EQUAL(fx.create_calls, 0);
	stop();
}

static void test_not_found(void)
{
	static const char *const paths[] = {"/",        "/invites_api//", "/invites_apix",
	                                    "/invites", "/invites_api/x", "/INVITES_API"};
	struct response r;

	start(MODE_DEFER_AUTO);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		exchange(&r, "GET %s?key=" KEY " HTTP/1.1", paths[i]);
		assert_answer(&r, 404, "not found\n");
	}
	exchange(&r, "POST /nowhere HTTP/1.1\r\nAccept: application/json");
	CU_ASSERT_EQUAL(r.status, 404);
	CU_ASSERT_STRING_EQUAL(r.body, "{\"error\":\"not found\"}\n");
	CU_ASSERT_EQUAL(fx.create_calls, 0);
	stop();
}

static void test_cors_origin(void)
{
	struct http_api_config cfg = {
	    .bind = "127.0.0.1", .path = API_PATH, .cors_origin = "https://app.example"};
	struct response r;

	fx.mode = MODE_DEFER_AUTO;
	start_with(&cfg);
	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1");
	CU_ASSERT_EQUAL(r.status, 201);
	assert_cors(&r, "https://app.example");
	exchange(&r, "OPTIONS " API_PATH " HTTP/1.1");
	CU_ASSERT_EQUAL(r.status, 204);
	assert_cors(&r, "https://app.example");
	exchange(&r, "GET /x HTTP/1.1");
	CU_ASSERT_EQUAL(r.status, 404);
	assert_cors(&r, "https://app.example");
	stop();
}

/* POST a chunked body of total bytes (chunks of 10000), or one with a
 * Content-Length if !chunked. */
static void post_body(struct response *r, size_t total, bool chunked)
{
	static const char head[] = "POST " API_PATH "?key=" KEY " HTTP/1.1\r\nHost: x\r\n"
	                           "Connection: close\r\n";
	struct client c = {0};
	char *request = malloc(sizeof(head) + 64 + total + (total / 10000 + 1) * 16);
	char *p = request;

	CU_ASSERT_PTR_NOT_NULL_FATAL(request);
	p += sprintf(p, "%s", head);
	if (chunked)
		p += sprintf(p, "Transfer-Encoding: chunked\r\n\r\n");
	else
		p += sprintf(p, "Content-Length: %zu\r\n\r\n", total);
	for (size_t left = total; left > 0;) {
		size_t chunk = left < 10000 ? left : 10000;
		if (chunked)
			p += sprintf(p, "%zx\r\n", chunk);
		memset(p, 'x', chunk);
		p += chunk;
		if (chunked)
			p += sprintf(p, "\r\n");
		left -= chunk;
	}
	if (chunked)
		p += sprintf(p, "0\r\n\r\n");
	client_add(&c, request, (size_t)(p - request));
	free(request);
	client_start(&c);
	client_finish(&c);
	*r = c.responses[0];
}

static void test_body_limit(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	/* Announced too large: refused before the body is read. */
	exchange(&r, "POST " API_PATH "?key=" KEY " HTTP/1.1\r\nContent-Length: 65537");
	assert_answer(&r, 413, "request body too large\n");
	exchange(&r, "POST " API_PATH "?key=" KEY " HTTP/1.1\r\nContent-Length: "
	             "99999999999999999999999999");
	CU_ASSERT(r.status == 413 || r.status == 400); /* MHD refuses that one itself */
	CU_ASSERT_EQUAL(fx.create_calls, 0);
	/* Chunked: read, dropped, then refused. */
	post_body(&r, 65537, true);
	assert_answer(&r, 413, "request body too large\n");
	CU_ASSERT_EQUAL(fx.create_calls, 0);
	/* At the limit: accepted, the body ignored. */
	post_body(&r, 65536, true);
	assert_invite(&r, 201, "k1");
	post_body(&r, 65536, false);
	assert_invite(&r, 201, "k1");
	CU_ASSERT_EQUAL(fx.create_calls, 2);
	stop();
}

/* --- tests: deferred answers --------------------------------------------- */

static void test_deferred(void)
{
	struct client c = {0};
	unsigned one = 1;

	start(MODE_DEFER_MANUAL);
	client_addf(&c, "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nHost: x\r\nConnection: close"
	                "\r\n\r\n");
	client_start(&c);
	CU_ASSERT_TRUE_FATAL(loop_until(waiting_reached, &one));
	CU_ASSERT_EQUAL(fx.npending, 1);
	loop_for(100);
	CU_ASSERT_FALSE(atomic_load(&c.done)); /* suspended: no answer, no timeout */
	CU_ASSERT_EQUAL(http_api_waiting(fx.api), 1);
	answer_pending();
	CU_ASSERT_EQUAL(http_api_waiting(fx.api), 0);
	CU_ASSERT_EQUAL(http_api_next_timeout(fx.api), 0); /* resumed: run now */
	client_finish(&c);
	assert_invite(&c.responses[0], 201, "k1");
	CU_ASSERT_TRUE(c.closed);
	stop();
}

static void test_deferred_failures(void)
{
	static const struct {
		unsigned status;
		const char *reason;
		unsigned retry;
		const char *body;
	} rows[] = {
	    {502, "server answered: forbidden", 0, "server answered: forbidden\n"},
	    {504, "the XMPP server did not answer", 0, "the XMPP server did not answer\n"},
	    {503, "XMPP server offline", 30, "XMPP server offline\n"},
	    {500, "multi\nline", 0, "multi line\n"},
	    {409, "the XMPP server refused the username: taken", 0,
	     "the XMPP server refused the username: taken\n"},
	    {501, "the XMPP server cannot do this: no such command", 0,
	     "the XMPP server cannot do this: no such command\n"},
	    {200, "not an error status", 0, "not an error status\n"}, /* becomes 500 */
	};
	static const enum mode modes[] = {MODE_DEFER_AUTO, MODE_SYNC_FAIL};
	struct response r;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
			start(modes[m]);
			fx.fail_status = rows[i].status;
			fx.fail_reason = rows[i].reason;
			fx.fail_retry = rows[i].retry;
			exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1");
			assert_answer(&r, rows[i].status < 400 ? 500 : (int)rows[i].status,
			              rows[i].body);
			assert_no_header(&r, "Location");
			if (rows[i].retry > 0)
				assert_header(&r, "Retry-After", "30");
			else
				assert_no_header(&r, "Retry-After");
			stop();
		}
	}
}

/* Start one deferred request and wait until it is suspended. */
static void start_deferred(struct client *c)
{
	unsigned one = 1;
	client_addf(c, "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nHost: x\r\nConnection: close"
	               "\r\n\r\n");
	client_start(c);
	CU_ASSERT_TRUE_FATAL(loop_until(waiting_reached, &one));
	CU_ASSERT_EQUAL_FATAL(fx.npending, 1);
	fx.npending = 0;
}

static void test_invite_edge_cases(void)
{
	static const struct {
		struct http_api_invite invite;
		int status;
		const char *body;
		const char *location;
	} rows[] = {
	    {{NULL, "xmpp:example.com?register", NULL},
	     201,
	     "xmpp:example.com?register\n",
	     "xmpp:example.com?register"},
	    {{"", "xmpp:example.com?register", NULL},
	     201,
	     "xmpp:example.com?register\n",
	     "xmpp:example.com?register"},
	    {{NULL, NULL, NULL}, 500, "internal error\n", NULL},
	    {{"https://x/\r\nSet-Cookie: a=b", "xmpp:x", NULL}, 502, "invalid invite URL\n", NULL},
	};

	start(MODE_DEFER_MANUAL);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct client c = {0};
		start_deferred(&c);
		http_api_request_invite(fx.pending[0].req, &rows[i].invite);
		client_finish(&c);
		assert_answer(&c.responses[0], rows[i].status, rows[i].body);
		if (rows[i].location != NULL)
			assert_header(&c.responses[0], "Location", rows[i].location);
		else
			assert_no_header(&c.responses[0], "Location");
		assert_no_header(&c.responses[0], "Set-Cookie");
	}
	stop();
}

static void test_client_gone(void)
{
	struct client c = {.hang_up = true};

	start(MODE_DEFER_MANUAL);
	start_deferred(&c);
	pthread_join(c.thread, NULL);
	free(c.requests[0]);
	loop_for(50);
	CU_ASSERT_EQUAL(http_api_waiting(fx.api), 1); /* MHD does not notice */
	answer_invite(fx.pending[0].req, "k1");
	CU_ASSERT_EQUAL(http_api_next_timeout(fx.api), 0);
	loop_for(50);
	CU_ASSERT_EQUAL(http_api_waiting(fx.api), 0);
	CU_ASSERT_NOT_EQUAL(http_api_next_timeout(fx.api), 0); /* nothing resumed is left */
	stop();
}

static void test_many_deferred(void)
{
	enum { CLIENTS = 50 };
	static struct client clients[CLIENTS];
	unsigned all = CLIENTS;

	memset(clients, 0, sizeof(clients));
	start(MODE_DEFER_MANUAL);
	for (int i = 0; i < CLIENTS; i++) {
		client_addf(&clients[i],
		            "GET " API_PATH "?redirect=%s HTTP/1.1\r\nHost: x\r\n"
		            "Authorization: Bearer c%d/multi\r\nConnection: close\r\n\r\n",
		            i % 2 ? "true" : "false", i);
		client_start(&clients[i]);
	}
	CU_ASSERT_TRUE_FATAL(loop_until(waiting_reached, &all));
	/* Answer in reverse order: each must still get its own URL. */
	for (size_t i = fx.npending; i-- > 0;)
		answer_invite(fx.pending[i].req, fx.pending[i].key_id);
	fx.npending = 0;
	for (int i = 0; i < CLIENTS; i++) {
		char id[16];
		snprintf(id, sizeof(id), "c%d", i);
		client_finish(&clients[i]);
		assert_invite(&clients[i].responses[0], i % 2 ? 303 : 201, id);
	}
	CU_ASSERT_EQUAL(fx.create_calls, CLIENTS);
	stop();
}

static void test_keep_alive(void)
{
	struct client c = {0};

	start(MODE_DEFER_AUTO);
	client_addf(&c, "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nHost: x\r\n\r\n");
	client_addf(&c, "GET " API_PATH " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k2/0ther"
	                "\r\nConnection: close\r\n\r\n");
	client_start(&c);
	client_finish(&c);
	assert_invite(&c.responses[0], 201, "k1");
	assert_invite(&c.responses[1], 201, "k2");
	stop();
}

static void test_destroy_answers_waiting(void)
{
	enum { CLIENTS = 3 };
	struct client clients[CLIENTS];
	unsigned all = CLIENTS;

	memset(clients, 0, sizeof(clients));
	start(MODE_DEFER_MANUAL);
	for (int i = 0; i < CLIENTS; i++) {
		client_addf(&clients[i],
		            "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nHost: x\r\n\r\n");
		client_start(&clients[i]);
	}
	CU_ASSERT_TRUE_FATAL(loop_until(waiting_reached, &all));
	http_api_destroy(fx.api); /* answers and flushes by itself */
	fx.api = NULL;
	fx.npending = 0;
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(clients[i].thread, NULL);
		free(clients[i].requests[0]);
		CU_ASSERT_EQUAL(clients[i].answered, 1);
		assert_answer(&clients[i].responses[0], 503, "shutting down\n");
		assert_header(&clients[i].responses[0], "Connection", "close");
		CU_ASSERT_TRUE(clients[i].closed);
	}
}

/* --- tests: listener ----------------------------------------------------- */

static void test_quiesce(void)
{
	start(MODE_DEFER_AUTO);
	http_api_quiesce(fx.api);
	http_api_quiesce(fx.api);
	errno = 0;
	CU_ASSERT_EQUAL(client_connect(AF_INET, fx.port, NULL), -1);
	CU_ASSERT_EQUAL(errno, ECONNREFUSED);
	stop();
}

static void test_ipv6(void)
{
	struct http_api_config cfg = {.bind = "::1", .path = API_PATH};
	struct client c = {.family = AF_INET6};

	fx.mode = MODE_DEFER_AUTO;
	start_with(&cfg);
	client_addf(&c, "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nHost: x\r\nConnection: close"
	                "\r\n\r\n");
	client_start(&c);
	client_finish(&c);
	assert_invite(&c.responses[0], 201, "k1");
	stop();
}

static void test_idle_timeout(void)
{
	struct http_api_config cfg = {
	    .bind = "127.0.0.1", .path = API_PATH, .connection_timeout_s = 1};
	struct client c = {0};

	fx.mode = MODE_DEFER_AUTO;
	start_with(&cfg);
	int64_t begin = now_ms();
	client_start(&c); /* connects, sends nothing */
	CU_ASSERT_TRUE(loop_until(client_done, &c));
	pthread_join(c.thread, NULL);
	CU_ASSERT_TRUE(c.closed);
	CU_ASSERT_TRUE(now_ms() - begin >= 900);
	stop();
}

/* --- tests: the log line ------------------------------------------------- */

struct capture {
	int saved;
	FILE *file;
};

static void capture_start(struct capture *cap)
{
	fflush(stderr);
	cap->file = tmpfile();
	CU_ASSERT_PTR_NOT_NULL_FATAL(cap->file);
	cap->saved = dup(STDERR_FILENO);
	dup2(fileno(cap->file), STDERR_FILENO);
}

static char *capture_end(struct capture *cap)
{
	static char text[8192];
	fflush(stderr);
	dup2(cap->saved, STDERR_FILENO);
	close(cap->saved);
	rewind(cap->file);
	size_t n = fread(text, 1, sizeof(text) - 1, cap->file);
	text[n] = '\0';
	fclose(cap->file);
	return text;
}

static void test_log_line(void)
{
	struct capture cap;
	struct response r;

	start(MODE_DEFER_AUTO);
	capture_start(&cap);
	exchange(&r, "GET " API_PATH "?key=" KEY "&redirect=1 HTTP/1.1\r\n"
	             "Authorization: Bearer " KEY);
	exchange(&r, "GET /x%%0Ay%%3Fkey=k1/leak?key=" KEY " HTTP/1.1");
	exchange(&r, "POST " API_PATH " HTTP/1.1\r\nAuthorization: Bearer k1/wrongsecret");
	exchange(&r, "POST " API_PATH "/reset?key=" KEY "&jid=alice%%40example.com HTTP/1.1");
	loop_for(20);
	char *log = capture_end(&cap);
	stop();

	CU_ASSERT_PTR_NOT_NULL(strstr(log, " info 127.0.0.1 GET " API_PATH " 303 key=k1 "));
	/* Not the API path: neither it nor a key pasted into it is logged. */
	const char *at = strstr(log, " info 127.0.0.1 GET - 404");
	char expected_note[64];
	snprintf(expected_note, sizeof(expected_note), "ms (not the API path, %zu bytes)\n",
	         strlen("/x%0Ay%3Fkey=k1/leak?key=" KEY));
	CU_ASSERT(at != NULL && strstr(at, expected_note) != NULL);
	CU_ASSERT_PTR_NULL(strstr(log, "/x"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, " info 127.0.0.1 POST " API_PATH " 401 key=- "));
	CU_ASSERT_PTR_NULL(strstr(log, "s3cret"));
	CU_ASSERT_PTR_NULL(strstr(log, "leak"));
	CU_ASSERT_PTR_NULL(strstr(log, "wrongsecret"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, " info 127.0.0.1 POST " API_PATH "/reset 201 key=k1 "));
	CU_ASSERT_PTR_NULL(strstr(log, "alice"));
	CU_ASSERT_PTR_NULL(strstr(log, "Bearer"));
	CU_ASSERT_PTR_NULL(strstr(log, "?"));
	/* One line per request, each ending in a duration (and a note). */
	int lines = 0;
	for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		size_t n = strlen(line);
		CU_ASSERT_TRUE((n > 2 && strcmp(line + n - 2, "ms") == 0) ||
		               strstr(line, "ms (") != NULL);
		lines++;
	}
	CU_ASSERT_EQUAL(lines, 4);
}

/* --- tests: password resets, usernames, permissions --------------------- */

#define RESET_PATH API_PATH "/reset"
#define FORM       "Content-Type: application/x-www-form-urlencoded"

/* POST body as a form, on its own connection. */
__attribute__((format(printf, 3, 4))) static void
exchange_form(struct response *r, const char *body, const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(line));
	exchange_body(r, body, "%s\r\n" FORM "\r\nContent-Length: %zu", line, strlen(body));
}

static void test_reset(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	exchange(&r, "POST " RESET_PATH "?key=" KEY "&jid=Alice%%40EXAMPLE.com HTTP/1.1");
	assert_invite(&r, 201, "k1");
	CU_ASSERT_EQUAL(fx.create_calls, 1);
	CU_ASSERT_EQUAL(fx.last_invite.kind, HTTP_API_INVITE_RESET);
	CU_ASSERT_STRING_EQUAL(fx.last_invite.account_jid, "alice@example.com");
	CU_ASSERT_PTR_NULL(fx.last_invite.username);
	exchange(&r, "POST " RESET_PATH "/?key=" KEY "&jid=bob@example.com&redirect=true HTTP/1.1");
	assert_invite(&r, 303, "k1");
	CU_ASSERT_STRING_EQUAL(fx.last_invite.account_jid, "bob@example.com");
	/* in a form body, the key in the header */
	exchange_form(&r, "jid=carol%40example.com&other=1",
	              "POST " RESET_PATH " HTTP/1.1\r\nAuthorization: Bearer " KEY);
	assert_invite(&r, 201, "k1");
	CU_ASSERT_STRING_EQUAL(fx.last_invite.account_jid, "carol@example.com");
	exchange(&r, "POST " RESET_PATH "?key=" KEY "&jid=dave@example.com HTTP/1.1\r\n"
	             "Accept: application/json");
	CU_ASSERT_EQUAL(r.status, 201);
	json_t *json = json_loads(r.body, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "type")), "reset");
	CU_ASSERT_PTR_NULL(json_object_get(json, "username"));
	json_decref(json);
	/* the account route still makes account invites */
	exchange(&r, "POST " API_PATH "?key=" KEY " HTTP/1.1");
	assert_invite(&r, 201, "k1");
	CU_ASSERT_EQUAL(fx.last_invite.kind, HTTP_API_INVITE_ACCOUNT);
	CU_ASSERT_PTR_NULL(fx.last_invite.account_jid);
	CU_ASSERT_EQUAL(fx.create_calls, 5);
	stop();
}

static void test_reset_methods(void)
{
	static const char *const refused[] = {"GET", "HEAD", "PUT", "DELETE", "post"};
	struct response r;

	start(MODE_DEFER_AUTO);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		exchange(&r, "%s " RESET_PATH "?key=" KEY "&jid=alice@example.com HTTP/1.1",
		         refused[i]);
		CU_ASSERT_EQUAL(r.status, 405);
		assert_header(&r, "Allow", "POST, OPTIONS");
		assert_cors(&r, "*");
		if (strcmp(refused[i], "HEAD") != 0)
			CU_ASSERT_STRING_EQUAL(
			    r.body, "method not allowed: password-reset invites take POST\n");
	}
	exchange(&r, "OPTIONS " RESET_PATH " HTTP/1.1");
	CU_ASSERT_EQUAL(r.status, 204);
	assert_cors(&r, "*");
	exchange(&r, "POST " RESET_PATH "x?key=" KEY " HTTP/1.1");
	CU_ASSERT_EQUAL(r.status, 404);
	CU_ASSERT_EQUAL(fx.auth_calls, 0);
	CU_ASSERT_EQUAL(fx.create_calls, 0);
	stop();
}

static void test_permissions(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	exchange(&r, "POST " RESET_PATH "?key=acct/only&jid=alice@example.com HTTP/1.1");
	assert_answer(&r, 403, "this key may not create password-reset invites\n");
	assert_no_header(&r, "Location");
	/* checked before the parameters: no hint about them */
	exchange(&r, "POST " RESET_PATH "?key=acct/only&jid=alice@other.example HTTP/1.1");
	assert_answer(&r, 403, "this key may not create password-reset invites\n");
	exchange(&r, "GET " API_PATH "?key=rset/only HTTP/1.1");
	assert_answer(&r, 403, "this key may not create account invites\n");
	exchange(&r, "GET " API_PATH "?key=rset/only HTTP/1.1\r\nAccept: application/json");
	CU_ASSERT_EQUAL(r.status, 403);
	CU_ASSERT_STRING_EQUAL(r.body, "{\"error\":\"this key may not create account invites\"}\n");
	CU_ASSERT_EQUAL(fx.create_calls, 0);
	/* and after the key: a wrong key learns nothing of permissions */
	exchange(&r, "POST " RESET_PATH "?key=acct/wrong&jid=alice@example.com HTTP/1.1");
	assert_answer(&r, 401, "invalid key\n");
	/* allowed kinds go through */
	exchange(&r, "POST " RESET_PATH "?key=rset/only&jid=alice@example.com HTTP/1.1");
	assert_invite(&r, 201, "rset");
	exchange(&r, "GET " API_PATH "?key=acct/only HTTP/1.1");
	assert_invite(&r, 201, "acct");
	CU_ASSERT_EQUAL(fx.create_calls, 2);
	stop();
}

static void test_reset_bad_jid(void)
{
	static const struct {
		const char *query, *reason;
	} rows[] = {
	    {"", "a password-reset invite needs jid=user@host"},
	    {"&jid=", "a password-reset invite needs jid=user@host"},
	    {"&jid", "a password-reset invite needs jid=user@host"},
	    {"&jid=example.com", "jid must be the bare JID of an account, user@host"},
	    {"&jid=alice@example.com/phone", "jid must be the bare JID of an account, user@host"},
	    {"&jid=alice%40example.com%2Fphone",
	     "jid must be the bare JID of an account, user@host"},
	    {"&jid=@example.com", "jid has an empty user part"},
	    {"&jid=alice@other.example", "jid is not an account of this key's host"},
	    {"&jid=alice@", "jid is not an account of this key's host"},
	    {"&jid=a+b@example.com", "jid has a user part with a character an XMPP username "
	                             "cannot have (\"&'/:<>@, space, control character, ...)"},
	    {"&jid=%FF@example.com", "jid is not valid UTF-8"},
	    {"&jid=alice@example.com&jid=bob@example.com", "more than one jid parameter"},
	    {"&jid=alice@example.com&JID=alice@example.com", "more than one jid parameter"},
	    {"&jid=alice@example.com&username=alice", "username is a parameter of account invites"},
	};
	struct response r;

	start(MODE_DEFER_AUTO);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char body[300];
		snprintf(body, sizeof(body), "%s\n", rows[i].reason);
		exchange(&r, "POST " RESET_PATH "?key=" KEY "%s HTTP/1.1", rows[i].query);
		assert_answer(&r, 400, body);
	}
	/* NUL, raw or escaped, in the query or the body */
	exchange(&r, "POST " RESET_PATH "?key=" KEY "&jid=alice%%00@example.com HTTP/1.1");
	assert_answer(&r, 400, "NUL byte (%00) in the URL\n");
	exchange_form(&r, "jid=alice%00@example.com", "POST " RESET_PATH "?key=" KEY " HTTP/1.1");
	assert_answer(&r, 400, "malformed percent-encoding (or %00) in the form body\n");
	exchange_form(&r, "jid=alice%4@example.com", "POST " RESET_PATH "?key=" KEY " HTTP/1.1");
	assert_answer(&r, 400, "malformed percent-encoding (or %00) in the form body\n");
	/* in the query and the body: twice */
	exchange_form(&r, "jid=alice%40example.com",
	              "POST " RESET_PATH "?key=" KEY "&jid=alice@example.com HTTP/1.1");
	assert_answer(&r, 400, "more than one jid parameter\n");
	/* a body that is not a form is not read for parameters */
	exchange_body(&r, "jid=alice%40example.com",
	              "POST " RESET_PATH "?key=" KEY " HTTP/1.1\r\nContent-Length: 23");
	assert_answer(&r, 400, "a password-reset invite needs jid=user@host\n");
	/* jid on the account route: not quietly an account invite */
	exchange(&r, "POST " API_PATH "?key=" KEY "&jid=alice@example.com HTTP/1.1");
	CU_ASSERT_EQUAL(r.status, 400);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "reset"));
	CU_ASSERT_EQUAL(fx.create_calls, 0);
	stop();
}

static void test_username(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	exchange(&r, "GET " API_PATH "?key=" KEY "&username=Alice HTTP/1.1");
	assert_invite(&r, 201, "k1");
	CU_ASSERT_EQUAL(fx.last_invite.kind, HTTP_API_INVITE_ACCOUNT);
	CU_ASSERT_STRING_EQUAL(fx.last_invite.username, "alice");
	CU_ASSERT_PTR_NULL(fx.last_invite.account_jid);
	exchange(&r, "GET " API_PATH "?key=" KEY "&username=Stra%%C3%%9Fe HTTP/1.1\r\n"
	             "Accept: application/json");
	CU_ASSERT_EQUAL(r.status, 201);
	json_t *json = json_loads(r.body, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "type")), "account");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "username")), "strasse");
	json_decref(json);
	exchange_form(&r, "username=bob", "POST " API_PATH "?key=" KEY " HTTP/1.1");
	assert_invite(&r, 201, "k1");
	CU_ASSERT_STRING_EQUAL(fx.last_invite.username, "bob");
	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1");
	assert_invite(&r, 201, "k1");
	CU_ASSERT_PTR_NULL(fx.last_invite.username);
	CU_ASSERT_EQUAL(fx.create_calls, 4);

	static const char prohibited[] = "username has a character an XMPP username cannot have "
	                                 "(\"&'/:<>@, space, control character, ...)\n";
	static const struct {
		const char *value, *body;
	} bad[] = {
	    {"a%22b", prohibited},
	    {"a%26b", prohibited},
	    {"a%27b", prohibited},
	    {"a%2Fb", prohibited},
	    {"a%3Ab", prohibited},
	    {"a%3Cb", prohibited},
	    {"a%3Eb", prohibited},
	    {"a%40b", prohibited},
	    {"a/b", prohibited},
	    {"a:b", prohibited},
	    {"a@b", prohibited},
	    {"a%20b", prohibited},
	    {"a+b", prohibited},
	    {"a%09b", prohibited},
	    {"a%7Fb", prohibited},
	    {"a%C2%A0b", prohibited},
	    {"%EE%80%80", prohibited},
	    {"", "username is empty\n"},
	    {"%C2%AD", "username is empty\n"},
	    {"%FF", "username is not valid UTF-8\n"},
	    {"%C0%80", "username is not valid UTF-8\n"},
	    {"%ED%A0%80", "username is not valid UTF-8\n"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		exchange(&r, "GET " API_PATH "?key=" KEY "&username=%s HTTP/1.1", bad[i].value);
		assert_answer(&r, 400, bad[i].body);
		char form[64];
		snprintf(form, sizeof(form), "username=%s", bad[i].value);
		exchange_form(&r, form, "POST " API_PATH "?key=" KEY " HTTP/1.1");
		assert_answer(&r, 400, bad[i].body);
	}
	char name[1100];
	memset(name, 'a', 1024);
	name[1024] = '\0';
	exchange(&r, "GET " API_PATH "?key=" KEY "&username=%s HTTP/1.1", name);
	assert_answer(&r, 400, "username is longer than 1023 bytes\n");
	name[1023] = '\0';
	exchange(&r, "GET " API_PATH "?key=" KEY "&username=%s HTTP/1.1", name);
	assert_invite(&r, 201, "k1");
	CU_ASSERT_EQUAL(strlen(fx.last_invite.username), 1023);
	unsigned calls = fx.create_calls;
	exchange(&r, "GET " API_PATH "?key=" KEY "&username=a%%00b HTTP/1.1");
	assert_answer(&r, 400, "NUL byte (%00) in the URL\n");
	exchange_form(&r, "username=a%00b", "POST " API_PATH "?key=" KEY " HTTP/1.1");
	assert_answer(&r, 400, "malformed percent-encoding (or %00) in the form body\n");
	exchange(&r, "GET " API_PATH "?key=" KEY "&username=a&username=b HTTP/1.1");
	assert_answer(&r, 400, "more than one username parameter\n");
	exchange_form(&r, "username=b", "POST " API_PATH "?key=" KEY "&username=a HTTP/1.1");
	assert_answer(&r, 400, "more than one username parameter\n");
	CU_ASSERT_EQUAL(fx.create_calls, calls);
	stop();
}

/* POST a form of total bytes ("username=ok&x=xxx..."), chunked or not. */
static void post_form(struct response *r, size_t total, bool chunked)
{
	struct client c = {0};
	char *request = malloc(total + 512);
	char *p = request;

	CU_ASSERT_PTR_NOT_NULL_FATAL(request);
	p += sprintf(p, "POST " API_PATH "?key=" KEY " HTTP/1.1\r\nHost: x\r\n"
	                "Connection: close\r\n" FORM "\r\n");
	if (chunked)
		p += sprintf(p, "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", total);
	else
		p += sprintf(p, "Content-Length: %zu\r\n\r\n", total);
	memset(p, 'x', total);
	memcpy(p, "username=ok&x=", 14);
	p += total;
	if (chunked)
		p += sprintf(p, "\r\n0\r\n\r\n");
	client_add(&c, request, (size_t)(p - request));
	free(request);
	client_start(&c);
	client_finish(&c);
	*r = c.responses[0];
}

static void test_form_limit(void)
{
	struct response r;

	start(MODE_DEFER_AUTO);
	exchange(&r, "POST " API_PATH "?key=" KEY " HTTP/1.1\r\n" FORM "\r\nContent-Length: 16385");
	assert_answer(&r, 413, "form body too large\n");
	post_form(&r, HTTP_FORM_TEST_SIZE, false); /* exactly at the limit */
	assert_invite(&r, 201, "k1");
	CU_ASSERT_STRING_EQUAL(fx.last_invite.username, "ok");
	post_form(&r, HTTP_FORM_TEST_SIZE, true);
	assert_invite(&r, 201, "k1");
	post_form(&r, HTTP_FORM_TEST_SIZE + 1, true); /* read, then refused */
	assert_answer(&r, 413, "form body too large\n");
	CU_ASSERT_EQUAL(fx.create_calls, 2);
	stop();
}

/* --- tests: hostile clients ---------------------------------------------- */

static void test_request_deadline(void)
{
	struct http_api_config cfg = {.bind = "127.0.0.1",
	                              .path = API_PATH,
	                              .connection_timeout_s = 30,
	                              .request_deadline_s = 1};
	struct client slow = {.trickle_ms = 50}, silent = {0};
	struct response r;
	char request[512];

	/* 400 bytes at 50 ms each would take 20 s; the idle timeout never
	 * fires, the deadline does. */
	int n = snprintf(request, sizeof(request),
	                 "GET " API_PATH "?key=" KEY " HTTP/1.1\r\n"
	                 "Host: localhost\r\nX-Slow: ");
	memset(request + n, 'a', sizeof(request) - (size_t)n - 1);
	request[sizeof(request) - 1] = '\0';
	fx.mode = MODE_DEFER_AUTO;
	start_with(&cfg);
	int64_t begin = now_ms();
	client_add(&slow, request, strlen(request));
	client_start(&slow);
	client_start(&silent);                                 /* connects, sends nothing */
	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1"); /* served meanwhile */
	assert_invite(&r, 201, "k1");
	CU_ASSERT_TRUE(loop_until(client_done, &slow));
	CU_ASSERT_TRUE(loop_until(client_done, &silent));
	int64_t took = now_ms() - begin;
	pthread_join(slow.thread, NULL);
	pthread_join(silent.thread, NULL);
	free(slow.requests[0]);

	CU_ASSERT_EQUAL(slow.answered, 1);
	assert_answer(&slow.responses[0], 408, "request not received in time\n");
	assert_header(&slow.responses[0], "Connection", "close");
	CU_ASSERT_TRUE(slow.closed);
	CU_ASSERT_TRUE(silent.closed); /* no request begun: closed without a word */
	CU_ASSERT_EQUAL(silent.answered, 0);
	CU_ASSERT_TRUE(took >= 900 && took < 3000);
	CU_ASSERT_EQUAL(fx.create_calls, 1);
	stop();
}

static void test_deadline_after_keep_alive(void)
{
	struct http_api_config cfg = {.bind = "127.0.0.1",
	                              .path = API_PATH,
	                              .connection_timeout_s = 30,
	                              .request_deadline_s = 1};
	struct client c = {0};

	fx.mode = MODE_DEFER_AUTO;
	start_with(&cfg);
	/* Two requests on one connection, 1.5 s apart in total: each gets its
	 * own deadline, counted from the previous answer. */
	client_addf(&c, "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nHost: localhost\r\n\r\n");
	client_addf(&c, "GET " API_PATH "?key=" KEY " HTTP/1.1\r\nHost: localhost\r\n\r\n");
	int64_t begin = now_ms();
	client_start(&c);
	CU_ASSERT_TRUE(loop_until(client_done, &c));
	pthread_join(c.thread, NULL);
	for (int i = 0; i < c.nrequests; i++)
		free(c.requests[i]);
	CU_ASSERT_EQUAL(c.answered, 2);
	CU_ASSERT_TRUE(c.closed); /* then idle past the deadline */
	CU_ASSERT_TRUE(now_ms() - begin >= 900);
	stop();
}

/* One raw request of len bytes (may hold NUL) on its own connection. */
/* Raw bytes on a connection of their own; returns the number of answers
 * (0 when the server closed the connection without one). */
static int exchange_raw(struct response *r, const char *data, size_t len)
{
	struct client c = {0};
	client_add(&c, data, len);
	client_start(&c);
	CU_ASSERT_TRUE(loop_until(client_done, &c));
	pthread_join(c.thread, NULL);
	free(c.requests[0]);
	*r = c.responses[0];
	return c.answered;
}

static void test_hostile_targets(void)
{
	struct response r;
	static char target[HTTP_TARGET_TEST_SIZE];

	start(MODE_DEFER_AUTO);
	/* Too many parameters: MHD would run out of memory parsing them and
	 * leave the client without an answer; refused before it does. */
	size_t n = (size_t)snprintf(target, sizeof(target), API_PATH "?key=" KEY);
	for (int i = 0; i < 150; i++)
		n += (size_t)snprintf(target + n, sizeof(target) - n, "&p%d=1", i);
	exchange(&r, "GET %s HTTP/1.1", target);
	assert_answer(&r, 414, "too many query parameters\n");
	memset(target, '&', 5000);
	target[5000] = '\0';
	exchange(&r, "GET " API_PATH "?%s HTTP/1.1", target);
	assert_answer(&r, 414, "too many query parameters\n");
	memset(target, 'a', 9000);
	target[9000] = '\0';
	exchange(&r, "GET " API_PATH "?key=%s HTTP/1.1", target);
	assert_answer(&r, 414, "URL too long\n");

	exchange(&r, "GET " API_PATH "?key=k1%%zz HTTP/1.1");
	assert_answer(&r, 400, "malformed percent-encoding in the URL\n");
	exchange(&r, "GET " API_PATH "%%2 HTTP/1.1");
	assert_answer(&r, 400, "malformed percent-encoding in the URL\n");
	exchange(&r, "GET " API_PATH "%%00x?key=" KEY " HTTP/1.1");
	assert_answer(&r, 400, "NUL byte (%00) in the URL\n");
	exchange(&r, "GET " API_PATH "?key=" KEY "%%00 HTTP/1.1");
	assert_answer(&r, 400, "NUL byte (%00) in the URL\n");
	static const char raw_nul[] = "GET " API_PATH "\0x?key=" KEY " HTTP/1.1\r\n"
	                              "Host: localhost\r\nConnection: close\r\n\r\n";
	int answers = exchange_raw(&r, raw_nul, sizeof(raw_nul) - 1);
#if MHD_VERSION >= 0x01000000
	/* libmicrohttpd 1.0 refuses a NUL in the request line itself (the
	 * handler never sees the request): it closes the connection. */
	CU_ASSERT(answers == 0 || r.status == 400);
#else
	CU_ASSERT_EQUAL(answers, 1);
	assert_answer(&r, 400, "NUL byte in the request line\n");
#endif

	exchange(&r, "GET " API_PATH "?key=" KEY "&key=" KEY " HTTP/1.1");
	assert_answer(&r, 400, "more than one key parameter\n");
	exchange(&r, "GET " API_PATH "?key=" KEY "&KEY=x HTTP/1.1");
	assert_answer(&r, 400, "more than one key parameter\n");
	exchange(&r, "GET " API_PATH " HTTP/1.1\r\nAuthorization: Bearer " KEY
	             "\r\nAuthorization: Bearer " KEY);
	assert_answer(&r, 400, "more than one Authorization header\n");
	exchange_body(&r, "ab",
	              "POST " API_PATH "?key=" KEY " HTTP/1.1\r\n"
	              "Content-Length: 2\r\nContent-Length: 2");
	assert_answer(&r, 400,
	              "more than one Content-Length, or Content-Length with Transfer-Encoding\n");
	assert_header(&r, "Connection", "close");
	exchange_body(&r, "0\r\n\r\n",
	              "POST " API_PATH "?key=" KEY " HTTP/1.1\r\n"
	              "Content-Length: 5\r\nTransfer-Encoding: chunked");
	CU_ASSERT_EQUAL(r.status, 400);
	/* Without a length MHD would wait for the end of the connection. */
	exchange(&r, "POST " API_PATH "?key=" KEY " HTTP/1.1\r\nTransfer-Encoding: gzip");
#if MHD_VERSION >= 0x01000000
	/* libmicrohttpd 1.0 answers this one itself, before the handler. */
	CU_ASSERT_EQUAL(r.status, 400);
#else
	assert_answer(&r, 501, "Transfer-Encoding other than chunked\n");
#endif
	assert_header(&r, "Connection", "close");
	CU_ASSERT_EQUAL(fx.auth_calls, 0);
	CU_ASSERT_EQUAL(fx.create_calls, 0);

	exchange(&r, "GET " API_PATH "?key=" KEY " HTTP/1.1"); /* still serving */
	assert_invite(&r, 201, "k1");
	stop();
}

/* A request from source (127.0.0.x) with extra header lines. */
static void exchange_from(struct response *r, const char *source, const char *key,
                          const char *extra)
{
	struct client c = {.source = source};
	client_addf(&c,
	            "GET " API_PATH "?key=%s HTTP/1.1\r\nHost: localhost\r\n%s"
	            "Connection: close\r\n\r\n",
	            key, extra);
	client_start(&c);
	client_finish(&c);
	*r = c.responses[0];
}

static void test_throttle(void)
{
	struct http_api_config cfg = {.bind = "127.0.0.1",
	                              .path = API_PATH,
	                              .auth_failure_burst = 2,
	                              .auth_failure_rate = 20}; /* a token every 3 s */
	struct response r;

	fx.mode = MODE_DEFER_AUTO;
	start_with(&cfg);
	for (int i = 0; i < 2; i++) {
		exchange_from(&r, "127.0.0.2", "k1/wrong", "");
		assert_answer(&r, 401, "invalid key\n");
	}
	unsigned calls = fx.auth_calls;
	exchange_from(&r, "127.0.0.2", "k1/wrong", "");
	assert_answer(&r, 429, "too many failed authentications from this address\n");
	assert_header(&r, "Retry-After", "3");   /* answered a second later */
	exchange_from(&r, "127.0.0.2", KEY, ""); /* the right key waits too */
	CU_ASSERT_EQUAL(r.status, 429);
	CU_ASSERT_EQUAL(fx.auth_calls, calls);          /* not even looked at */
	exchange_from(&r, "127.0.0.3", "k1/wrong", ""); /* another client */
	CU_ASSERT_EQUAL(r.status, 401);
	exchange_from(&r, "127.0.0.3", KEY, "");
	assert_invite(&r, 201, "k1");
	loop_for(1100); /* 3 s after the bucket ran dry: one token back */
	exchange_from(&r, "127.0.0.2", KEY, "");
	assert_invite(&r, 201, "k1");
	/* Successes cost nothing. */
	for (int i = 0; i < 5; i++) {
		exchange_from(&r, "127.0.0.4", KEY, "");
		CU_ASSERT_EQUAL(r.status, 201);
	}
	stop();
}

static void test_forwarded_for(void)
{
	static const char *const proxies[] = {"127.0.0.2", "10.0.0.0/8"};
	struct http_api_config cfg = {.bind = "127.0.0.1",
	                              .path = API_PATH,
	                              .auth_failure_burst = 1,
	                              .auth_failure_rate = 1,
	                              .trusted_proxies = proxies,
	                              .n_trusted_proxies = 2};
	struct capture cap;
	struct response r;

	fx.mode = MODE_DEFER_AUTO;
	start_with(&cfg);
	capture_start(&cap);
	/* Behind the trusted proxy, each forwarded client has its own bucket. */
	exchange_from(&r, "127.0.0.2", "k1/wrong", "X-Forwarded-For: 192.0.2.1\r\n");
	CU_ASSERT_EQUAL(r.status, 401);
	exchange_from(&r, "127.0.0.2", "k1/wrong", "X-Forwarded-For: 192.0.2.1, 10.1.1.1\r\n");
	CU_ASSERT_EQUAL(r.status, 429);
	exchange_from(&r, "127.0.0.2", "k1/wrong", "X-Forwarded-For: 192.0.2.2\r\n");
	CU_ASSERT_EQUAL(r.status, 401);
	/* An untrusted peer's header is ignored: its own address counts. */
	exchange_from(&r, "127.0.0.3", "k1/wrong", "X-Forwarded-For: 198.51.100.1\r\n");
	CU_ASSERT_EQUAL(r.status, 401);
	exchange_from(&r, "127.0.0.3", "k1/wrong", "X-Forwarded-For: 198.51.100.2\r\n");
	CU_ASSERT_EQUAL(r.status, 429);
	char *log = capture_end(&cap);
	stop();
	CU_ASSERT_PTR_NOT_NULL(strstr(log, " 192.0.2.1 GET " API_PATH " 401 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, " 192.0.2.1 GET " API_PATH " 429 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, " 192.0.2.2 GET " API_PATH " 401 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, " 127.0.0.3 GET " API_PATH " 429 "));
	CU_ASSERT_PTR_NULL(strstr(log, "198.51.100"));
}

static void test_bad_limits_config(void)
{
	static const char *const bad_proxy[] = {"10.0.0.0/33"};
	struct http_api_config cfg = {.bind = "127.0.0.1", .path = API_PATH};

	cfg.trusted_proxies = bad_proxy;
	cfg.n_trusted_proxies = 1;
	assert_create_fails(&cfg);
	cfg.n_trusted_proxies = 0;
	cfg.auth_failure_burst = 5; /* with no rate */
	assert_create_fails(&cfg);
	cfg.auth_failure_burst = 0;
	cfg.max_connections_per_ip = HTTP_API_MAX_CONNECTIONS + 1;
	assert_create_fails(&cfg);
}

/* A throttled client's 429 leaves a second after its request began; refused
 * keys before that are answered at once. */
static void test_throttled_is_answered_late(void)
{
	struct http_api_config cfg = {
	    .bind = "127.0.0.1", .path = API_PATH, .auth_failure_burst = 1, .auth_failure_rate = 1};
	struct response r;
	struct client c = {0};

	fx.mode = MODE_DEFER_AUTO;
	start_with(&cfg);
	int64_t begin = now_ms();
	exchange_from(&r, "127.0.0.2", "k1/wrong", "");
	assert_answer(&r, 401, "invalid key\n");
	CU_ASSERT_TRUE(now_ms() - begin < 500);
	static const char *const keys[] = {"k1/wrong", "garbage", KEY};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		begin = now_ms();
		exchange_from(&r, "127.0.0.2", keys[i], "");
		assert_answer(&r, 429, "too many failed authentications from this address\n");
		CU_ASSERT_TRUE(now_ms() - begin >= 1000);
		CU_ASSERT_TRUE(now_ms() - begin < 2000);
	}
	/* Others are answered at once meanwhile. */
	begin = now_ms();
	exchange_from(&r, "127.0.0.3", KEY, "");
	assert_invite(&r, 201, "k1");
	CU_ASSERT_TRUE(now_ms() - begin < 500);

	/* At shutdown a held answer goes out at once. */
	client_addf(&c, "GET " API_PATH "?key=k1/wrong HTTP/1.1\r\nHost: localhost\r\n"
	                "Connection: close\r\n\r\n");
	c.source = "127.0.0.2";
	client_start(&c);
	loop_for(300); /* received and held by now */
	int64_t held = now_ms();
	stop();
	pthread_join(c.thread, NULL);
	free(c.requests[0]);
	CU_ASSERT_EQUAL(c.answered, 1);
	CU_ASSERT_EQUAL(c.responses[0].status, 429);
	CU_ASSERT_TRUE(now_ms() - held < 900);
}

static bool fd_readable(int fd, int wait_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	return poll(&pfd, 1, wait_ms) == 1 && (pfd.revents & POLLIN);
}

static int64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The held answers' timer: its fd is readable exactly while a due entry
 * waits, though popping makes no read() (the loop calls it every round):
 * two entries due at once, one due later and removed, one due when added. */
static void test_delay_queue_fd(void)
{
	struct delay_queue q;
	struct delayed a, b, c;
	const int64_t ms = 1000000;

	CU_ASSERT_EQUAL_FATAL(delay_init(&q), 0);
	CU_ASSERT_FALSE(fd_readable(q.timer_fd, 0));
	int64_t start = monotonic_ns();
	delay_add(&q, &c, start + 400 * ms);
	delay_add(&q, &a, start + 50 * ms);
	delay_add(&q, &b, start + 50 * ms);
	CU_ASSERT_PTR_NULL(delay_pop_due(&q, monotonic_ns()));
	CU_ASSERT_FALSE(fd_readable(q.timer_fd, 0));
	CU_ASSERT_TRUE(fd_readable(q.timer_fd, DEADLINE_MS));
	CU_ASSERT_TRUE(monotonic_ns() >= start + 50 * ms);
	int64_t now = monotonic_ns();
	CU_ASSERT_PTR_EQUAL(delay_pop_due(&q, now), &a);
	CU_ASSERT_PTR_EQUAL(delay_pop_due(&q, now), &b);
	CU_ASSERT_PTR_NULL(delay_pop_due(&q, now));
	CU_ASSERT_FALSE(fd_readable(q.timer_fd, 0)); /* armed for c */
	CU_ASSERT_EQUAL(q.count, 1);
	delay_remove(&q, &c);
	CU_ASSERT_FALSE(fd_readable(q.timer_fd, 500)); /* c's time passes: disarmed */

	delay_add(&q, &a, monotonic_ns() - ms);
	CU_ASSERT_TRUE(fd_readable(q.timer_fd, DEADLINE_MS));
	CU_ASSERT_PTR_EQUAL(delay_pop_due(&q, monotonic_ns()), &a);
	CU_ASSERT_PTR_NULL(delay_pop_due(&q, INT64_MAX));
	CU_ASSERT_FALSE(fd_readable(q.timer_fd, 0));
	CU_ASSERT_EQUAL(q.count, 0);
	delay_finish(&q);
}

static const struct unit_test tests[] = {
    {"create errors", test_create_errors},
    {"held answers' timer fd", test_delay_queue_fd},
    {"GET with query key", test_get_query_key},
    {"redirect parameter", test_redirect},
    {"JSON answers", test_json},
    {"Bearer header and POST", test_bearer_and_post},
    {"synchronous invite", test_sync_invite},
    {"401 missing, invalid, other scheme", test_unauthorized},
    {"refusals made once and reused", test_refusals_reused},
    {"huge key", test_huge_key},
    {"400 conflict, 500 key store", test_conflict_and_store_error},
    {"405 HEAD and others", test_methods},
    {"204 preflight", test_preflight},
    {"404 other paths", test_not_found},
    {"configured CORS origin", test_cors_origin},
    {"413 body limit", test_body_limit},
    {"deferred answer after suspension", test_deferred},
    {"502, 503, 504 answers", test_deferred_failures},
    {"invite edge cases", test_invite_edge_cases},
    {"client gone while suspended", test_client_gone},
    {"50 concurrent deferred requests", test_many_deferred},
    {"keep-alive", test_keep_alive},
    {"destroy answers waiting requests", test_destroy_answers_waiting},
    {"quiesce", test_quiesce},
    {"IPv6", test_ipv6},
    {"idle connection timeout", test_idle_timeout},
    {"request deadline", test_request_deadline},
    {"deadline after keep-alive", test_deadline_after_keep_alive},
    {"hostile request targets", test_hostile_targets},
    {"throttled authentication", test_throttle},
    {"throttled clients answered late", test_throttled_is_answered_late},
    {"X-Forwarded-For", test_forwarded_for},
    {"limits in the config", test_bad_limits_config},
    {"log line", test_log_line},
    {"password-reset invites", test_reset},
    {"405 and 204 on the reset route", test_reset_methods},
    {"403 without the permission", test_permissions},
    {"400 for every kind of bad jid", test_reset_bad_jid},
    {"reserved usernames, 400 for bad ones", test_username},
    {"413 form body limit", test_form_limit},
    {NULL, NULL},
};

UNIT_MAIN("http", tests)
