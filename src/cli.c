/* The key management subcommands: check, create, list, delete, import. */

#include "commands.h"
#include "duration.h"
#include "http.h"
#include "import.h"
#include "keys.h"

#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SECONDS_PER_DAY 86400
#define UNNAMED         "<unknown>" /* what prosodyctl mod_invites_api list shows */

/*
 * Whether only root can change what the directory path (absolute) names:
 * every directory from / down, as written, is a directory (no link) and
 * root's; the last writable by root alone, those above it too or sticky (as
 * /tmp: others may add names there but not move root's). Then root may open
 * the store there itself. On false, *where is the first that is not
 * (malloc'd; NULL when out of memory).
 */
static bool only_root_changes(const char *path, char **where)
{
	char *walk = strdup(path);
	*where = NULL;
	if (walk == NULL)
		return false;
	size_t len = strlen(walk);
	bool ok = true;
	/* At each '/' and at the end: "/", "/a", "/a/b", ..., path. */
	for (size_t i = 0; i <= len && ok; i++) {
		if ((i < len && walk[i] != '/') || (i > 0 && walk[i - 1] == '/'))
			continue;
		/* The store's own directory: nothing but slashes after this one. */
		bool last = i == len || walk[i + strspn(walk + i, "/")] == '\0';
		size_t cut = i == 0 ? 1 : i;
		char keep = walk[cut];
		walk[cut] = '\0';
		struct stat st;
		ok = lstat(walk, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0 &&
		     ((st.st_mode & (S_IWGRP | S_IWOTH)) == 0 || (!last && (st.st_mode & S_ISVTX)));
		if (!ok)
			*where = strdup(walk);
		walk[cut] = keep;
	}
	free(walk);
	return ok;
}

/*
 * A key command run as root works as the owner of the key store's directory
 * (the service user, as installed), the way prosodyctl switches to prosody.
 * As root it would follow whatever that user put at the store's names (a link
 * to a file anywhere, which SQLite then writes; a hard link at -wal or -shm,
 * which SQLite run as root gives to the database's owner), and a store it made
 * would be root's, which the service cannot open. It stays root only where no
 * one else can change the path to the store; anywhere else it refuses, and the
 * command is to be run as the store's owner. 0, or -1 with the reason on
 * stderr.
 */
static int become_store_owner(const struct config *cfg)
{
	if (geteuid() != 0)
		return 0;
	char *copy = strdup(cfg->keys.database);
	if (copy == NULL) {
		fprintf(stderr, "invites-api: out of memory\n");
		return -1;
	}
	const char *dir_path = dirname(copy);
	struct stat dir;
	if (stat(dir_path, &dir) < 0) {
		/* Not on as root: another user might make it meanwhile, full of links. */
		if (errno == ENOENT)
			fprintf(stderr, "invites-api: key store %s: directory %s does not exist\n",
			        cfg->keys.database, dir_path);
		else
			fprintf(stderr, "invites-api: key store %s: %s: %s\n", cfg->keys.database,
			        dir_path, strerror(errno));
		free(copy);
		return -1;
	}
	if (dir.st_uid == 0) {
		char *where = NULL;
		bool safe = only_root_changes(dir_path, &where);
		if (!safe)
			fprintf(
			    stderr,
			    "invites-api: %s can be changed by another user than root: run this as "
			    "the user the key store belongs to (runuser -u USER -- invites-api "
			    "...)\n",
			    where != NULL ? where : dir_path);
		free(where);
		free(copy);
		return safe ? 0 : -1;
	}
	free(copy);
	const struct passwd *pw = getpwuid(dir.st_uid);
	char who[64];
	if (pw != NULL)
		snprintf(who, sizeof who, "user %s", pw->pw_name);
	else
		snprintf(who, sizeof who, "uid %lu", (unsigned long)dir.st_uid);
	gid_t gid = pw != NULL ? pw->pw_gid : dir.st_gid;
	if (gid == 0) {
		fprintf(
		    stderr,
		    "invites-api: the key store's directory belongs to %s, whose group is root's: "
		    "run this as that user\n",
		    who);
		return -1;
	}
	/* Prosody's tokens (import) are in memory: no core dump once the service
	 * user may signal this process. */
	struct rlimit no_core = {0, 0};
	if (setrlimit(RLIMIT_CORE, &no_core) != 0 ||
	    (pw != NULL ? initgroups(pw->pw_name, gid) : setgroups(1, &gid)) != 0 ||
	    setresgid(gid, gid, gid) != 0 || setresuid(dir.st_uid, dir.st_uid, dir.st_uid) != 0) {
		fprintf(
		    stderr,
		    "invites-api: cannot switch to %s, the owner of the key store's directory: %s "
		    "(run this as that user)\n",
		    who, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The key commands do not need the component secret (they never read
 * secret_file), and refusing to revoke a key because of a file mode would
 * fail exactly when it matters: they only warn about exposed files, which
 * serve and check refuse.
 */
static struct keystore *open_store(const struct config *cfg, const char *cfg_path)
{
	const char *errstr = NULL;
	char err[PATH_MAX + 256];
	if (become_store_owner(cfg) < 0)
		return NULL;
	if (config_check_files(cfg, cfg_path, err, sizeof(err)) < 0)
		fprintf(stderr, "invites-api: warning: %s\n", err);
	if (keys_init() < 0) {
		fprintf(stderr, "invites-api: cannot initialise libsodium\n");
		return NULL;
	}
	struct keystore *store = keystore_open(cfg->keys.database, &errstr);
	if (store == NULL)
		fprintf(stderr, "invites-api: %s\n", errstr);
	return store;
}

const char *cli_shown(char dst[CLI_SHOWN_MAX], const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (; *src != '\0'; src++) {
		unsigned char c = (unsigned char)*src;
		bool plain = c >= 0x20 && c < 0x7f;
		if (n + (plain ? 1 : 4) > CLI_SHOWN_MAX - 4) {
			memcpy(dst + n, "...", 3);
			n += 3;
			break;
		}
		if (plain) {
			dst[n++] = (char)c;
			continue;
		}
		dst[n++] = '\\';
		dst[n++] = 'x';
		dst[n++] = hex[c >> 4];
		dst[n++] = hex[c & 0xF];
	}
	dst[n] = '\0';
	return dst;
}

/* The host as [component] hosts spells it, or NULL after telling the user. */
static const char *served_host(const struct config *cfg, const char *cfg_path, const char *host)
{
	const char *canonical = config_host(cfg, host);
	char shown[CLI_SHOWN_MAX], shown_path[CLI_SHOWN_MAX];
	if (canonical == NULL)
		fprintf(stderr,
		        "invites-api: host \"%s\" is not served by this component "
		        "(not in [component] hosts of %s)\n",
		        cli_shown(shown, host), cli_shown(shown_path, cfg_path));
	return canonical;
}

/* stdout may be a closed pipe or a full disk: a key the user never saw must
 * not stay valid, so every write is checked. */
static int flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("invites-api: cannot write to standard output");
		return -1;
	}
	return 0;
}

/* The key store is created on first use: its directory must exist. */
static int check_database_dir(const struct config *cfg)
{
	char *copy = strdup(cfg->keys.database);
	if (copy == NULL)
		return -1;
	const char *dir = dirname(copy);
	int rc = access(dir, W_OK | X_OK);
	if (rc < 0)
		fprintf(stderr,
		        "invites-api: [keys] database: directory %s: %s (create it, owned by "
		        "the user the service runs as)\n",
		        dir, strerror(errno));
	free(copy);
	if (rc < 0)
		return rc;
	/* A key command run as root before the service user made the files
	 * root's: check passes for that user only if it can open them. */
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		char path[PATH_MAX];
		int n = snprintf(path, sizeof path, "%s%s", cfg->keys.database, suffixes[i]);
		if (n < 0 || (size_t)n >= sizeof path || access(path, F_OK) < 0)
			continue;
		if (access(path, R_OK | W_OK) < 0) {
			int why = errno;
			/* run as the service user, as the README says: name it */
			const struct passwd *pw = geteuid() != 0 ? getpwuid(geteuid()) : NULL;
			fprintf(stderr,
			        "invites-api: [keys] database: %s: %s (it must belong to the user "
			        "the service runs as: chown %s: %s*)\n",
			        path, strerror(why), pw != NULL ? pw->pw_name : "USER",
			        cfg->keys.database);
			return -1;
		}
	}
	return 0;
}

/* Mistakes a config check can spot without connecting. Never prints the secret. */
static void warn_about_secret(const char *secret)
{
	size_t len = strlen(secret);
	if (len >= 2 && (secret[0] == '"' || secret[0] == '\'') && secret[len - 1] == secret[0])
		fprintf(stderr, "invites-api: warning: [component] secret is in quotes; the quotes "
		                "count as part of it (Prosody's component_secret does not include "
		                "them)\n");
	if (strcmp(secret, "change-me") == 0)
		fprintf(stderr, "invites-api: warning: [component] secret is still the sample's "
		                "placeholder\n");
	else if (len < 16)
		fprintf(stderr,
		        "invites-api: warning: [component] secret is short (%zu characters); "
		        "use a long random one\n",
		        len);
}

/* Load the certificate and key as serve would; say what was found. */
static int check_tls(const struct config *cfg)
{
	char err[PATH_MAX * 2 + 256];
	if (cfg->http.tls_certificate == NULL)
		return 0;
	struct http_api_tls *tls =
	    http_api_tls_load(cfg->http.tls_certificate, cfg->http.tls_key, err, sizeof(err));
	if (tls == NULL) {
		fprintf(stderr, "invites-api: HTTPS: %s\n", err);
		return -1;
	}
	time_t expires = http_api_tls_expires(tls);
	if (expires != (time_t)-1 && expires < time(NULL))
		fprintf(stderr, "invites-api: warning: the certificate in %s has expired\n",
		        cfg->http.tls_certificate);
	printf("HTTPS certificate: %s\n", http_api_tls_describe(tls));
	http_api_tls_free(tls);
	return 0;
}

int cmd_check(const struct config *cfg, const char *cfg_path, const struct command_options *opts,
              int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char err[PATH_MAX * 2 + 256];
	char *secret = NULL;
	if (config_check_files(cfg, cfg_path, err, sizeof(err)) < 0 ||
	    config_secret(cfg, &secret, err, sizeof(err)) < 0) {
		fprintf(stderr, "invites-api: %s\n", err);
		return EXIT_FAILURE;
	}
	warn_about_secret(secret);
	config_secret_free(secret);
	if (check_database_dir(cfg) < 0 || check_tls(cfg) < 0)
		return EXIT_FAILURE;
	printf("%s: configuration OK (component %s, %zu host%s, HTTP%s %s port %u)\n", cfg_path,
	       cfg->component.jid, cfg->component.n_hosts, cfg->component.n_hosts == 1 ? "" : "s",
	       cfg->http.tls_certificate != NULL ? "S" : "", cfg->http.bind, cfg->http.port);
	if (flush_stdout() != 0)
		return EXIT_FAILURE;
	return opts->online ? check_online(cfg) : EXIT_SUCCESS;
}

/* ---- create ---- */

/* A whole number of invites, 1..UINT_MAX, digits only; len bytes of text. */
static int parse_count(const char *text, size_t len, unsigned *count)
{
	unsigned long long value = 0;
	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -1;
		value = value * 10 + (unsigned)(text[i] - '0');
	}
	if (value == 0 || value > UINT_MAX)
		return -1;
	*count = (unsigned)value;
	return 0;
}

