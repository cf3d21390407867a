/*
 * The key commands of adhoc_keys.h. Each is one form and one submission (or
 * none, when there is nothing to choose); component/ runs the sessions and
 * checks the submitted forms against what was shown, so a submitted host is
 * one of [component] hosts and a key to revoke is one this file listed.
 *
 * A revoke option's value is "HOST ID": neither part may contain a space.
 *
 * Prosody drops the component's stream when a stanza passes its
 * component_stanza_size_limit (512 KiB by default), so a list or revoke form
 * is bounded twice: ROWS_MAX rows (about 160 KiB of markup at most) and
 * ROWS_TEXT_MAX of text in them, counted as XML-escaped, since a name of 200
 * quotes takes 1200 bytes there. Keys past either bound are counted, not
 * shown, and a note says so.
 */

#include "adhoc_keys.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "log.h"

#define ROWS_MAX          500        /* keys shown in one list or revoke form */
#define ROWS_TEXT_MAX     (64 << 10) /* bytes of their escaped text in that form */
#define LIMIT_INVITES_MAX 1000000    /* invites per period, in a limit like 20/1d */
#define NOTE_MAX          512
#define N_COLUMNS         8
#define ALLOW_MAX         2 /* permissions a key can have */

/* A stored key, copied out of keystore_list(), with its cells for display. */
struct key_row {
	const char *host; /* the config's spelling */
	char id[KEYS_ID_MAX + 1];
	char *name;
	char *option_value; /* revoke: "HOST ID" */
	char *option_label; /* revoke: "ID — name", "HOST: ID — name" with several hosts */
	char created[24], expires[40], last_used[24], invites[24], limit[40], allow[32];
};

struct key_list {
	struct key_row *rows;
	size_t n, total;  /* rows kept, keys seen */
	size_t text_size; /* escaped text of the rows kept, at most ROWS_TEXT_MAX */
	const char *host;
	bool revoke; /* the rows are for the revoke form, not the list */
	bool full;   /* no more rows are kept */
	bool out_of_memory;
};

/* ---- helpers -------------------------------------------------------------- */

static void format_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "%lld", (long long)t);
}

static void format_limit(const struct api_key_limits *limits, char *buf, size_t size)
{
	char period[24];

	if (limits->max_invites == 0)
		snprintf(buf, size, "none");
	else
		snprintf(buf, size, "%u/%s", limits->max_invites,
		         duration_format(limits->period_s, period, sizeof(period)));
}

static void format_expires(const struct api_key_limits *limits, int64_t now, char *buf, size_t size)
{
	char when[24];

	if (limits->expires == 0) {
		snprintf(buf, size, "never");
		return;
	}
	format_time(limits->expires, when, sizeof(when));
	snprintf(buf, size, "%s%s", when, keys_expired(limits, now) ? " (expired)" : "");
}

/* *out: a copy of s without leading and trailing spaces, NULL if nothing is
 * left. -1 when out of memory. */
static int trimmed(const char *s, char **out)
{
	*out = NULL;
	if (!s)
		return 0;
	s += strspn(s, " \t");
	size_t len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len > 0 && !(*out = strndup(s, len)))
		return -1;
	return 0;
}

/* Lifetime "30d" and limit "20/1d" into limits; -1 with a sentence in why. */
static int parse_limits(const char *lifetime, const char *limit, int64_t now,
                        struct api_key_limits *limits, char *why, size_t size)
{
	const char *err = NULL;
	int64_t seconds;

	*limits = (struct api_key_limits){0};
	if (lifetime && duration_parse(lifetime, &seconds, &err) < 0) {
		snprintf(why, size, "Lifetime: %s.", err);
		return -1;
	}
	if (lifetime)
		limits->expires = now + seconds;
	if (!limit)
		return 0;

