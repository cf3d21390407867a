/* Unit tests for src/config.c: defaults, every option type, errors with lines. */

#include "src/config.h"
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static char path[64];

/* Write text to a fresh temporary file; path holds its name. */
static void write_cfg(const char *text)
{
	strcpy(path, "/tmp/test_config.XXXXXX");
	int fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	FILE *f = fdopen(fd, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* Load text; on failure copy the error to err. */
static int load(const char *text, struct config *cfg, char *err, size_t err_size)
{
	write_cfg(text);
	int rc = config_load(cfg, path, err, err_size);
	unlink(path);
	return rc;
}

#define MINIMAL "[component]\njid = invites.example.com\nsecret = s3cret\nhosts = example.com\n"

static void test_minimal_gets_defaults(void)
{
	struct config cfg;
	char err[256] = "";
	CU_ASSERT_EQUAL_FATAL(load(MINIMAL, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.component.jid, "invites.example.com");
	CU_ASSERT_STRING_EQUAL(cfg.component.secret, "s3cret");
	CU_ASSERT_STRING_EQUAL(cfg.component.server, "127.0.0.1");
	CU_ASSERT_EQUAL(cfg.component.port, 5347);
	CU_ASSERT_EQUAL(cfg.component.request_timeout_s, 10);
	CU_ASSERT_EQUAL(cfg.component.max_pending, 1000);
	CU_ASSERT_EQUAL(cfg.component.n_hosts, 1);
	CU_ASSERT_EQUAL(cfg.component.n_admins, 0);
	CU_ASSERT_FALSE(config_is_admin(&cfg, "admin@example.com"));
	CU_ASSERT_STRING_EQUAL(cfg.http.bind, "127.0.0.1");
	CU_ASSERT_EQUAL(cfg.http.port, 5282);
	CU_ASSERT_STRING_EQUAL(cfg.http.path, "/invites_api");
	CU_ASSERT_STRING_EQUAL(cfg.http.cors_origin, "*");
	CU_ASSERT_EQUAL(cfg.http.max_connections, 512);
	CU_ASSERT_EQUAL(cfg.http.connection_timeout_s, 30);
	CU_ASSERT_STRING_EQUAL(cfg.keys.database, "/var/lib/invites-api/keys.sqlite");
	config_finish(&cfg);
}

static void test_full_config(void)
{
	struct config cfg;
	char err[256] = "";
	const char *text = "; comment\n"
	                   "[component]\n"
	                   "jid = invites.example.com\n"
	                   "secret = s3cret\n"
	                   "server = ::1\n"
	                   "port = 15347\n"
	                   "hosts = a.example, b.example c.example  ; inline comment\n"
	                   "admins = alice@a.example, bob@b.example\n"
	                   "request_timeout = 3\n"
	                   "[http]\n"
	                   "bind = 0.0.0.0\n"
	                   "port = 0\n"
	                   "path = /api/invites/\n"
	                   "cors_origin = https://example.com\n"
	                   "max_connections = 100\n"
	                   "connection_timeout = 5\n"
	                   "[keys]\n"
	                   "database = /tmp/k.sqlite\n";
	CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.component.server, "::1");
	CU_ASSERT_EQUAL(cfg.component.port, 15347);
	CU_ASSERT_EQUAL_FATAL(cfg.component.n_hosts, 3);
	CU_ASSERT_STRING_EQUAL(cfg.component.hosts[0], "a.example");
	CU_ASSERT_STRING_EQUAL(cfg.component.hosts[2], "c.example");
	CU_ASSERT_TRUE(config_serves_host(&cfg, "B.Example"));
	CU_ASSERT_FALSE(config_serves_host(&cfg, "d.example"));
	CU_ASSERT_EQUAL(cfg.component.n_admins, 2);
	CU_ASSERT_TRUE(config_is_admin(&cfg, "alice@a.example"));
	CU_ASSERT_TRUE(config_is_admin(&cfg, "Bob@B.Example"));
	CU_ASSERT_FALSE(config_is_admin(&cfg, "alice@b.example"));
	CU_ASSERT_FALSE(config_is_admin(&cfg, "alice@a.example/phone"));
	CU_ASSERT_FALSE(config_is_admin(&cfg, "a.example"));
	CU_ASSERT_FALSE(config_is_admin(&cfg, NULL));
	CU_ASSERT_EQUAL(cfg.component.request_timeout_s, 3);
	CU_ASSERT_EQUAL(cfg.http.port, 0);
	CU_ASSERT_STRING_EQUAL(cfg.http.path, "/api/invites");
	CU_ASSERT_STRING_EQUAL(cfg.http.cors_origin, "https://example.com");
	CU_ASSERT_EQUAL(cfg.http.max_connections, 100);
	CU_ASSERT_STRING_EQUAL(cfg.keys.database, "/tmp/k.sqlite");
	config_finish(&cfg);
}

static void test_admins_on_several_lines(void)
{
	struct config cfg;
	char err[256] = "";
	const char *text = MINIMAL "admins = a@example.com\n  b@example.com c@example.org\n"
	                           "admins = A@Example.com,d@example.com,\n";
	CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(cfg.component.n_admins, 4); /* a@example.com once */
	CU_ASSERT_STRING_EQUAL(cfg.component.admins[0], "a@example.com");
	CU_ASSERT_STRING_EQUAL(cfg.component.admins[3], "d@example.com");
	CU_ASSERT_TRUE(config_is_admin(&cfg, "c@example.org"));
	config_finish(&cfg);

	/* an empty value is the default: nobody */
	CU_ASSERT_EQUAL_FATAL(load(MINIMAL "admins =\n", &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.component.n_admins, 0);
	config_finish(&cfg);
}

static void test_hosts_on_several_lines(void)
{
	struct config cfg;
	char err[256] = "";
	const char *text = "[component]\njid = i.example\nsecret = x\n"
	                   "hosts = a.example\n  b.example\nhosts = c.example, a.example\n";
	CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.component.n_hosts, 3); /* a.example once */
	config_finish(&cfg);
}

/* Each bad config must fail with "FILE:LINE: reason" naming the right line. */
struct bad_case {
	const char *text;
	int line;
	const char *reason_part;
};

static const struct bad_case bad_cases[] = {
    {MINIMAL "bogus = 1\n", 5, "unknown option \"bogus\""},
    {MINIMAL "[nosuch]\nx = 1\n", 6, "unknown section [nosuch]"},
    {MINIMAL "[componet]\nx = 1\n", 6, "unknown section [componet]"},
    {"[component]\njid = \"invites.example.com\"\n", 2, "expected a domain name"},
    {MINIMAL "port = 70000\n", 5, "port must be a whole number from 1 to 65535"},
    {MINIMAL "port = -1\n", 5, "port must be"},
    {MINIMAL "port = 12ab\n", 5, "port must be"},
    {MINIMAL "port = \n", 5, "port must be"},
    {MINIMAL "request_timeout = 0\n", 5, "request_timeout"},
    {MINIMAL "server = localhost\n", 5, "literal IPv4 or IPv6"},
    {MINIMAL "jid = x\n", 5, "set twice"},
    {"[component]\njid = a@b\nsecret = x\nhosts = h\n", 2, "invalid value for jid"},
    {"[component]\njid = a\nsecret = x\nhosts = h/x\n", 4, "invalid host name"},
    {MINIMAL "[http]\npath = invites\n", 6, "invalid value for path"},
    {MINIMAL "[http]\npath = /a?b\n", 6, "invalid value for path"},
    {MINIMAL "[http]\nmax_connections = 10001\n", 6, "max_connections"},
    {MINIMAL "[http]\nbind = 300.1.1.1\n", 6, "bind must be"},
    {MINIMAL "admins = admin@example.com/phone\n", 5,
     "\"admin@example.com/phone\" is not a bare JID"},
    {MINIMAL "admins = example.com\n", 5, "is not a bare JID"},
    {MINIMAL "admins = @example.com\n", 5, "is not a bare JID"},
    {MINIMAL "admins = a@b@example.com\n", 5, "is not a bare JID"},
    {MINIMAL "admins = a:b@example.com\n", 5, "is not a bare JID"},
    {MINIMAL "admins = alice@\n", 5, "is not a bare JID"},
    {MINIMAL "admins = ok@example.com\nadmins = bad\n", 6, "\"bad\" is not a bare JID"},
    {MINIMAL "this line is not ini\n", 5, "syntax error"},
    {MINIMAL "[host:example.com]\naccess = privileged\n", 5,
     "[host:example.com] has access = privileged without act_as"},
    {MINIMAL "\n[host:other.example]\naccess = admin\n", 6,
     "[host:other.example] is not one of [component] hosts"},
    {MINIMAL "[host:example.com]\nact_as = bot@example.com\n", 5,
     "has act_as, which needs access = privileged"},
    {MINIMAL "[host:example.com]\naccess = root\n", 6, "access must be admin or privileged"},
    {MINIMAL "[host:example.com]\naccess = privileged\nact_as = bot@other.example\n", 7,
     "act_as must be a bare JID on example.com"},
    {MINIMAL "[host:example.com]\naccess = privileged\nact_as = example.com\n", 7,
     "act_as must be a bare JID on example.com"},
    {MINIMAL "[host:example.com]\naccess = privileged\nact_as = bot@example.com/r\n", 7,
     "act_as must be a bare JID"},
    {MINIMAL "[host:example.com]\nbogus = 1\n", 6,
     "unknown option \"bogus\" in section [host:example.com]"},
    {MINIMAL "[host:bad/host]\naccess = admin\n", 6, "invalid host name"},
    {MINIMAL "[host:example.com]\naccess = admin\naccess = admin\n", 7, "set twice"},
    {MINIMAL "[host:example.com]\naccess = privileged\nact_as = a@example.com\n"
             "act_as = b@example.com\n",
     8, "set twice"},
    {MINIMAL "[http\n", 5, "syntax error"},
    {NULL, 0, NULL},
};

static void test_host_sections(void)
{
	struct config cfg;
	char err[256] = "";
	const char *text = "[host:b.example]\n"
	                   "access = privileged\n"
	                   "act_as = InviteBot@B.example\n"
	                   "[component]\n"
	                   "jid = invites.example.com\nsecret = s3cret\n"
	                   "hosts = a.example, b.example, c.example\n"
	                   "[host:A.example]\n"
	                   "access = admin\n";
	CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.component.n_access, 2);
	CU_ASSERT_PTR_NULL(config_act_as(&cfg, "a.example"));
	CU_ASSERT_STRING_EQUAL(config_act_as(&cfg, "B.EXAMPLE"), "InviteBot@B.example");
	CU_ASSERT_PTR_NULL(config_act_as(&cfg, "c.example")); /* no section: admin */
	CU_ASSERT_PTR_NULL(config_act_as(&cfg, "d.example"));
	config_finish(&cfg);
}

static void test_errors_name_file_and_line(void)
{
	for (const struct bad_case *c = bad_cases; c->text != NULL; c++) {
		struct config cfg;
		char err[256] = "";
		int rc = load(c->text, &cfg, err, sizeof(err));
		CU_ASSERT_EQUAL(rc, -1);
		char prefix[96];
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, c->line);
		if (strncmp(err, prefix, strlen(prefix)) != 0 ||
		    strstr(err, c->reason_part) == NULL) {
			fprintf(stderr, "\n  case %d: got \"%s\", want \"%s...%s\"\n",
			        (int)(c - bad_cases), err, prefix, c->reason_part);
			CU_FAIL("error message");
		}
	}
}

