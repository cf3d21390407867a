/* Validation of what goes into the key store: host, name, limits and
 * imported credentials. Pure functions; reasons are static strings. */

#include "keys-internal.h"
#include "keys.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define STR_(x) #x
#define STR(x)  STR_(x)

/* Bytes in the UTF-8 sequence a lead byte starts, 0 if it cannot start one. */
static size_t utf8_sequence_len(unsigned char lead)
{
	if (lead < 0x80)
		return 1;
	if (lead >= 0xc2 && lead <= 0xdf)
		return 2;
	if (lead >= 0xe0 && lead <= 0xef)
		return 3;
	if (lead >= 0xf0 && lead <= 0xf4)
		return 4;
	return 0;
}

/* Length of the UTF-8 sequence at s (len > 0 bytes) with its code point in
 * *cp, or 0 if it is malformed, overlong, a surrogate or beyond U+10FFFF. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	size_t n = utf8_sequence_len(s[0]);
	if (n == 0 || n > len)
		return 0;
	uint32_t c = n == 1 ? s[0] : s[0] & (0x7fu >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3fu);
	}
	if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Control characters, and the two XML 1.0 cannot carry at all: names are
 * shown in XMPP forms, where one such character makes the stanza invalid. */
static bool control_char(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0xfffe || cp == 0xffff;
}

/* Check one field; returns NULL when acceptable, else the reason. The
 * reasons table is indexed by field so every string stays static. */
enum field { FIELD_HOST, FIELD_NAME };
enum problem { PROBLEM_MISSING, PROBLEM_LONG, PROBLEM_UTF8, PROBLEM_CHAR };

static const char *const field_reasons[][4] = {
    [FIELD_HOST] = {"host is empty", "host is longer than " STR(KEYS_HOST_MAX) " bytes",
                    "host is not valid UTF-8",
                    "host contains whitespace, a control character or '/'"},
    [FIELD_NAME] = {"name is empty", "name is longer than " STR(KEYS_NAME_MAX) " bytes",
                    "name is not valid UTF-8",
                    "name contains a control character (or U+FFFE/U+FFFF)"},
};

static const char *check_field(enum field field, const char *text, size_t max)
{
	const char *const *reasons = field_reasons[field];
	size_t len = text != NULL ? strnlen(text, max + 1) : 0;
	if (len == 0)
		return reasons[PROBLEM_MISSING];
	if (len > max)
		return reasons[PROBLEM_LONG];
	const unsigned char *s = (const unsigned char *)text;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_decode(s + i, len - i, &cp);
		if (n == 0)
			return reasons[PROBLEM_UTF8];
		if (control_char(cp) || (field == FIELD_HOST && (cp == ' ' || cp == '/')))
			return reasons[PROBLEM_CHAR];
		i += n;
	}
	return NULL;
}

const char *keys_check_limits(const struct api_key_limits *limits)
{
	if (limits->expires < 0)
		return "expiry time is negative";
	if ((limits->max_invites == 0) != (limits->period_s == 0))
		return "a rate limit needs both a number of invites and a period";
	if ((limits->allow & ~KEYS_ALLOW_ALL) != 0)
		return "unknown permission";
	return NULL;
}

const char *keys_check_host(const char *host)
{
	return check_field(FIELD_HOST, host, KEYS_HOST_MAX);
}

const char *keys_check_name(const char *name)
{
	return check_field(FIELD_NAME, name, KEYS_NAME_MAX);
}

/* Why an imported ID and secret cannot be used, or NULL. Checking the joined
 * text with keys_parse() guarantees verification will accept it. */
const char *keys_check_credential(const char *id, const char *secret)
{
	size_t id_len = id != NULL ? strnlen(id, KEYS_ID_MAX + 1) : 0;
	size_t secret_len = secret != NULL ? strnlen(secret, KEYS_SECRET_MAX + 1) : 0;
	if (id_len == 0 || id_len > KEYS_ID_MAX)
		return "ID is empty or longer than " STR(KEYS_ID_MAX) " characters";
	if (secret_len < IMPORT_SECRET_MIN || secret_len > KEYS_SECRET_MAX)
		return "secret is shorter than " STR(IMPORT_SECRET_MIN) " or longer than " STR(
		    KEYS_SECRET_MAX) " characters";
	char text[KEYS_TEXT_MAX + 1];
	struct api_key_parts parts;
	memcpy(text, id, id_len);
	text[id_len] = '/';
	memcpy(text + id_len + 1, secret, secret_len);
	bool parsed = keys_parse(text, id_len + 1 + secret_len, &parts);
	sodium_memzero(text, sizeof text);
	return parsed ? NULL : "ID or secret has characters other than A-Z, a-z, 0-9, '_' and '-'";
}
