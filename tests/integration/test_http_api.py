"""The HTTP API against a real Prosody: one Prosody and one daemon for this module.

Tests that revoke keys create their own, so no test depends on another."""

import datetime
import json
import re
import secrets
import signal
import threading
import time
import urllib.parse

import pytest

import harness
import servers
from xmpp_probe import register_with_token
from harness import FOREIGN_HOST, MAIN_HOST, assert_cors, assert_created, location_token


# -- helpers -----------------------------------------------------------------

def allow_methods(resp):
    allow = resp.header("Allow")
    assert allow, f"405 without Allow: {resp!r}"
    return {m.strip().upper() for m in allow.split(",")}


def bearer(key):
    return {"Authorization": "Bearer " + key}


def stored_count(daemon):
    return len(daemon.prosody.stored_tokens(MAIN_HOST))


# -- creating invites ----------------------------------------------------------

def test_get_with_query_key_returns_201_and_invite_location(daemon):
    r = daemon.get_invite(daemon.key)
    assert_created(r, daemon)


def test_location_is_a_valid_invite_page(daemon):
    loc, token = assert_created(daemon.get_invite(daemon.key), daemon)
    assert harness.invite_page_state(loc) == "valid"
    # the same check on a token Prosody never issued must see the invalid page
    assert harness.invite_page_state(daemon.prosody.page_url(token[:-1] + "_x")) == "invalid"


def test_body_is_the_location_as_text(daemon):
    r = daemon.get_invite(daemon.key)
    loc, _ = assert_created(r, daemon)
    assert (r.header("Content-Type") or "").startswith("text/plain"), repr(r)
    assert r.text == loc + "\n", repr(r)


def test_json_answer_when_accepted(daemon):
    r = daemon.get_invite(daemon.key, headers={"Accept": "application/json"})
    loc, token = assert_created(r, daemon)
    assert (r.header("Content-Type") or "").startswith("application/json"), repr(r)
    doc = json.loads(r.body)
    assert set(doc) >= {"url", "uri", "expires"}, doc
    assert doc["url"] == loc
    assert doc["uri"] == f"xmpp:{MAIN_HOST}?register;preauth={token}", doc
    expires = datetime.datetime.fromisoformat(doc["expires"].replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.timezone.utc)
    # the server's default lifetime: Prosody's invite_expiry is 7 days, ejabberd's 5
    days = daemon.prosody.invite_lifetime_days
    assert now + datetime.timedelta(days=days - 1) < expires \
        < now + datetime.timedelta(days=days + 1), doc


def test_bearer_key_without_query(daemon):
    r = daemon.request("GET", headers=bearer(daemon.key))
    assert_created(r, daemon)


def test_url_encoded_key_is_accepted(daemon):
    r = daemon.request("GET", query="key=" + urllib.parse.quote(daemon.key, safe=""))
    assert_created(r, daemon)


@pytest.mark.parametrize("how", ["query", "bearer"])
def test_post_creates_invite(daemon, how):
    if how == "query":
        r = daemon.request("POST", query="key=" + daemon.key, body=b"")
    else:
        r = daemon.request("POST", headers=bearer(daemon.key), body=b"")
    loc, _ = assert_created(r, daemon)
    assert harness.invite_page_state(loc) == "valid"


def test_same_key_in_query_and_bearer_is_accepted(daemon):
    r = daemon.request("GET", query="key=" + daemon.key, headers=bearer(daemon.key))
    assert_created(r, daemon)


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_redirect_true_gives_303_to_the_invite(daemon, value):
    r = daemon.request("GET", query=f"key={daemon.key}&redirect={value}")
    loc, _ = assert_created(r, daemon, status=303)
    assert harness.invite_page_state(loc) == "valid"


@pytest.mark.parametrize("value", ["false", "0", None])
def test_redirect_false_or_absent_gives_201(daemon, value):
    query = f"key={daemon.key}" + (f"&redirect={value}" if value is not None else "")
    assert_created(daemon.request("GET", query=query), daemon)


@pytest.mark.parametrize("value", ["maybe", "2", "TRUE!", "on"])
def test_redirect_other_value_is_400_without_invite(daemon, value):
    before = stored_count(daemon)
    r = daemon.request("GET", query=f"key={daemon.key}&redirect={value}")
    assert r.status == 400, f"{r!r}\n{daemon.describe()}"
    assert r.body == b"redirect must be true or false (or 1, yes, 0, no)\n", repr(r)
    assert r.header("Location") is None, repr(r)
    assert stored_count(daemon) == before, "a 400 must not create an invite"


