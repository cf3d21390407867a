"""Helpers for the invites-api integration tests.

Everything here drives real programs: a real Prosody started from a config
written into a pytest tmp dir, the real invites-api binary (CLI and daemon),
and real HTTP over loopback. Every wait is bounded.
"""

import asyncio
import atexit
import http.client
import json
import os
import re
import secrets
import shlex
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

DEFAULT_BINARY = "/tmp/build-int/src/invites-api"

COMPONENT_JID = "invites.localhost"
MAIN_HOST = "localhost"            # the component is in this host's admins
FOREIGN_HOST = "other.localhost"   # the component is NOT in this host's admins

KEY_RE = re.compile(r"^([A-Za-z0-9_-]{8,})/([A-Za-z0-9_-]{43,})$")
# What an invite page says, (valid, invalid), for each server's page: Prosody's
# mod_invites_page (invite.html, invite_invalid.html), ejabberd's mod_invites.
PAGE_TEXTS = [("You have been invited", "Invite expired")]
# ejabberd answers an unknown token with 404 and an empty one with its start page
EJABBERD_PAGES = os.environ.get("INVITES_API_SERVER") == "ejabberd"
if EJABBERD_PAGES:
    PAGE_TEXTS.append(("You have been invited", "<title>Startpage |"))

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
PROSODY_LOGS = []   # each Prosody's log and stdout
CLI_LOGS = []       # the stderr of every CLI run, one file per Instance
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


def write_private(path, text):
    """Write a file only its owner can read (0600), as the daemon demands of its
    config, secret and key files."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)   # an existing file keeps its mode otherwise
    return path


def binary_path():
    return os.environ.get("INVITES_API", DEFAULT_BINARY)


# --------------------------------------------------------------------------
# An optional wrapper for every daemon and CLI run by Instance, e.g.
#   INVITES_API_WRAPPER="valgrind --error-exitcode=99 --leak-check=full
#                        --errors-for-leak-kinds=definite"
# With valgrind, each process writes its report to a file of its own in
# INVITES_API_WRAPPER_LOGS (default: a new temporary directory), and
# wrapper_errors() lists the reports that found errors (conftest checks them at
# the end of the session). A daemon that found errors exits 99 on SIGTERM,
# which its teardown reports. Wrapped programs are slower: start timeouts are
# multiplied by WRAPPER_SLOWDOWN.

WRAPPER = shlex.split(os.environ.get("INVITES_API_WRAPPER", ""))
WRAPPER_SLOWDOWN = 6 if WRAPPER else 1
_wrapper_logs = []


def _wrapper_log_dir():
    if not _wrapper_logs:
        d = os.environ.get("INVITES_API_WRAPPER_LOGS") or \
            tempfile.mkdtemp(prefix="invites-api-wrapper-")
        os.makedirs(d, exist_ok=True)
        _wrapper_logs.append(Path(d))
    return _wrapper_logs[0]


def wrapped(argv, name):
    """argv behind INVITES_API_WRAPPER, if set; name labels valgrind's report."""
    if not WRAPPER:
        return list(argv)
    extra = []
    if os.path.basename(WRAPPER[0]) == "valgrind":
        extra = [f"--log-file={_wrapper_log_dir()}/{name}.%p.log"]
    return WRAPPER + extra + list(argv)


def wrapper_errors():
    """[(report path, summary)] for every valgrind report with errors (definite
    leaks count as errors with --errors-for-leak-kinds=definite)."""
    found = []
    for d in _wrapper_logs:
        for log in sorted(d.glob("*.log")):
            text = log.read_text(errors="replace")
            m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
            # a process killed before its summary still has its error reports
            reported = re.search(r"^==\d+== (Invalid |Conditional jump|Use of uninitialised|"
                                 r"Syscall param|Mismatched free|Source and destination)",
                                 text, re.MULTILINE)
            if (m and int(m.group(1)) > 0) or reported:
                found.append((str(log), "\n".join(text.splitlines()[:60])))
    return found


_ports_given = set()


def _port_range():
    """INVITES_API_PORTS=FIRST-LAST: the ports this run may give out. Runs side
    by side (scripts/test.sh) get ranges of their own, outside the kernel's
    ephemeral range, so no run can take a port another has just chosen and
    not bound yet. Unset: any free port the kernel picks."""
    spec = os.environ.get("INVITES_API_PORTS", "")
    if not spec:
        return None
    first, _, last = spec.partition("-")
    return range(int(first), int(last) + 1)


_PORT_RANGE = _port_range()


