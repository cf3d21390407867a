/*
 * jabber:x:data (XEP-0004) for the component's own commands: forms built from
 * the small structs of component.h, and submitted forms read back.
 *
 * A submitted form is checked against the form that was sent, kept as XML in
 * the session, not against what the client claims: only fields we sent are
 * read, list values must be among the options we offered, and hidden fields
 * keep our values whatever comes back. So a command's submit() can trust that
 * a list value is one it offered, e.g. the ID of a key it listed.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "component-internal.h"

/* ---- building stanzas ----------------------------------------------------- */

xmpp_stanza_t *build_element(struct build *b, xmpp_stanza_t *parent, const char *name,
                             const char *ns)
{
	xmpp_stanza_t *el;

	if (b->failed)
		return NULL;
	el = xmpp_stanza_new(b->ctx);
	if (!el || xmpp_stanza_set_name(el, name) != XMPP_EOK ||
	    (ns && xmpp_stanza_set_ns(el, ns) != XMPP_EOK) ||
	    (parent && xmpp_stanza_add_child_ex(parent, el, 0) != XMPP_EOK)) {
		if (el)
			xmpp_stanza_release(el);
		b->failed = true;
		return NULL;
	}
	return el;
}

xmpp_stanza_t *build_text(struct build *b, xmpp_stanza_t *parent, const char *name,
                          const char *text)
{
	if (!text)
		return NULL;
	xmpp_stanza_t *el = build_element(b, parent, name, NULL);
	xmpp_stanza_t *content = el ? xmpp_stanza_new(b->ctx) : NULL;

	if (el && (!content || xmpp_stanza_set_text(content, text) != XMPP_EOK ||
	           xmpp_stanza_add_child_ex(el, content, 0) != XMPP_EOK)) {
		if (content)
			xmpp_stanza_release(content);
		b->failed = true;
		return NULL;
	}
	return el;
}

void build_attribute(struct build *b, xmpp_stanza_t *el, const char *name, const char *value)
{
	if (!b->failed && el && value && xmpp_stanza_set_attribute(el, name, value) != XMPP_EOK)
		b->failed = true;
}

xmpp_stanza_t *build_finish(struct build *b, xmpp_stanza_t *root)
{
	if (b->failed && root) {
		xmpp_stanza_release(root);
		root = NULL;
	}
	return root;
}

/* ---- building forms -------------------------------------------------------- */

/* Sorted like the enum of component.h. */
static const char *const field_types[] = {
    [COMPONENT_FIELD_TEXT_SINGLE] = "text-single", [COMPONENT_FIELD_LIST_SINGLE] = "list-single",
    [COMPONENT_FIELD_LIST_MULTI] = "list-multi",   [COMPONENT_FIELD_BOOLEAN] = "boolean",
    [COMPONENT_FIELD_JID_SINGLE] = "jid-single",   [COMPONENT_FIELD_FIXED] = "fixed",
    [COMPONENT_FIELD_HIDDEN] = "hidden",
};

static const char *field_type_name(enum component_field_type type)
{
	return (unsigned)type < sizeof(field_types) / sizeof(field_types[0]) ? field_types[type]
	                                                                     : "text-single";
}

static void build_field(struct build *b, xmpp_stanza_t *parent, const struct component_field *f)
{
	xmpp_stanza_t *field = build_element(b, parent, "field", NULL);

	build_attribute(b, field, "type", field_type_name(f->type));
	build_attribute(b, field, "var", f->var);
	build_attribute(b, field, "label", f->label);
	build_text(b, field, "desc", f->desc);
	if (f->required)
		build_element(b, field, "required", NULL);
	if (f->values) {
		for (size_t i = 0; i < f->n_values; i++)
			build_text(b, field, "value", f->values[i]);
	} else {
		build_text(b, field, "value", f->value);
	}
	for (size_t i = 0; i < f->n_options; i++) {
		xmpp_stanza_t *option = build_element(b, field, "option", NULL);
		build_attribute(b, option, "label", f->options[i].label);
		build_text(b, option, "value", f->options[i].value);
	}
}

