"""Helpers for the invites-api integration tests.

Everything here drives real programs: a real Prosody started from a config
written into a pytest tmp dir, the real invites-api binary (CLI and daemon),
and real HTTP over loopback. Every wait is bounded.
"""

import atexit
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

DEFAULT_BINARY = "/tmp/build-int/src/invites-api"
PROSODY = shutil.which("prosody") or "/usr/bin/prosody"

COMPONENT_JID = "invites.localhost"
MAIN_HOST = "localhost"            # the component is in this host's admins
FOREIGN_HOST = "other.localhost"   # the component is NOT in this host's admins

KEY_RE = re.compile(r"^([A-Za-z0-9_-]{8,})/([A-Za-z0-9_-]{43,})$")
VALID_PAGE_TEXT = "You have been invited"
INVALID_PAGE_TEXT = "Invite expired"   # mod_invites_page's invite_invalid.html

CORS_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Expose-Headers": "Location",
    "Access-Control-Max-Age": "7200",
}

# Every secret the run handed to a daemon or saw printed by the CLI, and every
# daemon log written; the log hygiene checks grep the logs for the secrets.
SECRETS = set()
DAEMON_LOGS = []
_registry_lock = threading.Lock()

# Every process the harness started; whatever is still alive when Python exits
# (an interrupted run) is killed, so no Prosody or daemon is left behind.
_CHILDREN = []


def _spawn(argv, **kw):
    proc = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, **kw)
    _CHILDREN.append(proc)
    return proc


@atexit.register
def _kill_leftovers():
    for proc in _CHILDREN:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


def register_secret(value):
    with _registry_lock:
        SECRETS.add(value)


def binary_path():
    return os.environ.get("INVITES_API", DEFAULT_BINARY)


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns a truthy value; raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


def token_from_url(url):
    """The invite token from a landing URL (...?TOKEN) or an xmpp: URI (...;preauth=TOKEN)."""
    m = re.search(r"preauth=([A-Za-z0-9_-]+)", url)
    if m:
        return m.group(1)
    query = urllib.parse.urlsplit(url).query
    assert query, f"no token in {url!r}"
    return query


# --------------------------------------------------------------------------
# Prosody

PROSODY_CONFIG = """\
-- written by tests/integration/harness.py
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
daemonize = false
run_as_root = true
modules_enabled = {{ {modules} }}
modules_disabled = {{ "s2s", "tls" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s_port} }}
c2s_interfaces = {{ "127.0.0.1" }}
http_ports = {{ {http_port} }}
http_interfaces = {{ "127.0.0.1" }}
https_ports = {{ }}
component_ports = {{ {component_port} }}
component_interfaces = {{ "127.0.0.1" }}
storage = "internal"
log = {{ debug = "{dir}/prosody.log" }}

VirtualHost "{main_host}"
  admins = {{ "{component_jid}" }}

VirtualHost "{foreign_host}"
  -- deliberately without the component in admins (the 502 test)

Component "{component_jid}"
  component_secret = "{component_secret}"
"""

BASE_MODULES = ["disco", "adhoc", "invites", "invites_adhoc", "invites_register", "http"]