/* --limit N/DURATION, or --max-per-day N. 0, or -1 after telling the user. */
static int parse_rate(const struct command_options *opts, struct api_key_limits *limits)
{
	const char *option = opts->limit != NULL ? "--limit" : "--max-per-day";
	const char *text = opts->limit != NULL ? opts->limit : opts->max_per_day;
	const char *slash = opts->limit != NULL ? strchr(text, '/') : NULL;
	size_t count_len = slash != NULL ? (size_t)(slash - text) : strlen(text);
	const char *errstr = NULL;
	int64_t period = SECONDS_PER_DAY;

	if (opts->limit != NULL && slash == NULL) {
		fprintf(stderr, "invites-api: --limit takes N/DURATION, e.g. 20/1d\n");
		return -1;
	}
	if (parse_count(text, count_len, &limits->max_invites) < 0) {
		fprintf(stderr, "invites-api: %s: the number of invites must be 1 to %u\n", option,
		        UINT_MAX);
		return -1;
	}
	if (slash != NULL && duration_parse(slash + 1, &period, &errstr) < 0) {
		fprintf(stderr, "invites-api: --limit: %s\n", errstr);
		return -1;
	}
	limits->period_s = (unsigned)period; /* DURATION_MAX fits */
	return 0;
}

static int parse_limits(const struct command_options *opts, int64_t now,
                        struct api_key_limits *limits)
{
	*limits = (struct api_key_limits){0};
	if (opts->limit != NULL && opts->max_per_day != NULL) {
		fprintf(stderr, "invites-api: give --limit or --max-per-day, not both\n");
		return -1;
	}
	if ((opts->limit != NULL || opts->max_per_day != NULL) && parse_rate(opts, limits) < 0)
		return -1;
	if (opts->expires != NULL) {
		int64_t lifetime;
		const char *errstr = NULL;
		if (duration_parse(opts->expires, &lifetime, &errstr) < 0) {
			fprintf(stderr, "invites-api: --expires: %s\n", errstr);
			return -1;
		}
		limits->expires = now + lifetime;
	}
	return 0;
}

