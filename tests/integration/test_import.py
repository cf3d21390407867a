"""Importing the keys of Prosody's mod_invites_api (prosody-modules): real keys
made by the real `prosodyctl mod_invites_api create HOST NAME`, in Prosody's
internal storage and in a mod_storage_sql SQLite database, imported with
`invites-api import HOST PATH` (PATH: the data directory, or the store file),
then used against our daemon over HTTP.
"""

import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from datetime import datetime, timezone

import pytest

import harness
from harness import MAIN_HOST, assert_created

SUMMARY = re.compile(r"^(\d+) imported, (\d+) skipped, from (.+)$", re.M)


@pytest.fixture(scope="module")
def internal_prosody(make_module_prosody):
    return make_module_prosody(extra_modules=["invites_api"])


@pytest.fixture(scope="module")
def sql_prosody(make_module_prosody):
    return make_module_prosody(extra_modules=["invites_api"], sql=True)


def stored_created_at(prosody):
    """{id: created_at} as mod_invites_api stored them, read from Prosody's store."""
    if prosody.sql:
        db = sqlite3.connect(f"file:{prosody.sql_database}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute("SELECT key, value FROM prosody WHERE host = ? AND store = ?",
                              (MAIN_HOST, "invite_api_keys")).fetchall()
        finally:
            db.close()
        return {k: json.loads(v)["created_at"] for k, v in rows}
    # util.serialization: one top-level entry per key, opened by a line '\t["ID"] = {'
    text = prosody.store_file(MAIN_HOST, "invite_api_keys").read_text()
    found = {}
    for entry in re.split(r'^\t(?=\[")', text, flags=re.M)[1:]:
        key_id = re.match(r'\["([^"]+)"\]', entry).group(1)
        found[key_id] = int(re.search(r'\["created_at"\] = (\d+);', entry).group(1))
    return found


def iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary(r):
    m = SUMMARY.search(r.stdout)
    assert m, f"no 'N imported, M skipped' summary: {r!r}"
    return int(m.group(1)), int(m.group(2))


def assert_imported(r, old_keys, names):
    assert r.returncode == 0, f"import failed: {r!r}"
    assert summary(r) == (len(old_keys), 0), repr(r)
    for key, name in zip(old_keys, names):
        key_id, token = key.split("/", 1)
        assert f"imported {key_id} {name}" in r.stdout.splitlines(), repr(r)
        assert token not in r.stdout + r.stderr, "import printed a key's secret"


def assert_all_skipped(r, old_keys):
    assert r.returncode == 0, f"a second import must be harmless: {r!r}"
    assert summary(r) == (0, len(old_keys)), repr(r)
    for key in old_keys:
        key_id = key.split("/")[0]
        assert any(ln.startswith(f"skipped {key_id}") for ln in r.stdout.splitlines()), repr(r)


def check_import(prosody, make_instance, paths):
    """Make keys with prosodyctl mod_invites_api, import them from paths[0], again from
    every path (all skipped), into a second instance from paths[-1]; then use them."""
    names = ["Old key", "Signup page \u00fc"]
    started = time.time()
    old = [prosody.invites_api_create_key(MAIN_HOST, n) for n in names]
    # a key deleted in Prosody before the import does not come across
    gone = prosody.invites_api_create_key(MAIN_HOST, "deleted before the import")
    r = prosody.prosodyctl("mod_invites_api", "delete", MAIN_HOST, gone.split("/")[0])
    assert r.returncode == 0, f"prosodyctl mod_invites_api delete: {r.stdout} {r.stderr}"
    for path in paths:
        assert path.exists(), f"{path} was not written by prosodyctl"
    created_at = stored_created_at(prosody)
    assert set(created_at) == {k.split("/")[0] for k in old}, created_at

    inst = make_instance(prosody)
    assert_imported(inst.cli("import", MAIN_HOST, paths[0]), old, names)
    for path in paths:
        assert_all_skipped(inst.cli("import", MAIN_HOST, path), old)

    rows = inst.list_rows(MAIN_HOST)
    assert set(rows) == {k.split("/")[0] for k in old}, rows
    for key, name in zip(old, names):
        row = rows[key.split("/")[0]]
        assert row[1] == name, row
        assert row[2] == iso(created_at[row[0]]), f"created should be Prosody's created_at: {row}"
        assert started - 5 <= created_at[row[0]] <= time.time() + 5
        assert row[3:] == ["never", "never", "0", "none", "account"], row

    # the other path form imports the same keys into an empty store
    second = make_instance(name="second")
    assert_imported(second.cli("import", MAIN_HOST, paths[-1]), old, names)

    # the old ID/TOKEN works against our daemon, as ?key= and as Bearer
    inst.start()
    for key in old:
        assert_created(inst.get_invite(key), inst)
        assert_created(inst.request("POST", headers={"Authorization": "Bearer " + key}), inst)
    key_id, token = old[0].split("/", 1)
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert inst.get_invite(f"{key_id}/{wrong}").status == 401
    assert inst.get_invite(gone).status == 401

    # and it is revoked like any other key ("--": an ID may start with '-', see
    # test_an_id_starting_with_a_dash_can_be_deleted_as_listed)
    r = inst.cli("delete", MAIN_HOST, "--", key_id)
    assert r.returncode == 0, repr(r)
    assert inst.get_invite(old[0]).status == 401
    assert_created(inst.get_invite(old[1]), inst)


@pytest.mark.prosody_only("keys made by prosodyctl mod_invites_api")
def test_import_from_internal_storage(internal_prosody, make_instance):
    p = internal_prosody
    check_import(p, make_instance, [p.data, p.store_file(MAIN_HOST, "invite_api_keys")])


