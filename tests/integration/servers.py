"""The XMPP servers the integration suite runs against, chosen for the whole
session by INVITES_API_SERVER:

  prosody    (default) Debian 12's Prosody 0.12, run directly
  prosody13  Prosody 13.0 from the Debian 13 tree (tests/servers/trixie.sh)
  ejabberd   ejabberd 26 from the same tree

Each server runs in its own directory on its own free loopback ports and has
the same interface (class Server): start / stop / kill / sigstop / cont, the
ports, component_jid / component_secret, the invite tokens it stored,
register_user, page_url, describe. The daemon connects to it from outside the
tree, over loopback.

Servers from the tree run chrooted into it, each in a mount namespace of its
own (unshare) where the host's /tmp and /dev/shm are bind-mounted over the
tree's and proc is mounted: pytest's tmp dirs are then the same paths inside
and outside the tree, and every mount disappears with the server's last
process, whatever happens to the test run (nothing to unmount, nothing left
mounted in the cached tree, and concurrent runs cannot disturb each other).
"""

import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import harness
from harness import (COMPONENT_JID, FOREIGN_HOST, MAIN_HOST, free_port, port_accepts,
                     register_secret, tail, wait_until)

KIND = os.environ.get("INVITES_API_SERVER", "prosody")
KINDS = ("prosody", "prosody13", "ejabberd")
TREE = Path(os.environ.get("INVITES_API_TRIXIE_ROOT", "/var/cache/invites-api/trixie"))
TREE_STAMP = TREE / ".invites-api-stamp"

# The act_as JID of XEP-0356 privileged IQs on ejabberd: need not be an account.
INVITEBOT = f"invitebot@{MAIN_HOST}"

# $0 is "in-tree", or a server's tag (Server.start()): a tmpfs of that name is
# mounted in the namespace, so that the server's processes can be told apart.
_IN_TREE = r'''r=$1; shift
mount --bind /tmp "$r/tmp" && mount --bind /dev/shm "$r/dev/shm" &&
mount -t proc proc "$r/proc" || exit 125
case $0 in invites-api-server-*) mount -t tmpfs -o size=4k "$0" "$r/mnt" || exit 125 ;; esac
exec chroot "$r" "$@"'''
_IN_TREE_NAME = "in-tree"


def tree_problem():
    """Why the Debian 13 tree cannot be used, or None."""
    if KIND not in KINDS:
        return f"INVITES_API_SERVER={KIND!r} is none of {', '.join(KINDS)}"
    if KIND == "prosody":
        return None
    if os.geteuid() != 0:
        return "servers from the Debian 13 tree run with chroot and mounts: run as root"
    if not TREE_STAMP.is_file():
        return (f"no Debian 13 tree at {TREE} (build it with tests/servers/trixie.sh, "
                f"or set INVITES_API_TRIXIE_ROOT)")
    return None