	char *end;
	unsigned long count = strtoul(limit, &end, 10);
	if (limit[0] < '0' || limit[0] > '9' || *end != '/' || count == 0 ||
	    count > LIMIT_INVITES_MAX) {
		snprintf(why, size,
		         "Invite limit: write a number of invites (1 to %d), a slash and a "
		         "period, e.g. 20/1d.",
		         LIMIT_INVITES_MAX);
		return -1;
	}
	if (duration_parse(end + 1, &seconds, &err) < 0 || seconds > UINT_MAX) {
		snprintf(why, size, "Invite limit: %s.", err ? err : "the period is too long");
		return -1;
	}
	limits->max_invites = (unsigned)count;
	limits->period_s = (unsigned)seconds;
	return 0;
}

static const char *requester(const struct component_step *step)
{
	return component_step_requester(step);
}

/* A store failure ends the command: log it once, tell the user. */
static enum component_step_status store_failed(struct component_step *step, const char *what,
                                               const char *err)
{
	char note[NOTE_MAX];

	log_error("key store: %s (asked by %s over XMPP): %s", what, requester(step), err);
	snprintf(note, sizeof(note), "The key store failed: %s.", err);
	component_step_note(step, COMPONENT_NOTE_ERROR, note);
	return COMPONENT_STEP_COMPLETED;
}

static enum component_step_status out_of_memory(struct component_step *step)
{
	log_error("out of memory in an XMPP key command");
	component_step_note(step, COMPONENT_NOTE_ERROR, "The service ran out of memory.");
	return COMPONENT_STEP_COMPLETED;
}

/* ---- reading the store ----------------------------------------------------- */

/* Bytes s takes in a stanza at worst: libstrophe escapes '"' as "&quot;". */
static size_t escaped_len(const char *s)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		n += *p == '"' || *p == '\'' || *p < 0x20 ? 6
		     : *p == '&'                          ? 5
		     : *p == '<' || *p == '>'             ? 4
		                                          : 1;
	return n;
}

/* The text a row puts in its form: the cells of the list, or the value
 * "HOST ID" and the label "HOST: ID \u2014 NAME" of a revoke option. */
static size_t row_text_size(const struct key_row *r, const char *name, bool revoke)
{
	size_t id = escaped_len(r->id), host = escaped_len(r->host);

	if (revoke)
		return 2 * (host + id) + escaped_len(name) + 8;
	return id + escaped_len(name) + strlen(r->created) + strlen(r->expires) +
	       strlen(r->last_used) + strlen(r->invites) + strlen(r->limit) + strlen(r->allow);
}

static void format_row(struct key_row *row, const struct api_key_info *key, int64_t now)
{
	snprintf(row->id, sizeof(row->id), "%s", key->id);
	format_time(key->created, row->created, sizeof(row->created));
	format_expires(&key->limits, now, row->expires, sizeof(row->expires));
	if (key->last_used)
		format_time(key->last_used, row->last_used, sizeof(row->last_used));
	else
		snprintf(row->last_used, sizeof(row->last_used), "never");
	snprintf(row->invites, sizeof(row->invites), "%llu", (unsigned long long)key->invites);
	format_limit(&key->limits, row->limit, sizeof(row->limit));
	keys_allow_format(key->limits.allow, row->allow, sizeof(row->allow));
}

static int collect_row(void *userdata, const struct api_key_info *key)
{
	struct key_list *list = userdata;
	struct key_row row = {.host = list->host};

	list->total++;
	if (list->full)
		return 0; /* keep counting */
	format_row(&row, key, time(NULL));
	size_t size = row_text_size(&row, key->name, list->revoke);
	if (list->n == ROWS_MAX || list->text_size + size > ROWS_TEXT_MAX) {
		list->full = true; /* later keys, even small ones, would not be "the first" */
		return 0;
	}
	if (list->n % 32 == 0) {
		struct key_row *rows = realloc(list->rows, (list->n + 32) * sizeof(*rows));
		if (!rows)
			goto nomem;
		list->rows = rows;
	}
	if (!(row.name = strdup(key->name)))
		goto nomem;
	list->rows[list->n++] = row;
	list->text_size += size;
	return 0;
nomem:
	list->out_of_memory = true;
	return 1;
}

