/* Unit tests for the invite parameters of the HTTP module (http/params.c):
 * form bodies, usernames (Nodeprep) and the JID of a password reset. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http-internal.h"
#include "unit.h"

#define HOST "example.com"

static void test_form_content_type(void)
{
	CU_ASSERT_TRUE(form_content_type("application/x-www-form-urlencoded"));
	CU_ASSERT_TRUE(form_content_type("Application/X-WWW-Form-URLEncoded"));
	CU_ASSERT_TRUE(form_content_type("application/x-www-form-urlencoded; charset=UTF-8"));
	CU_ASSERT_TRUE(form_content_type("application/x-www-form-urlencoded ;charset=UTF-8"));
	CU_ASSERT_FALSE(form_content_type("application/x-www-form-urlencodedx"));
	CU_ASSERT_FALSE(form_content_type("multipart/form-data; boundary=x"));
	CU_ASSERT_FALSE(form_content_type("text/plain"));
	CU_ASSERT_FALSE(form_content_type(""));
	CU_ASSERT_FALSE(form_content_type(NULL));
}

/* form_find() on a NUL-free body; the first value and the count. */
static int find(const char *body, const char *name, struct raw_param *param, char *value)
{
	*param = (struct raw_param){0};
	return form_find(body, strlen(body), name, value, HTTP_MAX_FORM + 1, param);
}

static void test_form_find(void)
{
	static const struct {
		const char *body, *name;
		int rc;
		unsigned count;
		const char *value;
	} rows[] = {
	    {"jid=alice%40example.com", "jid", 0, 1, "alice@example.com"},
	    {"key=x&jid=a+b&username=c", "jid", 0, 1, "a b"},
	    {"key=x&jid=a+b&username=c", "username", 0, 1, "c"},
	    {"JID=upper", "jid", 0, 1, "upper"},
	    {"j%69d=encoded-name", "jid", 0, 1, "encoded-name"},
	    {"jid=first&jid=second", "jid", 0, 2, "first"},
	    {"jid", "jid", 0, 1, ""},
	    {"jid=", "jid", 0, 1, ""},
	    {"&&jid=a&", "jid", 0, 1, "a"},
	    {"jidx=a&xjid=b", "jid", 0, 0, NULL},
	    {"", "jid", 0, 0, NULL},
	    {"a=%E2%82%AC", "a", 0, 1, "\xe2\x82\xac"},
	    {"jid=%4", "jid", -1, 0, NULL},
	    {"jid=%zz", "jid", -1, 0, NULL},
	    {"jid=a%", "jid", -1, 0, NULL},
	    {"jid=a%00b", "jid", -1, 0, NULL},
	    {"other=%00&jid=a", "jid", -1, 0, NULL}, /* anywhere in the body */
	    {"x%00=1&jid=a", "jid", -1, 0, NULL},
	};
	static char value[HTTP_MAX_FORM + 1];
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct raw_param param;
		CU_ASSERT_EQUAL(find(rows[i].body, rows[i].name, &param, value), rows[i].rc);
		if (rows[i].rc != 0)
			continue;
		CU_ASSERT_EQUAL(param.count, rows[i].count);
		if (rows[i].value == NULL) {
			CU_ASSERT_PTR_NULL(param.value);
			continue;
		}
		CU_ASSERT_PTR_NOT_NULL_FATAL(param.value);
		CU_ASSERT_STRING_EQUAL(param.value, rows[i].value);
		CU_ASSERT_EQUAL(param.len, strlen(rows[i].value));
	}
	/* A raw NUL byte, and a body over the limit. */
	struct raw_param param = {0};
	CU_ASSERT_EQUAL(form_find("jid=a\0b", 7, "jid", value, sizeof(value), &param), -1);
	char *big = malloc(HTTP_MAX_FORM + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'a', HTTP_MAX_FORM + 1);
	param = (struct raw_param){0};
	CU_ASSERT_EQUAL(form_find(big, HTTP_MAX_FORM + 1, "jid", value, sizeof(value), &param), -1);
	CU_ASSERT_EQUAL(form_find(big, HTTP_MAX_FORM, "a", value, sizeof(value), &param), 0);
	CU_ASSERT_EQUAL(param.len, 0);
	free(big);
}

static enum name_problem prep_len(const char *in, size_t len, char *out)
{
	return username_prep(in, len, out);
}

static enum name_problem prep(const char *in, char *out)
{
	return prep_len(in, strlen(in), out);
}

