/*
 * The component's own ad-hoc commands (XEP-0050): discovery, authorisation,
 * sessions and the protocol of a step. What a command does is the caller's;
 * this file knows nothing of keys.
 *
 * A session exists between a step that shows a form and the submission that
 * completes it. It is bound to the requester's full JID as the server stamped
 * it and to its command: anyone else naming its sessionid, another resource of
 * the same user included, gets bad-sessionid, exactly as for an unknown id, so
 * an id says nothing about whose it is. The session keeps the form it showed
 * as XML, which is what a submission is checked against (see dataform.c).
 *
 * Sessions end when completed, canceled, or idle past their timeout. Expiry is
 * enforced when a session is looked up, and idle ones are also freed from
 * component_run(), so no timer is needed and the loop is never woken for them;
 * memory stays bounded by COMMAND_SESSIONS_MAX. A user starting one session
 * too many loses their own oldest (clients forget to cancel); when all are
 * taken, new ones are refused with resource-constraint until some end.
 */

#include <stdlib.h>
#include <string.h>

#include "component-internal.h"

struct session {
	struct session *next; /* newest first */
	char *id;             /* from xmpp_uuid_gen(): xmpp_free() */
	char *requester;      /* full JID */
	const struct component_command *command;
	char *form;       /* XML of the form shown last, from xmpp_stanza_to_text(): xmpp_free() */
	uint64_t expires; /* ms, monotonic */
};

struct command_registry {
	xmpp_ctx_t *ctx;
	struct component_commands cfg;
	struct session *sessions;
	unsigned n_sessions;
};

struct step_note {
	enum component_note_type type;
	char *text;
};

struct component_step {
	xmpp_ctx_t *ctx;
	const char *requester;
	const struct dataform_values *values; /* NULL in execute() */
	xmpp_stanza_t *form;                  /* set by component_step_form() */
	bool failed;                          /* out of memory in the step API */
	struct step_note notes[COMMAND_NOTES_MAX];
	size_t n_notes;
};

enum action { ACTION_EXECUTE, ACTION_NEXT, ACTION_COMPLETE, ACTION_PREV, ACTION_CANCEL };

/* Sorted by name. */
static const struct {
	const char *name;
	enum action action;
} action_names[] = {
    {"cancel", ACTION_CANCEL}, {"complete", ACTION_COMPLETE}, {"execute", ACTION_EXECUTE},
    {"next", ACTION_NEXT},     {"prev", ACTION_PREV},
};

static const char *const note_types[] = {
    [COMPONENT_NOTE_INFO] = "info",
    [COMPONENT_NOTE_WARN] = "warn",
    [COMPONENT_NOTE_ERROR] = "error",
};

/* ---- registry and sessions -------------------------------------------------- */

struct command_registry *commands_create(xmpp_ctx_t *ctx, const struct component_commands *cmds)
{
	struct command_registry *reg = calloc(1, sizeof(*reg));
	if (!reg)
		return NULL;
	reg->ctx = ctx;
	reg->cfg = *cmds;
	if (reg->cfg.session_timeout_ms == 0)
		reg->cfg.session_timeout_ms = COMMAND_TIMEOUT_MS;
	return reg;
}

static void free_session(struct command_registry *reg, struct session *s)
{
	if (s->id)
		xmpp_free(reg->ctx, s->id);
	if (s->form)
		xmpp_free(reg->ctx, s->form);
	free(s->requester);
	free(s);
}

static void end_session(struct command_registry *reg, struct session *s)
{
	for (struct session **p = &reg->sessions; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			reg->n_sessions--;
			free_session(reg, s);
			return;
		}
	}
}

void commands_destroy(struct command_registry *reg)
{
	if (!reg)
		return;
	while (reg->sessions)
		end_session(reg, reg->sessions);
	free(reg);
}

void commands_expire(struct command_registry *reg, uint64_t now)
{
	struct session **p = reg ? &reg->sessions : NULL;

	while (p && *p) {
		struct session *s = *p;
		if (s->expires > now) {
			p = &s->next;
			continue;
		}
		*p = s->next;
		reg->n_sessions--;
		free_session(reg, s);
	}
}

