/*
 * Parser for the server's answers to the invite commands (create-account,
 * password-reset): an IQ result with <command status='completed'> and a data
 * form, or status='executing' with a form to fill in, an IQ error, or a
 * command that did not complete; and for the answer to disco#items on the
 * commands node. Pure functions of the stanza, so they can be tested with
 * stanzas built from strings.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "component-internal.h"

/* The form fields we read, by var. Prosody 0.12.3 marks the result form
 * type='form' instead of 'result', so the form type is not checked; fields are
 * found by var whatever their order, and FORM_TYPE or unknown ones are skipped. */
static const struct form_field {
	const char *var;
	size_t offset; /* of the char * in struct invite */
} form_fields[] = {
    {"expire", offsetof(struct invite, expire)},
    {"landing-url", offsetof(struct invite, landing_url)},
    {"uri", offsetof(struct invite, uri)},
};

#define FORM_FIELD_COUNT (sizeof(form_fields) / sizeof(form_fields[0]))

static size_t utf8_cut(const char *s, size_t len)
{
	size_t start = len;
	while (start > 0 && ((unsigned char)s[start - 1] & 0xc0) == 0x80)
		start--;
	if (start == 0)
		return len;
	unsigned char lead = (unsigned char)s[start - 1];
	size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	return len - (start - 1) < need ? start - 1 : len;
}

void reason_copy(char *dst, size_t size, const char *src)
{
	size_t len = 0;
	bool space = false, cut = false;

	if (size == 0)
		return;
	for (const unsigned char *p = (const unsigned char *)(src ? src : ""); *p; p++) {
		if (*p <= ' ' || *p == 0x7f) {
			space = len > 0;
			continue;
		}
		if (len + (space ? 2 : 1) >= size) {
			cut = true;
			break;
		}
		if (space)
			dst[len++] = ' ';
		space = false;
		dst[len++] = (char)*p;
	}
	if (cut)
		len = utf8_cut(dst, len);
	dst[len] = '\0';
}

static void set_outcome(struct adhoc_reply *reply, enum component_status status, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));

static void set_outcome(struct adhoc_reply *reply, enum component_status status, const char *fmt,
                        ...)
{
	char line[ADHOC_REASON_MAX * 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	reply->status = status;
	reason_copy(reply->reason, sizeof(reply->reason), line);
}

static void set_remote_error(struct adhoc_reply *reply, const char *condition, const char *text)
{
	reason_copy(reply->condition, sizeof(reply->condition), condition);
	set_outcome(reply, COMPONENT_REMOTE_ERROR, "%s", text && *text ? text : condition);
}

/* Text of the first tag child called name (any namespace), or NULL. Free with
 * xmpp_free(). */
static char *child_text(xmpp_stanza_t *parent, const char *name, const char *type)
{
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(parent); c; c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), name) != 0)
			continue;
		const char *t = xmpp_stanza_get_type(c);
		if (type && (!t || strcmp(t, type) != 0))
			continue;
		return xmpp_stanza_get_text(c);
	}
	return NULL;
}

static void parse_error(xmpp_stanza_t *iq, struct adhoc_reply *reply)
{
	xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
	xmpp_stanza_t *error = xmpp_stanza_get_child_by_name(iq, "error");
	const char *condition = NULL;
	char *text = NULL;

	for (xmpp_stanza_t *c = error ? xmpp_stanza_get_children(error) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		const char *ns = xmpp_stanza_get_ns(c);
		if (!xmpp_stanza_is_tag(c) || !ns || strcmp(ns, NS_STANZAS) != 0)
			continue;
		if (strcmp(xmpp_stanza_get_name(c), "text") == 0) {
			if (!text)
				text = xmpp_stanza_get_text(c);
		} else if (!condition) {
			condition = xmpp_stanza_get_name(c);
		}
	}
	set_remote_error(reply, condition ? condition : "undefined-condition", text);
	if (text)
		xmpp_free(ctx, text);
}

bool has_control_chars(const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return true;
	}
	return false;
}

/* Store the value of one field; false with the outcome set if it is unusable. */
static bool read_field(xmpp_stanza_t *field, const struct form_field *def,
                       struct adhoc_reply *reply)
{
	xmpp_ctx_t *ctx = xmpp_stanza_get_context(field);
	xmpp_stanza_t *value = xmpp_stanza_get_child_by_name(field, "value");
	char *text = value ? xmpp_stanza_get_text(value) : NULL;
	char **dst = (char **)((char *)&reply->invite + def->offset);
	bool ok = false;