def in_tree(argv):
    """argv run chrooted into the tree, in a mount namespace of its own (see the module
    doc). chroot and sh exec: the process is argv's (same pid)."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _IN_TREE,
            _IN_TREE_NAME, str(TREE), *map(str, argv)]


def daemon_lacks_privileged(binary):
    """Why this invites-api cannot reach ejabberd (it needs XEP-0356 privileged IQs,
    configured with a [host:NAME] section: access = privileged, act_as = JID), or
    None when its config parser accepts that section."""
    with tempfile.TemporaryDirectory(prefix="invites-api-privcheck-") as d:
        cfg = harness.write_private(Path(d) / "c.cfg", (
            f"[component]\njid = {COMPONENT_JID}\nsecret = 0123456789abcdef0123\n"
            f"hosts = {MAIN_HOST}\n[keys]\ndatabase = {d}/keys.sqlite\n"
            f"[host:{MAIN_HOST}]\naccess = privileged\nact_as = {INVITEBOT}\n"))
        r = subprocess.run([binary, "-c", str(cfg), "list", MAIN_HOST], capture_output=True,
                           text=True, timeout=20, stdin=subprocess.DEVNULL)
    if r.returncode != 0 and ("unknown section" in r.stderr or "unknown option" in r.stderr):
        return (f"this invites-api does not know [host:{MAIN_HOST}] access = privileged "
                f"(XEP-0356), which ejabberd needs: {r.stderr.strip()}")
    return None


def server_class():
    """The class of this session's servers (what it offers: offers_password_reset,
    takes_username, max_unexpired_invites)."""
    return {"prosody": Prosody, "prosody13": Prosody13, "ejabberd": Ejabberd}.get(KIND, Prosody)


def make_server(directory, **kw):
    """The server of this session's kind (not started). kw: invite_page, extra_modules
    (Prosody modules), sql (Prosody's SQLite storage; ejabberd always uses SQLite)."""
    return server_class()(directory, **kw)


class Server:
    """What the tests use of a server. Subclasses set the argv and the storage."""

    kind = None
    name = None   # for messages: "Prosody 0.12"
    chrooted = True   # runs in the Debian 13 tree (see in_tree())
    # A user's stanza with a from other than the user: Prosody stamps the real
    # sender over it, ejabberd closes the stream (invalid-from).
    stamps_forged_from = True
    # What its invite commands offer: the password-reset command (Prosody 13's
    # mod_invites_adhoc), a username field in create-account (ejabberd's).
    offers_password_reset = False
    takes_username = False
    # ejabberd refuses more unexpired account invites per inviter (here the
    # act_as JID) than this: "Maximum number of invites reached".
    max_unexpired_invites = None
    # What the daemon's log names as the fix when the component may not create
    # invites on other.localhost: Prosody refuses (forbidden: the admins entry),
    # ejabberd does not run a plain component's command (access = privileged).
    foreign_host_fix = "admins"
    invite_lifetime_days = 7   # the default lifetime of an account invite
    page_texts = ("You have been invited", "Invite expired")   # (valid, invalid)

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stdout = self.dir / f"{self.kind}.stdout"
        self.c2s_port = free_port()
        self.http_port = free_port()
        self.component_port = free_port()
        self.component_jid = COMPONENT_JID
        self.component_secret = secrets.token_urlsafe(24)
        register_secret(self.component_secret)
        self.proc = None
        self.mnt_ns = None     # of a chrooted server, once started
        self.ns_tag = None     # and the tag mounted in it (start())
        self.stopped = False   # SIGSTOPped

    # -- process ------------------------------------------------------------

    def argv(self):
        raise NotImplementedError

    def ready(self):
        return port_accepts(self.component_port) and port_accepts(self.http_port) \
            and port_accepts(self.c2s_port)

    def start(self, timeout=20):
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        argv = self.argv()
        self.mnt_ns = None
        if self.chrooted:
            # A namespace's number is given to a new one once it is gone: another
            # session's server may have it by the time this one is killed. The
            # tag tells this server's processes apart (_members()).
            self.ns_tag = f"invites-api-server-{secrets.token_hex(8)}"
            argv[argv.index(_IN_TREE_NAME)] = self.ns_tag
        out = open(self.stdout, "ab")
        self.proc = harness._spawn(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        out.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}\n"
                                   f"{self.describe()}")
            return self.ready()
        wait_until(ready, timeout, what=f"{self.name}'s component, c2s and HTTP ports")
        if self.chrooted:   # by now the first process has entered its namespace
            self.mnt_ns = os.readlink(f"/proc/{self.proc.pid}/ns/mnt")
            assert self.mnt_ns != os.readlink("/proc/self/ns/mnt"), "unshare did not happen"
            _CHROOTED.append(self)

    def _members(self):
        """The pids of the server: every process in its mount namespace when it has
        one (ejabberdctl's `su` starts the beam in a session of its own), else its
        process group."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if self.mnt_ns is not None:
                    if os.readlink(entry / "ns" / "mnt") != self.mnt_ns:
                        continue
                    if f" {self.ns_tag} " not in (entry / "mountinfo").read_text():
                        continue   # a namespace of the same number, not this server's
                else:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if fields[2] != str(self.proc.pid):
                        continue
                found.append(int(entry.name))
            except OSError:
                continue
        return found

    def _signal(self, sig):
        for pid in self._members():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _group_alive(self):
        """Whether any process of the server is left (the first one, e.g.
        ejabberdctl's shell, may exit before the server itself)."""
        return bool(self._members())

    def _wait_group(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
            wait_until(lambda: not self._group_alive(), timeout,
                       what=f"{self.name}'s processes to exit")
            # A leader whose other threads are still exiting has left its
            # namespace already (no ns links): wait for its sockets too.
            wait_until(lambda: not any(port_accepts(p) for p in
                                       (self.component_port, self.c2s_port, self.http_port)),
                       timeout, what=f"{self.name}'s ports to close")
            return True
        except (subprocess.TimeoutExpired, TimeoutError):
            return False

    def kill(self):
        """SIGKILL, and wait until the processes are gone (their sockets are closed).

        A stopped (SIGSTOP) process is killed as it is: resuming it first would
        let it answer what it was holding before it dies."""
        if self.proc and (self.proc.poll() is None or self._group_alive()):
            self._signal(signal.SIGKILL)
            assert self._wait_group(10), f"{self.name} survived SIGKILL"
        self.stopped = False

    def stop(self, timeout=15):
        """Graceful stop (SIGTERM), SIGKILL if it does not exit in time."""
        if self.proc and (self.proc.poll() is None or self._group_alive()):
            if self.stopped:
                self.cont()
            self._signal(signal.SIGTERM)
            if not self._wait_group(timeout):
                self.kill()
        self.stopped = False

    def sigstop(self):
        self._signal(signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        if self.proc and self.proc.poll() is None:
            self._signal(signal.SIGCONT)
        self.stopped = False

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- what the tests ask -------------------------------------------------

    def stored_tokens(self, host=MAIN_HOST):
        """Tokens of the account invites the server stored for host."""
        raise NotImplementedError

    def register_user(self, user, host=MAIN_HOST, password=None):
        """Create the account user@host; returns (jid, password)."""
        raise NotImplementedError

    def generate_invite(self, host=MAIN_HOST):
        """An invite created by the server's own tool (not by the daemon): its token."""
        raise NotImplementedError

    def page_url(self, token):
        """The landing page of an invite, as the server builds it."""
        raise NotImplementedError

    def component_connections(self):
        """How many component connections the server accepted (from its log)."""
        raise NotImplementedError

    def saw_component_stream_close(self):
        """Whether the server logged a component closing its stream."""
        raise NotImplementedError

    def daemon_config_extra(self):
        """Text the daemon's config needs for this server (appended to it)."""
        return ""

    def describe(self):
        return (f"--- {self.name} log ({self.log})\n{tail(self.log, 30)}\n"
                f"--- {self.name} stdout\n{tail(self.stdout, 10)}")


# --------------------------------------------------------------------------
# Prosody

PROSODY_CONFIG = """\
-- written by tests/integration/servers.py
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
c2s_require_encryption = false     -- TLS is disabled: let test clients log in
allow_unencrypted_plain_auth = true
{storage}
log = {{ debug = "{dir}/prosody.log" }}

VirtualHost "{main_host}"
  admins = {{ "{component_jid}" }}
{main_host_extra}
VirtualHost "{foreign_host}"
  -- deliberately without the component in admins (the 502 test)

Component "{component_jid}"
  component_secret = "{component_secret}"
"""

# saslauth: test users log in over c2s (XmppClient)
BASE_MODULES = ["disco", "adhoc", "invites", "invites_adhoc", "invites_register", "http",
                "saslauth"]

STORAGE_INTERNAL = 'storage = "internal"'
# mod_storage_sql on SQLite (needs lua-dbi-sqlite3); the file is relative to data_path
STORAGE_SQLITE = ('storage = "sql"\n'
                  'sql = { driver = "SQLite3", database = "prosody.sqlite" }')


class Prosody(Server):
    """Debian 12's Prosody 0.12, run directly."""

    kind = "prosody"
    name = "Prosody 0.12"
    chrooted = False
    extra_base_modules = []

    def __init__(self, directory, invite_page=True, extra_modules=(), sql=False):
        super().__init__(directory)
        (self.dir / "certs").mkdir(exist_ok=True)   # keeps certmanager quiet
        self.data = self.dir / "data"
        self.data.mkdir(exist_ok=True)   # mod_storage_sql does not create it
        self.config = self.dir / "prosody.cfg.lua"
        self.log = self.dir / "prosody.log"
        with harness._registry_lock:
            harness.PROSODY_LOGS.extend([self.log, self.stdout])
        modules = BASE_MODULES + (["invites_page"] if invite_page else []) + \
            self.extra_base_modules + list(extra_modules)
        self.invite_page = invite_page
        self.sql = sql
        self.config.write_text(PROSODY_CONFIG.format(
            storage=STORAGE_SQLITE if sql else STORAGE_INTERNAL,
            dir=self.dir, modules=", ".join(f'"{m}"' for m in modules),
            c2s_port=self.c2s_port, http_port=self.http_port,
            component_port=self.component_port, main_host=MAIN_HOST,
            main_host_extra=self.main_host_extra(), foreign_host=FOREIGN_HOST,
            component_jid=self.component_jid, component_secret=self.component_secret))

    def main_host_extra(self):
        return ""

    def command(self, argv):
        """argv as this Prosody's programs run (directly here)."""
        return list(map(str, argv))

    def argv(self):
        return self.command(["prosody", "--config", self.config, "-F"])

    def ready(self):
        # c2s is not waited for: the tests that log in wait for it themselves
        return port_accepts(self.component_port) and port_accepts(self.http_port)

    # -- what Prosody stored ------------------------------------------------

    def store_file(self, host, store="invite_token"):
        """Internal storage: <data_path>/<encoded host>/<store>.dat (datamanager
        escapes every non-alphanumeric character of the host as %xx)."""
        enc = re.sub(r"\W", lambda m: "%%%02x" % ord(m.group(0)), host)
        return self.data / enc / f"{store}.dat"

    @property
    def sql_database(self):
        return self.data / "prosody.sqlite"

    def stored_tokens(self, host=MAIN_HOST):
        """mod_invites keeps account invites in the map store 'invite_token' with no
        user, one entry per token."""
        if self.sql:
            # mod_storage_sql: table prosody(host, user, store, key, type, value)
            try:
                db = sqlite3.connect(f"file:{self.sql_database}?mode=ro", uri=True, timeout=5)
            except sqlite3.OperationalError:
                return set()
            try:
                rows = db.execute("SELECT key FROM prosody WHERE host = ? AND store = ?",
                                  (host, "invite_token")).fetchall()
            except sqlite3.OperationalError:   # no table yet
                return set()
            finally:
                db.close()
            return {r[0] for r in rows}
        path = self.store_file(host)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return set()
        return set(re.findall(r'\["token"\]\s*=\s*"([^"]+)"', text))

    def generate_invite(self, host=MAIN_HOST):
        r = self.prosodyctl("mod_invites", "generate", host)
        assert r.returncode == 0, f"prosodyctl failed: {r.stdout}\n{r.stderr}"
        tokens = re.findall(r"preauth=([A-Za-z0-9_-]+)", r.stdout)
        assert tokens, f"no invite URI in prosodyctl output: {r.stdout!r} {r.stderr!r}"
        return tokens[-1]

    def prosodyctl(self, *args, timeout=30):
        """prosodyctl on this server's config (works as root thanks to run_as_root)."""
        return subprocess.run(self.command(["prosodyctl", "--config", self.config, *args]),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=self.dir)

    def register_user(self, user, host=MAIN_HOST, password=None):
        password = password or secrets.token_urlsafe(12)
        r = self.prosodyctl("register", user, host, password)
        assert r.returncode == 0, f"prosodyctl register failed: {r.stdout}\n{r.stderr}"
        return f"{user}@{host}", password

    def invites_api_create_key(self, host=MAIN_HOST, name="Old key"):
        """A key made by the real `prosodyctl mod_invites_api create HOST NAME` (Prosody's
        mod_invites_api, from prosody-modules): its ID/TOKEN as printed."""
        r = self.prosodyctl("mod_invites_api", "create", host, name)
        found = [ln.strip() for ln in r.stdout.splitlines()
                 if re.fullmatch(r"[^/\s]+/\S+", ln.strip())]
        assert r.returncode == 0 and len(found) == 1, \
            f"prosodyctl mod_invites_api create printed no ID/TOKEN: {r.stdout!r} {r.stderr!r}"
        register_secret(found[0].split("/", 1)[1])
        return found[0]

    def page_url(self, token):
        return f"http://localhost:{self.http_port}/invites_page?{token}"

    def _log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def component_connections(self):
        return self._log_text().count("Incoming Jabber component connection")

    def saw_component_stream_close(self):
        return "Received </stream:stream>" in self._log_text()


class Prosody13(Prosody):
    """Prosody 13.0 from the Debian 13 tree, chrooted (the paths of its files are the
    same inside the tree: see the module doc)."""

    kind = "prosody13"
    name = "Prosody 13"
    offers_password_reset = True
    chrooted = True
    extra_base_modules = ["admin_shell"]   # prosodyctl shell (generate_invite)

    def main_host_extra(self):
        # 13's mod_invites builds the landing URL from this option only
        if not self.invite_page:
            return ""
        return (f'  invites_page = "http://localhost:{self.http_port}'
                f'/invites_page?{{invite.token}}"\n')

    def command(self, argv):
        return in_tree(argv)

    def generate_invite(self, host=MAIN_HOST):
        """13 makes invites in the running server's shell (mod_admin_shell's socket)."""
        r = self.prosodyctl("shell", "invite", "create_account", host)
        assert r.returncode == 0, f"prosodyctl shell failed: {r.stdout}\n{r.stderr}"
        found = re.findall(r"(?:invites_page\?|preauth=)([A-Za-z0-9_-]+)", r.stdout)
        assert found, f"no invite in prosodyctl shell output: {r.stdout!r} {r.stderr!r}"
        return found[-1]


# --------------------------------------------------------------------------
# ejabberd

EJABBERD_CONFIG = """\
# written by tests/integration/servers.py
loglevel: {loglevel}
log_rotate_count: 0
hosts: [{main_host}, {foreign_host}]
# SQLite storage, so that the tests can read the invites it stored
default_db: sql
sql_type: sqlite
sql_database: "{dir}/ejabberd.sqlite"
sql_schema_multihost: true   # a server_host column: one database for both hosts
auth_method: [sql]
listen:
  # max_stanza_size: as large as Prosody's limits (the default 64 KiB closes the
  # stream of test_hostile_xmpp's user, who sends 200 KB)
  - {{port: {c2s_port}, ip: "127.0.0.1", module: ejabberd_c2s, starttls: false,
     starttls_required: false, max_stanza_size: 1048576}}
  - port: {component_port}
    ip: "127.0.0.1"
    module: ejabberd_service
    max_stanza_size: 1048576
    hosts:
      {component_jid}: {{password: "{component_secret}"}}
  - port: {http_port}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers: {{/invites: mod_invites}}
acl:
  invites_component: {{server: {component_jid}}}
  invites_bot: {{user: "{invitebot}"}}
access_rules:
  create_account_invite: {{allow: invites_bot}}
  invites_component_only: {{allow: invites_component}}
modules:
  mod_adhoc: {{}}
  mod_disco: {{}}
  mod_roster: {{}}
  mod_register: {{allow_modules: [mod_invites]}}
  mod_invites: {{access_create_account: create_account_invite, landing_page: {landing_page}}}
  # XEP-0356: the component runs the invite commands as {invitebot}
  mod_privilege:
    iq:
      "http://jabber.org/protocol/commands": {{set: invites_component_only}}
      "http://jabber.org/protocol/disco#items": {{get: invites_component_only}}
"""

# ejabberdctl's own settings: a node name and distribution port of this server's
# own (no epmd), so that runs never collide with each other or a system ejabberd.
EJABBERDCTL_CONFIG = """\
ERLANG_NODE={node}
ERL_DIST_PORT={dist_port}
INET_DIST_INTERFACE=127.0.0.1
ERL_EPMD_ADDRESS=127.0.0.1
EJABBERD_BYPASS_WARNINGS=true
EJABBERD_PID_PATH={dir}/ejabberd.pid
"""


def _tree_user(name):
    """(uid, gid) of a user of the tree (its own /etc/passwd)."""
    for line in (TREE / "etc" / "passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == name:
            return int(f[2]), int(f[3])
    raise AssertionError(f"no user {name} in {TREE}/etc/passwd")


class Ejabberd(Server):
    """ejabberd 26 from the Debian 13 tree (`ejabberdctl ... foreground`, chrooted).

    ejabberdctl runs the server as the tree's ejabberd user, who cannot enter
    pytest's root-only tmp dirs: the server's files live in a directory of their
    own under /tmp (owned by that user; `directory` gets a symlink to it), removed
    when the session ends (its logs are copied to `directory`/ejabberd then).
    Storage is SQLite (ejabberd.sqlite there)."""

    kind = "ejabberd"
    name = "ejabberd 26"
    stamps_forged_from = False
    takes_username = True
    max_unexpired_invites = 1000
    foreign_host_fix = "access = privileged"
    invite_lifetime_days = 5

    def __init__(self, directory, invite_page=True, extra_modules=(), sql=False):
        super().__init__(directory)
        # under /dev/shm when the test asked for RAM (test_faults), else /tmp
        in_ram = str(self.dir).startswith("/dev/shm/")
        self.home = Path(tempfile.mkdtemp(prefix="invites-api-ejabberd-",
                                          dir="/dev/shm" if in_ram else "/tmp"))
        _EJABBERD_HOMES.append((self.home, self.dir))
        link = self.dir / "ejabberd"
        if not link.is_symlink():
            link.symlink_to(self.home)
        self.log = self.home / "log" / "ejabberd.log"
        with harness._registry_lock:
            harness.PROSODY_LOGS.extend([self.log, self.home / "log" / "error.log",
                                         self.stdout])
        self.dist_port = free_port()
        self.node = f"ejtest{secrets.token_hex(4)}@localhost"
        self.database = self.home / "ejabberd.sqlite"
        (self.home / "log").mkdir()
        (self.home / "spool").mkdir()
        (self.home / "ejabberd.yml").write_text(EJABBERD_CONFIG.format(
            dir=self.home, main_host=MAIN_HOST, foreign_host=FOREIGN_HOST,
            c2s_port=self.c2s_port, component_port=self.component_port,
            http_port=self.http_port, component_jid=self.component_jid,
            component_secret=self.component_secret, invitebot=INVITEBOT,
            landing_page="auto" if invite_page else "none",
            loglevel=os.environ.get("INVITES_API_EJABBERD_LOGLEVEL", "info")))
        (self.home / "ejabberdctl.cfg").write_text(EJABBERDCTL_CONFIG.format(
            node=self.node, dist_port=self.dist_port, dir=self.home))
        shutil.copy(TREE / "etc" / "ejabberd" / "inetrc", self.home / "inetrc")
        uid, gid = _tree_user("ejabberd")
        for path in [self.home, *self.home.rglob("*")]:
            os.chown(path, uid, gid)
        os.chmod(self.home, 0o700)

    def ejabberdctl(self, *args, timeout=60):
        return subprocess.run(self.ctl_argv(*args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def ctl_argv(self, *args):
        return in_tree(["ejabberdctl", "--config-dir", self.home, "--logs", self.home / "log",
                        "--spool", self.home / "spool", *args])

    def argv(self):
        return self.ctl_argv("foreground")

    def stored_tokens(self, host=MAIN_HOST):
        try:
            db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)
        except sqlite3.OperationalError:
            return set()
        try:
            # the host's unused invites (a used one keeps its row, with the
            # invitee's JID), as Prosody's invite_token store holds them
            rows = db.execute("SELECT token FROM invite_token WHERE server_host = ? "
                              "AND invitee = ''", (host,)).fetchall()
        except sqlite3.OperationalError:   # no table yet
            return set()
        finally:
            db.close()
        return {r[0] for r in rows}

    def register_user(self, user, host=MAIN_HOST, password=None):
        password = password or secrets.token_urlsafe(12)
        r = self.ejabberdctl("register", user, host, password)
        assert r.returncode == 0, f"ejabberdctl register failed: {r.stdout}\n{r.stderr}"
        return f"{user}@{host}", password

    def generate_invite(self, host=MAIN_HOST):
        r = self.ejabberdctl("generate_invite", host)
        assert r.returncode == 0, f"ejabberdctl generate_invite failed: {r.stdout}\n{r.stderr}"
        tokens = re.findall(r"[A-Za-z0-9_-]{16,}", r.stdout)
        assert tokens, f"no invite in ejabberdctl output: {r.stdout!r} {r.stderr!r}"
        return tokens[-1]

    def page_url(self, token):
        return f"http://localhost:{self.http_port}/invites/{token}"

    def _log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def component_connections(self):
        # Erlang's logger writes its file through a delayed-write buffer (2 s)
        time.sleep(2.5)
        return self._log_text().count("Accepted external component handshake authentication")

    def saw_component_stream_close(self):
        # Only its XML trace (loglevel debug) shows a </stream:stream>, and that
        # trace would also log the API keys the ad-hoc tests create.
        import pytest
        pytest.skip("ejabberd logs a component's </stream:stream> only in its debug XML "
                    "trace (INVITES_API_EJABBERD_LOGLEVEL=debug), which logs API keys too")

    def daemon_config_extra(self):
        # XEP-0356: ejabberd lets no component run the invite commands itself
        return f"\n[host:{MAIN_HOST}]\naccess = privileged\nact_as = {INVITEBOT}\n"


_EJABBERD_HOMES = []


@harness.atexit.register
def _remove_ejabberd_homes():
    """Keep the logs next to the test's other files, remove the rest."""
    for home, directory in _EJABBERD_HOMES:
        link = directory / "ejabberd"
        if link.is_symlink():
            link.unlink()
            shutil.copytree(home / "log", link, dirs_exist_ok=True)
        shutil.rmtree(home, ignore_errors=True)


_CHROOTED = []   # servers started in the tree


@harness.atexit.register
def _kill_chrooted_leftovers():
    """harness kills the processes it started when Python exits; a server's other
    processes (ejabberd's beam, in a session of its own) die here."""
    for server in _CHROOTED:
        if server._members():
            server._signal(signal.SIGCONT)
            server._signal(signal.SIGKILL)


if __name__ == "__main__":
    # scripts/test.sh: servers.py daemon-lacks-privileged BINARY
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "daemon-lacks-privileged":
        why = daemon_lacks_privileged(sys.argv[2])
        print(why or "supported")
        sys.exit(0 if why else 1)
    sys.exit("usage: servers.py daemon-lacks-privileged BINARY")
