"""The command-line interface: key management and config checking (no Prosody needed)."""

import contextlib
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

import harness
from harness import FOREIGN_HOST, KEY_RE, MAIN_HOST


@pytest.fixture
def inst(make_instance, binary):
    return make_instance()


def listed(inst, host):
    r = inst.cli("list", host)
    assert r.returncode == 0, f"list failed: {r!r}"
    rows = [ln.split("\t") for ln in r.stdout.splitlines() if ln.strip()]
    # Scripts rely on the first two columns being ID and NAME; more may follow.
    assert all(len(row) >= 2 for row in rows), f"list lines must start ID<TAB>NAME: {r!r}"
    return {row[0]: row[1] for row in rows}, r


def test_create_prints_the_key_once_as_id_slash_secret(inst):
    r = inst.cli("create", MAIN_HOST, "website")
    assert r.returncode == 0, repr(r)
    keys = [ln for ln in r.stdout.splitlines() if KEY_RE.match(ln)]
    assert len(keys) == 1, f"expected one ID/SECRET line on stdout: {r!r}"
    key_id, secret = KEY_RE.match(keys[0]).groups()
    harness.register_secret(secret)
    assert len(key_id) >= 8 and len(secret) >= 43
    assert r.stdout.count(secret) == 1 and secret not in r.stderr, repr(r)


def test_created_keys_are_distinct(inst):
    a = inst.create_key(MAIN_HOST, "a")
    b = inst.create_key(MAIN_HOST, "b")
    (id_a, sec_a), (id_b, sec_b) = KEY_RE.match(a).groups(), KEY_RE.match(b).groups()
    assert id_a != id_b and sec_a != sec_b


def test_list_shows_id_and_name_of_each_key_and_no_secret(inst):
    a = inst.create_key(MAIN_HOST, "first key")
    b = inst.create_key(MAIN_HOST, "second")
    rows, r = listed(inst, MAIN_HOST)
    id_a, sec_a = a.split("/")
    id_b, sec_b = b.split("/")
    assert rows == {id_a: "first key", id_b: "second"}, repr(r)
    assert sec_a not in r.stdout + r.stderr and sec_b not in r.stdout + r.stderr


def test_list_shows_only_the_keys_of_that_host(inst):
    a = inst.create_key(MAIN_HOST, "main")
    b = inst.create_key(FOREIGN_HOST, "foreign")
    main_rows, _ = listed(inst, MAIN_HOST)
    foreign_rows, _ = listed(inst, FOREIGN_HOST)
    assert set(main_rows) == {a.split("/")[0]}
    assert set(foreign_rows) == {b.split("/")[0]}


def test_list_of_empty_store_prints_nothing(inst):
    rows, r = listed(inst, MAIN_HOST)
    assert rows == {} and r.stdout.strip() == "", repr(r)


def test_delete_revokes_the_key(inst):
    a = inst.create_key(MAIN_HOST, "to delete")
    b = inst.create_key(MAIN_HOST, "to keep")
    r = inst.cli("delete", MAIN_HOST, a.split("/")[0])
    assert r.returncode == 0, repr(r)
    rows, _ = listed(inst, MAIN_HOST)
    assert set(rows) == {b.split("/")[0]}


def test_delete_unknown_id_fails_on_stderr(inst):
    inst.create_key(MAIN_HOST, "present")
    r = inst.cli("delete", MAIN_HOST, "AAAAAAAAAAAA")
    assert r.returncode != 0 and r.stderr.strip() and r.stdout == "", repr(r)
    assert len(listed(inst, MAIN_HOST)[0]) == 1


def test_delete_twice_fails_the_second_time(inst):
    key_id = inst.create_key(MAIN_HOST, "once").split("/")[0]
    assert inst.cli("delete", MAIN_HOST, key_id).returncode == 0
    r = inst.cli("delete", MAIN_HOST, key_id)
    assert r.returncode != 0 and r.stderr.strip() and r.stdout == "", repr(r)


