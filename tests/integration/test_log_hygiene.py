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
