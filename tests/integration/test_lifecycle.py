"""The life of an API key, through the real CLI and HTTP against the real daemon
and Prosody: expiry (--expires), per-key invite limits (--limit N/DURATION,
--max-per-day N) with 429 and Retry-After, the columns of `list` and
`list --json`, and usage counters (invites, last used) that the daemon writes in
batches and that survive a restart.
"""

import re
import time
from datetime import datetime, timezone

import pytest

import harness

from harness import FOREIGN_HOST, MAIN_HOST, assert_created

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def life(prosody, make_module_instance):
    """A running daemon on the module's Prosody, without keys."""
    inst = make_module_instance(prosody, name="life")
    inst.start()
    return inst


def iso_time(text):
    assert ISO.match(text), f"not an ISO-8601 UTC time: {text!r}"
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def key_id(key):
    return key.split("/")[0]


def unknown_key_answer(inst):
    return inst.get_invite("AAAAAAAAAAAAAAAA/" + "A" * 43)


# --------------------------------------------------------------------------
# expiry

def test_key_expires(life):
    before = time.time()
    key = life.create_key(MAIN_HOST, "two seconds", "--expires", "2s")
    created = time.monotonic()
    assert_created(life.get_invite(key), life)

    row = life.list_rows(MAIN_HOST)[key_id(key)]
    expires = row[3]
    assert "(expired)" not in expires, row
    assert abs(iso_time(expires) - (before + 2)) <= 2, row

    # accepted until it expires, then refused like an unknown key, for good
    statuses = []

    def refused():
        r = life.get_invite(key)
        statuses.append(r.status)
        assert r.status in (201, 401), f"unexpected answer for a key about to expire: {r!r}"
        return r if r.status == 401 else None
    r = None
    try:
        r = harness.wait_until(refused, 5, interval=0.25,
                                             what="the 2 s key to be refused")
    except TimeoutError as e:
        raise AssertionError(f"{e}: answers {statuses}\n{life.describe()}") from None
    assert time.monotonic() - created >= 0.9, f"refused too early: {statuses}"
    unknown = unknown_key_answer(life)
    assert r.header("WWW-Authenticate") == unknown.header("WWW-Authenticate"), repr(r)
    assert r.body == unknown.body, f"an expired key must look like an unknown one: {r!r}"
    assert life.get_invite(key).status == 401

    row = life.list_rows(MAIN_HOST)[key_id(key)]
    assert row[3].endswith(" (expired)"), f"list does not mark the key expired: {row}"
    assert iso_time(row[3][:-len(" (expired)")]) == iso_time(expires)
    listed = {k["id"]: k for k in life.list_json(MAIN_HOST)}[key_id(key)]
    assert listed["expired"] is True and listed["expires"] == expires, listed


# --------------------------------------------------------------------------
# invite limits

def test_limit_answers_429_with_retry_after_then_recovers(life):
    prosody = life.prosody
    key = life.create_key(MAIN_HOST, "two per three seconds", "--limit", "2/3s")
    assert_created(life.get_invite(key), life)
    assert_created(life.get_invite(key), life)

    tokens = prosody.stored_tokens()
    r = life.get_invite(key)
    assert r.status == 429, f"third invite within 3 s of a 2/3s key: {r!r}\n{life.describe()}"
    retry = r.header("Retry-After")
    assert retry is not None and retry.isdigit() and 1 <= int(retry) <= 3, repr(r)
    assert r.header("Location") is None, repr(r)
    # the refused request never reached Prosody
    assert prosody.stored_tokens() == tokens, "an invite was stored for a 429"
    # other keys are not affected
    other = life.create_key(MAIN_HOST, "unlimited")
    assert_created(life.get_invite(other), life)

    time.sleep(int(retry) + 0.1)
    assert_created(life.get_invite(key), life)


# --------------------------------------------------------------------------
# list

def test_list_columns_and_json(make_instance):
    inst = make_instance()
    start = time.time()
    plain = inst.create_key(MAIN_HOST, "plain key")
    limited = inst.create_key(MAIN_HOST, "limited key", "--expires", "1d", "--limit", "5/1h")
    daily = inst.create_key(MAIN_HOST, "daily key", "--max-per-day", "7")
    reset = inst.create_key(MAIN_HOST, "reset key", "--allow", "reset,account")
    end = time.time()

    rows = inst.list_rows(MAIN_HOST)
    assert set(rows) == {key_id(plain), key_id(limited), key_id(daily), key_id(reset)}, rows
    for row in rows.values():
        assert len(row) == 8, f"ID NAME CREATED EXPIRES LAST_USED INVITES LIMIT ALLOW: {row}"
        assert start - 1 <= iso_time(row[2]) <= end + 1, row
        assert row[4] == "never" and row[5] == "0", row
    assert rows[key_id(plain)][1:2] + rows[key_id(plain)][3:4] + rows[key_id(plain)][6:] == \
        ["plain key", "never", "none", "account"], rows[key_id(plain)]
    assert rows[key_id(reset)][7] == "account,reset", rows[key_id(reset)]
    lim = rows[key_id(limited)]
    assert lim[1] == "limited key" and lim[6] == "5/1h", lim
    assert start + 86400 - 1 <= iso_time(lim[3]) <= end + 86400 + 1, lim
    assert rows[key_id(daily)][6] == "7/1d", rows[key_id(daily)]

    listed = {k["id"]: k for k in inst.list_json(MAIN_HOST)}
    assert set(listed) == set(rows)
    p = listed[key_id(plain)]
    assert p == {"id": key_id(plain), "name": "plain key", "host": MAIN_HOST,
                 "created": rows[key_id(plain)][2], "expires": None, "expired": False,
                 "last_used": None, "invites": 0, "max_invites": None, "period": None,
                 "allow": ["account"]}, p
    assert listed[key_id(reset)]["allow"] == ["account", "reset"], listed[key_id(reset)]
    q = listed[key_id(limited)]
    assert (q["expires"], q["expired"], q["max_invites"], q["period"]) == \
        (lim[3], False, 5, 3600), q
    d = listed[key_id(daily)]
    assert (d["max_invites"], d["period"]) == (7, 86400), d
    assert inst.list_json(FOREIGN_HOST) == []


