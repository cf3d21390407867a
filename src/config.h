#ifndef INVITES_CONFIG_H
#define INVITES_CONFIG_H

/*
 * component.cfg: an INI file parsed with inih. Every option has a default
 * except [component] jid, secret and hosts. Errors name the file and line.
 */

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_DEFAULT_PATH "/etc/invites-api/component.cfg"
#define CONFIG_HOSTS_MAX    64
#define CONFIG_ADMINS_MAX   64
#define CONFIG_PROXIES_MAX  64

struct config {
	struct {
		char *jid;
		char *secret;
		char *server;
		unsigned short port;
		char *hosts[CONFIG_HOSTS_MAX];
		size_t n_hosts;
		char *admins[CONFIG_ADMINS_MAX]; /* bare JIDs that may manage keys over XMPP */
		size_t n_admins;
		unsigned request_timeout_s;
		unsigned max_pending; /* requests waiting for the server at once */
	} component;
	struct {
		char *bind;
		unsigned short port;
		char *path;
		char *cors_origin;
		unsigned max_connections;
		unsigned connection_timeout_s;
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

/* Free everything config_load() allocated. Safe on a zeroed struct. */
void config_finish(struct config *cfg);

/* The entry of [component] hosts equal to host (case-insensitive), as the
 * config spells it; NULL if the component does not serve host. Borrowed. */
const char *config_host(const struct config *cfg, const char *host);

/* True if host is one of [component] hosts (case-insensitive). */
bool config_serves_host(const struct config *cfg, const char *host);

/* True if bare_jid is one of [component] admins (ASCII case-insensitive). */
bool config_is_admin(const struct config *cfg, const char *bare_jid);

#endif
