#include "config.h"
#include "file.h"
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

enum option_type {
	OPT_STRING,
	OPT_HEADER, /* a string that ends up in an HTTP header: no control characters */
	OPT_DOMAIN,
	OPT_HOSTS,
	OPT_JIDS, /* bare JIDs */
	OPT_NETWORKS,
	OPT_ADDRESS,
	OPT_PATH,
	OPT_PORT,
	OPT_UINT,
	OPT_FILE, /* an absolute path */
};

struct option {
	const char *section;
	const char *name;
	enum option_type type;
	size_t offset;
	const char *default_value; /* NULL: required; OPTIONAL: may stay unset (NULL) */
	unsigned min, max;         /* OPT_PORT, OPT_UINT */
};

#define OFF(field) offsetof(struct config, field)

static const char OPTIONAL[] = "";

/* What a valid value looks like, for error messages. */
static const char *const expected[] = {
    [OPT_STRING] = "expected a non-empty value without control characters",
    [OPT_HEADER] = "expected a non-empty value without control characters",
    [OPT_DOMAIN] = "expected a domain name such as invites.example.com, without quotes",
    [OPT_HOSTS] = "expected domain names separated by commas or spaces",
    [OPT_JIDS] = "expected bare JIDs (user@example.com) separated by commas or spaces",
    [OPT_NETWORKS] = "expected IP addresses or CIDR prefixes separated by commas or spaces",
    [OPT_ADDRESS] = "expected a literal IPv4 or IPv6 address",
    [OPT_PATH] = "expected a path starting with '/' without '?', '#', '%' or spaces",
    [OPT_PORT] = "expected a port number",
    [OPT_UINT] = "expected a whole number",
    [OPT_FILE] = "expected an absolute file path",
};

static bool known_section(const char *section);

/* Sorted by section, then name. Adding an option is adding a row. */
static const struct option options[] = {
    {"component", "admins", OPT_JIDS, OFF(component.admins), "", 0, 0},
    {"component", "hosts", OPT_HOSTS, OFF(component.hosts), NULL, 0, 0},
    {"component", "jid", OPT_DOMAIN, OFF(component.jid), NULL, 0, 0},
    {"component", "max_pending", OPT_UINT, OFF(component.max_pending), "1000", 1, 100000},
    {"component", "port", OPT_PORT, OFF(component.port), "5347", 1, 65535},
    {"component", "request_timeout", OPT_UINT, OFF(component.request_timeout_s), "10", 1, 300},
    {"component", "secret", OPT_STRING, OFF(component.secret), OPTIONAL, 0, 0},
    {"component", "secret_file", OPT_FILE, OFF(component.secret_file), OPTIONAL, 0, 0},
    {"component", "server", OPT_ADDRESS, OFF(component.server), "127.0.0.1", 0, 0},
    {"http", "auth_failure_burst", OPT_UINT, OFF(http.auth_failure_burst), "10", 0, 100000},
    {"http", "auth_failure_rate", OPT_UINT, OFF(http.auth_failure_rate), "10", 1, 100000},
    {"http", "bind", OPT_ADDRESS, OFF(http.bind), "127.0.0.1", 0, 0},
    {"http", "connection_timeout", OPT_UINT, OFF(http.connection_timeout_s), "30", 1, 3600},
    {"http", "cors_origin", OPT_HEADER, OFF(http.cors_origin), "*", 0, 0},
    /* each connection is a descriptor: the daemon raises its open-file limit */
    {"http", "max_connections", OPT_UINT, OFF(http.max_connections), "512", 1,
     HTTP_API_MAX_CONNECTIONS},
    {"http", "max_connections_per_ip", OPT_UINT, OFF(http.max_connections_per_ip), "64", 1,
     HTTP_API_MAX_CONNECTIONS},
    {"http", "path", OPT_PATH, OFF(http.path), "/invites_api", 0, 0},
    {"http", "port", OPT_PORT, OFF(http.port), "5282", 0, 65535},
    {"http", "request_deadline", OPT_UINT, OFF(http.request_deadline_s), "10", 1, 3600},
    {"http", "tls_certificate", OPT_FILE, OFF(http.tls_certificate), OPTIONAL, 0, 0},
    {"http", "tls_key", OPT_FILE, OFF(http.tls_key), OPTIONAL, 0, 0},
    {"http", "trusted_proxies", OPT_NETWORKS, OFF(http.trusted_proxies), "", 0, 0},
    {"keys", "database", OPT_STRING, OFF(keys.database), "/var/lib/invites-api/keys.sqlite", 0, 0},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

struct parse_state {
	struct config *cfg;
	bool seen[N_OPTIONS];
	char reason[256]; /* first error, without file and line */
};

static void *field(struct config *cfg, const struct option *opt)
{
	return (char *)cfg + opt->offset;
}

static bool known_section(const char *section)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (strcmp(options[i].section, section) == 0)
			return true;
	}
	return false;
}

