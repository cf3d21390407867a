/*
 * The requests the component sends and the replies it waits for: invite
 * commands here, and the disco#items queries of discovery.c.
 *
 * An invite command follows the command's own flow (XEP-0050): execute; a
 * server that completes at once (Prosody) has answered; one that answers with
 * a form (ejabberd's create-account, Prosody 13's password-reset) gets it back
 * filled with what we know, with action complete and its sessionid. At most
 * STEPS_MAX commands per request, all within the request's one deadline.
 *
 * A host is reached either as its admin (the IQ goes to the host from the
 * component) or through XEP-0356 privileged IQs acting as a local JID (the IQ
 * goes to that JID, wrapped; the reply comes back from it, wrapped). A reply
 * counts only from the address the request went to, and only in the form
 * its mode implies: in privileged mode a bare reply from the host, which any
 * entity could forge with a guessed id, is not one.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "component-internal.h"
#include "log.h"

#define STEPS_MAX 2 /* execute, then complete */

/* What the timeout of a privileged IQ may mean: ejabberd drops IQs in
 * namespaces it did not grant, without an answer. */
#define PRIVILEGE_HINT                                                                             \
	"; no answer to a privileged IQ may mean the server did not grant its namespace "          \
	"(mod_privilege iq permissions: %s %s)"

/* Sorted by enum invite_kind. */
static const struct invite_command {
	const char *node;
	const char *what; /* in log lines: "account invites yes" */
} invite_commands[] = {
    [INVITE_ACCOUNT] = {NODE_CREATE_ACCOUNT, "account invites"},
    [INVITE_RESET] = {NODE_PASSWORD_RESET, "password resets"},
};

const char *invite_node(enum invite_kind kind)
{
	return invite_commands[kind].node;
}

const char *invite_what(enum invite_kind kind)
{
	return invite_commands[kind].what;
}

/* ---- the table of pending requests --------------------------------------- */

/*
 * Replies are matched by id in a table of our own rather than with
 * xmpp_id_handler_add(): libstrophe 0.12.2 never removes an id from its
 * handler hash once the handler is gone, so every request would leave ~80
 * bytes behind for the life of the connection object, and its 32-bucket hash
 * would slow every stanza down as the ids piled up.
 */
static size_t id_bucket(const char *id)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % PENDING_BUCKETS;
}

static struct adhoc_request *find_request(struct component *comp, const char *id)
{
	struct adhoc_request *req = comp->by_id[id_bucket(id)];
	while (req != NULL && strcmp(req->id, id) != 0)
		req = req->next_same_bucket;
	return req;
}

static void bucket_insert(struct component *comp, struct adhoc_request *req)
{
	size_t b = id_bucket(req->id);
	req->next_same_bucket = comp->by_id[b];
	comp->by_id[b] = req;
}

static void bucket_remove(struct component *comp, struct adhoc_request *req)
{
	struct adhoc_request **link = &comp->by_id[id_bucket(req->id)];
	while (*link != req)
		link = &(*link)->next_same_bucket;
	*link = req->next_same_bucket;
}

void request_link(struct component *comp, struct adhoc_request *req)
{
	req->prev = comp->tail;
	if (comp->tail)
		comp->tail->next = req;
	else
		comp->head = req;
	comp->tail = req;
	bucket_insert(comp, req);
	comp->pending++;
	if (req->purpose == PURPOSE_DISCOVERY)
		comp->discovering++;
}

void request_unlink(struct component *comp, struct adhoc_request *req)
{
	bucket_remove(comp, req);
	if (req->prev)
		req->prev->next = req->next;
	else
		comp->head = req->next;
	if (req->next)
		req->next->prev = req->prev;
	else
		comp->tail = req->prev;
	req->prev = req->next = NULL;
	comp->pending--;
	if (req->purpose == PURPOSE_DISCOVERY)
		comp->discovering--;
}

/* A new id for the next step of the same request: a late or repeated answer
 * to the previous step cannot be taken for the answer to this one. The
 * deadline, hence the place in the FIFO, stays. */
static int rekey_request(struct adhoc_request *req)
{
	char *id = xmpp_uuid_gen(req->comp->ctx);
	if (!id)
		return -1;
	bucket_remove(req->comp, req);
	xmpp_free(req->comp->ctx, req->id);
	req->id = id;
	bucket_insert(req->comp, req);
	return 0;
}

void request_free(struct adhoc_request *req)
{
	if (req->id)
		xmpp_free(req->comp->ctx, req->id);
	free(req->host);
	free(req->username);
	free(req->account_jid);
	free(req->settled_reason);
	free(req);
}