static void test_username_valid(void)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
	    {"alice", "alice"},
	    {"Alice", "alice"},     /* case-folded, as the server does */
	    {"STRASSE", "strasse"}, /* */
	    {"Stra\xc3\x9f"
	     "e",
	     "strasse"},                                          /* ß folds to ss */
	    {"\xc3\x85ngstr\xc3\xb6M", "\xc3\xa5ngstr\xc3\xb6m"}, /* Ångström */
	    {"\xef\xbd\x81\xef\xbd\x82\xef\xbd\x83", "abc"},      /* fullwidth: NFKC */
	    {"a\xe2\x80\x8b"
	     "b",
	     "ab"}, /* U+200B: mapped to nothing */
	    {"a\xc2\xad"
	     "b",
	     "ab"},                                                   /* soft hyphen: nothing */
	    {"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"}, /* 日本 */
	    {"\xd7\x90\xd7\x91", "\xd7\x90\xd7\x91"},                 /* right-to-left alone */
	    {"a.b-c_d+e#f%g!h", "a.b-c_d+e#f%g!h"},
	    {"x", "x"},
	    {"123", "123"},
	};
	char out[HTTP_API_USERNAME_MAX + 1];
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(out, 'x', sizeof(out));
		enum name_problem p = prep(rows[i].in, out);
		CU_ASSERT_EQUAL(p, NAME_OK);
		if (p == NAME_OK) {
			CU_ASSERT_STRING_EQUAL(out, rows[i].out);
		} else {
			fprintf(stderr, "\nrefused username %zu: %d\n", i, (int)p);
		}
	}
}

static void test_username_prohibited(void)
{
	static const char *const rows[] = {
	    "a\"b",
	    "a&b",
	    "a'b",
	    "a/b",
	    "a:b",
	    "a<b",
	    "a>b",
	    "a@b", /* each of the eight */
	    "\"",
	    "&",
	    "'",
	    "/",
	    ":",
	    "<",
	    ">",
	    "@",
	    "alice@example.com",
	    "a b",
	    " a",
	    "a ", /* ASCII space */
	    "a\tb",
	    "a\nb",
	    "a\rb",
	    "\x01",
	    "a\x1f",
	    "a\x7f", /* ASCII control */
	    "a\xc2\x80"
	    "b", /* C1 control U+0080 */
	    "a\xc2\xa0"
	    "b", /* no-break space */
	    "a\xe3\x80\x80"
	    "b", /* ideographic space */
	    "a\xe2\x80\xa8"
	    "b", /* line separator */
	    "a\xee\x80\x80"
	    "b",                 /* private use U+E000 */
	    "a\xef\xbf\xbf",     /* non-character U+FFFF */
	    "a\xef\xb7\x90",     /* non-character U+FDD0 */
	    "a\xe2\x80\x8e",     /* left-to-right mark */
	    "a\xf0\x9f\x98\x80", /* U+1F600: unassigned in Unicode 3.2 */
	    "\xc8\xa1",          /* U+0221: unassigned in Unicode 3.2 */
	    "a\xd7\x90",         /* left-to-right with right-to-left */
	    "\xd7\x90"
	    "1", /* right-to-left text must end in right-to-left */
	};
	char out[HTTP_API_USERNAME_MAX + 1];
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum name_problem p = prep(rows[i], out);
		CU_ASSERT_EQUAL(p, NAME_PROHIBITED);
		if (p != NAME_PROHIBITED)
			fprintf(stderr, "\naccepted or misjudged username %zu: %d\n", i, (int)p);
	}
	CU_ASSERT_EQUAL(prep_len("a\0b", 3, out), NAME_PROHIBITED); /* a decoded %00 */
	CU_ASSERT_EQUAL(prep_len("\0", 1, out), NAME_PROHIBITED);
}

