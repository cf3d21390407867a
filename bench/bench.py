#!/usr/bin/python3
"""The benchmark of issue #5: invites-api against mod_invites_api and against
Prosody's own ceiling, on one Prosody with SQLite storage. Run it through
bench/run, which builds the daemon and the load generator first.

Everything runs on loopback from a temporary directory that is removed at the
end; every child process is stopped, whatever happens.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import secrets
import select
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "localhost"
OUR_JID = "invites.localhost"
LOADGEN_JID = "loadgen.localhost"
LEVELS = (1, 8, 64)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

CHILDREN = []


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def spawn(argv, **kw):
    proc = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, **kw)
    CHILDREN.append(proc)
    return proc


def stop_children():
    for proc in reversed(CHILDREN):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def tail(path, n=20):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# --------------------------------------------------------------------------
# process accounting from /proc

def cpu_ticks(pid):
    """utime + stime of the whole process, in clock ticks (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_ns(pid):
    """CPU time of every thread, in ns (schedstat: finer than the ticks of stat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total


def ctxt_switches(pid):
    """Voluntary + involuntary context switches of every thread: wakeups."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue
        total += sum(int(v) for v in re.findall(r"^\w+_ctxt_switches:\s+(\d+)", text, re.M))
    return total


def rss_kib(pid):
    m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(m.group(1))


def rollup(pid):
    """Pss and private (dirty + clean) memory in KiB, from /proc/PID/smaps_rollup."""
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    kib = {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}
    return {"pss_kib": kib.get("Pss", 0),
            "private_kib": kib.get("Private_Dirty", 0) + kib.get("Private_Clean", 0)}


def rss_breakdown(pid):
    """RSS by kind from /proc/PID/smaps_rollup-like sums over smaps: file-backed vs
    anonymous (heap, stacks, anonymous maps), in KiB."""
    file_kib = anon_kib = 0
    kib = {}
    cur = None
    exe = os.path.realpath(f"/proc/{pid}/exe")
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            cur = parts[5] if len(parts) > 5 else "[anon]"
        elif parts and parts[0] == "Rss:":
            v = int(parts[1])
            kib[cur] = kib.get(cur, 0) + v
            if cur.startswith("/"):
                file_kib += v
            else:
                anon_kib += v
    top = sorted(kib.items(), key=lambda kv: -kv[1])[:8]
    return {"file_kib": file_kib, "anon_kib": anon_kib, "top": top,
            "exe_kib": kib.get(exe, 0), **rollup(pid)}


class Usage:
    """CPU and wakeups of a process between start() and stop()."""

    def __init__(self, pid):
        self.pid = pid

    def start(self):
        self.t0 = time.monotonic()
        self.ns0, self.ticks0, self.cs0 = cpu_ns(self.pid), cpu_ticks(self.pid), ctxt_switches(
            self.pid)
        return self

    def stop(self):
        self.seconds = time.monotonic() - self.t0
        self.cpu_s = (cpu_ns(self.pid) - self.ns0) / 1e9
        self.cpu_ticks = cpu_ticks(self.pid) - self.ticks0
        self.wakeups = ctxt_switches(self.pid) - self.cs0
        return self


# --------------------------------------------------------------------------
# CPU placement. By default Prosody (single-threaded) gets the first CPU and
# the daemon and the load tools share the others, in every measurement: the
# question is whether Prosody makes invites as fast through us as straight,
# and on a 2-CPU machine left to the scheduler our daemon and wrk run on
# Prosody's CPU part of the time, which costs Prosody CPU time per invite (a
# fact about the machine's size: 375 against 333 µs at concurrency 8 in one
# run, 329 against 321 pinned). The daemon and wrk then share one CPU on a
# 2-CPU machine while the ceiling's loadgen has it alone. --no-pin leaves
# placement to the scheduler, but in the wrong-key phase, which always gives
# the server under test the first CPU and wrk the others.

class Cpus:
    def __init__(self, pin):
        cpus = sorted(os.sched_getaffinity(0))
        self.all = cpus
        self.split = len(cpus) >= 2
        self.pin = pin and self.split
        self.server = cpus[:1] if self.split else cpus
        self.clients = cpus[1:] if self.split else cpus

    def home(self, role):
        """Where a process of role 'server' (Prosody) or 'clients' lives normally."""
        return (self.server if role == "server" else self.clients) if self.pin else self.all

    def taskset(self, cpus):
        return ["taskset", "-c", ",".join(map(str, cpus))] if cpus != self.all else []

    def prefix(self, role):
        return self.taskset(self.home(role))

    def move(self, pid, cpus):
        if self.split:
            subprocess.run(["taskset", "-a", "-p", "-c", ",".join(map(str, cpus)), str(pid)],
                           check=True, capture_output=True)


# --------------------------------------------------------------------------
# the setup: one Prosody, our daemon, the tools

PROSODY_CONFIG = """\
-- written by bench/bench.py
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
daemonize = false
run_as_root = true
modules_enabled = {{ "disco", "adhoc", "invites", "invites_adhoc", "invites_register",
                    "http", "invites_page", "invites_api" }}
modules_disabled = {{ "s2s", "tls" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s_port} }}
c2s_interfaces = {{ "127.0.0.1" }}
http_ports = {{ {http_port} }}
http_interfaces = {{ "127.0.0.1" }}
https_ports = {{ }}
component_ports = {{ {component_port} }}
component_interfaces = {{ "127.0.0.1" }}
storage = "sql"
sql = {{ driver = "SQLite3", database = "prosody.sqlite" }}
log = {{ warn = "{dir}/prosody.log" }}

VirtualHost "{host}"
  admins = {{ "{our_jid}", "{loadgen_jid}" }}

Component "{our_jid}"
  component_secret = "{our_secret}"

-- used only by bench/loadgen, for the ceiling
Component "{loadgen_jid}"
  component_secret = "{loadgen_secret}"
"""

DAEMON_CONFIG = """\
; written by bench/bench.py
[component]
jid = {jid}
secret = {secret}
server = 127.0.0.1
port = {component_port}
hosts = {host}

[http]
bind = 127.0.0.1
port = {http_port}
path = /invites_api
max_connections = {max_connections}
; the held connections of the memory measurement must outlive the request deadline
request_deadline = 3600
{throttling}

[keys]
database = {dir}/keys/keys.sqlite
"""

# Throttling off: the wrong-key figures measure refusing a key, not the 429 of
# throttling (every load tool here connects from 127.0.0.1).
THROTTLING_OFF = "auth_failure_burst = 0"
# The defaults, behind a trusted proxy (127.0.0.1, the load tools): the
# flooder names itself with X-Forwarded-For, as a reverse proxy would, so
# that it is throttled and the invite load is not.
THROTTLING_DEFAULT = "trusted_proxies = 127.0.0.1"
FLOODER_ADDRESS = "198.51.100.7"

# The largest connection limit the daemon accepts (http/http.c, src/config.c).
# The connections held open for the memory measurement, and the daemon's limit.
CONNECTIONS = 1000
MAX_CONNECTIONS = 1100
# Connections of the wrong-key load (the daemon allows 64 per client address).
WRONG_KEY_CONNS = 32

WRK_SCRIPT = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "status_errors": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class Bench:
    def __init__(self, args):
        self.args = args
        # Prosody's SQLite on tmpfs by default: on disk every invite waits for
        # an fsync, and the disk, not Prosody or us, sets the pace.
        base = None if args.disk or not os.path.isdir("/dev/shm") else "/dev/shm"
        self.dir = Path(tempfile.mkdtemp(prefix="invites-bench-", dir=base))
        self.cpus = Cpus(not args.no_pin)
        self.binary = args.binary
        self.loadgen_bin = args.loadgen
        self.floor_bin = args.floor
        self.results = {"rounds": []}
        self.prosody = self.daemon = None

    # -- Prosody ------------------------------------------------------------

    def start_prosody(self):
        (self.dir / "data").mkdir()
        (self.dir / "certs").mkdir()
        # The key store in a directory of its own, as the sample configuration
        # has it: the daemon watches that directory, and a log written beside
        # the store would wake it at every flush.
        (self.dir / "keys").mkdir()
        self.p_c2s, self.p_http, self.p_comp = free_port(), free_port(), free_port()
        self.our_secret = secrets.token_urlsafe(24)
        self.loadgen_secret = secrets.token_urlsafe(24)
        self.prosody_cfg = self.dir / "prosody.cfg.lua"
        # Prosody writes what it has to send once its loop has handled all it
        # read, unless opportunistic_writes is on (net/server_epoll.lua):
        # --opportunistic-writes measures what that costs a front with a hop.
        network = ("network_settings = { opportunistic_writes = true }\n"
                   if self.args.opportunistic_writes else "")
        self.prosody_cfg.write_text(network + PROSODY_CONFIG.format(
            dir=self.dir, c2s_port=self.p_c2s, http_port=self.p_http,
            component_port=self.p_comp, host=HOST, our_jid=OUR_JID, loadgen_jid=LOADGEN_JID,
            our_secret=self.our_secret, loadgen_secret=self.loadgen_secret))
        out = open(self.dir / "prosody.stdout", "ab")
        self.prosody = spawn(self.cpus.prefix("server") +
                             ["prosody", "--config", str(self.prosody_cfg), "-F"],
                             stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        out.close()

        def ready():
            if self.prosody.poll() is not None:
                raise BenchError(f"Prosody exited with {self.prosody.returncode}:\n"
                                 f"{tail(self.dir / 'prosody.stdout')}\n"
                                 f"{tail(self.dir / 'prosody.log')}")
            return port_accepts(self.p_comp) and port_accepts(self.p_http)
        wait_until(ready, 20, "Prosody's ports")
        log(f"Prosody {self.prosody.pid} up (http {self.p_http}, component {self.p_comp})")

    def prosodyctl(self, *args):
        return subprocess.run(["prosodyctl", "--config", str(self.prosody_cfg), *args],
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, cwd=self.dir)

    def make_mod_key(self):
        r = self.prosodyctl("mod_invites_api", "create", HOST, "bench")
        found = [ln.strip() for ln in r.stdout.splitlines()
                 if re.fullmatch(r"[^/\s]+/\S+", ln.strip())]
        if r.returncode != 0 or len(found) != 1:
            raise BenchError(f"prosodyctl mod_invites_api create failed: {r.stdout} {r.stderr}")
        self.mod_key = found[0]

    def stored_invites(self):
        db = sqlite3.connect(f"file:{self.dir}/data/prosody.sqlite?mode=ro", uri=True,
                             timeout=10)
        try:
            return db.execute("SELECT count(*) FROM prosody WHERE host = ? AND store = ?",
                              (HOST, "invite_token")).fetchone()[0]
        finally:
            db.close()

    # -- our daemon ---------------------------------------------------------

    def start_daemon(self, throttling=THROTTLING_OFF, wrapper=()):
        self.d_http = free_port()
        self.daemon_cfg = self.dir / "component.cfg"
        self.daemon_cfg.write_text(DAEMON_CONFIG.format(
            jid=OUR_JID, secret=self.our_secret, component_port=self.p_comp, host=HOST,
            http_port=self.d_http, max_connections=MAX_CONNECTIONS, dir=self.dir,
            throttling=throttling))
        os.chmod(self.daemon_cfg, 0o600)
        r = subprocess.run([self.binary, "-c", str(self.daemon_cfg), "create", HOST, "bench"],
                           capture_output=True, text=True, timeout=30)
        keys = [ln for ln in r.stdout.splitlines() if re.fullmatch(r"[^/\s]+/\S+", ln)]
        if r.returncode != 0 or len(keys) != 1:
            raise BenchError(f"invites-api create failed: {r.stdout} {r.stderr}")
        self.our_key = keys[0]
        self.daemon_log = self.dir / "daemon.log"
        seen = self.daemon_log.stat().st_size if self.daemon_log.exists() else 0
        err = open(self.daemon_log, "ab")
        self.daemon = spawn(self.cpus.prefix("clients") + list(wrapper) +
                            [self.binary, "-c", str(self.daemon_cfg), "serve"],
                            stdout=err, stderr=err)
        err.close()

        def connected():
            if self.daemon.poll() is not None:
                raise BenchError(f"invites-api exited with {self.daemon.returncode}:\n"
                                 f"{tail(self.daemon_log)}")
            return "connected to" in self.daemon_log.read_text(errors="replace")[seen:]
        wait_until(connected, 60 if wrapper else 20, "invites-api to connect to Prosody")
        log(f"invites-api {self.daemon.pid} up (http {self.d_http})")

    def restart_daemon(self, throttling):
        self.daemon.terminate()
        self.daemon.wait(timeout=10)
        if self.daemon.returncode != 0:
            raise BenchError(f"invites-api exited with {self.daemon.returncode}: "
                             f"{tail(self.daemon_log)}")
        self.start_daemon(throttling)
        self.run_wrk(self.url("ours", self.our_key), 1, 1)   # first-use costs

    # -- URLs ---------------------------------------------------------------

    def url(self, who, key):
        port = self.p_http if who == "mod" else self.d_http
        return f"http://127.0.0.1:{port}/invites_api?key={key}"

    @staticmethod
    def wrong(key):
        kid, secret = key.split("/", 1)
        return f"{kid}/{'A' * len(secret)}"

    # -- tools --------------------------------------------------------------

    def wrk(self, url, conns, seconds, nice=False, placed=False, headers=()):
        script = self.dir / "wrk.lua"
        if not script.exists():
            script.write_text(WRK_SCRIPT)
        threads = max(1, min(conns, len(self.cpus.clients)))
        cpus = self.cpus.taskset(self.cpus.clients) if placed else self.cpus.prefix("clients")
        extra = [arg for h in headers for arg in ("-H", h)]
        argv = (["nice", "-n", "19"] if nice else []) + cpus + [
            "wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--timeout", "10s",
            "-H", f"Host: {HOST}", *extra, "-s", str(script), url]
        return argv

    def run_wrk(self, url, conns, seconds, expect_ok=True, placed=False):
        r = subprocess.run(self.wrk(url, conns, seconds, placed=placed), capture_output=True,
                           text=True,
                           timeout=seconds + 60)
        return self.parse_wrk(r, expect_ok)

    @staticmethod
    def parse_wrk(r, expect_ok):
        m = re.search(r"^BENCHJSON (\{.*\})$", r.stdout, re.M)
        if r.returncode != 0 or not m:
            raise BenchError(f"wrk failed ({r.returncode}): {r.stdout}\n{r.stderr}")
        w = json.loads(m.group(1))
        secs = w["duration_us"] / 1e6
        ok = w["requests"] - w["status_errors"]
        sock_errors = w["connect"] + w["read"] + w["write"] + w["timeout"]
        if expect_ok and (w["status_errors"] or sock_errors):
            raise BenchError(f"wrk saw failures (status {w['status_errors']}, "
                             f"socket {sock_errors}) out of {w['requests']}: {r.stdout}")
        return {"rate": (ok if expect_ok else w["requests"]) / secs, "count": ok,
                "requests": w["requests"], "p50_ms": w["p50_us"] / 1000,
                "p99_ms": w["p99_us"] / 1000, "errors": w["status_errors"],
                "socket_errors": sock_errors, "seconds": secs}

    def run_loadgen(self, inflight, seconds):
        argv = self.cpus.prefix("clients") + [
            self.loadgen_bin, "--port", str(self.p_comp), "--jid", LOADGEN_JID,
            "--secret", self.loadgen_secret, "--host", HOST, "--inflight", str(inflight),
            "--duration", str(seconds), "--warmup", "1"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        if r.returncode != 0 or not r.stdout.strip():
            raise BenchError(f"loadgen failed ({r.returncode}): {r.stdout}\n{r.stderr}")
        g = json.loads(r.stdout.strip().splitlines()[-1])
        if g["errors"]:
            raise BenchError(f"loadgen: Prosody refused commands: {r.stderr}")
        return {"rate": g["rate"], "count": g["completed"], "p50_ms": g["p50_us"] / 1000,
                "p99_ms": g["p99_us"] / 1000, "seconds": g["seconds"]}

    def measure(self, what, level, seconds):
        """One measurement with Prosody's and our daemon's CPU time around it."""
        pu, du = Usage(self.prosody.pid).start(), Usage(self.daemon.pid).start()
        if what == "ceiling":
            res = self.run_loadgen(level, seconds)
        else:
            key = self.mod_key if what == "mod" else self.our_key
            res = self.run_wrk(self.url(what, key), level, seconds)
        pu.stop(), du.stop()
        res["prosody_cpu"] = pu.cpu_s / pu.seconds
        res["daemon_cpu"] = du.cpu_s / du.seconds
        res["daemon_cpu_us_per_invite"] = du.cpu_s * 1e6 / res["count"] if res["count"] else 0
        return res

    # -- the phases ---------------------------------------------------------

    def idle(self, seconds):
        time.sleep(2)   # let the start settle
        u = Usage(self.daemon.pid).start()
        time.sleep(seconds)
        u.stop()
        rss = rss_kib(self.daemon.pid)
        log(f"idle {u.seconds:.0f}s: {u.cpu_s * 1000:.2f} ms CPU ({u.cpu_ticks} ticks), "
            f"{u.wakeups} wakeups, RSS {rss} KiB")
        return {"seconds": u.seconds, "cpu_ms": u.cpu_s * 1000, "cpu_ticks": u.cpu_ticks,
                "wakeups": u.wakeups, "wakeups_per_s": u.wakeups / u.seconds, "rss_kib": rss,
                "rss": rss_breakdown(self.daemon.pid)}

    def floor(self):
        """RSS of bench/floor: the daemon's libraries started the same way, no
        invites-api code. Placed like the daemon, measured after the same wait."""
        proc = spawn(self.cpus.prefix("clients") +
                     [self.floor_bin, str(self.dir / "floor.sqlite")],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = proc.stdout.readline()
            if line.strip() != b"ready":
                raise BenchError(f"bench/floor failed: {line!r} {proc.stderr.read()!r}")
            time.sleep(2)
            res = {"rss_kib": rss_kib(proc.pid), "rss": rss_breakdown(proc.pid)}
        finally:
            proc.kill()
            proc.wait()
        log(f"library floor: RSS {res['rss_kib']} KiB")
        return res

    def throughput(self, rounds, seconds):
        order = ["ceiling", "mod", "ours"]
        for r in range(rounds):
            rnd = {}
            for level in LEVELS:
                for what in order[r % 3:] + order[:r % 3]:   # rotate: no one always goes first
                    res = self.measure(what, level, seconds)
                    rnd[f"{what}/{level}"] = res
                    log(f"round {r + 1} c={level:<2} {what:8} {res['rate']:8.1f}/s "
                        f"p50 {res['p50_ms']:.2f} ms p99 {res['p99_ms']:.2f} ms "
                        f"(Prosody CPU {res['prosody_cpu'] * 100:.0f}%, "
                        f"ours {res['daemon_cpu'] * 100:.0f}%)")
            self.results["rounds"].append(rnd)

    def wrong_keys(self, rounds, seconds, conns=WRONG_KEY_CONNS):
        """Answers per second to a wrong key, alternately, `rounds` times each.
        Each server in turn gets the first core (Prosody for mod_invites_api,
        then our daemon, then bench/floor; the others are idle meanwhile), wrk
        the others."""
        runs = {"mod": [], "ours": [], "floor": []}
        floor_port = free_port()
        floor = spawn(self.cpus.taskset(self.cpus.server) +
                      [self.floor_bin, str(self.dir / "floor.sqlite"), str(floor_port)],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if floor.stdout.readline().strip() != b"ready":
            raise BenchError(f"bench/floor failed: {floor.stderr.read()!r}")
        for _ in range(rounds):
            self.cpus.move(self.prosody.pid, self.cpus.server)
            try:
                u = Usage(self.prosody.pid).start()
                res = self.run_wrk(self.url("mod", self.wrong(self.mod_key)), conns, seconds,
                                   expect_ok=False, placed=True)
                u.stop()
            finally:
                self.cpus.move(self.prosody.pid, self.cpus.home("server"))
            res["server_cpu_us_per_answer"] = u.cpu_s * 1e6 / res["requests"]
            runs["mod"].append(res)
            self.cpus.move(self.daemon.pid, self.cpus.server)
            try:
                u = Usage(self.daemon.pid).start()
                res = self.run_wrk(self.url("ours", self.wrong(self.our_key)), conns, seconds,
                                   expect_ok=False, placed=True)
                u.stop()
                res["server_cpu_us_per_answer"] = u.cpu_s * 1e6 / res["requests"]
                runs["ours"].append(res)
            finally:
                self.cpus.move(self.daemon.pid, self.cpus.home("clients"))
            u = Usage(floor.pid).start()
            res = self.run_wrk(f"http://127.0.0.1:{floor_port}/invites_api?key="
                               f"{self.wrong(self.our_key)}", conns, seconds, expect_ok=False,
                               placed=True)
            u.stop()
            res["server_cpu_us_per_answer"] = u.cpu_s * 1e6 / res["requests"]
            runs["floor"].append(res)
            for who in ("mod", "ours", "floor"):
                res = runs[who][-1]
                if res["errors"] != res["requests"] or res["socket_errors"]:
                    raise BenchError(f"wrong key: expected only refusals from {who}: {res}")
                log(f"wrong key {who:5} {res['rate']:9.0f}/s p50 {res['p50_ms']:.2f} ms, "
                    f"{res['server_cpu_us_per_answer']:.0f} µs CPU each")
        # The HTTP hop alone at concurrency 1, placed like the invite runs (server and
        # wrk on the client CPUs): part of what any HTTP front adds to the ceiling.
        self.cpus.move(floor.pid, self.cpus.home("clients"))
        hop = {"floor": self.run_wrk(f"http://127.0.0.1:{floor_port}/invites_api?key="
                                     f"{self.wrong(self.our_key)}", 1, seconds,
                                     expect_ok=False),
               "ours": self.run_wrk(self.url("ours", self.wrong(self.our_key)), 1, seconds,
                                    expect_ok=False)}
        floor.kill()
        floor.wait()
        log(f"HTTP hop at concurrency 1: floor p50 {hop['floor']['p50_ms']:.2f} ms, "
            f"ours (wrong key) {hop['ours']['p50_ms']:.2f} ms")
        self.results["wrong_key"] = runs
        self.results["hop"] = hop

    def under_flood(self, what, level, seconds, flood_argv):
        """measure(what, level) while a second wrk floods our daemon with wrong keys;
        returns (measurement, wrong keys answered per second)."""
        flooder = spawn(flood_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2)   # the flood is at full speed before the measurement starts
            fu = Usage(flooder.pid).start()
            load0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            res = self.measure(what, level, seconds)
            load1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            fu.stop()
            # CPU shares during the measurement: the flooder's, and the invite
            # load tool's (wrk or loadgen, the child reaped meanwhile)
            res["flooder_cpu"] = fu.cpu_s / fu.seconds
            res["load_cpu"] = ((load1.ru_utime + load1.ru_stime) -
                               (load0.ru_utime + load0.ru_stime)) / fu.seconds
            out, err = flooder.communicate(timeout=seconds + 60)
        finally:
            if flooder.poll() is None:
                flooder.kill()
                flooder.wait()
        flood = self.parse_wrk(subprocess.CompletedProcess(flood_argv, flooder.returncode,
                                                           out, err), expect_ok=False)
        return res, flood["rate"]

    def flood(self, rounds, seconds, level=8):
        """Our invites at `level` with and without a wrong-key flood (a second wrk,
        at the lowest CPU priority: on a real server the flood's CPU is not ours),
        and the ceiling likewise: on one machine the flood takes CPU from everyone,
        the ceiling's drop shows how much of ours is that alone."""
        flood_argv = self.wrk(self.url("ours", self.wrong(self.our_key)), WRONG_KEY_CONNS,
                              seconds + 4, nice=True)
        runs = []
        for _ in range(rounds):
            run = {"quiet": self.measure("ours", level, seconds)}
            run["flood"], run["flood_rate"] = self.under_flood("ours", level, seconds,
                                                               flood_argv)
            run["ceiling_quiet"] = self.measure("ceiling", level, seconds)
            run["ceiling_flood"], _ = self.under_flood("ceiling", level, seconds, flood_argv)
            runs.append(run)
            log(f"flood: ours {run['quiet']['rate']:.1f}/s quiet, {run['flood']['rate']:.1f}/s "
                f"under {run['flood_rate']:.0f} wrong keys/s; ceiling "
                f"{run['ceiling_quiet']['rate']:.1f} -> {run['ceiling_flood']['rate']:.1f}")
        self.results["flood"] = {"level": level, "runs": runs}

    def flood_throttled(self, rounds, seconds, level=8):
        """The same flood against the daemon as configured by default (failed
        authentications throttled per client), the flooder at an address of its
        own (X-Forwarded-For through the trusted proxy 127.0.0.1), the invite
        load at 127.0.0.1. The flood gets 429s, each held a second."""
        self.restart_daemon(THROTTLING_DEFAULT)
        flood_argv = self.wrk(self.url("ours", self.wrong(self.our_key)), WRONG_KEY_CONNS,
                              seconds + 4, nice=True,
                              headers=[f"X-Forwarded-For: {FLOODER_ADDRESS}"])
        runs = []
        try:
            for _ in range(rounds):
                run = {"quiet": self.measure("ours", level, seconds)}
                run["flood"], run["flood_rate"] = self.under_flood("ours", level, seconds,
                                                                   flood_argv)
                runs.append(run)
                log(f"flood, throttled: ours {run['quiet']['rate']:.1f}/s quiet, "
                    f"{run['flood']['rate']:.1f}/s under {run['flood_rate']:.0f} answers/s")
        finally:
            self.restart_daemon(THROTTLING_OFF)
        self.results["flood_throttled"] = {"level": level, "runs": runs}

    def connections(self, count):
        """RSS with `count` open HTTP connections, spread over source addresses
        127.0.0.2... (the daemon allows 64 per client address), on a daemon
        started afresh for each of two kinds: connections with a request begun
        (headers not finished: what a slow or idle client holds) and kept-alive
        connections that have had a request each (a 401: libmicrohttpd has
        zeroed their whole memory pool by then)."""
        self.results["connections"] = {}
        for kind in ("begun", "kept_alive"):
            self.restart_daemon(THROTTLING_OFF)
            time.sleep(1)
            before = rss_kib(self.daemon.pid)
            request = (b"GET /invites_api?key=" + self.wrong(self.our_key).encode() +
                       b" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n")
            if kind == "kept_alive":
                request += b"\r\n"
            socks = []
            try:
                for i in range(count):
                    s = socket.socket()
                    s.bind((f"127.0.0.{2 + i // 60}", 0))
                    s.connect(("127.0.0.1", self.d_http))
                    s.sendall(request)
                    socks.append(s)
                answered = 0
                if kind == "kept_alive":
                    for s in socks:
                        s.settimeout(10)
                        answered += s.recv(65536).startswith(b"HTTP/1.1 401 ")
                time.sleep(2)
                # each connection must still be open: the daemon closes refused ones
                poller = select.poll()   # select() stops at descriptor 1023
                for s in socks:
                    poller.register(s, select.POLLIN)
                closed = len(poller.poll(0))
                during = rss_kib(self.daemon.pid)
                smaps = rss_breakdown(self.daemon.pid)
            finally:
                for s in socks:
                    s.close()
            time.sleep(1)
            after = rss_kib(self.daemon.pid)
            log(f"{kind}: {count - closed}/{count} connections open ({answered} answered): "
                f"RSS {before} -> {during} KiB, {after} KiB after")
            if closed:
                raise BenchError(f"{kind}: {closed} of {count} connections were closed")
            if kind == "kept_alive" and answered != count:
                raise BenchError(f"kept alive: only {answered} of {count} requests answered")
            self.results["connections"][kind] = {
                "count": count, "rss_before_kib": before,
                "per_connection_kib": (during - before) / count, "rss_kib": during,
                "rss_after_kib": after, "rss": smaps}

    def profile(self, seconds, level=8):
        """Where the daemon's instructions go per invite: the daemon restarted under
        callgrind, which counts instructions (the same count whatever else the
        machine does), counters zeroed after a warm-up, then `seconds` of invites
        from wrk at `level`. Inclusive counts of the entry points and of what
        libstrophe and libmicrohttpd do on every invite."""
        if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
            log("profile: valgrind not found, skipped")
            return
        self.daemon.terminate()
        self.daemon.wait(timeout=10)
        out = self.dir / "callgrind.out"
        self.start_daemon(THROTTLING_OFF, wrapper=[
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
        try:
            self.run_wrk(self.url("ours", self.our_key), 1, 2)   # first-use costs
            pid = self.daemon.pid
            subprocess.run(["callgrind_control", "-z", str(pid)], check=True,
                           capture_output=True, timeout=30)
            res = self.run_wrk(self.url("ours", self.our_key), level, seconds)
            subprocess.run(["callgrind_control", "-d", str(pid)], check=True,
                           capture_output=True, timeout=30)
            dumps = sorted(self.dir.glob("callgrind.out.*"), key=lambda f: f.stat().st_mtime)
            if not dumps:
                raise BenchError("callgrind wrote no dump")
            self.results["profile"] = {"invites": res["count"], "level": level,
                                       **callgrind_breakdown(dumps[-1])}
            log(f"profile: {res['count']} invites, "
                f"{self.results['profile']['total'] / res['count']:,.0f} instructions each")
        finally:
            self.restart_daemon(THROTTLING_OFF)

    def cleanup(self):
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
        stop_children()
        if self.args.keep:
            log(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def run(self):
        a = self.args
        self.start_prosody()
        self.make_mod_key()
        self.start_daemon()
        log(f"CPUs: Prosody on {self.cpus.server}, daemon and load tools on {self.cpus.clients}"
            if self.cpus.pin else "CPUs: not pinned (but in the wrong-key phase)"
            if self.cpus.split else "CPUs: one, nothing pinned")
        self.results["cpus"] = {"pin": self.cpus.pin, "server": self.cpus.server,
                                "clients": self.cpus.clients}
        self.results["idle"] = self.idle(a.idle)
        self.results["floor"] = self.floor()
        # one invite through each path before measuring (first-use costs)
        for who, key in (("mod", self.mod_key), ("ours", self.our_key)):
            self.run_wrk(self.url(who, key), 1, 1)
        self.throughput(a.rounds, a.duration)
        self.wrong_keys(a.wrong_rounds, a.duration)
        self.flood(a.wrong_rounds, a.duration)
        self.flood_throttled(a.wrong_rounds, a.duration)
        self.results["cpu_after_load"] = self.idle(min(a.idle, 10))
        self.profile(min(a.duration, 10))
        self.connections(CONNECTIONS)
        self.results["stored_invites"] = self.stored_invites()
        self.daemon.terminate()
        self.daemon.wait(timeout=10)
        if self.daemon.returncode != 0:
            raise BenchError(f"invites-api exited with {self.daemon.returncode}: "
                             f"{tail(self.daemon_log)}")
        return self.results


# --------------------------------------------------------------------------
# callgrind

CG_LINE = re.compile(r"^\s*([\d,]+) \([ \d.]+%\)\s+(\*|<|>)?\s*(.*?)(?: \([\d,]+x\))?"
                     r"\s*(?:\[(.*)\])?$")


def callgrind_breakdown(dump):
    """Instruction counts from a callgrind dump: the total, inclusive counts of
    named functions, and for a few functions their callers (--tree=caller)."""
    def annotate(*opts):
        return subprocess.run(["callgrind_annotate", "--threshold=100", *opts, str(dump)],
                              capture_output=True, text=True, check=True, timeout=120).stdout

    inclusive = {}
    total = 0
    for line in annotate("--inclusive=yes").splitlines():
        m = CG_LINE.match(line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        name = m.group(3)
        if name == "PROGRAM TOTALS":
            total = n
            continue
        func = name.rsplit(":", 1)[-1]
        obj = Path(m.group(4) or "").name
        inclusive[(func, obj)] = max(n, inclusive.get((func, obj), 0))

    # callers of a few functions: blocks of "< caller" lines, then "* function"
    callers = {}
    block = []
    for line in annotate("--tree=caller").splitlines():
        m = CG_LINE.match(line)
        if not m:
            block = []
            continue
        n, mark_, name, obj = int(m.group(1).replace(",", "")), m.group(2), m.group(3), \
            Path(m.group(4) or "").name
        func = name.rsplit(":", 1)[-1]
        if mark_ == "<":
            block.append((func, obj, n))
        elif mark_ == "*":
            callers[(func, obj)] = block
            block = []

    def incl(func, obj_prefix):
        return max([n for (f, o), n in inclusive.items() if f == func and
                    o.startswith(obj_prefix)] or [0])

    def called_from(func, obj_prefix, caller_obj_prefix, exclude=()):
        got = 0
        for (f, o), block in callers.items():
            if f == func and o.startswith(obj_prefix):
                got += sum(n for cf, co, n in block
                           if co.startswith(caller_obj_prefix) and cf not in exclude)
        return got

    strophe_recv_text = called_from("xmpp_stanza_to_text", "libstrophe", "libstrophe",
                                    exclude=("xmpp_send",))
    return {
        "total": total,
        "component_run": incl("component_run", "invites-api"),
        "http_api_run": incl("http_api_run", "invites-api"),
        "strophe_recv_to_text": strophe_recv_text,
        "strophe_send": incl("xmpp_send", "libstrophe"),
        "mhd_memset": sum(called_from(f, "libc", "libmicrohttpd")
                          for f in {f for f, o in callers if f.startswith("__memset")}),
        "on_access": incl("on_access", "invites-api"),
        "requests_handle_iq": incl("requests_handle_iq", "invites-api"),
    }


# --------------------------------------------------------------------------
# the report

def machine_facts():
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)
    pkgs = {}
    for p in ("prosody", "prosody-modules", "lua-dbi-sqlite3", "libstrophe0", "libmicrohttpd12",
              "libsqlite3-0", "wrk"):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", p], capture_output=True,
                           text=True)
        pkgs[p] = r.stdout.strip() or "?"
    load = Path("/proc/loadavg").read_text().split()[:3]
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "memory_gib": round(int(mem) / 1048576, 1), "packages": pkgs, "loadavg": load}


def median(values):
    return statistics.median(values) if values else 0


def fmt(v, digits=1):
    return f"{v:,.{digits}f}"


def mark(ok):
    return "yes" if ok else "**no**"


def report(results, facts, run):
    rounds = results["rounds"]
    args = argparse.Namespace(**run)
    pin_desc, started, elapsed = run["pin_desc"], run["started"], run["elapsed"]

    def med(what, level, field):
        return median([r[f"{what}/{level}"][field] for r in rounds])

    # Ratios are taken within each round (the three measurements of a level run
    # back to back), then the median over rounds: the machine's pace drifts
    # between rounds (see "Every run"), and a ratio of medians taken from
    # different rounds would compare different machines.
    def paired(a, b, level, field="rate"):
        xs = [r[f"{a}/{level}"][field] / r[f"{b}/{level}"][field] for r in rounds]
        return median(xs), min(xs), max(xs)

    def span(t, digits=2, unit="x"):
        return f"{t[0]:.{digits}f}{unit} ({t[1]:.{digits}f}-{t[2]:.{digits}f})"

    hop_ms = results["hop"]["floor"]["p50_ms"]

    def bound(level):
        """The most any HTTP front can reach of the ceiling at `level`, per round:
        at concurrency 1 each invite is one ceiling round trip plus one HTTP round
        trip (bench/floor's, which does nothing); under load the hop overlaps."""
        xs = [r[f"ceiling/{level}"]["p50_ms"] / (r[f"ceiling/{level}"]["p50_ms"] + hop_ms)
              for r in rounds]
        return median(xs), min(xs), max(xs)

    rows = []
    add = rows.append
    add("| measurement | mod_invites_api | ours | ceiling | ours / mod_invites_api "
        "| ours / ceiling | target | met |")
    add("|---|---:|---:|---:|---:|---:|---|---|")
    def of_bound(level):
        """ours / ceiling as a share of bound(level), per round."""
        xs = [r[f"ours/{level}"]["rate"] / r[f"ceiling/{level}"]["rate"] /
              (r[f"ceiling/{level}"]["p50_ms"] / (r[f"ceiling/{level}"]["p50_ms"] + hop_ms))
              for r in rounds]
        return median(xs), min(xs), max(xs)

    for level in LEVELS:
        m, o, c = (med(w, level, "rate") for w in ("mod", "ours", "ceiling"))
        om, oc, cm = paired("ours", "mod", level), paired("ours", "ceiling", level), \
            paired("ceiling", "mod", level)
        # A limit is what no component could beat: the ceiling below
        # mod_invites_api, or (at concurrency 1, where nothing overlaps) the
        # HTTP hop alone taking more than 5% of the round trip. Otherwise the
        # verdict only says where the ceiling stands.
        # Each missed part of the target has a limit when no component could
        # meet it: the ceiling below mod_invites_api, or (at concurrency 1,
        # where nothing overlaps) an HTTP hop that does nothing already taking
        # more than 5% of the ceiling's round trip. "limit" only when every
        # missed part has one.
        limit, open_parts = [], []
        if om[0] < 1.0:
            why = f"the ceiling itself is {cm[0]:.2f}x mod_invites_api"
            (limit if cm[0] < 1.0 else open_parts).append(why)
        if oc[0] < 0.95:
            if level == 1 and bound(level)[0] < 0.95:
                limit.append(f"an HTTP hop alone allows {span(bound(level))} of the "
                             f"ceiling, ours made {of_bound(level)[0]:.2f} of that")
            else:
                open_parts.append(f"ours made {oc[0]:.3f}x of the ceiling")
        ok = om[0] >= 1.0 and oc[0] >= 0.95
        verdict = (mark(ok) if ok else
                   f"**no**; limit: {'; '.join(limit)}" if not open_parts else
                   f"**no** ({'; '.join(open_parts + limit)})")
        add(f"| invites/s, concurrency {level} | {fmt(m)} | {fmt(o)} | {fmt(c)} "
            f"| {span(om)} | {span(oc)} | >= 1.0x and >= 0.95x | {verdict} |")
    for level in LEVELS:
        cm = paired("ceiling", "mod", level)
        add(f"| ceiling / mod_invites_api, concurrency {level}: Prosody's ad-hoc route "
            f"against its HTTP route | | | | {span(cm)} | | | |")
    add(f"| most an HTTP front can reach, concurrency 1: ceiling round trip / (ceiling "
        f"round trip + HTTP floor round trip {hop_ms:.3f} ms) | | ours: {span(of_bound(1))} of "
        f"it | | | {span(bound(1))} | | |")
    for level in LEVELS:
        m, o, c = (med(w, level, "p50_ms") for w in ("mod", "ours", "ceiling"))
        xs = [r[f"ours/{level}"]["p50_ms"] - r[f"ceiling/{level}"]["p50_ms"] for r in rounds]
        d = median(xs)
        add(f"| p50 latency ms, concurrency {level} | {fmt(m, 2)} | {fmt(o, 2)} | {fmt(c, 2)} "
            f"| | {d:+.2f} ms ({min(xs):+.2f} to {max(xs):+.2f}) | added < 1 ms "
            f"| {mark(d < 1)} |")
    hop = results["hop"]
    add(f"| HTTP round trip p50 ms, concurrency 1, no Prosody | | {hop['ours']['p50_ms']:.2f} "
        f"(wrong key; HTTP floor: {hop['floor']['p50_ms']:.2f}) | | | | | |")
    for level in LEVELS:
        m, o, c = (med(w, level, "p99_ms") for w in ("mod", "ours", "ceiling"))
        add(f"| p99 latency ms, concurrency {level} | {fmt(m, 2)} | {fmt(o, 2)} | {fmt(c, 2)} "
            f"| | {o - c:+.2f} ms | | |")
    wk = results["wrong_key"]
    wm, wo, wf = (median([r["rate"] for r in wk[who]]) for who in ("mod", "ours", "floor"))
    wrong_ok = wo >= 20 * wm
    add(f"| wrong-key answers/s | {fmt(wm, 0)} | {fmt(wo, 0)} (HTTP floor: {fmt(wf, 0)}) | "
        f"| {wo / wm:.1f}x | | >= 20x | "
        f"{mark(wrong_ok) if wrong_ok else f'**no** (the HTTP floor, a fixed 401 and no work, is {wf / wm:.1f}x; ours made {wo / wf:.2f} of its rate)'} |")
    cm, co, cf = (median([r["server_cpu_us_per_answer"] for r in wk[who]])
                  for who in ("mod", "ours", "floor"))
    add(f"| CPU per wrong-key answer µs | {cm:.0f} | {co:.0f} (HTTP floor: {cf:.0f}) | "
        f"| {cm / co:.1f}x fewer | | | |")
    fl = results["flood"]
    fq, ff, cq, cf, frate = (median([r[k]["rate"] if k != "flood_rate" else r[k]
                                     for r in fl["runs"]])
                             for k in ("quiet", "flood", "ceiling_quiet", "ceiling_flood",
                                       "flood_rate"))
    pq, pf = (median([r[k]["prosody_cpu"] for r in fl["runs"]]) for k in ("quiet", "flood"))
    # Where the CPU went under the flood, on the CPU(s) the daemon shares with
    # the load tools (pinned), in shares of one CPU.
    budget = ""
    if all("flooder_cpu" in r["flood"] for r in fl["runs"]):
        dc, fc, lc = (median([r["flood"][k] for r in fl["runs"]])
                      for k in ("daemon_cpu", "flooder_cpu", "load_cpu"))
        cpus = results.get("cpus", {})
        where = (f"on CPU {','.join(map(str, cpus['clients']))}, which they share"
                 if cpus.get("pin") else "unpinned")
        budget = (f"; under it, {where}: our daemon {dc * 100:.0f}%, the flooder "
                  f"{fc * 100:.0f}%, the invites' wrk {lc * 100:.0f}%")
    flood_ok = ff >= 0.9 * fq
    add(f"| invites/s under a wrong-key flood, throttling off ({fmt(frate, 0)} answers/s), "
        f"concurrency {fl['level']} | | {fmt(ff)} (quiet {fmt(fq)}; Prosody's CPU "
        f"{pq * 100:.0f}% -> {pf * 100:.0f}%) | {fmt(cf)} (quiet {fmt(cq)}) "
        f"| | {ff / fq:.2f}x of quiet (ceiling: {cf / cq:.2f}x) | >= 0.9x of quiet "
        f"| {mark(flood_ok) if flood_ok else f'**no** (a flood answered as fast as it comes takes the CPU our daemon has{budget}; the ceiling, which does not go through us, went to {cf / cq:.2f}x under the same flood; as configured by default, next row)'} |")
    ft = results.get("flood_throttled")
    if ft:
        tq, tf, trate = (median([r[k]["rate"] if k != "flood_rate" else r[k]
                                 for r in ft["runs"]])
                         for k in ("quiet", "flood", "flood_rate"))
        add(f"| invites/s under a wrong-key flood from another address, default throttling "
            f"({fmt(trate, 0)} answers/s, 429s), concurrency {ft['level']} | | {fmt(tf)} "
            f"(quiet {fmt(tq)}) | | | {tf / tq:.2f}x of quiet | >= 0.9x of quiet "
            f"| {mark(tf >= 0.9 * tq)} |")
    idle = results["idle"]
    tick_ms = 1000 / CLK_TCK   # the unit of /proc/PID/stat
    add(f"| idle CPU over {idle['seconds']:.0f} s | | {idle['cpu_ms']:.2f} ms "
        f"({idle['cpu_ticks']} ticks of {tick_ms:.0f} ms) | | | | none measurable: under one "
        f"tick | {mark(idle['cpu_ms'] < tick_ms)} |")
    add(f"| idle wakeups/s | | {idle['wakeups_per_s']:.2f} | | | | <= ~2 "
        f"| {mark(idle['wakeups_per_s'] <= 2)} |")
    fl_rss = results["floor"]["rss_kib"]
    exe_kib = idle["rss"].get("exe_kib", 0)
    rss_ok = idle["rss_kib"] < 8 * 1024
    rss_why = (f"**no**; limit: the libraries alone take {fl_rss / 1024:.2f} MiB, leaving "
               f"{max(0, 8 * 1024 - fl_rss):,} KiB for a program; our executable's own pages "
               f"are {exe_kib:,} KiB" if not rss_ok and fl_rss + exe_kib >= 8 * 1024
               else mark(rss_ok))
    add(f"| RSS idle, MiB | | {idle['rss_kib'] / 1024:.2f} (libraries alone: "
        f"{fl_rss / 1024:.2f}) | | | | < 8 | {rss_why} |")
    cn = results["connections"]
    for kind, what in (("begun", "each with a request begun"),
                       ("kept_alive", "kept alive after a request each")):
        c = cn[kind]
        add(f"| RSS with {c['count']:,} open connections {what}, MiB | "
            f"| {c['rss_kib'] / 1024:.1f} ({c['per_connection_kib']:.1f} KiB each) | | | "
            f"| < 32 with 1,000 | {mark(c['count'] >= 1000 and c['rss_kib'] < 32 * 1024)} |")
    def prosody_us(what, level):
        return median([r[f"{what}/{level}"]["prosody_cpu"] * 1e6 / r[f"{what}/{level}"]["rate"]
                       for r in rounds])

    for level in LEVELS:
        us = med("ours", level, "daemon_cpu_us_per_invite")
        add(f"| CPU per invite µs, concurrency {level}: Prosody's (+ our daemon's) "
            f"| {prosody_us('mod', level):.0f} | {prosody_us('ours', level):.0f} (+ {us:.0f}) "
            f"| {prosody_us('ceiling', level):.0f} | | | | |")

    prof = results.get("profile")
    profile_text = ""
    if prof:
        n, tot = prof["invites"], prof["total"]

        def prow(label, key):
            v = prof[key]
            return f"| {label} | {v / n:,.0f} | {v * 100 / tot:.0f}% |"

        profile_text = "\n".join([
            f"## Where the daemon's instructions go",
            "",
            f"callgrind on the daemon (instruction counts: the same whatever else the "
            f"machine does) over {n:,} invites at concurrency {prof['level']}, counted after "
            f"a warm-up. Counts are inclusive: a row includes the rows indented under it.",
            "",
            "| where | instructions per invite | share |",
            "|---|---:|---:|",
            f"| the whole daemon | {tot / n:,.0f} | 100% |",
            prow("receiving from Prosody (`component_run`: libstrophe reads, expat parses, "
                 "handlers run)", "component_run"),
            prow("&nbsp;&nbsp;libstrophe turning each received stanza back into text for "
                 "a debug line, which our log handler then drops (`_handle_stream_stanza` in "
                 "its conn.c does it for every stanza, whatever the log level, in 0.12.2 as "
                 "in its master)", "strophe_recv_to_text"),
            prow("&nbsp;&nbsp;our handling of Prosody's answer (`requests_handle_iq`: the "
                 "form read, the HTTP answer queued)", "requests_handle_iq"),
            prow("HTTP (`http_api_run`: libmicrohttpd, our request handling, the command "
                 "sent)", "http_api_run"),
            prow("&nbsp;&nbsp;libmicrohttpd zeroing the connection's 20 KiB memory after "
                 "each request (`MHD_pool_reset`; callgrind counts each byte of `rep stosb` "
                 "as an instruction, so this row overstates its time)", "mhd_memset"),
            prow("&nbsp;&nbsp;our request handling (`on_access`: the key checked, the "
                 "command built and queued)", "on_access"),
            prow("&nbsp;&nbsp;&nbsp;&nbsp;libstrophe turning our command into text "
                 "(`xmpp_send`)", "strophe_send"),
        ]) + "\n"

    detail = ["| run | concurrency | invites/s | p50 ms | p99 ms | Prosody CPU | our CPU |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for i, rnd in enumerate(rounds, 1):
        for level in LEVELS:
            for what in ("ceiling", "mod", "ours"):
                r = rnd[f"{what}/{level}"]
                detail.append(f"| round {i} {what} | {level} | {fmt(r['rate'])} "
                              f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                              f"| {r['prosody_cpu'] * 100:.0f}% | {r['daemon_cpu'] * 100:.0f}% |")
    for i, r in enumerate(fl["runs"], 1):
        for k in ("quiet", "flood", "ceiling_quiet", "ceiling_flood"):
            detail.append(f"| flood {i} {k.replace('_', ' ')} | {fl['level']} "
                          f"| {fmt(r[k]['rate'])} | {r[k]['p50_ms']:.2f} | {r[k]['p99_ms']:.2f} "
                          f"| {r[k]['prosody_cpu'] * 100:.0f}% | {r[k]['daemon_cpu'] * 100:.0f}% |")
    for i, r in enumerate((ft or {}).get("runs", []), 1):
        for k in ("quiet", "flood"):
            detail.append(f"| throttled flood {i} {k} | {ft['level']} "
                          f"| {fmt(r[k]['rate'])} | {r[k]['p50_ms']:.2f} | {r[k]['p99_ms']:.2f} "
                          f"| {r[k]['prosody_cpu'] * 100:.0f}% | {r[k]['daemon_cpu'] * 100:.0f}% |")
    for who in ("mod", "ours", "floor"):
        for i, r in enumerate(wk[who], 1):
            detail.append(f"| wrong key {i} {who} | {WRONG_KEY_CONNS} | {fmt(r['rate'], 0)} "
                          f"answers | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | | |")

    def top(rss):
        return ", ".join(f"{Path(n).name or n} {k:,}" for n, k in rss["top"][:6])

    f = facts
    pk = ", ".join(f"{k} {v}" for k, v in f["packages"].items())
    after = results["cpu_after_load"]
    return f"""# Benchmark results

Written by `bench/run{' --quick' if args.quick else ''}` on {started} UTC in {elapsed:.0f} s.
Machine: {f['cpu']}, {f['cores']} cores, {f['memory_gib']} GiB, Linux {f['kernel']};
load average at the start {' '.join(f['loadavg'])}. Packages: {pk}.
One Prosody with SQLite storage (`mod_storage_sql`, the database on
{'disk' if args.disk else 'tmpfs'}) for every measurement; {args.rounds} round(s) of
{args.duration} s per measurement, in rotating order, medians shown.
{pin_desc}

{chr(10).join(rows)}

- **Ceiling**: `bench/loadgen`, a libstrophe component keeping N create-account
  commands in flight straight to Prosody (N = the concurrency level); round trip
  from send to reply. mod_invites_api and ours: wrk, N connections, keep-alive;
  every answer checked to be a `201`.
- **Wrong keys**: an existing key ID with a wrong secret, {WRONG_KEY_CONNS} connections;
  each server on a core of its own, wrk on the other(s). The HTTP floor is `bench/floor
  PORT`: one libmicrohttpd thread answering a fixed 401 with no key lookup and no log,
  under the same wrk: the most this machine and one wrk thread make of it. CPU per answer:
  the server's CPU time over the run divided by the answers.
- **Flood**: a second wrk ({WRONG_KEY_CONNS} connections, `nice 19`) sends wrong keys
  to our daemon during the measurement; the ceiling is measured under the same flood.
  First with throttling off (every wrong key is looked up and refused with a 401:
  what a flood costs at worst), then with the daemon as configured by default
  (failed authentications throttled per client address), the flooder at an
  address of its own (`X-Forwarded-For: {FLOODER_ADDRESS}` through the trusted
  proxy 127.0.0.1, as behind nginx), the invite load at 127.0.0.1: after its
  first 10 guesses the flooder gets only `429`s, each held a second.
- **Memory**: RSS from `/proc/PID/status`. Idle: RSS {idle['rss_kib']:,} KiB, of which
  {idle['rss']['file_kib']:,} KiB are file-backed (shared library pages), Pss
  {idle['rss']['pss_kib']:,} KiB, private {idle['rss']['private_kib']:,} KiB; largest
  mappings (KiB): {top(idle['rss'])}. `bench/floor` (the same libraries started the same
  way, no invites-api code): RSS {fl_rss:,} KiB; largest: {top(results['floor']['rss'])}.
- **Connections**: {cn['begun']['count']:,} held open from several loopback source
  addresses (the daemon allows 64 per address), on a daemon started afresh for each
  kind. With a request begun (headers not finished): RSS
  {cn['begun']['rss_before_kib']:,} -> {cn['begun']['rss_kib']:,} KiB, Pss
  {cn['begun']['rss']['pss_kib']:,} KiB; {cn['begun']['rss_after_kib']:,} KiB once they
  closed. Kept alive after one request each (a `401`; libmicrohttpd zeroes a
  connection's whole 20 KiB memory pool after every request, so each holds all of
  it): RSS {cn['kept_alive']['rss_before_kib']:,} -> {cn['kept_alive']['rss_kib']:,} KiB,
  Pss {cn['kept_alive']['rss']['pss_kib']:,} KiB; {cn['kept_alive']['rss_after_kib']:,} KiB
  once they closed.
- After the load: {after['cpu_ms']:.2f} ms CPU over {after['seconds']:.0f} s idle,
  {after['wakeups_per_s']:.2f} wakeups/s, RSS {after['rss_kib']:,} KiB. Prosody stored
  {results['stored_invites']:,} invites in all.

{profile_text}
## Every run

{chr(10).join(detail)}
"""


def raise_fd_limit(need):
    """This process holds CONNECTIONS sockets at once; the soft limit is often 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"bench: the open file limit is {hard}; {need} are needed (ulimit -n)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", help="invites-api (bench/run passes it)")
    ap.add_argument("--loadgen", help="bench/loadgen, built (bench/run passes it)")
    ap.add_argument("--floor", help="bench/floor, built (bench/run passes it)")
    ap.add_argument("--json", help="also write every measurement to this file")
    ap.add_argument("--quick", action="store_true", help="short durations, for development")
    ap.add_argument("--duration", type=int, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, help="rounds of the throughput measurements")
    ap.add_argument("--idle", type=int, help="seconds of the idle measurement")
    ap.add_argument("--no-pin", action="store_true",
                    help="leave CPU placement to the scheduler (by default Prosody has the "
                         "first CPU, everything else the others)")
    ap.add_argument("--opportunistic-writes", action="store_true",
                    help="Prosody with network_settings opportunistic_writes = true (not its "
                         "default): it then sends each answer at once, not after all it read")
    ap.add_argument("--disk", action="store_true",
                    help="keep Prosody's data in /tmp (on disk) rather than /dev/shm")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--out", default=str(Path(__file__).parent / "RESULTS.md"))
    ap.add_argument("--from-json", metavar="FILE",
                    help="measure nothing: write the report of a run saved with --json")
    a = ap.parse_args()
    if a.from_json:
        saved = json.loads(Path(a.from_json).read_text())
        Path(a.out).write_text(report(saved["results"], saved["facts"], saved["run"]))
        log(f"wrote {a.out} from {a.from_json}")
        return 0
    if not (a.binary and a.loadgen and a.floor):
        ap.error("--binary, --loadgen and --floor are needed to measure")
    a.duration = a.duration or (3 if a.quick else 6)
    a.rounds = a.rounds or (1 if a.quick else 5)
    a.wrong_rounds = 1 if a.quick else 3
    a.idle = a.idle or (5 if a.quick else 30)

    for tool in ("prosody", "prosodyctl", "wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} not found (scripts/deps.sh bench installs it)")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    t0 = time.monotonic()
    facts = machine_facts()
    raise_fd_limit(CONNECTIONS + 256)
    bench = Bench(a)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    try:
        results = bench.run()
        pin_desc = (f"Prosody (single-threaded) pinned to CPU {bench.cpus.server[0]}; our "
                    f"daemon, wrk and loadgen to CPU(s) {','.join(map(str, bench.cpus.clients))}."
                    if bench.cpus.pin else
                    "No process pinned to a CPU (`--no-pin`), but in the wrong-key phase."
                    if bench.cpus.split else
                    "One CPU: no process pinned, every one shares it.")
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        if bench.daemon is not None:
            print(f"--- daemon log\n{tail(bench.daemon_log)}", file=sys.stderr)
        print(f"--- prosody log\n{tail(bench.dir / 'prosody.log')}", file=sys.stderr)
        return 1
    finally:
        bench.cleanup()
    if a.opportunistic_writes:
        pin_desc += (" Prosody with `opportunistic_writes = true` (`--opportunistic-writes`; "
                     "not its default).")
    run = {"quick": a.quick, "rounds": a.rounds, "duration": a.duration, "disk": a.disk,
           "pin_desc": pin_desc, "started": started, "elapsed": time.monotonic() - t0}
    text = report(results, facts, run)
    Path(a.out).write_text(text)
    print(text)
    if a.json:
        Path(a.json).write_text(json.dumps({"facts": facts, "results": results, "run": run},
                                           indent=1, default=str))
    log(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