static const struct option *find_option(const char *section, const char *name)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (strcmp(options[i].section, section) == 0 && strcmp(options[i].name, name) == 0)
			return &options[i];
	}
	return NULL;
}

static bool has_control_chars(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/* A DNS-style name: what XMPP domains and hosts look like in practice. */
static bool valid_domain(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 1023 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == 0x7f || strchr("@/\\\"'<>&,;:%?#*[]", c) != NULL)
			return false;
	}
	return true;
}

static int parse_uint(const char *value, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	if (value[0] < '0' || value[0] > '9')
		return -1;
	unsigned long n = strtoul(value, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = (unsigned)n;
	return 0;
}

static int set_string(char **dst, const char *value)
{
	char *copy = strdup(value);
	if (copy == NULL)
		return -1;
	free(*dst);
	*dst = copy;
	return 0;
}

/* localpart@domain: a localpart without the characters RFC 7622 forbids, no
 * resource. */
static bool valid_bare_jid(const char *s)
{
	const char *at = strchr(s, '@');
	if (at == NULL || at == s || at - s > 1023 || !valid_domain(at + 1))
		return false;
	for (; s < at; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == 0x7f || strchr("\"&'/:<>@", c) != NULL)
			return false;
	}
	return true;
}

static bool is_listed(char *const *list, size_t n, const char *item)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(list[i], item) == 0)
			return true;
	}
	return false;
}

/* A list option: which entries are valid, where they go, how to say no. */
struct list_kind {
	bool (*valid)(const char *item);
	const char *invalid_fmt; /* takes the item */
	const char *what;        /* plural, for "more than N ..." */
	size_t max;
};

static const struct list_kind host_list = {valid_domain, "invalid host name \"%.100s\"", "hosts",
                                           CONFIG_HOSTS_MAX};
/* "ADDRESS" or "ADDRESS/BITS", IPv4 or IPv6. */
static bool valid_network(const char *s)
{
	char address[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned char buf[sizeof(struct in6_addr)];
	unsigned bits, max;

	if (len == 0 || len >= sizeof(address))
		return false;
	memcpy(address, s, len);
	address[len] = '\0';
	if (inet_pton(AF_INET, address, buf) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, address, buf) == 1)
		max = 128;
	else
		return false;
	return slash == NULL || parse_uint(slash + 1, 0, max, &bits) == 0;
}

static const struct list_kind proxy_list = {
    valid_network, "trusted_proxies: \"%.100s\" is not an IP address or CIDR prefix", "proxies",
    CONFIG_PROXIES_MAX};
static const struct list_kind admin_list = {
    valid_bare_jid, "admins: \"%.100s\" is not a bare JID (user@example.com)", "admins",
    CONFIG_ADMINS_MAX};

/* The formats are the constants of the two list kinds above. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void refuse_item(struct parse_state *st, const struct list_kind *kind, const char *item)
{
	snprintf(st->reason, sizeof(st->reason), kind->invalid_fmt, item);
}
#pragma GCC diagnostic pop

/* Lists may be given on several lines (inih continuation lines or repeated
 * keys): each call appends; repeats (ignoring case) are dropped. */
