#ifndef INVITES_CONFIG_H
#define INVITES_CONFIG_H

/*
 * component.cfg: an INI file parsed with inih. Every option has a default
 * except [component] jid, secret (or secret_file) and hosts; tls_certificate
 * and tls_key are unset by default. Each host may have a [host:NAME] section
 * choosing how the component reaches it (access = admin, the default, or
 * privileged with act_as). Errors name the file and line.
 */

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_DEFAULT_PATH "/etc/invites-api/component.cfg"
#define CONFIG_HOSTS_MAX    64
#define CONFIG_ADMINS_MAX   64
#define CONFIG_PROXIES_MAX  64

/* A [host:NAME] section. */
struct config_host_access {
	char *name;      /* NAME, as the section spells it */
	bool privileged; /* access = privileged (XEP-0356); false: admin */
	char *act_as;    /* privileged: the bare JID, on NAME, privileged IQs act as */
	bool access_set; /* config.c's own: access was given */
};

struct config {
	struct {
		char *jid;
		char *secret;      /* NULL when secret_file is set: see config_secret() */
		char *secret_file; /* exactly one of secret, secret_file */
		char *server;
		unsigned short port;
		char *hosts[CONFIG_HOSTS_MAX];
		size_t n_hosts;
		char *admins[CONFIG_ADMINS_MAX]; /* bare JIDs that may manage keys over XMPP */
		size_t n_admins;
		unsigned request_timeout_s;
		unsigned max_pending; /* requests waiting for the server at once */
		struct config_host_access access[CONFIG_HOSTS_MAX]; /* [host:NAME] sections */
		size_t n_access;
	} component;
	struct {
		char *bind;
		unsigned short port;
		char *path;
		char *cors_origin;
		unsigned max_connections;
		unsigned connection_timeout_s;
		char *tls_certificate; /* PEM chain; both or neither: NULL is plain HTTP */
		char *tls_key;
		unsigned request_deadline_s;
		unsigned max_connections_per_ip;
		unsigned auth_failure_burst;               /* 0: no throttling */
		unsigned auth_failure_rate;                /* per minute */
		char *trusted_proxies[CONFIG_PROXIES_MAX]; /* addresses or CIDR prefixes */
		size_t n_trusted_proxies;
	} http;
	struct {
		char *database;
	} keys;
};

/* Parse path into *cfg (caller-owned; free with config_finish()). On failure
 * returns -1 with a one-line message "PATH:LINE: reason" (or "PATH: reason")
 * in err, and *cfg holds nothing to free beyond what config_finish() frees. */
int config_load(struct config *cfg, const char *path, char *err, size_t err_size);

/* The component secret: [component] secret, or the first line of
 * secret_file (without its newline; an empty file is refused). Never puts
 * the secret in err. 0 with *secret malloc'd (free with
 * config_secret_free(), which wipes it), or -1 with a one-line reason. */
int config_secret(const struct config *cfg, char **secret, char *err, size_t err_size);
void config_secret_free(char *secret);

/* Refuse a file holding a secret (what names it in the message) that others
 * can read or anyone but its owner can change. Group-readable is accepted
 * only for a group this process is in (a group made for the service, e.g.
 * root:invites-api 0640, or Debian's ssl-cert for keys), and so are POSIX
 * ACL entries: only for this process's user and groups. It must be a regular
 * file. 0, or -1 with a reason that says how to fix it (chmod 600 FILE). */
int config_check_private(const char *path, const char *what, char *err, size_t err_size);

/* config_check_private() on the config file, secret_file and tls_key. */
int config_check_files(const struct config *cfg, const char *cfg_path, char *err, size_t err_size);

/* Free everything config_load() allocated. Safe on a zeroed struct. */
void config_finish(struct config *cfg);

/* The entry of [component] hosts equal to host (case-insensitive), as the
 * config spells it; NULL if the component does not serve host. Borrowed. */
const char *config_host(const struct config *cfg, const char *host);

/* The bare JID privileged IQs to host act as, or NULL when the component is
 * host's admin (access = admin, or no [host:NAME] section). Borrowed. */
const char *config_act_as(const struct config *cfg, const char *host);

/* True if host is one of [component] hosts (case-insensitive). */
bool config_serves_host(const struct config *cfg, const char *host);

/* True if bare_jid is one of [component] admins (ASCII case-insensitive). */
bool config_is_admin(const struct config *cfg, const char *bare_jid);

#endif
