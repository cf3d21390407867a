"""Checks of the test harness itself, against the server alone (no invites-api).

If these fail, the other failures say nothing about the daemon."""

import pathlib
import subprocess

import pytest

import harness
import servers
from xmpp_probe import ComponentProbe, register_with_token


def test_invite_page_check_tells_valid_from_invalid(prosody):
    token = prosody.generate_invite()
    assert token in prosody.stored_tokens(), prosody.describe()
    assert harness.invite_page_state(prosody.page_url(token)) == "valid"
    assert harness.invite_page_state(prosody.page_url(token[::-1] + "x")) == "invalid"
    assert harness.invite_page_state(prosody.page_url("")) == "invalid"


def create_invite(probe, host):
    """The raw reply to create-account on host, the way the daemon must ask this
    server: as the host's admin (Prosody), or by XEP-0356 privileged IQ (ejabberd)."""
    if servers.KIND == "ejabberd":
        return probe.privileged_create_account_invite(host, f"invitebot@{host}",
                                                      iq_id=f"p-{host}")
    return probe.create_account_invite(host, iq_id=f"p-{host}")


def test_component_may_create_invites_on_main_host_only(prosody):
    probe = ComponentProbe(prosody.component_port, prosody.component_jid,
                           prosody.component_secret)
    try:
        ok = create_invite(probe, harness.MAIN_HOST)
        refused = create_invite(probe, harness.FOREIGN_HOST)
    finally:
        probe.close()
    assert "type='result'" in ok and "var='landing-url'" in ok, ok
    assert "status='completed'" in ok, ok
    landing = harness.re.search(r"<value>(http://[^<]+)</value>", ok).group(1)
    assert landing.startswith(prosody.page_url("")), landing
    assert harness.token_from_url(landing) in prosody.stored_tokens()
    assert harness.invite_page_state(landing) == "valid"
    assert "type='error'" in refused and "<forbidden" in refused, refused
    assert not prosody.stored_tokens(harness.FOREIGN_HOST)


@pytest.mark.skipif(servers.KIND != "ejabberd", reason="ejabberd only")
def test_ejabberd_runs_the_commands_for_privileged_iqs_only(prosody):
    """What the daemon is up against on ejabberd: its mod_invites ignores a
    component's own command (item-not-found), and mod_privilege granted the
    component the commands namespace (the <message><privilege> after the
    handshake, before which a privileged IQ goes unanswered), which
    test_component_may_create_invites_on_main_host_only uses."""
    probe = ComponentProbe(prosody.component_port, prosody.component_jid,
                           prosody.component_secret)
    try:
        granted = probe.wait_privileges(harness.MAIN_HOST)
        plain = probe.create_account_invite(harness.MAIN_HOST, iq_id="plain1")
    finally:
        probe.close()
    assert "type='error'" in plain and "<item-not-found" in plain, plain
    assert "<privilege xmlns='urn:xmpp:privilege:2'>" in granted, granted
    assert "ns='http://jabber.org/protocol/commands'" in granted, granted


@pytest.mark.skipif(servers.KIND != "ejabberd", reason="ejabberd only")
def test_ejabberd_registers_an_account_with_an_invite_token_once(prosody):
    """The other way ejabberd validates a token: in-band registration after a
    XEP-0401 <preauth/> (mod_register with allow_modules: [mod_invites]). A used
    invite is no longer among the stored ones, as on Prosody."""
    token = prosody.generate_invite()
    pre, _ = register_with_token(prosody.c2s_port, harness.MAIN_HOST, token[::-1] + "x",
                                 "nobody1", "pw-0123456789")
    assert "type='error'" in pre, pre
    pre, reg = register_with_token(prosody.c2s_port, harness.MAIN_HOST, token,
                                   "invited1", "pw-0123456789")
    assert "type='result'" in pre and reg is not None and "type='result'" in reg, (pre, reg)
    assert token not in prosody.stored_tokens()
    assert harness.invite_page_state(prosody.page_url(token)) == "invalid"
    pre, reg = register_with_token(prosody.c2s_port, harness.MAIN_HOST, token,
                                   "invited2", "pw-0123456789")
    assert "type='error'" in pre or "type='error'" in (reg or ""), (pre, reg)


