/*
 * The key commands of src/adhoc_keys.c (create, list, revoke), on a real key
 * store in a temporary directory, driven through the scripted fake XMPP server
 * of fake_xmpp.h with the harness of adhoc_harness.h.
 */

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <time.h>
#include <unistd.h>

#include "adhoc_harness.h"
#include "common/log.h"
#include "component/component.h"
#include "src/adhoc_keys.h"
#include "src/config.h"
#include "unit.h"

struct keys_harness {
	struct harness h;
	struct keystore *store;
	struct config cfg;
	struct adhoc_keys keys;
	char dir[32], path[64];
};

static char host_a[] = "localhost", host_b[] = "other.localhost", admin_jid[] = "admin@localhost";

static void keys_start(struct keys_harness *k, size_t n_hosts)
{
	const char *err = NULL;

	memset(k, 0, sizeof(*k));
	CU_ASSERT_EQUAL_FATAL(keys_init(), 0);
	log_set_level(LOG_WARN);
	harness_create(&k->h);
	snprintf(k->dir, sizeof(k->dir), "/tmp/test_adhoc_keys.XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(k->dir));
	snprintf(k->path, sizeof(k->path), "%s/keys.sqlite", k->dir);
	k->store = keystore_open(k->path, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k->store);
	k->cfg.component.hosts[0] = host_a;
	k->cfg.component.hosts[1] = host_b;
	k->cfg.component.n_hosts = n_hosts;
	k->cfg.component.admins[0] = admin_jid;
	k->cfg.component.n_admins = 1;
	CU_ASSERT_EQUAL(adhoc_keys_register(&k->keys, k->h.comp, k->store, &k->cfg), 0);
	harness_start(&k->h);
}

static void keys_finish(struct keys_harness *k)
{
	char path[96];

	harness_finish(&k->h);
	keystore_close(k->store);
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", k->path, suffixes[i]);
		unlink(path);
	}
	CU_ASSERT_EQUAL(rmdir(k->dir), 0);
}

/* Store a key directly; its ID into id. */
static void make_key(struct keys_harness *k, const char *host, const char *name,
                     const struct api_key_limits *limits, char *id)
{
	struct api_key_new key;
	const char *err = NULL;

	CU_ASSERT_EQUAL_FATAL(keystore_create(k->store, host, name, limits, &key, &err), KEYS_OK);
	strcpy(id, key.id);
	keys_wipe(&key);
}

static int count_key(void *userdata, const struct api_key_info *key)
{
	(void)key;
	(*(int *)userdata)++;
	return 0;
}

static int stored_keys(struct keys_harness *k, const char *host)
{
	int n = 0;
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_list(k->store, host, count_key, &n, &err), KEYS_OK);
	return n;
}