def test_every_call_creates_a_new_invite(daemon):
    tokens = [assert_created(daemon.get_invite(daemon.key), daemon)[1] for _ in range(3)]
    assert len(set(tokens)) == 3, tokens
    for t in tokens:
        assert harness.invite_page_state(daemon.prosody.page_url(t)) == "valid"


def test_key_created_while_running_works_at_once(daemon):
    key = daemon.create_key(MAIN_HOST, "added later")
    assert_created(daemon.get_invite(key), daemon)


def test_deleted_key_is_refused_by_the_next_call(daemon):
    key = daemon.create_key(MAIN_HOST, "to revoke")
    assert_created(daemon.get_invite(key), daemon)
    r = daemon.cli("delete", MAIN_HOST, key.split("/")[0])
    assert r.returncode == 0, repr(r)
    refused = daemon.get_invite(key)
    assert refused.status == 401, f"deleted key still works: {refused!r}\n{daemon.describe()}"
    # the other key is unaffected
    assert_created(daemon.get_invite(daemon.key), daemon)


def test_each_delete_is_refused_by_the_next_call_on_a_busy_daemon(daemon):
    """The daemon learns of a change from a signal, not by looking on every
    request: each CLI delete must still be refused by the very next call, the
    daemon idle or busy answering others (wrong keys from a thread)."""
    assert "SIGIO is" not in daemon.log_text(), "the daemon reads its watch on every request"
    keys = [daemon.create_key(MAIN_HOST, f"busy {i}") for i in range(8)]
    wrong = keys[0].split("/")[0] + "/" + "A" * len(keys[0].split("/")[1])
    stop = threading.Event()
    busy_answers = []

    def keep_busy():
        while not stop.is_set() and len(busy_answers) < 20000:
            busy_answers.append(daemon.get_invite(wrong).status)

    t = threading.Thread(target=keep_busy)
    t.start()
    try:
        for i, key in enumerate(keys):
            if i == len(keys) // 2:
                stop.set()      # the second half with the daemon idle
                t.join()
            assert daemon.get_invite(key).status == 201
            r = daemon.cli("delete", MAIN_HOST, key.split("/")[0])
            assert r.returncode == 0, repr(r)
            refused = daemon.get_invite(key)
            assert refused.status == 401, (
                f"key {i} still works after its delete: {refused!r}\n{daemon.describe()}")
    finally:
        stop.set()
        t.join()
    assert busy_answers and set(busy_answers) == {401}, set(busy_answers)


@pytest.mark.parametrize("sigio", ["blocked", "ignored"])
def test_deletes_refused_at_once_when_sigio_is_blocked_or_ignored(sigio, fresh_prosody,
                                                                 make_instance):
    """Started with SIGIO blocked or ignored (a parent's `trap '' IO`), the daemon
    says so and reads the key store's watch on every request: each delete is
    still refused by the very next call."""
    inst = make_instance(fresh_prosody)
    keys = [inst.create_key(MAIN_HOST, f"{sigio} {i}") for i in range(3)]
    if sigio == "blocked":
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGIO})
    else:
        previous = signal.signal(signal.SIGIO, signal.SIG_IGN)
    try:
        inst.start()    # the child inherits the mask and the disposition
    finally:
        if sigio == "blocked":
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        else:
            signal.signal(signal.SIGIO, previous)
    want = "blocked or unusable" if sigio == "blocked" else "ignored or handled elsewhere"
    assert re.search(rf"SIGIO is {want} \([^)\n]+\): every request drains",
                     inst.log_text()), inst.describe()
    for i, key in enumerate(keys):
        assert_created(inst.get_invite(key), inst)
        assert inst.cli("delete", MAIN_HOST, key.split("/")[0]).returncode == 0
        refused = inst.get_invite(key)
        assert refused.status == 401, f"key {i} still works after its delete: {refused!r}"


