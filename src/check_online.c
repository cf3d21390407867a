/*
 * check --online: connect to the XMPP server as the component, run the
 * discovery the daemon runs on every connect, print one line per host and,
 * for a host that cannot create account invites, what to change on the
 * server. Bounded: it gives up after CHECK_ONLINE_MS.
 *
 * The component logs what it sees; here the same facts are printed, so its
 * log lines below errors are silenced.
 */

#include "commands.h"
#include "component.h"
#include "log.h"

#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK_ONLINE_MS 10000
/* discovery's own timeout: it ends inside CHECK_ONLINE_MS even for a privileged
 * host, asked up to 3 s after the connect (discovery.c) */
#define CHECK_REQUEST_MS  6000
#define CHECK_POLL_MAX_MS 100

static uint64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool all_discovered(const struct config *cfg, const struct component *comp)
{
	for (size_t i = 0; i < cfg->component.n_hosts; i++) {
		if (!component_host_discovered(comp, cfg->component.hosts[i]))
			return false;
	}
	return true;
}

/* Run comp until every host is discovered, the connection failed, or the
 * deadline: 0 once discovered, -1 otherwise (after saying why). */
static int run_until_discovered(const struct config *cfg, struct component *comp)
{
	uint64_t deadline = clock_ms() + CHECK_ONLINE_MS;

	for (uint64_t now = clock_ms(); now < deadline; now = clock_ms()) {
		if (component_online(comp) && all_discovered(cfg, comp))
			return 0;
		const char *error = component_last_error(comp);
		if (!component_online(comp) && *error) {
			fprintf(stderr, "invites-api: %s\n", error);
			if (strstr(error, "another instance") != NULL)
				fprintf(stderr,
				        "invites-api: check --online connects as the component "
				        "itself: run it while the daemon is stopped\n");
			return -1;
		}
		int fd = component_fd(comp);
		struct pollfd pfd = {
		    .fd = fd, .events = POLLIN | (component_wants_write(comp) ? POLLOUT : 0)};
		int timeout = component_next_timeout(comp);
		if (timeout < 0 || timeout > CHECK_POLL_MAX_MS)
			timeout = CHECK_POLL_MAX_MS;
		poll(&pfd, fd >= 0 ? 1 : 0, timeout);
		component_run(comp);
	}
	if (!component_online(comp)) {
		fprintf(stderr, "invites-api: could not connect to %s:%u within %d s\n",
		        cfg->component.server, cfg->component.port, CHECK_ONLINE_MS / 1000);
		return -1;
	}
	return 0; /* online: the hosts without an answer say so below */
}

/* What to change on the server for a host that offers no account invites. */
static void print_fix(const struct config *cfg, const char *host)
{
	const char *jid = cfg->component.jid;
	const char *act_as = config_act_as(cfg, host);

	if (act_as == NULL) {
		printf("  fix (Prosody): make the component an admin of the host, and load "
		       "mod_invites_adhoc (with mod_adhoc, and mod_disco, which lists the "
		       "commands) there:\n"
		       "    VirtualHost \"%s\"\n"
		       "        admins = { \"%s\" }\n"
		       "  fix (ejabberd): it runs invite commands only for its local JIDs: set\n"
		       "    [host:%s]\n    access = privileged\n    act_as = invitebot@%s\n"
		       "  in this config, then run check --online again for the permissions "
		       "ejabberd must grant\n",
		       host, jid, host, host);
		return;
	}
	printf("  fix (ejabberd): grant the component the IQs it sends as %s, and let %s "
	       "create invites:\n"
	       "    acl:\n"
	       "      invites_component: {server: \"%s\"}\n"
	       "      invites_bot: {user: \"%s\"}\n"
	       "    access_rules:\n"
	       "      invites_component_only: {allow: invites_component}\n"
	       "      create_account_invite: {allow: invites_bot}\n"
	       "    modules:\n"
	       "      mod_invites: {access_create_account: create_account_invite}\n"
	       "      mod_privilege:\n"
	       "        iq:\n"
	       "          \"http://jabber.org/protocol/commands\": {set: invites_component_only}\n"
	       "          \"http://jabber.org/protocol/disco#items\": {get: "
	       "invites_component_only}\n"
	       "  then restart ejabberd or reload its config, and reconnect (permissions are "
	       "fixed when the component connects)\n",
	       act_as, act_as, jid, act_as);
}