static void key_list_finish(struct key_list *list)
{
	for (size_t i = 0; i < list->n; i++) {
		free(list->rows[i].name);
		free(list->rows[i].option_value);
		free(list->rows[i].option_label);
	}
	free(list->rows);
	*list = (struct key_list){0};
}

/* Append the keys of host to list. */
static enum keys_status collect(struct adhoc_keys *keys, const char *host, struct key_list *list,
                                const char **err)
{
	list->host = host;
	enum keys_status status = keystore_list(keys->store, host, collect_row, list, err);
	if (status == KEYS_OK && list->out_of_memory) {
		*err = "out of memory";
		return KEYS_ERROR;
	}
	return status;
}

/* Every key of every host, for revoke. */
static enum keys_status collect_all(struct adhoc_keys *keys, struct key_list *list,
                                    const char **err)
{
	const struct config *cfg = keys->cfg;

	list->revoke = true;
	for (size_t i = 0; i < cfg->component.n_hosts; i++) {
		enum keys_status status = collect(keys, cfg->component.hosts[i], list, err);
		if (status != KEYS_OK)
			return status;
	}
	return KEYS_OK;
}

/* ---- Create API key ----------------------------------------------------------- */

/* What a key may make, as the form offers it; a new key makes account
 * invites unless the admin chooses otherwise. */
static const struct component_option allow_options[ALLOW_MAX] = {
    {.value = "account", .label = "Account invites"},
    {.value = "reset", .label = "Password-reset invites (can take over an account)"},
};
static const char *const allow_default[] = {"account"};

/* The permission names chosen in a submitted form. */
struct allow_choice {
	const char *values[ALLOW_MAX];
	size_t n;
};

static int show_create_form(struct adhoc_keys *keys, struct component_step *step, const char *host,
                            const char *name, const char *lifetime, const char *limit,
                            const struct allow_choice *allow)
{
	const struct config *cfg = keys->cfg;
	struct component_option hosts[CONFIG_HOSTS_MAX];

	for (size_t i = 0; i < cfg->component.n_hosts; i++)
		hosts[i] = (struct component_option){.value = cfg->component.hosts[i]};
	const struct component_field fields[] = {
	    {.type = COMPONENT_FIELD_LIST_SINGLE,
	     .var = "host",
	     .label = "Host",
	     .desc = "The host the key creates invites for",
	     .required = true,
	     .value = host                          ? host
	              : cfg->component.n_hosts == 1 ? cfg->component.hosts[0]
	                                            : NULL,
	     .options = hosts,
	     .n_options = cfg->component.n_hosts},
	    {.type = COMPONENT_FIELD_TEXT_SINGLE,
	     .var = "name",
	     .label = "Name",
	     .desc = "What the key is for, e.g. Signup page",
	     .required = true,
	     .value = name},
	    {.type = COMPONENT_FIELD_TEXT_SINGLE,
	     .var = "lifetime",
	     .label = "Lifetime",
	     .desc = "Optional: the key stops working after this long, e.g. 30d, 12h, 2w. "
	             "Empty: never",
	     .value = lifetime},
	    {.type = COMPONENT_FIELD_TEXT_SINGLE,
	     .var = "limit",
	     .label = "Invite limit",
	     .desc = "Optional: at most this many invites per period, e.g. 20/1d. Empty: no "
	             "limit",
	     .value = limit},
	    {.type = COMPONENT_FIELD_LIST_MULTI,
	     .var = "allow",
	     .label = "May create",
	     .desc = "What the key may ask for. A password-reset invite lets its holder take "
	             "over the account: allow it only for keys that need it",
	     .required = true,
	     .values = allow != NULL ? allow->values : allow_default,
	     .n_values = allow != NULL ? allow->n : 1,
	     .options = allow_options,
	     .n_options = ALLOW_MAX},
	};
	const struct component_form form = {
	    .title = "Create API key",
	    .instructions = "The new key is shown once, when it has been stored.",
	    .fields = fields,
	    .n_fields = sizeof(fields) / sizeof(fields[0]),
	};
	return component_step_form(step, &form);
}