	if (!text || !*text) {
		ok = true; /* absent or empty: the value stays NULL */
	} else if (strlen(text) > ADHOC_VALUE_MAX) {
		set_outcome(reply, COMPONENT_BAD_REPLY, "the %s field is longer than %d bytes",
		            def->var, ADHOC_VALUE_MAX);
	} else if (has_control_chars(text)) {
		set_outcome(reply, COMPONENT_BAD_REPLY, "the %s field contains control characters",
		            def->var);
	} else if (!(*dst = strdup(text))) {
		set_outcome(reply, COMPONENT_BAD_REPLY, "out of memory reading the %s field",
		            def->var);
	} else {
		ok = true;
	}
	if (text)
		xmpp_free(ctx, text);
	return ok;
}

static const struct form_field *find_field(const char *var)
{
	for (size_t i = 0; var && i < FORM_FIELD_COUNT; i++) {
		if (strcmp(form_fields[i].var, var) == 0)
			return &form_fields[i];
	}
	return NULL;
}

static void parse_form(xmpp_stanza_t *form, struct adhoc_reply *reply)
{
	bool seen[FORM_FIELD_COUNT] = {false};

	for (xmpp_stanza_t *c = xmpp_stanza_get_children(form); c; c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "field") != 0)
			continue;
		const struct form_field *def = find_field(xmpp_stanza_get_attribute(c, "var"));
		if (!def || seen[def - form_fields])
			continue; /* unknown, or a repeat: the first one wins */
		seen[def - form_fields] = true;
		if (!read_field(c, def, reply))
			goto err;
	}
	if (!reply->invite.uri) {
		set_outcome(reply, COMPONENT_BAD_REPLY, "the invite form has no uri value");
		goto err;
	}
	if (strncasecmp(reply->invite.uri, "xmpp:", 5) != 0) {
		set_outcome(reply, COMPONENT_BAD_REPLY, "the uri value is not an xmpp: URI");
		goto err;
	}
	/* It becomes the Location a browser follows and the link a web page
	 * shows: never a javascript: or data: URL, whoever sent it. */
	const char *landing = reply->invite.landing_url;
	if (landing && strncasecmp(landing, "https://", 8) != 0 &&
	    strncasecmp(landing, "http://", 7) != 0) {
		set_outcome(reply, COMPONENT_BAD_REPLY,
		            "the landing-url value is not an http(s) URL");
		goto err;
	}
	reply->status = COMPONENT_OK;
	return;
err:
	adhoc_reply_finish(reply);
}

/* The fields of a form to fill in, by var; any type, any order. */
static const struct {
	const char *var;
	enum adhoc_var bit;
} input_fields[] = {
    {"accountjid", ADHOC_VAR_ACCOUNTJID},
    {"roster-subscription", ADHOC_VAR_ROSTER},
    {"username", ADHOC_VAR_USERNAME},
};

/* FORM_TYPE's value, to copy back: one line, bounded. */
static void read_form_type(xmpp_stanza_t *field, struct adhoc_reply *reply)
{
	xmpp_ctx_t *ctx = xmpp_stanza_get_context(field);
	xmpp_stanza_t *value = xmpp_stanza_get_child_by_name(field, "value");
	char *text = value ? xmpp_stanza_get_text(value) : NULL;

	if (!reply->form_type && text && *text && strlen(text) <= ADHOC_VALUE_MAX &&
	    !has_control_chars(text))
		reply->form_type = strdup(text);
	if (text)
		xmpp_free(ctx, text);
}

static void parse_input_form(xmpp_stanza_t *form, struct adhoc_reply *reply)
{
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(form); c; c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "field") != 0)
			continue;
		const char *var = xmpp_stanza_get_attribute(c, "var");
		if (var && strcmp(var, "FORM_TYPE") == 0)
			read_form_type(c, reply);
		for (size_t i = 0; var && i < sizeof(input_fields) / sizeof(input_fields[0]); i++) {
			if (strcmp(var, input_fields[i].var) == 0)
				reply->vars |= input_fields[i].bit;
		}
	}
	reply->executing = true;
	reply->status = COMPONENT_OK;
}

static void parse_executing(xmpp_stanza_t *form, const char *note, struct adhoc_reply *reply)
{
	if (note)
		set_remote_error(reply, "undefined-condition", note);
	else if (!reply->sessionid[0])
		set_outcome(reply, COMPONENT_BAD_REPLY,
		            "the server asked for more input without a usable sessionid");
	else if (!form)
		set_outcome(reply, COMPONENT_BAD_REPLY,
		            "the server asked for more input without a data form");
	else
		parse_input_form(form, reply);
}