static void test_username_malformed(void)
{
	static const char *const not_utf8[] = {
	    "\xff",
	    "a\x80",
	    "\xc0\x80", /* overlong NUL */
	    "\xc1\xbf",
	    "\xe0\x80\x80",
	    "\xed\xa0\x80", /* surrogate U+D800 */
	    "\xed\xbf\xbf",
	    "\xe2\x82",
	    "\xf4\x90\x80\x80", /* past U+10FFFF */
	    "\xf8\x88\x80\x80",
	    "abc\xe2",
	};
	char out[HTTP_API_USERNAME_MAX + 1];
	for (size_t i = 0; i < sizeof(not_utf8) / sizeof(not_utf8[0]); i++)
		CU_ASSERT_EQUAL(prep(not_utf8[i], out), NAME_NOT_UTF8);

	CU_ASSERT_EQUAL(prep("", out), NAME_EMPTY);
	CU_ASSERT_EQUAL(prep("\xc2\xad", out), NAME_EMPTY); /* only what maps to nothing */
	CU_ASSERT_EQUAL(prep("\xe2\x80\x8b\xef\xbb\xbf", out), NAME_EMPTY);

	char name[1100];
	memset(name, 'A', sizeof(name));
	CU_ASSERT_EQUAL(prep_len(name, 1023, out), NAME_OK);
	CU_ASSERT_EQUAL(strlen(out), 1023);
	CU_ASSERT_EQUAL(out[0], 'a');
	CU_ASSERT_EQUAL(prep_len(name, 1024, out), NAME_TOO_LONG);
	CU_ASSERT_EQUAL(prep_len(name, sizeof(name), out), NAME_TOO_LONG);
	/* 1023 bytes that grow past 1023 once prepared: U+3300 (3 bytes) is four
	 * katakana (12 bytes) after NFKC. */
	for (size_t i = 0; i + 3 <= 1023; i += 3)
		memcpy(name + i, "\xe3\x8c\x80", 3);
	CU_ASSERT_EQUAL(prep_len(name, 1023, out), NAME_TOO_LONG);
	CU_ASSERT_EQUAL(prep_len(name, 255, out), NAME_OK); /* 85 of them: 1020 bytes */
	CU_ASSERT_EQUAL(strlen(out), 1020);
	CU_ASSERT_EQUAL(prep_len(name, 258, out), NAME_TOO_LONG);
	/* ß folds to ss, the same number of bytes */
	for (size_t i = 0; i + 2 <= 1022; i += 2)
		memcpy(name + i, "\xc3\x9f", 2);
	name[1022] = 'S';
	CU_ASSERT_EQUAL(prep_len(name, 1023, out), NAME_OK);
	CU_ASSERT_EQUAL(strlen(out), 1023);
	CU_ASSERT_EQUAL(out[1022], 's');
}

static unsigned check(enum http_api_invite_kind kind, const char *jid, const char *username,
                      struct request_params *out, const char **reason)
{
	struct raw_params raw = {0};
	if (jid != NULL)
		raw.jid = (struct raw_param){jid, strlen(jid), 1};
	if (username != NULL)
		raw.username = (struct raw_param){username, strlen(username), 1};
	*reason = NULL;
	return params_check(kind, &raw, HOST, out, reason);
}

