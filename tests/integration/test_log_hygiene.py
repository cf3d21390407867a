"""The daemon never logs a key secret or the component secret, whatever it is asked.

(Every daemon fixture of the run also greps its own log at teardown, and the
session ends with a grep of every daemon log for every secret the run used.)"""

import signal

from harness import FOREIGN_HOST, MAIN_HOST, register_secret, secrets, secrets_in_logs


def test_no_secret_in_the_log_after_every_kind_of_request(fresh_prosody, make_instance):
    inst = make_instance(fresh_prosody)
    key = inst.create_key(MAIN_HOST, "hygiene")
    foreign = inst.create_key(FOREIGN_HOST, "hygiene foreign")
    key_id, secret = key.split("/")
    wrong = secrets.token_urlsafe(32)
    register_secret(wrong)
    inst.start()
    calls = [
        dict(query=f"key={key}"),
        dict(query=f"key={key}&redirect=true"),
        dict(query=f"key={key}&redirect=nonsense"),
        dict(headers={"Authorization": f"Bearer {key}"}),
        dict(query=f"key={key}", headers={"Authorization": f"Bearer {foreign}"}),
        dict(query=f"key={key_id}/{wrong}"),
        dict(query=f"key={key_id}{secret}"),           # malformed: no slash
        dict(query=f"key={foreign}"),                 # 502
        dict(method="HEAD", query=f"key={key}"),
        dict(method="PUT", query=f"key={key}", body=b""),
        dict(method="POST", query=f"key={key}", body=f"key={key}".encode()),
        dict(path="/elsewhere", query=f"key={key}"),
    ]
    for c in calls:
        inst.request(c.pop("method", "GET"), **c)
    register_secret(key_id + secret)
    fresh_prosody.kill()                              # disconnect and 503 paths
    inst.request("GET", query=f"key={key}", timeout=10)
    assert inst.terminate(signal.SIGTERM, timeout=5) == 0, inst.describe()
    text = inst.log_text()
    assert text.strip(), "the daemon logged nothing at all"
    for s in (secret, foreign.split("/")[1], wrong, key_id + secret,
              inst.component_secret):
        assert s not in text, f"secret {s[:4]}... found in the daemon log:\n{inst.describe()}"
    assert not secrets_in_logs([inst.log, inst.stdout_log])


def test_no_secret_in_the_log_when_the_key_is_sent_in_the_path(fresh_prosody, make_instance):
    """A key pasted into the path (or the method) is answered 404/400/414/405
    and the log line names neither the path nor the secret."""
    inst = make_instance(fresh_prosody)
    key = inst.create_key(MAIN_HOST, "pasted")
    key_id, secret = key.split("/")
    register_secret(secret)
    inst.start()
    expected = {
        f"{inst.path}&key={key}": 404,
        f"{inst.path}/{key}": 404,
        f"{inst.path};key={key}": 404,
        f"/{key}": 404,
        f"/{key}/": 404,
        f"/{key}%zz": 400,                          # bad escape, refused from the raw target
        f"/{key}?" + "&".join(["a=1"] * 200): 414,  # too many parameters, ditto
    }
    for path, status in expected.items():
        r = inst.request("GET", path=path)
        assert r.status == status, f"{path[:40]}: {r!r}\n{inst.describe()}"
    r = inst.request(secret[:15], query=f"key={key}")
    assert r.status in (400, 405, 501), f"{r!r}\n{inst.describe()}"
    assert inst.terminate(signal.SIGTERM, timeout=5) == 0, inst.describe()
    text = inst.log_text()
    assert text.count("(not the API path") >= len(expected) - 1, text
    assert secret[:15] not in text, f"a secret's start is in the daemon log:\n{text}"
    assert not secrets_in_logs([inst.log, inst.stdout_log])
