/* Unit tests for the pure helpers of the HTTP module (http/request.c). */

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http-internal.h"
#include "unit.h"

static void test_method_action(void)
{
	static const enum http_api_invite_kind A = HTTP_API_INVITE_ACCOUNT,
	                                       R = HTTP_API_INVITE_RESET;
	CU_ASSERT_EQUAL(method_action(A, "GET"), METHOD_INVITE);
	CU_ASSERT_EQUAL(method_action(A, "POST"), METHOD_INVITE);
	CU_ASSERT_EQUAL(method_action(A, "OPTIONS"), METHOD_PREFLIGHT);
	CU_ASSERT_EQUAL(method_action(A, "HEAD"), METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(method_action(A, "PUT"), METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(method_action(A, "DELETE"), METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(method_action(A, "PATCH"), METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(method_action(A, "get"), METHOD_NOT_ALLOWED); /* case-sensitive */
	CU_ASSERT_EQUAL(method_action(A, "GETX"), METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(method_action(A, ""), METHOD_NOT_ALLOWED);
	/* a reset link must never be made by opening a URL */
	CU_ASSERT_EQUAL(method_action(R, "POST"), METHOD_INVITE);
	CU_ASSERT_EQUAL(method_action(R, "OPTIONS"), METHOD_PREFLIGHT);
	CU_ASSERT_EQUAL(method_action(R, "GET"), METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(method_action(R, "HEAD"), METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(method_action(R, "PUT"), METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(method_action(R, "post"), METHOD_NOT_ALLOWED);
	CU_ASSERT_STRING_EQUAL(allowed_methods(A), "GET, POST, OPTIONS");
	CU_ASSERT_STRING_EQUAL(allowed_methods(R), "POST, OPTIONS");
	CU_ASSERT_STRING_EQUAL(invite_type_name(A), "account");
	CU_ASSERT_STRING_EQUAL(invite_type_name(R), "reset");
}

static void test_routes(void)
{
	static const struct {
		const char *url, *path;
		bool match;
		enum http_api_invite_kind kind;
	} rows[] = {
	    {"/invites_api", "/invites_api", true, HTTP_API_INVITE_ACCOUNT},
	    {"/invites_api/", "/invites_api", true, HTTP_API_INVITE_ACCOUNT},
	    {"/invites_api/reset", "/invites_api", true, HTTP_API_INVITE_RESET},
	    {"/invites_api/reset/", "/invites_api", true, HTTP_API_INVITE_RESET},
	    {"/invites_api/reset", "/invites_api/", true, HTTP_API_INVITE_RESET},
	    {"/invites_api/reset//", "/invites_api", false, 0},
	    {"/invites_api/resetx", "/invites_api", false, 0},
	    {"/invites_api/RESET", "/invites_api", false, 0},
	    {"/invites_api//reset", "/invites_api", false, 0},
	    {"/invites_api/reset/x", "/invites_api", false, 0},
	    {"/invites_apireset", "/invites_api", false, 0},
	    {"/reset", "/invites_api", false, 0},
	    {"/invites_api//", "/invites_api", false, 0},
	    {"/", "/", true, HTTP_API_INVITE_ACCOUNT},
	    {"/reset", "/", true, HTTP_API_INVITE_RESET},
	    {"/reset/", "/", true, HTTP_API_INVITE_RESET},
	    {"", "/", false, 0},
	    {"//", "/", false, 0},
	    {"/x", "/", false, 0},
	    {"/api/invites/reset", "/api/invites", true, HTTP_API_INVITE_RESET},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum http_api_invite_kind kind = 99;
		bool match = route_match(rows[i].url, rows[i].path, &kind);
		CU_ASSERT_EQUAL(match, rows[i].match);
		if (match != rows[i].match)
			fprintf(stderr, "\nroute %s on %s\n", rows[i].url, rows[i].path);
		if (rows[i].match)
			CU_ASSERT_EQUAL(kind, rows[i].kind);
	}
}

static void test_path_matches(void)
{
	CU_ASSERT_TRUE(path_matches("/invites_api", "/invites_api"));
	CU_ASSERT_TRUE(path_matches("/invites_api/", "/invites_api"));
	CU_ASSERT_FALSE(path_matches("/invites_api//", "/invites_api"));
	CU_ASSERT_FALSE(path_matches("/invites_apix", "/invites_api"));
	CU_ASSERT_FALSE(path_matches("/invites_api/x", "/invites_api"));
	CU_ASSERT_FALSE(path_matches("/invites", "/invites_api"));
	CU_ASSERT_FALSE(path_matches("/", "/invites_api"));
	CU_ASSERT_FALSE(path_matches("", "/invites_api"));
	CU_ASSERT_FALSE(path_matches("/INVITES_API", "/invites_api"));
	/* A configured trailing slash changes nothing. */
	CU_ASSERT_TRUE(path_matches("/invites_api", "/invites_api/"));
	CU_ASSERT_TRUE(path_matches("/invites_api/", "/invites_api/"));
	CU_ASSERT_FALSE(path_matches("/invites_api//", "/invites_api/"));
	/* Nested path. */
	CU_ASSERT_TRUE(path_matches("/api/invites", "/api/invites"));
	CU_ASSERT_FALSE(path_matches("/api", "/api/invites"));
	/* The root. */
	CU_ASSERT_TRUE(path_matches("/", "/"));
	CU_ASSERT_FALSE(path_matches("", "/"));
	CU_ASSERT_FALSE(path_matches("//", "/"));
	CU_ASSERT_FALSE(path_matches("/x", "/"));
}

/* credential_pick() on NUL-terminated inputs (NULL means absent). */
static enum credential_result pick(const char *header, const char *query, const char **cred,
                                   size_t *len)
{
	return credential_pick(header, header ? strlen(header) : 0, query,
	                       query ? strlen(query) : 0, cred, len);
}

static void assert_picked(const char *header, const char *query, const char *expected)
{
	const char *cred = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(pick(header, query, &cred, &len), CREDENTIAL_OK);
	CU_ASSERT_EQUAL(len, strlen(expected));
	CU_ASSERT_NSTRING_EQUAL(cred, expected, strlen(expected));
}

static void test_credential_sources(void)
{
	const char *cred = NULL;
	size_t len = 0;

	CU_ASSERT_EQUAL(pick(NULL, NULL, &cred, &len), CREDENTIAL_MISSING);
	assert_picked("Bearer k1/s3cret", NULL, "k1/s3cret");
	assert_picked(NULL, "k1/s3cret", "k1/s3cret");
	assert_picked("Bearer k1/s3cret", "k1/s3cret", "k1/s3cret");
	/* An empty query key counts as absent. */
	CU_ASSERT_EQUAL(pick(NULL, "", &cred, &len), CREDENTIAL_MISSING);
	assert_picked("Bearer k1/s3cret", "", "k1/s3cret");
}

static void test_credential_bearer_syntax(void)
{
	const char *cred = NULL;
	size_t len = 0;

	assert_picked("bearer k1/s", NULL, "k1/s");
	assert_picked("BEARER   k1/s  ", NULL, "k1/s");
	assert_picked("Bearer\tk1/s\t", NULL, "k1/s");
	/* The token's own syntax is the authenticate handler's business. */
	assert_picked("Bearer a b", NULL, "a b");
	CU_ASSERT_EQUAL(pick("Basic azE6cw==", NULL, &cred, &len), CREDENTIAL_SCHEME);
	CU_ASSERT_EQUAL(pick("Bearerk1/s", NULL, &cred, &len), CREDENTIAL_SCHEME);
	CU_ASSERT_EQUAL(pick("Bear k1/s", NULL, &cred, &len), CREDENTIAL_SCHEME);
	CU_ASSERT_EQUAL(pick("", NULL, &cred, &len), CREDENTIAL_SCHEME);
	CU_ASSERT_EQUAL(pick("k1/s", NULL, &cred, &len), CREDENTIAL_SCHEME);
	CU_ASSERT_EQUAL(pick("Bearer", NULL, &cred, &len), CREDENTIAL_MALFORMED);
	CU_ASSERT_EQUAL(pick("Bearer    ", NULL, &cred, &len), CREDENTIAL_MALFORMED);
	/* Another scheme is refused even when the query has a key. */
	CU_ASSERT_EQUAL(pick("Basic azE6cw==", "k1/s", &cred, &len), CREDENTIAL_SCHEME);
	CU_ASSERT_EQUAL(pick("Bearer", "k1/s", &cred, &len), CREDENTIAL_MALFORMED);
}

static void test_credential_conflict(void)
{
	const char *cred = NULL;
	size_t len = 0;

	CU_ASSERT_EQUAL(pick("Bearer k1/a", "k1/b", &cred, &len), CREDENTIAL_CONFLICT);
	CU_ASSERT_EQUAL(pick("Bearer k1/a", "k1/ab", &cred, &len), CREDENTIAL_CONFLICT);
	CU_ASSERT_EQUAL(pick("Bearer k1/ab", "k1/a", &cred, &len), CREDENTIAL_CONFLICT);
	CU_ASSERT_EQUAL(pick("Bearer K1/a", "k1/a", &cred, &len), CREDENTIAL_CONFLICT);
}

static void test_credential_binary(void)
{
	static const char query[] = "k1/\0s"; /* decoded from k1/%00s */
	const char *cred = NULL;
	size_t len = 0;

	CU_ASSERT_EQUAL(credential_pick(NULL, 0, query, 5, &cred, &len), CREDENTIAL_OK);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT_PTR_EQUAL(cred, query);
	CU_ASSERT_EQUAL(credential_pick("Bearer k1/", 10, query, 5, &cred, &len),
	                CREDENTIAL_CONFLICT);
}

static void test_credential_length_cap(void)
{
	char *big = malloc(HTTP_MAX_CREDENTIAL + 16);
	char *header = malloc(HTTP_MAX_CREDENTIAL + 32);
	const char *cred = NULL;
	size_t len = 0;

	CU_ASSERT_FATAL(big != NULL && header != NULL);
	memset(big, 'a', HTTP_MAX_CREDENTIAL + 1);
	CU_ASSERT_EQUAL(credential_pick(NULL, 0, big, HTTP_MAX_CREDENTIAL, &cred, &len),
	                CREDENTIAL_OK);
	CU_ASSERT_EQUAL(len, HTTP_MAX_CREDENTIAL);
	CU_ASSERT_EQUAL(credential_pick(NULL, 0, big, HTTP_MAX_CREDENTIAL + 1, &cred, &len),
	                CREDENTIAL_MALFORMED);
	memcpy(header, "Bearer ", 7);
	memset(header + 7, 'a', HTTP_MAX_CREDENTIAL + 1);
	CU_ASSERT_EQUAL(credential_pick(header, 7 + HTTP_MAX_CREDENTIAL + 1, NULL, 0, &cred, &len),
	                CREDENTIAL_MALFORMED);
	free(big);
	free(header);
}

static int redirect_of(const char *value, bool *redirect)
{
	return redirect_parse(value, value ? strlen(value) : 0, redirect);
}

static void test_redirect_values(void)
{
	static const char *const yes[] = {"true", "TRUE", "True", "1", "yes", "YES"};
	static const char *const no[] = {"false", "FALSE", "0", "no", "No", ""};
	static const char *const bad[] = {"2",  "truee", "tru", "yes ", " 1",
	                                  "on", "off",   "t",   "-1",   "01"};
	bool redirect;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		redirect = false;
		CU_ASSERT_EQUAL(redirect_of(yes[i], &redirect), 0);
		CU_ASSERT_TRUE(redirect);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		redirect = true;
		CU_ASSERT_EQUAL(redirect_of(no[i], &redirect), 0);
		CU_ASSERT_FALSE(redirect);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(redirect_of(bad[i], &redirect), -1);
	/* Absent, or present without a value. */
	redirect = true;
	CU_ASSERT_EQUAL(redirect_parse(NULL, 0, &redirect), 0);
	CU_ASSERT_FALSE(redirect);
	/* Decoded NUL bytes do not sneak past the comparison. */
	CU_ASSERT_EQUAL(redirect_parse("1\0", 2, &redirect), -1);
	CU_ASSERT_EQUAL(redirect_parse("no\0", 3, &redirect), -1);
}

static void test_accept_simple(void)
{
	CU_ASSERT_FALSE(accept_wants_json(NULL));
	CU_ASSERT_FALSE(accept_wants_json(""));
	CU_ASSERT_FALSE(accept_wants_json("*/*"));
	CU_ASSERT_FALSE(accept_wants_json("text/plain"));
	CU_ASSERT_TRUE(accept_wants_json("application/json"));
	CU_ASSERT_TRUE(accept_wants_json("Application/JSON"));
	CU_ASSERT_TRUE(accept_wants_json(" application/json ; charset=utf-8"));
	CU_ASSERT_TRUE(accept_wants_json(",,application/json,,"));
	/* Not a substring match. */
	CU_ASSERT_FALSE(accept_wants_json("application/jsonx"));
	CU_ASSERT_FALSE(accept_wants_json("application/json-seq"));
	CU_ASSERT_FALSE(accept_wants_json("xapplication/json"));
	CU_ASSERT_FALSE(accept_wants_json("application/*"));
	CU_ASSERT_FALSE(accept_wants_json("text/plain; note=application/json"));
	/* A browser. */
	CU_ASSERT_FALSE(
	    accept_wants_json("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
}

static void test_accept_weights(void)
{
	CU_ASSERT_FALSE(accept_wants_json("application/json;q=0"));
	CU_ASSERT_FALSE(accept_wants_json("application/json; q=0.000"));
	CU_ASSERT_TRUE(accept_wants_json("application/json;q=0.001"));
	CU_ASSERT_TRUE(accept_wants_json("application/json;q=1.000"));
	CU_ASSERT_TRUE(accept_wants_json("text/plain, application/json")); /* tie: JSON */
	CU_ASSERT_FALSE(accept_wants_json("application/json;q=0.5, text/plain"));
	CU_ASSERT_TRUE(accept_wants_json("text/plain;q=0.5, application/json"));
	CU_ASSERT_TRUE(accept_wants_json("application/json;q=0.5, */*;q=0.1"));
	CU_ASSERT_FALSE(accept_wants_json("application/json;q=0.5, text/*"));
	CU_ASSERT_TRUE(accept_wants_json("text/*;q=0.9, text/plain;q=0.1, application/json;q=0.5"));
	CU_ASSERT_TRUE(accept_wants_json("text/plain;q=0, application/json;q=0.001"));
	CU_ASSERT_TRUE(accept_wants_json("application/json;level=1;q=0.7, text/plain;q=0.6"));
	CU_ASSERT_TRUE(accept_wants_json("application/json;Q=0.7, text/plain;q=0.6"));
	/* Malformed weights void their range. */
	CU_ASSERT_FALSE(accept_wants_json("application/json;q=abc"));
	CU_ASSERT_FALSE(accept_wants_json("application/json;q=1.5"));
	CU_ASSERT_FALSE(accept_wants_json("application/json;q=1.001"));
	CU_ASSERT_FALSE(accept_wants_json("application/json;q=0.9999"));
	CU_ASSERT_FALSE(accept_wants_json("application/json;q="));
	CU_ASSERT_TRUE(accept_wants_json("application/json, text/plain;q=2"));
}

static json_t *parse_body(const char *body, size_t len)
{
	CU_ASSERT_TRUE(len > 0 && body[len - 1] == '\n');
	return json_loadb(body, len, 0, NULL);
}

static void test_body_invite(void)
{
	struct http_api_invite invite = {
	    .url = "https://example.com/invite?t=abc",
	    .uri = "xmpp:example.com?register;preauth=abc",
	    .expires = "2026-12-10T15:54:46Z",
	};
	struct http_api_invite_request account = {.kind = HTTP_API_INVITE_ACCOUNT};
	size_t len = 0;
	char *body = body_invite(&invite, &account, false, &len);

	CU_ASSERT_STRING_EQUAL(body, "https://example.com/invite?t=abc\n");
	CU_ASSERT_EQUAL(len, strlen(body));
	free(body);

	body = body_invite(&invite, &account, true, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	CU_ASSERT_EQUAL(len, strlen(body));
	json_t *json = parse_body(body, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "url")), invite.url);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "uri")), invite.uri);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "expires")), invite.expires);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "type")), "account");
	CU_ASSERT_EQUAL(json_object_size(json), 4); /* no username unless one was reserved */
	json_decref(json);
	free(body);

	invite.expires = NULL;
	body = body_invite(&invite, &account, true, &len);
	json = parse_body(body, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT_TRUE(json_is_null(json_object_get(json, "expires")));
	json_decref(json);
	free(body);

	struct http_api_invite_request reserved = {.kind = HTTP_API_INVITE_ACCOUNT,
	                                           .username = "alice"};
	body = body_invite(&invite, &reserved, true, &len);
	json = parse_body(body, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "username")), "alice");
	json_decref(json);
	free(body);

	struct http_api_invite_request reset = {.kind = HTTP_API_INVITE_RESET,
	                                        .account_jid = "alice@example.com"};
	body = body_invite(&invite, &reset, true, &len);
	json = parse_body(body, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "type")), "reset");
	CU_ASSERT_PTR_NULL(json_object_get(json, "username"));
	json_decref(json);
	free(body);
}

