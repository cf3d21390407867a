"""`check --online` and the discovery the daemon runs on every connect, against the
real Prosody 0.12 of the harness: one line per host (account invites, password
resets), the server-side fix for a host that cannot create account invites,
and a bounded, clear failure when the server cannot be reached or a daemon holds
the component's connection."""

import time

import pytest

import harness
import servers
from harness import FOREIGN_HOST, MAIN_HOST

# Prosody 0.12 and ejabberd have no reset command, Prosody 13 has
RESETS = "yes" if servers.server_class().offers_password_reset else "no"
OK_LINE = f"{MAIN_HOST}: account invites yes, password resets {RESETS}"
FOREIGN_LINE = f"{FOREIGN_HOST}: account invites no, password resets no"


def test_check_online_ok(prosody, make_instance):
    inst = make_instance(prosody, hosts=(MAIN_HOST,))
    r = inst.cli("check", "--online")
    assert r.returncode == 0, repr(r)
    lines = r.stdout.splitlines()
    assert "configuration OK" in lines[0], repr(r)
    assert "connected to 127.0.0.1" in r.stdout, repr(r)
    assert OK_LINE in lines, repr(r)
    assert "fix" not in r.stdout, repr(r)


@pytest.mark.prosody_only("the fix shown is Prosody's admins entry")
def test_check_online_says_how_to_make_the_component_an_admin(prosody, make_instance):
    inst = make_instance(prosody)   # MAIN_HOST and FOREIGN_HOST, not an admin of the latter
    r = inst.cli("check", "--online")
    assert r.returncode == 1, repr(r)
    out = r.stdout
    assert OK_LINE in out.splitlines() and FOREIGN_LINE in out.splitlines(), repr(r)
    fix = out[out.index(FOREIGN_LINE):]
    assert f'VirtualHost "{FOREIGN_HOST}"' in fix, repr(r)
    assert f'admins = {{ "{harness.COMPONENT_JID}" }}' in fix, repr(r)
    assert "mod_invites_adhoc" in fix, repr(r)
    assert "access = privileged" in fix, repr(r)   # the ejabberd way, too
    assert out.count("fix (Prosody)") == 1, repr(r)   # none for the host that works


def test_check_online_without_a_server_fails_fast(make_instance):
    inst = make_instance(None, component_port=harness.free_port())
    start = time.monotonic()
    r = inst.cli("check", "--online")
    elapsed = time.monotonic() - start
    assert r.returncode == 1, repr(r)
    assert "cannot connect to 127.0.0.1" in r.stderr, repr(r)
    assert elapsed < 10 * harness.WRAPPER_SLOWDOWN, f"took {elapsed:.1f}s"


@pytest.mark.prosody_only("ejabberd accepts a second connection for the same component JID")
def test_check_online_next_to_a_running_daemon(fresh_prosody, make_instance):
    """A running daemon holds the component's connection: say so, and say that
    check --online needs it stopped. The daemon logs one line per host."""
    daemon = make_instance(fresh_prosody, name="daemon")
    daemon.start()
    daemon.wait_log(OK_LINE, timeout=5)
    daemon.wait_log(FOREIGN_LINE, timeout=5)
    assert daemon.log_text().count(OK_LINE) == 1, daemon.describe()
    check = make_instance(fresh_prosody, name="check")
    r = check.cli("check", "--online")
    assert r.returncode == 1, repr(r)
    assert "another instance is connected as component" in r.stderr, repr(r)
    assert "run it while the daemon is stopped" in r.stderr, repr(r)
    assert daemon.proc.poll() is None


@pytest.mark.prosody_only("ejabberd routes the unserved domain to s2s and does not answer "
                          "within check --online's timeout")
def test_check_online_names_a_host_the_server_does_not_serve(prosody, make_instance):
    """A `hosts` entry that is no VirtualHost of the server is routed as a remote
    domain: say that, not only the admins fix (which cannot help)."""
    inst = make_instance(prosody, hosts=(MAIN_HOST, "not-served.invalid"))
    r = inst.cli("check", "--online")
    assert r.returncode == 1, repr(r)
    assert OK_LINE in r.stdout.splitlines(), repr(r)
    assert "the server treats not-served.invalid as a remote domain" in r.stdout, repr(r)
    assert "check [component] hosts" in r.stdout, repr(r)