static enum component_step_status create_execute(void *userdata, struct component_step *step)
{
	return show_create_form(userdata, step, NULL, NULL, NULL, NULL, NULL) == 0
	           ? COMPONENT_STEP_EXECUTING
	           : out_of_memory(step);
}

static void show_new_key(struct component_step *step, const char *host, const char *name,
                         const struct api_key_new *key, const struct api_key_limits *limits)
{
	char expires[40], limit[40], allow[32];

	format_expires(limits, time(NULL), expires, sizeof(expires));
	format_limit(limits, limit, sizeof(limit));
	keys_allow_format(limits->allow, allow, sizeof(allow));
	const struct component_field fields[] = {
	    {.type = COMPONENT_FIELD_TEXT_SINGLE,
	     .var = "key",
	     .label = "API key",
	     .desc = "Use it as ?key=ID/SECRET or Authorization: Bearer ID/SECRET",
	     .value = key->text},
	    {.type = COMPONENT_FIELD_TEXT_SINGLE, .var = "id", .label = "ID", .value = key->id},
	    {.type = COMPONENT_FIELD_TEXT_SINGLE, .var = "host", .label = "Host", .value = host},
	    {.type = COMPONENT_FIELD_TEXT_SINGLE, .var = "name", .label = "Name", .value = name},
	    {.type = COMPONENT_FIELD_TEXT_SINGLE,
	     .var = "expires",
	     .label = "Expires",
	     .value = expires},
	    {.type = COMPONENT_FIELD_TEXT_SINGLE,
	     .var = "limit",
	     .label = "Invite limit",
	     .value = limit},
	    {.type = COMPONENT_FIELD_TEXT_SINGLE,
	     .var = "allow",
	     .label = "May create",
	     .value = allow},
	};
	const struct component_form form = {
	    .title = "API key created",
	    .fields = fields,
	    .n_fields = sizeof(fields) / sizeof(fields[0]),
	};
	component_step_form(step, &form);
	component_step_note(step, COMPONENT_NOTE_INFO,
	                    "Copy the key now: it will not be shown again. Only its hash is "
	                    "stored.");
}

/* The chosen permissions into choice, and as KEYS_ALLOW_* bits (the
 * framework checked that each is an option and that there is one). */
static unsigned read_allow(struct component_step *step, struct allow_choice *choice)
{
	const char *bad = NULL;
	unsigned bit = 0, allow = 0;

	choice->n = 0;
	for (size_t i = 0; i < component_step_count(step, "allow") && choice->n < ALLOW_MAX; i++) {
		const char *value = component_step_value(step, "allow", i);
		if (keys_allow_parse(value, &bit, &bad) == 0) {
			choice->values[choice->n++] = value;
			allow |= bit;
		}
	}
	return allow;
}

static enum component_step_status create_submit(void *userdata, struct component_step *step)
{
	struct adhoc_keys *keys = userdata;
	const char *host = component_step_value(step, "host", 0);
	char *name, *lifetime, *limit;
	struct api_key_limits limits;
	struct api_key_new key;
	const char *err = NULL;
	char why[NOTE_MAX];
	enum component_step_status status = COMPONENT_STEP_INVALID;
	struct allow_choice allow;
	unsigned allow_bits = read_allow(step, &allow);