static void build_table(struct build *b, xmpp_stanza_t *x, const struct component_form *form)
{
	xmpp_stanza_t *reported = build_element(b, x, "reported", NULL);

	for (size_t c = 0; c < form->n_columns; c++) {
		xmpp_stanza_t *field = build_element(b, reported, "field", NULL);
		build_attribute(b, field, "var", form->columns[c].var);
		build_attribute(b, field, "label", form->columns[c].label);
		build_attribute(b, field, "type", field_type_name(form->columns[c].type));
	}
	for (size_t r = 0; r < form->n_rows; r++) {
		xmpp_stanza_t *item = build_element(b, x, "item", NULL);
		for (size_t c = 0; c < form->n_columns; c++) {
			xmpp_stanza_t *field = build_element(b, item, "field", NULL);
			build_attribute(b, field, "var", form->columns[c].var);
			build_text(b, field, "value", form->cells[r * form->n_columns + c]);
		}
	}
}

xmpp_stanza_t *dataform_build(xmpp_ctx_t *ctx, const struct component_form *form, const char *type)
{
	struct build b = {.ctx = ctx};
	xmpp_stanza_t *x = build_element(&b, NULL, "x", NS_DATA_FORMS);

	build_attribute(&b, x, "type", type);
	build_text(&b, x, "title", form->title);
	build_text(&b, x, "instructions", form->instructions);
	for (size_t i = 0; i < form->n_fields; i++)
		build_field(&b, x, &form->fields[i]);
	if (form->n_columns > 0)
		build_table(&b, x, form);
	return build_finish(&b, x);
}

/* ---- reading submitted forms ----------------------------------------------- */

struct dataform_value {
	char *var;
	char *value;
};

struct dataform_values {
	struct dataform_value *items;
	size_t n;
};

void dataform_values_free(struct dataform_values *values)
{
	if (!values)
		return;
	for (size_t i = 0; i < values->n; i++) {
		free(values->items[i].var);
		free(values->items[i].value);
	}
	free(values->items);
	free(values);
}

size_t dataform_count(const struct dataform_values *values, const char *var)
{
	size_t n = 0;
	for (size_t i = 0; values && var && i < values->n; i++)
		n += strcmp(values->items[i].var, var) == 0;
	return n;
}

const char *dataform_value(const struct dataform_values *values, const char *var, size_t index)
{
	for (size_t i = 0; values && var && i < values->n; i++) {
		if (strcmp(values->items[i].var, var) == 0 && index-- == 0)
			return values->items[i].value;
	}
	return NULL;
}

/* The check of one form: what was sent, what came back, what is kept. */
struct reading {
	struct dataform_values *values;
	char *why;
	size_t why_size;
	enum dataform_check outcome;
};

static void invalid(struct reading *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void invalid(struct reading *rd, const char *fmt, ...)
{
	va_list ap;

	if (rd->outcome != DATAFORM_OK)
		return;
	va_start(ap, fmt);
	vsnprintf(rd->why, rd->why_size, fmt, ap);
	va_end(ap);
	rd->outcome = DATAFORM_INVALID;
}

static void keep(struct reading *rd, const char *var, const char *value)
{
	struct dataform_values *v = rd->values;

	if (rd->outcome != DATAFORM_OK)
		return;
	if (v->n == FORM_VALUES_MAX) {
		invalid(rd, "The form has more than %d values.", FORM_VALUES_MAX);
		return;
	}
	if (v->n % 16 == 0) {
		struct dataform_value *items = realloc(v->items, (v->n + 16) * sizeof(*items));
		if (!items)
			goto nomem;
		v->items = items;
	}
	v->items[v->n].var = strdup(var);
	v->items[v->n].value = strdup(value);
	if (!v->items[v->n].var || !v->items[v->n].value) {
		free(v->items[v->n].var);
		free(v->items[v->n].value);
		goto nomem;
	}
	v->n++;
	return;
nomem:
	rd->outcome = DATAFORM_NO_MEMORY;
}

/* The text of el, when it is one text node (what clients send); NULL when el is
 * NULL or empty. Borrowed. */
static const char *text_of(xmpp_stanza_t *el)
{
	xmpp_stanza_t *text = el ? xmpp_stanza_get_children(el) : NULL;
	const char *s = text && xmpp_stanza_is_text(text) ? xmpp_stanza_get_text_ptr(text) : NULL;
	return s && *s ? s : NULL;
}

static xmpp_stanza_t *find_field(xmpp_stanza_t *x, const char *var)
{
	for (xmpp_stanza_t *c = x ? xmpp_stanza_get_children(x) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		const char *v =
		    xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "field") == 0
		        ? xmpp_stanza_get_attribute(c, "var")
		        : NULL;
		if (v && strcmp(v, var) == 0)
			return c;
	}
	return NULL;
}