@pytest.mark.prosody_only("keys made by prosodyctl mod_invites_api")
def test_import_from_sqlite(sql_prosody, make_instance):
    p = sql_prosody
    check_import(p, make_instance, [p.data, p.sql_database])


def test_import_reports_a_path_without_keys(make_instance, tmp_path):
    inst = make_instance()
    empty = tmp_path / "empty-data"
    empty.mkdir()
    r = inst.cli("import", MAIN_HOST, empty)
    assert r.returncode != 0 and str(empty) in r.stderr, repr(r)
    assert inst.list_rows(MAIN_HOST) == {}


# What prosodyctl mod_invites_api create writes to internal storage (util.serialization).
PROSODY_KEYS_DAT = """return {{
\t["{id}"] = {{
\t\t["allowed_methods"] = {{
\t\t\t["POST"] = true;
\t\t\t["GET"] = true;
\t\t}};
\t\t["id"] = "{id}";
\t\t["name"] = "{name}";
\t\t["created_at"] = {created};
\t\t["token"] = "{token}";
\t}};
}};
"""


def test_an_id_starting_with_a_dash_can_be_deleted_as_listed(make_instance, tmp_path):
    """Key IDs, Prosody's (util.id.short) and ours alike, are URL-safe base64: one in
    64 starts with '-'. `delete HOST ID` must take the ID as `list` prints it. (The
    file is written here, in mod_invites_api's exact format, so the ID is known.)"""
    key_id, token = "-dashFirst01", secrets.token_urlsafe(27)
    harness.register_secret(token)
    host_dir = tmp_path / "data" / "localhost"
    host_dir.mkdir(parents=True)
    (host_dir / "invite_api_keys.dat").write_text(PROSODY_KEYS_DAT.format(
        id=key_id, name="dash first", created=int(time.time()), token=token))
    inst = make_instance()
    assert_imported(inst.cli("import", MAIN_HOST, tmp_path / "data"), [f"{key_id}/{token}"],
                    ["dash first"])
    assert key_id in inst.list_rows(MAIN_HOST)
    r = inst.cli("delete", MAIN_HOST, key_id)
    assert r.returncode == 0, f"delete of the listed ID {key_id} failed: {r!r}"
    assert key_id not in inst.list_rows(MAIN_HOST)


@contextlib.contextmanager
def _root_data_and_service_store(prefix, dat_text, config_mode):
    """Prosody's data_path as root keeps it (0700) holding localhost's
    invite_api_keys.dat (dat_text), and a key store directory of the service
    user's (nobody), in a scratch directory removed after. Yields (data_path,
    store dir, config path); the config's mode is config_mode."""
    top = tempfile.mkdtemp(prefix=prefix)
    try:
        os.chmod(top, 0o755)
        data = os.path.join(top, "pdata")
        os.makedirs(os.path.join(data, "localhost"))
        with open(os.path.join(data, "localhost", "invite_api_keys.dat"), "w") as f:
            f.write(dat_text)
        os.chmod(data, 0o700)                       # root's, like Prosody's own
        store = os.path.join(top, "store")
        os.makedirs(store)
        nobody = pwd.getpwnam("nobody")
        os.chown(store, nobody.pw_uid, nobody.pw_gid)
        cfg = os.path.join(top, "c.cfg")
        harness.write_private(cfg, (
            "[component]\njid = invites.localhost\nsecret = 0123456789abcdef0123\n"
            f"hosts = localhost\n[keys]\ndatabase = {store}/keys.sqlite\n"))
        os.chmod(cfg, config_mode)
        yield data, store, cfg
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_unreadable_prosody_data_is_reported_as_such():
    """As the service user, Prosody's data_path (0750 prosody:prosody on Debian)
    is not readable: say so, rather than that there are no keys."""
    with _root_data_and_service_store("invites-import-perm-", "return {};\n",
                                      0o644) as (data, _, cfg):
        r = subprocess.run(["runuser", "-u", "nobody", "--", harness.binary_path(), "-c", cfg,
                            "import", "localhost", data], capture_output=True, text=True,
                           timeout=20, stdin=subprocess.DEVNULL)
        assert r.returncode == 1, repr(r)
        assert "Permission denied" in r.stderr and "neither" not in r.stderr, repr(r)


def test_import_as_root_reads_as_root_and_writes_as_the_store_owner():
    """Run as root (Prosody's data is root's or prosody's): import reads it as
    root, then works as the owner of the key store's directory, so the store
    it makes is that user's; the keys verify."""
    keys = {f"rootImport{i:02d}": secrets.token_urlsafe(27) for i in range(3)}
    for token in keys.values():
        harness.register_secret(token)
    body = "".join(PROSODY_KEYS_DAT.format(id=k, name=f"n{k}", created=int(time.time()),
                                           token=t).split("\n", 1)[1].rsplit("}", 1)[0]
                   for k, t in keys.items())
    with _root_data_and_service_store("invites-import-root-", "return {\n" + body + "};\n",
                                      0o600) as (data, store, cfg):
        r = subprocess.run([harness.binary_path(), "-c", cfg, "import", "localhost", data],
                           capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        assert_imported(r, [f"{k}/{t}" for k, t in keys.items()], [f"n{k}" for k in keys])
        nobody = pwd.getpwnam("nobody")
        for name in os.listdir(store):
            st = os.stat(os.path.join(store, name))
            assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), (name, st)
        db = sqlite3.connect(f"file:{store}/keys.sqlite?mode=ro", uri=True)
        try:
            ids = {row[0] for row in db.execute("SELECT id FROM api_keys")}
        finally:
            db.close()
        assert ids == set(keys), ids
