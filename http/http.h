#ifndef INVITES_HTTP_H
#define INVITES_HTTP_H

/*
 * The HTTP API: an embedded libmicrohttpd listener in external-loop epoll mode.
 *
 * GET or POST on the configured path, with the key in "?key=ID/SECRET" or in
 * "Authorization: Bearer ID/SECRET", asks the daemon (through handlers) for an
 * account invite (optionally reserving ?username=), POST on the path plus
 * "/reset" with ?jid= for a password-reset invite; parameters may also come
 * in an application/x-www-form-urlencoded body. The module checks that the
 * key may ask for that kind (403) and the parameters (400) before the
 * daemon sees the request. The connection is suspended until the daemon answers with
 * http_api_request_invite() or http_api_request_fail(). The module owns the
 * whole HTTP contract: routing, methods, CORS, status codes, bodies (text or
 * JSON), and one log line per request. Single-threaded, like the component.
 */

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* A certificate chain and its private key, read from PEM files (tls.c). */
struct http_api_tls;

/* The most max_connections and max_connections_per_ip may be. */
#define HTTP_API_MAX_CONNECTIONS 10000
/* Descriptors the listener may hold at once: libmicrohttpd accepts a few
 * past max_connections, so that an idle connection can be dropped for them. */
#define HTTP_API_DESCRIPTORS(max_connections) ((max_connections) + 16)

struct http_api_config {
	const char *bind;        /* IPv4 or IPv6 literal */
	unsigned short port;     /* 0 picks a free port, see http_api_port() */
	const char *path;        /* e.g. "/invites_api" */
	const char *cors_origin; /* Access-Control-Allow-Origin value */
	unsigned max_connections;
	struct http_api_tls *tls;        /* NULL: plain HTTP; else HTTPS, TLS 1.2 and 1.3 only */
	unsigned connection_timeout_s;   /* idle seconds; 0: 30 */
	unsigned request_deadline_s;     /* to receive a whole request; 0: 10 */
	unsigned max_connections_per_ip; /* 0: 64 */
	unsigned auth_failure_burst; /* failed authentications at once per client; 0: no limit */
	unsigned auth_failure_rate;  /* failed authentications regained per minute */
	const char *const *trusted_proxies; /* addresses or CIDR prefixes whose */
	size_t n_trusted_proxies;           /* X-Forwarded-For is believed */
};

/* What a request asks for; the route decides. */
enum http_api_invite_kind {
	HTTP_API_INVITE_ACCOUNT, /* the configured path: an invite to make an account */
	HTTP_API_INVITE_RESET,   /* path + "/reset": an invite to reset a password */
};

/* Bits of http_api_key.may. */
#define HTTP_API_MAY_ACCOUNT (1u << HTTP_API_INVITE_ACCOUNT)
#define HTTP_API_MAY_RESET   (1u << HTTP_API_INVITE_RESET)

#define HTTP_API_USERNAME_MAX 1023 /* bytes of a username (an XMPP localpart) */
#define HTTP_API_JID_MAX      2047 /* bytes of a bare JID: localpart, '@', host */

/* The authenticated key, as filled by the authenticate handler. */
struct http_api_key {
	char id[65];
	char host[1024];
	unsigned may; /* HTTP_API_MAY_* bits: the kinds of invite the key may ask for */
};

/* A checked invite request. Strings are borrowed from the request and valid
 * as long as it is (until it is answered). */
struct http_api_invite_request {
	enum http_api_invite_kind kind;
	/* ACCOUNT: a username to reserve, a valid XMPP localpart as the server
	 * will store it (Nodeprep'd: "Alice" becomes "alice"); NULL: none. */
	const char *username;
	/* RESET: the account's bare JID, "localpart@host" with the localpart
	 * Nodeprep'd and host the key's host as given in http_api_key. */
	const char *account_jid;
};

enum http_api_auth {
	HTTP_API_AUTH_OK,
	HTTP_API_AUTH_DENIED, /* 401, same answer for every kind of bad key */
	HTTP_API_AUTH_ERROR,  /* the key store failed: 500 */
};

struct http_api_request;

