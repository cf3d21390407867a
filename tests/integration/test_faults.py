"""Faults and load (issue #4): Prosody killed with requests in flight, Prosody
restarted again and again under steady load, and 10,000 requests over 64
keep-alive connections checked against what Prosody stored.

Each test has its own Prosody and daemon. Prosody runs with SQLite storage in a
directory under /dev/shm when there is one: on a disk its storage syncs every
invite and a few dozen invites a second is all it manages, which would make the
load tests measure the disk instead of the daemon.
"""

import http.client
import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import harness
import servers
from harness import MAIN_HOST, assert_created

SHM = Path("/dev/shm")


@pytest.fixture
def fast_prosody(tmp_path):
    """A Prosody of this test's own with SQL storage in RAM (see the module doc)."""
    base = Path(tempfile.mkdtemp(prefix="invites-api-faults-", dir=SHM)) \
        if SHM.is_dir() and os.access(SHM, os.W_OK) else tmp_path
    p = servers.make_server(base / "prosody", sql=True)
    p.start()
    yield p
    p.stop()
    p.kill()
    if base != tmp_path:
        # keep the log next to the test's other files for a failure post-mortem
        shutil.copy(p.log, tmp_path / "prosody.log")
        shutil.rmtree(base, ignore_errors=True)


def started(make_instance, prosody, **kw):
    inst = make_instance(prosody, **kw)
    inst.key = inst.create_key(MAIN_HOST, "faults")
    inst.start()
    return inst