static void assert_error_json(const char *reason, const char *expected)
{
	size_t len = 0;
	char *body = body_error(reason, true, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	json_t *json = parse_body(body, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json, "error")), expected);
	CU_ASSERT_EQUAL(json_object_size(json), 1);
	json_decref(json);
	free(body);
}

static void assert_error_text(const char *reason, const char *expected)
{
	size_t len = 0;
	char *body = body_error(reason, false, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	CU_ASSERT_STRING_EQUAL(body, expected);
	CU_ASSERT_EQUAL(len, strlen(expected));
	free(body);
}

static void test_body_error(void)
{
	assert_error_text("not found", "not found\n");
	assert_error_json("not found", "not found");
	assert_error_text("a\nb\r\n", "a b\n");
	assert_error_json("say \"hi\"\t\\", "say \"hi\" \\");
	assert_error_text(NULL, "error\n");
	assert_error_text("", "error\n");
	assert_error_json("\n", "error");
	assert_error_json("caf\xc3\xa9", "caf\xc3\xa9");
	assert_error_json("bad \xff byte", "bad ? byte");
}

static void test_body_error_long(void)
{
	char reason[400], expected[HTTP_MAX_REASON + 2];

	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	memset(expected, 'x', HTTP_MAX_REASON);
	strcpy(expected + HTTP_MAX_REASON, "\n");
	assert_error_text(reason, expected);

	/* A two-byte character across the cut is dropped whole. */
	reason[HTTP_MAX_REASON - 1] = '\xc3';
	reason[HTTP_MAX_REASON] = '\xa9';
	expected[HTTP_MAX_REASON - 1] = '\0';
	assert_error_json(reason, expected);
}

static void assert_escaped(const char *src, bool field, size_t size, const char *expected)
{
	char dst[256];
	CU_ASSERT_FATAL(size <= sizeof(dst));
	log_escape(dst, size, src, field);
	CU_ASSERT_STRING_EQUAL(dst, expected);
}

static void test_log_escape(void)
{
	assert_escaped("/invites_api", true, 256, "/invites_api");
	assert_escaped("/invites_api?key=k1/secret", true, 256, "/invites_api");
	assert_escaped("/a?b", false, 256, "/a?b");
	assert_escaped("/a b", true, 256, "/a%20b");
	assert_escaped("/a b", false, 256, "/a b");
	assert_escaped("/x\ny\r", true, 256, "/x%0Ay%0D");
	assert_escaped("/x\ny", false, 256, "/x%0Ay");
	assert_escaped("/caf\xc3\xa9\x7f", true, 256, "/caf%C3%A9%7F");
	assert_escaped("/abcdef", true, 5, "/abc");
	assert_escaped("/\n", true, 4, "/"); /* an escape is never cut */
	assert_escaped("/\n", true, 5, "/%0A");
	assert_escaped("", true, 1, "");
	assert_escaped("abc", true, 1, "");
}

static void assert_redacted(const char *message, const char *expected)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", message);
	mhd_message_redact(buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, expected);
}