static void test_missing_required(void)
{
	static const struct {
		const char *text;
		const char *reason;
	} cases[] = {
	    {"[component]\nsecret = x\nhosts = h\n", "[component] jid is required"},
	    {"[component]\njid = j\nhosts = h\n", "[component] secret is required"},
	    {"[component]\njid = j\nsecret = x\n", "[component] hosts is required"},
	    {"[component]\njid = j\nsecret = x\nhosts = ,\n", "hosts lists no host"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		char err[256] = "";
		CU_ASSERT_EQUAL(load(cases[i].text, &cfg, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].reason));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	}
}

static void test_secret_never_echoed(void)
{
	struct config cfg;
	char err[256] = "";
	const char *text = "[component]\njid = j\nhosts = h\nsecret = top\x01secret\n";
	CU_ASSERT_EQUAL(load(text, &cfg, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "invalid value for secret"));
	CU_ASSERT_PTR_NULL(strstr(err, "top"));
}

static void test_header_injection_refused(void)
{
	struct config cfg;
	char err[256] = "";
	/* inih strips line ends, but a tab or other control byte must not reach a header. */
	CU_ASSERT_EQUAL(load(MINIMAL "[http]\ncors_origin = a\tb\x0b\n", &cfg, err, sizeof(err)),
	                -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "cors_origin"));
}