static void test_params_account(void)
{
	struct request_params out;
	const char *reason = NULL;

	CU_ASSERT_EQUAL(check(HTTP_API_INVITE_ACCOUNT, NULL, NULL, &out, &reason), 0);
	CU_ASSERT_STRING_EQUAL(out.username, "");
	CU_ASSERT_STRING_EQUAL(out.account_jid, "");
	CU_ASSERT_EQUAL(check(HTTP_API_INVITE_ACCOUNT, NULL, "Alice", &out, &reason), 0);
	CU_ASSERT_STRING_EQUAL(out.username, "alice");
	static const struct {
		const char *username, *reason;
	} bad[] = {
	    {"", "username is empty"},
	    {"a@b", "username has a character an XMPP username cannot have (\"&'/:<>@, space, "
	            "control character, ...)"},
	    {"\xff", "username is not valid UTF-8"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(
		    check(HTTP_API_INVITE_ACCOUNT, NULL, bad[i].username, &out, &reason), 400);
		CU_ASSERT_STRING_EQUAL(reason, bad[i].reason);
	}
	CU_ASSERT_EQUAL(check(HTTP_API_INVITE_ACCOUNT, "alice@" HOST, NULL, &out, &reason), 400);
	CU_ASSERT_PTR_NOT_NULL(strstr(reason, "reset"));
	struct raw_params twice = {.username = {"a", 1, 2}};
	CU_ASSERT_EQUAL(params_check(HTTP_API_INVITE_ACCOUNT, &twice, HOST, &out, &reason), 400);
	CU_ASSERT_STRING_EQUAL(reason, "more than one username parameter");
	char long_name[1025];
	memset(long_name, 'a', 1024);
	long_name[1024] = '\0';
	CU_ASSERT_EQUAL(check(HTTP_API_INVITE_ACCOUNT, NULL, long_name, &out, &reason), 400);
	CU_ASSERT_STRING_EQUAL(reason, "username is longer than 1023 bytes");
}

static void test_params_reset(void)
{
	static const struct {
		const char *jid, *normalised;
	} good[] = {
	    {"alice@" HOST, "alice@" HOST},
	    {"Alice@EXAMPLE.com", "alice@" HOST},
	    {"alice@" HOST ".", "alice@" HOST},
	    {"Stra\xc3\x9f"
	     "e@" HOST,
	     "strasse@" HOST},
	};
	static const char *const bad[] = {
	    "",                     /* empty */
	    HOST,                   /* a domain has no account */
	    "alice",                /* nor a bare name */
	    "@" HOST,               /* empty user part */
	    "alice@",               /* empty domain */
	    "alice@" HOST "/phone", /* a full JID */
	    "alice@" HOST "/",      /* an empty resource is still one */
	    "alice/x@" HOST,        /* the '/' ends the domain */
	    "alice@other.example",  /* another host */
	    "alice@sub." HOST,      /* */
	    "alice@" HOST "x",      /* */
	    "al@ice@" HOST,         /* a second '@': not the key's host */
	    "a b@" HOST,            /* prohibited in the user part */
	    "a:b@" HOST,            /* */
	    "a\xc2\xa0"
	    "b@" HOST,            /* */
	    "\xff@" HOST,         /* not UTF-8 */
	    "alice@exa mple.com", /* */
	};
	struct request_params out;
	const char *reason = NULL;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CU_ASSERT_EQUAL(check(HTTP_API_INVITE_RESET, good[i].jid, NULL, &out, &reason), 0);
		CU_ASSERT_STRING_EQUAL(out.account_jid, good[i].normalised);
		CU_ASSERT_STRING_EQUAL(out.username, "");
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned status = check(HTTP_API_INVITE_RESET, bad[i], NULL, &out, &reason);
		CU_ASSERT_EQUAL(status, 400);
		CU_ASSERT_PTR_NOT_NULL(reason);
		if (status != 400)
			fprintf(stderr, "\naccepted jid %zu: %s\n", i, bad[i]);
	}
	CU_ASSERT_EQUAL(check(HTTP_API_INVITE_RESET, "alice@" HOST "/x", NULL, &out, &reason), 400);
	CU_ASSERT_STRING_EQUAL(reason, "jid must be the bare JID of an account, user@host");
	CU_ASSERT_EQUAL(check(HTTP_API_INVITE_RESET, "bob@other.example", NULL, &out, &reason),
	                400);
	CU_ASSERT_STRING_EQUAL(reason, "jid is not an account of this key's host");
	CU_ASSERT_EQUAL(check(HTTP_API_INVITE_RESET, NULL, NULL, &out, &reason), 400);
	CU_ASSERT_STRING_EQUAL(reason, "a password-reset invite needs jid=user@host");
	CU_ASSERT_EQUAL(check(HTTP_API_INVITE_RESET, "alice@" HOST, "alice", &out, &reason), 400);
	CU_ASSERT_STRING_EQUAL(reason, "username is a parameter of account invites");
	struct raw_params twice = {.jid = {"alice@" HOST, strlen("alice@" HOST), 2}};
	CU_ASSERT_EQUAL(params_check(HTTP_API_INVITE_RESET, &twice, HOST, &out, &reason), 400);
	CU_ASSERT_STRING_EQUAL(reason, "more than one jid parameter");
	/* the longest user part, on the key's host */
	char jid[1100];
	memset(jid, 'u', 1023);
	snprintf(jid + 1023, sizeof(jid) - 1023, "@%s", HOST);
	CU_ASSERT_EQUAL(check(HTTP_API_INVITE_RESET, jid, NULL, &out, &reason), 0);
	CU_ASSERT_STRING_EQUAL(out.account_jid, jid);
	memset(jid, 'u', 1024);
	snprintf(jid + 1024, sizeof(jid) - 1024, "@%s", HOST);
	CU_ASSERT_EQUAL(check(HTTP_API_INVITE_RESET, jid, NULL, &out, &reason), 400);
}

static const struct unit_test tests[] = {
    {"form Content-Type", test_form_content_type},
    {"form bodies", test_form_find},
    {"usernames: valid ones are Nodeprep'd", test_username_valid},
    {"usernames: prohibited characters", test_username_prohibited},
    {"usernames: empty, too long, not UTF-8", test_username_malformed},
    {"parameters of account invites", test_params_account},
    {"parameters of reset invites", test_params_reset},
    {NULL, NULL},
};

UNIT_MAIN("params", tests)