def _bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    """A loopback TCP port that was free a moment ago, and not given out before
    in this session (a server that binds four of them later must not get one
    twice)."""
    if _PORT_RANGE is not None:
        with _registry_lock:
            for port in _PORT_RANGE:
                if port not in _ports_given and _bindable(port):
                    _ports_given.add(port)
                    return port
        raise RuntimeError(f"no free port left in INVITES_API_PORTS={_PORT_RANGE}")
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with _registry_lock:
            if port not in _ports_given:
                _ports_given.add(port)
                return port


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
    """The invite token from a landing URL (Prosody's ...?TOKEN, ejabberd's
    .../invites/TOKEN) or an xmpp: URI (...;preauth=TOKEN)."""
    m = re.search(r"preauth=([A-Za-z0-9_-]+)", url)
    if m:
        return m.group(1)
    m = re.fullmatch(r"https?://[^/]+/invites/([A-Za-z0-9_-]+)", url)
    if m:
        return m.group(1)
    query = urllib.parse.urlsplit(url).query
    assert query, f"no token in {url!r}"
    return query


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


def http_request(method, url, headers=None, body=None, timeout=30, tls_context=None):
    """One request on a fresh connection; never follows redirects. An https URL
    needs tls_context (an ssl.SSLContext trusting the test CA)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                           context=tls_context)
    else:
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
    if EJABBERD_PAGES and r.status == 404:
        return "invalid"
    assert r.status == 200, f"invite page {url} answered {r!r}"
    for valid, invalid in PAGE_TEXTS:
        if valid in r.text:
            return "valid"
        if invalid in r.text:
            return "invalid"
    raise AssertionError(f"unrecognised invite page at {url}: {r.text[:500]!r}")


# --------------------------------------------------------------------------
# invites-api: CLI and daemon

DAEMON_CONFIG = """\
; written by tests/integration/harness.py
[component]
jid = {jid}
{secret_line}
server = 127.0.0.1
port = {component_port}
hosts = {hosts}
admins = {admins}
request_timeout = {request_timeout}
max_pending = {max_pending}

