#ifndef INVITES_HTTP_INTERNAL_H
#define INVITES_HTTP_INTERNAL_H

/*
 * Pure helpers of the HTTP module (request.c), shared by http.c and the unit
 * tests. Nothing here knows libmicrohttpd: inputs are plain strings as MHD
 * hands them over (header values raw, query values URL-decoded).
 */

#include <gnutls/abstract.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http.h"

#define HTTP_MAX_BODY       ((size_t)64 * 1024) /* larger request bodies get 413 */
#define HTTP_MAX_CREDENTIAL 4096                /* longer keys are refused without a lookup */
#define HTTP_MAX_REASON     200                 /* error reasons are cut to this many bytes */
#define HTTP_MAX_URI        (8 * 1024)          /* path and query: longer ones get 414 */
#define HTTP_MAX_PARAMS     100                 /* query parameters: more get 414 */

/* What the method of a request on the API path asks for. */
enum method_action {
	METHOD_NOT_ALLOWED, /* 405 with Allow */
	METHOD_INVITE,      /* GET, POST: create an invite */
	METHOD_PREFLIGHT,   /* OPTIONS: 204, no key needed */
};

/* What method asks for on the route of kind: GET and POST make account
 * invites, only POST makes reset invites (a link opened by a previewer must
 * never make one). Methods are case-sensitive (RFC 9110); unknown ones are
 * not allowed. */
enum method_action method_action(enum http_api_invite_kind kind, const char *method);

/* The Allow header of the route of kind: "GET, POST, OPTIONS", "POST, OPTIONS". */
const char *allowed_methods(enum http_api_invite_kind kind);

/* "account", "reset": the type in JSON answers. */
const char *invite_type_name(enum http_api_invite_kind kind);

/* True when url (MHD's decoded path, no query) is path, or path plus one
 * trailing slash. A trailing slash in path itself is ignored. */
bool path_matches(const char *url, const char *path);

/* True when url is one of the API's routes: path itself (account invites)
 * or path + "/reset" (reset invites), each also with one trailing slash;
 * *kind says which. */
bool route_match(const char *url, const char *path, enum http_api_invite_kind *kind);

enum credential_result {
	CREDENTIAL_OK,
	CREDENTIAL_MISSING,   /* no key anywhere: 401, WWW-Authenticate: Bearer */
	CREDENTIAL_SCHEME,    /* Authorization with another scheme: 401 */
	CREDENTIAL_MALFORMED, /* empty Bearer token, or too long: 401 invalid_token */
	CREDENTIAL_CONFLICT,  /* header and query differ: 400 */
};

/*
 * Pick the key of a request. authorization is the raw header value (NULL if
 * absent); query_key the decoded "key" parameter (NULL if absent or without a
 * value; an empty one counts as absent). On CREDENTIAL_OK, *credential and
 * *len point into one of the inputs (not NUL-terminated, may contain NUL).
 */
enum credential_result credential_pick(const char *authorization, size_t authorization_len,
                                       const char *query_key, size_t query_key_len,
                                       const char **credential, size_t *len);

/* Parse the redirect parameter (NULL when absent or without a value).
 * true/yes/1 and false/no/0/empty, case-insensitive. 0, or -1 if invalid. */
int redirect_parse(const char *value, size_t len, bool *redirect);

/* True when the Accept header (NULL if absent) prefers application/json,
 * named explicitly with q > 0, at least as much as text/plain. */
bool accept_wants_json(const char *accept);

/* Bodies; each returns a malloc'd buffer the caller frees, with its length in
 * *len (no terminating NUL counted), or NULL when out of memory. */

/* "<url>\n", or {"url":..,"uri":..,"expires":..,"type":..} (null for NULL
 * members), with "username" when what reserved one. */
char *body_invite(const struct http_api_invite *invite, const struct http_api_invite_request *what,
                  bool json, size_t *len);

/* "<reason>\n", or {"error":"<reason>"}. The reason is made one line (control
 * characters become spaces) and cut to HTTP_MAX_REASON bytes. */
char *body_error(const char *reason, bool json, size_t *len);

/* Copy src into dst (size > 0) for a log line: control and non-ASCII bytes
 * become %XX, output is cut to fit. A field (method, path) also escapes
 * spaces and stops at the first '?', so that a query, which may hold a key,
 * never reaches the log even when a decoded path contains one. */
void log_escape(char *dst, size_t size, const char *src, bool field);

/* MHD names the request's path in some of its messages ("... the request for
 * `/path'. Error: ..."): replace that path, in place, by "(path not logged)",
 * as a client may have pasted its key into it. */
void mhd_message_redact(char *message, size_t size);

/* tls.c: fresh copies of tls's chain and key for one TLS session, for
 * GnuTLS to free (GNUTLS_CERT_RETR_DEINIT_ALL). 0, or -1 (out of memory). */
int tls_session_credentials(const struct http_api_tls *tls, gnutls_pcert_st **certs,
                            unsigned *n_certs, gnutls_privkey_t *privkey);
/* What is wrong with a request's raw target (path and query, as received). */
enum uri_problem {
	URI_OK,
	URI_TOO_LONG,   /* over HTTP_MAX_URI bytes: 414 */
	URI_TOO_MANY,   /* over HTTP_MAX_PARAMS query parameters: 414 */
	URI_BAD_ESCAPE, /* '%' not followed by two hex digits: 400 */
	URI_NUL,        /* "%00": 400 (it would cut the decoded string) */
};