static bool key_chars(const char *s, size_t len)
{
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

static void test_keys_create(void)
{
	struct keys_harness k;
	char sid[64];
	keys_start(&k, 1);

	xmpp_stanza_t *r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE);
	check_status(r, "executing", sid, sizeof(sid));
	xmpp_stanza_t *x = form_of(r);
	CU_ASSERT_STRING_EQUAL(attr(field(x, "host"), "type"), "list-single");
	CU_ASSERT_STRING_EQUAL(value_of(x, "host"), "localhost"); /* the only one: chosen */
	CU_ASSERT_EQUAL(count_children(field(x, "host"), "option"), 1);
	CU_ASSERT_PTR_NOT_NULL(child(field(x, "name"), "required", NULL));
	CU_ASSERT_PTR_NULL(child(field(x, "lifetime"), "required", NULL));
	CU_ASSERT_PTR_NOT_NULL(field(x, "limit"));

	/* refused input: the form again, with what was typed, nothing stored */
	static const struct {
		const char *name, *lifetime, *limit;
		const char *note;
	} bad[] = {
	    {"Kept", "30x", "",
	     "Lifetime: a duration is a number with an optional unit s, m, h, d or w (e.g. 30d)."},
	    {"Kept", "", "20",
	     "Invite limit: write a number of invites (1 to 1000000), a slash and a period, "
	     "e.g. 20/1d."},
	    {"Kept", "", "0/1d",
	     "Invite limit: write a number of invites (1 to 1000000), a slash and a period, "
	     "e.g. 20/1d."},
	    {"Kept", "1d", "5/0d", "Invite limit: a duration must be longer than zero."},
	    {"", "1d", "", "Name is required."},
	    {"   ", "", "", "The key was not created: name is empty."},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char fields[512];
		snprintf(fields, sizeof(fields),
		         "<field var='host'><value>localhost</value></field>"
		         "<field var='name'><value>%s</value></field>"
		         "<field var='lifetime'><value>%s</value></field>"
		         "<field var='limit'><value>%s</value></field>",
		         bad[i].name, bad[i].lifetime, bad[i].limit);
		r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete", fields);
		check_status(r, "executing", NULL, 0);
		check_error_note(r, bad[i].note, i);
		if (i < 4) {
			CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "name"), bad[i].name);
			CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "lifetime"), bad[i].lifetime);
			CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "limit"), bad[i].limit);
		}
		CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "host"), "localhost");
	}
	/* a field left out keeps what the form showed: here the invalid lifetime */
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete",
	           "<field var='name'><value>Kept</value></field>"
	           "<field var='lifetime'><value>2x</value></field>");
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "lifetime"), "2x");
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete",
	           "<field var='name'><value>Other</value></field>");
	CU_ASSERT_EQUAL(strncmp(note(r, "error"), "Lifetime:", 9), 0);
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "name"), "Other");
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 0);

	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete",
	           "<field var='host'><value>localhost</value></field>"
	           "<field var='name'><value>  Signup page </value></field>"
	           "<field var='lifetime'><value>30d</value></field>"
	           "<field var='limit'><value>20/1d</value></field>");
	check_status(r, "completed", NULL, 0);
	x = form_of(r);
	CU_ASSERT_STRING_EQUAL(attr(x, "type"), "result");
	char key[256], id[64];
	snprintf(key, sizeof(key), "%s", value_of(x, "key"));
	snprintf(id, sizeof(id), "%s", value_of(x, "id"));
	CU_ASSERT_EQUAL_FATAL(strlen(key), KEYS_ID_LEN + 1 + KEYS_SECRET_LEN);
	CU_ASSERT(key_chars(key, KEYS_ID_LEN) && key[KEYS_ID_LEN] == '/' &&
	          key_chars(key + KEYS_ID_LEN + 1, KEYS_SECRET_LEN));
	CU_ASSERT_EQUAL(strncmp(key, id, KEYS_ID_LEN), 0);
	CU_ASSERT_STRING_EQUAL(value_of(x, "host"), "localhost");
	CU_ASSERT_STRING_EQUAL(value_of(x, "name"), "Signup page");
	CU_ASSERT_STRING_EQUAL(value_of(x, "limit"), "20/1d");
	CU_ASSERT_EQUAL(strlen(value_of(x, "expires")), 20); /* 2026-01-01T00:00:00Z */
	CU_ASSERT_PTR_NOT_NULL(strstr(note(r, "info"), "will not be shown again"));

	/* the key works, with its limits */
	struct api_key_match match;
	const char *err = NULL;
	int64_t now = time(NULL);
	CU_ASSERT_EQUAL(keystore_verify(k.store, key, strlen(key), now, &match, &err), KEYS_OK);
	CU_ASSERT_STRING_EQUAL(match.id, id);
	CU_ASSERT_EQUAL(match.limits.max_invites, 20);
	CU_ASSERT_EQUAL(match.limits.period_s, 86400);
	CU_ASSERT(match.limits.expires >= now + 30 * 86400 - 5 &&
	          match.limits.expires <= now + 30 * 86400);
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 1);

	/* without lifetime and limit, in one request */
	r = ask(&k.h, "set", ADMIN,
	        "<command xmlns='" NS_COMMANDS "' node='" ADHOC_KEYS_NODE_CREATE "'>"
	        "<x xmlns='jabber:x:data' type='submit'><field var='host'><value>localhost</value>"
	        "</field><field var='name'><value>Bookmark</value></field></x></command>");
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "expires"), "never");
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "limit"), "none");
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 2);
	keys_finish(&k);
}