static void test_long_lines_refused_not_cut(void)
{
	struct config cfg;
	char err[256] = "", text[512];
	char secret[200];
	/* "secret = " + 189 = 198 characters: the longest line inih reads whole */
	memset(secret, 's', 189);
	secret[189] = '\0';
	snprintf(text, sizeof(text), "[component]\njid = j\nhosts = h\nsecret = %s\n", secret);
	CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(strlen(cfg.component.secret), 189);
	config_finish(&cfg);

	secret[189] = 's';
	secret[190] = '\0';
	snprintf(text, sizeof(text), "[component]\njid = j\nhosts = h\nsecret = %s\n", secret);
	CU_ASSERT_EQUAL(load(text, &cfg, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, ":4: line too long"));
	CU_ASSERT_PTR_NULL(strstr(err, "sss"));
}

static void test_database_must_be_absolute(void)
{
	struct config cfg;
	char err[256] = "";
	CU_ASSERT_EQUAL(load(MINIMAL "[keys]\ndatabase = keys.sqlite\n", &cfg, err, sizeof(err)),
	                -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "absolute path"));
}

static void test_hosts_with_ports_or_escapes_refused(void)
{
	static const char *const bad[] = {"localhost:5222", "a%2eb", "[::1]", "*.example.com"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config cfg;
		char err[256] = "", text[256];
		snprintf(text, sizeof(text), "[component]\njid = j\nsecret = x\nhosts = %s\n",
		         bad[i]);
		CU_ASSERT_EQUAL(load(text, &cfg, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "invalid host name"));
	}
}