static size_t bare_length(const char *jid)
{
	return strcspn(jid, "/");
}

static bool same_user(const char *a, const char *b)
{
	size_t len = bare_length(a);
	return len == bare_length(b) && strncmp(a, b, len) == 0;
}

static struct session *find_session(struct command_registry *reg, const char *id,
                                    const char *requester, const struct component_command *cmd)
{
	for (struct session *s = reg->sessions; s; s = s->next) {
		if (strcmp(s->id, id) == 0)
			return strcmp(s->requester, requester) == 0 && s->command == cmd ? s : NULL;
	}
	return NULL;
}

/* Room for one more session of requester: end their oldest if they have too
 * many. False when every session is taken. */
static bool make_room(struct command_registry *reg, const char *requester)
{
	struct session *oldest = NULL;
	unsigned mine = 0;

	for (struct session *s = reg->sessions; s; s = s->next) {
		if (same_user(s->requester, requester)) {
			mine++;
			oldest = s;
		}
	}
	if (mine >= COMMAND_SESSIONS_PER_USER)
		end_session(reg, oldest);
	return reg->n_sessions < COMMAND_SESSIONS_MAX;
}

/* Keep form (type 'form') as the session's current form. */
static bool set_session_form(struct command_registry *reg, struct session *s, xmpp_stanza_t *form)
{
	char *xml = NULL;
	size_t len;

	if (xmpp_stanza_set_type(form, "form") != XMPP_EOK ||
	    xmpp_stanza_to_text(form, &xml, &len) != XMPP_EOK)
		return false;
	if (s->form)
		xmpp_free(reg->ctx, s->form);
	s->form = xml;
	return true;
}

static struct session *new_session(struct command_registry *reg, const char *requester,
                                   const struct component_command *cmd, xmpp_stanza_t *form)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = xmpp_uuid_gen(reg->ctx);
	s->requester = strdup(requester);
	s->command = cmd;
	if (!s->id || !s->requester || !set_session_form(reg, s, form)) {
		free_session(reg, s);
		return NULL;
	}
	s->expires = monotonic_ms() + reg->cfg.session_timeout_ms;
	s->next = reg->sessions;
	reg->sessions = s;
	reg->n_sessions++;
	return s;
}

/* ---- authorisation and discovery -------------------------------------------- */

static const struct component_command *find_command(const struct command_registry *reg,
                                                    const char *node)
{
	for (size_t i = 0; node && i < reg->cfg.n_commands; i++) {
		if (strcmp(reg->cfg.commands[i].node, node) == 0)
			return &reg->cfg.commands[i];
	}
	return NULL;
}

/* Ask the caller about the bare JID of the server-stamped from. */
static bool allowed(const struct command_registry *reg, xmpp_stanza_t *iq)
{
	const char *from = xmpp_stanza_get_from(iq);
	char *bare = from ? strndup(from, bare_length(from)) : NULL;
	bool ok = bare && *bare && reg->cfg.allowed(reg->cfg.userdata, bare);

	free(bare);
	return ok;
}

/* The address we answer as: the one the request was sent to. */
static const char *our_jid(xmpp_stanza_t *iq)
{
	const char *to = xmpp_stanza_get_to(iq);
	return to ? to : "";
}

xmpp_stanza_t *commands_disco_items(struct command_registry *reg, xmpp_stanza_t *iq,
                                    const char *node)
{
	if (node && strcmp(node, NS_COMMANDS) != 0)
		return xmpp_stanza_reply_error(iq, "cancel", "item-not-found", NULL);

	struct build b = {.ctx = reg->ctx};
	xmpp_stanza_t *reply = iq_result(iq);
	b.failed = !reply;
	xmpp_stanza_t *query = build_element(&b, reply, "query", NS_DISCO_ITEMS);
	build_attribute(&b, query, "node", node);
	/* others see an empty list, not an error: nothing to learn from it */
	for (size_t i = 0; node && allowed(reg, iq) && i < reg->cfg.n_commands; i++) {
		xmpp_stanza_t *item = build_element(&b, query, "item", NULL);
		build_attribute(&b, item, "jid", our_jid(iq));
		build_attribute(&b, item, "node", reg->cfg.commands[i].node);
		build_attribute(&b, item, "name", reg->cfg.commands[i].name);
	}
	return build_finish(&b, reply);
}

