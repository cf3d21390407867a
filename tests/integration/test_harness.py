"""Checks of the test harness itself, against Prosody alone (no invites-api).

If these fail, the other failures say nothing about the daemon."""

import harness
from xmpp_probe import ComponentProbe


def test_invite_page_check_tells_valid_from_invalid(prosody):
    token = prosody.generate_invite()
    assert token in prosody.stored_tokens(), prosody.describe()
    assert harness.invite_page_state(prosody.page_url(token)) == "valid"
    assert harness.invite_page_state(prosody.page_url(token[::-1] + "x")) == "invalid"
    assert harness.invite_page_state(prosody.page_url("")) == "invalid"


def test_component_may_create_invites_on_main_host_only(prosody):
    probe = ComponentProbe(prosody.component_port, prosody.component_jid,
                           prosody.component_secret)
    try:
        ok = probe.create_account_invite(harness.MAIN_HOST, "ok1")
        refused = probe.create_account_invite(harness.FOREIGN_HOST, "refused1")
    finally:
        probe.close()
    assert "type='result'" in ok and "var='landing-url'" in ok, ok
    landing = harness.re.search(r"<value>(http://[^<]+)</value>", ok).group(1)
    assert landing.startswith(f"http://localhost:{prosody.http_port}/invites_page?"), landing
    assert harness.token_from_url(landing) in prosody.stored_tokens()
    assert "type='error'" in refused and "<forbidden" in refused, refused
    assert not prosody.stored_tokens(harness.FOREIGN_HOST)


def test_prosody_restart_keeps_ports_and_invites(fresh_prosody):
    token = fresh_prosody.generate_invite()
    fresh_prosody.kill()
    assert not harness.port_accepts(fresh_prosody.component_port)
    fresh_prosody.start()
    assert harness.invite_page_state(fresh_prosody.page_url(token)) == "valid"
