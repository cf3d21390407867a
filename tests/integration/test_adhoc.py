"""API keys managed from an XMPP client: the component's own ad-hoc commands
(XEP-0050) on its JID, driven by a real client (slixmpp) logged in to the real
Prosody over c2s, against the real daemon, its CLI and its HTTP API; plus the
component's basic entity behaviour (XEP-0199 ping, XEP-0092 version, unknown IQs).

One daemon for the module, configured with `[component] admins = admin@localhost`
and the two hosts of the harness (so the forms ask for a host). Each test names
its keys uniquely and only asserts about its own keys.
"""

import secrets
import time
import xml.etree.ElementTree as ET

import pytest

import harness
import servers
from harness import (COMPONENT_JID, FOREIGN_HOST, KEY_RE, MAIN_HOST, NS_COMMANDS,
                     NS_DISCO_INFO, NS_DISCO_ITEMS, XmppClient, assert_created)

COMMAND_NAMES = {"create": "Create API key", "list": "List API keys",
                 "revoke": "Revoke API key"}
FLUSH_WAIT = 10   # usage counters reach the store at most 5 s after a request


@pytest.fixture(scope="module")
def accounts(prosody):
    """Two accounts on the module's Prosody, made with prosodyctl register."""
    return {"admin": prosody.register_user("admin"),
            "user": prosody.register_user("someone")}


@pytest.fixture(scope="module")
def adhoc_daemon(prosody, accounts, make_module_instance):
    inst = make_module_instance(prosody, name="adhoc", admins=[accounts["admin"][0]])
    inst.start()
    return inst


def _login(prosody, account, resource="tests"):
    jid, password = account
    return XmppClient(jid, password, prosody.c2s_port, resource=resource)


@pytest.fixture(scope="module")
def admin(prosody, accounts, adhoc_daemon):
    client = _login(prosody, accounts["admin"])
    yield client
    client.close()


@pytest.fixture(scope="module")
def user(prosody, accounts, adhoc_daemon):
    client = _login(prosody, accounts["user"])
    yield client
    client.close()


@pytest.fixture(scope="module")
def nodes(admin):
    """The command nodes, as the admin discovers them: {"create": node, ...}."""
    listed = admin.commands(COMPONENT_JID)
    missing = set(COMMAND_NAMES.values()) - set(listed)
    assert not missing, f"commands missing from disco#items: {missing}; listed {listed}"
    return {short: listed[name] for short, name in COMMAND_NAMES.items()}


def unique(name):
    return f"{name} {secrets.token_hex(3)}"


# --------------------------------------------------------------------------
# helpers running whole commands as a client would

def assert_error(reply, error_type, condition, app_condition=None):
    r = reply.error if hasattr(reply, "error") else reply
    assert r is not None and r.type == "error", f"expected an error, got {reply!r}"
    assert (r.error_type, r.condition) == (error_type, condition), repr(reply)
    if app_condition:
        assert app_condition in r.app_conditions, repr(reply)


def start(client, node):
    r = client.command(COMPONENT_JID, node)
    assert r.error is None and r.status == "executing" and r.sessionid and r.form, repr(r)
    assert r.form.type == "form", repr(r)
    return r


def adhoc_create(client, nodes, name, host=MAIN_HOST, **extra):
    """Create through the form; returns (key, result reply)."""
    r = start(client, nodes["create"])
    values = {"host": host, "name": name, **extra}
    done = client.command(COMPONENT_JID, nodes["create"], action="complete",
                          sessionid=r.sessionid, form=values)
    assert done.error is None and done.status == "completed", repr(done)
    assert done.form is not None and done.form.type == "result", repr(done)
    key = done.form.value("key")
    assert key and KEY_RE.match(key), f"no ID/SECRET in the result: {done!r}"
    harness.register_secret(key.split("/", 1)[1])
    return key, done


def adhoc_list(client, nodes, host=MAIN_HOST):
    """{id: row} of the List command's result table for host."""
    r = client.command(COMPONENT_JID, nodes["list"])
    assert r.error is None, repr(r)
    if r.status == "executing":   # several hosts: it asks which
        assert "host" in r.form.fields, repr(r)
        r = client.command(COMPONENT_JID, nodes["list"], action="complete",
                           sessionid=r.sessionid, form={"host": host})
    assert r.error is None and r.status == "completed", repr(r)
    if r.form is None:
        return {}
    assert r.form.type == "result", repr(r)
    assert [c["var"] for c in r.form.columns][:2] == ["id", "name"], repr(r)
    return {row["id"]: row for row in r.form.items}