def test_fifty_concurrent_requests_give_fifty_valid_invites(daemon):
    results = [None] * 50
    barrier = threading.Barrier(50, timeout=10)

    def call(i):
        try:
            barrier.wait()
            results[i] = daemon.get_invite(daemon.key, timeout=30)
        except Exception as e:   # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "requests still hanging after 60 s"
    errors = [r for r in results if not isinstance(r, harness.Response) or r.status != 201]
    assert not errors, f"{len(errors)} of 50 failed, e.g. {errors[:3]!r}\n{daemon.describe()}"
    tokens = {location_token(r, daemon)[1] for r in results}
    assert len(tokens) == 50, f"only {len(tokens)} distinct invites"
    states = {harness.invite_page_state(daemon.prosody.page_url(t)) for t in tokens}
    assert states == {"valid"}


# -- refusals -------------------------------------------------------------------

def test_no_key_is_401_with_www_authenticate_bearer(daemon):
    r = daemon.request("GET")
    assert r.status == 401, f"{r!r}\n{daemon.describe()}"
    assert (r.header("WWW-Authenticate") or "").startswith("Bearer"), repr(r)


def test_bad_keys_are_401_with_identical_bodies(daemon):
    key_id, secret = daemon.key.split("/")
    other_secret = harness.secrets.token_urlsafe(32)
    harness.register_secret(other_secret)
    attempts = {
        "malformed": dict(query="key=not-a-key"),
        "malformed, no secret": dict(query=f"key={key_id}/"),
        "malformed, bad characters": dict(query=f"key={key_id}/{secret[:-1]}%21"),
        "unknown id": dict(query=f"key=ZZZZZZZZZZZZ/{secret}"),
        "wrong secret": dict(query=f"key={key_id}/{other_secret}"),
        "wrong secret, bearer": dict(headers=bearer(f"{key_id}/{other_secret}")),
        "secret of another key": dict(query=f"key={key_id}/{daemon.foreign_key.split('/')[1]}"),
    }
    before = stored_count(daemon)
    answers = {name: daemon.request("GET", **kw) for name, kw in attempts.items()}
    for name, r in answers.items():
        assert r.status == 401, f"{name}: {r!r}\n{daemon.describe()}"
    bodies = {name: r.body for name, r in answers.items()}
    assert len(set(bodies.values())) == 1, f"401 bodies differ: {bodies!r}"
    assert stored_count(daemon) == before


def test_different_keys_in_query_and_bearer_are_400(daemon):
    other = daemon.create_key(MAIN_HOST, "second")
    before = stored_count(daemon)
    r = daemon.request("GET", query="key=" + daemon.key, headers=bearer(other))
    assert r.status == 400, f"{r!r}\n{daemon.describe()}"
    assert stored_count(daemon) == before


def test_head_is_405_with_allow_and_creates_no_invite(daemon):
    before = stored_count(daemon)
    r = daemon.request("HEAD", query="key=" + daemon.key)
    assert r.status == 405, f"{r!r}\n{daemon.describe()}"
    assert {"GET", "POST", "OPTIONS"} <= allow_methods(r), repr(r)
    time.sleep(0.3)   # an invite created behind the 405 would be stored by now
    assert stored_count(daemon) == before, "HEAD created an invite"
    # the count does move when an invite is made, so the check above can fail
    assert_created(daemon.get_invite(daemon.key), daemon)
    assert stored_count(daemon) == before + 1


@pytest.mark.parametrize("pad", [8_300, 12_000, 16_000, 19_000, 24_000, 32_300])
def test_oversized_headers_are_431_before_any_invite(daemon, pad):
    """Headers that fill most of a connection's memory used to leave no room for
    the answer: the invite was made and the client got nothing. Over 8 KiB is
    our 431 (with CORS, for browser code); past what a connection's 20 KiB
    can hold at all, libmicrohttpd's own (README)."""
    before = stored_count(daemon)
    r = daemon.request("GET", query="key=" + daemon.key, headers={"X-Pad": "p" * pad})
    assert r.status == 431, f"{r!r}\n{daemon.describe()}"
    if pad < 19_500:
        assert_cors(r)
    time.sleep(0.3)
    assert stored_count(daemon) == before, "an oversized request created an invite"