/* --allow LIST: exactly what the key may make. Absent: account invites. */
static int parse_allow(const struct command_options *opts, struct api_key_limits *limits)
{
	const char *bad = NULL;
	char shown[CLI_SHOWN_MAX];
	if (opts->allow == NULL) {
		limits->allow = KEYS_ALLOW_ACCOUNT;
		return 0;
	}
	if (keys_allow_parse(opts->allow, &limits->allow, &bad) == 0)
		return 0;
	char name[64];
	snprintf(name, sizeof name, "%.*s", (int)strcspn(bad, ","), bad);
	fprintf(stderr,
	        "invites-api: --allow: %s%s%s: give account, reset or both, separated by a comma "
	        "(--allow account,reset)\n",
	        name[0] != '\0' ? "unknown permission \"" : "empty permission",
	        name[0] != '\0' ? cli_shown(shown, name) : "", name[0] != '\0' ? "\"" : "");
	return -1;
}

int cmd_create(const struct config *cfg, const char *cfg_path, const struct command_options *opts,
               int argc, char **argv)
{
	(void)argc;
	struct api_key_limits limits;
	if (parse_limits(opts, (int64_t)time(NULL), &limits) < 0 || parse_allow(opts, &limits) < 0)
		return EXIT_USAGE;
	const char *host = served_host(cfg, cfg_path, argv[0]);
	if (host == NULL)
		return EXIT_FAILURE;
	struct keystore *store = open_store(cfg, cfg_path);
	if (store == NULL)
		return EXIT_FAILURE;

	int status = EXIT_FAILURE;
	struct api_key_new key;
	const char *errstr = NULL;
	if (keystore_create(store, host, argv[1], &limits, &key, &errstr) != KEYS_OK) {
		fprintf(stderr, "invites-api: cannot create key: %s\n", errstr);
		goto out;
	}
	/* Only now, with the key committed, is it shown. */
	printf("%s\n", key.text);
	if (flush_stdout() < 0) {
		if (keystore_delete(store, host, key.id, &errstr) != KEYS_OK)
			fprintf(stderr, "invites-api: the unseen key %s could not be revoked: %s\n",
			        key.id, errstr);
		goto out;
	}
	status = EXIT_SUCCESS;
out:
	keys_wipe(&key);
	keystore_close(store);
	return status;
}