/* Check a raw request target before it is decoded. */
enum uri_problem uri_check(const char *uri);

/* --- invite parameters (params.c) --- */

#define HTTP_MAX_FORM (16 * 1024) /* a larger urlencoded body gets 413 */

/* True for an application/x-www-form-urlencoded Content-Type (NULL: false). */
bool form_content_type(const char *content_type);

/* One parameter as received: the first value (decoded, NUL-terminated,
 * borrowed) and how often it was given, in the query and the body together. */
struct raw_param {
	const char *value; /* NULL when count is 0 */
	size_t len;
	unsigned count;
};

struct raw_params {
	struct raw_param jid;
	struct raw_param username;
};

/* Look for name (case-insensitive) in an urlencoded body of len bytes: each
 * occurrence adds to param->count; the first one is decoded into value (size
 * bytes; HTTP_MAX_FORM + 1 always fit) and set in param. -1 when any name or
 * value in the body has a malformed %-escape or %00, or len is over
 * HTTP_MAX_FORM. */
int form_find(const char *body, size_t len, const char *name, char *value, size_t size,
              struct raw_param *param);

enum name_problem {
	NAME_OK,
	NAME_EMPTY,      /* nothing, or only characters Nodeprep maps to nothing */
	NAME_TOO_LONG,   /* over 1023 bytes, before or after preparation */
	NAME_NOT_UTF8,   /* malformed, overlong, surrogates */
	NAME_PROHIBITED, /* a character Nodeprep prohibits or leaves unassigned, NUL, bidi */
	NAME_FAILED,     /* stringprep itself failed (out of memory) */
};

/* An XMPP localpart as the server will store it: RFC 3920 Nodeprep (libidn),
 * unassigned code points refused (see params.c). out holds it on NAME_OK. */
enum name_problem username_prep(const char *in, size_t len, char out[HTTP_API_USERNAME_MAX + 1]);

/* The checked parameters of one request, for http_api_invite_request. */
struct request_params {
	char username[HTTP_API_USERNAME_MAX + 1]; /* "": none */
	char account_jid[HTTP_API_JID_MAX + 1];   /* "": none */
};

/*
 * Check the parameters of a request of kind made with a key of host. An
 * account invite takes an optional username; a reset invite needs jid, the
 * bare JID of an account on host. Each at most once; the other kind's
 * parameter is refused, so that a request sent to the wrong route does not
 * quietly make the other kind of invite. 0 with out filled, or the status to
 * answer (400; 500 if stringprep failed) with a static one-line *reason.
 */
unsigned params_check(enum http_api_invite_kind kind, const struct raw_params *raw,
                      const char *host, struct request_params *out, const char **reason);

/* --- client addresses (address.c) --- */

/* An IPv6 address; IPv4 ones are IPv4-mapped (::ffff:a.b.c.d). */
struct net_addr {
	unsigned char bytes[16];
};

struct net_prefix {
	struct net_addr addr; /* host bits cleared */
	unsigned bits;        /* of the 128, IPv4 prefixes counted as mapped */
};

/* An IPv4 or IPv6 literal (IPv6 also in brackets), not NUL-terminated. 0 or -1. */
int address_parse(const char *s, size_t len, struct net_addr *out);

/* "ADDRESS" or "ADDRESS/BITS" (NUL-terminated). 0 or -1. */
int prefix_parse(const char *s, struct net_prefix *out);

bool prefix_contains(const struct net_prefix *p, const struct net_addr *a);

/* From an AF_INET or AF_INET6 socket address. 0 or -1. */
int address_from_sockaddr(const struct sockaddr *sa, struct net_addr *out);

/* Text form: IPv4 as a.b.c.d, IPv6 as RFC 5952. */
void address_format(const struct net_addr *a, char *dst, size_t size);

/* The unit that is throttled: the address for IPv4, its /64 for IPv6. */
void address_group(const struct net_addr *a, struct net_addr *group);

/*
 * The client of a request that came from peer with the X-Forwarded-For
 * header lines values[0..n_values) (not NUL-terminated, lengths in lens). If
 * peer is one of the trusted proxies, the client is the rightmost address not
 * trusted (hops are walked right to left; a hop that is no address ends the
 * walk at the last trusted one). Otherwise the header is ignored: peer.
 */
void forwarded_client(const struct net_addr *peer, const char *const *values, const size_t *lens,
                      size_t n_values, const struct net_prefix *proxies, size_t n_proxies,
                      struct net_addr *client);

/* --- throttling failed authentications (throttle.c) --- */

/* A token bucket per address group: burst failures at once, per_minute more
 * each minute. capacity entries at most (memory is fixed at creation).
 * NULL when burst or per_minute is 0 (no throttling) or out of memory.
 * Needs sodium_init() first. */
struct throttle *throttle_create(unsigned burst, unsigned per_minute, size_t capacity);
void throttle_destroy(struct throttle *t);

/* 0 if group may try now, else the seconds (>= 1) until it may. NULL: 0. */
unsigned throttle_wait_s(const struct throttle *t, const struct net_addr *group, int64_t now_ms);

/* Count one failed authentication of group. */
void throttle_failure(struct throttle *t, const struct net_addr *group, int64_t now_ms);

/* Entries in the table; groups currently holding less than a full bucket. */
size_t throttle_capacity(const struct throttle *t);
size_t throttle_tracked(const struct throttle *t, int64_t now_ms);

#endif
