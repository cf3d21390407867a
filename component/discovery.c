/*
 * Discovery: after every connect, disco#items on the commands node of every
 * host, sent the way the commands will be (directly, or privileged), to learn
 * which invite commands each host offers us; and the server's XEP-0356
 * privilege message, which says what privileged IQs may carry.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "component-internal.h"
#include "log.h"

#define PRIVILEGE_WAIT_MS 3000 /* see discovery_start() */

static void describe_host(const struct host_state *hs, char *buf, size_t size)
{
	if (!hs->discovered)
		snprintf(buf, size, "%s: commands unknown (no answer yet)", hs->name);
	else if (hs->offers[INVITE_ACCOUNT] == COMPONENT_OFFER_UNKNOWN)
		snprintf(buf, size, "%s: commands unknown (%s)", hs->name, hs->reason);
	else
		snprintf(buf, size, "%s: %s %s, %s %s", hs->name, invite_what(INVITE_ACCOUNT),
		         hs->offers[INVITE_ACCOUNT] == COMPONENT_OFFER_YES ? "yes" : "no",
		         invite_what(INVITE_RESET),
		         hs->offers[INVITE_RESET] == COMPONENT_OFFER_YES ? "yes" : "no");
}

/* Record what discovery found (or why it failed) and log it, one line. */
void discovery_finish(struct adhoc_request *req, const struct discovery_reply *reply, bool outcome)
{
	struct host_state *hs = &req->comp->hosts[req->host_index];
	char line[ADHOC_REASON_MAX * 2];

	request_unlink(req->comp, req);
	request_free(req);
	if (!outcome)
		return; /* the stream went down: the next connect asks again */
	hs->discovered = true;
	for (size_t k = 0; k < 2; k++)
		hs->offers[k] = !reply->ok         ? COMPONENT_OFFER_UNKNOWN
		                : reply->offers[k] ? COMPONENT_OFFER_YES
		                                   : COMPONENT_OFFER_NO;
	snprintf(hs->reason, sizeof(hs->reason), "%s", reply->ok ? "" : reply->reason);
	describe_host(hs, line, sizeof(line));
	if (hs->offers[INVITE_ACCOUNT] == COMPONENT_OFFER_YES)
		log_info("%s", line);
	else
		log_warn("%s (invites-api check --online prints what to change on the server)",
		         line);
}

static void discover(struct component *comp, size_t index)
{
	struct host_state *hs = &comp->hosts[index];
	struct adhoc_request *req = request_new(comp, hs->name);
	struct build b = {.ctx = comp->ctx};
	xmpp_stanza_t *query = build_element(&b, NULL, "query", NS_DISCO_ITEMS);

	build_attribute(&b, query, "node", NS_COMMANDS);
	query = build_finish(&b, query);
	if (req) {
		req->purpose = PURPOSE_DISCOVERY;
		req->host_index = index;
	}
	if (req && request_send_iq(req, "get", query) == 0) {
		request_link(comp, req);
	} else {
		if (req)
			request_free(req);
		hs->discovered = true;
		snprintf(hs->reason, sizeof(hs->reason), "out of memory");
	}
	if (query)
		xmpp_stanza_release(query);
}

/*
 * ejabberd sets up a component's privileges after the handshake, and drops
 * privileged IQs that arrive before, without an answer; its privilege
 * message says they are in place. So privileged hosts are asked once that
 * message came, or after PRIVILEGE_WAIT_MS from a server that sends none.
 */
void discovery_start(struct component *comp)
{
	comp->privileged_discovery_at = 0;
	comp->privileges[0] = '\0';
	for (size_t i = 0; i < comp->n_hosts; i++) {
		struct host_state *hs = &comp->hosts[i];
		hs->discovered = hs->warned_username = hs->completes_at_once = false;
		hs->offers[INVITE_ACCOUNT] = hs->offers[INVITE_RESET] = COMPONENT_OFFER_UNKNOWN;
		hs->reason[0] = '\0';
		if (!hs->act_as)
			discover(comp, i);
		else
			comp->privileged_discovery_at = monotonic_ms() + PRIVILEGE_WAIT_MS;
	}
}

static void discover_privileged(struct component *comp)
{
	comp->privileged_discovery_at = 0;
	for (size_t i = 0; i < comp->n_hosts; i++) {
		if (comp->hosts[i].act_as)
			discover(comp, i);
	}
}