/* ---- list ---- */

#define TIME_SIZE  32
#define LIMIT_SIZE 40

/* ISO-8601 in UTC, "2026-01-01T00:00:00Z". */
static char *format_time(int64_t t, char buf[TIME_SIZE])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, TIME_SIZE, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, TIME_SIZE, "%lld", (long long)t);
	return buf;
}

struct listing {
	int64_t now;
	json_t *keys; /* with --json */
	bool out_of_memory;
};

/* ID, NAME first, as before: scripts cut the first two columns. */
static int print_key(void *userdata, const struct api_key_info *key)
{
	const struct listing *listing = userdata;
	char created[TIME_SIZE], expires[TIME_SIZE], last_used[TIME_SIZE], limit[LIMIT_SIZE];
	char period[24], allow[32];
	if (key->limits.max_invites > 0)
		snprintf(limit, sizeof limit, "%u/%s", key->limits.max_invites,
		         duration_format(key->limits.period_s, period, sizeof period));
	else
		snprintf(limit, sizeof limit, "none");
	return printf("%s\t%s\t%s\t%s%s\t%s\t%llu\t%s\t%s\n", key->id, key->name,
	              format_time(key->created, created),
	              key->limits.expires != 0 ? format_time(key->limits.expires, expires)
	                                       : "never",
	              keys_expired(&key->limits, listing->now) ? " (expired)" : "",
	              key->last_used != 0 ? format_time(key->last_used, last_used) : "never",
	              (unsigned long long)key->invites, limit,
	              keys_allow_format(key->limits.allow, allow, sizeof allow)) < 0;
}