def test_delete_on_a_host_not_served_fails(inst):
    key_id = inst.create_key(MAIN_HOST, "k").split("/")[0]
    r = inst.cli("delete", "not-served.example", key_id)
    assert r.returncode != 0 and r.stderr.strip() and r.stdout == "", repr(r)
    assert key_id in listed(inst, MAIN_HOST)[0], "the key must survive"


def test_delete_with_the_id_of_another_host_fails(inst):
    key_id = inst.create_key(MAIN_HOST, "k").split("/")[0]
    r = inst.cli("delete", FOREIGN_HOST, key_id)
    assert r.returncode != 0 and r.stderr.strip() and r.stdout == "", repr(r)
    assert key_id in listed(inst, MAIN_HOST)[0], "the key must survive"


def test_create_on_a_host_not_served_fails(inst):
    r = inst.cli("create", "not-served.example", "k")
    assert r.returncode != 0 and r.stderr.strip() and r.stdout == "", repr(r)
    assert not KEY_RE.search(r.stdout + r.stderr)


def test_list_on_a_host_not_served_fails(inst):
    r = inst.cli("list", "not-served.example")
    assert r.returncode != 0 and r.stderr.strip() and r.stdout == "", repr(r)


def test_create_into_a_closed_pipe_fails_and_keeps_no_key(inst):
    """A key whose printing failed was never seen: it must not stay valid."""
    before, _ = listed(inst, MAIN_HOST)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run([harness.binary_path(), "-c", str(inst.config), "create", MAIN_HOST,
                            "into a closed pipe"], stdout=write_end, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=10, text=True)
    finally:
        os.close(write_end)
    assert r.returncode == 1, f"exit {r.returncode}, stderr {r.stderr!r}"
    assert "standard output" in r.stderr
    after, _ = listed(inst, MAIN_HOST)
    assert after == before, "the unseen key stayed in the store"


def test_check_accepts_a_valid_config(inst):
    r = inst.cli("check")
    assert r.returncode == 0 and "configuration OK" in r.stdout, repr(r)


def _config_lines(inst):
    return inst.config.read_text().splitlines()


def _line_of(lines, prefix):
    for i, line in enumerate(lines):
        if line.startswith(prefix):
            return i
    raise AssertionError(f"{prefix!r} not in config")


@pytest.mark.parametrize("case", ["bad_port", "garbage_line", "bad_timeout"])
def test_check_names_file_and_line_of_a_config_error(inst, tmp_path, case):
    lines = _config_lines(inst)
    if case == "bad_port":
        i = _line_of(lines, "port =")          # [component] port
        lines[i] = "port = not-a-number"
    elif case == "garbage_line":
        i = _line_of(lines, "[http]") + 1
        lines.insert(i, "this line is neither a section nor a key-value pair")
    else:
        i = _line_of(lines, "request_timeout =")
        lines[i] = "request_timeout = soon"
    bad = tmp_path / f"{case}.cfg"
    harness.write_private(bad, "\n".join(lines) + "\n")
    r = inst.cli("check", config=bad)
    assert r.returncode != 0 and "configuration OK" not in r.stdout, repr(r)
    assert f"{bad}:{i + 1}:" in r.stderr, f"expected '{bad}:{i + 1}: ...' on stderr: {r!r}"


def test_check_fails_when_the_key_store_directory_is_missing(inst, tmp_path):
    lines = _config_lines(inst)
    i = _line_of(lines, "database =")
    lines[i] = f"database = {tmp_path}/no/such/dir/keys.sqlite"
    bad = tmp_path / "nodir.cfg"
    harness.write_private(bad, "\n".join(lines) + "\n")
    r = inst.cli("check", config=bad)
    assert r.returncode != 0 and f"{tmp_path}/no/such/dir" in r.stderr, repr(r)
    assert "configuration OK" not in r.stdout


def test_check_warns_about_a_quoted_secret_without_printing_it(inst, tmp_path):
    lines = _config_lines(inst)
    i = _line_of(lines, "secret =")
    lines[i] = 'secret = "quoted-secret-copied-from-prosody"'
    cfg = tmp_path / "quoted.cfg"
    harness.write_private(cfg, "\n".join(lines) + "\n")
    r = inst.cli("check", config=cfg)
    assert r.returncode == 0 and "in quotes" in r.stderr, repr(r)
    assert "quoted-secret-copied-from-prosody" not in r.stderr + r.stdout


