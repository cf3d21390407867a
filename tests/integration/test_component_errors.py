"""The XMPP server refusing the component (issue #4): a wrong secret, a JID the
server does not know, a second instance with the same JID. Each is one log line
per attempt that names the cause and the fix; the daemon keeps retrying with a
growing backoff and answers 503 meanwhile."""

import re
import time

import pytest

import harness
from harness import MAIN_HOST, assert_created

RETRY_RE = re.compile(r"retrying in (\d+)\.(\d) s")


def assert_unavailable(inst):
    r = inst.get_invite(inst.key, timeout=10)
    assert r.status == 503, f"expected 503: {r!r}\n{inst.describe()}"
    assert r.elapsed < 0.5, f"503 took {r.elapsed:.2f}s"
    assert r.header("Retry-After"), repr(r)
    assert r.text.strip() and "\n" not in r.text.strip(), f"one-line reason: {r.text!r}"
    return r


def lines_with(inst, needle, offset=0):
    return [ln for ln in inst.log_text()[offset:].splitlines() if needle in ln]


def retry_delays(lines):
    delays = []
    for ln in lines:
        m = RETRY_RE.search(ln)
        assert m, f"no 'retrying in N s' in {ln!r}"
        delays.append(int(m.group(1)) + int(m.group(2)) / 10)
    return delays


def check_refusals(inst, needle, fix):
    """Two refused attempts, each one line naming the cause and the fix, the
    second after about twice the delay of the first; 503 in between."""
    assert_unavailable(inst)
    inst.wait_log(needle, timeout=5)
    assert_unavailable(inst)
    harness.wait_until(lambda: len(lines_with(inst, needle)) >= 3, 10,
                       what=f"a third {needle!r} line")
    lines = lines_with(inst, needle)
    for ln in lines:
        assert fix in ln, f"the line does not say how to fix it ({fix!r}): {ln!r}"
    first, second = retry_delays(lines[:2])
    assert 0.7 <= first <= 1.3 and 1.5 <= second <= 2.5, \
        f"backoff should go ~1 s, ~2 s: {first}, {second}\n{inst.describe()}"
    # one line per attempt, nothing else at warning level or above about it
    noisy = [ln for ln in inst.log_text().splitlines()
             if ln.split(" ")[1:2] in (["warn"], ["error"]) and needle not in ln]
    assert not noisy, f"other warnings besides the one line per attempt: {noisy}"
    assert "connected to" not in inst.log_text(), inst.describe()
    assert_unavailable(inst)
    assert inst.proc.poll() is None


def test_rejected_secret_is_one_line_with_the_fix_and_retries(fresh_prosody, make_instance):
    inst = make_instance(None, component_port=fresh_prosody.component_port,
                         component_secret="not-the-" + fresh_prosody.component_secret)
    inst.key = inst.create_key(MAIN_HOST, "k")
    inst.start(wait_connected=False)
    check_refusals(inst, "rejected the component secret",
                   'match component_secret of Component "invites.localhost"')


@pytest.mark.prosody_only("ejabberd answers an unknown component JID with not-authorized, "
                         "as it answers a wrong secret")
def test_unknown_component_jid_is_one_line_with_the_fix_and_retries(fresh_prosody,
                                                                   make_instance):
    inst = make_instance(fresh_prosody)
    text = inst.config.read_text().replace("jid = invites.localhost", "jid = nobody.localhost")
    inst.config.write_text(text)
    inst.key = inst.create_key(MAIN_HOST, "k")
    inst.start(wait_connected=False)
    check_refusals(inst, "does not know component nobody.localhost",
                   'declare Component "nobody.localhost"')


@pytest.mark.prosody_only("ejabberd accepts a second connection for the same component JID "
                         "(and routes each stanza to one of them): nothing refuses it")
def test_second_instance_is_refused_and_the_first_keeps_working(fresh_prosody, make_instance):
    """Prosody's default (component_conflict_resolve = "kick_new"): the second
    connection is refused, the first one stays."""
    first = make_instance(fresh_prosody, name="first")
    first.key = first.create_key(MAIN_HOST, "first")
    first.start()
    second = make_instance(fresh_prosody, name="second")
    second.key = second.create_key(MAIN_HOST, "second")
    second.start(wait_connected=False)
    check_refusals(second, "another instance is connected as component invites.localhost",
                   "stop it or give this one its own component JID")
    loc, _ = assert_created(first.get_invite(first.key), first)
    assert harness.invite_page_state(loc) == "valid"
    assert first.log_text().count("connected to 127.0.0.1") == 1, first.describe()
    # once the first one stops, the second one takes over by itself
    assert first.terminate() == 0
    second.wait_log("connected to 127.0.0.1", timeout=10)
    assert_created(second.get_invite(second.key), second)


@pytest.mark.prosody_only("Prosody's component_conflict_resolve option")
def test_two_instances_on_a_kick_old_server_slow_down_and_say_so(fresh_prosody,
                                                                 make_instance):
    """With component_conflict_resolve = "kick_old", each new connection throws
    the other out: the two instances take turns. They must say so, and the
    turns must slow down (growing backoff), not go on every second."""
    fresh_prosody.stop()
    with open(fresh_prosody.config, "a") as f:   # the Component section is last
        f.write('  component_conflict_resolve = "kick_old"\n')
    fresh_prosody.start()
    a = make_instance(fresh_prosody, name="a")
    a.key = a.create_key(MAIN_HOST, "a")
    a.start()
    b = make_instance(fresh_prosody, name="b")
    b.key = b.create_key(MAIN_HOST, "b")
    b.start()
    window = 12
    time.sleep(window)
    needle = "two instances with the same JID are taking turns"
    turns = len(lines_with(a, needle)) + len(lines_with(b, needle))
    for inst in (a, b):
        for ln in lines_with(inst, needle):
            assert "stop one, or give each its own component JID" in ln, ln
        assert inst.proc.poll() is None
    # 1 s, 2 s, 4 s, 8 s between one instance's turns: a handful of turns in 12 s,
    # against about 2 a second without the growing backoff.
    print(f"\nkick_old: {turns} takeovers in {window} s")
    assert 1 <= turns <= 8, f"{turns} takeovers in {window}s\n{a.describe()}\n{b.describe()}"
    delays = retry_delays(lines_with(a, needle) + lines_with(b, needle))
    assert max(delays) >= 3, f"the backoff does not grow: {delays}"