static void test_missing_file(void)
{
	struct config cfg;
	char err[256] = "";
	CU_ASSERT_EQUAL(config_load(&cfg, "/nonexistent/component.cfg", err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "/nonexistent/component.cfg: cannot open: No such file or "
	                            "directory");
}

/* The sample documents every option with its default: parsing it must give
 * exactly what an empty config gives, and it must mention every option. */
static void test_sample_matches_defaults(void)
{
	struct config sample, minimal;
	char err[256] = "";
	CU_ASSERT_EQUAL_FATAL(
	    config_load(&sample, SOURCE_ROOT "/component.cfg.sample", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(load("[component]\njid = invites.example.com\nsecret = change-me\n"
	                           "hosts = example.com\n",
	                           &minimal, err, sizeof(err)),
	                      0);
	CU_ASSERT_STRING_EQUAL(sample.component.server, minimal.component.server);
	CU_ASSERT_EQUAL(sample.component.port, minimal.component.port);
	CU_ASSERT_EQUAL(sample.component.request_timeout_s, minimal.component.request_timeout_s);
	CU_ASSERT_EQUAL(sample.component.max_pending, minimal.component.max_pending);
	CU_ASSERT_STRING_EQUAL(sample.component.hosts[0], minimal.component.hosts[0]);
	CU_ASSERT_EQUAL(sample.component.n_admins, minimal.component.n_admins);
	CU_ASSERT_STRING_EQUAL(sample.http.bind, minimal.http.bind);
	CU_ASSERT_EQUAL(sample.http.port, minimal.http.port);
	CU_ASSERT_STRING_EQUAL(sample.http.path, minimal.http.path);
	CU_ASSERT_STRING_EQUAL(sample.http.cors_origin, minimal.http.cors_origin);
	CU_ASSERT_EQUAL(sample.http.max_connections, minimal.http.max_connections);
	CU_ASSERT_EQUAL(sample.http.connection_timeout_s, minimal.http.connection_timeout_s);
	CU_ASSERT_EQUAL(sample.http.request_deadline_s, minimal.http.request_deadline_s);
	CU_ASSERT_EQUAL(sample.http.max_connections_per_ip, minimal.http.max_connections_per_ip);
	CU_ASSERT_EQUAL(sample.http.auth_failure_burst, minimal.http.auth_failure_burst);
	CU_ASSERT_EQUAL(sample.http.auth_failure_rate, minimal.http.auth_failure_rate);
	CU_ASSERT_EQUAL(sample.http.n_trusted_proxies, 0);
	CU_ASSERT_EQUAL(minimal.http.n_trusted_proxies, 0);
	CU_ASSERT_STRING_EQUAL(sample.keys.database, minimal.keys.database);
	config_finish(&sample);
	config_finish(&minimal);
}

/* A file holding content with mode; its name in file (size 64). */
static void write_file(char *file, const char *content, size_t len, mode_t mode)
{
	strcpy(file, "/tmp/test_config_file.XXXXXX");
	int fd = mkstemp(file);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, content, len) == (ssize_t)len);
	close(fd);
	CU_ASSERT_FATAL(chmod(file, mode) == 0);
}

/* Load MINIMAL's jid and hosts with "secret_file = <a file of content>". */
static int load_secret_file(const char *content, size_t len, char **secret, char *err,
                            size_t err_size)
{
	char file[64], text[256];
	struct config cfg;
	write_file(file, content, len, 0600);
	snprintf(text, sizeof(text),
	         "[component]\njid = invites.example.com\nsecret_file = %s\nhosts = e.com\n", file);
	int rc = load(text, &cfg, err, err_size);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_PTR_NULL(cfg.component.secret);
	CU_ASSERT_STRING_EQUAL(cfg.component.secret_file, file);
	rc = config_secret(&cfg, secret, err, err_size);
	config_finish(&cfg);
	unlink(file);
	return rc;
}

static void test_secret_file(void)
{
	char err[512] = "";
	char *secret = NULL;
	static const struct {
		const char *content;
		size_t len;
		const char *secret;
	} good[] = {
	    {"s3cret\n", 7, "s3cret"},
	    {"s3cret", 6, "s3cret"},
	    {"s3cret\r\n", 8, "s3cret"},
	    {"  spaced out  \n", 15, "  spaced out  "},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(
		    load_secret_file(good[i].content, good[i].len, &secret, err, sizeof(err)), 0);
		CU_ASSERT_STRING_EQUAL(secret, good[i].secret);
		config_secret_free(secret);
	}
	static const struct {
		const char *content;
		size_t len;
		const char *reason;
	} bad[] = {
	    {"", 0, "is empty"},
	    {"\n", 1, "is empty"},
	    {"two\nlines-secret\n", 17, "more than one line"},
	    {"nul\0inside-secret", 18, "control characters"},
	    {"tab\tinside-secret", 18, "control characters"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		secret = NULL;
		CU_ASSERT_EQUAL(
		    load_secret_file(bad[i].content, bad[i].len, &secret, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NULL(secret);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].reason));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "secret_file /tmp/test_config_file."));
		CU_ASSERT_PTR_NULL(strstr(err, "-secret")); /* never the content */
	}
	char big[1100];
	memset(big, 'x', sizeof(big));
	CU_ASSERT_EQUAL(load_secret_file(big, sizeof(big), &secret, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "longer than 1024 bytes"));
}