static int add_to_list(struct parse_state *st, const struct list_kind *kind, char **items,
                       size_t *n_items, const char *value)
{
	char *list = strdup(value);
	if (list == NULL)
		return -1;
	int rc = 0;
	char *save = NULL;
	for (char *item = strtok_r(list, ", \t", &save); item != NULL && rc == 0;
	     item = strtok_r(NULL, ", \t", &save)) {
		if (!kind->valid(item)) {
			refuse_item(st, kind, item);
			rc = -1;
		} else if (is_listed(items, *n_items, item)) {
			continue;
		} else if (*n_items == kind->max) {
			snprintf(st->reason, sizeof(st->reason), "more than %zu %s", kind->max,
			         kind->what);
			rc = -1;
		} else if ((items[*n_items] = strdup(item)) == NULL) {
			rc = -1;
		} else {
			(*n_items)++;
		}
	}
	free(list);
	return rc;
}

static bool valid_address(const char *value)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, value, buf) == 1 || inet_pton(AF_INET6, value, buf) == 1;
}

static bool valid_path(const char *value)
{
	if (value[0] != '/' || has_control_chars(value))
		return false;
	return strpbrk(value, "?# %") == NULL;
}

static int set_value(struct parse_state *st, const struct option *opt, const char *value)
{
	void *dst = field(st->cfg, opt);
	unsigned n;

	switch (opt->type) {
	case OPT_HOSTS:
		return add_to_list(st, &host_list, st->cfg->component.hosts,
		                   &st->cfg->component.n_hosts, value);
	case OPT_JIDS:
		return add_to_list(st, &admin_list, st->cfg->component.admins,
		                   &st->cfg->component.n_admins, value);
	case OPT_NETWORKS:
		return add_to_list(st, &proxy_list, st->cfg->http.trusted_proxies,
		                   &st->cfg->http.n_trusted_proxies, value);
	case OPT_PORT:
	case OPT_UINT:
		if (parse_uint(value, opt->min, opt->max, &n) < 0) {
			snprintf(st->reason, sizeof(st->reason),
			         "%s must be a whole number from %u to %u", opt->name, opt->min,
			         opt->max);
			return -1;
		}
		if (opt->type == OPT_PORT)
			*(unsigned short *)dst = (unsigned short)n;
		else
			*(unsigned *)dst = n;
		return 0;
	case OPT_DOMAIN:
		if (!valid_domain(value))
			goto invalid;
		break;
	case OPT_ADDRESS:
		if (!valid_address(value)) {
			snprintf(st->reason, sizeof(st->reason),
			         "%s must be a literal IPv4 or IPv6 address, not \"%.100s\"",
			         opt->name, value);
			return -1;
		}
		break;
	case OPT_PATH:
		if (!valid_path(value))
			goto invalid;
		break;
	case OPT_FILE:
		if (value[0] != '/' || has_control_chars(value))
			goto invalid;
		break;
	case OPT_HEADER:
	case OPT_STRING:
		if (value[0] == '\0' || has_control_chars(value))
			goto invalid;
		break;
	}
	if (set_string(dst, value) < 0) {
		snprintf(st->reason, sizeof(st->reason), "out of memory");
		return -1;
	}
	return 0;

invalid:
	/* The value may be the component secret: never echo strings back. */
	snprintf(st->reason, sizeof(st->reason), "invalid value for %s: %s", opt->name,
	         expected[opt->type]);
	return -1;
}

/* ---- [host:NAME] sections ---- */

#define HOST_SECTION "host:"

static struct config_host_access *find_access(struct config *cfg, const char *host)
{
	for (size_t i = 0; i < cfg->component.n_access; i++) {
		if (strcasecmp(cfg->component.access[i].name, host) == 0)
			return &cfg->component.access[i];
	}
	return NULL;
}