def test_prosody_restart_keeps_ports_and_invites(fresh_prosody):
    token = fresh_prosody.generate_invite()
    fresh_prosody.kill()
    assert not harness.port_accepts(fresh_prosody.component_port)
    fresh_prosody.start()
    assert harness.invite_page_state(fresh_prosody.page_url(token)) == "valid"


@pytest.mark.skipif(not servers.server_class().chrooted,
                    reason="servers from the Debian 13 tree only")
def test_a_killed_server_never_signals_a_later_one(tmp_path):
    """A server in the tree is told by its mount namespace, whose number the
    kernel gives to a new namespace once the old one is gone: a later server,
    of this session or of another one running beside it (scripts/test.sh),
    often gets it. Killing the first server again, as the session's exit does
    for every server it started, must leave the later one alone."""
    first = servers.make_server(tmp_path / "first")
    first.start()
    first_ns = first.mnt_ns
    first.kill()
    later = servers.make_server(tmp_path / "later")
    later.start()
    try:
        print(f"\nnamespace number reused: {later.mnt_ns == first_ns}")
        assert first._members() == []
        first.kill()
        assert later._members() and later.ready(), later.describe()
    finally:
        later.stop()
        later.kill()


def test_tree_helpers_finding_nothing_pass_strict_mode(tmp_path):
    """scripts/test.sh builds the Debian 13 tree under `set -euo pipefail`: a
    helper that finds no process or mount under the tree must not end the
    builder (it once did, silently, and the newer servers' suites were skipped)."""
    script = pathlib.Path(__file__).resolve().parents[1] / "servers" / "trixie.sh"
    root = tmp_path / "no-tree"
    r = subprocess.run(
        ["bash", "-c", 'set -euo pipefail; . "$1"; '
         'm=$(_trixie_users "$2" | tr "\\n" " "); u=$m; '
         'm=$(_trixie_mounted_below "$2"); _trixie_end_processes "$2"; '
         'echo "reached [$u][$m]"', "bash", str(script), str(root)],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "reached [][]\n", repr(r)


FAKE_TOOLS = {
    # debootstrap [options] SUITE ROOT MIRROR: a skeleton tree, or a failure
    "debootstrap": 'mkdir -p "$4/etc/apt/sources.list.d" "$4/usr/sbin" "$4/proc"\n'
                   'exit "${FAKE_DEBOOTSTRAP_RC:-0}"\n',
    "mount": "exit 0\n",
    "umount": "exit 32\n",   # as umount says when nothing is mounted there
    "chroot": "exit 0\n",
}


@pytest.mark.skipif(harness.os.geteuid() != 0, reason="the tree builder needs root")
@pytest.mark.parametrize("debootstrap_rc", [0, 1])
def test_tree_builder_under_strict_mode_builds_or_says_why(tmp_path, debootstrap_rc):
    """The whole tree build (trixie_tree) with stand-in tools, sourced under
    `set -euo pipefail` as scripts/test.sh once ran it: a build that works
    ends with the tree in place, one that fails with the reason line test.sh
    looks for; a cleanup's failing umount ends neither early."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, body in FAKE_TOOLS.items():
        (tools / name).write_text("#!/bin/sh\n" + body)
        (tools / name).chmod(0o755)
    script = pathlib.Path(__file__).resolve().parents[1] / "servers" / "trixie.sh"
    root = tmp_path / "tree"
    env = dict(harness.os.environ, PATH=f"{tools}:{harness.os.environ['PATH']}",
               INVITES_API_TRIXIE_ROOT=str(root), FAKE_DEBOOTSTRAP_RC=str(debootstrap_rc))
    r = subprocess.run(["bash", "-c", 'set -euo pipefail; . "$1"; rc=0; trixie_tree || rc=$?; '
                        'echo "rc=$rc"', "bash", str(script)],
                       capture_output=True, text=True, timeout=60, env=env)
    if debootstrap_rc == 0:
        assert r.stdout.endswith("rc=0\n"), repr(r)
        assert (root / ".invites-api-stamp").is_file(), repr(r)
        assert not (tmp_path / "tree.new").exists(), repr(r)
    else:
        assert r.stdout.endswith("rc=1\n"), repr(r)
        assert "trixie tree unavailable: building it failed" in r.stderr, repr(r)
        assert not root.exists() and not (tmp_path / "tree.new").exists(), repr(r)