def test_check_on_a_missing_file_fails(inst, tmp_path):
    missing = tmp_path / "nope.cfg"
    r = inst.cli("check", config=missing)
    assert r.returncode != 0 and str(missing) in r.stderr, repr(r)


def test_unknown_command_fails(inst):
    r = inst.cli("frobnicate")
    assert r.returncode != 0 and r.stderr.strip() and r.stdout == "", repr(r)


# -- what the CLI echoes -----------------------------------------------------------

def test_delete_with_a_pasted_id_slash_secret_never_echoes_the_secret(inst):
    key = inst.create_key(MAIN_HOST, "pasted")
    key_id, secret = key.split("/")
    for arg in (key, secret, key_id + secret):     # ID/SECRET, the secret, run together
        r = inst.cli("delete", MAIN_HOST, arg)
        assert r.returncode == 1 and r.stdout == "", repr(r)
        assert secret not in r.stderr and key_id + secret not in r.stderr, repr(r)
    r = inst.cli("delete", MAIN_HOST, key)
    assert "give the key ID, not ID/SECRET" in r.stderr, repr(r)
    r = inst.cli("delete", MAIN_HOST, secret)
    assert f"no key with that ID for host {MAIN_HOST}" in r.stderr, repr(r)
    assert key_id in listed(inst, MAIN_HOST)[0], "the key must survive"


ESCAPE = "\x1b]0;owned\x07\x1b[2J\r\x9b1m"   # set the title, clear the screen, CR, C1 CSI


def _assert_shown_escaped(r):
    assert r.returncode != 0 and r.stdout == "", repr(r)
    raw = [c for c in r.stderr if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) < 0xa0]
    assert not raw, f"control characters reached the terminal: {r.stderr!r}"
    assert "\\x1B]0;owned\\x07\\x1B[2J\\x0D" in r.stderr, repr(r)


@pytest.mark.parametrize("case", ["delete id", "delete host", "create host", "import path",
                                  "unknown command", "unknown option", "config path"])
def test_control_characters_in_arguments_are_escaped(inst, tmp_path, case):
    if case == "delete id":
        r = inst.cli("delete", MAIN_HOST, "AAAA" + ESCAPE)
        assert r.returncode == 1 and "\x1b" not in r.stderr, repr(r)
        return      # the ID is not echoed at all
    if case == "delete host":
        r = inst.cli("delete", "host" + ESCAPE, "AAAA")
    elif case == "create host":
        r = inst.cli("create", "host" + ESCAPE, "name")
    elif case == "import path":
        r = inst.cli("import", MAIN_HOST, str(tmp_path / ("prosody" + ESCAPE)))
    elif case == "unknown command":
        r = inst.cli("frob" + ESCAPE)
    elif case == "unknown option":
        r = inst.cli("list", "--x" + ESCAPE, MAIN_HOST)
    else:
        r = inst.cli("check", config=tmp_path / ("cfg" + ESCAPE))
    _assert_shown_escaped(r)


# --------------------------------------------------------------------------
# --allow: what a key may make

def _allow_column(inst, key):
    return inst.list_rows(MAIN_HOST)[key.split("/")[0]][-1]


@pytest.mark.parametrize("value, listed_as", [
    (None, "account"),
    ("account", "account"),
    ("reset", "reset"),
    ("account,reset", "account,reset"),
    ("reset,account", "account,reset"),
    ("reset,reset", "reset"),
])
def test_create_allow_is_stored_and_listed(inst, value, listed_as):
    options = () if value is None else ("--allow", value)
    key = inst.create_key(MAIN_HOST, "k", *options)
    assert _allow_column(inst, key) == listed_as
    listed = {k["id"]: k for k in inst.list_json(MAIN_HOST)}[key.split("/")[0]]
    assert listed["allow"] == listed_as.split(","), listed


def test_create_allow_with_equals_sign(inst):
    key = inst.create_key(MAIN_HOST, "k", "--allow=reset")
    assert _allow_column(inst, key) == "reset"