def revoke_options(reply, key_id):
    field = reply.form.fields.get("keys")
    assert field is not None and field["type"] == "list-multi", repr(reply)
    return [value for label, value in field["options"]
            if key_id in (label or "") or key_id in (value or "").split()]


def adhoc_revoke(client, nodes, key_id):
    r = start(client, nodes["revoke"])
    chosen = revoke_options(r, key_id)
    assert len(chosen) == 1, f"key {key_id} is not offered exactly once: {r!r}"
    done = client.command(COMPONENT_JID, nodes["revoke"], action="complete",
                          sessionid=r.sessionid, form={"keys": chosen})
    assert done.error is None and done.status == "completed", repr(done)
    return done


def cli_ids(inst, host=MAIN_HOST):
    return set(inst.list_rows(host))


# --------------------------------------------------------------------------
# discovery and authorisation

def test_admin_discovers_the_three_key_commands(admin, nodes):
    r = admin.disco_items(COMPONENT_JID, NS_COMMANDS)
    items = r.child("query", NS_DISCO_ITEMS).findall(f"{{{NS_DISCO_ITEMS}}}item")
    assert sorted(i.get("name") for i in items) == sorted(COMMAND_NAMES.values()), repr(r)
    assert all(i.get("jid") == COMPONENT_JID for i in items), repr(r)
    assert len(set(nodes.values())) == 3, nodes
    info = admin.disco_info(COMPONENT_JID)
    assert info.type == "result", repr(info)
    features = {f.get("var") for f in
                info.child("query", NS_DISCO_INFO).findall(f"{{{NS_DISCO_INFO}}}feature")}
    assert NS_COMMANDS in features, repr(info)
    for short, node in nodes.items():
        r = admin.disco_info(COMPONENT_JID, node)
        assert r.type == "result", repr(r)
        identity = r.child("query", NS_DISCO_INFO).find(f"{{{NS_DISCO_INFO}}}identity")
        assert identity is not None and identity.get("category") == "automation", repr(r)
        assert identity.get("type") == "command-node", repr(r)
        assert identity.get("name") == COMMAND_NAMES[short], repr(r)


def test_normal_user_sees_no_commands(user):
    r = user.disco_items(COMPONENT_JID, NS_COMMANDS)
    assert r.type == "result", repr(r)
    assert r.child("query", NS_DISCO_ITEMS).findall(f"{{{NS_DISCO_ITEMS}}}item") == [], repr(r)


def test_normal_user_is_forbidden_to_execute_or_inspect(user, admin, nodes, adhoc_daemon):
    before = cli_ids(adhoc_daemon)
    for node in nodes.values():
        assert_error(user.command(COMPONENT_JID, node), "auth", "forbidden")
        assert_error(user.disco_info(COMPONENT_JID, node), "auth", "forbidden")
    # a form sent along with execute does not get through either
    r = user.command(COMPONENT_JID, nodes["create"],
                     form={"host": MAIN_HOST, "name": "not allowed"})
    assert_error(r, "auth", "forbidden")
    # nor does completing an admin's open session
    session = start(admin, nodes["create"])
    r = user.command(COMPONENT_JID, nodes["create"], action="complete",
                     sessionid=session.sessionid, form={"host": MAIN_HOST, "name": "hijack"})
    assert_error(r, "auth", "forbidden")
    admin.command(COMPONENT_JID, nodes["create"], action="cancel", sessionid=session.sessionid)
    assert cli_ids(adhoc_daemon) == before


# --------------------------------------------------------------------------
# permissions chosen in the form

def test_create_form_offers_permissions_account_by_default(admin, nodes, adhoc_daemon):
    r = start(admin, nodes["create"])
    admin.command(COMPONENT_JID, nodes["create"], action="cancel", sessionid=r.sessionid)
    assert r.form.value("allow") == "account", repr(r)
    key, done = adhoc_create(admin, nodes, unique("default"))
    assert done.form.value("allow") == "account", repr(done)
    assert adhoc_daemon.list_rows(MAIN_HOST)[key.split("/")[0]][-1] == "account"
    r = adhoc_daemon.request("POST", path="/invites_api/reset",
                             query=f"key={key}&jid=alice@{MAIN_HOST}")
    assert r.status == 403, repr(r)


