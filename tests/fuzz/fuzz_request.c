/*
 * Fuzz target: the pure request helpers of http/request.c, fed the values
 * libmicrohttpd hands over, and the key parser the credential goes to next.
 *
 * Input: one flags byte, then up to five fields separated by '\n':
 * Authorization, the decoded key parameter, redirect, Accept, URL path.
 * Flag bits 0..2 say that Authorization, key and redirect are present
 * (absent ones are NULL, as when MHD has no such value). Each field is copied
 * to a buffer of its exact size plus the NUL MHD adds, so that an over-read
 * is caught.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http-internal.h"
#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELDS 5

struct field {
	char *text;
	size_t len;
};

static void split(const uint8_t *data, size_t size, struct field fields[FIELDS])
{
	for (int i = 0; i < FIELDS; i++) {
		const uint8_t *nl = i < FIELDS - 1 ? memchr(data, '\n', size) : NULL;
		size_t len = nl ? (size_t)(nl - data) : size;
		fields[i].text = malloc(len + 1);
		if (!fields[i].text)
			abort();
		memcpy(fields[i].text, data, len);
		fields[i].text[len] = '\0';
		fields[i].len = len;
		data += nl ? len + 1 : len;
		size -= nl ? len + 1 : len;
	}
}

static void check_credential(const struct field *f, const char *credential, size_t len)
{
	/* The credential must lie inside one of the inputs it was picked from. */
	bool in_auth = credential >= f[0].text && credential + len <= f[0].text + f[0].len;
	bool in_key = credential >= f[1].text && credential + len <= f[1].text + f[1].len;
	if ((!in_auth && !in_key) || len == 0 || len > HTTP_MAX_CREDENTIAL)
		abort();

	struct api_key_parts parts;
	if (keys_parse(credential, len, &parts)) {
		if (parts.id_len == 0 || parts.id_len > KEYS_ID_MAX || parts.secret_len == 0 ||
		    parts.secret_len > KEYS_SECRET_MAX ||
		    parts.id_len + 1 + parts.secret_len != len)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	struct field f[FIELDS];
	split(data + 1, size - 1, f);

	const char *credential = NULL;
	size_t len = 0;
	enum credential_result r =
	    credential_pick(flags & 1 ? f[0].text : NULL, f[0].len, flags & 2 ? f[1].text : NULL,
	                    f[1].len, &credential, &len);
	if (r == CREDENTIAL_OK)
		check_credential(f, credential, len);

	bool redirect = false;
	(void)redirect_parse(flags & 4 ? f[2].text : NULL, f[2].len, &redirect);
	(void)accept_wants_json(f[3].text);
	(void)path_matches(f[4].text, "/invites_api");
	(void)path_matches(f[4].text, f[3].text);
	(void)method_action(HTTP_API_INVITE_ACCOUNT, f[2].text);
	(void)method_action(HTTP_API_INVITE_RESET, f[2].text);
	enum http_api_invite_kind kind;
	(void)route_match(f[4].text, f[3].text, &kind);

	/* Flag bits 3..7 pick a log buffer of 1..32 bytes, exactly allocated. */
	size_t line_size = (size_t)(flags >> 3) + 1;
	char *line = malloc(line_size);
	if (!line)
		abort();
	log_escape(line, line_size, f[4].text, true);
	if (!memchr(line, '\0', line_size) || strchr(line, '?'))
		abort();
	log_escape(line, line_size, f[3].text, false);
	if (!memchr(line, '\0', line_size))
		abort();
	free(line);

	size_t body_len = 0;
	char *body = body_error(f[3].text, flags & 8, &body_len);
	if (body && (body_len == 0 || body[body_len - 1] != '\n' ||
	             memchr(body, '\n', body_len) != body + body_len - 1))
		abort(); /* one line, whatever the reason held */
	free(body);

	for (int i = 0; i < FIELDS; i++)
		free(f[i].text);
	return 0;
}