/* Is value the value of one of the field's <option/>s? */
static bool offered(xmpp_stanza_t *field, const char *value)
{
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(field); c; c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "option") != 0)
			continue;
		const char *text = text_of(xmpp_stanza_get_child_by_name(c, "value"));
		if (text && strcmp(text, value) == 0)
			return true;
	}
	return false;
}

static bool single_valued(const char *type)
{
	return strcmp(type, "list-multi") != 0 && strcmp(type, "text-multi") != 0 &&
	       strcmp(type, "jid-multi") != 0;
}

/* Check one value of a field we sent; keep it (a boolean as "true"/"false"). */
static void read_value(struct reading *rd, xmpp_stanza_t *sent, const char *type, const char *label,
                       const char *value)
{
	const char *var = xmpp_stanza_get_attribute(sent, "var");

	if (strlen(value) > ADHOC_VALUE_MAX) {
		invalid(rd, "%s is too long.", label);
	} else if (strcmp(type, "boolean") == 0) {
		bool yes = strcmp(value, "1") == 0 || strcmp(value, "true") == 0;
		if (!yes && strcmp(value, "0") != 0 && strcmp(value, "false") != 0)
			invalid(rd, "%s must be true or false.", label);
		keep(rd, var, yes ? "true" : "false");
		return;
	} else if (strncmp(type, "list-", 5) == 0 && !offered(sent, value)) {
		/* Quoted cut to one line of at most 64 bytes on a character
		 * boundary: half a character would make the stanza invalid XML. */
		char shown[65];
		reason_copy(shown, sizeof(shown), value);
		invalid(rd, "%s: \"%s\" is not one of the choices.", label, shown);
	} else if (single_valued(type) && has_control_chars(value)) {
		invalid(rd, "%s must be one line of text.", label);
	} else if (strncmp(type, "jid-", 4) == 0 && strpbrk(value, " \t") != NULL) {
		invalid(rd, "%s is not a JID.", label);
	}
	keep(rd, var, value);
}

static void read_field(struct reading *rd, xmpp_stanza_t *sent, xmpp_stanza_t *submitted)
{
	const char *var = xmpp_stanza_get_attribute(sent, "var");
	const char *type = xmpp_stanza_get_type(sent);
	const char *label = xmpp_stanza_get_attribute(sent, "label");
	size_t count = 0;

	if (!type)
		type = "text-single";
	if (!var || strcmp(type, "fixed") == 0)
		return;
	if (!label)
		label = var;
	/* hidden fields keep what we sent, whatever came back; a field left out
	 * keeps what we showed (some clients send only what was changed) */
	xmpp_stanza_t *from = strcmp(type, "hidden") == 0 ? NULL : find_field(submitted, var);
	if (!from)
		from = sent;
	for (xmpp_stanza_t *c = from ? xmpp_stanza_get_children(from) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		const char *value =
		    xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "value") == 0
		        ? text_of(c)
		        : NULL;
		if (!value)
			continue;
		if (++count > 1 && single_valued(type))
			invalid(rd, "%s takes a single value.", label);
		read_value(rd, sent, type, label, value);
	}
	if (count == 0 && xmpp_stanza_get_child_by_name(sent, "required"))
		invalid(rd, "%s is required.", label);
}

enum dataform_check dataform_read(xmpp_ctx_t *ctx, const char *sent, xmpp_stanza_t *submitted,
                                  struct dataform_values **values, char *why, size_t why_size)
{
	struct reading rd = {.why = why, .why_size = why_size};
	xmpp_stanza_t *form = xmpp_stanza_new_from_string(ctx, sent);

	*values = NULL;
	if (why_size > 0)
		why[0] = '\0';
	rd.values = calloc(1, sizeof(*rd.values));
	if (!form || !rd.values) {
		rd.outcome = DATAFORM_NO_MEMORY;
		goto out;
	}
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(form); c && rd.outcome == DATAFORM_OK;
	     c = xmpp_stanza_get_next(c)) {
		if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "field") == 0)
			read_field(&rd, c, submitted);
	}
out:
	if (form)
		xmpp_stanza_release(form);
	if (rd.outcome == DATAFORM_OK) {
		*values = rd.values;
	} else {
		dataform_values_free(rd.values);
	}
	return rd.outcome;
}