struct host_state *host_find(const struct component *comp, const char *name)
{
	for (size_t i = 0; i < comp->n_hosts; i++) {
		if (strcasecmp(comp->hosts[i].name, name) == 0)
			return &comp->hosts[i];
	}
	return NULL;
}

/* ---- outcomes ------------------------------------------------------------- */

/* Unlink and free req, then report the result: the callback may queue new
 * requests or look at the component, which is consistent by then. */
static void finish_invite(struct adhoc_request *req, const struct component_result *result)
{
	component_invite_cb cb = req->cb;
	void *userdata = req->userdata;

	request_unlink(req->comp, req);
	request_free(req);
	cb(userdata, result);
}

static void fail_request(struct adhoc_request *req, enum component_status status,
                         const char *reason)
{
	if (req->purpose == PURPOSE_DISCOVERY) {
		struct discovery_reply reply = {.ok = false};
		reason_copy(reply.reason, sizeof(reply.reason), reason);
		discovery_finish(req, &reply,
		                 status == COMPONENT_TIMEOUT || status == COMPONENT_BAD_REPLY);
		return;
	}
	struct component_result result = {.status = status, .reason = reason};
	finish_invite(req, &result);
}

/* Report the requests answered without asking the server. */
static void report_settled(struct component *comp)
{
	while (comp->settled) {
		struct adhoc_request *req = comp->settled;
		struct component_result result = {.status = COMPONENT_UNSUPPORTED,
		                                  .reason = req->settled_reason};
		comp->settled = req->next;
		req->cb(req->userdata, &result);
		request_free(req);
	}
}

void requests_fail_all(struct component *comp, enum component_status status, const char *reason)
{
	report_settled(comp);
	while (comp->head)
		fail_request(comp->head, status, reason);
}

static void fail_timed_out(struct component *comp, struct adhoc_request *req)
{
	char reason[ADHOC_REASON_MAX * 2];
	int len = snprintf(reason, sizeof(reason), "%s did not answer within %u ms", req->host,
	                   comp->request_timeout_ms);

	if (req->act_as && len > 0 && (size_t)len < sizeof(reason)) {
		bool disco = req->purpose == PURPOSE_DISCOVERY;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(reason + len, sizeof(reason) - (size_t)len, PRIVILEGE_HINT,
		         disco ? NS_DISCO_ITEMS : NS_COMMANDS, disco ? "get" : "set");
#pragma GCC diagnostic pop
	}
	fail_request(req, COMPONENT_TIMEOUT, reason);
}

void requests_expire(struct component *comp, uint64_t now)
{
	report_settled(comp);
	while (comp->head && comp->head->deadline <= now)
		fail_timed_out(comp, comp->head);
	discovery_due(comp, now);
}

uint64_t requests_next_deadline(const struct component *comp)
{
	uint64_t due = comp->settled ? 0 : comp->head ? comp->head->deadline : UINT64_MAX;
	uint64_t discovery = discovery_next(comp);
	return discovery < due ? discovery : due;
}

/* ---- sending ---------------------------------------------------------------- */

/* Send payload (a root built by the caller, who releases it) in an <iq/> of
 * type to req's host, directly or privileged. 0, or -1 out of memory. */
int request_send_iq(struct adhoc_request *req, const char *type, xmpp_stanza_t *payload)
{
	struct component *comp = req->comp;
	xmpp_stanza_t *iq = payload ? xmpp_iq_new(comp->ctx, type, req->id) : NULL;
	xmpp_stanza_t *outer = NULL;

	if (!iq || xmpp_stanza_set_to(iq, req->host) != XMPP_EOK ||
	    xmpp_stanza_add_child(iq, payload) != XMPP_EOK)
		goto err;
	if (req->act_as) {
		outer = privileged_wrap(comp->ctx, comp->jid, req->act_as, iq);
		if (!outer)
			goto err;
		xmpp_send(comp->conn, outer);
		xmpp_stanza_release(outer);
	} else {
		if (xmpp_stanza_set_from(iq, comp->jid) != XMPP_EOK)
			goto err;
		xmpp_send(comp->conn, iq);
	}
	xmpp_stanza_release(iq);
	return 0;
err:
	if (iq)
		xmpp_stanza_release(iq);
	return -1;
}

static void submit_field(struct build *b, xmpp_stanza_t *x, const char *var, const char *type,
                         const char *value)
{
	xmpp_stanza_t *field = build_element(b, x, "field", NULL);
	build_attribute(b, field, "var", var);
	build_attribute(b, field, "type", type);
	build_text(b, field, "value", value);
}