	/* each call sets its output, so all three can be freed */
	if ((trimmed(component_step_value(step, "name", 0), &name) |
	     trimmed(component_step_value(step, "lifetime", 0), &lifetime) |
	     trimmed(component_step_value(step, "limit", 0), &limit)) < 0) {
		status = out_of_memory(step);
		goto out;
	}
	if (parse_limits(lifetime, limit, time(NULL), &limits, why, sizeof(why)) < 0)
		goto again;
	limits.allow = allow_bits;
	switch (keystore_create(keys->store, host, name ? name : "", &limits, &key, &err)) {
	case KEYS_OK:
		break;
	case KEYS_INVALID:
		snprintf(why, sizeof(why), "The key was not created: %s.", err);
		goto again;
	default:
		status = store_failed(step, "cannot create a key", err);
		goto out;
	}
	char allowed[32];
	log_info("%s created API key %s (%s) on %s over XMPP, allowed: %s", requester(step), key.id,
	         name, host, keys_allow_format(limits.allow, allowed, sizeof(allowed)));
	show_new_key(step, host, name, &key, &limits);
	keys_wipe(&key);
	status = COMPONENT_STEP_COMPLETED;
	goto out;

again:
	/* the form again, with what was typed */
	show_create_form(keys, step, host, name, lifetime, limit, &allow);
	component_step_note(step, COMPONENT_NOTE_ERROR, why);
out:
	free(name);
	free(lifetime);
	free(limit);
	return status;
}

/* ---- List API keys ------------------------------------------------------------- */

static enum component_step_status show_keys(struct adhoc_keys *keys, struct component_step *step,
                                            const char *host)
{
	static const struct component_field columns[N_COLUMNS] = {
	    {.var = "id", .label = "ID"},
	    {.var = "name", .label = "Name"},
	    {.var = "created", .label = "Created"},
	    {.var = "expires", .label = "Expires"},
	    {.var = "last-used", .label = "Last used"},
	    {.var = "invites", .label = "Invites"},
	    {.var = "limit", .label = "Invite limit"},
	    {.var = "allow", .label = "May create"},
	};
	struct key_list list = {0};
	const char *err = NULL;
	char text[NOTE_MAX];
	enum component_step_status status = COMPONENT_STEP_COMPLETED;

	if (collect(keys, host, &list, &err) != KEYS_OK) {
		status = store_failed(step, "cannot list keys", err);
		goto out;
	}
	if (list.n == 0) {
		snprintf(text, sizeof(text), "No API keys on %s.", host);
		component_step_note(step, COMPONENT_NOTE_INFO, text);
		goto out;
	}
	const char **cells = calloc(list.n * N_COLUMNS, sizeof(*cells));
	if (!cells) {
		status = out_of_memory(step);
		goto out;
	}
	for (size_t i = 0; i < list.n; i++) {
		const struct key_row *r = &list.rows[i];
		const char *row[N_COLUMNS] = {r->id,        r->name,    r->created, r->expires,
		                              r->last_used, r->invites, r->limit,   r->allow};
		memcpy(&cells[i * N_COLUMNS], row, sizeof(row));
	}
	snprintf(text, sizeof(text), "API keys on %s", host);
	const struct component_form form = {
	    .title = text,
	    .columns = columns,
	    .n_columns = N_COLUMNS,
	    .cells = cells,
	    .n_rows = list.n,
	};
	component_step_form(step, &form);
	free(cells);
	if (list.total > list.n) {
		snprintf(text, sizeof(text), "Showing the first %zu of %zu keys.", list.n,
		         list.total);
		component_step_note(step, COMPONENT_NOTE_WARN, text);
	}
out:
	key_list_finish(&list);
	return status;
}

static enum component_step_status list_execute(void *userdata, struct component_step *step)
{
	struct adhoc_keys *keys = userdata;
	const struct config *cfg = keys->cfg;
	struct component_option hosts[CONFIG_HOSTS_MAX];

	if (cfg->component.n_hosts == 1)
		return show_keys(keys, step, cfg->component.hosts[0]);
	for (size_t i = 0; i < cfg->component.n_hosts; i++)
		hosts[i] = (struct component_option){.value = cfg->component.hosts[i]};
	const struct component_field field = {
	    .type = COMPONENT_FIELD_LIST_SINGLE,
	    .var = "host",
	    .label = "Host",
	    .required = true,
	    .options = hosts,
	    .n_options = cfg->component.n_hosts,
	};
	const struct component_form form = {
	    .title = "List API keys", .fields = &field, .n_fields = 1};
	return component_step_form(step, &form) == 0 ? COMPONENT_STEP_EXECUTING
	                                             : out_of_memory(step);
}