void discovery_due(struct component *comp, uint64_t now)
{
	if (comp->online && comp->privileged_discovery_at && comp->privileged_discovery_at <= now)
		discover_privileged(comp);
}

uint64_t discovery_next(const struct component *comp)
{
	return comp->online && comp->privileged_discovery_at ? comp->privileged_discovery_at
	                                                     : UINT64_MAX;
}

enum component_offer component_host_offers(const struct component *comp, const char *host,
                                           enum invite_kind kind)
{
	const struct host_state *hs = comp && host ? host_find(comp, host) : NULL;
	if (!hs || (kind != INVITE_ACCOUNT && kind != INVITE_RESET))
		return COMPONENT_OFFER_UNKNOWN;
	return hs->offers[kind];
}

bool component_host_discovered(const struct component *comp, const char *host)
{
	const struct host_state *hs = comp && host ? host_find(comp, host) : NULL;
	return hs && hs->discovered;
}

void component_host_describe(const struct component *comp, const char *host, char *buf, size_t size)
{
	const struct host_state *hs = comp && host ? host_find(comp, host) : NULL;
	if (hs)
		describe_host(hs, buf, size);
	else
		snprintf(buf, size, "%s: not one of the component's hosts", host ? host : "");
}

/* ---- the server's privilege message (XEP-0356) ------------------------------ */

/* The server speaks from a bare domain: one of our hosts, or the domain the
 * component's JID is under (invites.example.com: example.com). */
static bool from_server(const struct component *comp, const char *from)
{
	const char *parent = strchr(comp->jid, '.');
	if (strchr(from, '/') || strchr(from, '@'))
		return false;
	return host_find(comp, from) || (parent && strcasecmp(from, parent + 1) == 0);
}

static void warn_missing_privileges(const struct component *comp, const struct privileges *got)
{
	for (size_t i = 0; i < comp->n_hosts; i++) {
		const struct host_state *hs = &comp->hosts[i];
		if (!hs->act_as)
			continue;
		if (!got->commands_set)
			log_warn("%s: privileged IQs as %s need the iq permission " NS_COMMANDS
			         " set, which the server did not grant: add it to mod_privilege's "
			         "iq permissions",
			         hs->name, hs->act_as);
		if (!got->disco_items_get)
			log_warn("%s: discovery needs the iq permission " NS_DISCO_ITEMS
			         " get, which the server did not grant: add it to mod_privilege's "
			         "iq permissions",
			         hs->name);
	}
}

int privilege_handle_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
	struct component *comp = userdata;
	const char *from = xmpp_stanza_get_from(stanza);
	struct privileges got;
	(void)conn;

	if (!from || !xmpp_stanza_get_child_by_name_and_ns(stanza, "privilege", NS_PRIVILEGE))
		return 1;
	if (!from_server(comp, from) || privileges_parse(stanza, &got) < 0)
		return 1; /* anyone may send us a message: only the server's counts */
	log_info("privileges granted by %s: %s", from, got.summary);
	snprintf(comp->privileges, sizeof(comp->privileges), "%.80s: %s", from, got.summary);
	comp->commands_granted = got.commands_set;
	warn_missing_privileges(comp, &got);
	if (comp->privileged_discovery_at)
		discover_privileged(comp);
	return 1;
}

const char *component_privileges(const struct component *comp)
{
	return comp && comp->privileges[0] ? comp->privileges : NULL;
}

bool component_commands_granted(const struct component *comp)
{
	return comp && comp->privileges[0] && comp->commands_granted;
}

/* ---- hosts ------------------------------------------------------------------- */

int hosts_init(struct component *comp, const struct component_host *hosts, size_t n)
{
	comp->hosts = n ? calloc(n, sizeof(*comp->hosts)) : NULL;
	if (n && !comp->hosts)
		return -1;
	comp->n_hosts = n;
	for (size_t i = 0; i < n; i++) {
		comp->hosts[i].name = strdup(hosts[i].name);
		comp->hosts[i].act_as = hosts[i].act_as ? strdup(hosts[i].act_as) : NULL;
		if (!comp->hosts[i].name || (hosts[i].act_as && !comp->hosts[i].act_as))
			return -1;
	}
	return 0;
}

void hosts_finish(struct component *comp)
{
	for (size_t i = 0; i < comp->n_hosts; i++) {
		free(comp->hosts[i].name);
		free(comp->hosts[i].act_as);
	}
	free(comp->hosts);
	comp->hosts = NULL;
	comp->n_hosts = 0;
}