static void test_mhd_message_redact(void)
{
	assert_redacted("Failed to send the response headers for the request for "
	                "`/invites_api/k1/s3cret'. Error: Broken pipe",
	                "Failed to send the response headers for the request for "
	                "(path not logged). Error: Broken pipe");
	assert_redacted("Failed to send data in request for /k1/s3cret.",
	                "Failed to send data in request for (path not logged).");
	assert_redacted("Failed to send the footers for the request for `/a. Error: x'. Error: "
	                "Connection reset",
	                "Failed to send the footers for the request for (path not logged). Error: "
	                "Connection reset");
	assert_redacted("Error processing request (HTTP response code is 400 ('Bad Request')).",
	                "Error processing request (HTTP response code is 400 ('Bad Request')).");
}

static void test_uri_check(void)
{
	char big[HTTP_MAX_URI + 2];

	CU_ASSERT_EQUAL(uri_check("/invites_api?key=k1/s3cret&redirect=1"), URI_OK);
	CU_ASSERT_EQUAL(uri_check("/invites_api?key=k1%2Fs3cret%20%7e"), URI_OK);
	CU_ASSERT_EQUAL(uri_check("/invites_api?key=%zz"), URI_BAD_ESCAPE);
	CU_ASSERT_EQUAL(uri_check("/invites_api%"), URI_BAD_ESCAPE);
	CU_ASSERT_EQUAL(uri_check("/invites_api?key=%4"), URI_BAD_ESCAPE);
	CU_ASSERT_EQUAL(uri_check("/invites_api%00x"), URI_NUL);
	CU_ASSERT_EQUAL(uri_check("/invites_api?key=k1%00"), URI_NUL);
	CU_ASSERT_EQUAL(uri_check("/invites_api?key=k1%01"), URI_OK);

	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[HTTP_MAX_URI] = '\0';
	CU_ASSERT_EQUAL(uri_check(big), URI_OK);
	big[HTTP_MAX_URI] = 'a';
	big[HTTP_MAX_URI + 1] = '\0';
	CU_ASSERT_EQUAL(uri_check(big), URI_TOO_LONG);

	/* HTTP_MAX_PARAMS parameters pass, one more does not; a '&' in the
	 * path does not count. */
	char params[1024] = "/a&b&c?p";
	for (int i = 1; i < HTTP_MAX_PARAMS; i++)
		strcat(params, "&p");
	CU_ASSERT_EQUAL(uri_check(params), URI_OK);
	strcat(params, "&%zz");
	CU_ASSERT_EQUAL(uri_check(params), URI_TOO_MANY); /* sizes first */
}