/* The filled form: the fields we know, by var, and FORM_TYPE if it had one.
 * roster-subscription false: the API caller is no contact to subscribe to. */
static void build_submission(struct build *b, xmpp_stanza_t *command,
                             const struct adhoc_request *req, const struct adhoc_reply *form)
{
	xmpp_stanza_t *x = build_element(b, command, "x", NS_DATA_FORMS);
	build_attribute(b, x, "type", "submit");
	if (form->form_type)
		submit_field(b, x, "FORM_TYPE", "hidden", form->form_type);
	if (req->kind == INVITE_ACCOUNT && req->username && (form->vars & ADHOC_VAR_USERNAME))
		submit_field(b, x, "username", NULL, req->username);
	if (req->kind == INVITE_ACCOUNT && (form->vars & ADHOC_VAR_ROSTER))
		submit_field(b, x, "roster-subscription", "boolean", "false");
	if (req->kind == INVITE_RESET && (form->vars & ADHOC_VAR_ACCOUNTJID))
		submit_field(b, x, "accountjid", "jid-single", req->account_jid);
}

/* Send <command node=... action=ACTION [sessionid]> with the filled form when
 * form is given. 0, or -1 out of memory. */
static int send_command(struct adhoc_request *req, const char *action, const char *sessionid,
                        const struct adhoc_reply *form)
{
	struct build b = {.ctx = req->comp->ctx};
	xmpp_stanza_t *command = build_element(&b, NULL, "command", NS_COMMANDS);

	build_attribute(&b, command, "node", invite_node(req->kind));
	build_attribute(&b, command, "action", action);
	build_attribute(&b, command, "sessionid", sessionid);
	if (form)
		build_submission(&b, command, req, form);
	command = build_finish(&b, command);
	int rc = request_send_iq(req, "set", command);
	if (command)
		xmpp_stanza_release(command);
	return rc;
}

/* Tell the server we are done with a session we will not complete. The
 * answer is not waited for: its fresh id matches nothing. */
static void send_cancel(struct adhoc_request *req, const char *sessionid)
{
	if (!*sessionid || rekey_request(req) < 0)
		return;
	(void)send_command(req, "cancel", sessionid, NULL);
}

struct adhoc_request *request_new(struct component *comp, const char *host)
{
	struct adhoc_request *req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	req->comp = comp;
	req->id = xmpp_uuid_gen(comp->ctx);
	req->host = strdup(host);
	const struct host_state *hs = host_find(comp, host);
	req->act_as = hs ? hs->act_as : NULL;
	req->deadline = monotonic_ms() + comp->request_timeout_ms;
	if (!req->id || !req->host) {
		request_free(req);
		return NULL;
	}
	return req;
}

/* ---- invite requests -------------------------------------------------------- */

static bool valid_param(const char *s)
{
	return s && *s && strlen(s) <= HOST_MAX && !has_control_chars(s);
}

static bool valid_params(const struct invite_params *p)
{
	if (p->kind == INVITE_ACCOUNT)
		return !p->username || valid_param(p->username);
	return p->kind == INVITE_RESET && valid_param(p->account_jid);
}

#define NO_USERNAMES_FMT                                                                           \
	"%.200s does not support reserved usernames (its create-account completes at once)"

/*
 * Prosody's create-account makes the invite on execute and takes no
 * username. A host seen doing that on this connection gets no more requests
 * with a username: they are answered UNSUPPORTED from component_run(), and no
 * unused invite is made. Only the first one, before any create-account
 * completed there, costs one (refuse_made_at_once()). Asking first would be
 * cleaner, but nothing tells: disco#info on the command node (XEP-0050 2.3)
 * gives only its identity and features, on Prosody 13 and ejabberd 26 alike,
 * not the fields of its form.
 */
static int settle_at_once(struct component *comp, struct adhoc_request *req)
{
	char reason[ADHOC_REASON_MAX * 2];
	snprintf(reason, sizeof(reason), NO_USERNAMES_FMT, req->host);
	if (!(req->settled_reason = strdup(reason))) {
		request_free(req);
		return -1;
	}
	struct adhoc_request **tail = &comp->settled;
	while (*tail)
		tail = &(*tail)->next;
	*tail = req;
	return 0;
}

