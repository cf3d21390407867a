"""Hostile HTTP clients against the real daemon and a real Prosody (issue #4).

Slow clients, floods of idle connections from several loopback addresses
(127.0.0.0/8 is all loopback on Linux), malformed and oversized requests,
guessed keys and forged X-Forwarded-For. After each attack the daemon must
still serve an honest client, and no invite may have been made for the
attacker. Every loop here is bounded, every socket has a timeout.
"""

import re
import resource
import select
import socket
import subprocess
import time
from pathlib import Path

import pytest

import harness
from harness import MAIN_HOST, assert_cors, assert_created

DEADLINE_S = 2      # [http] request_deadline of the module's daemon
PER_IP = 5          # [http] max_connections_per_ip
MAX_CONNECTIONS = 120


# -- helpers -----------------------------------------------------------------

class RawResponse:
    def __init__(self, data, closed, elapsed):
        self.data = data
        self.closed = closed      # the server ended the connection
        self.elapsed = elapsed
        self.status = None
        self.headers = {}
        self.body = b""
        head, sep, body = data.partition(b"\r\n\r\n")
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
        if m and sep:
            self.status = int(m.group(1))
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.decode("latin-1").partition(":")
                self.headers[name.strip().lower()] = value.strip()
            self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def __repr__(self):
        return (f"<raw answer in {self.elapsed:.2f}s, closed={self.closed}: "
                f"{self.data[:400]!r}>")