static void test_keys_list(void)
{
	struct keys_harness k;
	char sid[64], id_a[64], id_b1[64], id_b2[64];
	keys_start(&k, 2);

	make_key(&k, "localhost", "A", NULL, id_a);
	make_key(&k, "other.localhost", "B one", NULL, id_b1);
	struct api_key_limits limits = {.expires = 1, .max_invites = 5, .period_s = 3600};
	make_key(&k, "other.localhost", "B two", &limits, id_b2);
	struct api_key_usage usage = {.id = id_b1, .invites = 3, .last_used = 1767225600};
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_record_usage(k.store, &usage, 1, &err), KEYS_OK);

	/* several hosts: choose one first */
	xmpp_stanza_t *r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST);
	check_status(r, "executing", sid, sizeof(sid));
	CU_ASSERT_EQUAL(count_children(field(form_of(r), "host"), "option"), 2);
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST, sid, "complete",
	           "<field var='host'><value>other.localhost</value></field>");
	check_status(r, "completed", NULL, 0);
	xmpp_stanza_t *x = form_of(r);
	CU_ASSERT_STRING_EQUAL(attr(x, "type"), "result");
	CU_ASSERT_STRING_EQUAL(text(child(x, "title", NULL)), "API keys on other.localhost");
	static const char *const columns[] = {"id",        "name",    "created", "expires",
	                                      "last-used", "invites", "limit"};
	xmpp_stanza_t *reported = child(x, "reported", NULL);
	for (size_t i = 0; i < 7; i++)
		CU_ASSERT_PTR_NOT_NULL(field(reported, columns[i]));
	CU_ASSERT_EQUAL(count_children(x, "item"), 2);
	xmpp_stanza_t *first = child(x, "item", NULL), *second = xmpp_stanza_get_next(first);
	CU_ASSERT_STRING_EQUAL(value_of(first, "id"), id_b1);
	CU_ASSERT_STRING_EQUAL(value_of(first, "name"), "B one");
	CU_ASSERT_STRING_EQUAL(value_of(first, "expires"), "never");
	CU_ASSERT_STRING_EQUAL(value_of(first, "last-used"), "2026-01-01T00:00:00Z");
	CU_ASSERT_STRING_EQUAL(value_of(first, "invites"), "3");
	CU_ASSERT_STRING_EQUAL(value_of(first, "limit"), "none");
	CU_ASSERT_EQUAL(strlen(value_of(first, "created")), 20);
	CU_ASSERT_STRING_EQUAL(value_of(second, "id"), id_b2);
	CU_ASSERT_STRING_EQUAL(value_of(second, "expires"), "1970-01-01T00:00:01Z (expired)");
	CU_ASSERT_STRING_EQUAL(value_of(second, "last-used"), "never");
	CU_ASSERT_STRING_EQUAL(value_of(second, "invites"), "0");
	CU_ASSERT_STRING_EQUAL(value_of(second, "limit"), "5/1h");

	/* a host that is not served */
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST, sid, "complete", "");
	check_error(r, "modify", "bad-request", "bad-sessionid"); /* that session is done */
	check_status(execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST), "executing", sid, sizeof(sid));
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST, sid, "complete",
	           "<field var='host'><value>evil.example</value></field>");
	CU_ASSERT_STRING_EQUAL(note(r, "error"),
	                       "Host: \"evil.example\" is not one of the choices.");
	keys_finish(&k);

	/* one host: the list at once; none there: a note */
	keys_start(&k, 1);
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "No API keys on localhost.");
	CU_ASSERT_PTR_NULL(form_of(r));
	make_key(&k, "localhost", "A", NULL, id_a);
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_EQUAL(count_children(form_of(r), "item"), 1);
	keys_finish(&k);
}