int component_request_invite(struct component *comp, const char *host,
                             const struct invite_params *params, component_invite_cb cb,
                             void *userdata)
{
	if (!comp || !comp->online || comp->stopping || !host || !*host ||
	    strlen(host) > HOST_MAX || !cb || !params || !valid_params(params))
		return -1;

	struct adhoc_request *req = request_new(comp, host);
	if (!req)
		return -1;
	req->purpose = PURPOSE_INVITE;
	req->kind = params->kind;
	req->cb = cb;
	req->userdata = userdata;
	const struct host_state *hs = host_find(comp, host);
	if (hs && hs->completes_at_once && params->kind == INVITE_ACCOUNT && params->username)
		return settle_at_once(comp, req);
	if ((params->kind == INVITE_ACCOUNT && params->username &&
	     !(req->username = strdup(params->username))) ||
	    (params->kind == INVITE_RESET && !(req->account_jid = strdup(params->account_jid))) ||
	    send_command(req, "execute", NULL, NULL) < 0) {
		request_free(req);
		return -1;
	}
	req->steps = 1;
	request_link(comp, req);
	return 0;
}

int component_create_invite(struct component *comp, const char *host, component_invite_cb cb,
                            void *userdata)
{
	const struct invite_params params = {.kind = INVITE_ACCOUNT};
	return component_request_invite(comp, host, &params, cb, userdata);
}

unsigned component_pending(const struct component *comp)
{
	return comp ? comp->pending - comp->discovering : 0;
}

/* Errors that mean something more specific than "the server refused". */
static const struct error_status {
	enum invite_kind kind;
	const char *condition;
	const char *word;   /* NULL: any text; else a word the text must hold */
	bool with_username; /* only when we sent a username */
	enum component_status status;
} error_statuses[] = {
    {INVITE_ACCOUNT, "bad-request", "reserved", true, COMPONENT_CONFLICT}, /* ejabberd */
    {INVITE_ACCOUNT, "bad-request", "taken", true, COMPONENT_CONFLICT},
    {INVITE_ACCOUNT, "conflict", NULL, true, COMPONENT_CONFLICT},
    {INVITE_RESET, "feature-not-implemented", NULL, false, COMPONENT_UNSUPPORTED},
    {INVITE_RESET, "item-not-found", NULL, false, COMPONENT_UNSUPPORTED},
    {INVITE_RESET, "service-unavailable", NULL, false, COMPONENT_UNSUPPORTED},
};

static enum component_status error_status(const struct adhoc_request *req,
                                          const struct adhoc_reply *reply)
{
	for (size_t i = 0; i < sizeof(error_statuses) / sizeof(error_statuses[0]); i++) {
		const struct error_status *e = &error_statuses[i];
		if (e->kind == req->kind && strcmp(e->condition, reply->condition) == 0 &&
		    (!e->with_username || req->username) &&
		    (!e->word || strcasestr(reply->reason, e->word)))
			return e->status;
	}
	return COMPONENT_REMOTE_ERROR;
}

/* A username was asked for, and the server made an invite without one: the
 * invite stays unused until it expires. Said once per host and connection. */
static void refuse_made_at_once(struct adhoc_request *req)
{
	char reason[ADHOC_REASON_MAX * 2];
	struct host_state *hs = host_find(req->comp, req->host);

	snprintf(reason, sizeof(reason), NO_USERNAMES_FMT, req->host);
	if (!hs || !hs->warned_username)
		log_warn("%s; the invite it made is unused", reason);
	if (hs)
		hs->warned_username = true;
	fail_request(req, COMPONENT_UNSUPPORTED, reason);
}

static void command_done(struct adhoc_request *req, struct adhoc_reply *reply)
{
	char reason[ADHOC_REASON_MAX * 2];

	struct host_state *hs = host_find(req->comp, req->host);
	if (hs && reply->status == COMPONENT_OK && req->steps == 1 && req->kind == INVITE_ACCOUNT)
		hs->completes_at_once = true;
	if (reply->status == COMPONENT_OK && req->steps == 1 && req->username) {
		refuse_made_at_once(req);
		return;
	}
	if (reply->status == COMPONENT_OK && req->steps == 1 && req->kind == INVITE_RESET) {
		snprintf(reason, sizeof(reason),
		         "%.200s completed password-reset without asking for the account",
		         req->host);
		fail_request(req, COMPONENT_BAD_REPLY, reason);
		return;
	}
	enum component_status status =
	    reply->status == COMPONENT_REMOTE_ERROR ? error_status(req, reply) : reply->status;
	if (status == COMPONENT_UNSUPPORTED) {
		snprintf(reason, sizeof(reason), "%.200s does not offer %s (%s: %.200s)", req->host,
		         invite_commands[req->kind].what, reply->condition, reply->reason);
		reason_copy(reply->reason, sizeof(reply->reason), reason);
	}
	/* the condition stays for CONFLICT and UNSUPPORTED too: what the server said */
	struct component_result result = {
	    .status = status,
	    .invite = reply->status == COMPONENT_OK ? &reply->invite : NULL,
	    .condition = reply->status == COMPONENT_REMOTE_ERROR ? reply->condition : NULL,
	    .reason = reply->status == COMPONENT_OK ? NULL : reply->reason,
	};
	finish_invite(req, &result);
}