/* The entry for a [host:NAME] section, made on its first option. */
static struct config_host_access *section_access(struct parse_state *st, const char *host)
{
	struct config *cfg = st->cfg;
	struct config_host_access *a = find_access(cfg, host);
	if (a != NULL)
		return a;
	if (!valid_domain(host)) {
		snprintf(st->reason, sizeof(st->reason), "[host:%.100s]: invalid host name", host);
		return NULL;
	}
	if (cfg->component.n_access == CONFIG_HOSTS_MAX) {
		snprintf(st->reason, sizeof(st->reason), "more than %d [host:...] sections",
		         CONFIG_HOSTS_MAX);
		return NULL;
	}
	a = &cfg->component.access[cfg->component.n_access];
	if ((a->name = strdup(host)) == NULL) {
		snprintf(st->reason, sizeof(st->reason), "out of memory");
		return NULL;
	}
	cfg->component.n_access++;
	return a;
}

static int set_access(struct parse_state *st, struct config_host_access *a, const char *value)
{
	if (strcmp(value, "admin") != 0 && strcmp(value, "privileged") != 0) {
		snprintf(st->reason, sizeof(st->reason),
		         "[host:%.100s] access must be admin or privileged", a->name);
		return -1;
	}
	a->privileged = strcmp(value, "privileged") == 0;
	return 0;
}

static int set_act_as(struct parse_state *st, struct config_host_access *a, const char *value)
{
	const char *at = strchr(value, '@');
	if (!valid_bare_jid(value) || strcasecmp(at + 1, a->name) != 0) {
		snprintf(st->reason, sizeof(st->reason),
		         "[host:%.60s] act_as must be a bare JID on %.60s, e.g. invitebot@%.60s",
		         a->name, a->name, a->name);
		return -1;
	}
	if (set_string(&a->act_as, value) < 0) {
		snprintf(st->reason, sizeof(st->reason), "out of memory");
		return -1;
	}
	return 0;
}

static int on_host_entry(struct parse_state *st, const char *host, const char *name,
                         const char *value)
{
	struct config_host_access *a = section_access(st, host);
	if (a == NULL)
		return 0;
	bool is_access = strcmp(name, "access") == 0, is_act_as = strcmp(name, "act_as") == 0;
	if (!is_access && !is_act_as) {
		snprintf(st->reason, sizeof(st->reason),
		         "unknown option \"%.60s\" in section [host:%.60s] (known: access, act_as)",
		         name, host);
		return 0;
	}
	if ((is_act_as && a->act_as != NULL) || (is_access && a->access_set)) {
		snprintf(st->reason, sizeof(st->reason), "%s is set twice in [host:%.100s]", name,
		         host);
		return 0;
	}
	a->access_set |= is_access;
	return (is_access ? set_access(st, a, value) : set_act_as(st, a, value)) == 0;
}

static int on_ini_entry(void *userdata, const char *section, const char *name, const char *value)
{
	struct parse_state *st = userdata;
	if (st->reason[0] != '\0')
		return 0; /* report the first error only; ini_parse() returns its line */
	if (strncmp(section, HOST_SECTION, strlen(HOST_SECTION)) == 0)
		return on_host_entry(st, section + strlen(HOST_SECTION), name, value);

	const struct option *opt = find_option(section, name);

	if (opt == NULL && !known_section(section)) {
		snprintf(
		    st->reason, sizeof(st->reason),
		    "unknown section [%.60s] (known: [component], [http], [keys], [host:NAME])",
		    section);
		return 0;
	}
	if (opt == NULL) {
		snprintf(st->reason, sizeof(st->reason),
		         "unknown option \"%.60s\" in section [%.60s]", name, section);
		return 0;
	}
	size_t index = (size_t)(opt - options);
	if (st->seen[index] && opt->type != OPT_HOSTS && opt->type != OPT_JIDS &&
	    opt->type != OPT_NETWORKS) {
		snprintf(st->reason, sizeof(st->reason), "%s is set twice in [%s]", name, section);
		return 0;
	}
	st->seen[index] = true;
	return set_value(st, opt, value) == 0;
}