/* ["account", "reset"]; NULL when out of memory. */
static json_t *allow_json(unsigned allow)
{
	json_t *names = json_array();
	for (unsigned bit = 1; names != NULL && bit <= KEYS_ALLOW_ALL; bit <<= 1) {
		if ((allow & bit) != 0 &&
		    json_array_append_new(names, json_string(keys_allow_name(bit))) < 0) {
			json_decref(names);
			names = NULL;
		}
	}
	return names;
}

static json_t *key_json(const struct api_key_info *key, int64_t now)
{
	char created[TIME_SIZE], expires[TIME_SIZE], last_used[TIME_SIZE];
	json_t *object = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s?, s:b, s:s?, s:I}", "id", key->id, "name", key->name, "host",
	    key->host, "created", format_time(key->created, created), "expires",
	    key->limits.expires != 0 ? format_time(key->limits.expires, expires) : NULL, "expired",
	    keys_expired(&key->limits, now), "last_used",
	    key->last_used != 0 ? format_time(key->last_used, last_used) : NULL, "invites",
	    (json_int_t)key->invites);
	if (object == NULL)
		return NULL;
	bool limited = key->limits.max_invites > 0;
	if (json_object_set_new(object, "allow", allow_json(key->limits.allow)) < 0 ||
	    json_object_set_new(object, "max_invites",
	                        limited ? json_integer(key->limits.max_invites) : json_null()) <
	        0 ||
	    json_object_set_new(object, "period",
	                        limited ? json_integer(key->limits.period_s) : json_null()) < 0) {
		json_decref(object);
		return NULL;
	}
	return object;
}

static int add_key_json(void *userdata, const struct api_key_info *key)
{
	struct listing *listing = userdata;
	if (json_array_append_new(listing->keys, key_json(key, listing->now)) < 0)
		listing->out_of_memory = true;
	return listing->out_of_memory;
}

static int print_json(json_t *keys)
{
	if (json_dumpf(keys, stdout, JSON_INDENT(2)) < 0 || putchar('\n') == EOF) {
		fprintf(stderr, "invites-api: cannot write the JSON listing\n");
		return -1;
	}
	return 0;
}