static struct net_addr addr(const char *text)
{
	struct net_addr a;
	memset(&a, 0xee, sizeof(a));
	CU_ASSERT_EQUAL_FATAL(address_parse(text, strlen(text), &a), 0);
	return a;
}

static void assert_formatted(const char *text, const char *expected)
{
	char out[64];
	struct net_addr a = addr(text);
	address_format(&a, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, expected);
}

/* Every octet value in every position, and every buffer size, as
 * inet_ntop() writes them (or "-" when it does not fit). */
static void test_v4_formatted_as_inet_ntop(void)
{
	for (unsigned v = 0; v < 256; v++) {
		for (int pos = 0; pos < 4; pos++) {
			unsigned char b[4] = {10, 200, 7, 99};
			b[pos] = (unsigned char)v;
			char text[INET_ADDRSTRLEN], expected[INET_ADDRSTRLEN];
			CU_ASSERT_PTR_NOT_NULL_FATAL(inet_ntop(AF_INET, b, text, sizeof(text)));
			struct net_addr a = addr(text);
			for (size_t size = 1; size <= sizeof(text); size++) {
				char out[INET_ADDRSTRLEN];
				if (inet_ntop(AF_INET, b, expected, (socklen_t)size) == NULL)
					snprintf(expected, size, "-");
				address_format(&a, out, size);
				CU_ASSERT_STRING_EQUAL(out, expected);
			}
		}
	}
}