def test_create_with_reset_permission_over_xmpp(admin, nodes, adhoc_daemon):
    key, done = adhoc_create(admin, nodes, unique("helpdesk"), allow=["account", "reset"])
    assert done.form.value("allow") == "account,reset", repr(done)
    key_id = key.split("/")[0]
    assert adhoc_daemon.list_rows(MAIN_HOST)[key_id][-1] == "account,reset"
    listed = {k["id"]: k for k in adhoc_daemon.list_json(MAIN_HOST)}[key_id]
    assert listed["allow"] == ["account", "reset"], listed
    # past the permission check: 201 where the server offers resets (Prosody
    # 13), else 501 (Prosody 0.12 and ejabberd have no reset command)
    r = adhoc_daemon.request("POST", path="/invites_api/reset",
                             query=f"key={key}&jid=alice@{MAIN_HOST}")
    assert r.status == (201 if servers.server_class().offers_password_reset else 501), repr(r)
    assert_created(adhoc_daemon.get_invite(key), adhoc_daemon)


# --------------------------------------------------------------------------
# the life of a key made over XMPP

def test_create_use_list_and_revoke_over_xmpp(admin, nodes, adhoc_daemon):
    name = unique("Signup page")
    key, done = adhoc_create(admin, nodes, name)
    key_id, secret = key.split("/")
    form = done.form
    assert form.value("id") == key_id and form.value("name") == name, repr(done)
    assert form.value("host") == MAIN_HOST, repr(done)
    assert form.value("expires") == "never" and form.value("limit") == "none", repr(done)
    # the secret is shown once: in the key field only
    text = ET.tostring(done.command, encoding="unicode")
    assert text.count(secret) == 1, text

    # the CLI sees it at once (one store)
    rows = adhoc_daemon.list_rows(MAIN_HOST)
    assert key_id in rows and rows[key_id][1] == name, rows
    assert key_id not in adhoc_daemon.list_rows(FOREIGN_HOST)

    # it works over HTTP
    assert_created(adhoc_daemon.get_invite(key), adhoc_daemon)

    # List shows it with its usage, once the daemon wrote the counters
    seen = {}

    def counted():
        seen.update(adhoc_list(admin, nodes))
        row = seen.get(key_id)
        return row is not None and row.get("invites") == "1"
    try:
        harness.wait_until(counted, FLUSH_WAIT, interval=0.5, what="List to count 1 invite")
    except TimeoutError as e:
        raise AssertionError(f"{e}: {seen.get(key_id)!r}\n{adhoc_daemon.describe()}") from None
    row = seen[key_id]
    assert row["name"] == name, row
    assert row.get("last-used") not in (None, "", "never"), row
    assert row.get("expires") == "never" and row.get("limit") == "none", row

    # Revoke: it stops working at once
    done = adhoc_revoke(admin, nodes, key_id)
    assert any("Revoked 1 API key" in t for t in done.notes_of("info")), repr(done)
    r = adhoc_daemon.get_invite(key)
    assert r.status == 401, f"revoked key still accepted: {r!r}"
    assert key_id not in adhoc_daemon.list_rows(MAIN_HOST)
    assert key_id not in adhoc_list(admin, nodes)
    # and it is no longer offered for revocation
    again = admin.command(COMPONENT_JID, nodes["revoke"])
    if again.status == "executing":
        assert revoke_options(again, key_id) == [], repr(again)
        admin.command(COMPONENT_JID, nodes["revoke"], action="cancel",
                      sessionid=again.sessionid)


def test_revoking_a_key_the_cli_deleted_meanwhile_says_so(admin, nodes, adhoc_daemon):
    keep = adhoc_daemon.create_key(MAIN_HOST, unique("kept"))
    gone = adhoc_daemon.create_key(MAIN_HOST, unique("deleted meanwhile"))
    r = start(admin, nodes["revoke"])
    chosen = revoke_options(r, gone.split("/")[0])
    assert len(chosen) == 1, repr(r)
    d = adhoc_daemon.cli("delete", MAIN_HOST, "--", gone.split("/")[0])
    assert d.returncode == 0, repr(d)
    done = admin.command(COMPONENT_JID, nodes["revoke"], action="complete",
                         sessionid=r.sessionid, form={"keys": chosen})
    assert done.error is None and done.status == "completed", repr(done)
    warnings = " ".join(done.notes_of("warn"))
    assert gone.split("/")[0] in warnings, f"no word about the key already gone: {done!r}"
    assert keep.split("/")[0] in adhoc_daemon.list_rows(MAIN_HOST)
    assert_created(adhoc_daemon.get_invite(keep), adhoc_daemon)
    adhoc_revoke(admin, nodes, keep.split("/")[0])


