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

#include "http.h"

#define HTTP_MAX_BODY       ((size_t)64 * 1024) /* larger request bodies get 413 */
#define HTTP_MAX_CREDENTIAL 4096                /* longer keys are refused without a lookup */
#define HTTP_MAX_REASON     200                 /* error reasons are cut to this many bytes */

/* What the method of a request on the API path asks for. */
enum method_action {
	METHOD_NOT_ALLOWED, /* 405 with Allow */
	METHOD_INVITE,      /* GET, POST: create an invite */
	METHOD_PREFLIGHT,   /* OPTIONS: 204, no key needed */
};

/* Methods are case-sensitive (RFC 9110); unknown ones are not allowed. */
enum method_action method_action(const char *method);

/* True when url (MHD's decoded path, no query) is path, or path plus one
 * trailing slash. A trailing slash in path itself is ignored. */
bool path_matches(const char *url, const char *path);

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

/* "<url>\n", or {"url":..,"uri":..,"expires":..} (null for NULL members). */
char *body_invite(const struct http_api_invite *invite, bool json, size_t *len);

/* "<reason>\n", or {"error":"<reason>"}. The reason is made one line (control
 * characters become spaces) and cut to HTTP_MAX_REASON bytes. */
char *body_error(const char *reason, bool json, size_t *len);

/* Copy src into dst (size > 0) for a log line: control and non-ASCII bytes
 * become %XX, output is cut to fit. A field (method, path) also escapes
 * spaces and stops at the first '?', so that a query, which may hold a key,
 * never reaches the log even when a decoded path contains one. */
void log_escape(char *dst, size_t size, const char *src, bool field);

/* tls.c: fresh copies of tls's chain and key for one TLS session, for
 * GnuTLS to free (GNUTLS_CERT_RETR_DEINIT_ALL). 0, or -1 (out of memory). */
int tls_session_credentials(const struct http_api_tls *tls, gnutls_pcert_st **certs,
                            unsigned *n_certs, gnutls_privkey_t *privkey);

#endif
