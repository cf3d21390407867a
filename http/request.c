#include "http-internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Per route, sorted by name; anything not listed is 405. HEAD is listed to
 * make the point: link previewers send it, and it must never create an
 * invite. A reset invite can take over an account: POST only. */
struct method_row {
	const char *name;
	enum method_action action;
};

static const struct method_row account_methods[] = {
    {"GET", METHOD_INVITE},
    {"HEAD", METHOD_NOT_ALLOWED},
    {"OPTIONS", METHOD_PREFLIGHT},
    {"POST", METHOD_INVITE},
};

static const struct method_row reset_methods[] = {
    {"OPTIONS", METHOD_PREFLIGHT},
    {"POST", METHOD_INVITE},
};

static const struct route {
	const char *suffix; /* after the configured path */
	const char *type;   /* in JSON answers */
	const char *allow;  /* the Allow header of a 405 */
	const struct method_row *methods;
	size_t n_methods;
} routes[] = {
    [HTTP_API_INVITE_ACCOUNT] = {"", "account", "GET, POST, OPTIONS", account_methods,
                                 sizeof(account_methods) / sizeof(account_methods[0])},
    [HTTP_API_INVITE_RESET] = {"/reset", "reset", "POST, OPTIONS", reset_methods,
                               sizeof(reset_methods) / sizeof(reset_methods[0])},
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

enum method_action method_action(enum http_api_invite_kind kind, const char *method)
{
	const struct route *route = &routes[kind];
	for (size_t i = 0; i < route->n_methods; i++) {
		if (strcmp(method, route->methods[i].name) == 0)
			return route->methods[i].action;
	}
	return METHOD_NOT_ALLOWED;
}

const char *allowed_methods(enum http_api_invite_kind kind)
{
	return routes[kind].allow;
}

const char *invite_type_name(enum http_api_invite_kind kind)
{
	return routes[kind].type;
}

/* url is suffix, or suffix plus one trailing slash. */
static bool is_suffix(const char *url, const char *suffix)
{
	size_t n = strlen(suffix);
	return strncmp(url, suffix, n) == 0 && (url[n] == '\0' || strcmp(url + n, "/") == 0);
}

bool route_match(const char *url, const char *path, enum http_api_invite_kind *kind)
{
	size_t n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		n--;
	if (strncmp(url, path, n) != 0)
		return false;
	for (size_t i = 0; i < N_ROUTES; i++) {
		/* path "/" strips to "": only "/" itself is its account route. */
		bool match = n == 0 && routes[i].suffix[0] == '\0'
		                 ? strcmp(url, "/") == 0
		                 : is_suffix(url + n, routes[i].suffix);
		if (match) {
			*kind = (enum http_api_invite_kind)i;
			return true;
		}
	}
	return false;
}

bool path_matches(const char *url, const char *path)
{
	size_t n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		n--;
	if (strncmp(url, path, n) != 0)
		return false;
	url += n;
	/* path "/" strips to "": only "/" itself matches then. */
	if (n == 0)
		return strcmp(url, "/") == 0;
	return url[0] == '\0' || strcmp(url, "/") == 0;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* "Bearer" 1*SP token: the scheme is case-insensitive (RFC 9110 11.1). */
static enum credential_result parse_bearer(const char *value, size_t len, const char **token,
                                           size_t *token_len)
{
	static const char scheme[] = "Bearer";
	size_t n = sizeof(scheme) - 1;

	if (len < n || strncasecmp(value, scheme, n) != 0)
		return CREDENTIAL_SCHEME;
	if (len > n && !is_ows(value[n]))
		return CREDENTIAL_SCHEME; /* "Bearerish ..." */
	while (n < len && is_ows(value[n]))
		n++;
	while (len > n && is_ows(value[len - 1]))
		len--;
	if (len == n)
		return CREDENTIAL_MALFORMED;
	*token = value + n;
	*token_len = len - n;
	return CREDENTIAL_OK;
}

enum credential_result credential_pick(const char *authorization, size_t authorization_len,
                                       const char *query_key, size_t query_key_len,
                                       const char **credential, size_t *len)
{
	const char *header = NULL;
	size_t header_len = 0;

	if (authorization != NULL) {
		enum credential_result r =
		    parse_bearer(authorization, authorization_len, &header, &header_len);
		if (r != CREDENTIAL_OK)
			return r;
	}
	if (query_key != NULL && query_key_len == 0)
		query_key = NULL;
	if (header != NULL && query_key != NULL &&
	    (header_len != query_key_len || memcmp(header, query_key, header_len) != 0))
		return CREDENTIAL_CONFLICT;
	if (header == NULL && query_key == NULL)
		return CREDENTIAL_MISSING;
	*credential = header != NULL ? header : query_key;
	*len = header != NULL ? header_len : query_key_len;
	return *len > HTTP_MAX_CREDENTIAL ? CREDENTIAL_MALFORMED : CREDENTIAL_OK;
}

static const struct redirect_word {
	const char *word;
	bool redirect;
} redirect_words[] = {
    {"", false},   {"0", false},   {"1", true},   {"false", false},
    {"no", false}, {"true", true}, {"yes", true},
};

int redirect_parse(const char *value, size_t len, bool *redirect)
{
	size_t rows = sizeof(redirect_words) / sizeof(redirect_words[0]);

	if (value == NULL) {
		*redirect = false;
		return 0;
	}
	for (size_t i = 0; i < rows; i++) {
		const char *word = redirect_words[i].word;
		if (strlen(word) == len && strncasecmp(value, word, len) == 0) {
			*redirect = redirect_words[i].redirect;
			return 0;
		}
	}
	return -1;
}

/* qvalue (RFC 9110 12.4.2) in thousandths, or -1 when malformed. */
static int parse_qvalue(const char *s, size_t len)
{
	if (len == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	int q = (s[0] - '0') * 1000;
	if (len == 1)
		return q;
	if (s[1] != '.' || len > 5)
		return -1;
	int scale = 100;
	for (size_t i = 2; i < len; i++, scale /= 10) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		q += (s[i] - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

struct media_range {
	const char *type; /* "type/subtype", not NUL-terminated */
	size_t type_len;
	int q; /* thousandths; -1 when the weight is malformed */
};

static void trim(const char **start, const char **end)
{
	while (*start < *end && is_ows(**start))
		(*start)++;
	while (*end > *start && is_ows((*end)[-1]))
		(*end)--;
}

/* One element of Accept: media-range *( OWS ";" OWS parameter ). */
static void parse_range(const char *start, const char *end, struct media_range *range)
{
	const char *semi = memchr(start, ';', (size_t)(end - start));
	const char *type_end = semi != NULL ? semi : end;

	trim(&start, &type_end);
	range->type = start;
	range->type_len = (size_t)(type_end - start);
	range->q = 1000;
	while (semi != NULL) {
		const char *param = semi + 1;
		semi = memchr(param, ';', (size_t)(end - param));
		const char *param_end = semi != NULL ? semi : end;
		trim(&param, &param_end);
		size_t plen = (size_t)(param_end - param);
		if (plen >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=')
			range->q = parse_qvalue(param + 2, plen - 2);
	}
}

static bool range_is(const struct media_range *range, const char *type)
{
	return range->type_len == strlen(type) &&
	       strncasecmp(range->type, type, range->type_len) == 0;
}

/* How specifically a range names text/plain: 3 exact, 2 text/x, 1 x/x, 0 not. */
static int text_rank(const struct media_range *range)
{
	static const char *const ranks[] = {"*/*", "text/*", "text/plain"};
	for (int i = 2; i >= 0; i--) {
		if (range_is(range, ranks[i]))
			return i + 1;
	}
	return 0;
}

bool accept_wants_json(const char *accept)
{
	int json_q = -1, text_q = 0, best_text_rank = 0;

	if (accept == NULL)
		return false;
	const char *end = accept + strlen(accept);
	for (const char *start = accept; start < end;) {
		const char *comma = memchr(start, ',', (size_t)(end - start));
		const char *element_end = comma != NULL ? comma : end;
		struct media_range range;
		parse_range(start, element_end, &range);
		start = comma != NULL ? comma + 1 : end;
		if (range.q < 0)
			continue; /* a malformed weight voids its range */
		if (range_is(&range, "application/json") && range.q > json_q)
			json_q = range.q;
		int rank = text_rank(&range);
		if (rank > best_text_rank) {
			best_text_rank = rank;
			text_q = range.q;
		}
	}
	return json_q > 0 && json_q >= text_q;
}

/* Append "\n" to a malloc'd JSON text, freeing it. */
static char *json_line(char *json, size_t *len)
{
	if (json == NULL)
		return NULL;
	size_t n = strlen(json);
	char *line = malloc(n + 2);
	if (line != NULL) {
		memcpy(line, json, n);
		line[n] = '\n';
		line[n + 1] = '\0';
		*len = n + 1;
	}
	free(json);
	return line;
}

static char *text_line(const char *text, size_t *len)
{
	size_t n = strlen(text);
	char *line = malloc(n + 2);
	if (line == NULL)
		return NULL;
	memcpy(line, text, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}

char *body_invite(const struct http_api_invite *invite, const struct http_api_invite_request *what,
                  bool json, size_t *len)
{
	if (!json)
		return text_line(invite->url, len);
	json_t *object =
	    json_pack("{s:s, s:s?, s:s?, s:s}", "url", invite->url, "uri", invite->uri, "expires",
	              invite->expires, "type", invite_type_name(what->kind));
	if (object != NULL && what->username != NULL &&
	    json_object_set_new(object, "username", json_string(what->username)) < 0) {
		json_decref(object);
		return NULL;
	}
	if (object == NULL)
		return NULL;
	char *text = json_dumps(object, JSON_COMPACT);
	json_decref(object);
	return json_line(text, len);
}

/* One line, at most HTTP_MAX_REASON bytes, cut on a UTF-8 boundary. */
static void reason_line(char *dst, const char *reason)
{
	size_t n = 0;
	if (reason != NULL) {
		n = strnlen(reason, HTTP_MAX_REASON + 1);
		if (n > HTTP_MAX_REASON) {
			n = HTTP_MAX_REASON;
			while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80)
				n--;
		}
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)reason[i];
		dst[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	if (n == 0)
		strcpy(dst, "error");
	else
		dst[n] = '\0';
}

char *body_error(const char *reason, bool json, size_t *len)
{
	char line[HTTP_MAX_REASON + 1];

	reason_line(line, reason);
	if (!json)
		return text_line(line, len);
	json_t *object = json_pack("{s:s}", "error", line);
	if (object == NULL) {
		/* Not UTF-8: keep the ASCII, mark the rest. */
		for (char *p = line; *p != '\0'; p++) {
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		}
		object = json_pack("{s:s}", "error", line);
		if (object == NULL)
			return NULL;
	}
	char *text = json_dumps(object, JSON_COMPACT);
	json_decref(object);
	return json_line(text, len);
}

void log_escape(char *dst, size_t size, const char *src, bool field)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *src != '\0'; src++) {
		unsigned char c = (unsigned char)*src;
		if (field && c == '?')
			break;
		bool plain = c > 0x20 && c < 0x7f;
		if (c == ' ' && !field)
			plain = true;
		if (n + (plain ? 1 : 3) >= size)
			break;
		if (plain) {
			dst[n++] = (char)c;
			continue;
		}
		dst[n++] = '%';
		dst[n++] = hex[c >> 4];
		dst[n++] = hex[c & 0xF];
	}
	dst[n] = '\0';
}

void mhd_message_redact(char *message, size_t size)
{
	static const char lead[] = "request for ", error[] = ". Error: ";
	char *path = strstr(message, lead);
	if (path == NULL)
		return;
	path += sizeof(lead) - 1;
	/* The error text comes last: its mark is the last one. */
	const char *tail = NULL;
	for (const char *p = strstr(path, error); p != NULL; p = strstr(p + 1, error))
		tail = p;
	char rest[256];
	snprintf(rest, sizeof(rest), "%s", tail != NULL ? tail : ".");
	snprintf(path, size - (size_t)(path - message), "(path not logged)%s", rest);
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

enum uri_problem uri_check(const char *uri)
{
	size_t len = strnlen(uri, HTTP_MAX_URI + 1);
	if (len > HTTP_MAX_URI)
		return URI_TOO_LONG;
	/* Sizes first: MHD cannot be trusted to answer these itself. */
	const char *query = memchr(uri, '?', len);
	size_t params = query != NULL ? 1 : 0;
	for (const char *p = query; p != NULL && *p != '\0'; p++)
		params += *p == '&';
	if (params > HTTP_MAX_PARAMS)
		return URI_TOO_MANY;
	for (const char *p = strchr(uri, '%'); p != NULL; p = strchr(p + 1, '%')) {
		if (!is_hex(p[1]) || !is_hex(p[2]))
			return URI_BAD_ESCAPE;
		if (p[1] == '0' && p[2] == '0')
			return URI_NUL;
	}
	return URI_OK;
}