struct http_api_handlers {
	/* Check an untrusted credential (not NUL-terminated, may hold NUL bytes,
	 * at most 4096 bytes: longer ones are refused without a call). On OK
	 * fill *key. */
	enum http_api_auth (*authenticate)(void *userdata, const char *credential, size_t len,
	                                   struct http_api_key *key);
	/* Make the invite an authenticated request asks for (its key may ask for
	 * that kind; its parameters were checked). Must lead to exactly one
	 * call of http_api_request_invite() or http_api_request_fail() for req,
	 * either before returning or later from the event loop; req, key and
	 * invite stay valid until then. Called from inside http_api_run(): must
	 * not call http_api_run() or http_api_destroy(). */
	void (*create_invite)(void *userdata, struct http_api_request *req,
	                      const struct http_api_key *key,
	                      const struct http_api_invite_request *invite);
};

/* An invite to answer with; strings are copied. url is what Location gets. */
struct http_api_invite {
	const char *url;     /* landing page, or the xmpp: URI when there is none */
	const char *uri;     /* xmpp: URI */
	const char *expires; /* XEP-0082 datetime, may be NULL */
};

/* Answer req with 201 (or 303 if the caller asked to be redirected); req is
 * invalid afterwards. A NULL or empty url falls back to uri; with neither the
 * answer is 500, and a url holding CR or LF gets 502. The JSON body also
 * says the request's type ("account", "reset") and the reserved username. */
void http_api_request_invite(struct http_api_request *req, const struct http_api_invite *invite);

/* Answer req with an error status (400..599, else 500) and a reason, made one
 * line and cut to 200 bytes; req is invalid afterwards. retry_after_s > 0
 * adds a Retry-After header. */
void http_api_request_fail(struct http_api_request *req, unsigned status, const char *reason,
                           unsigned retry_after_s);

struct http_api;

/* Read and check a certificate chain (PEM, this server's certificate first,
 * then its issuers) and its unencrypted PEM private key. NULL on failure with
 * a one-line reason naming the file in err. Free with http_api_tls_free(). */
struct http_api_tls *http_api_tls_load(const char *cert_path, const char *key_path, char *err,
                                       size_t err_size);

/* Accepts NULL. */
void http_api_tls_free(struct http_api_tls *tls);

/* "subject CN=..., expires 2027-01-01T00:00:00Z, 2 certificates", for logs.
 * Borrowed: valid as long as tls. */
const char *http_api_tls_describe(const struct http_api_tls *tls);

/* When the server's certificate expires, or (time_t)-1 if unknown. */
time_t http_api_tls_expires(const struct http_api_tls *tls);

/* Bind and listen. NULL on failure with *errstr set to a static reason.
 * cfg->tls is taken over (freed by http_api_destroy(), or here on failure). */
struct http_api *http_api_create(const struct http_api_config *cfg,
                                 const struct http_api_handlers *handlers, void *userdata,
                                 const char **errstr);

/* Fail every waiting request with 503, stop listening, send what was
 * answered (for at most 2 s), free. Every http_api_request pointer is invalid
 * afterwards: fail pending work first (stop the component) so none is held.
 * Accepts NULL. */
void http_api_destroy(struct http_api *api);

/* Replace the certificate of an HTTPS listener: handshakes from now on use
 * tls, connections already open keep theirs. Takes tls over and frees the
 * old one. -1 (tls freed, nothing changed) if the listener is plain HTTP. */
int http_api_set_tls(struct http_api *api, struct http_api_tls *tls);

/* Stop accepting new connections (shutdown has begun). */
void http_api_quiesce(struct http_api *api);

/* An fd that is readable when there is work (an epoll set holding MHD's own
 * epoll fd and a timer). Watch it with poll() or add it to your own epoll
 * set, then call http_api_run(). */
int http_api_fd(const struct http_api *api);

/* Milliseconds until libmicrohttpd has timed work, 0 if due now (also while an
 * answered request waits to be sent), -1 if none. Honour it on every turn. */
int http_api_next_timeout(const struct http_api *api);

/* Process all ready connections without blocking. */
void http_api_run(struct http_api *api);

/* The port actually bound. */
unsigned short http_api_port(const struct http_api *api);

/* Number of requests waiting for an invite. */
unsigned http_api_waiting(const struct http_api *api);

#endif