static void test_secret_file_missing(void)
{
	struct config cfg;
	char err[512] = "";
	char *secret = NULL;
	CU_ASSERT_EQUAL_FATAL(load("[component]\njid = j\nhosts = h\n"
	                           "secret_file = /nonexistent/secret\n",
	                           &cfg, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL(config_secret(&cfg, &secret, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "[component] secret_file /nonexistent/secret: No such file or "
	                            "directory");
	config_finish(&cfg);
}

static void test_exactly_one_secret_and_tls_pairs(void)
{
	static const struct {
		const char *text;
		const char *reason;
	} cases[] = {
	    {"[component]\njid = j\nhosts = h\nsecret = x\nsecret_file = /s\n",
	     "has both secret and secret_file"},
	    {"[component]\njid = j\nhosts = h\n", "[component] secret is required (or secret_file"},
	    {"[component]\njid = j\nhosts = h\nsecret_file = relative/s\n",
	     "invalid value for secret_file: expected an absolute file path"},
	    {MINIMAL "[http]\ntls_certificate = /c.pem\n", "set both or neither"},
	    {MINIMAL "[http]\ntls_key = /k.pem\n", "set both or neither"},
	    {MINIMAL "[http]\ntls_key = k.pem\ntls_certificate = /c.pem\n",
	     "invalid value for tls_key"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		char err[256] = "";
		CU_ASSERT_EQUAL(load(cases[i].text, &cfg, err, sizeof(err)), -1);
		if (strstr(err, cases[i].reason) == NULL) {
			fprintf(stderr, "\n  case %zu: got \"%s\"\n", i, err);
			CU_FAIL("error message");
		}
	}
	struct config cfg;
	char err[256] = "";
	CU_ASSERT_EQUAL_FATAL(load(MINIMAL "[http]\ntls_certificate = /c.pem\ntls_key = /k.pem\n",
	                           &cfg, err, sizeof(err)),
	                      0);
	CU_ASSERT_STRING_EQUAL(cfg.http.tls_certificate, "/c.pem");
	CU_ASSERT_STRING_EQUAL(cfg.http.tls_key, "/k.pem");
	config_finish(&cfg);
	CU_ASSERT_EQUAL_FATAL(load(MINIMAL, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(cfg.http.tls_certificate);
	CU_ASSERT_PTR_NULL(cfg.http.tls_key);
	CU_ASSERT_PTR_NULL(cfg.component.secret_file);
	config_finish(&cfg);
}

static void test_private_files(void)
{
	static const struct {
		mode_t mode;
		const char *reason; /* NULL: accepted */
	} cases[] = {
	    {0600, NULL},
	    {0400, NULL},
	    {0640, NULL}, /* the file's group is ours: a group made for the service */
	    {0644, "can be read by every user (mode 0644)"},
	    {0604, "can be read by every user"},
	    {0602, "can be changed by every user"},
	    {0660, "can be changed by its group"},
	    {0601, "every user"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char file[64], err[512] = "";
		write_file(file, "x\n", 2, cases[i].mode);
		int rc = config_check_private(file, "secret file", err, sizeof(err));
		if (cases[i].reason == NULL) {
			CU_ASSERT_EQUAL(rc, 0);
		} else {
			char fix[128];
			snprintf(fix, sizeof(fix), "fix with: chmod o-rwx,g-w %s", file);
			CU_ASSERT_EQUAL(rc, -1);
			CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].reason));
			CU_ASSERT_PTR_NOT_NULL(strstr(err, fix));
			CU_ASSERT_EQUAL(strncmp(err, "secret file /tmp/", 17), 0);
			/* the fix works, and keeps a root:service 0640 layout readable */
			CU_ASSERT_EQUAL(chmod(file, cases[i].mode & ~(mode_t)(S_IRWXO | S_IWGRP)),
			                0);
			CU_ASSERT_EQUAL(config_check_private(file, "secret file", err, sizeof(err)),
			                0);
		}
		unlink(file);
	}
	char err[512];
	CU_ASSERT_EQUAL(config_check_private("/nonexistent/f", "tls_key", err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "tls_key /nonexistent/f: No such file or directory");
}

static bool in_group(gid_t gid)
{
	gid_t groups[256];
	int n = getgroups(256, groups);
	for (int i = 0; i < n; i++) {
		if (groups[i] == gid)
			return true;
	}
	return gid == getegid();
}

/* A group-readable file of a group this process is not in is refused. */
static void test_group_readable_by_another_group(void)
{
	char file[64], err[512] = "";
	gid_t other = getegid() == 0 ? 65534 : 0; /* nogroup, or root */
	write_file(file, "x\n", 2, 0640);
	if (chown(file, (uid_t)-1, other) != 0) {
		unlink(file);
		return; /* not allowed to give a file away: nothing to test here */
	}
	gid_t groups[256];
	int n = getgroups(256, groups);
	for (int i = 0; i < n; i++) {
		if (groups[i] == other) {
			unlink(file);
			return; /* we are in that group after all */
		}
	}
	CU_ASSERT_EQUAL(config_check_private(file, "config file", err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "can be read by group"));
	if (geteuid() == 0) {
		/* Root is not the service: no "fix" that would lock the service out. */
		CU_ASSERT_PTR_NOT_NULL(
		    strstr(err, "which root is not in: run this as the service user"));
		CU_ASSERT_PTR_NULL(strstr(err, "fix with"));
	} else {
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "which this service is not in"));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "fix with: chmod 600"));
	}
	unlink(file);
}

/* Run as root, the same check as the service user nobody would see it: a
 * file of group root, 0640, refused with the fix for the service. */
static void test_group_readable_seen_by_a_service_user(void)
{
	if (geteuid() != 0)
		return; /* the test above covers this user */
	char file[64];
	write_file(file, "x\n", 2, 0640);
	CU_ASSERT_FATAL(chown(file, 0, 0) == 0);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		char err[512] = "";
		gid_t nogroup = 65534;
		if (setgroups(1, &nogroup) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
			_exit(2);
		int rc = config_check_private(file, "config file", err, sizeof(err));
		_exit(rc == -1 && strstr(err, "which this service is not in") != NULL &&
		              strstr(err, "fix with: chmod 600") != NULL
		          ? 0
		          : 1);
	}
	int status;
	CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(file);
}

/* A POSIX ACL in the Linux xattr layout: version 2, then (tag, perm, id)
 * entries, all little-endian. */
static size_t acl_entry(uint8_t *acl, size_t at, unsigned tag, unsigned perm, uint32_t id)
{
	const uint8_t entry[8] = {tag & 0xff, tag >> 8,         perm & 0xff,       perm >> 8,
	                          id & 0xff,  (id >> 8) & 0xff, (id >> 16) & 0xff, id >> 24};
	memcpy(acl + at, entry, sizeof(entry));
	return at + sizeof(entry);
}

/* Give file (0600) an ACL with one named entry (tag 2 user, 8 group) and a
 * mask: setfacl -m u:ID:r (or g:ID:r) and -m m::MASK. false if the filesystem
 * takes no ACLs. */
static bool set_acl(const char *file, unsigned tag, uint32_t id, unsigned mask)
{
	uint8_t acl[4 + 5 * 8] = {2, 0, 0, 0};
	size_t n = acl_entry(acl, 4, 0x01, 6, UINT32_MAX); /* owner rw */
	if (tag == 0x02)
		n = acl_entry(acl, n, tag, 4, id);  /* named user: r */
	n = acl_entry(acl, n, 0x04, 0, UINT32_MAX); /* owning group: - */
	if (tag == 0x08)
		n = acl_entry(acl, n, tag, 4, id);     /* named group: r (entries sorted by tag) */
	n = acl_entry(acl, n, 0x10, mask, UINT32_MAX); /* mask */
	n = acl_entry(acl, n, 0x20, 0, UINT32_MAX);    /* others: - */
	if (setxattr(file, "system.posix_acl_access", acl, n, 0) == 0)
		return true;
	CU_ASSERT_FATAL(errno == ENOTSUP || errno == EOPNOTSUPP);
	return false;
}

static void test_acl_granting_others_refused(void)
{
	static const struct {
		unsigned tag;
		uint32_t id;
		unsigned mask;
		bool refused;
	} cases[] = {
	    {0x02, 65534, 4, true},  /* user nobody may read */
	    {0x08, 65534, 4, true},  /* group nogroup may read */
	    {0x02, 65534, 0, false}, /* ... but the mask takes it away */
	    {0x02, UINT32_MAX, 4, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char file[64], err[512] = "", fix[256];
		uint32_t id = cases[i].id == UINT32_MAX ? (uint32_t)geteuid() : cases[i].id;
		if (cases[i].tag == 0x08 && in_group((gid_t)id))
			continue;
		write_file(file, "x\n", 2, 0600);
		if (!set_acl(file, cases[i].tag, id, cases[i].mask)) {
			fprintf(stderr, "(no ACLs on /tmp: skipped) ");
			unlink(file);
			return;
		}
		int rc = config_check_private(file, "config file", err, sizeof(err));
		if (!cases[i].refused) {
			CU_ASSERT_EQUAL(rc, 0);
		} else {
			snprintf(fix, sizeof(fix),
			         "config file %s has an access control list (ACL) "
			         "granting access to others",
			         file);
			CU_ASSERT_EQUAL(rc, -1);
			CU_ASSERT_EQUAL(strncmp(err, fix, strlen(fix)), 0);
			snprintf(fix, sizeof(fix), "; fix with: setfacl -b %s", file);
			CU_ASSERT_PTR_NOT_NULL(strstr(err, fix));
		}
		unlink(file);
	}
}

static void test_check_files_covers_config_secret_and_key(void)
{
	char secret_file[64], key_file[64], text[512], err[512] = "";
	struct config cfg;
	write_file(secret_file, "s3cret\n", 7, 0600);
	write_file(key_file, "key\n", 4, 0600);
	snprintf(text, sizeof(text),
	         "[component]\njid = j\nhosts = h\nsecret_file = %s\n"
	         "[http]\ntls_certificate = /c.pem\ntls_key = %s\n",
	         secret_file, key_file);
	write_cfg(text);
	CU_ASSERT_FATAL(chmod(path, 0600) == 0);
	CU_ASSERT_EQUAL_FATAL(config_load(&cfg, path, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(config_check_files(&cfg, path, err, sizeof(err)), 0);

	CU_ASSERT_FATAL(chmod(key_file, 0644) == 0);
	CU_ASSERT_EQUAL(config_check_files(&cfg, path, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(strncmp(err, "[http] tls_key ", 15), 0);
	CU_ASSERT_FATAL(chmod(secret_file, 0604) == 0);
	CU_ASSERT_EQUAL(config_check_files(&cfg, path, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(strncmp(err, "[component] secret_file ", 24), 0);
	CU_ASSERT_FATAL(chmod(path, 0644) == 0);
	CU_ASSERT_EQUAL(config_check_files(&cfg, path, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(strncmp(err, "config file ", 12), 0);

	config_finish(&cfg);
	unlink(path);
	unlink(secret_file);
	unlink(key_file);
}

/* A FIFO at the config path or at secret_file is refused at once: opening
 * one for reading would wait for a writer (the test dies by SIGALRM if so). */
static void test_fifo_refused(void)
{
	char fifo[64], text[256], err[512] = "";
	struct config cfg;
	snprintf(fifo, sizeof(fifo), "/tmp/test_config_fifo.%d", (int)getpid());
	CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);
	alarm(10);

	CU_ASSERT_EQUAL(config_load(&cfg, fifo, err, sizeof(err)), -1);
	char want[128];
	snprintf(want, sizeof(want), "%s is not a regular file", fifo);
	CU_ASSERT_STRING_EQUAL(err, want);

	snprintf(text, sizeof(text), "[component]\njid = j\nhosts = h\nsecret_file = %s\n", fifo);
	CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), 0);
	char *secret = NULL;
	CU_ASSERT_EQUAL(config_secret(&cfg, &secret, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NULL(secret);
	snprintf(want, sizeof(want), "[component] secret_file %s is not a regular file", fifo);
	CU_ASSERT_STRING_EQUAL(err, want);
	CU_ASSERT_EQUAL(config_check_private(fifo, "[http] tls_key", err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "[http] tls_key %s is not a regular file", fifo);
	CU_ASSERT_STRING_EQUAL(err, want);
	config_finish(&cfg);

	CU_ASSERT_EQUAL(config_load(&cfg, "/tmp", err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "/tmp is not a regular file");
	alarm(0);
	unlink(fifo);
}

/* [http] trusted_proxies: addresses and CIDR prefixes, over several lines. */
static void test_trusted_proxies(void)
{
	struct config cfg;
	char err[256] = "";
	static const char base[] = "[component]\njid = invites.example.com\nsecret = s\n"
	                           "hosts = example.com\n[http]\n";
	char text[512];

	snprintf(text, sizeof(text),
	         "%strusted_proxies = 127.0.0.1, 10.0.0.0/8\n"
	         "trusted_proxies = ::1 2001:db8::/32\n",
	         base);
	CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.http.n_trusted_proxies, 4);
	CU_ASSERT_STRING_EQUAL(cfg.http.trusted_proxies[1], "10.0.0.0/8");
	CU_ASSERT_STRING_EQUAL(cfg.http.trusted_proxies[3], "2001:db8::/32");
	config_finish(&cfg);

	static const char *const bad[] = {"10.0.0.0/33", "::/129",     "proxy.example",
	                                  "10.0.0.0/",   "10.0.0.0/x", "1.2.3.4:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%strusted_proxies = %s\n", base, bad[i]);
		CU_ASSERT_EQUAL(load(text, &cfg, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "trusted_proxies"));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i]));
	}
	snprintf(text, sizeof(text), "%sauth_failure_rate = 0\n", base);
	CU_ASSERT_EQUAL(load(text, &cfg, err, sizeof(err)), -1);
	snprintf(text, sizeof(text), "%sauth_failure_burst = 0\n", base);
	CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.http.auth_failure_burst, 0);
	config_finish(&cfg);
}

static const struct unit_test tests[] = {
    {"sample config documents the defaults", test_sample_matches_defaults},
    {"trusted proxies", test_trusted_proxies},
    {"minimal config gets defaults", test_minimal_gets_defaults},
    {"every option set", test_full_config},
    {"hosts over several lines", test_hosts_on_several_lines},
    {"admins over several lines, empty by default", test_admins_on_several_lines},
    {"errors name file and line", test_errors_name_file_and_line},
    {"[host:NAME] sections: access and act_as", test_host_sections},
    {"missing required options", test_missing_required},
    {"secret never echoed", test_secret_never_echoed},
    {"control characters refused in header values", test_header_injection_refused},
    {"long lines refused, not cut", test_long_lines_refused_not_cut},
    {"database must be an absolute path", test_database_must_be_absolute},
    {"hosts with ports or escapes refused", test_hosts_with_ports_or_escapes_refused},
    {"missing file", test_missing_file},
    {"a FIFO or directory is refused without waiting", test_fifo_refused},
    {"secret_file: first line, newline stripped, empty refused", test_secret_file},
    {"secret_file missing", test_secret_file_missing},
    {"exactly one secret, both TLS files or none", test_exactly_one_secret_and_tls_pairs},
    {"files holding secrets must be private", test_private_files},
    {"group-readable by a group we are not in", test_group_readable_by_another_group},
    {"... and as the service user sees it, from root", test_group_readable_seen_by_a_service_user},
    {"an ACL granting others access is refused", test_acl_granting_others_refused},
    {"config, secret_file and tls_key are all checked",
     test_check_files_covers_config_secret_and_key},
    {NULL, NULL},
};

UNIT_MAIN("config", tests)