[http]
bind = 127.0.0.1
port = {http_port}
path = {path}
cors_origin = {cors_origin}
{tls_lines}{http_extra}
[keys]
database = {database}
{server_extra}"""


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
                 path="/invites_api", cors_origin="*", admins=(), max_pending=1000,
                 tls=None, secret_file=False, http_options=None):
        """tls: None for plain HTTP, or (certificate file, key file, CA file) for
        HTTPS. secret_file: put the component secret in a file of its own
        (component.secret, 0600) named by secret_file instead of secret.
        http_options: extra [http] options."""
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prosody = prosody
        # Extra [http] options. Throttling of failed authentications is off
        # unless a test turns it on: many tests send bad keys on purpose.
        http_options = {"auth_failure_burst": 0, **(http_options or {})}
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
        self.tls = tls
        self.tls_context = None
        tls_lines = ""
        if tls is not None:
            tls_lines = f"tls_certificate = {tls[0]}\ntls_key = {tls[1]}\n"
            self.tls_context = ssl.create_default_context(cafile=str(tls[2]))
        self.secret_file = None
        secret_line = f"secret = {self.component_secret}"
        if secret_file:
            self.secret_file = write_private(self.dir / "component.secret",
                                             self.component_secret + "\n")
            secret_line = f"secret_file = {self.secret_file}"
        self.cli_stderr = self.dir / "cli.stderr"
        with _registry_lock:
            CLI_LOGS.append(self.cli_stderr)
        write_private(self.config, DAEMON_CONFIG.format(
            tls_lines=tls_lines,
            jid=COMPONENT_JID, secret_line=secret_line,
            component_port=component_port or free_port(),
            hosts=", ".join(hosts), admins=", ".join(admins), request_timeout=request_timeout,
            max_pending=max_pending,
            http_port=self.http_port, path=path, cors_origin=cors_origin,
            http_extra="".join(f"{k} = {v}\n" for k, v in http_options.items()),
            database=self.database,
            server_extra=prosody.daemon_config_extra() if prosody is not None else ""))
        self.proc = None
        self.keys = {}   # key id -> full key "ID/SECRET"

    # -- CLI ----------------------------------------------------------------

    def cli(self, *args, config=None, timeout=20):
        """Run the CLI. Any ID/SECRET it prints is registered as a secret, and its
        stderr is kept (cli.stderr) for the log hygiene check."""
        argv = wrapped([binary_path(), "-c", str(config or self.config), *args],
                       f"cli-{args[0] if args else 'none'}")
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout * WRAPPER_SLOWDOWN,
                              stdin=subprocess.DEVNULL)
        for line in proc.stdout.splitlines():
            m = KEY_RE.match(line.strip())
            if m:
                register_secret(m.group(2))
        with open(self.cli_stderr, "a") as f:
            f.write(proc.stderr)
        return CliResult([str(a) for a in args], proc)

    def create_key(self, host=MAIN_HOST, name="test key", *options):
        """`create HOST NAME [OPTIONS]`; returns the printed ID/SECRET."""
        r = self.cli("create", host, name, *options)
        assert r.returncode == 0, f"create failed: {r!r}"
        found = [ln for ln in r.stdout.splitlines() if KEY_RE.match(ln)]
        assert len(found) == 1, f"expected exactly one ID/SECRET line: {r!r}"
        key = found[0]
        key_id, secret = KEY_RE.match(key).groups()
        register_secret(secret)
        self.keys[key_id] = key
        return key

    def list_rows(self, host=MAIN_HOST):
        """`list HOST` as {id: [id, name, created, expires, last_used, invites, limit]}."""
        r = self.cli("list", host)
        assert r.returncode == 0, f"list failed: {r!r}"
        rows = [ln.split("\t") for ln in r.stdout.splitlines() if ln.strip()]
        return {row[0]: row for row in rows}

    def list_json(self, host=MAIN_HOST):
        r = self.cli("list", host, "--json")
        assert r.returncode == 0, f"list --json failed: {r!r}"
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise AssertionError(f"list --json printed no JSON ({e}): {r!r}") from None

    # -- daemon -------------------------------------------------------------

    @property
    def base_url(self):
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    @property
    def api_url(self):
        return self.base_url + self.path

    def url(self, query=None):
        return self.api_url + ("?" + query if query else "")

    def start(self, wait_connected=True, timeout=10):
        """Start `serve` (again, once a previous run has exited: the log goes on in
        the same file, and only what this run logs is waited for)."""
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        with _registry_lock:
            if self.log not in DAEMON_LOGS:
                DAEMON_LOGS.append(self.log)
                DAEMON_LOGS.append(self.stdout_log)
        offset = len(self.log_text())
        err = open(self.log, "ab")
        out = open(self.stdout_log, "ab")
        self.proc = _spawn(wrapped([binary_path(), "-c", str(self.config), "serve"],
                                   f"daemon-{self.dir.parent.name}-{self.dir.name}"),
                           stdout=out, stderr=err)
        timeout *= WRAPPER_SLOWDOWN
        err.close()
        out.close()
        self.wait_log("listening on http", timeout, start_offset=offset)
        if wait_connected:
            self.wait_log("connected to", timeout, start_offset=offset)

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
                self.proc.wait(timeout=timeout * WRAPPER_SLOWDOWN)
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
        return http_request(method, url, headers=headers, body=body, timeout=timeout,
                            tls_context=self.tls_context)

    def get_invite(self, key, **kw):
        return self.request("GET", query="key=" + key, **kw)


def all_logs():
    """Every log the run wrote: daemons, Prosody servers, CLI stderr."""
    with _registry_lock:
        return list(DAEMON_LOGS) + list(PROSODY_LOGS) + list(CLI_LOGS)


def secrets_in_logs(logs=None, secret_values=None):
    """[(log path, secret)] for every registered secret found in a log (by
    default every log of the run)."""
    found = []
    for log in list(logs if logs is not None else all_logs()):
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
    """Check resp carries an invite page URL of the module's server in Location,
    stored by that server; return (url, token)."""
    loc = resp.header("Location")
    assert loc, f"no Location: {resp!r}\n{daemon.describe()}"
    prefix = daemon.prosody.page_url("")   # the server's landing page, without a token
    assert loc.startswith(prefix), f"Location {loc!r} is not {prefix}TOKEN"
    token = loc[len(prefix):]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), loc
    assert token in daemon.prosody.stored_tokens(), \
        f"token {token} of {loc} is not among what {daemon.prosody.name} stored"
    return loc, token


def assert_created(resp, daemon, status=201):
    assert resp.status == status, f"expected {status}, got {resp!r}\n{daemon.describe()}"
    return location_token(resp, daemon)


def assert_cors(resp, origin="*"):
    assert resp.header("Access-Control-Allow-Origin") == origin, repr(resp)
    for name, value in CORS_HEADERS.items():
        assert resp.header(name) == value, f"{name} should be {value!r}: {resp!r}"


# --------------------------------------------------------------------------
# A real XMPP client (slixmpp) on Prosody's c2s port, for the component's own
# ad-hoc commands and entity queries. slixmpp is asyncio: its loop runs in a
# thread of the client's own, and every call below waits for its answer for a
# bounded time.

NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_DATA = "jabber:x:data"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


class IqReply:
    """An <iq/> answer: type 'result' or 'error', the element, and the error if any."""

    def __init__(self, xml):
        self.xml = xml
        self.type = xml.get("type")
        self.error_type = self.condition = self.error_text = None
        self.app_conditions = []
        err = xml.find("{jabber:client}error")
        if err is not None:
            self.error_type = err.get("type")
            for child in err:
                tag = child.tag.split("}")[-1]
                ns = child.tag[1:].split("}")[0] if child.tag.startswith("{") else ""
                if ns == NS_STANZAS and tag == "text":
                    self.error_text = child.text
                elif ns == NS_STANZAS:
                    self.condition = tag
                else:
                    self.app_conditions.append(tag)

    def child(self, name, ns):
        return self.xml.find(f"{{{ns}}}{name}")

    def __repr__(self):
        return f"<IqReply {ET.tostring(self.xml, encoding='unicode')}>"


class DataForm:
    """A parsed jabber:x:data form (XEP-0004), including a result table."""

    def __init__(self, x):
        self.xml = x
        self.type = x.get("type")
        self.title = x.findtext(f"{{{NS_DATA}}}title")
        self.instructions = [i.text for i in x.findall(f"{{{NS_DATA}}}instructions")]
        self.fields = {}     # var -> field dict (fixed fields without var under None keys)
        self.fixed = []      # values of fixed fields
        for f in x.findall(f"{{{NS_DATA}}}field"):
            field = self._field(f)
            if field["type"] == "fixed":
                self.fixed.extend(field["values"])
            if field["var"] is not None:
                self.fields[field["var"]] = field
        reported = x.find(f"{{{NS_DATA}}}reported")
        self.columns = ([self._field(f) for f in reported.findall(f"{{{NS_DATA}}}field")]
                        if reported is not None else [])
        self.items = []      # one {var: value} per table row
        for item in x.findall(f"{{{NS_DATA}}}item"):
            row = {}
            for f in item.findall(f"{{{NS_DATA}}}field"):
                values = [v.text or "" for v in f.findall(f"{{{NS_DATA}}}value")]
                row[f.get("var")] = values[0] if len(values) == 1 else values
            self.items.append(row)

    @staticmethod
    def _field(f):
        return {
            "var": f.get("var"),
            "type": f.get("type") or "text-single",
            "label": f.get("label"),
            "required": f.find(f"{{{NS_DATA}}}required") is not None,
            "values": [v.text or "" for v in f.findall(f"{{{NS_DATA}}}value")],
            "options": [(o.get("label"), o.findtext(f"{{{NS_DATA}}}value"))
                        for o in f.findall(f"{{{NS_DATA}}}option")],
        }

    def value(self, var):
        values = self.fields[var]["values"]
        return values[0] if values else None

    def __repr__(self):
        return f"<DataForm {ET.tostring(self.xml, encoding='unicode')}>"


class CommandReply:
    """The answer to one XEP-0050 command request."""

    def __init__(self, reply):
        self.reply = reply
        self.error = reply if reply.type == "error" else None
        cmd = reply.child("command", NS_COMMANDS)
        self.command = cmd
        self.status = cmd.get("status") if cmd is not None else None
        self.sessionid = cmd.get("sessionid") if cmd is not None else None
        self.node = cmd.get("node") if cmd is not None else None
        self.notes = ([(n.get("type") or "info", n.text or "")
                       for n in cmd.findall(f"{{{NS_COMMANDS}}}note")]
                      if cmd is not None else [])
        x = cmd.find(f"{{{NS_DATA}}}x") if cmd is not None else None
        self.form = DataForm(x) if x is not None else None
        actions = cmd.find(f"{{{NS_COMMANDS}}}actions") if cmd is not None else None
        self.actions = ([a.tag.split("}")[-1] for a in actions] if actions is not None else [])

    def notes_of(self, kind):
        return [text for t, text in self.notes if t == kind]

    def __repr__(self):
        return repr(self.reply)


def submit_form(values):
    """<x type='submit'/> with values: {var: str or [str, ...]}."""
    x = ET.Element(f"{{{NS_DATA}}}x", type="submit")
    for var, vals in values.items():
        field = ET.SubElement(x, f"{{{NS_DATA}}}field", var=var)
        for v in ([vals] if isinstance(vals, str) else vals):
            ET.SubElement(field, f"{{{NS_DATA}}}value").text = v
    return x


class XmppClient:
    """A user logged in over c2s with slixmpp (plain stream: the test Prosody has
    no TLS and allows authentication without it)."""

    def __init__(self, jid, password, port, resource="tests", timeout=10):
        import slixmpp   # Debian: python3-slixmpp
        from slixmpp.exceptions import IqError, IqTimeout
        self._IqError, self._IqTimeout = IqError, IqTimeout
        self.jid = f"{jid}/{resource}"
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name=f"slixmpp {jid}")
        self.thread.start()
        self.xmpp = None
        try:
            self._run(self._connect(slixmpp, password, port), timeout + 2)
        except BaseException:
            self.close()
            raise

    def _run(self, coro, timeout):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except TimeoutError:   # concurrent.futures.TimeoutError is TimeoutError from 3.11
            fut.cancel()
            raise

    async def _connect(self, slixmpp, password, port):
        xmpp = slixmpp.ClientXMPP(self.jid, password)
        self.xmpp = xmpp
        outcome = self.loop.create_future()

        def settle(result=None, error=None):
            if not outcome.done():
                if error:
                    outcome.set_exception(ConnectionError(error))
                else:
                    outcome.set_result(result)
        xmpp.add_event_handler("session_start", lambda _: settle(True))
        xmpp.add_event_handler("failed_all_auth",
                               lambda _: settle(error=f"{self.jid}: authentication failed"))
        xmpp.add_event_handler("connection_failed",
                               lambda e: settle(error=f"{self.jid}: cannot connect: {e}"))
        xmpp.add_event_handler("disconnected",
                               lambda _: settle(error=f"{self.jid}: disconnected during login"))
        xmpp.connect(("127.0.0.1", port), force_starttls=False, disable_starttls=True)
        await asyncio.wait_for(outcome, self.timeout)
        self.full_jid = str(xmpp.boundjid)

    def iq(self, type_, to, payload, timeout=5):
        """Send <iq type=type_ to=to> with payload (an Element or XML text); return its
        IqReply, error or not (raises TimeoutError when nothing comes back in time)."""
        if isinstance(payload, str):
            payload = ET.fromstring(payload)

        async def go():
            iq = self.xmpp.Iq()
            iq["type"] = type_
            iq["to"] = to
            iq.xml.append(payload)
            try:
                reply = await iq.send(timeout=timeout)
            except self._IqError as e:
                reply = e.iq
            except self._IqTimeout:
                raise TimeoutError(f"no answer from {to} within {timeout}s to "
                                   f"{ET.tostring(payload, encoding='unicode')}") from None
            return IqReply(reply.xml)
        return self._run(go(), timeout + 2)

    # -- service discovery and ad-hoc commands (XEP-0030, XEP-0050) --------

    def disco_items(self, to, node=None):
        q = ET.Element(f"{{{NS_DISCO_ITEMS}}}query")
        if node:
            q.set("node", node)
        return self.iq("get", to, q)

    def disco_info(self, to, node=None):
        q = ET.Element(f"{{{NS_DISCO_INFO}}}query")
        if node:
            q.set("node", node)
        return self.iq("get", to, q)

    def commands(self, to):
        """{name: node} of the commands listed on the commands node of to."""
        r = self.disco_items(to, NS_COMMANDS)
        assert r.type == "result", f"disco#items of {to} commands failed: {r!r}"
        query = r.child("query", NS_DISCO_ITEMS)
        return {i.get("name"): i.get("node") for i in query.findall(f"{{{NS_DISCO_ITEMS}}}item")}

    def command(self, to, node, action=None, sessionid=None, form=None):
        """One XEP-0050 request; form is {var: value(s)} to submit, or an Element."""
        cmd = ET.Element(f"{{{NS_COMMANDS}}}command", node=node)
        if action:
            cmd.set("action", action)
        if sessionid:
            cmd.set("sessionid", sessionid)
        if form is not None:
            cmd.append(form if isinstance(form, ET.Element) else submit_form(form))
        return CommandReply(self.iq("set", to, cmd))

    def close(self):
        if self.xmpp is not None:
            async def bye():
                try:
                    await asyncio.wait_for(self.xmpp.disconnect(wait=1.0), 3)
                except Exception:
                    self.xmpp.abort()
                # slixmpp's own tasks (send queue, filters) end here, not at loop.close()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.cancel()
                await asyncio.wait(tasks, timeout=2) if tasks else None
            try:
                self._run(bye(), 5)
            except Exception:
                pass
            self.xmpp = None
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()