class Prosody:
    """One Prosody server in its own directory, on its own free ports."""

    def __init__(self, directory, invite_page=True):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "certs").mkdir(exist_ok=True)   # keeps certmanager quiet
        self.data = self.dir / "data"
        self.config = self.dir / "prosody.cfg.lua"
        self.log = self.dir / "prosody.log"
        self.stdout = self.dir / "prosody.stdout"
        self.c2s_port = free_port()
        self.http_port = free_port()
        self.component_port = free_port()
        self.component_jid = COMPONENT_JID
        self.component_secret = secrets.token_urlsafe(24)
        register_secret(self.component_secret)
        modules = BASE_MODULES + (["invites_page"] if invite_page else [])
        self.config.write_text(PROSODY_CONFIG.format(
            dir=self.dir, modules=", ".join(f'"{m}"' for m in modules),
            c2s_port=self.c2s_port, http_port=self.http_port,
            component_port=self.component_port, main_host=MAIN_HOST,
            foreign_host=FOREIGN_HOST, component_jid=self.component_jid,
            component_secret=self.component_secret))
        self.proc = None
        self.stopped = False   # SIGSTOPped

    def start(self, timeout=15):
        assert self.proc is None or self.proc.poll() is not None, "Prosody already running"
        out = open(self.stdout, "ab")
        self.proc = _spawn([PROSODY, "--config", str(self.config), "-F"],
                           stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        out.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"Prosody exited with {self.proc.returncode}\n"
                    f"--- stdout\n{tail(self.stdout)}\n--- log\n{tail(self.log)}")
            return port_accepts(self.component_port) and port_accepts(self.http_port)
        wait_until(ready, timeout, what="Prosody's component and HTTP ports")

    def kill(self):
        """SIGKILL, and wait until the process is gone (its sockets are closed).

        A stopped (SIGSTOP) process is killed as it is: resuming it first would
        let it answer what it was holding before it dies."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.stopped = False

    def stop(self, timeout=10):
        """Graceful stop (SIGTERM), SIGKILL if it does not exit in time."""
        if self.proc and self.proc.poll() is None:
            if self.stopped:
                self.cont()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.stopped = False

    def sigstop(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- what Prosody stored ------------------------------------------------

    def store_file(self, host, store="invite_token"):
        """Internal storage: <data_path>/<encoded host>/<store>.dat (datamanager
        escapes every non-alphanumeric character of the host as %xx)."""
        enc = re.sub(r"\W", lambda m: "%%%02x" % ord(m.group(0)), host)
        return self.data / enc / f"{store}.dat"

    def stored_tokens(self, host=MAIN_HOST):
        """Tokens of the account invites stored for host (mod_invites keeps them in
        the map store 'invite_token' with no user, one entry per token)."""
        path = self.store_file(host)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return set()
        return set(re.findall(r'\["token"\]\s*=\s*"([^"]+)"', text))

    def generate_invite(self, host=MAIN_HOST):
        """An invite created by prosodyctl (not by the daemon): its token."""
        r = subprocess.run(
            ["prosodyctl", "--config", str(self.config), "mod_invites", "generate", host],
            capture_output=True, text=True, timeout=30, cwd=self.dir)
        assert r.returncode == 0, f"prosodyctl failed: {r.stdout}\n{r.stderr}"
        tokens = re.findall(r"preauth=([A-Za-z0-9_-]+)", r.stdout)
        assert tokens, f"no invite URI in prosodyctl output: {r.stdout!r} {r.stderr!r}"
        return tokens[-1]

    def page_url(self, token):
        return f"http://localhost:{self.http_port}/invites_page?{token}"

    def describe(self):
        return f"--- prosody log ({self.log})\n{tail(self.log, 30)}"


# --------------------------------------------------------------------------
# HTTP

class Response:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers      # http.client.HTTPMessage: case-insensitive
        self.body = body            # bytes
        self.elapsed = elapsed

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        hdrs = "".join(f"\n  {k}: {v}" for k, v in self.headers.items())
        return f"<HTTP {self.status} in {self.elapsed:.3f}s{hdrs}\n  body={self.body[:300]!r}>"


def http_request(method, url, headers=None, body=None, timeout=30):
    """One request on a fresh connection; never follows redirects."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    start = time.monotonic()
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.headers, data, time.monotonic() - start)
    finally:
        conn.close()


def invite_page_state(url):
    """'valid' or 'invalid' according to the page Prosody serves at url."""
    r = http_request("GET", url, timeout=10)
    assert r.status == 200, f"invite page {url} answered {r!r}"
    if VALID_PAGE_TEXT in r.text:
        return "valid"
    if INVALID_PAGE_TEXT in r.text:
        return "invalid"
    raise AssertionError(f"unrecognised invite page at {url}: {r.text[:500]!r}")


# --------------------------------------------------------------------------
# invites-api: CLI and daemon

DAEMON_CONFIG = """\
; written by tests/integration/harness.py
[component]
jid = {jid}
secret = {secret}
server = 127.0.0.1
port = {component_port}
hosts = {hosts}
request_timeout = {request_timeout}

[http]
bind = 127.0.0.1
port = {http_port}
path = {path}
cors_origin = {cors_origin}

[keys]
database = {database}
"""


class CliResult:
    def __init__(self, args, proc):
        self.args = args
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def __repr__(self):
        return (f"<invites-api {' '.join(self.args)} -> exit {self.returncode}\n"
                f"  stdout={self.stdout!r}\n  stderr={self.stderr!r}>")