int cmd_list(const struct config *cfg, const char *cfg_path, const struct command_options *opts,
             int argc, char **argv)
{
	(void)argc;
	const char *host = served_host(cfg, cfg_path, argv[0]);
	if (host == NULL)
		return EXIT_FAILURE;
	struct listing listing = {.now = (int64_t)time(NULL)};
	if (opts->json && (listing.keys = json_array()) == NULL) {
		fprintf(stderr, "invites-api: out of memory\n");
		return EXIT_FAILURE;
	}
	struct keystore *store = open_store(cfg, cfg_path);
	if (store == NULL) {
		json_decref(listing.keys);
		return EXIT_FAILURE;
	}

	const char *errstr = NULL;
	int status = EXIT_FAILURE;
	if (keystore_list(store, host, opts->json ? add_key_json : print_key, &listing, &errstr) !=
	    KEYS_OK)
		fprintf(stderr, "invites-api: cannot list keys: %s\n", errstr);
	else if (listing.out_of_memory)
		fprintf(stderr, "invites-api: out of memory\n");
	else if ((!opts->json || print_json(listing.keys) == 0) && flush_stdout() == 0)
		status = EXIT_SUCCESS;
	json_decref(listing.keys);
	keystore_close(store);
	return status;
}

/* ---- delete ---- */

int cmd_delete(const struct config *cfg, const char *cfg_path, const struct command_options *opts,
               int argc, char **argv)
{
	(void)opts;
	(void)argc;
	const char *host = served_host(cfg, cfg_path, argv[0]);
	if (host == NULL)
		return EXIT_FAILURE;
	const char *id = argv[1];
	if (strchr(id, '/') != NULL) {
		/* Someone pasted the whole ID/SECRET: never echo it back. */
		fprintf(stderr, "invites-api: give the key ID, not ID/SECRET (the ID is the part "
		                "before the '/')\n");
		return EXIT_FAILURE;
	}
	struct keystore *store = open_store(cfg, cfg_path);
	if (store == NULL)
		return EXIT_FAILURE;

	const char *errstr = NULL;
	int status = EXIT_FAILURE;
	switch (keystore_delete(store, host, id, &errstr)) {
	case KEYS_OK:
		printf("deleted key %s of %s\n", id, host);
		status = flush_stdout() == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
		break;
	case KEYS_NOT_FOUND:
		/* Not echoed: a pasted secret alone looks like an ID. */
		fprintf(stderr,
		        "invites-api: no key with that ID for host %s (see: invites-api list %s)\n",
		        host, host);
		break;
	default:
		fprintf(stderr, "invites-api: cannot delete key: %s\n", errstr);
		break;
	}
	keystore_close(store);
	return status;
}

/* ---- import ---- */

struct import_run {
	struct keystore *store;
	const char *host;
	unsigned imported, skipped;
	bool failed; /* the key store failed: stop */
};

/* The ID if it is safe to print (a key ID is [A-Za-z0-9_-]), else a stand-in:
 * whatever the file holds must not reach the terminal raw. */
static const char *shown_id(const char *id)
{
	size_t len = id != NULL ? strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                                     "0123456789_-")
	                        : 0;
	return len > 0 && len <= KEYS_ID_MAX && id[len] == '\0' ? id : "(unusable ID)";
}

static void skip(struct import_run *run, const char *id, const char *reason)
{
	printf("skipped %s: %s\n", shown_id(id), reason);
	run->skipped++;
}

static int import_key(void *userdata, const struct prosody_key *key)
{
	struct import_run *run = userdata;
	const char *name = key->name != NULL ? key->name : UNNAMED;
	const char *errstr = NULL;
	if (key->problem != NULL) {
		skip(run, key->id, key->problem);
		return 0;
	}
	switch (keystore_import(run->store, run->host, key->id, key->token, name, key->created,
	                        &errstr)) {
	case KEYS_OK:
		printf("imported %s %s\n", key->id, name); /* the store checked both */
		run->imported++;
		return 0;
	case KEYS_EXISTS:
		skip(run, key->id, "already imported");
		return 0;
	case KEYS_INVALID:
		skip(run, key->id, errstr);
		return 0;
	default:
		fprintf(stderr, "invites-api: cannot import %s: %s\n", shown_id(key->id), errstr);
		run->failed = true;
		return 1;
	}
}