@pytest.mark.parametrize("value, shown", [
    ("admin", 'unknown permission "admin"'),
    ("account,admin", 'unknown permission "admin"'),
    ("Account", 'unknown permission "Account"'),
    ("account, reset", 'unknown permission " reset"'),
    ("", "empty permission"),
    ("account,", "empty permission"),
    ("\x1b[2J", 'unknown permission "\\x1B[2J"'),
])
def test_create_refuses_unknown_permissions(inst, value, shown):
    r = inst.cli("create", MAIN_HOST, "k", "--allow", value)
    assert r.returncode == 2, repr(r)
    assert shown in r.stderr and "--allow account,reset" in r.stderr, repr(r)
    assert not KEY_RE.search(r.stdout), repr(r)
    assert inst.list_rows(MAIN_HOST) == {}


def test_allow_is_given_once_and_only_to_create(inst):
    r = inst.cli("create", MAIN_HOST, "k", "--allow", "account", "--allow", "reset")
    assert r.returncode == 2 and "only one --allow" in r.stderr, repr(r)
    r = inst.cli("list", MAIN_HOST, "--allow", "reset")
    assert r.returncode == 2 and "does not take --allow" in r.stderr, repr(r)
    assert inst.list_rows(MAIN_HOST) == {}


@contextlib.contextmanager
def _scratch(prefix):
    """A directory others may enter (tmp_path is root's, 0700), removed after."""
    base = tempfile.mkdtemp(prefix=prefix)
    try:
        os.chmod(base, 0o755)
        yield Path(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _config(base, database):
    """base/c.cfg (root's, 0600) with the key store at database."""
    config = base / "c.cfg"
    harness.write_private(config, (
        "[component]\njid = invites.localhost\nsecret = 0123456789abcdef0123456789\n"
        f"hosts = localhost\n[keys]\ndatabase = {database}\n"))
    return config


def _root_run(config, *args):
    return subprocess.run([harness.binary_path(), "-c", str(config), *args],
                          capture_output=True, text=True, timeout=20)


def _as_nobody(config, *args):
    return subprocess.run(["runuser", "-u", "nobody", "--", harness.binary_path(), "-c",
                           str(config), *args], capture_output=True, text=True, timeout=20)


def _chown_to(path, user):
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _other_programs_db(directory):
    """An SQLite database of root's, not ours, in directory: (path, its bytes)."""
    other_db = directory / "other.sqlite"
    with contextlib.closing(sqlite3.connect(other_db)) as db:
        db.executescript("CREATE TABLE t(x); INSERT INTO t VALUES(1);")
    os.chmod(other_db, 0o600)
    return other_db, other_db.read_bytes()


@contextlib.contextmanager
def _nobody_running(script, *args):
    """script (python3 -c) running as nobody meanwhile; it must stop by itself."""
    proc = subprocess.Popen(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", script,
                             *map(str, args)])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _files_made_by_root_runs(config, rootonly, args, tries=150, before_each=None):
    """Run the key command args as root tries times (before_each() first, if
    given); each time, note and remove what appeared in rootonly. The (name,
    owner) of each, in all."""
    made = []
    for i in range(tries):
        if before_each is not None:
            before_each()
        r = _root_run(config, *(a.format(i=i) for a in args))
        if KEY_RE.search(r.stdout):
            harness.register_secret(r.stdout.strip().split("/")[-1])
        for f in rootonly.iterdir():
            made.append((f.name, f.lstat().st_uid))
            f.unlink()
    return made


@contextlib.contextmanager
def _store_made_by_root(dir_owner_at_create):
    """A config whose key store a key command run as root creates, in a directory
    that belongs to dir_owner_at_create, then to nobody (the service user here).
    Yields (store dir, config)."""
    with _scratch("invites-api-owner-") as base:
        store = base / "keys"
        store.mkdir()
        _chown_to(store, dir_owner_at_create)
        config = _config(base, f"{store}/keys.sqlite")
        for name in ("by root", "again by root"):   # the second writes the -wal as root
            r = _root_run(config, "create", "localhost", name)
            assert r.returncode == 0, repr(r)
            harness.register_secret(r.stdout.strip().split("/")[-1])
        _chown_to(store, "nobody")
        os.chown(config, pwd.getpwnam("nobody").pw_uid, -1)
        yield store, config


