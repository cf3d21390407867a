"""A minimal XEP-0114 component client, used only to check the test server
itself (handshake works, the component may create invites on one host and is
refused on the other), so a daemon failure can be told apart from a harness one.
On ejabberd it sends the command as a XEP-0356 privileged IQ."""

import hashlib
import re
import socket
import time

STREAM_OPEN = ("<stream:stream xmlns='jabber:component:accept' "
               "xmlns:stream='http://etherx.jabber.org/streams' to='{jid}'>")
COMMAND = ("<iq type='set' id='{id}' from='{jid}' to='{host}'>"
           "<command xmlns='http://jabber.org/protocol/commands' "
           "node='urn:xmpp:invite#create-account' action='execute'/></iq>")
# XEP-0356: the command runs as act_as; the submitted form comes with execute
# (ejabberd would answer a bare execute with its form first).
PRIVILEGED_COMMAND = (
    "<iq type='set' id='{id}' from='{jid}' to='{act_as}'>"
    "<privileged_iq xmlns='urn:xmpp:privilege:2'>"
    "<iq xmlns='jabber:client' type='set' id='{id}-inner' from='{act_as}' to='{host}'>"
    "<command xmlns='http://jabber.org/protocol/commands' "
    "node='urn:xmpp:invite#create-account' action='execute'>"
    "<x xmlns='jabber:x:data' type='submit'>"
    "<field var='roster-subscription'><value>0</value></field></x>"
    "</command></iq></privileged_iq></iq>")


class ComponentProbe:
    def __init__(self, port, jid, secret, timeout=5):
        self.jid = jid
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = ""
        self.sock.sendall(STREAM_OPEN.format(jid=jid).encode())
        header = self._read_until(lambda b: re.search(r"<stream:stream[^>]*>", b))
        stream_id = re.search(r"""\bid=['"]([^'"]+)['"]""", header.group(0)).group(1)
        digest = hashlib.sha1((stream_id + secret).encode()).hexdigest()
        self.sock.sendall(f"<handshake>{digest}</handshake>".encode())
        self._read_until(lambda b: re.search(r"<handshake\s*/>|<handshake></handshake>|"
                                             r"<stream:error>.*?</stream:error>", b, re.S))
        if "<handshake" not in self.buf:
            raise ConnectionError(f"handshake refused: {self.buf!r}")

    def _read_until(self, match, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            m = match(self.buf)
            if m:
                return m
            if time.monotonic() > deadline:
                raise TimeoutError(f"no match in {self.buf!r}")
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"stream closed: {self.buf!r}")
            self.buf += data.decode()

    def create_account_invite(self, host, iq_id="probe1"):
        """The raw <iq> reply to urn:xmpp:invite#create-account on host."""
        self.sock.sendall(COMMAND.format(id=iq_id, jid=self.jid, host=host).encode())
        m = self._read_until(lambda b: re.search(
            r"<iq[^>]*id=['\"]%s['\"][^>]*(/>|>.*?</iq>)" % re.escape(iq_id), b, re.S))
        return m.group(0)

    def wait_privileges(self, host):
        """The <message><privilege/> host sends after the handshake (XEP-0356), raw.
        ejabberd grants the permissions only then: a privileged IQ sent earlier
        goes unanswered."""
        return self._read_until(lambda b: re.search(
            r"<message[^>]*from=['\"]%s['\"][^>]*>\s*<privilege.*?</message>" % re.escape(host),
            b, re.S)).group(0)

    def privileged_create_account_invite(self, host, act_as, iq_id="probe1"):
        """The raw <iq> reply to a privileged create-account on host as act_as (the
        forwarded result is inside it). Times out when the namespace is not granted:
        ejabberd does not answer then."""
        self.wait_privileges(host)
        self.sock.sendall(PRIVILEGED_COMMAND.format(id=iq_id, jid=self.jid, host=host,
                                                    act_as=act_as).encode())
        m = self._read_until(lambda b: re.search(
            r"<iq[^>]*id=['\"]%s['\"][^>]*(/>|>.*?</privilege>\s*</iq>|>\s*<error.*?</iq>)"
            % re.escape(iq_id), b, re.S))
        return m.group(0)

    def close(self):
        try:
            self.sock.sendall(b"</stream:stream>")
        finally:
            self.sock.close()


C2S_OPEN = ("<?xml version='1.0'?><stream:stream to='{host}' xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")


def register_with_token(port, host, token, username, password, timeout=5):
    """In-band registration (XEP-0077) on a fresh c2s stream, after presenting an
    invite token (XEP-0401's <preauth/>): (raw preauth reply, raw register reply,
    or None when the preauth was refused)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    buf = [""]

    def read_until(pattern):
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, buf[0], re.S)
            if m:
                return m.group(0)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {pattern!r} in {buf[0]!r}")
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"stream closed: {buf[0]!r}")
            buf[0] += data.decode()

    def iq(iq_id, payload):
        sock.sendall(f"<iq type='set' id='{iq_id}'>{payload}</iq>".encode())
        return read_until(r"<iq[^>]*id='%s'[^>]*(/>|>.*?</iq>)" % iq_id)
    try:
        sock.sendall(C2S_OPEN.format(host=host).encode())
        read_until(r"</stream:features>")
        preauth = iq("pa", f"<preauth xmlns='urn:xmpp:pars:0' token='{token}'/>")
        if "type='result'" not in preauth:
            return preauth, None
        register = iq("reg", "<query xmlns='jabber:iq:register'>"
                             f"<username>{username}</username>"
                             f"<password>{password}</password></query>")
        return preauth, register
    finally:
        sock.close()