static void test_keys_revoke(void)
{
	struct keys_harness k;
	char sid[64], id_a[64], id_b1[64], id_b2[64], value[128], fields[512];
	keys_start(&k, 2);

	xmpp_stanza_t *r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "There are no API keys to revoke.");

	make_key(&k, "localhost", "A", NULL, id_a);
	make_key(&k, "other.localhost", "B one", NULL, id_b1);
	make_key(&k, "other.localhost", "B two", NULL, id_b2);
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE);
	check_status(r, "executing", sid, sizeof(sid));
	xmpp_stanza_t *keys = field(form_of(r), "keys");
	CU_ASSERT_STRING_EQUAL(attr(keys, "type"), "list-multi");
	CU_ASSERT_PTR_NOT_NULL(child(keys, "required", NULL));
	CU_ASSERT_EQUAL(count_children(keys, "option"), 3);
	xmpp_stanza_t *option = child(keys, "option", NULL);
	char label[128];
	snprintf(label, sizeof(label), "localhost: %s \u2014 A", id_a);
	CU_ASSERT_STRING_EQUAL(attr(option, "label"), label);
	snprintf(value, sizeof(value), "localhost %s", id_a);
	CU_ASSERT_STRING_EQUAL(text(child(option, "value", NULL)), value);

	/* only keys that were offered */
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE, sid, "complete",
	           "<field var='keys'><value>other.localhost nosuchkey</value></field>");
	check_status(r, "executing", NULL, 0);
	CU_ASSERT_STRING_EQUAL(note(r, "error"),
	                       "Keys to revoke: \"other.localhost nosuchkey\" is not one of the "
	                       "choices.");
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE, sid, "complete", "");
	CU_ASSERT_STRING_EQUAL(note(r, "error"), "Keys to revoke is required.");
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost") + stored_keys(&k, "other.localhost"), 3);

	/* revoke two, one of which someone else revoked meanwhile */
	const char *err = NULL;
	CU_ASSERT_EQUAL(keystore_delete(k.store, "other.localhost", id_b2, &err), KEYS_OK);
	snprintf(fields, sizeof(fields),
	         "<field var='keys'><value>localhost %s</value><value>other.localhost %s</value>"
	         "<value>other.localhost %s</value></field>",
	         id_a, id_b1, id_b2);
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE, sid, "complete", fields);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "Revoked 2 API keys.");
	char gone[96];
	snprintf(gone, sizeof(gone), "Already revoked: %s.", id_b2);
	CU_ASSERT_STRING_EQUAL(note(r, "warn"), gone);
	xmpp_stanza_t *x = form_of(r);
	CU_ASSERT_EQUAL(count_children(x, "field"), 2);
	snprintf(label, sizeof(label), "other.localhost: %s \u2014 B one", id_b1);
	CU_ASSERT_STRING_EQUAL(
	    text(child(xmpp_stanza_get_next(child(x, "field", NULL)), "value", NULL)), label);
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost") + stored_keys(&k, "other.localhost"), 0);
	keys_finish(&k);

	/* one host: no host in the labels */
	keys_start(&k, 1);
	make_key(&k, "localhost", "A", NULL, id_a);
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE);
	check_status(r, "executing", sid, sizeof(sid));
	snprintf(label, sizeof(label), "%s \u2014 A", id_a);
	CU_ASSERT_STRING_EQUAL(attr(child(field(form_of(r), "keys"), "option", NULL), "label"),
	                       label);
	snprintf(fields, sizeof(fields), "<field var='keys'><value>localhost %s</value></field>",
	         id_a);
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE, sid, "complete", fields);
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "Revoked 1 API key.");
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 0);
	keys_finish(&k);
}