static void read_sessionid(xmpp_stanza_t *command, struct adhoc_reply *reply)
{
	const char *sid = xmpp_stanza_get_attribute(command, "sessionid");
	if (sid && strlen(sid) < sizeof(reply->sessionid) && !has_control_chars(sid))
		snprintf(reply->sessionid, sizeof(reply->sessionid), "%s", sid);
}

static void parse_command(xmpp_stanza_t *iq, struct adhoc_reply *reply)
{
	xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
	xmpp_stanza_t *command = xmpp_stanza_get_child_by_name_and_ns(iq, "command", NS_COMMANDS);
	if (!command) {
		set_outcome(reply, COMPONENT_BAD_REPLY, "the reply has no <command/> element");
		return;
	}
	const char *status = xmpp_stanza_get_attribute(command, "status");
	read_sessionid(command, reply);
	xmpp_stanza_t *form = xmpp_stanza_get_child_by_name_and_ns(command, "x", NS_DATA_FORMS);
	char *note = child_text(command, "note", "error");

	if (!status) {
		set_outcome(reply, COMPONENT_BAD_REPLY, "the <command/> has no status");
	} else if (strcmp(status, "completed") == 0 && form) {
		parse_form(form, reply);
	} else if (strcmp(status, "completed") == 0 && note) {
		set_remote_error(reply, "undefined-condition", note);
	} else if (strcmp(status, "completed") == 0) {
		set_outcome(reply, COMPONENT_BAD_REPLY, "the completed command has no data form");
	} else if (strcmp(status, "canceled") == 0) {
		set_remote_error(reply, "undefined-condition",
		                 note ? note : "the server canceled the command");
	} else if (strcmp(status, "executing") == 0) {
		parse_executing(form, note, reply);
	} else {
		set_outcome(reply, COMPONENT_BAD_REPLY, "unknown command status '%.32s'", status);
	}
	if (note)
		xmpp_free(ctx, note);
}

void adhoc_reply_parse(xmpp_stanza_t *iq, struct adhoc_reply *reply)
{
	memset(reply, 0, sizeof(*reply));
	if (!iq || !xmpp_stanza_is_tag(iq) || strcmp(xmpp_stanza_get_name(iq), "iq") != 0) {
		set_outcome(reply, COMPONENT_BAD_REPLY, "the reply is not an <iq/> stanza");
		return;
	}
	const char *type = xmpp_stanza_get_type(iq);
	if (type && strcmp(type, "error") == 0)
		parse_error(iq, reply);
	else if (type && strcmp(type, "result") == 0)
		parse_command(iq, reply);
	else
		set_outcome(reply, COMPONENT_BAD_REPLY, "the reply has type '%.32s', not result",
		            type ? type : "");
}

void adhoc_reply_finish(struct adhoc_reply *reply)
{
	free(reply->invite.landing_url);
	free(reply->invite.uri);
	free(reply->invite.expire);
	free(reply->form_type);
	reply->invite = (struct invite){0};
	reply->form_type = NULL;
}

/* ---- disco#items on the commands node ----------------------------------------- */

static void read_items(xmpp_stanza_t *query, struct discovery_reply *reply)
{
	const enum invite_kind kinds[] = {INVITE_ACCOUNT, INVITE_RESET};

	for (xmpp_stanza_t *c = xmpp_stanza_get_children(query); c; c = xmpp_stanza_get_next(c)) {
		const char *node =
		    xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "item") == 0
		        ? xmpp_stanza_get_attribute(c, "node")
		        : NULL;
		for (size_t k = 0; node && k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			if (strcmp(node, invite_node(kinds[k])) == 0)
				reply->offers[kinds[k]] = true;
		}
	}
	reply->ok = true;
}

void discovery_reply_parse(xmpp_stanza_t *iq, struct discovery_reply *reply)
{
	const char *type = xmpp_stanza_get_type(iq);
	xmpp_stanza_t *query = xmpp_stanza_get_child_by_name_and_ns(iq, "query", NS_DISCO_ITEMS);

	memset(reply, 0, sizeof(*reply));
	if (type && strcmp(type, "error") == 0) {
		struct adhoc_reply error;
		memset(&error, 0, sizeof(error));
		parse_error(iq, &error);
		snprintf(reply->condition, sizeof(reply->condition), "%s", error.condition);
		if (strcmp(error.reason, error.condition) == 0)
			snprintf(reply->reason, sizeof(reply->reason), "%s", error.condition);
		else
			snprintf(reply->reason, sizeof(reply->reason), "%.60s: %.180s",
			         error.condition, error.reason);
	} else if (type && strcmp(type, "result") == 0 && query) {
		read_items(query, reply);
	} else {
		snprintf(reply->reason, sizeof(reply->reason),
		         "the reply is not a disco#items result");
	}
}