def rss_kib(pid):
    """VmRSS of a process, in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def connected_count(inst):
    return inst.log_text().count("connected to 127.0.0.1")


def assert_daemon_alive(inst):
    assert inst.proc.poll() is None, \
        f"the daemon died (exit {inst.proc.returncode})\n{inst.describe()}"


# The daemon allows 64 connections per client address (MHD's per-IP limit):
# more than that from one address is cut off at accept. Loads spread their
# connections over several loopback addresses, like several clients would.
SOURCES = [f"127.0.0.{i}" for i in range(1, 5)]


def connect(inst, index, timeout):
    return http.client.HTTPConnection("127.0.0.1", inst.http_port, timeout=timeout,
                                      source_address=(SOURCES[index % len(SOURCES)], 0))


def get_invite_from(inst, key, index, timeout):
    """One GET on a fresh connection from loopback address SOURCES[index % 4]."""
    conn = connect(inst, index, timeout)
    start = time.monotonic()
    try:
        conn.request("GET", f"{inst.path}?key={key}")
        resp = conn.getresponse()
        return harness.Response(resp.status, resp.headers, resp.read(),
                                time.monotonic() - start)
    finally:
        conn.close()


class Call:
    """The outcome of one request: status and Location, or the exception."""
    __slots__ = ("status", "location", "elapsed", "error")

    def __init__(self, status=None, location=None, elapsed=0.0, error=None):
        self.status, self.location, self.elapsed, self.error = status, location, elapsed, error

    def __repr__(self):
        return f"<Call {self.status or self.error!r} in {self.elapsed:.2f}s>"


class Load:
    """`connections` threads, each with one keep-alive connection, sending GETs
    until `total` requests were sent or stop() is called. A connection that
    fails is recorded and replaced; no request waits longer than timeout."""

    def __init__(self, inst, key, connections, total=None, pause=0.0, timeout=30):
        self.inst, self.key = inst, key
        self.total, self.pause, self.timeout = total, pause, timeout
        self.calls = []
        self.sent = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True,
                                         name=f"load {i}")
                        for i in range(connections)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _claim(self):
        with self.lock:
            if self.stopping.is_set() or (self.total is not None and self.sent >= self.total):
                return False
            self.sent += 1
            return True

    def _run(self, index):
        conn = None
        target = f"{self.inst.path}?key={self.key}"
        while self._claim():
            if conn is None:
                conn = connect(self.inst, index, self.timeout)
            start = time.monotonic()
            try:
                conn.request("GET", target)
                resp = conn.getresponse()
                resp.read()
                call = Call(resp.status, resp.getheader("Location"), time.monotonic() - start)
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                call = Call(elapsed=time.monotonic() - start, error=repr(e))
                conn.close()
                conn = None
            with self.lock:
                self.calls.append(call)
            if self.pause:
                time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def since(self, index):
        with self.lock:
            return self.calls[index:]

    def count(self):
        with self.lock:
            return len(self.calls)

    def wait_for(self, predicate, timeout, what):
        """Wait until predicate(calls made so far) holds."""
        harness.wait_until(lambda: predicate(self.since(0)), timeout, what=what)

    def stop(self, timeout=None):
        self.stopping.set()
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout + 5)
        for t in self.threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        hung = [t.name for t in self.threads if t.is_alive()]
        assert not hung, f"requests still unanswered after {timeout}s: {hung}"


# -- Prosody killed with 100 requests in flight --------------------------------

def test_prosody_killed_with_100_requests_in_flight(fast_prosody, make_instance):
    timeout_s = 3
    inst = started(make_instance, fast_prosody, request_timeout=timeout_s)
    assert_created(inst.get_invite(inst.key), inst)

    # Frozen, Prosody holds every request: all 100 are in flight when it dies.
    fast_prosody.sigstop()
    results = [None] * 100

    def call(i):
        try:
            results[i] = get_invite_from(inst, inst.key, i, timeout=timeout_s + 10)
        except Exception as e:   # recorded, judged below
            results[i] = e
    threads = [threading.Thread(target=call, args=(i,)) for i in range(100)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        answered = [r for r in results if r is not None]
        assert not answered, f"answered before Prosody died: {answered[:3]}"
    finally:
        killed_at = time.monotonic()
        fast_prosody.kill()
    for t in threads:
        t.join(timeout=timeout_s + 15)
    last_answer = time.monotonic() - killed_at

    errors = [r for r in results if not isinstance(r, harness.Response)]
    assert not errors, f"{len(errors)} requests failed or hung: {errors[:3]}\n{inst.describe()}"
    statuses = Counter(r.status for r in results)
    assert set(statuses) <= {503, 504}, f"answers: {statuses}\n{inst.describe()}"
    slowest = max(r.elapsed for r in results)
    assert slowest <= timeout_s + 1, \
        f"slowest answer {slowest:.2f}s, request_timeout is {timeout_s}s"
    print(f"\n100 in flight at the kill: {dict(statuses)}, slowest {slowest:.2f}s, "
          f"all answered {last_answer:.2f}s after the kill")
    assert_daemon_alive(inst)

    fast_prosody.start()
    deadline = time.monotonic() + 10
    while True:
        r = inst.get_invite(inst.key, timeout=timeout_s + 5)
        if r.status == 201 or time.monotonic() > deadline:
            break
        assert r.status == 503, f"{r!r}\n{inst.describe()}"
        time.sleep(0.2)
    loc, _ = assert_created(r, inst)
    assert harness.invite_page_state(loc) == "valid"


# -- Prosody restarted 20 times under steady load -----------------------------

def restart_prosody(prosody, inst, n, hard):
    """Stop Prosody (SIGKILL or SIGTERM), start it again and wait until the
    daemon has reconnected."""
    before = connected_count(inst)
    if hard:
        prosody.kill()
    else:
        prosody.stop()
    time.sleep(0.2)   # the load meets a daemon without a server
    prosody.start()
    harness.wait_until(lambda: connected_count(inst) > before, 15,
                       what=f"the daemon to reconnect after restart {n}")


def check_calls(calls, inst, timeout_s):
    errors = [c for c in calls if c.error]
    assert not errors, f"{len(errors)} requests failed: {errors[:5]}\n{inst.describe()}"
    statuses = Counter(c.status for c in calls)
    assert set(statuses) <= {201, 503, 504}, f"answers: {statuses}\n{inst.describe()}"
    slowest = max(c.elapsed for c in calls)
    assert slowest <= timeout_s + 1, f"slowest answer {slowest:.2f}s (timeout {timeout_s}s)"
    return statuses


# Each ejabberd restart takes about 4.5 s (Prosody's: a fraction of one): 8
# restarts there still check that reconnects leak nothing.
RESTARTS = 8 if servers.KIND == "ejabberd" else 20


def test_twenty_prosody_restarts_under_steady_load(fast_prosody, make_instance, monkeypatch):
    timeout_s = 3
    # An AddressSanitizer build keeps freed memory in quarantine (256 MiB): its
    # RSS grows with traffic, whatever the program does. Without quarantine the
    # RSS means what it means in the normal build (other builds ignore this).
    asan = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (asan + ":" if asan else "") + "quarantine_size_mb=0")
    inst = started(make_instance, fast_prosody, request_timeout=timeout_s)
    with Load(inst, inst.key, connections=8, pause=0.02, timeout=timeout_s + 5) as load:
        # Warm-up: traffic and two restarts, so every path has run before measuring.
        load.wait_for(lambda calls: len(calls) >= 300, 30, "300 warm-up answers")
        for n in range(2):
            restart_prosody(fast_prosody, inst, n, hard=True)
        load.wait_for(lambda calls: sum(c.status == 201 for c in calls[-50:]) == 50, 15,
                      "50 invites in a row after the warm-up")
        rss_before = rss_kib(inst.proc.pid)
        start_index = load.count()
        connects = connected_count(inst)

        for n in range(RESTARTS):
            restart_prosody(fast_prosody, inst, n, hard=n % 2 == 0)
            mark = load.count()
            load.wait_for(lambda calls: any(c.status == 201 for c in calls[mark:]), 10,
                          f"an invite after restart {n}")
            assert_daemon_alive(inst)
        mark = load.count()
        load.wait_for(lambda calls: len(calls) >= mark + 200, 30, "200 answers after the restarts")
        load.stop()
    rss_after = rss_kib(inst.proc.pid)

    assert_daemon_alive(inst)
    assert connected_count(inst) == connects + RESTARTS, inst.describe()
    statuses = check_calls(load.since(start_index), inst, timeout_s)
    stored = fast_prosody.stored_tokens()
    made = [c.location for c in load.since(0) if c.status == 201]
    missing = [loc for loc in made if harness.token_from_url(loc) not in stored]
    assert not missing, f"{len(missing)} invites answered 201 are not stored: {missing[:3]}"
    assert_created(inst.get_invite(inst.key), inst)
    print(f"\n{RESTARTS} restarts: {dict(statuses)}; VmRSS {rss_before} KiB before, "
          f"{rss_after} KiB after ({(rss_after - rss_before) * 100 / rss_before:+.1f}%)")
    if harness.WRAPPER:
        return   # valgrind's own memory (its queue of freed blocks) is in the RSS
    assert rss_after <= rss_before * 1.10, \
        f"VmRSS grew from {rss_before} to {rss_after} KiB over {RESTARTS} restarts"


# -- integrity under load -----------------------------------------------------

INVITE_URL_RE = re.compile(r"^http://localhost:(\d+)/invites_page\?([A-Za-z0-9_-]+)$")


@pytest.mark.skipif((servers.server_class().max_unexpired_invites or 10**9) < 10000,
                    reason="the server caps unexpired invites per inviter below 10,000 "
                           "(ejabberd: 1000)")
def test_ten_thousand_requests_over_64_connections(fast_prosody, make_instance):
    total, connections = 10_000, 64
    inst = started(make_instance, fast_prosody, request_timeout=60)
    before = fast_prosody.stored_tokens()
    started_at = time.monotonic()
    with Load(inst, inst.key, connections=connections, total=total, timeout=70) as load:
        load.wait_for(lambda calls: len(calls) >= total, 600, f"{total} answers")
    elapsed = time.monotonic() - started_at
    calls = load.since(0)
    print(f"\n{total} requests over {connections} connections in {elapsed:.1f}s "
          f"({total / elapsed:.0f}/s)")

    errors = [c for c in calls if c.error]
    assert not errors, f"{len(errors)} requests failed: {errors[:5]}"
    statuses = Counter(c.status for c in calls)
    assert statuses == {201: total}, f"answers: {statuses}\n{inst.describe()}"
    locations = [c.location for c in calls]
    dupes = [loc for loc, n in Counter(locations).items() if n > 1]
    assert not dupes, f"{len(dupes)} Locations handed out twice: {dupes[:3]}"
    tokens = set()
    for loc in locations:
        m = INVITE_URL_RE.match(loc or "")
        assert m and int(m.group(1)) == fast_prosody.http_port, f"malformed Location {loc!r}"
        tokens.add(m.group(2))
    new = fast_prosody.stored_tokens() - before
    assert len(new) == total, f"{total} answered 201 but Prosody stored {len(new)} invites"
    assert tokens == new, (f"{len(tokens - new)} handed-out tokens not stored, "
                           f"{len(new - tokens)} stored invites never handed out")
    # Prosody itself says the invites are live (a sample: each page is an HTTP call).
    for loc in locations[:: total // 20]:
        assert harness.invite_page_state(loc) == "valid", loc
