"""A Prosody without an invite page (no mod_invites_page): the API answers with the
xmpp: URI, which is still an invite Prosody stored."""

import json

import pytest

import harness
import servers
from harness import MAIN_HOST


@pytest.fixture(scope="module")
def plain_prosody(tmp_path_factory):
    p = servers.make_server(tmp_path_factory.mktemp("prosody-nopage"), invite_page=False)
    p.start()
    yield p
    p.stop()
    p.kill()


@pytest.fixture
def inst(plain_prosody, make_instance):
    i = make_instance(plain_prosody)
    i.key = i.create_key(MAIN_HOST, "no page")
    i.start()
    return i


def test_location_is_the_xmpp_uri(inst, plain_prosody):
    r = inst.get_invite(inst.key)
    assert r.status == 201, f"{r!r}\n{inst.describe()}"
    loc = r.header("Location") or ""
    assert loc.startswith(f"xmpp:{MAIN_HOST}?register;preauth="), repr(r)
    assert harness.token_from_url(loc) in plain_prosody.stored_tokens(MAIN_HOST)
    assert r.text == loc + "\n", repr(r)


def test_redirect_goes_to_the_xmpp_uri(inst):
    r = inst.request("GET", query=f"key={inst.key}&redirect=true")
    assert r.status == 303, f"{r!r}\n{inst.describe()}"
    assert (r.header("Location") or "").startswith(f"xmpp:{MAIN_HOST}?register;preauth="), repr(r)


def test_json_carries_the_uri(inst):
    r = inst.get_invite(inst.key, headers={"Accept": "application/json"})
    assert r.status == 201, f"{r!r}\n{inst.describe()}"
    doc = json.loads(r.body)
    assert doc["uri"] == r.header("Location"), doc
    assert doc["expires"], doc
