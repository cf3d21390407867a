"""Prosody going away, going silent, coming back; the daemon being stopped.

Each test has its own Prosody (fresh_prosody) and its own daemon."""

import signal
import threading
import time

import harness
from harness import MAIN_HOST, assert_cors, assert_created


def started(make_instance, prosody, **kw):
    inst = make_instance(prosody, **kw)
    inst.key = inst.create_key(MAIN_HOST, "resilience")
    inst.start()
    return inst


def assert_unavailable(r, inst, max_seconds=0.5):
    assert r.status == 503, f"expected 503: {r!r}\n{inst.describe()}"
    assert r.elapsed < max_seconds, f"503 took {r.elapsed:.3f}s, should be at once"
    retry = r.header("Retry-After")
    assert retry and retry.strip().isdigit(), f"503 needs Retry-After (seconds): {r!r}"
    assert_cors(r)


def wait_for_201(inst, timeout):
    """Call until an invite is created; every answer before must be a fast 503."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        r = inst.get_invite(inst.key, timeout=15)
        if r.status == 201:
            return r
        seen.append(r.status)
        assert_unavailable(r, inst)
        time.sleep(0.2)
    raise AssertionError(f"no 201 within {timeout}s (answers: {seen})\n{inst.describe()}")


def prosody_saw_stream_close(prosody):
    return prosody.saw_component_stream_close()


def test_prosody_killed_gives_503_at_once_and_201_after_restart(fresh_prosody, make_instance):
    inst = started(make_instance, fresh_prosody)
    assert_created(inst.get_invite(inst.key), inst)

    killed_at = time.monotonic()
    fresh_prosody.kill()
    time.sleep(0.1)
    first = inst.get_invite(inst.key, timeout=10)
    since_kill = time.monotonic() - killed_at
    assert_unavailable(first, inst)
    assert since_kill < 1.0, f"first answer came {since_kill:.2f}s after the kill"
    for _ in range(3):
        assert_unavailable(inst.get_invite(inst.key, timeout=10), inst)

    offset = len(inst.log_text())
    fresh_prosody.start()
    r = wait_for_201(inst, timeout=10)
    loc, _ = assert_created(r, inst)
    assert harness.invite_page_state(loc) == "valid"
    assert "connected to" in inst.log_text()[offset:], inst.describe()


def test_request_pending_when_prosody_dies_is_answered_at_once(fresh_prosody, make_instance):
    inst = started(make_instance, fresh_prosody, request_timeout=10)
    assert_created(inst.get_invite(inst.key), inst)
    fresh_prosody.sigstop()
    result = {}
    def call():
        result["r"] = inst.get_invite(inst.key, timeout=15)
        result["answered_at"] = time.monotonic()
    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.5)                 # the request is now waiting for Prosody
    killed_at = time.monotonic()
    fresh_prosody.kill()
    t.join(timeout=15)
    assert "r" in result, f"request never answered\n{inst.describe()}"
    answered_after = time.monotonic() - killed_at
    r = result["r"]
    assert r.status == 503, f"a request cut off by the disconnect: {r!r}\n{inst.describe()}"
    assert answered_after < 1.0, \
        f"answered {answered_after:.2f}s after Prosody died (request_timeout is 10 s)"


def test_silent_prosody_gives_504_after_request_timeout(fresh_prosody, make_instance):
    inst = started(make_instance, fresh_prosody, request_timeout=2)
    assert_created(inst.get_invite(inst.key), inst)
    fresh_prosody.sigstop()
    try:
        r = inst.get_invite(inst.key, timeout=15)
    finally:
        fresh_prosody.cont()
    assert r.status == 504, f"{r!r}\n{inst.describe()}"
    assert 1.8 <= r.elapsed <= 4.0, f"504 after {r.elapsed:.2f}s, request_timeout is 2 s"
    assert_cors(r)
    # Prosody now answers the old request late; the daemon must shrug that off
    time.sleep(0.5)
    loc, _ = assert_created(inst.get_invite(inst.key, timeout=10), inst)
    assert harness.invite_page_state(loc) == "valid"


def test_sigterm_answers_waiting_request_503_and_exits_0(fresh_prosody, make_instance):
    inst = started(make_instance, fresh_prosody, request_timeout=10)
    assert_created(inst.get_invite(inst.key), inst)
    fresh_prosody.sigstop()
    result = {}
    def call():
        result["r"] = inst.get_invite(inst.key, timeout=15)
        result["answered_at"] = time.monotonic()
    t = threading.Thread(target=call)
    t.start()
    try:
        time.sleep(0.5)             # the request is now waiting for Prosody
        term_at = time.monotonic()
        code = inst.terminate(signal.SIGTERM, timeout=5)
        t.join(timeout=10)
    finally:
        fresh_prosody.cont()
    assert "r" in result, f"waiting request never answered\n{inst.describe()}"
    r = result["r"]
    assert r.status == 503, f"{r!r}\n{inst.describe()}"
    assert_cors(r)
    # Answered at once, not after the stream close times out on the frozen server.
    assert result["answered_at"] - term_at < 1.0, f"{result['answered_at'] - term_at:.2f} s"
    assert code == 0, f"exit {code} on SIGTERM\n{inst.describe()}"


def test_sigint_closes_the_stream_and_exits_0(fresh_prosody, make_instance):
    inst = started(make_instance, fresh_prosody)
    assert_created(inst.get_invite(inst.key), inst)
    code = inst.terminate(signal.SIGINT, timeout=5)
    assert code == 0, f"exit {code} on SIGINT\n{inst.describe()}"
    harness.wait_until(lambda: prosody_saw_stream_close(fresh_prosody), 3,
                       what="Prosody to receive </stream:stream>")


def test_sigterm_closes_the_stream_and_exits_0(fresh_prosody, make_instance):
    inst = started(make_instance, fresh_prosody)
    code = inst.terminate(signal.SIGTERM, timeout=5)
    assert code == 0, f"exit {code} on SIGTERM\n{inst.describe()}"
    harness.wait_until(lambda: prosody_saw_stream_close(fresh_prosody), 3,
                       what="Prosody to receive </stream:stream>")


def test_started_without_prosody_gives_503_then_connects(fresh_prosody, make_instance):
    fresh_prosody.kill()
    inst = make_instance(fresh_prosody)
    inst.key = inst.create_key(MAIN_HOST, "early")
    inst.start(wait_connected=False)
    assert_unavailable(inst.get_invite(inst.key, timeout=10), inst)
    fresh_prosody.start()
    inst.wait_log("connected to", timeout=10)
    assert_created(inst.get_invite(inst.key), inst)


def test_wrong_component_secret_gives_503(fresh_prosody, make_instance):
    inst = make_instance(None, component_port=fresh_prosody.component_port,
                         component_secret="not-the-" + fresh_prosody.component_secret)
    inst.key = inst.create_key(MAIN_HOST, "k")
    inst.start(wait_connected=False)
    time.sleep(1)                   # time for the refused handshake
    assert_unavailable(inst.get_invite(inst.key, timeout=10), inst)
    assert "connected to" not in inst.log_text(), inst.describe()


def test_cors_origin_is_configurable(fresh_prosody, make_instance):
    origin = "https://app.example"
    inst = started(make_instance, fresh_prosody, cors_origin=origin)
    for r in (inst.get_invite(inst.key), inst.request("GET"), inst.request("OPTIONS"),
              inst.request("PUT", body=b""), inst.request("GET", path="/elsewhere")):
        assert_cors(r, origin=origin)
    fresh_prosody.kill()
    time.sleep(0.2)
    assert_cors(inst.get_invite(inst.key, timeout=10), origin=origin)


def test_requests_beyond_max_pending_get_503_at_once(fresh_prosody, make_instance):
    """A frozen server must not collect an unbounded queue of requests."""
    inst = started(make_instance, fresh_prosody, max_pending=2, request_timeout=10)
    fresh_prosody.sigstop()
    results = []
    threads = [threading.Thread(target=lambda: results.append(inst.get_invite(inst.key,
                                                                              timeout=15)))
               for _ in range(2)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)             # both are now waiting for the frozen Prosody
        r = inst.get_invite(inst.key, timeout=5)
        assert_unavailable(r, inst)
        assert "too many" in r.text, repr(r)
    finally:
        fresh_prosody.cont()
        for t in threads:
            t.join(timeout=15)
    assert sorted(x.status for x in results) == [201, 201], results