static void build_identity(struct build *b, xmpp_stanza_t *query, const char *type,
                           const char *name)
{
	xmpp_stanza_t *identity = build_element(b, query, "identity", NULL);
	build_attribute(b, identity, "category", "automation");
	build_attribute(b, identity, "type", type);
	build_attribute(b, identity, "name", name);
}

static void build_feature(struct build *b, xmpp_stanza_t *query, const char *var)
{
	build_attribute(b, build_element(b, query, "feature", NULL), "var", var);
}

xmpp_stanza_t *commands_disco_info(struct command_registry *reg, xmpp_stanza_t *iq,
                                   const char *node)
{
	const struct component_command *cmd = find_command(reg, node);
	bool list = strcmp(node, NS_COMMANDS) == 0;

	if (!cmd && !list)
		return xmpp_stanza_reply_error(iq, "cancel", "item-not-found", NULL);
	if (cmd && !allowed(reg, iq))
		return xmpp_stanza_reply_error(iq, "auth", "forbidden", NULL);

	struct build b = {.ctx = reg->ctx};
	xmpp_stanza_t *reply = iq_result(iq);
	b.failed = !reply;
	xmpp_stanza_t *query = build_element(&b, reply, "query", NS_DISCO_INFO);
	build_attribute(&b, query, "node", node);
	build_identity(&b, query, cmd ? "command-node" : "command-list",
	               cmd ? cmd->name : "Commands");
	if (cmd) {
		build_feature(&b, query, NS_COMMANDS);
		build_feature(&b, query, NS_DATA_FORMS);
	}
	return build_finish(&b, reply);
}

/* ---- the step API ------------------------------------------------------------ */

const char *component_step_requester(const struct component_step *step)
{
	return step->requester;
}

size_t component_step_count(const struct component_step *step, const char *var)
{
	return dataform_count(step->values, var);
}

const char *component_step_value(const struct component_step *step, const char *var, size_t index)
{
	return dataform_value(step->values, var, index);
}

int component_step_form(struct component_step *step, const struct component_form *form)
{
	xmpp_stanza_t *x = dataform_build(step->ctx, form, NULL);
	if (!x) {
		step->failed = true;
		return -1;
	}
	if (step->form)
		xmpp_stanza_release(step->form);
	step->form = x;
	return 0;
}

int component_step_note(struct component_step *step, enum component_note_type type,
                        const char *text)
{
	char *copy;

	if ((unsigned)type > COMPONENT_NOTE_ERROR || !text || step->n_notes == COMMAND_NOTES_MAX)
		return -1;
	copy = strdup(text);
	if (!copy) {
		step->failed = true;
		return -1;
	}
	step->notes[step->n_notes++] = (struct step_note){.type = type, .text = copy};
	return 0;
}

static void step_finish(struct component_step *step)
{
	if (step->form)
		xmpp_stanza_release(step->form);
	for (size_t i = 0; i < step->n_notes; i++)
		free(step->notes[i].text);
}

static bool has_error_note(const struct component_step *step)
{
	for (size_t i = 0; i < step->n_notes; i++) {
		if (step->notes[i].type == COMPONENT_NOTE_ERROR)
			return true;
	}
	return false;
}

/* ---- replies ----------------------------------------------------------------- */