/* Others see no commands and can run none; the key store is not touched. */
/* Create a key through the form with these allow values; what it may do. */
static unsigned create_allowing(struct keys_harness *k, const char *allow_values, char *shown,
                                size_t shown_size)
{
	char sid[64], fields[512], key[256];
	struct api_key_match match;
	const char *err = NULL;

	check_status(execute(&k->h, ADMIN, ADHOC_KEYS_NODE_CREATE), "executing", sid, sizeof(sid));
	snprintf(fields, sizeof(fields),
	         "<field var='host'><value>localhost</value></field>"
	         "<field var='name'><value>perm</value></field>%s",
	         allow_values);
	xmpp_stanza_t *r = submit(&k->h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete", fields);
	check_status(r, "completed", NULL, 0);
	snprintf(key, sizeof(key), "%s", value_of(form_of(r), "key"));
	snprintf(shown, shown_size, "%s", value_of(form_of(r), "allow"));
	if (keystore_verify(k->store, key, strlen(key), time(NULL), &match, &err) != KEYS_OK)
		return 0;
	return match.limits.allow;
}

static void test_keys_create_allow(void)
{
	struct keys_harness k;
	char sid[64], shown[64];
	keys_start(&k, 1);

	xmpp_stanza_t *r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE);
	check_status(r, "executing", sid, sizeof(sid));
	xmpp_stanza_t *allow = field(form_of(r), "allow");
	CU_ASSERT_PTR_NOT_NULL_FATAL(allow);
	CU_ASSERT_STRING_EQUAL(attr(allow, "type"), "list-multi");
	CU_ASSERT_PTR_NOT_NULL(child(allow, "required", NULL));
	CU_ASSERT_EQUAL(count_children(allow, "option"), 2);
	CU_ASSERT_EQUAL(count_children(allow, "value"), 1); /* account invites only, by default */
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "allow"), "account");

	/* an unknown permission: refused by the form check, nothing stored */
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete",
	           "<field var='name'><value>x</value></field>"
	           "<field var='allow'><value>admin</value></field>");
	CU_ASSERT_PTR_NOT_NULL(strstr(note(r, "error"), "not one of the choices"));
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 0);
	/* a refused lifetime shows the form again with the permissions chosen */
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete",
	           "<field var='name'><value>x</value></field>"
	           "<field var='lifetime'><value>3x</value></field>"
	           "<field var='allow'><value>reset</value></field>");
	check_status(r, "executing", NULL, 0);
	CU_ASSERT_STRING_EQUAL(value_of(form_of(r), "allow"), "reset");
	CU_ASSERT_EQUAL(count_children(field(form_of(r), "allow"), "value"), 1);
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 0);

	CU_ASSERT_EQUAL(create_allowing(&k, "", shown, sizeof(shown)), KEYS_ALLOW_ACCOUNT);
	CU_ASSERT_STRING_EQUAL(shown, "account");
	CU_ASSERT_EQUAL(create_allowing(&k, "<field var='allow'><value>reset</value></field>",
	                                shown, sizeof(shown)),
	                KEYS_ALLOW_RESET);
	CU_ASSERT_STRING_EQUAL(shown, "reset");
	CU_ASSERT_EQUAL(create_allowing(&k,
	                                "<field var='allow'><value>reset</value>"
	                                "<value>account</value></field>",
	                                shown, sizeof(shown)),
	                KEYS_ALLOW_ALL);
	CU_ASSERT_STRING_EQUAL(shown, "account,reset");

	/* the list shows them */
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST);
	check_status(r, "completed", NULL, 0);
	xmpp_stanza_t *x = form_of(r);
	CU_ASSERT_PTR_NOT_NULL(field(child(x, "reported", NULL), "allow"));
	CU_ASSERT_EQUAL(count_children(x, "item"), 3);
	xmpp_stanza_t *item = child(x, "item", NULL);
	static const char *const listed[] = {"account", "reset", "account,reset"};
	for (size_t i = 0; i < 3 && item != NULL; i++, item = xmpp_stanza_get_next(item))
		CU_ASSERT_STRING_EQUAL(value_of(item, "allow"), listed[i]);
	keys_finish(&k);
}

static void test_keys_not_admin(void)
{
	static const char *const nodes[] = {ADHOC_KEYS_NODE_CREATE, ADHOC_KEYS_NODE_LIST,
	                                    ADHOC_KEYS_NODE_REVOKE};
	struct keys_harness k;
	keys_start(&k, 1);

	xmpp_stanza_t *r =
	    ask(&k.h, "get", ADMIN, "<query xmlns='" DISCO_ITEMS "' node='" NS_COMMANDS "'/>");
	xmpp_stanza_t *query = child(r, "query", DISCO_ITEMS);
	CU_ASSERT_EQUAL(count_children(query, "item"), 3);
	CU_ASSERT_STRING_EQUAL(attr(child(query, "item", NULL), "name"), "Create API key");
	static const char *const others[] = {OTHER, "localhost", "admin@other.localhost/x",
	                                     "ADMIN@localhost.evil/x"};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		r = ask(&k.h, "get", others[i],
		        "<query xmlns='" DISCO_ITEMS "' node='" NS_COMMANDS "'/>");
		CU_ASSERT_EQUAL(count_children(child(r, "query", DISCO_ITEMS), "item"), 0);
		for (size_t n = 0; n < 3; n++) {
			check_error(execute(&k.h, others[i], nodes[n]), "auth", "forbidden", NULL);
			r = ask(&k.h, "get", others[i], "<query xmlns='" DISCO_INFO "' node='%s'/>",
			        nodes[n]);
			check_error(r, "auth", "forbidden", NULL);
		}
	}
	/* JIDs compare without case, as servers normalise them */
	r = execute(&k.h, "Admin@LocalHost/x", ADHOC_KEYS_NODE_LIST);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 0);
	keys_finish(&k);
}