def test_a_store_root_creates_goes_to_its_directory_owner():
    """The key store made by a key command run as root, in the service user's
    directory, is the service user's with its -wal and -shm files: the service
    user can check and list it."""
    with _store_made_by_root("nobody") as (store, config):
        nobody = pwd.getpwnam("nobody")
        files = sorted(store.iterdir())
        assert store / "keys.sqlite" in files, files
        for f in files:
            st = f.stat()
            assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), (f, st)
            assert st.st_mode & 0o077 == 0, (f, oct(st.st_mode))
        for cmd in (["check"], ["list", "localhost"]):
            r = _as_nobody(config, *cmd)
            assert r.returncode == 0, repr(r)
        assert "again by root" in r.stdout, r.stdout


def test_check_as_the_service_user_names_it_in_the_chown_fix():
    """A key store left root's (made as root in root's directory, which was
    given to the service user later): check, run as the service user (here
    nobody), says the file must be that user's and names it in the chown,
    with the reason the file cannot be opened."""
    with _store_made_by_root("root") as (store, config):
        assert (store / "keys.sqlite").stat().st_uid == 0
        r = _as_nobody(config, "check")
        assert r.returncode == 1, repr(r)
        assert f"{store}/keys.sqlite: Permission denied" in r.stderr, r.stderr
        assert f"chown nobody: {store}/keys.sqlite*" in r.stderr, r.stderr


SWAPPER = r"""
import os, sys, time
svc, target, bait = sys.argv[1:4]
end = time.monotonic() + float(sys.argv[4])
while time.monotonic() < end:
    for i, dest in enumerate((target, bait)):
        tmp = os.path.join(svc, f"tmp{i}")
        try:
            os.symlink(dest, tmp)
            os.rename(tmp, os.path.join(svc, "keys.sqlite"))
        except OSError:
            pass
"""


def test_root_makes_nothing_through_a_link_of_the_service_user():
    """The service user owns the store's directory and can swap links there
    while root runs a key command: the command works as that user, so no file
    is made (let alone given away) through a link elsewhere, here in a
    root-only directory. Bounded: at most 150 tries."""
    with _scratch("invites-api-race-") as base:
        svc, rootonly = base / "svc", base / "rootonly"
        svc.mkdir()
        rootonly.mkdir()
        _chown_to(svc, "nobody")
        bait = svc / "bait"
        bait.write_text("")
        _chown_to(bait, "nobody")
        config = _config(base, f"{svc}/keys.sqlite")
        with _nobody_running(SWAPPER, svc, rootonly / "pwned", bait, 20):
            # an empty file each time, for SQLite to fill
            made = _files_made_by_root_runs(config, rootonly, ["list", "localhost"],
                                            before_each=lambda: bait.write_text(""))
        assert not made, f"files made in a root-only directory (name, owner): {made}"


def test_root_follows_no_link_the_service_user_planted():
    """A link at the store's name in the service user's directory, to a file
    of root's (an SQLite database of another program) and to a name in a
    root-only directory: a key command run as root writes neither, and says
    why it cannot open the store."""
    with _scratch("invites-api-link-") as base:
        svc, rootonly = base / "svc", base / "rootonly"
        svc.mkdir()
        rootonly.mkdir()
        _chown_to(svc, "nobody")
        other_db, before = _other_programs_db(rootonly)
        config = _config(base, f"{svc}/keys.sqlite")
        for target in (other_db, rootonly / "new.sqlite"):
            link = svc / "keys.sqlite"
            if link.is_symlink():
                link.unlink()
            os.symlink(target, link)
            r = _root_run(config, "create", "localhost", "k")
            assert r.returncode != 0 and not KEY_RE.search(r.stdout), repr(r)
            assert "Permission denied" in r.stderr or "unable to open" in r.stderr, repr(r)
        assert other_db.read_bytes() == before
        assert sorted(p.name for p in rootonly.iterdir()) == ["other.sqlite"]