static void test_addresses(void)
{
	struct net_addr a;

	assert_formatted("192.0.2.1", "192.0.2.1");
	assert_formatted("::ffff:192.0.2.1", "192.0.2.1"); /* the same client */
	assert_formatted("2001:DB8::1", "2001:db8::1");
	assert_formatted("[2001:db8::1]", "2001:db8::1");
	static const char *const bad[] = {"",     "192.0.2",  "192.0.2.1:80", "host.example",
	                                  "[::1", "1.2.3.4 ", "::1%lo"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(address_parse(bad[i], strlen(bad[i]), &a), -1);
	CU_ASSERT_EQUAL(address_parse("1.2.3.4\0", 8, &a), -1);
	CU_ASSERT_EQUAL(address_parse("1.2.3.4x", 7, &a), 0); /* length, not NUL, ends it */

	/* IPv6 clients are grouped by /64, IPv4 ones not at all. */
	struct net_addr g1, g2;
	struct net_addr v6a = addr("2001:db8:1:2:aaaa::1"), v6b = addr("2001:db8:1:2:ffff::9");
	address_group(&v6a, &g1);
	address_group(&v6b, &g2);
	CU_ASSERT_EQUAL(memcmp(&g1, &g2, sizeof(g1)), 0);
	struct net_addr v6c = addr("2001:db8:1:3::1");
	address_group(&v6c, &g2);
	CU_ASSERT_NOT_EQUAL(memcmp(&g1, &g2, sizeof(g1)), 0);
	struct net_addr v4a = addr("192.0.2.1"), v4b = addr("192.0.2.2");
	address_group(&v4a, &g1);
	address_group(&v4b, &g2);
	CU_ASSERT_NOT_EQUAL(memcmp(&g1, &g2, sizeof(g1)), 0);
}

static bool in(const char *prefix, const char *address)
{
	struct net_prefix p;
	CU_ASSERT_EQUAL_FATAL(prefix_parse(prefix, &p), 0);
	struct net_addr a = addr(address);
	return prefix_contains(&p, &a);
}

static void test_prefixes(void)
{
	struct net_prefix p;

	CU_ASSERT_TRUE(in("10.0.0.0/8", "10.255.1.2"));
	CU_ASSERT_FALSE(in("10.0.0.0/8", "11.0.0.1"));
	CU_ASSERT_TRUE(in("10.1.2.3/8", "10.9.9.9")); /* host bits ignored */
	CU_ASSERT_TRUE(in("192.0.2.1", "192.0.2.1"));
	CU_ASSERT_FALSE(in("192.0.2.1", "192.0.2.2"));
	CU_ASSERT_TRUE(in("192.0.2.0/25", "192.0.2.127"));
	CU_ASSERT_FALSE(in("192.0.2.0/25", "192.0.2.128"));
	CU_ASSERT_TRUE(in("0.0.0.0/0", "203.0.113.9"));
	CU_ASSERT_FALSE(in("0.0.0.0/0", "2001:db8::1")); /* IPv4 only */
	CU_ASSERT_TRUE(in("2001:db8::/32", "2001:db8:ffff::1"));
	CU_ASSERT_FALSE(in("2001:db8::/32", "2001:db9::1"));
	CU_ASSERT_TRUE(in("::1", "::1"));
	static const char *const bad[] = {"10.0.0.0/33",  "::/129", "10.0.0.0/",   "10.0.0.0/x",
	                                  "10.0.0.0/8/8", "/8",     "example.com", "10.0.0.0/-1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(prefix_parse(bad[i], &p), -1);
}

/* The client forwarded_client() names, as text. */
static const char *client_of(const char *peer, const char *const *lines, size_t n,
                             const char *const *proxies, size_t n_proxies)
{
	static char out[64];
	struct net_prefix prefixes[4];
	size_t lens[4];
	struct net_addr p = addr(peer), client;

	for (size_t i = 0; i < n_proxies; i++)
		CU_ASSERT_EQUAL_FATAL(prefix_parse(proxies[i], &prefixes[i]), 0);
	for (size_t i = 0; i < n; i++)
		lens[i] = strlen(lines[i]);
	forwarded_client(&p, lines, lens, n, prefixes, n_proxies, &client);
	address_format(&client, out, sizeof(out));
	return out;
}

static void test_forwarded_for(void)
{
	static const char *const proxies[] = {"10.0.0.0/8", "::1"};
	const char *one[] = {"198.51.100.7"};
	const char *chain[] = {"203.0.113.1, 198.51.100.7, 10.0.0.2"};
	const char *lines[] = {"203.0.113.1", "198.51.100.7,10.0.0.2"};
	const char *spoofed[] = {"10.9.9.9, 1.1.1.1"};
	const char *junk[] = {"1.1.1.1, junk, 10.0.0.3"};
	const char *all_trusted[] = {"10.0.0.5, 10.0.0.3"};
	const char *empty[] = {""};
	const char *v6[] = {"[2001:db8::5]"};

	/* An untrusted peer's header is ignored. */
	CU_ASSERT_STRING_EQUAL(client_of("192.0.2.1", one, 1, proxies, 2), "192.0.2.1");
	CU_ASSERT_STRING_EQUAL(client_of("192.0.2.1", one, 1, NULL, 0), "192.0.2.1");
	/* From a trusted proxy: the rightmost untrusted hop. */
	CU_ASSERT_STRING_EQUAL(client_of("10.0.0.1", one, 1, proxies, 2), "198.51.100.7");
	CU_ASSERT_STRING_EQUAL(client_of("10.0.0.1", chain, 1, proxies, 2), "198.51.100.7");
	CU_ASSERT_STRING_EQUAL(client_of("10.0.0.1", lines, 2, proxies, 2), "198.51.100.7");
	CU_ASSERT_STRING_EQUAL(client_of("::1", v6, 1, proxies, 2), "2001:db8::5");
	/* A client cannot hide behind a trusted-looking address it wrote. */
	CU_ASSERT_STRING_EQUAL(client_of("10.0.0.1", spoofed, 1, proxies, 2), "1.1.1.1");
	/* A hop that is no address ends the walk at the last trusted hop. */
	CU_ASSERT_STRING_EQUAL(client_of("10.0.0.1", junk, 1, proxies, 2), "10.0.0.3");
	CU_ASSERT_STRING_EQUAL(client_of("10.0.0.1", all_trusted, 1, proxies, 2), "10.0.0.5");
	CU_ASSERT_STRING_EQUAL(client_of("10.0.0.1", empty, 1, proxies, 2), "10.0.0.1");
	CU_ASSERT_STRING_EQUAL(client_of("10.0.0.1", NULL, 0, proxies, 2), "10.0.0.1");
}

static void test_throttle_bucket(void)
{
	struct net_addr a = addr("192.0.2.1"), b = addr("192.0.2.2");
	/* 3 at once, then one more every 10 s (6 per minute). */
	struct throttle *t = throttle_create(3, 6, 64);
	int64_t now = 1000000;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(throttle_wait_s(t, &a, now), 0);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(throttle_wait_s(t, &a, now), 0);
		throttle_failure(t, &a, now);
	}
	CU_ASSERT_EQUAL(throttle_wait_s(t, &a, now), 10);
	CU_ASSERT_EQUAL(throttle_wait_s(t, &b, now), 0);        /* others unaffected */
	CU_ASSERT_EQUAL(throttle_wait_s(t, &a, now + 2500), 8); /* 7.5 s, rounded up */
	CU_ASSERT_EQUAL(throttle_wait_s(t, &a, now + 9999), 1);
	CU_ASSERT_EQUAL(throttle_wait_s(t, &a, now + 10000), 0);
	throttle_failure(t, &a, now + 10000);
	CU_ASSERT_EQUAL(throttle_wait_s(t, &a, now + 10000), 10);
	/* A long pause refills the bucket, never beyond the burst. */
	now += 3600 * 1000;
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(throttle_wait_s(t, &a, now), 0);
		throttle_failure(t, &a, now);
	}
	CU_ASSERT_NOT_EQUAL(throttle_wait_s(t, &a, now), 0);
	CU_ASSERT_EQUAL(throttle_tracked(t, now), 1);
	throttle_destroy(t);

	/* Off: no table at all, nobody waits. */
	CU_ASSERT_PTR_NULL(throttle_create(0, 6, 64));
	CU_ASSERT_PTR_NULL(throttle_create(3, 0, 64));
	throttle_failure(NULL, &a, now);
	CU_ASSERT_EQUAL(throttle_wait_s(NULL, &a, now), 0);
	throttle_destroy(NULL);
}