# --------------------------------------------------------------------------
# usage counters

def test_usage_counters_and_limit_window_survive_a_restart(fresh_prosody, make_instance):
    inst = make_instance(fresh_prosody)
    key = inst.create_key(MAIN_HOST, "counted")
    capped = inst.create_key(MAIN_HOST, "capped", "--limit", "2/1h")
    inst.start()
    started = time.time()
    for _ in range(3):
        assert_created(inst.get_invite(key), inst)
    for _ in range(2):
        assert_created(inst.get_invite(capped), inst)
    assert inst.get_invite(capped).status == 429

    # SIGTERM: the daemon writes what it has not written yet before it exits
    assert inst.terminate() == 0, inst.describe()
    stopped = time.time()
    rows = inst.list_rows(MAIN_HOST)
    assert rows[key_id(key)][5] == "3", f"invites after a restart: {rows[key_id(key)]}"
    assert started - 1 <= iso_time(rows[key_id(key)][4]) <= stopped + 1, rows[key_id(key)]
    assert rows[key_id(capped)][5] == "2", rows[key_id(capped)]

    # a second life: counts go on from the stored ones, the limit window too
    inst.start()
    assert_created(inst.get_invite(key), inst)
    r = inst.get_invite(capped)
    assert r.status == 429, f"a 2/1h key used twice got {r.status} after a restart: {r!r}"
    assert inst.terminate() == 0, inst.describe()
    rows = inst.list_rows(MAIN_HOST)
    assert rows[key_id(key)][5] == "4", rows[key_id(key)]
    assert rows[key_id(capped)][5] == "2", rows[key_id(capped)]
    listed = {k["id"]: k for k in inst.list_json(MAIN_HOST)}
    assert listed[key_id(key)]["invites"] == 4
    assert listed[key_id(key)]["last_used"] == rows[key_id(key)][4]


def test_usage_is_written_while_running_and_counts_only_created_invites(life):
    """Without a shutdown, the counters reach the store within a few seconds. A key of
    the host where the component is not an admin gets 502s: those are not invites,
    so they neither use up its limit nor count as use. A key revoked before its
    usage was written does not hold back the others'."""
    failing = life.create_key(FOREIGN_HOST, "foreign, one per hour", "--limit", "1/1h")
    for _ in range(2):
        r = life.get_invite(failing)
        assert r.status == 502, f"a failed invite used up the limit of a 1/1h key: {r!r}"
    revoked = life.create_key(MAIN_HOST, "revoked before the flush")
    assert_created(life.get_invite(revoked), life)
    key = life.create_key(MAIN_HOST, "flushed while running")
    assert_created(life.get_invite(key), life)
    assert_created(life.get_invite(key), life)
    r = life.cli("delete", MAIN_HOST, "--", key_id(revoked))
    assert r.returncode == 0, repr(r)
    seen = []

    def counted():
        row = life.list_rows(MAIN_HOST)[key_id(key)]
        seen.append(row)
        return row[5] == "2" and row[4] != "never"
    try:
        harness.wait_until(counted, 8, interval=0.25, what="the usage of the key in `list`")
    except TimeoutError as e:
        raise AssertionError(f"{e}: last {seen[-1]}\n{life.describe()}") from None
    row = life.list_rows(FOREIGN_HOST)[key_id(failing)]
    assert row[4] == "never" and row[5] == "0", f"failed requests counted as use: {row}"
    assert key_id(revoked) not in life.list_rows(MAIN_HOST)
    assert "cannot record key usage" not in life.log_text(), life.describe()


# --------------------------------------------------------------------------
# a locked key store

def test_a_locked_key_store_does_not_stall_the_daemon(life):
    """Another process holding the store's write lock (a CLI mid-change) must
    not freeze the event loop while the daemon waits to write usage."""
    import sqlite3
    key = life.create_key(MAIN_HOST, "lock test")
    locker = sqlite3.connect(str(life.database), timeout=1, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        assert_created(life.get_invite(key), life)     # usage to write within 5 s
        deadline = time.monotonic() + 8
        slowest = 0.0
        while time.monotonic() < deadline:              # spans the flush attempt
            t0 = time.monotonic()
            r = unknown_key_answer(life)
            slowest = max(slowest, time.monotonic() - t0)
            assert r.status == 401, repr(r)
            time.sleep(0.2)
        assert slowest < 1.0, f"a request waited {slowest:.2f} s behind the lock"
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    # once the lock is gone the counters get written (bounded wait)
    harness.wait_until(lambda: life.list_rows(MAIN_HOST)[key_id(key)][5] == "1", 12,
                       what="the usage count to be written after the lock")