def test_key_made_by_the_cli_shows_in_the_adhoc_list_and_can_be_revoked(admin, nodes,
                                                                        adhoc_daemon):
    name = unique("made by the CLI")
    key = adhoc_daemon.create_key(FOREIGN_HOST, name)
    key_id = key.split("/")[0]
    listed = adhoc_list(admin, nodes, FOREIGN_HOST)
    assert key_id in listed and listed[key_id]["name"] == name, listed
    assert listed[key_id].get("invites") == "0", listed[key_id]
    assert listed[key_id].get("last-used") == "never", listed[key_id]
    assert key_id not in adhoc_list(admin, nodes, MAIN_HOST)
    adhoc_revoke(admin, nodes, key_id)
    assert key_id not in adhoc_daemon.list_rows(FOREIGN_HOST)


def test_create_with_lifetime_and_limit(admin, nodes, adhoc_daemon):
    name = unique("limited")
    key, done = adhoc_create(admin, nodes, name, lifetime="1h", limit="1/1h")
    key_id = key.split("/")[0]
    assert done.form.value("limit") == "1/1h", repr(done)
    assert done.form.value("expires") not in (None, "", "never"), repr(done)
    listed = {k["id"]: k for k in adhoc_daemon.list_json(MAIN_HOST)}
    assert listed[key_id]["max_invites"] == 1 and listed[key_id]["period"] == 3600, listed
    assert listed[key_id]["expires"] and not listed[key_id]["expired"], listed
    created = time.time()
    assert_created(adhoc_daemon.get_invite(key), adhoc_daemon)
    r = adhoc_daemon.get_invite(key)
    assert r.status == 429, f"the second invite of a 1/1h key: {r!r}"
    retry = int(r.header("Retry-After"))
    assert 3500 <= retry <= 3600 + (time.time() - created) + 1, repr(r)


# --------------------------------------------------------------------------
# sessions and bad input

def test_cancel_ends_the_session(admin, nodes, adhoc_daemon):
    before = cli_ids(adhoc_daemon)
    r = start(admin, nodes["create"])
    canceled = admin.command(COMPONENT_JID, nodes["create"], action="cancel",
                             sessionid=r.sessionid)
    assert canceled.error is None and canceled.status == "canceled", repr(canceled)
    late = admin.command(COMPONENT_JID, nodes["create"], action="complete",
                         sessionid=r.sessionid, form={"host": MAIN_HOST, "name": "too late"})
    assert_error(late, "modify", "bad-request", "bad-sessionid")
    assert cli_ids(adhoc_daemon) == before


def test_unknown_or_finished_sessionid_is_bad_request(admin, nodes):
    r = admin.command(COMPONENT_JID, nodes["create"], action="complete",
                      sessionid="no-such-session", form={"host": MAIN_HOST, "name": "x"})
    assert_error(r, "modify", "bad-request", "bad-sessionid")
    # a completed session is gone too
    key, done = adhoc_create(admin, nodes, unique("once"))
    r = admin.command(COMPONENT_JID, nodes["create"], action="complete",
                      sessionid=done.sessionid, form={"host": MAIN_HOST, "name": "twice"})
    assert_error(r, "modify", "bad-request", "bad-sessionid")
    adhoc_revoke(admin, nodes, key.split("/")[0])


def test_session_belongs_to_the_resource_that_opened_it(prosody, accounts, admin, nodes,
                                                        adhoc_daemon):
    before = cli_ids(adhoc_daemon)
    r = start(admin, nodes["create"])
    other = _login(prosody, accounts["admin"], resource="other-device")
    try:
        stolen = other.command(COMPONENT_JID, nodes["create"], action="complete",
                               sessionid=r.sessionid,
                               form={"host": MAIN_HOST, "name": "other resource"})
        assert_error(stolen, "modify", "bad-request", "bad-sessionid")
    finally:
        other.close()
    admin.command(COMPONENT_JID, nodes["create"], action="cancel", sessionid=r.sessionid)
    assert cli_ids(adhoc_daemon) == before