def test_large_but_reasonable_headers_still_work(daemon):
    r = daemon.get_invite(daemon.key, headers={"Cookie": "c=" + "x" * 7_000})
    assert_created(r, daemon)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(daemon, method):
    before = stored_count(daemon)
    r = daemon.request(method, query="key=" + daemon.key, body=b"")
    assert r.status == 405, f"{r!r}\n{daemon.describe()}"
    assert {"GET", "POST", "OPTIONS"} <= allow_methods(r), repr(r)
    assert stored_count(daemon) == before


@pytest.mark.parametrize("path", ["/", "/invites", "/invites_api_x", "/invites_api/extra",
                                  "/other/invites_api"])
def test_other_path_is_404(daemon, path):
    before = stored_count(daemon)
    r = daemon.request("GET", path=path, query="key=" + daemon.key)
    assert r.status == 404, f"{r!r}\n{daemon.describe()}"
    assert stored_count(daemon) == before


def test_options_is_204_with_cors_and_needs_no_key(daemon):
    r = daemon.request("OPTIONS", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert r.status == 204, f"{r!r}\n{daemon.describe()}"
    assert r.body == b""
    assert_cors(r)


def test_foreign_host_key_is_502_and_log_names_the_fix(daemon):
    offset = len(daemon.log_text())
    r = daemon.get_invite(daemon.foreign_key)
    assert r.status == 502, f"{r!r}\n{daemon.describe()}"
    assert r.header("Location") is None
    body = r.text
    assert body.strip() and "\n" not in body.rstrip("\n"), f"502 body must be one line: {body!r}"
    daemon.wait_log(daemon.prosody.foreign_host_fix, timeout=3, start_offset=offset)
    assert not daemon.prosody.stored_tokens(FOREIGN_HOST)
    # the daemon is still fine for the host that allows it
    assert_created(daemon.get_invite(daemon.key), daemon)


# -- headers on every answer ------------------------------------------------------

ANSWERS = {
    "201": lambda d: d.get_invite(d.key),
    "303": lambda d: d.request("GET", query=f"key={d.key}&redirect=true"),
    "400": lambda d: d.request("GET", query=f"key={d.key}&redirect=perhaps"),
    "401": lambda d: d.request("GET"),
    "401 unknown id": lambda d: d.request("GET", query="key=ZZZZZZZZZZZZ/" + "A" * 43),
    "404": lambda d: d.request("GET", path="/nothing-here"),
    "405 PUT": lambda d: d.request("PUT", body=b""),
    "405 HEAD": lambda d: d.request("HEAD"),
    "204 OPTIONS": lambda d: d.request("OPTIONS"),
    "502": lambda d: d.get_invite(d.foreign_key),
}


@pytest.mark.parametrize("kind", list(ANSWERS))
def test_cors_headers_on_every_answer(daemon, kind):
    r = ANSWERS[kind](daemon)
    assert r.status == int(kind[:3]), f"{r!r}\n{daemon.describe()}"
    assert_cors(r)


# -- the request log ---------------------------------------------------------------

def test_one_log_line_per_request_without_query_or_secret(daemon):
    key_id, secret = daemon.key.split("/")
    offset = len(daemon.log_text())
    r = daemon.request("GET", query=f"key={daemon.key}&redirect=false")
    assert r.status == 201, f"{r!r}\n{daemon.describe()}"

    def request_lines():
        new = daemon.log_text()[offset:]
        return [ln for ln in new.splitlines() if key_id in ln and "201" in ln]
    try:
        lines = harness.wait_until(request_lines, 3, what="the request's log line")
    except TimeoutError:
        raise AssertionError(f"no log line with key ID {key_id} and 201\n{daemon.describe()}")
    assert len(lines) == 1, f"expected one line for one request: {lines}"
    line = lines[0]
    assert "GET" in line and daemon.path in line, line
    assert re.search(r"\d(\.\d+)?\s*(ms|s|us|µs)\b", line), f"no duration in {line!r}"
    new = daemon.log_text()[offset:]
    assert "?" not in line and "redirect" not in new, f"query logged: {new}"
    assert secret not in new


# -- password resets, reserved usernames, permissions ---------------------------
# Prosody 0.12 has no password-reset command and its create-account takes no
# username: both answer 501. Permissions and parameters are checked before
# anything is sent, so those answers come even while Prosody is frozen.

RESET_PATH = "/invites_api/reset"


def reset(daemon, key, jid, method="POST", **kw):
    return daemon.request(method, path=RESET_PATH, query=urllib.parse.urlencode(
        {"key": key, "jid": jid}), **kw)


@pytest.fixture(scope="module")
def reset_key(daemon):
    return daemon.create_key(MAIN_HOST, "may reset", "--allow", "account,reset")


def one_line(resp):
    assert resp.text.endswith("\n") and "\n" not in resp.text[:-1], repr(resp)
    return resp.text[:-1]


@pytest.mark.skipif(servers.server_class().offers_password_reset,
                    reason="this server offers password resets")
def test_reset_on_prosody_012_answers_501_and_stores_nothing(daemon, reset_key):
    before = daemon.prosody.stored_tokens()
    r = reset(daemon, reset_key, f"alice@{MAIN_HOST}")
    assert r.status == 501, f"{r!r}\n{daemon.describe()}"
    assert "password-reset" in one_line(r) or "cannot do this" in one_line(r), repr(r)
    assert r.header("Location") is None, repr(r)
    assert_cors(r)
    # in a form body too
    r = daemon.request("POST", path=RESET_PATH, body=f"jid=alice%40{MAIN_HOST}".encode(),
                       headers={**bearer(reset_key),
                                "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 501, repr(r)
    assert daemon.prosody.stored_tokens() == before


def test_reset_needs_the_permission_checked_before_the_server(daemon, reset_key):
    prosody = daemon.prosody
    before = prosody.stored_tokens()
    prosody.sigstop()       # a request that reached the server would now wait for it
    try:
        start = time.monotonic()
        r = reset(daemon, daemon.key, f"alice@{MAIN_HOST}")
        assert r.status == 403, repr(r)
        assert one_line(r) == "this key may not create password-reset invites", repr(r)
        r = reset(daemon, daemon.key, f"alice@{MAIN_HOST}",
                  headers={"Accept": "application/json"})
        assert r.status == 403 and json.loads(r.body) == {
            "error": "this key may not create password-reset invites"}, repr(r)
        # bad parameters: 400 at once as well
        for jid in ("", MAIN_HOST, f"alice@{MAIN_HOST}/phone", f"alice@{FOREIGN_HOST}",
                    f"a b@{MAIN_HOST}", f"@{MAIN_HOST}"):
            r = reset(daemon, reset_key, jid)
            assert r.status == 400, f"jid {jid!r}: {r!r}"
        r = daemon.request("GET", path=RESET_PATH,
                           query=f"key={reset_key}&jid=alice@{MAIN_HOST}")
        assert r.status == 405 and allow_methods(r) == {"POST", "OPTIONS"}, repr(r)
        assert time.monotonic() - start < 5
    finally:
        prosody.cont()
    assert prosody.stored_tokens() == before


def test_a_reset_only_key_makes_no_account_invite(daemon):
    key = daemon.create_key(MAIN_HOST, "reset only", "--allow", "reset")
    r = daemon.get_invite(key)
    assert r.status == 403, repr(r)
    assert one_line(r) == "this key may not create account invites", repr(r)


def test_json_answer_says_the_type(daemon):
    r = daemon.get_invite(daemon.key, headers={"Accept": "application/json"})
    assert_created(r, daemon)
    doc = json.loads(r.body)
    assert doc["type"] == "account" and "username" not in doc, doc


@pytest.mark.parametrize("username", [
    "", "a b", "a@b", "a/b", "a:b", 'a"b', "a&b", "a'b", "a<b", "a>b", "a\tb", "a\x7fb",
    "a\u00a0b", "\ue000", "x" * 1024,
])
def test_invalid_username_answers_400_and_stores_nothing(daemon, username):
    before = daemon.prosody.stored_tokens()
    r = daemon.request("GET", query=urllib.parse.urlencode(
        {"key": daemon.key, "username": username}))
    assert r.status == 400, repr(r)
    assert one_line(r).startswith("username "), repr(r)
    assert daemon.prosody.stored_tokens() == before


@pytest.mark.parametrize("raw", ["%FF", "%C0%80", "%ED%A0%80", "a%00b"])
def test_username_that_is_no_utf8_or_has_nul_answers_400(daemon, raw):
    before = daemon.prosody.stored_tokens()
    r = daemon.request("GET", query=f"key={daemon.key}&username={raw}")
    assert r.status == 400, repr(r)
    assert daemon.prosody.stored_tokens() == before


@pytest.mark.skipif(not servers.server_class().offers_password_reset,
                    reason="this server has no password-reset command")
def test_reset_makes_a_password_reset_invite_where_offered(daemon, reset_key):
    """Prosody 13: the reset invite is stored like the others."""
    before = daemon.prosody.stored_tokens()
    r = reset(daemon, reset_key, f"alice@{MAIN_HOST}")
    assert r.status == 201, f"{r!r}\n{daemon.describe()}"
    loc = r.header("Location")
    assert loc, repr(r)
    assert harness.token_from_url(loc) in daemon.prosody.stored_tokens() - before, loc


@pytest.mark.skipif(not servers.server_class().takes_username,
                    reason="this server's create-account takes no username")
def test_username_is_reserved_where_the_server_takes_one(daemon):
    """ejabberd: the invite reserves the username; a second one for it is a 409."""
    name = "reserved" + secrets.token_hex(3)
    r = daemon.request("GET", query=f"key={daemon.key}&username={name}")
    loc, _ = assert_created(r, daemon)
    r = daemon.request("GET", query=f"key={daemon.key}&username={name}")
    assert r.status == 409, f"{r!r}\n{daemon.describe()}"
    assert r.header("Location") is None, repr(r)


@pytest.mark.skipif(not servers.server_class().takes_username,
                    reason="this server's create-account takes no username")
def test_reserved_username_registers_that_name_and_no_other(daemon):
    """ejabberd: a real client presenting the token of an invite made with
    username=NAME (XEP-0401 preauth, then in-band registration) registers NAME;
    with any other invite's token NAME cannot be registered. (ejabberd 26.07
    lets the holder of NAME's token pick another, unreserved name instead, and
    compares the reservation before Nodeprep: another token can register
    NAME spelled in capitals, which the server then stores as NAME. Both are
    the server's; we reserve the name as the server stores it.)"""
    name = "only" + secrets.token_hex(3)
    r = daemon.request("GET", query=f"key={daemon.key}&username={name.upper()}",
                       headers={"Accept": "application/json"})
    assert r.status == 201, f"{r!r}\n{daemon.describe()}"
    body = json.loads(r.body)
    assert body["type"] == "account" and body["username"] == name, body
    token = harness.token_from_url(body["uri"])
    r = daemon.request("GET", query=f"key={daemon.key}", headers={"Accept": "application/json"})
    assert r.status == 201, f"{r!r}\n{daemon.describe()}"
    other_token = harness.token_from_url(json.loads(r.body)["uri"])
    port = daemon.prosody.c2s_port
    pre, reg = register_with_token(port, MAIN_HOST, other_token, name, "pw-0123456789")
    assert "type='error'" in pre or reg is None or "type='error'" in reg, (pre, reg)
    pre, reg = register_with_token(port, MAIN_HOST, token, name, "pw-0123456789")
    assert "type='result'" in pre and reg is not None and "type='result'" in reg, (pre, reg)
    # used: the token registers nobody else now
    pre, reg = register_with_token(port, MAIN_HOST, token, name + "2", "pw-0123456789")
    assert "type='error'" in pre or reg is None or "type='error'" in reg, (pre, reg)


@pytest.mark.skipif(servers.server_class().takes_username,
                    reason="this server's create-account takes a username")
def test_username_on_prosody_012_answers_501(daemon):
    """Prosody 0.12's create-account has no username field: it completes at
    once, so the invite it made is not the one asked for, and the answer is
    501. That invite does stay in Prosody's storage, unused, until it
    expires: the command has no way to ask first. Once the component has seen
    a create-account complete at once on its connection, it answers 501
    without asking, and nothing is made."""
    r = daemon.get_invite(daemon.key)   # an invite without a username teaches it
    assert r.status == 201, repr(r)
    before = daemon.prosody.stored_tokens()
    for how in ("query", "form"):
        if how == "query":
            r = daemon.request("GET", query=f"key={daemon.key}&username=Alice")
        else:
            r = daemon.request("POST", body=b"username=alice", headers={
                **bearer(daemon.key), "Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 501, f"{how}: {r!r}\n{daemon.describe()}"
        assert r.header("Location") is None, repr(r)
        assert "does not support reserved usernames" in one_line(r), repr(r)
        after = daemon.prosody.stored_tokens()
    assert len(after - before) == 0, (before, after)