/* A store that fails: the command ends with the reason, nothing is changed. */
static void test_keys_store_fails(void)
{
	struct keys_harness k;
	char sid[64];
	keys_start(&k, 1);

	check_status(execute(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE), "executing", sid, sizeof(sid));
	/* someone breaks the database under the open store */
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(k.path, &db), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "DROP TABLE api_keys", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	xmpp_stanza_t *r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_CREATE, sid, "complete",
	                          "<field var='name'><value>x</value></field>");
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_EQUAL(strncmp(note(r, "error"), "The key store failed: ", 22), 0);
	CU_ASSERT_PTR_NULL(form_of(r));
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_EQUAL(strncmp(note(r, "error"), "The key store failed: ", 22), 0);
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE);
	check_status(r, "completed", NULL, 0);
	CU_ASSERT_EQUAL(strncmp(note(r, "error"), "The key store failed: ", 22), 0);
	keys_finish(&k);
}

/* Bytes stanza takes as XML; SIZE_MAX for none. */
static size_t stanza_size(xmpp_stanza_t *stanza)
{
	char *buf = NULL;
	size_t len = 0;
	if (!stanza)
		return SIZE_MAX;
	CU_ASSERT_EQUAL_FATAL(xmpp_stanza_to_text(stanza, &buf, &len), XMPP_EOK);
	xmpp_free(xmpp_stanza_get_context(stanza), buf);
	return len;
}

/* 500 names of 200 quotes are 600 KB of XML, more than Prosody takes in one
 * stanza: the forms stop early and say so. */
static void test_keys_bounded_in_bytes(void)
{
	struct keys_harness k;
	char sid[64], id[64], quotes[KEYS_NAME_MAX + 1];
	keys_start(&k, 2);

	memset(quotes, '"', KEYS_NAME_MAX);
	quotes[KEYS_NAME_MAX] = '\0';
	for (int i = 0; i < 500; i++)
		make_key(&k, "localhost", quotes, NULL, id);
	make_key(&k, "other.localhost", "B", NULL, id);

	xmpp_stanza_t *r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST);
	check_status(r, "executing", sid, sizeof(sid));
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST, sid, "complete",
	           "<field var='host'><value>localhost</value></field>");
	check_status(r, "completed", NULL, 0);
	size_t shown = count_children(form_of(r), "item");
	CU_ASSERT(shown >= 40 && shown < 500);
	CU_ASSERT_STRING_EQUAL(value_of(child(form_of(r), "item", NULL), "name"), quotes);
	char want[128];
	snprintf(want, sizeof(want), "Showing the first %zu of 500 keys.", shown);
	CU_ASSERT_STRING_EQUAL(note(r, "warn"), want);
	CU_ASSERT(stanza_size(r) < 128 * 1024);

	/* the other host's key is listed as ever */
	check_status(execute(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST), "executing", sid, sizeof(sid));
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_LIST, sid, "complete",
	           "<field var='host'><value>other.localhost</value></field>");
	CU_ASSERT_EQUAL(count_children(form_of(r), "item"), 1);
	CU_ASSERT_STRING_EQUAL(note(r, "warn"), "");

	/* revoke: one form for both hosts, full before the other host's key */
	r = execute(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE);
	check_status(r, "executing", sid, sizeof(sid));
	xmpp_stanza_t *keys = field(form_of(r), "keys");
	shown = count_children(keys, "option");
	CU_ASSERT(shown >= 40 && shown < 500);
	CU_ASSERT_STRING_EQUAL(note(r, "warn"), "There are too many keys to show them all: only "
	                                        "the oldest are listed.");
	CU_ASSERT(stanza_size(r) < 128 * 1024);
	char value[128];
	snprintf(value, sizeof(value), "%s",
	         text(child(child(keys, "option", NULL), "value", NULL)));
	char fields[256];
	snprintf(fields, sizeof(fields), "<field var='keys'><value>%s</value></field>", value);
	r = submit(&k.h, ADMIN, ADHOC_KEYS_NODE_REVOKE, sid, "complete", fields);
	CU_ASSERT_STRING_EQUAL(note(r, "info"), "Revoked 1 API key.");
	CU_ASSERT_EQUAL(stored_keys(&k, "localhost"), 499);
	keys_finish(&k);
}

static const struct unit_test tests[] = {
    {"keys: create", test_keys_create},
    {"keys: create with permissions", test_keys_create_allow},
    {"keys: list", test_keys_list},
    {"keys: revoke", test_keys_revoke},
    {"keys: nothing for others", test_keys_not_admin},
    {"keys: the store fails", test_keys_store_fails},
    {"keys: list and revoke forms are bounded in bytes", test_keys_bounded_in_bytes},
    {NULL, NULL},
};

UNIT_MAIN("adhoc_keys", tests)