/* Options that go together: exactly one secret, both TLS files or none. */
static int check_pairs(struct parse_state *st)
{
	const struct config *cfg = st->cfg;
	if (cfg->component.secret == NULL && cfg->component.secret_file == NULL) {
		snprintf(st->reason, sizeof(st->reason),
		         "[component] secret is required (or secret_file, a file holding it)");
		return -1;
	}
	if (cfg->component.secret != NULL && cfg->component.secret_file != NULL) {
		snprintf(st->reason, sizeof(st->reason),
		         "[component] has both secret and secret_file: keep one");
		return -1;
	}
	if ((cfg->http.tls_certificate == NULL) != (cfg->http.tls_key == NULL)) {
		snprintf(st->reason, sizeof(st->reason),
		         "[http] tls_certificate and tls_key go together: set both or neither");
		return -1;
	}
	return 0;
}

static int apply_defaults(struct parse_state *st)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option *opt = &options[i];
		if (st->seen[i] || opt->default_value == OPTIONAL)
			continue;
		if (opt->default_value == NULL) {
			snprintf(st->reason, sizeof(st->reason), "[%s] %s is required",
			         opt->section, opt->name);
			return -1;
		}
		if (set_value(st, opt, opt->default_value) < 0)
			return -1;
	}
	if (check_pairs(st) < 0)
		return -1;
	if (st->cfg->component.n_hosts == 0) {
		snprintf(st->reason, sizeof(st->reason), "[component] hosts lists no host");
		return -1;
	}
	if (st->cfg->keys.database[0] != '/') {
		snprintf(st->reason, sizeof(st->reason),
		         "[keys] database must be an absolute path");
		return -1;
	}
	/* "/invites_api/" and "/invites_api" name the same route. */
	char *path = st->cfg->http.path;
	size_t len = strlen(path);
	if (len > 1 && path[len - 1] == '/')
		path[len - 1] = '\0';
	return 0;
}

/* inih reads lines of at most INI_LINE_MAX - 1 characters and parses the
 * rest as another line (a long secret would be cut): refuse them with a
 * clear reason instead. Returns the first long line's number, 0 if none. */
#define INI_LINE_MAX 200
static int find_long_line(FILE *f)
{
	int line = 1, found = 0;
	size_t len = 0;
	for (int c; (c = getc(f)) != EOF && found == 0;) {
		if (c == '\n') {
			line++;
			len = 0;
		} else if (++len >= INI_LINE_MAX - 1 && c != '\r') {
			found = line;
		}
	}
	rewind(f);
	return found;
}

