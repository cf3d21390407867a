"""Fixtures for the invites-api integration tests.

Scopes: one Prosody (and one daemon connected to it) per test module for the
request/response tests; tests that kill, stop or restart Prosody get their own
Prosody and daemon (function scope), so no test depends on another's order.
Only one daemon may be connected per Prosody at a time (a second connection
for the same component JID is refused with a conflict).
"""

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.register_assert_rewrite("harness", "servers")

import harness  # noqa: E402
import servers  # noqa: E402


def _require_binary():
    path = harness.binary_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"invites-api binary not found at {path} (set INVITES_API, or build with "
                    f"`meson setup /tmp/build-int /work/main && ninja -C /tmp/build-int`)",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def binary():
    path = _require_binary()
    if servers.KIND == "ejabberd":
        why = servers.daemon_lacks_privileged(path)
        if why:
            pytest.fail(f"INVITES_API_SERVER=ejabberd: {why}", pytrace=False)
    return path


def pytest_report_header(config):
    problem = servers.tree_problem()
    return f"XMPP server: {servers.KIND}" + (f" (unusable: {problem})" if problem else "")


def _terminated(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    # SIGTERM (scripts/test.sh ending a run in the background) is taken as
    # Ctrl-C: fixtures are torn down and the exit handlers kill what is left,
    # so no daemon or server outlives the run.
    signal.signal(signal.SIGTERM, _terminated)
    config.addinivalue_line(
        "markers", "prosody_only(reason): needs Prosody itself (prosodyctl, its config or "
        "its storage); skipped on ejabberd")


def pytest_collection_modifyitems(config, items):
    for item in items:
        mark = item.get_closest_marker("prosody_only")
        if mark is not None and servers.KIND == "ejabberd":
            reason = mark.args[0] if mark.args else "needs Prosody"
            item.add_marker(pytest.mark.skip(reason=f"Prosody only: {reason}"))


@pytest.fixture(scope="session", autouse=True)
def usable_server():
    """The server INVITES_API_SERVER names can run here; every test fails with the
    reason otherwise (scripts/test.sh checks the tree first and skips the run)."""
    problem = servers.tree_problem()
    if problem:
        pytest.fail(f"INVITES_API_SERVER={servers.KIND}: {problem}", pytrace=False)


def _finish_server(p):
    """Teardown of a server: nothing is checked at that point, and ejabberd's
    graceful stop takes about 2 s (there are dozens of them): it is killed."""
    if servers.KIND != "ejabberd":
        p.stop()
    p.kill()


def _start_prosody(directory, **kw):
    """The session's server (see servers.py), started. The fixtures keep their
    Prosody names: the default server is Prosody, and the tests read the same."""
    p = servers.make_server(directory, **kw)
    p.start()
    return p


@pytest.fixture(scope="module")
def prosody(tmp_path_factory):
    p = _start_prosody(tmp_path_factory.mktemp("prosody"))
    yield p
    _finish_server(p)


@pytest.fixture
def fresh_prosody(tmp_path):
    """A server of this test's own, which the test may kill, stop or restart."""
    p = _start_prosody(tmp_path / "prosody")
    yield p
    _finish_server(p)


def _finish_daemon(inst):
    """Teardown of a daemon: SIGTERM must make it exit 0 within a few seconds,
    and its log must not contain any secret the run has seen."""
    if inst.proc is None:
        return
    if inst.prosody is not None and inst.prosody.stopped:
        inst.prosody.cont()
    already_exited = inst.proc.poll() is not None
    try:
        code = inst.terminate(timeout=5)
    finally:
        inst.kill()
    leaked = harness.secrets_in_logs([inst.log, inst.stdout_log])
    assert not leaked, f"daemon log contains secrets: {leaked}"
    if not already_exited:
        assert code == 0, f"daemon exited with {code} on SIGTERM\n{inst.describe()}"


def _instance_factory(directory):
    made = []

    def make(prosody=None, name=None, **kw):
        inst = harness.Instance(directory / (name or f"instance{len(made)}"), prosody, **kw)
        made.append(inst)
        return inst

    yield make
    errors = []
    for inst in made:
        try:
            _finish_daemon(inst)
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture
def make_instance(tmp_path, binary):
    """Factory: make_instance(prosody=..., **config) -> harness.Instance (not started).
    Every daemon started from one is stopped (and checked) at teardown."""
    yield from _instance_factory(tmp_path)


@pytest.fixture(scope="module")
def make_module_instance(tmp_path_factory, binary):
    """make_instance for instances shared by the tests of a module (same checks at
    the module's teardown)."""
    yield from _instance_factory(tmp_path_factory.mktemp("instances"))


@pytest.fixture(scope="module")
def make_module_prosody(tmp_path_factory):
    """Factory: make_module_prosody(**kw) -> a started server (servers.make_server) shared by the
    tests of a module (kw: invite_page, extra_modules, sql)."""
    started = []

    def make(**kw):
        p = _start_prosody(tmp_path_factory.mktemp("prosody"), **kw)
        started.append(p)
        return p

    yield make
    for p in started:
        _finish_server(p)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, prosody, binary):
    """A running daemon connected to the module's Prosody, with one key for localhost
    (daemon.key) and one for other.localhost (daemon.foreign_key)."""
    inst = harness.Instance(tmp_path_factory.mktemp("daemon"), prosody)
    inst.key = inst.create_key(harness.MAIN_HOST, "main key")
    inst.foreign_key = inst.create_key(harness.FOREIGN_HOST, "foreign key")
    try:
        inst.start()
    except BaseException:
        inst.kill()
        raise
    yield inst
    _finish_daemon(inst)


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_daemon_log():
    """Session-wide check, after every test: every log of the run (daemon logs,
    Prosody logs, CLI stderr) grepped for every key secret and component secret
    the run registered."""
    yield
    leaked = harness.secrets_in_logs()
    assert not leaked, ("secrets found in the run's logs (log, secret): " + repr(leaked))


@pytest.fixture(scope="session", autouse=True)
def no_wrapper_errors():
    """With INVITES_API_WRAPPER=valgrind...: no daemon or CLI run reported an
    error or a definite leak."""
    yield
    found = harness.wrapper_errors()
    assert not found, "valgrind found errors:\n" + "\n\n".join(
        f"--- {path}\n{text}" for path, text in found)
