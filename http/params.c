/*
 * The parameters of an invite request: jid and username, from the query or
 * from an application/x-www-form-urlencoded body, checked and normalised
 * before anything reaches the daemon.
 *
 * Usernames and the localpart of a JID go through Nodeprep (RFC 3920
 * appendix A, unassigned code points refused) from GNU libidn's stringprep,
 * the profile Prosody (util.encodings) and ejabberd apply to usernames: a
 * name accepted here is the name the server stores, case-folded the same way
 * ("Alice" becomes "alice"), and one refused here would be refused there.
 * (ICU has the same profile, but linking it and libstdc++ cost the daemon
 * 1.4 MiB of resident memory; libidn is a small C library.) Nodeprep prohibits the characters
 * "&'/:<>@, spaces, control and private-use characters, non-characters and
 * surrogates, and mixes of right-to-left and left-to-right text.
 */

#include "http-internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stringprep.h>
#include <strings.h>

bool form_content_type(const char *content_type)
{
	static const char type[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(type) - 1;

	if (content_type == NULL || strncasecmp(content_type, type, n) != 0)
		return false;
	/* parameters (charset) may follow */
	const char *rest = content_type + n;
	rest += strspn(rest, " \t");
	return *rest == '\0' || *rest == ';';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode len bytes of one urlencoded name or value into out (at least len
 * bytes), '+' as a space. Its length, or -1 for a bad escape or %00. */
static long form_decode(const char *in, size_t len, char *out)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '+') {
			out[n++] = ' ';
			continue;
		}
		if (in[i] != '%') {
			if (in[i] == '\0')
				return -1;
			out[n++] = in[i];
			continue;
		}
		int hi = i + 2 < len ? hex_value(in[i + 1]) : -1;
		int lo = i + 2 < len ? hex_value(in[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		out[n++] = (char)(hi << 4 | lo);
		i += 2;
	}
	return (long)n;
}

int form_find(const char *body, size_t len, const char *name, char *value, size_t size,
              struct raw_param *param)
{
	char decoded[HTTP_MAX_FORM];
	const char *end = body + len;

	if (len > HTTP_MAX_FORM)
		return -1;
	for (const char *pair = body; pair < end;) {
		const char *amp = memchr(pair, '&', (size_t)(end - pair));
		const char *pair_end = amp != NULL ? amp : end;
		const char *eq = memchr(pair, '=', (size_t)(pair_end - pair));
		const char *name_end = eq != NULL ? eq : pair_end;
		long n = form_decode(pair, (size_t)(name_end - pair), decoded);
		if (n < 0)
			return -1;
		bool first = (size_t)n == strlen(name) &&
		             strncasecmp(decoded, name, (size_t)n) == 0 && param->count++ == 0;
		/* every value is decoded, to refuse a malformed one anywhere */
		const char *v = eq != NULL ? eq + 1 : pair_end;
		size_t v_len = (size_t)(pair_end - v);
		long vn = form_decode(v, v_len, first && v_len < size ? value : decoded);
		if (vn < 0)
			return -1;
		if (first && v_len < size) {
			value[vn] = '\0';
			param->value = value;
			param->len = (size_t)vn;
		}
		pair = pair_end + (amp != NULL);
	}
	return 0;
}

/* A stringprep profile applied to len bytes of UTF-8, the result (UTF-8)
 * into out, out_size bytes with the NUL. */
static enum name_problem prep(const Stringprep_profile *profile, Stringprep_profile_flags flags,
                              const char *in, size_t len, char *out, size_t out_size)
{
	if (len == 0)
		return NAME_EMPTY;
	if (len >= out_size)
		return NAME_TOO_LONG;
	if (memchr(in, '\0', len) != NULL)
		return NAME_PROHIBITED;
	memcpy(out, in, len);
	out[len] = '\0';
	switch (stringprep(out, out_size, flags, profile)) {
	case STRINGPREP_OK:
		return out[0] == '\0' ? NAME_EMPTY : NAME_OK; /* all of it mapped to nothing */
	case STRINGPREP_TOO_SMALL_BUFFER:
		return NAME_TOO_LONG;
	case STRINGPREP_ICONV_ERROR:
		return NAME_NOT_UTF8;
	case STRINGPREP_MALLOC_ERROR:
	case STRINGPREP_PROFILE_ERROR:
	case STRINGPREP_FLAG_ERROR:
	case STRINGPREP_UNKNOWN_PROFILE:
		return NAME_FAILED;
	default: /* unassigned, prohibited, bidi rules, NFKC failure */
		return NAME_PROHIBITED;
	}
}

enum name_problem username_prep(const char *in, size_t len, char out[HTTP_API_USERNAME_MAX + 1])
{
	return prep(stringprep_xmpp_nodeprep, STRINGPREP_NO_UNASSIGNED, in, len, out,
	            HTTP_API_USERNAME_MAX + 1);
}

/* A domain compared as Prosody does: Nameprep'd, without a trailing dot. */
static enum name_problem domain_prep(const char *in, size_t len,
                                     char out[HTTP_API_USERNAME_MAX + 1])
{
	if (len > 1 && in[len - 1] == '.')
		len--;
	return prep(stringprep_nameprep, 0, in, len, out, HTTP_API_USERNAME_MAX + 1);
}

static const char *const username_reasons[] = {
    [NAME_EMPTY] = "username is empty",
    [NAME_TOO_LONG] = "username is longer than 1023 bytes",
    [NAME_NOT_UTF8] = "username is not valid UTF-8",
    [NAME_PROHIBITED] = "username has a character an XMPP username cannot have "
                        "(\"&'/:<>@, space, control character, ...)",
};

static const char *const localpart_reasons[] = {
    [NAME_EMPTY] = "jid has an empty user part",
    [NAME_TOO_LONG] = "jid has a user part longer than 1023 bytes",
    [NAME_NOT_UTF8] = "jid is not valid UTF-8",
    [NAME_PROHIBITED] = "jid has a user part with a character an XMPP username cannot have "
                        "(\"&'/:<>@, space, control character, ...)",
};

/* 0, or the status (400, 500) with *reason set. */
static unsigned name_status(enum name_problem problem, const char *const reasons[],
                            const char **reason)
{
	if (problem == NAME_OK)
		return 0;
	if (problem == NAME_FAILED) {
		*reason = "cannot check names (stringprep failed)";
		return 500;
	}
	*reason = reasons[problem];
	return 400;
}

static unsigned check_jid(const struct raw_param *jid, const char *host, struct request_params *out,
                          const char **reason)
{
	char domain[HTTP_API_USERNAME_MAX + 1], key_domain[HTTP_API_USERNAME_MAX + 1];
	const char *at = memchr(jid->value, '@', jid->len);
	const char *slash = memchr(jid->value, '/', jid->len);

	*reason = "jid must be the bare JID of an account, user@host";
	if (slash != NULL || at == NULL)
		return 400;
	size_t local_len = (size_t)(at - jid->value);
	const char *dom = at + 1;
	size_t dom_len = jid->len - local_len - 1;
	unsigned status = name_status(username_prep(jid->value, local_len, out->account_jid),
	                              localpart_reasons, reason);
	if (status != 0)
		return status;
	enum name_problem d = domain_prep(dom, dom_len, domain);
	enum name_problem k = domain_prep(host, strlen(host), key_domain);
	if (d == NAME_FAILED || k == NAME_FAILED)
		return name_status(NAME_FAILED, localpart_reasons, reason);
	*reason = "jid is not an account of this key's host";
	if (d != NAME_OK || k != NAME_OK || strcmp(domain, key_domain) != 0)
		return 400;
	size_t n = strlen(out->account_jid);
	if (n + 1 + strlen(host) > HTTP_API_JID_MAX)
		return 400;
	snprintf(out->account_jid + n, sizeof(out->account_jid) - n, "@%s", host);
	return 0;
}

unsigned params_check(enum http_api_invite_kind kind, const struct raw_params *raw,
                      const char *host, struct request_params *out, const char **reason)
{
	out->username[0] = '\0';
	out->account_jid[0] = '\0';
	if (raw->jid.count > 1 || raw->username.count > 1) {
		*reason = raw->jid.count > 1 ? "more than one jid parameter"
		                             : "more than one username parameter";
		return 400;
	}
	if (kind == HTTP_API_INVITE_ACCOUNT) {
		*reason = "jid is a parameter of password-reset invites (POST .../reset)";
		if (raw->jid.count > 0)
			return 400;
		if (raw->username.count == 0)
			return 0;
		return name_status(
		    username_prep(raw->username.value, raw->username.len, out->username),
		    username_reasons, reason);
	}
	*reason = "username is a parameter of account invites";
	if (raw->username.count > 0)
		return 400;
	*reason = "a password-reset invite needs jid=user@host";
	if (raw->jid.count == 0 || raw->jid.len == 0)
		return 400;
	return check_jid(&raw->jid, host, out, reason);
}