static void test_throttle_bounded(void)
{
	/* Far more addresses than entries: the table never grows, and an address
	 * that keeps failing stays throttled while others come and go. */
	struct throttle *t = throttle_create(2, 1, 256);
	struct net_addr guesser = addr("198.51.100.1");
	int64_t now = 5000;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(throttle_capacity(t), 256);
	for (unsigned i = 0; i < 100000; i++) {
		struct net_addr a;
		memset(&a, 0, sizeof(a));
		a.bytes[0] = 0x20;
		memcpy(a.bytes + 4, &i, sizeof(i)); /* a different /64 each */
		throttle_failure(t, &a, now);
		if (i % 1000 == 0) {
			throttle_failure(t, &guesser, now);
			throttle_failure(t, &guesser, now);
		}
	}
	CU_ASSERT_TRUE(throttle_tracked(t, now) <= 256);
	CU_ASSERT_TRUE(throttle_wait_s(t, &guesser, now) > 0);
	throttle_destroy(t);
}

static const struct unit_test tests[] = {
    {"method table", test_method_action},
    {"path matching", test_path_matches},
    {"routes: account and reset", test_routes},
    {"credential sources", test_credential_sources},
    {"credential Bearer syntax", test_credential_bearer_syntax},
    {"credential conflict", test_credential_conflict},
    {"credential with NUL bytes", test_credential_binary},
    {"credential length cap", test_credential_length_cap},
    {"redirect values", test_redirect_values},
    {"Accept media ranges", test_accept_simple},
    {"Accept weights", test_accept_weights},
    {"invite bodies", test_body_invite},
    {"error bodies", test_body_error},
    {"long error reasons", test_body_error_long},
    {"log escaping", test_log_escape},
    {"MHD messages without the path", test_mhd_message_redact},
    {"raw request targets", test_uri_check},
    {"client addresses", test_addresses},
    {"IPv4 addresses written as inet_ntop() writes them", test_v4_formatted_as_inet_ntop},
    {"trusted proxy prefixes", test_prefixes},
    {"X-Forwarded-For", test_forwarded_for},
    {"throttle token bucket", test_throttle_bucket},
    {"throttle table bounded", test_throttle_bounded},
    {NULL, NULL},
};

UNIT_MAIN("request", tests)