/* The server answered with a form: fill it in and complete, or give up. */
static void command_continue(struct adhoc_request *req, struct adhoc_reply *reply)
{
	char reason[ADHOC_REASON_MAX * 2];
	enum component_status status = COMPONENT_BAD_REPLY;

	reason[0] = '\0';
	if (req->steps >= STEPS_MAX) {
		snprintf(reason, sizeof(reason),
		         "%.200s asked for more input again after the filled form", req->host);
	} else if (req->username && !(reply->vars & ADHOC_VAR_USERNAME)) {
		status = COMPONENT_UNSUPPORTED;
		snprintf(reason, sizeof(reason),
		         "%.200s does not support reserved usernames (its form has no username "
		         "field)",
		         req->host);
	} else if (req->kind == INVITE_RESET && !(reply->vars & ADHOC_VAR_ACCOUNTJID)) {
		snprintf(reason, sizeof(reason),
		         "%.200s's password-reset form has no accountjid field", req->host);
	} else if (rekey_request(req) < 0 ||
	           send_command(req, "complete", reply->sessionid, reply) < 0) {
		snprintf(reason, sizeof(reason), "out of memory");
	} else {
		req->steps++;
		return;
	}
	send_cancel(req, reply->sessionid);
	fail_request(req, status, reason);
}

static void command_reply(struct adhoc_request *req, xmpp_stanza_t *iq)
{
	struct adhoc_reply reply;

	adhoc_reply_parse(iq, &reply);
	if (reply.status == COMPONENT_OK && reply.executing)
		command_continue(req, &reply);
	else
		command_done(req, &reply);
	adhoc_reply_finish(&reply);
}

/* ---- replies ------------------------------------------------------------------- */

/*
 * The stanza that answers req, or NULL when stanza is not its answer (then
 * it is ignored, and req keeps waiting). Directly: from the host. Privileged:
 * from act_as, carrying the host's reply, which must come from the host;
 * ejabberd wraps the host's errors too, in an outer error. An outer error
 * without a forwarded reply is about the privileged IQ itself. Anything else
 * fails req as a bad reply, and *why says so.
 */
static xmpp_stanza_t *reply_of(struct adhoc_request *req, xmpp_stanza_t *stanza, const char *from,
                               const char *type, char *why, size_t why_size)
{
	if (!req->act_as)
		return from_is(from, req->host) ? stanza : NULL;
	if (!from_is(from, req->act_as))
		return NULL;
	xmpp_stanza_t *inner = privileged_unwrap(stanza);
	const char *inner_from = inner ? xmpp_stanza_get_from(inner) : NULL;
	if (!inner && strcmp(type, "error") == 0)
		return stanza;
	if (!inner)
		snprintf(why, why_size, "the privileged reply carries no forwarded <iq/>");
	else if (!inner_from || !from_is(inner_from, req->host))
		snprintf(why, why_size, "the forwarded reply is not from %.200s", req->host);
	else
		return inner;
	return stanza;
}

int requests_handle_iq(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
	struct component *comp = userdata;
	const char *from = xmpp_stanza_get_from(stanza);
	const char *type = xmpp_stanza_get_type(stanza);
	const char *id = xmpp_stanza_get_id(stanza);
	char why[ADHOC_REASON_MAX] = "";
	(void)conn;

	if (!from || !type || !id || (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
		return 1;
	struct adhoc_request *req = find_request(comp, id);
	xmpp_stanza_t *reply = req ? reply_of(req, stanza, from, type, why, sizeof(why)) : NULL;
	if (!reply)
		return 1; /* not an answer we wait for (or from the wrong sender): ignore */
	if (*why) {
		fail_request(req, COMPONENT_BAD_REPLY, why);
	} else if (req->purpose == PURPOSE_DISCOVERY) {
		struct discovery_reply found;
		discovery_reply_parse(reply, &found);
		discovery_finish(req, &found, true);
	} else {
		command_reply(req, reply);
	}
	return 1; /* stays registered for the next reply */
}