/* The entries of Prosody's data, copied: they are read (as root, usually)
 * before the key store is opened (as its directory's owner). */
struct import_entry {
	char *id, *token, *name;
	int64_t created;
	const char *problem;
};

struct import_list {
	struct import_entry *entries;
	size_t n, cap;
	bool out_of_memory;
};

static bool dup_field(char **dst, const char *src)
{
	*dst = src != NULL ? strdup(src) : NULL;
	return src == NULL || *dst != NULL;
}

static int collect_key(void *userdata, const struct prosody_key *key)
{
	struct import_list *list = userdata;
	if (list->n == list->cap) {
		size_t cap = list->cap != 0 ? list->cap * 2 : 16;
		struct import_entry *grown = realloc(list->entries, cap * sizeof *grown);
		if (grown == NULL) {
			list->out_of_memory = true;
			return 1;
		}
		list->entries = grown;
		list->cap = cap;
	}
	struct import_entry *e = &list->entries[list->n++];
	*e = (struct import_entry){.created = key->created, .problem = key->problem};
	if (!dup_field(&e->id, key->id) || !dup_field(&e->token, key->token) ||
	    !dup_field(&e->name, key->name)) {
		list->out_of_memory = true;
		return 1;
	}
	return 0;
}

static void free_entries(struct import_list *list)
{
	for (size_t i = 0; i < list->n; i++) {
		struct import_entry *e = &list->entries[i];
		if (e->token != NULL)
			explicit_bzero(e->token, strlen(e->token));
		free(e->id);
		free(e->token);
		free(e->name);
	}
	free(list->entries);
}

int cmd_import(const struct config *cfg, const char *cfg_path, const struct command_options *opts,
               int argc, char **argv)
{
	(void)opts;
	(void)argc;
	const char *host = served_host(cfg, cfg_path, argv[0]);
	if (host == NULL)
		return EXIT_FAILURE;
	struct import_source source;
	char err[PATH_MAX + 256];
	char shown[CLI_SHOWN_MAX];
	if (import_find(argv[1], host, &source, err, sizeof err) < 0) {
		fprintf(stderr, "invites-api: cannot import: %s\n", cli_shown(shown, err));
		return EXIT_FAILURE;
	}
	/* All of it read first: a file that cannot be read to the end imports
	 * nothing. */
	struct import_list list = {0};
	int found = import_read(&source, host, collect_key, &list, err, sizeof err);
	if (list.out_of_memory) {
		fprintf(stderr, "invites-api: cannot import: out of memory\n");
		free_entries(&list);
		return EXIT_FAILURE;
	}
	if (found < 0) {
		fprintf(stderr, "invites-api: cannot import: %s\n", cli_shown(shown, err));
		free_entries(&list);
		return EXIT_FAILURE;
	}
	struct import_run run = {.host = host};
	run.store = open_store(cfg, cfg_path);
	if (run.store == NULL) {
		free_entries(&list);
		return EXIT_FAILURE;
	}
	for (size_t i = 0; i < list.n && !run.failed; i++) {
		const struct import_entry *e = &list.entries[i];
		const struct prosody_key key = {.id = e->id,
		                                .token = e->token,
		                                .name = e->name,
		                                .created = e->created,
		                                .problem = e->problem};
		import_key(&run, &key);
	}
	free_entries(&list);

	int status = EXIT_FAILURE;
	if (!run.failed)
		printf("%u imported, %u skipped, from %s %s\n", run.imported, run.skipped,
		       source.kind == IMPORT_SQL ? "Prosody SQL database"
		                                 : "Prosody internal storage",
		       cli_shown(shown, source.path));
	if (flush_stdout() == 0 && !run.failed)
		status = EXIT_SUCCESS;
	keystore_close(run.store);
	return status;
}