/* bad-request with a XEP-0050 condition such as bad-sessionid. */
static xmpp_stanza_t *command_error(struct command_registry *reg, xmpp_stanza_t *iq,
                                    const char *condition)
{
	struct build b = {.ctx = reg->ctx};
	xmpp_stanza_t *reply = xmpp_stanza_reply_error(iq, "modify", "bad-request", NULL);
	xmpp_stanza_t *error = reply ? xmpp_stanza_get_child_by_name(reply, "error") : NULL;

	b.failed = !error;
	build_element(&b, error, condition, NS_COMMANDS);
	return build_finish(&b, reply);
}

static xmpp_stanza_t *internal_error(xmpp_stanza_t *iq)
{
	return xmpp_stanza_reply_error(iq, "wait", "internal-server-error", NULL);
}

/*
 * <command/> answering iq. Executing: the actions, the notes and the
 * session's current form. Completed: the notes and the step's form as a
 * result. Canceled: nothing more.
 */
static xmpp_stanza_t *command_reply(struct command_registry *reg, xmpp_stanza_t *iq,
                                    const struct component_command *cmd, const char *sessionid,
                                    const char *status, struct component_step *step,
                                    const char *form)
{
	struct build b = {.ctx = reg->ctx};
	xmpp_stanza_t *reply = iq_result(iq);

	b.failed = !reply || (step && step->failed);
	xmpp_stanza_t *command = build_element(&b, reply, "command", NS_COMMANDS);
	build_attribute(&b, command, "node", cmd->node);
	build_attribute(&b, command, "sessionid", sessionid);
	build_attribute(&b, command, "status", status);
	if (strcmp(status, "executing") == 0) {
		xmpp_stanza_t *actions = build_element(&b, command, "actions", NULL);
		build_attribute(&b, actions, "execute", "complete");
		build_element(&b, actions, "complete", NULL);
	}
	for (size_t i = 0; step && i < step->n_notes; i++) {
		xmpp_stanza_t *note = build_text(&b, command, "note", step->notes[i].text);
		build_attribute(&b, note, "type", note_types[step->notes[i].type]);
	}
	if (form && !b.failed) {
		xmpp_stanza_t *x = xmpp_stanza_new_from_string(reg->ctx, form);
		b.failed = !x || xmpp_stanza_add_child_ex(command, x, 0) != XMPP_EOK;
		if (b.failed && x)
			xmpp_stanza_release(x);
	} else if (step && step->form && !b.failed) {
		b.failed = xmpp_stanza_set_type(step->form, "result") != XMPP_EOK ||
		           xmpp_stanza_add_child(command, step->form) != XMPP_EOK;
	}
	reply = build_finish(&b, reply);
	return reply ? reply : internal_error(iq);
}

static xmpp_stanza_t *executing(struct command_registry *reg, xmpp_stanza_t *iq, struct session *s,
                                struct component_step *step)
{
	s->expires = monotonic_ms() + reg->cfg.session_timeout_ms;
	return command_reply(reg, iq, s->command, s->id, "executing", step, s->form);
}

static xmpp_stanza_t *completed(struct command_registry *reg, xmpp_stanza_t *iq,
                                const struct component_command *cmd, const char *sessionid,
                                struct component_step *step)
{
	return command_reply(reg, iq, cmd, sessionid, "completed", step, NULL);
}

/* ---- steps --------------------------------------------------------------------- */

/* A submission in session s (x is NULL when nothing was submitted). */
static xmpp_stanza_t *submit(struct command_registry *reg, xmpp_stanza_t *iq, struct session *s,
                             xmpp_stanza_t *x)
{
	struct component_step step = {.ctx = reg->ctx, .requester = xmpp_stanza_get_from(iq)};
	struct dataform_values *values = NULL;
	xmpp_stanza_t *reply;
	char why[ADHOC_REASON_MAX];

	switch (dataform_read(reg->ctx, s->form, x, &values, why, sizeof(why))) {
	case DATAFORM_NO_MEMORY:
		return internal_error(iq);
	case DATAFORM_INVALID:
		component_step_note(&step, COMPONENT_NOTE_ERROR, why);
		reply = executing(reg, iq, s, &step);
		step_finish(&step);
		return reply;
	case DATAFORM_OK:
		break;
	}

	step.values = values;
	enum component_step_status status = s->command->submit(reg->cfg.userdata, &step);
	if (status == COMPONENT_STEP_COMPLETED) {
		reply = completed(reg, iq, s->command, s->id, &step);
		end_session(reg, s);
	} else {
		if (status != COMPONENT_STEP_EXECUTING && !has_error_note(&step))
			component_step_note(&step, COMPONENT_NOTE_ERROR,
			                    "The form was not accepted.");
		if (step.form && !set_session_form(reg, s, step.form))
			step.failed = true;
		reply = executing(reg, iq, s, &step);
	}
	step_finish(&step);
	dataform_values_free(values);
	return reply;
}