class Instance:
    """A config file + key database for invites-api; can run the CLI and the daemon."""

    def __init__(self, directory, prosody=None, component_port=None, component_secret=None,
                 hosts=(MAIN_HOST, FOREIGN_HOST), request_timeout=10,
                 path="/invites_api", cors_origin="*"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prosody = prosody
        self.config = self.dir / "component.cfg"
        self.database = self.dir / "keys.sqlite"
        self.log = self.dir / "daemon.log"
        self.stdout_log = self.dir / "daemon.stdout"
        self.http_port = free_port()
        self.path = path
        self.cors_origin = cors_origin
        self.request_timeout = request_timeout
        if prosody is not None:
            component_port = prosody.component_port
            component_secret = prosody.component_secret
        self.component_secret = component_secret or secrets.token_urlsafe(24)
        register_secret(self.component_secret)
        self.config.write_text(DAEMON_CONFIG.format(
            jid=COMPONENT_JID, secret=self.component_secret,
            component_port=component_port or free_port(),
            hosts=", ".join(hosts), request_timeout=request_timeout,
            http_port=self.http_port, path=path, cors_origin=cors_origin,
            database=self.database))
        self.proc = None
        self.keys = {}   # key id -> full key "ID/SECRET"

    # -- CLI ----------------------------------------------------------------

    def cli(self, *args, config=None, timeout=20):
        argv = [binary_path(), "-c", str(config or self.config), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return CliResult([str(a) for a in args], proc)

    def create_key(self, host=MAIN_HOST, name="test key"):
        r = self.cli("create", host, name)
        assert r.returncode == 0, f"create failed: {r!r}"
        found = [ln for ln in r.stdout.splitlines() if KEY_RE.match(ln)]
        assert len(found) == 1, f"expected exactly one ID/SECRET line: {r!r}"
        key = found[0]
        key_id, secret = KEY_RE.match(key).groups()
        register_secret(secret)
        self.keys[key_id] = key
        return key

    # -- daemon -------------------------------------------------------------

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def api_url(self):
        return self.base_url + self.path

    def url(self, query=None):
        return self.api_url + ("?" + query if query else "")

    def start(self, wait_connected=True, timeout=10):
        assert self.proc is None, "daemon already started"
        with _registry_lock:
            DAEMON_LOGS.append(self.log)
            DAEMON_LOGS.append(self.stdout_log)
        err = open(self.log, "ab")
        out = open(self.stdout_log, "ab")
        self.proc = _spawn([binary_path(), "-c", str(self.config), "serve"],
                           stdout=out, stderr=err)
        err.close()
        out.close()
        self.wait_log("listening on http://", timeout)
        if wait_connected:
            self.wait_log("connected to", timeout)

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, needle, timeout=10, start_offset=0):
        def seen():
            if needle in self.log_text()[start_offset:]:
                return True
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited with {self.proc.returncode} before logging "
                    f"{needle!r}\n{self.describe()}")
            return False
        try:
            wait_until(seen, timeout, what=repr(needle))
        except TimeoutError as e:
            raise AssertionError(f"{e} in the daemon log\n{self.describe()}") from None

    def terminate(self, sig=signal.SIGTERM, timeout=5):
        """Send sig and return the exit code; kill and fail if it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError(
                    f"daemon did not exit within {timeout}s of {sig.name}\n{self.describe()}")
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def describe(self, lines=40):
        s = f"--- daemon log ({self.log}), last {lines} lines\n{tail(self.log, lines)}"
        if self.prosody is not None:
            s += "\n" + self.prosody.describe()
        return s

    # -- requests -----------------------------------------------------------

    def request(self, method="GET", query=None, headers=None, body=None, path=None,
                timeout=30):
        url = self.base_url + (path if path is not None else self.path)
        if query:
            url += "?" + query
        return http_request(method, url, headers=headers, body=body, timeout=timeout)

    def get_invite(self, key, **kw):
        return self.request("GET", query="key=" + key, **kw)


def secrets_in_logs(logs=None, secret_values=None):
    """[(log path, secret)] for every registered secret found in a daemon log."""
    found = []
    for log in list(logs if logs is not None else DAEMON_LOGS):
        try:
            text = Path(log).read_text(errors="replace")
        except FileNotFoundError:
            continue
        for s in list(secret_values if secret_values is not None else SECRETS):
            if s and s in text:
                found.append((str(log), s))
    return found


# --------------------------------------------------------------------------
# assertions shared by the test modules

def location_token(resp, daemon):
    """Check resp carries an invite page URL of the module's Prosody in Location,
    stored by Prosody; return (url, token)."""
    loc = resp.header("Location")
    assert loc, f"no Location: {resp!r}\n{daemon.describe()}"
    prefix = f"http://localhost:{daemon.prosody.http_port}/invites_page?"
    assert loc.startswith(prefix), f"Location {loc!r} is not {prefix}TOKEN"
    token = loc[len(prefix):]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), loc
    assert token in daemon.prosody.stored_tokens(), \
        f"token {token} of {loc} is not in Prosody's store {daemon.prosody.store_file(MAIN_HOST)}"
    return loc, token


def assert_created(resp, daemon, status=201):
    assert resp.status == status, f"expected {status}, got {resp!r}\n{daemon.describe()}"
    return location_token(resp, daemon)


def assert_cors(resp, origin="*"):
    assert resp.header("Access-Control-Allow-Origin") == origin, repr(resp)
    for name, value in CORS_HEADERS.items():
        assert resp.header(name) == value, f"{name} should be {value!r}: {resp!r}"