/* A privileged host lists its commands through disco#items, but running one
 * needs the commands namespace granted as well (ejabberd drops the IQ
 * otherwise, without an answer). */
static bool commands_granted(const struct config *cfg, const struct component *comp,
                             const char *host)
{
	if (config_act_as(cfg, host) == NULL || component_privileges(comp) == NULL ||
	    component_commands_granted(comp))
		return true;
	printf("  the server did not grant the iq permission http://jabber.org/protocol/commands "
	       "set: commands sent as %s would get no answer\n",
	       config_act_as(cfg, host));
	return false;
}

/* One line per host, and the fix where account invites are not offered.
 * Returns how many hosts cannot create account invites. */
static size_t report_hosts(const struct config *cfg, const struct component *comp)
{
	size_t missing = 0;
	char line[1024];

	for (size_t i = 0; i < cfg->component.n_hosts; i++) {
		const char *host = cfg->component.hosts[i];
		component_host_describe(comp, host, line, sizeof(line));
		printf("%s\n", line);
		if (component_host_offers(comp, host, INVITE_ACCOUNT) == COMPONENT_OFFER_YES &&
		    commands_granted(cfg, comp, host))
			continue;
		missing++;
		/* Prosody routes a host it does not serve to s2s: the admins fix
		 * would not help (not-allowed "Communication with remote domains is
		 * not enabled", remote-server-not-found, remote-server-timeout). */
		if (component_host_offers(comp, host, INVITE_ACCOUNT) == COMPONENT_OFFER_UNKNOWN &&
		    strstr(line, "remote") != NULL)
			printf("  the server treats %s as a remote domain: if it should be one of "
			       "its own, check [component] hosts against the server's VirtualHost "
			       "names\n",
			       host);
		print_fix(cfg, host);
	}
	return missing;
}

int check_online(const struct config *cfg)
{
	struct component_host hosts[CONFIG_HOSTS_MAX];
	const char *errstr = NULL;
	char err[PATH_MAX * 2 + 256];
	char *secret = NULL;

	if (config_secret(cfg, &secret, err, sizeof(err)) < 0) {
		fprintf(stderr, "invites-api: %s\n", err);
		return EXIT_FAILURE;
	}
	for (size_t i = 0; i < cfg->component.n_hosts; i++)
		hosts[i] = (struct component_host){cfg->component.hosts[i],
		                                   config_act_as(cfg, cfg->component.hosts[i])};
	unsigned timeout_ms = cfg->component.request_timeout_s * 1000;
	struct component_config ccfg = {
	    .jid = cfg->component.jid,
	    .secret = secret,
	    .server = cfg->component.server,
	    .port = cfg->component.port,
	    .request_timeout_ms = timeout_ms < CHECK_REQUEST_MS ? timeout_ms : CHECK_REQUEST_MS,
	    .hosts = hosts,
	    .n_hosts = cfg->component.n_hosts,
	};
	log_set_level(LOG_ERROR);
	struct component *comp = component_create(&ccfg, &errstr);
	config_secret_free(secret);
	if (comp == NULL || component_start(comp) < 0) {
		fprintf(stderr, "invites-api: component: %s\n",
		        errstr ? errstr : "cannot start the XMPP connection");
		component_destroy(comp);
		return EXIT_FAILURE;
	}
	int status = EXIT_FAILURE;
	if (run_until_discovered(cfg, comp) == 0) {
		printf("connected to %s:%u as component %s\n", cfg->component.server,
		       cfg->component.port, cfg->component.jid);
		if (component_privileges(comp) != NULL)
			printf("privileges granted (XEP-0356) by %s\n", component_privileges(comp));
		status = report_hosts(cfg, comp) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	}
	component_destroy(comp);
	return fflush(stdout) == 0 ? status : EXIT_FAILURE;
}