def test_missing_name_comes_back_with_an_error_note_and_creates_nothing(admin, nodes,
                                                                      adhoc_daemon):
    before = {h: cli_ids(adhoc_daemon, h) for h in (MAIN_HOST, FOREIGN_HOST)}
    r = start(admin, nodes["create"])
    assert r.form.fields["name"]["required"], repr(r)
    # (a field left out keeps the value shown last, so each submission is complete
    # except for the missing name of the first)
    for values, about in (
            ({"host": MAIN_HOST}, "name"),
            ({"host": MAIN_HOST, "name": "   ", "lifetime": "", "limit": ""}, "name"),
            ({"host": MAIN_HOST, "name": "two\nlines", "lifetime": "", "limit": ""}, "name"),
            ({"host": "not-served.example", "name": unique("bad host"), "lifetime": "",
              "limit": ""}, "host"),
            ({"host": MAIN_HOST, "name": unique("bad lifetime"), "lifetime": "soon",
              "limit": ""}, "lifetime"),
            ({"host": MAIN_HOST, "name": unique("bad limit"), "lifetime": "",
              "limit": "lots"}, "limit")):
        again = admin.command(COMPONENT_JID, nodes["create"], action="complete",
                              sessionid=r.sessionid, form=values)
        assert again.error is None and again.status == "executing", \
            f"submitted {values}: {again!r}"
        assert again.sessionid == r.sessionid, repr(again)
        errors = again.notes_of("error")
        assert errors, f"no error note for {values}: {again!r}"
        assert about in " ".join(errors).lower(), \
            f"the error note for {values} does not mention the {about}: {errors}"
        assert again.form is not None and "name" in again.form.fields, repr(again)
        assert {h: cli_ids(adhoc_daemon, h) for h in before} == before, \
            f"a key was created from {values}"
    # the session is still usable: fixing the form completes it
    done = admin.command(COMPONENT_JID, nodes["create"], action="complete",
                         sessionid=r.sessionid,
                         form={"host": MAIN_HOST, "name": "fixed", "lifetime": "", "limit": ""})
    assert done.status == "completed", repr(done)
    key = done.form.value("key")
    harness.register_secret(key.split("/", 1)[1])
    assert cli_ids(adhoc_daemon) == before[MAIN_HOST] | {key.split("/")[0]}
    adhoc_revoke(admin, nodes, key.split("/")[0])


def test_non_ascii_values_come_back_as_valid_xml(admin, nodes, adhoc_daemon):
    """An error note quoting a long non-ASCII value used to cut a character in
    two: invalid XML, and Prosody dropped the component's stream."""
    log_before = adhoc_daemon.log_text().count("disconnected")
    r = start(admin, nodes["create"])
    for n in range(28, 36):     # cuts at every byte offset of the 2-byte é
        value = "a" * (n % 2 + 1) + "\u00e9" * n
        again = admin.command(COMPONENT_JID, nodes["create"], action="complete",
                              sessionid=r.sessionid,
                              form={"host": value, "name": unique("utf8"), "lifetime": "",
                                    "limit": ""})
        assert again.error is None and again.status == "executing", repr(again)
        assert any("host" in e.lower() for e in again.notes_of("error")), repr(again)
    admin.command(COMPONENT_JID, nodes["create"], action="cancel", sessionid=r.sessionid)
    assert adhoc_daemon.log_text().count("disconnected") == log_before, \
        adhoc_daemon.describe()


@pytest.mark.parametrize("char", ["\ufffe", "\uffff", "\x7f"])
def test_names_xml_cannot_carry_are_refused(adhoc_daemon, char):
    """A name XML 1.0 cannot carry would break every ad-hoc list of its host."""
    before = cli_ids(adhoc_daemon)
    r = adhoc_daemon.cli("create", MAIN_HOST, f"bad {char} name")
    assert r.returncode == 1 and r.stdout == "" and "name" in r.stderr, repr(r)
    assert cli_ids(adhoc_daemon) == before


# --------------------------------------------------------------------------
# the component as an XMPP entity

def test_ping_answers(user, admin):
    for client in (user, admin):
        r = client.iq("get", COMPONENT_JID, "<ping xmlns='urn:xmpp:ping'/>")
        assert r.type == "result", repr(r)


def test_version_answers_invites_api(user):
    r = user.iq("get", COMPONENT_JID, "<query xmlns='jabber:iq:version'/>")
    assert r.type == "result", repr(r)
    q = r.child("query", "jabber:iq:version")
    assert q is not None and q.findtext("{jabber:iq:version}name") == "invites-api", repr(r)
    assert q.findtext("{jabber:iq:version}version"), repr(r)


def test_unknown_iq_gets_service_unavailable(user):
    for type_, payload in (("get", "<query xmlns='urn:example:nothing'/>"),
                           ("set", "<query xmlns='jabber:iq:version'/>")):
        r = user.iq(type_, COMPONENT_JID, payload)
        assert_error(r, "cancel", "service-unavailable")