static enum component_step_status list_submit(void *userdata, struct component_step *step)
{
	return show_keys(userdata, step, component_step_value(step, "host", 0));
}

/* ---- Revoke API key --------------------------------------------------------- */

static int label_rows(struct key_list *list, bool several_hosts)
{
	for (size_t i = 0; i < list->n; i++) {
		struct key_row *r = &list->rows[i];
		if (asprintf(&r->option_value, "%s %s", r->host, r->id) < 0) {
			r->option_value = NULL;
			return -1;
		}
		if (asprintf(&r->option_label, "%s%s%s \u2014 %s", several_hosts ? r->host : "",
		             several_hosts ? ": " : "", r->id, r->name) < 0) {
			r->option_label = NULL;
			return -1;
		}
	}
	return 0;
}

static enum component_step_status revoke_execute(void *userdata, struct component_step *step)
{
	struct adhoc_keys *keys = userdata;
	struct key_list list = {0};
	const char *err = NULL;
	enum component_step_status status = COMPONENT_STEP_EXECUTING;

	if (collect_all(keys, &list, &err) != KEYS_OK) {
		status = store_failed(step, "cannot list keys", err);
		goto out;
	}
	if (list.n == 0) {
		component_step_note(step, COMPONENT_NOTE_INFO, "There are no API keys to revoke.");
		status = COMPONENT_STEP_COMPLETED;
		goto out;
	}
	struct component_option *options = calloc(list.n, sizeof(*options));
	if (!options || label_rows(&list, keys->cfg->component.n_hosts > 1) < 0) {
		free(options);
		status = out_of_memory(step);
		goto out;
	}
	for (size_t i = 0; i < list.n; i++)
		options[i] = (struct component_option){.value = list.rows[i].option_value,
		                                       .label = list.rows[i].option_label};
	const struct component_field field = {
	    .type = COMPONENT_FIELD_LIST_MULTI,
	    .var = "keys",
	    .label = "Keys to revoke",
	    .required = true,
	    .options = options,
	    .n_options = list.n,
	};
	const struct component_form form = {
	    .title = "Revoke API key",
	    .instructions = "Revoked keys stop working at once. This cannot be undone.",
	    .fields = &field,
	    .n_fields = 1,
	};
	if (component_step_form(step, &form) < 0)
		status = out_of_memory(step);
	free(options);
	if (list.total > list.n)
		component_step_note(step, COMPONENT_NOTE_WARN,
		                    "There are too many keys to show them all: only the oldest are "
		                    "listed.");
out:
	key_list_finish(&list);
	return status;
}

static const struct key_row *find_row(const struct key_list *list, const char *host,
                                      size_t host_len, const char *id)
{
	for (size_t i = 0; i < list->n; i++) {
		const struct key_row *r = &list->rows[i];
		if (strlen(r->host) == host_len && strncmp(r->host, host, host_len) == 0 &&
		    strcmp(r->id, id) == 0)
			return r;
	}
	return NULL;
}

/* What one revoke submission did, for the result. */
struct revocation {
	char **lines; /* "ID — name" per revoked key */
	size_t n_revoked, n_gone;
	char gone[NOTE_MAX / 2]; /* IDs already gone, for a note (cut when many) */
};

static int revoke_one(struct adhoc_keys *keys, struct component_step *step,
                      const struct key_list *list, const char *value, struct revocation *rv,
                      const char **err)
{
	size_t host_len = strcspn(value, " ");
	const char *id = value[host_len] ? value + host_len + 1 : "";
	const struct key_row *row = find_row(list, value, host_len, id);
	char *host = strndup(value, host_len);
	bool several_hosts = keys->cfg->component.n_hosts > 1;

	if (!host) {
		*err = "out of memory";
		return -1;
	}
	enum keys_status status = keystore_delete(keys->store, host, id, err);
	if (status == KEYS_NOT_FOUND) {
		size_t len = strlen(rv->gone);
		snprintf(rv->gone + len, sizeof(rv->gone) - len, "%s%s", len ? ", " : "", id);
		rv->n_gone++;
	} else if (status == KEYS_OK) {
		log_info("%s revoked API key %s on %s over XMPP", requester(step), id, host);
		if (asprintf(&rv->lines[rv->n_revoked], "%s%s%s \u2014 %s",
		             several_hosts ? host : "", several_hosts ? ": " : "", id,
		             row ? row->name : "") < 0)
			rv->lines[rv->n_revoked] = NULL; /* counted, not shown */
		rv->n_revoked++;
	}
	free(host);
	return status == KEYS_OK || status == KEYS_NOT_FOUND ? 0 : -1;
}

