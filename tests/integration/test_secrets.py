"""The component secret in a file of its own (secret_file), files that hold
secrets refused when others can read them, and no secret in error bodies or
process titles. (conftest.py ends the session with a grep of every log the
run wrote, daemons, Prosody and CLI stderr, for every secret it registered.)"""

import grp
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

import harness
from harness import MAIN_HOST, register_secret, secrets


def serve_fails(inst):
    """Run serve, which must exit 1 at once; its stderr."""
    r = subprocess.run([harness.binary_path(), "-c", str(inst.config), "serve"],
                       capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, f"serve should have refused to start: {r!r}"
    with open(inst.cli_stderr, "a") as f:   # grepped for secrets at the end
        f.write(r.stderr)
    assert not harness.port_accepts(inst.http_port)
    return r.stderr


def test_secret_file_with_a_trailing_newline_connects(prosody, make_instance):
    inst = make_instance(prosody, secret_file=True)
    assert inst.secret_file.read_text() == inst.component_secret + "\n"
    assert inst.component_secret not in inst.config.read_text()
    key = inst.create_key(MAIN_HOST, "secret file")
    r = inst.cli("check")
    assert r.returncode == 0 and "configuration OK" in r.stdout, repr(r)
    inst.start()
    harness.assert_created(inst.get_invite(key), inst)


def test_a_wrong_secret_in_the_file_is_not_logged(prosody, make_instance):
    wrong = secrets.token_urlsafe(24)
    register_secret(wrong)
    inst = make_instance(prosody, secret_file=True)
    harness.write_private(inst.secret_file, wrong + "\n")
    inst.start(wait_connected=False)
    inst.wait_log("rejected the component secret")
    assert wrong not in inst.log_text()


SECRET_FILE_ERRORS = {
    "empty": ("", "is empty"),
    "only a newline": ("\n", "is empty"),
    "two lines": ("first-line\nsecond-line\n", "more than one line"),
    "missing": (None, "No such file or directory"),
}


@pytest.mark.parametrize("case", sorted(SECRET_FILE_ERRORS))
def test_unusable_secret_file_is_refused(make_instance, case):
    inst = make_instance(secret_file=True)
    content, expected = SECRET_FILE_ERRORS[case]
    if content is None:
        inst.secret_file.unlink()
    else:
        harness.write_private(inst.secret_file, content)
    r = inst.cli("check")
    assert r.returncode == 1 and expected in r.stderr, repr(r)
    assert f"secret_file {inst.secret_file}" in r.stderr, repr(r)
    assert "-line" not in r.stderr   # never the content
    stderr = serve_fails(inst)
    assert expected in stderr and "-line" not in stderr, stderr
    # the key commands do not need the secret
    assert inst.cli("list", MAIN_HOST).returncode == 0


def test_secret_and_secret_file_together_are_refused(make_instance):
    inst = make_instance(secret_file=True)
    text = inst.config.read_text().replace(
        "secret_file =", f"secret = {inst.component_secret}\nsecret_file =")
    harness.write_private(inst.config, text)
    r = inst.cli("check")
    assert r.returncode == 1 and "both secret and secret_file" in r.stderr, repr(r)
    assert inst.component_secret not in r.stderr


EXPOSED = {
    # case: (file, mode, group, what the message says)
    "config readable by all": ("config", 0o644, None, "can be read by every user (mode 0644)"),
    "config writable by all": ("config", 0o602, None, "can be changed by every user"),
    "config writable by its group": ("config", 0o660, None, "can be changed by its group"),
    "config readable by a foreign group": ("config", 0o640, "nogroup",
                                           "can be read by group nogroup"),
    "secret_file readable by all": ("secret", 0o644, None, "can be read by every user"),
}


@pytest.mark.parametrize("case", sorted(EXPOSED))
def test_files_others_can_read_are_refused(make_instance, case):
    inst = make_instance(secret_file=(case.startswith("secret")))
    which, mode, group, expected = EXPOSED[case]
    path = inst.config if which == "config" else inst.secret_file
    os.chmod(path, mode)
    if group is not None:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    # Root is not the service: it is told to run as the service user, not to
    # chmod 600 a file the service's group may need (config_files.c).
    fix = ("which root is not in: run this as the service user"
           if group is not None and os.geteuid() == 0
           else f"fix with: chmod 600 {path}" if group is not None
           else f"fix with: chmod o-rwx,g-w {path}")

    r = inst.cli("check")
    assert r.returncode == 1 and expected in r.stderr and fix in r.stderr, repr(r)
    assert "configuration OK" not in r.stdout
    stderr = serve_fails(inst)
    assert expected in stderr and fix in stderr, stderr

    # key commands only warn (revoking a key must not wait for a chmod)
    key = inst.create_key(MAIN_HOST, "exposed")
    r = inst.cli("list", MAIN_HOST)
    assert r.returncode == 0 and key.split("/")[0] in r.stdout, repr(r)
    assert "warning:" in r.stderr and fix in r.stderr, repr(r)
    r = inst.cli("delete", MAIN_HOST, key.split("/")[0])
    assert r.returncode == 0 and "warning:" in r.stderr, repr(r)

    os.chmod(path, 0o600)   # the fix the message gives works
    r = inst.cli("check")
    assert r.returncode == 0 and r.stderr == "", repr(r)


def posix_acl(*entries):
    """system.posix_acl_access bytes (Linux posix_acl_xattr: le32 version 2,
    then le16 tag, le16 perm, le32 id per entry, sorted by tag)."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


def test_config_with_an_acl_granting_others_is_refused(make_instance):
    """chmod 600 plus `setfacl -m u:nobody:r`: the mode shows -rw-r-----+ and
    nobody can read the file; check and serve refuse it."""
    inst = make_instance()
    path = inst.config
    nobody = 65534
    owner = 0xFFFFFFFF   # ACL_UNDEFINED_ID
    try:
        os.setxattr(path, "system.posix_acl_access",
                    posix_acl((0x01, 6, owner), (0x02, 4, nobody), (0x04, 0, owner),
                              (0x10, 4, owner), (0x20, 0, owner)))
    except OSError as e:
        pytest.skip(f"no POSIX ACLs on this filesystem: {e}")
    assert os.stat(path).st_mode & 0o777 == 0o640    # the mask shows as group bits
    expected = (f"config file {path} has an access control list (ACL) granting access to "
                f"others: it holds a secret; fix with: setfacl -b {path}")

    r = inst.cli("check")
    assert r.returncode == 1 and expected in r.stderr, repr(r)
    assert "configuration OK" not in r.stdout
    assert expected in serve_fails(inst)

    os.removexattr(path, "system.posix_acl_access")   # what setfacl -b does here
    os.chmod(path, 0o600)
    r = inst.cli("check")
    assert r.returncode == 0 and r.stderr == "", repr(r)


def test_group_readable_for_the_services_own_group_is_accepted(prosody, make_instance):
    """root:<our group> 0640 (e.g. root:invites-api) is how a config is shared
    with a service that must not change it."""
    inst = make_instance(prosody, secret_file=True)
    for path in (inst.config, inst.secret_file):
        os.chown(path, -1, os.getegid())
        os.chmod(path, 0o640)
    r = inst.cli("check")
    assert r.returncode == 0 and r.stderr == "", repr(r)
    inst.start()


def _proc_text(pid, name):
    return Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b" ").decode(errors="replace")


@pytest.mark.parametrize("secret_file", [False, True], ids=["secret", "secret_file"])
def test_no_secret_in_error_bodies_or_the_process_title(prosody, make_instance, secret_file):
    inst = make_instance(prosody, secret_file=secret_file)
    key = inst.create_key(MAIN_HOST, "title")
    key_id, secret = key.split("/")
    wrong = secrets.token_urlsafe(32)
    register_secret(wrong)
    inst.start()

    title = _proc_text(inst.proc.pid, "cmdline") + " " + _proc_text(inst.proc.pid, "comm")
    assert "invites-api" in title and "serve" in title, title
    for s in (inst.component_secret, secret):
        assert s not in title, f"a secret is in the process title: {title!r}"

    calls = [
        dict(query=f"key={key_id}/{wrong}"),                          # 401
        dict(query=f"key={key_id}{secret}"),                          # malformed
        dict(query=f"key={key}&redirect=maybe"),                      # 400
        dict(query=f"key={key}", headers={"Authorization": f"Bearer {key_id}/{wrong}"}),
        dict(query=f"key={key}", headers={"Authorization": f"Basic {secret}"}),
        dict(method="PUT", query=f"key={key}", body=b""),             # 405
        dict(path="/elsewhere", query=f"key={key}"),                  # 404
        dict(query=f"key={key}", headers={"Accept": "application/json"}),
    ]
    for c in calls:
        resp = inst.request(c.pop("method", "GET"), **c)
        assert resp.status >= 201, repr(resp)
        for s in (secret, wrong, inst.component_secret):
            assert s not in resp.text and s not in str(resp.headers), \
                f"a secret is in the answer: {resp!r}"
    prosody.kill()   # 503 path, then the daemon's reconnect attempts
    try:
        resp = inst.get_invite(key, timeout=10)
        assert resp.status == 503 and secret not in resp.text, repr(resp)
    finally:
        prosody.start()
    text = inst.log_text()
    for s in (secret, wrong, inst.component_secret):
        assert s not in text, f"secret {s[:4]}... in the daemon log\n{inst.describe()}"


def test_the_log_grep_finds_a_planted_secret(make_instance):
    """The end-of-session check reads CLI stderr and Prosody logs too, and can fail."""
    inst = make_instance()
    planted = "planted-" + secrets.token_urlsafe(16)
    with open(inst.cli_stderr, "a") as f:
        f.write(f"invites-api: oops {planted}\n")
    assert inst.cli_stderr in harness.all_logs()
    assert harness.secrets_in_logs(secret_values=[planted]) == [(str(inst.cli_stderr), planted)]
    inst.cli_stderr.write_text(re.sub(re.escape(planted), "", inst.cli_stderr.read_text()))
    assert harness.secrets_in_logs(secret_values=[planted]) == []
