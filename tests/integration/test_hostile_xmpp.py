"""Hostile XMPP input from what a real Prosody lets through: a local user, logged
in with a real client (slixmpp) over c2s, sends the component the stanzas it
reacts to (results and errors with ids it might have pending, forged create-account
results, sets to unknown namespaces, huge stanzas) while HTTP requests are
running. Every HTTP request must still get its own genuine invite (or fail
cleanly), every stanza the component must not act on is ignored, and the daemon
keeps serving. What Prosody would never send (a reply from the wrong host, a
reply without its form, a 1 MiB uri, broken XML) is in tests/unit/test_hostile_xmpp.c.
"""

import secrets
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from harness import COMPONENT_JID, MAIN_HOST, NS_COMMANDS, XmppClient, assert_created

REQUEST_TIMEOUT = 5   # the daemon's request_timeout: a stalled reply shows as 504 after it
FORGED_URI = "xmpp:localhost?register;preauth=forged"


@pytest.fixture(scope="module")
def hostile_daemon(prosody, make_module_instance):
    inst = make_module_instance(prosody, name="hostile", request_timeout=REQUEST_TIMEOUT)
    inst.key = inst.create_key(MAIN_HOST, "hostile xmpp")
    inst.start()
    return inst


@pytest.fixture(scope="module")
def mallory(prosody, hostile_daemon):
    """A local user with a real client, and a count of the IQs the component sends it."""
    jid, password = prosody.register_user("mallory")
    client = XmppClient(jid, password, prosody.c2s_port, resource="hostile")
    client.from_component = []
    _watch_component_iqs(client)
    yield client
    client.close()


def _watch_component_iqs(client):
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath

    def seen(stanza):
        if str(stanza["from"]).split("/")[0] == COMPONENT_JID:
            client.from_component.append(ET.tostring(stanza.xml, encoding="unicode"))
    client.xmpp.register_handler(Callback("iqs from the component",
                                          MatchXPath("{jabber:client}iq"), seen))


def send_raw(client, text):
    """Put text on the client's stream as it is (from the client's own thread)."""
    done = threading.Event()

    def go():
        client.xmpp.send_raw(text)
        done.set()
    client.loop.call_soon_threadsafe(go)
    assert done.wait(5), "the client did not send in time"


def ping(client, timeout=REQUEST_TIMEOUT):
    return client.iq("get", COMPONENT_JID, "<ping xmlns='urn:xmpp:ping'/>", timeout=timeout)


def forged_result(iq_id, type_="result", sender=MAIN_HOST):
    """A create-account answer as Prosody words it, with a made-up invite (from
    sender, unless None)."""
    from_attr = f" from='{sender}'" if sender else ""
    return (f"<iq type='{type_}' id='{iq_id}'{from_attr} to='{COMPONENT_JID}'>"
            f"<command xmlns='{NS_COMMANDS}' node='urn:xmpp:invite#create-account' "
            "status='completed' sessionid='x'><x xmlns='jabber:x:data' type='result'>"
            f"<field var='uri'><value>{FORGED_URI}</value></field>"
            "<field var='landing-url'><value>https://evil.example/</value></field>"
            "</x></command></iq>")


def assert_serving(daemon, n=1):
    for _ in range(n):
        r = daemon.get_invite(daemon.key, timeout=REQUEST_TIMEOUT + 10)
        loc, _ = assert_created(r, daemon)
        assert "forged" not in loc and "evil" not in loc, loc


# --------------------------------------------------------------------------

@pytest.mark.parametrize("size", [8000, 20000, 65536, 200000])
def test_large_start_tag_from_a_user_does_not_stall_the_component(mallory, hostile_daemon,
                                                                  size):
    """A message with a long attribute (here its id) ends in a start tag of that
    size. Expat's reparse deferral (Debian 12's expat, CVE-2023-52425 fix) holds
    such a token back until the buffered input has doubled: the component's
    parser held it and every stanza behind it, Prosody's answers included, and
    requests got 504 for as long as the stream stayed quiet. (Prosody's own c2s
    parser does the same to the user's stream, so the whitespace after the
    message is there to make Prosody pass it on at all.)"""
    send_raw(mallory, f"<message to='{COMPONENT_JID}' id='{'a' * size}' type='chat'/>"
                      + " " * (2 * size + 4096))
    time.sleep(0.5)   # let it reach the component first
    started = time.monotonic()
    assert_serving(hostile_daemon)
    assert time.monotonic() - started < REQUEST_TIMEOUT
    assert ping(mallory).type == "result"


def test_results_and_errors_from_a_user_never_answer_a_request(prosody, mallory,
                                                              hostile_daemon):
    """While requests wait for Prosody, a user floods the component with results
    and errors: forged create-account results (also claiming to come from the host:
    Prosody stamps the real sender; ejabberd would close the user's stream, so
    there they carry no from), uuid-like ids, errors. Each HTTP request gets
    the invite Prosody made for it, and the component answers none of the flood."""
    before = len(mallory.from_component)
    forge_from = prosody.stamps_forged_from
    results, errors = [], []

    def call():
        try:
            results.append(hostile_daemon.get_invite(hostile_daemon.key,
                                                     timeout=REQUEST_TIMEOUT + 10))
        except Exception as e:   # reported below, with the rest
            errors.append(repr(e))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for i in range(200):
        iq_id = str(uuid.uuid4()) if i % 2 else secrets.token_hex(8)
        sender = (MAIN_HOST if i % 3 else COMPONENT_JID) if forge_from else None
        send_raw(mallory, forged_result(iq_id, sender=sender))
        send_raw(mallory, f"<iq type='error' id='{iq_id}' to='{COMPONENT_JID}'>"
                          "<error type='cancel'><forbidden "
                          "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    for t in threads:
        t.join(REQUEST_TIMEOUT + 15)
    assert not any(t.is_alive() for t in threads), "an HTTP request hung"
    assert not errors, errors
    assert len(results) == 8
    tokens = set()
    for r in results:
        loc, token = assert_created(r, hostile_daemon)
        assert "evil" not in loc
        tokens.add(token)
    assert len(tokens) == 8, "two requests got the same invite"
    assert ping(mallory).type == "result"
    time.sleep(0.3)
    answered = mallory.from_component[before:]
    assert len(answered) == 1 and "type=\"result\"" in answered[0], \
        f"the component answered results or errors: {answered[:3]}"


@pytest.mark.parametrize("payload", [
    "<query xmlns='urn:example:unknown'/>",
    f"<command xmlns='{NS_COMMANDS}' node='urn:xmpp:invite#create-account' action='execute'/>",
    "<query xmlns='urn:example:unknown'><data>" + "q" * 200000 + "</data></query>",
], ids=["unknown-namespace", "create-account-node", "200KiB"])
def test_sets_the_component_does_not_serve_get_an_error(mallory, hostile_daemon, payload):
    r = mallory.iq("set", COMPONENT_JID, ET.fromstring(payload), timeout=REQUEST_TIMEOUT)
    assert r.type == "error", repr(r)
    assert r.error_type in ("cancel", "auth"), repr(r)
    assert_serving(hostile_daemon)


def test_daemon_survived_and_logged_nothing_alarming(hostile_daemon, mallory):
    assert hostile_daemon.proc.poll() is None, hostile_daemon.describe()
    log = hostile_daemon.log_text()
    for word in ("error", "crash", "cannot be parsed", "disconnected", "lost"):
        assert word not in log.lower(), f"daemon log mentions {word!r}:\n{log[-3000:]}"