static void show_revocation(struct component_step *step, const struct revocation *rv)
{
	struct component_field *fields = calloc(rv->n_revoked ? rv->n_revoked : 1, sizeof(*fields));
	char note[NOTE_MAX];

	for (size_t i = 0; fields && i < rv->n_revoked; i++)
		fields[i] =
		    (struct component_field){.type = COMPONENT_FIELD_FIXED, .value = rv->lines[i]};
	const struct component_form form = {
	    .title = "API keys revoked",
	    .fields = fields,
	    .n_fields = fields ? rv->n_revoked : 0,
	};
	if (rv->n_revoked > 0)
		component_step_form(step, &form);
	free(fields);
	snprintf(note, sizeof(note), "Revoked %zu API key%s.", rv->n_revoked,
	         rv->n_revoked == 1 ? "" : "s");
	component_step_note(step, COMPONENT_NOTE_INFO, note);
	if (rv->n_gone > 0) {
		snprintf(note, sizeof(note), "Already revoked: %s.", rv->gone);
		component_step_note(step, COMPONENT_NOTE_WARN, note);
	}
}

static enum component_step_status revoke_submit(void *userdata, struct component_step *step)
{
	struct adhoc_keys *keys = userdata;
	size_t n = component_step_count(step, "keys");
	struct key_list list = {0};
	struct revocation rv = {.lines = calloc(n ? n : 1, sizeof(char *))};
	const char *err = NULL;
	enum component_step_status status = COMPONENT_STEP_COMPLETED;

	if (!rv.lines) {
		status = out_of_memory(step);
		goto out;
	}
	/* for the names in the result; a failure here only loses them */
	if (collect_all(keys, &list, &err) != KEYS_OK)
		key_list_finish(&list);
	for (size_t i = 0; i < n; i++) {
		if (revoke_one(keys, step, &list, component_step_value(step, "keys", i), &rv,
		               &err) < 0) {
			show_revocation(step, &rv);
			status = store_failed(step, "cannot revoke a key", err);
			goto out;
		}
	}
	show_revocation(step, &rv);
out:
	for (size_t i = 0; rv.lines && i < rv.n_revoked; i++)
		free(rv.lines[i]);
	free(rv.lines);
	key_list_finish(&list);
	return status;
}

/* ---- registration ----------------------------------------------------------- */

/* Sorted by node. */
static const struct component_command commands[] = {
    {ADHOC_KEYS_NODE_CREATE, "Create API key", create_execute, create_submit},
    {ADHOC_KEYS_NODE_LIST, "List API keys", list_execute, list_submit},
    {ADHOC_KEYS_NODE_REVOKE, "Revoke API key", revoke_execute, revoke_submit},
};

static bool is_admin(void *userdata, const char *bare_jid)
{
	const struct adhoc_keys *keys = userdata;
	return config_is_admin(keys->cfg, bare_jid);
}

int adhoc_keys_register(struct adhoc_keys *keys, struct component *comp, struct keystore *store,
                        const struct config *cfg)
{
	*keys = (struct adhoc_keys){.store = store, .cfg = cfg};
	const struct component_commands cmds = {
	    .commands = commands,
	    .n_commands = sizeof(commands) / sizeof(commands[0]),
	    .allowed = is_admin,
	    .userdata = keys,
	};
	return component_commands_register(comp, &cmds);
}