/* execute without a sessionid: a new session, or a command done at once. A
 * form sent along is submitted right away, so a script can run a command in
 * one request. */
static xmpp_stanza_t *start(struct command_registry *reg, xmpp_stanza_t *iq,
                            const struct component_command *cmd, xmpp_stanza_t *x)
{
	const char *requester = xmpp_stanza_get_from(iq);
	struct component_step step = {.ctx = reg->ctx, .requester = requester};
	xmpp_stanza_t *reply;

	if (!make_room(reg, requester))
		return xmpp_stanza_reply_error(iq, "wait", "resource-constraint",
		                               "Too many command sessions: try again later");

	if (cmd->execute(reg->cfg.userdata, &step) == COMPONENT_STEP_EXECUTING && step.form) {
		struct session *s =
		    step.failed ? NULL : new_session(reg, requester, cmd, step.form);
		if (!s)
			reply = internal_error(iq);
		else if (x)
			reply = submit(reg, iq, s, x);
		else
			reply = executing(reg, iq, s, &step);
	} else {
		char *id = xmpp_uuid_gen(reg->ctx);
		reply = id ? completed(reg, iq, cmd, id, &step) : internal_error(iq);
		if (id)
			xmpp_free(reg->ctx, id);
	}
	step_finish(&step);
	return reply;
}

static bool parse_action(const char *name, enum action *action)
{
	if (!name) {
		*action = ACTION_EXECUTE;
		return true;
	}
	for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++) {
		if (strcmp(action_names[i].name, name) == 0) {
			*action = action_names[i].action;
			return true;
		}
	}
	return false;
}

xmpp_stanza_t *commands_execute(struct command_registry *reg, xmpp_stanza_t *iq,
                                xmpp_stanza_t *command)
{
	const struct component_command *cmd =
	    find_command(reg, xmpp_stanza_get_attribute(command, "node"));
	const char *sessionid = xmpp_stanza_get_attribute(command, "sessionid");
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(command, "x", NS_DATA_FORMS);
	const char *form_type = x ? xmpp_stanza_get_type(x) : NULL;
	enum action action;

	if (!cmd)
		return xmpp_stanza_reply_error(iq, "cancel", "item-not-found", NULL);
	if (!allowed(reg, iq))
		return xmpp_stanza_reply_error(iq, "auth", "forbidden", NULL);
	if (!parse_action(xmpp_stanza_get_attribute(command, "action"), &action))
		return command_error(reg, iq, "malformed-action");
	if (action == ACTION_PREV)
		return command_error(reg, iq, "bad-action");
	if (form_type && strcmp(form_type, "cancel") == 0)
		action = ACTION_CANCEL;

	commands_expire(reg, monotonic_ms());
	if (!sessionid || !*sessionid) {
		return action == ACTION_EXECUTE ? start(reg, iq, cmd, x)
		                                : command_error(reg, iq, "bad-sessionid");
	}
	struct session *s = find_session(reg, sessionid, xmpp_stanza_get_from(iq), cmd);
	if (!s)
		return command_error(reg, iq, "bad-sessionid");
	if (action == ACTION_CANCEL) {
		xmpp_stanza_t *reply = command_reply(reg, iq, cmd, s->id, "canceled", NULL, NULL);
		end_session(reg, s);
		return reply;
	}
	return submit(reg, iq, s, x);
}