def connect(port, source="127.0.0.1", timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_all(s, limit_s):
    """Read until the server closes or limit_s passes."""
    data, closed = b"", False
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    return data, closed


def raw_exchange(daemon, data, source="127.0.0.1", limit_s=5):
    """Send data (bytes) on a fresh connection; the answer as the server sent it."""
    start = time.monotonic()
    s = connect(daemon.http_port, source)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass   # answered and closed before all was sent: read what came
        got, closed = read_all(s, limit_s)
    finally:
        s.close()
    return RawResponse(got, closed, time.monotonic() - start)


def request_bytes(target, headers=(), method=b"GET", body=b""):
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: localhost",
             *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def stored(daemon):
    return len(daemon.prosody.stored_tokens(MAIN_HOST))


def honest_invite(daemon, source="127.0.0.1"):
    """An honest client still gets its invite (from source), within 5 s."""
    r = raw_exchange(daemon, request_bytes(
        daemon.path.encode() + b"?key=" + daemon.key.encode()), source=source)
    assert r.status == 201, f"honest client from {source} not served: {r!r}\n{daemon.describe()}"
    return r


def assert_one_line_reason(r, status, reason):
    assert r.status == status, repr(r)
    assert r.text == reason + "\n", repr(r)
    assert r.header("Access-Control-Allow-Origin") == "*", repr(r)
    assert r.header("Access-Control-Allow-Methods") == "GET, POST, OPTIONS", repr(r)


# -- fixtures ------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile(make_module_prosody, make_module_instance):
    """A daemon with a short request deadline and small connection limits;
    throttling off (the guessing tests have their own daemons)."""
    prosody = make_module_prosody()
    inst = make_module_instance(prosody, name="hostile", http_options={
        "request_deadline": DEADLINE_S, "connection_timeout": 60,
        "max_connections_per_ip": PER_IP, "max_connections": MAX_CONNECTIONS})
    inst.key = inst.create_key(MAIN_HOST, "hostile key")
    inst.start()
    return inst


def make_throttled(make_instance, prosody, **options):
    """Three failures at once, then one every 3 s."""
    inst = make_instance(prosody, http_options={
        "auth_failure_burst": 3, "auth_failure_rate": 20, **options})
    inst.key = inst.create_key(MAIN_HOST, "throttled key")
    inst.start()
    return inst


# -- slow clients --------------------------------------------------------------

def test_slowloris_is_cut_off_by_the_request_deadline(hostile):
    """A client trickling one header byte every 0.2 s is never idle for the
    60 s idle timeout, but is cut off after the 2 s request deadline with a
    408; honest clients are served meanwhile; it never gets its invite."""
    before = stored(hostile)
    s = connect(hostile.http_port)
    start = time.monotonic()
    s.sendall(b"GET " + hostile.path.encode() + b"?key=" + hostile.key.encode() +
              b" HTTP/1.1\r\nHost: localhost\r\n")
    trickle = b"X-Slow: " + b"a" * 200
    answered, closed_at, served = b"", None, 0
    for i in range(len(trickle)):            # at most 200 * 0.2 s, stops far earlier
        readable, _, _ = select.select([s], [], [], 0)
        if readable:
            answered, _ = read_all(s, 1)
            closed_at = time.monotonic() - start
            break
        try:
            s.send(trickle[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic() - start
            break
        if i % 5 == 0:
            honest_invite(hostile)
            served += 1
        time.sleep(0.2)
    s.close()
    assert closed_at is not None, "the trickling client was never cut off"
    assert DEADLINE_S - 0.2 <= closed_at <= DEADLINE_S + 1.5, closed_at
    r = RawResponse(answered, True, closed_at)
    assert_one_line_reason(r, 408, "request not received in time")
    assert served >= 2
    assert stored(hostile) == before + served, "the slow client got an invite"
    hostile.wait_log(" 408 key=- ", timeout=3)


def test_silent_connection_is_closed_after_the_deadline(hostile):
    s = connect(hostile.http_port)
    start = time.monotonic()
    data, closed = read_all(s, DEADLINE_S + 3)
    s.close()
    assert closed and data == b"", (closed, data)   # nothing asked, nothing answered
    assert DEADLINE_S - 0.2 <= time.monotonic() - start <= DEADLINE_S + 1.5
    honest_invite(hostile)


# -- idle connection floods ----------------------------------------------------

def open_idle(port, source, count):
    """Open count idle connections from source; return those the server keeps
    (it accepts and at once closes the ones over its limits)."""
    socks = []
    for _ in range(count):
        try:
            socks.append(connect(port, source, timeout=2))
        except OSError:
            break
    time.sleep(0.3)
    kept = []
    for s in socks:
        readable, _, _ = select.select([s], [], [], 0)
        if readable:           # end of stream or reset: refused by a limit
            s.close()
        else:
            kept.append(s)
    return kept


def test_idle_connection_flood_does_not_starve_others(hostile):
    """1000 idle connections from 10 addresses (100 each): each address holds
    at most max_connections_per_ip of them, and a client at another address
    still gets its invite at once."""
    held = []
    try:
        for i in range(10):
            source = f"127.0.0.{10 + i}"
            kept = open_idle(hostile.http_port, source, 100)
            assert len(kept) == PER_IP, f"{source} holds {len(kept)} connections"
            held += kept
        # the last flooding address is at its limit (the first ones' connections
        # may have passed their deadline while the others were opened)
        r = raw_exchange(hostile, request_bytes(hostile.path.encode()), source="127.0.0.19",
                         limit_s=2)
        assert r.status is None and r.closed, repr(r)
        start = time.monotonic()
        honest_invite(hostile, source="127.0.0.99")
        assert time.monotonic() - start < 1
    finally:
        for s in held:
            s.close()


MANY = 1100   # more connections than select() can watch descriptors (1024)


def test_more_than_a_thousand_open_connections_and_invites_still_work(prosody, make_instance):
    """max_connections above 1024: the daemon raises its own open-file limit,
    holds 1100 connections with a request begun, from 11 addresses, and still
    makes invites: the XMPP socket, which libstrophe select()s on, kept a
    descriptor below 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = MANY + 256
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"the open file limit is {hard}")
    inst = make_instance(prosody, http_options={
        "max_connections": 1200, "max_connections_per_ip": 100, "request_deadline": 60})
    inst.key = inst.create_key(MAIN_HOST, "many connections")
    # the daemon starts with Debian's soft limit, 1024, and raises it itself
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        inst.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    limits = Path(f"/proc/{inst.proc.pid}/limits").read_text()
    daemon_soft = int(re.search(r"^Max open files\s+(\d+)", limits, re.M).group(1))
    assert daemon_soft == 1200 + 16 + 64, limits
    held = []
    try:
        for i in range(MANY):
            s = connect(inst.http_port, f"127.0.3.{1 + i // 100}")
            s.sendall(b"GET " + inst.path.encode() + b"?key=" + inst.key.encode() +
                      b" HTTP/1.1\r\nHost: localhost\r\n")   # headers not finished
            held.append(s)
        time.sleep(0.5)
        poller = select.poll()   # select() cannot watch descriptors past 1023 either
        for s in held:
            poller.register(s, select.POLLIN)
        closed = poller.poll(0)
        assert not closed, f"{len(closed)} of {MANY} connections were closed"
        fds = [int(f.name) for f in Path(f"/proc/{inst.proc.pid}/fd").iterdir()]
        assert max(fds) >= 1024, max(fds)
        before = stored(inst)
        for _ in range(3):
            honest_invite(inst, source="127.0.4.1")
        assert stored(inst) == before + 3
    finally:
        for s in held:
            s.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_max_connections_over_the_open_file_limit_is_a_clear_error(prosody, make_instance):
    """A hard open-file limit too low for max_connections: serve refuses to
    start, names both numbers and the fix, and exits 1."""
    inst = make_instance(prosody, http_options={"max_connections": 2000})

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1500))

    r = subprocess.run([harness.binary_path(), "-c", str(inst.config), "serve"],
                       capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL,
                       preexec_fn=low_limit)
    assert r.returncode == 1, repr(r)
    assert "max_connections = 2000 needs 2080 open files" in r.stderr, r.stderr
    assert "at most 1500" in r.stderr and "LimitNOFILE=2080" in r.stderr, r.stderr
    assert not harness.port_accepts(inst.http_port)


def test_idle_connections_from_many_addresses_cannot_fill_the_server(hostile):
    """Idle connections from more addresses than max_connections allows
    (30 x 5 for 120): the oldest idle ones are dropped for new ones, so the
    server never stops accepting, and a client at yet another address gets its
    invite at once, again and again, while the flood is held."""
    held = []
    try:
        # all at once: the request deadline (2 s) must not free slots meanwhile
        for i in range(30):
            held += [connect(hostile.http_port, f"127.0.1.{1 + i}") for _ in range(PER_IP)]
        time.sleep(0.3)
        open_now = [s for s in held if not select.select([s], [], [], 0)[0]]
        assert MAX_CONNECTIONS - PER_IP <= len(open_now) <= MAX_CONNECTIONS, len(open_now)
        for _ in range(5):
            start = time.monotonic()
            honest_invite(hostile, source="127.0.2.1")
            assert time.monotonic() - start < 1
            # the flood comes back for the freed slot
            held.append(connect(hostile.http_port, "127.0.1.250"))
    finally:
        for s in held:
            s.close()

def test_idle_flood_is_cleared_by_the_deadline(hostile):
    """Connections held idle are closed by the server once the deadline passes,
    freeing their slots."""
    kept = open_idle(hostile.http_port, "127.0.0.30", 20)
    try:
        assert len(kept) == PER_IP
        time.sleep(DEADLINE_S + 0.5)
        closed = 0
        for s in kept:
            data, end = read_all(s, 1)
            closed += end
        assert closed == PER_IP
        honest_invite(hostile, source="127.0.0.30")
    finally:
        for s in kept:
            s.close()


# -- malformed and oversized requests -----------------------------------------

def hostile_cases(path, key):
    p, k = path.encode(), key.encode()
    many = b"&".join(b"p%d=1" % i for i in range(600))
    return [
        # (name, raw request, status, one-line reason or None when libmicrohttpd answers)
        ("request line over 8 KiB", request_bytes(p + b"?key=" + b"a" * 9000), 414,
         "URL too long"),
        ("600 query parameters", request_bytes(p + b"?key=" + k + b"&" + many), 414,
         "too many query parameters"),
        ("5000 ampersands", request_bytes(p + b"?" + b"&" * 5000), 414,
         "too many query parameters"),
        ("headers over 8 KiB", request_bytes(p + b"?key=" + k,
                                             [b"X-Pad: " + b"a" * 9000]), 431,
         "request headers too large"),
        ("1 MiB key in the query", request_bytes(p + b"?key=" + b"a" * (1 << 20)), 414, None),
        ("1 MiB key in Authorization", request_bytes(
            p, [b"Authorization: Bearer " + b"a" * (1 << 20)]), 431, None),
        ("malformed percent-encoding in the key", request_bytes(p + b"?key=%zz"), 400,
         "malformed percent-encoding in the URL"),
        ("truncated percent-encoding", request_bytes(p + b"?key=" + k + b"%4"), 400,
         "malformed percent-encoding in the URL"),
        ("malformed percent-encoding in the path", request_bytes(p + b"%G1?key=" + k), 400,
         "malformed percent-encoding in the URL"),
        ("%00 in the path", request_bytes(p + b"%00x?key=" + k), 400,
         "NUL byte (%00) in the URL"),
        ("%00 in the key", request_bytes(p + b"?key=" + k + b"%00"), 400,
         "NUL byte (%00) in the URL"),
        ("raw NUL in the path", request_bytes(p + b"\x00x?key=" + k), 400,
         "NUL byte in the request line"),
        ("raw NUL in the query", request_bytes(p + b"?key=" + k + b"\x00x"), 400,
         "NUL byte in the request line"),
        ("two key parameters", request_bytes(p + b"?key=" + k + b"&key=" + k), 400,
         "more than one key parameter"),
        ("two key parameters, names in other case", request_bytes(
            p + b"?KEY=" + k + b"&key=x"), 400, "more than one key parameter"),
        ("two Authorization headers", request_bytes(
            p, [b"Authorization: Bearer " + k, b"Authorization: Bearer " + k]), 400,
         "more than one Authorization header"),
        ("query key and header key differ", request_bytes(
            p + b"?key=" + k, [b"Authorization: Bearer " + k + b"x"]), 400,
         "conflicting keys in query and Authorization header"),
        ("unknown method", request_bytes(p + b"?key=" + k, method=b"BREW"), 405,
         "method not allowed"),
        ("lower-case method", request_bytes(p + b"?key=" + k, method=b"get"), 405,
         "method not allowed"),
        ("control byte in the method", request_bytes(p + b"?key=" + k, method=b"G\x01T"), 405,
         "method not allowed"),
        ("two Content-Length headers", request_bytes(
            p + b"?key=" + k, [b"Content-Length: 1", b"Content-Length: 2"], b"POST", b"ab"),
         400, "more than one Content-Length, or Content-Length with Transfer-Encoding"),
        ("Content-Length and Transfer-Encoding", request_bytes(
            p + b"?key=" + k, [b"Content-Length: 5", b"Transfer-Encoding: chunked"], b"POST",
            b"0\r\n\r\n"),
         400, "more than one Content-Length, or Content-Length with Transfer-Encoding"),
        ("unknown Transfer-Encoding", request_bytes(
            p + b"?key=" + k, [b"Transfer-Encoding: gzip"], b"POST"), 501,
         "Transfer-Encoding other than chunked"),
        ("Content-Length not a number", request_bytes(
            p + b"?key=" + k, [b"Content-Length: abc"], b"POST"), 400, None),
        ("header line without a colon", request_bytes(p + b"?key=" + k, [b"nocolon"]), 400,
         None),
    ]


CASE_NAMES = [c[0] for c in hostile_cases("/p", "k")]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_request_gets_a_clear_answer(hostile, name):
    case = {c[0]: c for c in hostile_cases(hostile.path, hostile.key)}[name]
    _, data, status, reason = case
    before = stored(hostile)
    r = raw_exchange(hostile, data, limit_s=3)
    assert r.status == status, f"{name}: {r!r}"
    assert r.elapsed < 1.5, f"{name}: answered only after {r.elapsed:.2f}s"
    if reason is not None:
        # our own answer: CORS headers and the one-line reason
        assert_one_line_reason(r, status, reason)
    assert stored(hostile) == before, f"{name}: an invite was made"
    honest_invite(hostile)   # the daemon is unaffected


@pytest.mark.parametrize("headers", [100, 115, 200, 270, 280, 285, 290, 600, 1000])
@pytest.mark.parametrize("query_args", [0, 90])
def test_many_small_headers_get_an_answer_whenever_an_invite_is_made(hostile, headers,
                                                                     query_args):
    """Header and parameter counts cost libmicrohttpd per-entry memory in the
    pool the answer needs too: a valid key with hundreds of tiny headers must
    get its 201, or a 431 without an invite; never an invite and no answer."""
    before = stored(hostile)
    target = f"{hostile.path}?key={hostile.key}".encode()
    target += b"".join(b"&a%d=" % i for i in range(query_args))
    data = request_bytes(target, [b"a%d:" % i for i in range(headers)])
    r = raw_exchange(hostile, data, limit_s=3)
    made = stored(hostile) - before
    assert made == (1 if r.status == 201 else 0), f"{made} invites for {r!r}"
    if r.status is None:
        # libmicrohttpd 0.9.75 loses its own 431 when its pool runs out in a
        # narrow band just before it can answer at all (README); never ours.
        assert headers >= 250, repr(r)
        return
    assert r.status in (201, 431), f"{headers} headers, {query_args} args: {r!r}"
    if r.status == 431 and not r.body.startswith(b"<html>"):   # MHD's own: README
        assert_one_line_reason(r, 431, "request headers too large")

def padded_header(target, n):
    """One header whose value follows n spaces, which MHD skips but keeps."""
    return request_bytes(target, [b"X-Pad:" + b" " * n + b"v"])


def tiny_cookies(target, n):
    """n empty cookies: MHD copies the Cookie value and keeps an entry for each."""
    return request_bytes(target, [b"Cookie: " + b"a;" * n])


def big_cookie(target, n):
    """One cookie of n bytes: MHD keeps the header and a copy of its value."""
    return request_bytes(target, [b"Cookie: c=" + b"x" * n])


def trailers(target, n):
    """A chunked POST with no body and n trailers, which arrive after it."""
    body = b"0\r\n" + b"".join(b"t%d: x\r\n" % i for i in range(n)) + b"\r\n"
    return request_bytes(target, [b"Transfer-Encoding: chunked"], b"POST", body)


def padded_trailer(target, n):
    body = b"0\r\nt:" + b" " * n + b"x\r\n\r\n"
    return request_bytes(target, [b"Transfer-Encoding: chunked"], b"POST", body)


@pytest.mark.parametrize("make, sizes, answers", [
    (padded_header, range(6000, 22000, 256), {201, 431}),
    (tiny_cookies, range(60, 420, 6), {201, 431}),
    (big_cookie, range(5000, 9000, 128), {201, 431}),
    (trailers, range(1, 420, 6), {400}),
    (padded_trailer, range(6000, 22000, 512), {400}),
], ids=["spaces-in-a-header", "tiny-cookies", "big-cookie", "trailers", "spaces-in-a-trailer"])
def test_no_invite_without_its_answer_near_the_size_limits(hostile, make, sizes, answers):
    """Through the sizes where a request's headers (whitespace MHD skips,
    cookies it copies, trailers after a chunked body) fill the connection's
    memory: each request gets its 201, or a refusal and no invite (431: too large,
    ours or libmicrohttpd's; 400: trailers, whatever their size), or at worst
    a closed connection and no invite. Never an invite whose answer is lost."""
    target = hostile.path.encode() + b"?key=" + hostile.key.encode()
    seen = set()
    for n in sizes:
        before = stored(hostile)
        r = raw_exchange(hostile, make(target, n), limit_s=3)
        made = stored(hostile) - before
        assert made == (1 if r.status == 201 else 0), f"{make.__name__}({n}): {made} for {r!r}"
        assert r.status in answers | {431, None}, f"{make.__name__}({n}): {r!r}"
        seen.add(r.status)
    assert answers <= seen, seen   # the sweep crossed the limit


def test_identical_query_and_header_keys_are_accepted(hostile):
    r = hostile.request("GET", query="key=" + hostile.key,
                        headers={"Authorization": "Bearer " + hostile.key})
    assert_created(r, hostile)
    assert_cors(r)


# -- guessing keys ---------------------------------------------------------------

def guess(inst, source, key="nobody/wrong", headers=()):
    target = inst.path.encode() + b"?key=" + key.encode()
    return raw_exchange(inst, request_bytes(target, list(headers)), source=source)


def test_failed_authentications_are_throttled_per_address(make_instance, fresh_prosody):
    inst = make_throttled(make_instance, fresh_prosody)
    for _ in range(3):
        assert guess(inst, "127.0.0.2").status == 401
    dry = time.monotonic()
    r = guess(inst, "127.0.0.2")
    assert_one_line_reason(r, 429, "too many failed authentications from this address")
    assert r.header("Retry-After") == "3", repr(r)
    # held a second before it is sent, so that guessing costs the server nothing
    assert 1.0 <= r.elapsed < 2.0, repr(r)
    # a throttled address waits even with the right key: it is not even checked
    before = stored(inst)
    r = guess(inst, "127.0.0.2", key=inst.key)
    assert r.status == 429, repr(r)
    assert stored(inst) == before
    # other addresses are unaffected, with wrong and with right keys
    assert guess(inst, "127.0.0.3").status == 401
    assert guess(inst, "127.0.0.4", key=inst.key).status == 201
    # answered at once, while 127.0.0.2 waits
    assert guess(inst, "127.0.0.4", key=inst.key).elapsed < 1.0
    # the bucket refills: one failure every 3 s here
    time.sleep(max(0.0, dry + 3.2 - time.monotonic()))
    assert guess(inst, "127.0.0.2", key=inst.key).status == 201
    inst.wait_log("127.0.0.2 GET /invites_api 429 key=- ", timeout=3)


def test_successful_requests_are_never_throttled(make_instance, fresh_prosody):
    inst = make_throttled(make_instance, fresh_prosody)
    for _ in range(10):
        assert guess(inst, "127.0.0.5", key=inst.key).status == 201


def test_throttling_can_be_turned_off(hostile):
    # the module's daemon has auth_failure_burst = 0
    for _ in range(30):
        assert guess(hostile, "127.0.0.6").status == 401
    honest_invite(hostile, source="127.0.0.6")


# -- X-Forwarded-For ---------------------------------------------------------------

def test_forwarded_for_from_a_trusted_proxy_names_the_client(make_instance, fresh_prosody):
    inst = make_throttled(make_instance, fresh_prosody,
                          trusted_proxies="127.0.0.2, 10.0.0.0/8")
    proxy = "127.0.0.2"
    xff = [b"X-Forwarded-For: 203.0.113.7"]
    for _ in range(3):
        assert guess(inst, proxy, headers=xff).status == 401
    assert guess(inst, proxy, headers=xff).status == 429
    # the proxy's other clients are not throttled with this one
    assert guess(inst, proxy, headers=[b"X-Forwarded-For: 203.0.113.8"]).status == 401
    assert guess(inst, proxy, key=inst.key, headers=[b"X-Forwarded-For: 203.0.113.9"]
                 ).status == 201
    # the rightmost address that is not a trusted proxy is the client: a
    # forged hop on the left changes nothing
    assert guess(inst, proxy, headers=[b"X-Forwarded-For: 198.51.100.1, 203.0.113.7"]
                 ).status == 429
    assert guess(inst, proxy, headers=[b"X-Forwarded-For: 203.0.113.7, 10.1.2.3"]
                 ).status == 429
    # the log line names the client, not the proxy
    inst.wait_log("203.0.113.7 GET /invites_api 429 key=- ", timeout=3)
    inst.wait_log("203.0.113.9 GET /invites_api 201 key=", timeout=3)


def test_forwarded_for_from_others_is_ignored(make_instance, fresh_prosody):
    inst = make_throttled(make_instance, fresh_prosody, trusted_proxies="127.0.0.2")
    # each guess claims another client; the peer's own address is what counts
    for i in range(3):
        assert guess(inst, "127.0.0.3",
                     headers=[f"X-Forwarded-For: 192.0.2.{i}".encode()]).status == 401
    assert guess(inst, "127.0.0.3", headers=[b"X-Forwarded-For: 192.0.2.200"]).status == 429
    inst.wait_log("127.0.0.3 GET /invites_api 429 key=- ", timeout=3)
    assert "192.0.2." not in inst.log_text()


def test_invalid_trusted_proxies_are_refused_by_check(make_instance):
    inst = make_instance(http_options={"trusted_proxies": "10.0.0.0/33"})
    r = inst.cli("check")
    assert r.returncode != 0, repr(r)
    assert "trusted_proxies" in r.stderr and "10.0.0.0/33" in r.stderr, repr(r)