def test_root_refuses_a_store_path_another_user_can_change():
    """Where the store's directory is root's but another user can change what
    the path names (the directory writable by a group, a directory above it
    owned by the service user and pointed elsewhere with a link), a key
    command run as root neither writes through their links nor stays root:
    it refuses and says as whom to run it. Nothing is written in the root-only
    directory, nor to the database there."""
    with _scratch("invites-api-path-") as base:
        rootonly = base / "rootonly"
        rootonly.mkdir()
        other_db, before = _other_programs_db(rootonly)

        # 1. root's directory, writable by a group: a link planted there
        grp_dir = base / "grp"
        grp_dir.mkdir()
        os.chown(grp_dir, 0, pwd.getpwnam("nobody").pw_gid)
        os.chmod(grp_dir, 0o770)
        os.symlink(other_db, grp_dir / "keys.sqlite")
        r = _root_run(_config(base, grp_dir / "keys.sqlite"), "create", "localhost", "k")
        assert r.returncode == 1 and not KEY_RE.search(r.stdout), repr(r)
        assert f"{grp_dir} can be changed by another user than root" in r.stderr, r.stderr
        assert "runuser -u USER" in r.stderr, r.stderr

        # 2. the service user's directory above the store's, pointed at root's
        svc = base / "svc"
        svc.mkdir()
        _chown_to(svc, "nobody")
        os.symlink(rootonly, svc / "db")
        r = _root_run(_config(base, svc / "db" / "keys.sqlite"), "list", "localhost")
        assert r.returncode == 1, repr(r)
        assert f"{svc} can be changed by another user than root" in r.stderr, r.stderr

        assert other_db.read_bytes() == before
        assert sorted(p.name for p in rootonly.iterdir()) == ["other.sqlite"]


def test_root_does_not_become_an_unnamed_owner_of_group_root():
    """A store directory owned by a uid without a user entry, group root: the
    command would keep root's group. It refuses instead."""
    with _scratch("invites-api-anon-") as base:
        anon = base / "anon"
        anon.mkdir()
        uid = 4242
        while True:
            try:
                pwd.getpwuid(uid)
                uid += 1
            except KeyError:
                break
        os.chown(anon, uid, 0)
        r = _root_run(_config(base, f"{anon}/keys.sqlite"), "create", "localhost", "k")
        assert r.returncode == 1 and not KEY_RE.search(r.stdout), repr(r)
        assert f"belongs to uid {uid}, whose group is root's" in r.stderr, r.stderr
        assert list(anon.iterdir()) == []


RENAMER = r"""
import os, sys, time
parent, name, end = sys.argv[1], sys.argv[2], time.monotonic() + float(sys.argv[3])
a, b = os.path.join(parent, "attack"), os.path.join(parent, name)
while time.monotonic() < end:
    for src, dst in ((a, b), (b, a)):
        try:
            os.rename(src, dst)
        except OSError:
            pass
"""


def test_root_does_not_go_on_when_the_store_directory_is_missing():
    """The store's directory not there yet, its parent another user's (here a
    sticky world-writable one): that user could make it meanwhile, full of
    links. A key command run as root says the directory is missing and does
    nothing, however the directory comes and goes. Bounded: 150 tries."""
    with _scratch("invites-api-missing-") as base:
        shared, rootonly = base / "shared", base / "rootonly"
        shared.mkdir()
        os.chmod(shared, 0o1777)
        rootonly.mkdir()
        attack = shared / "attack"
        subprocess.run(["runuser", "-u", "nobody", "--", "mkdir", str(attack)], check=True)
        subprocess.run(["runuser", "-u", "nobody", "--", "ln", "-s", str(rootonly / "created"),
                        str(attack / "keys.sqlite")], check=True)
        config = _config(base, f"{shared}/inv/keys.sqlite")
        r = _root_run(config, "create", "localhost", "k")
        assert r.returncode == 1 and not KEY_RE.search(r.stdout), repr(r)
        assert f"directory {shared}/inv does not exist" in r.stderr, r.stderr
        with _nobody_running(RENAMER, shared, "inv", 20):
            made = _files_made_by_root_runs(config, rootonly, ["create", "localhost", "k{i}"])
        assert not made, f"files made in a root-only directory: {made}"