static FILE *open_config(const char *path, char *err, size_t err_size)
{
	int fd = open_regular(path);
	if (fd == -2) {
		snprintf(err, err_size, "%s is not a regular file", path);
		return NULL;
	}
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (f == NULL) {
		snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	return f;
}

/* The line of the section header [NAME], 0 if not found. */
static int section_line(FILE *f, const char *name)
{
	char line[INI_LINE_MAX + 2];
	int n = 0, found = 0;
	rewind(f);
	while (found == 0 && fgets(line, sizeof(line), f) != NULL) {
		n++;
		const char *s = line + strspn(line, " \t");
		size_t len = strlen(name);
		if (s[0] == '[' && strncmp(s + 1, name, len) == 0 && s[len + 1] == ']')
			found = n;
	}
	return found;
}

/* Each [host:NAME] names a host of [component] hosts, and has act_as exactly
 * when access = privileged. 0, or -1 with err set to "PATH:LINE: ...". */
static int check_host_sections(const struct config *cfg, FILE *f, const char *path, char *err,
                               size_t err_size)
{
	for (size_t i = 0; i < cfg->component.n_access; i++) {
		const struct config_host_access *a = &cfg->component.access[i];
		const char *problem = NULL;
		if (config_host(cfg, a->name) == NULL)
			problem = "is not one of [component] hosts";
		else if (a->privileged && a->act_as == NULL)
			problem = "has access = privileged without act_as (the bare JID privileged "
			          "IQs act as, e.g. invitebot@HOST)";
		else if (!a->privileged && a->act_as != NULL)
			problem = "has act_as, which needs access = privileged";
		if (problem == NULL)
			continue;
		char section[300];
		snprintf(section, sizeof(section), HOST_SECTION "%s", a->name);
		int line = section_line(f, section);
		snprintf(err, err_size, "%s:%d: [host:%s] %s", path, line, a->name, problem);
		return -1;
	}
	return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t err_size)
{
	struct parse_state st = {.cfg = cfg};
	memset(cfg, 0, sizeof(*cfg));

	FILE *f = open_config(path, err, err_size);
	if (f == NULL)
		return -1;
	int long_line = find_long_line(f);
	if (long_line > 0) {
		snprintf(err, err_size, "%s:%d: line too long (at most %d characters)", path,
		         long_line, INI_LINE_MAX - 2);
		fclose(f);
		return -1;
	}
	int line = ini_parse_file(f, on_ini_entry, &st);
	int rc = -1;
	if (line == -2) {
		snprintf(err, err_size, "%s: out of memory", path);
	} else if (line > 0) {
		if (st.reason[0] == '\0')
			snprintf(st.reason, sizeof(st.reason), "syntax error");
		snprintf(err, err_size, "%s:%d: %s", path, line, st.reason);
	} else if (apply_defaults(&st) < 0) {
		snprintf(err, err_size, "%s: %s", path, st.reason);
	} else if (check_host_sections(cfg, f, path, err, err_size) == 0) {
		rc = 0;
	}
	fclose(f);
	if (rc < 0)
		config_finish(cfg);
	return rc;
}

void config_finish(struct config *cfg)
{
	if (cfg->component.secret != NULL)
		explicit_bzero(cfg->component.secret, strlen(cfg->component.secret));
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option *opt = &options[i];
		if (opt->type == OPT_PORT || opt->type == OPT_UINT || opt->type == OPT_HOSTS ||
		    opt->type == OPT_JIDS || opt->type == OPT_NETWORKS)
			continue;
		char **s = field(cfg, opt);
		free(*s);
		*s = NULL;
	}
	for (size_t i = 0; i < cfg->component.n_hosts; i++)
		free(cfg->component.hosts[i]);
	cfg->component.n_hosts = 0;
	for (size_t i = 0; i < cfg->component.n_admins; i++)
		free(cfg->component.admins[i]);
	cfg->component.n_admins = 0;
	for (size_t i = 0; i < cfg->http.n_trusted_proxies; i++)
		free(cfg->http.trusted_proxies[i]);
	cfg->http.n_trusted_proxies = 0;
	for (size_t i = 0; i < cfg->component.n_access; i++) {
		free(cfg->component.access[i].name);
		free(cfg->component.access[i].act_as);
	}
	cfg->component.n_access = 0;
}

const char *config_act_as(const struct config *cfg, const char *host)
{
	const struct config_host_access *a = NULL;
	for (size_t i = 0; a == NULL && i < cfg->component.n_access; i++) {
		if (strcasecmp(cfg->component.access[i].name, host) == 0)
			a = &cfg->component.access[i];
	}
	return a != NULL && a->privileged ? a->act_as : NULL;
}

const char *config_host(const struct config *cfg, const char *host)
{
	for (size_t i = 0; i < cfg->component.n_hosts; i++) {
		if (strcasecmp(cfg->component.hosts[i], host) == 0)
			return cfg->component.hosts[i];
	}
	return NULL;
}

bool config_serves_host(const struct config *cfg, const char *host)
{
	return config_host(cfg, host) != NULL;
}

bool config_is_admin(const struct config *cfg, const char *bare_jid)
{
	return bare_jid != NULL &&
	       is_listed(cfg->component.admins, cfg->component.n_admins, bare_jid);
}
