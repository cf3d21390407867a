"""HTTPS on the listener: certificates from a CA the test makes with openssl,
checked with the real curl (OpenSSL) and Python's ssl; TLS 1.2 and 1.3 only;
SIGHUP swaps the certificate for new connections without touching the XMPP
stream; bad files are refused at startup, by `check`, and on reload."""

import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

import harness
from harness import MAIN_HOST, wait_until

CURL_TIMEOUT = 10
# Lets OpenSSL (curl's TLS library) offer TLS 1.0/1.1 at all: its default
# security level refuses them on the client side, which would make a refusal
# prove nothing about the server.
LEGACY_CIPHERS = "DEFAULT@SECLEVEL=0"


# --------------------------------------------------------------------------
# a small PKI made with the openssl command


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"openssl {' '.join(map(str, args))} failed: {r.stderr}"


class Pki:
    """A root CA and certificates it (or an intermediate) signs, all EC P-256."""

    def __init__(self, directory, name):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.ca_cert, self.ca_key = self._self_signed(f"{name} root CA")

    def _key(self, stem):
        key = self.dir / f"{stem}.key"
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", key, cwd=self.dir)
        os.chmod(key, 0o600)
        return key

    def _self_signed(self, cn):
        stem = re.sub(r"\W", "_", cn)
        key = self._key(stem)
        cert = self.dir / f"{stem}.pem"
        _openssl("req", "-x509", "-new", "-key", key, "-out", cert, "-days", "2",
                 "-subj", f"/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        return cert, key

    def issue(self, stem, cn="localhost", ca=False, issuer=None):
        """A certificate for cn (and 127.0.0.1), signed by issuer (cert, key), by
        default the root; returns (cert, key)."""
        issuer = issuer or (self.ca_cert, self.ca_key)
        key = self._key(stem)
        csr = self.dir / f"{stem}.csr"
        cert = self.dir / f"{stem}.pem"
        ext = self.dir / f"{stem}.ext"
        if ca:
            ext.write_text("basicConstraints=critical,CA:TRUE\n"
                           "keyUsage=critical,keyCertSign,cRLSign\n")
        else:
            ext.write_text(f"subjectAltName=DNS:{cn},IP:127.0.0.1\n"
                           "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        _openssl("req", "-new", "-key", key, "-out", csr, "-subj", f"/CN={cn}", cwd=self.dir)
        _openssl("x509", "-req", "-in", csr, "-CA", issuer[0], "-CAkey", issuer[1],
                 "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
                 "-out", cert, "-days", "1", "-extfile", ext, cwd=self.dir)
        return cert, key


def der_of(pem_path):
    """DER of the first certificate in a PEM file."""
    text = Path(pem_path).read_text()
    first = text[:text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return ssl.PEM_cert_to_DER_cert(first)


def install(src_cert, src_key, dst_cert, dst_key, chain=()):
    """Put a certificate (plus chain) and its key in place as a renewal would:
    written next to the target, then renamed over it."""
    text = Path(src_cert).read_text() + "".join(Path(c).read_text() for c in chain)
    tmp = Path(str(dst_cert) + ".new")
    tmp.write_text(text)
    os.replace(tmp, dst_cert)
    tmp = harness.write_private(str(dst_key) + ".new", Path(src_key).read_text())
    os.replace(tmp, dst_key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Two unrelated CAs: A (with an intermediate) and B."""
    d = tmp_path_factory.mktemp("pki")
    a = Pki(d / "a", "A")
    a.intermediate = a.issue("intermediate", cn="A intermediate CA", ca=True)
    b = Pki(d / "b", "B")
    return a, b


def tls_instance(make_instance, prosody, directory, cert, key, ca, chain=()):
    """An instance whose config names server.pem / server.key in directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    install(cert, key, cert_path, key_path, chain)
    inst = make_instance(prosody, tls=(cert_path, key_path, ca))
    return inst


def curl(url, *args):
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                        "--max-time", str(CURL_TIMEOUT), *map(str, args), url],
                       capture_output=True, text=True, timeout=CURL_TIMEOUT + 5,
                       stdin=subprocess.DEVNULL)
    return r


def served_cert(port, ca):
    """DER of the certificate a fresh TLS connection to port is given."""
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


def https_url(inst, query=None):
    """The API URL by name (localhost), as certificates name the server."""
    return f"https://localhost:{inst.http_port}{inst.path}" + (f"?{query}" if query else "")


def component_connections(prosody):
    return prosody.component_connections()


# --------------------------------------------------------------------------


def test_https_answers_with_an_invite_through_a_chain(pki, prosody, make_instance, tmp_path):
    a, _ = pki
    leaf = a.issue("leaf_chain", issuer=a.intermediate)
    inst = tls_instance(make_instance, prosody, tmp_path / "tls", *leaf, a.ca_cert,
                        chain=[a.intermediate[0]])
    key = inst.create_key(MAIN_HOST, "https")
    inst.start()
    assert f"listening on https://127.0.0.1:{inst.http_port}" in inst.log_text()

    # curl trusts only the root: the daemon must send the intermediate too
    r = curl(https_url(inst, "key=" + key), "--cacert", a.ca_cert)
    assert r.returncode == 0 and r.stdout == "201", f"{r.returncode} {r.stdout} {r.stderr}"
    resp = inst.get_invite(key)   # Python's ssl, also verifying against the CA
    harness.assert_created(resp, inst)

    # not trusted without the CA: the certificate is really checked
    r = curl(https_url(inst, "key=" + key))
    assert r.returncode == 60, f"expected a verification failure: {r.returncode} {r.stderr}"
    # and no plain HTTP on the HTTPS port
    conn = http.client.HTTPConnection("127.0.0.1", inst.http_port, timeout=5)
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", inst.path)
        conn.getresponse().read()
    conn.close()


@pytest.fixture(scope="module")
def legacy_tls_server(pki, tmp_path_factory):
    """openssl s_server speaking only TLS 1.0 and 1.1: proves the curl below can
    make TLS 1.0/1.1 handshakes, so a refusal by the daemon is the daemon's."""
    a, _ = pki
    cert, key = a.issue("legacy")
    port = harness.free_port()
    proc = harness._spawn(["openssl", "s_server", "-accept", str(port), "-cert", str(cert),
                           "-key", str(key), "-tls1_1", "-cipher", LEGACY_CIPHERS, "-www",
                           "-quiet"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: harness.port_accepts(port), 10, what="openssl s_server")
    yield port
    proc.kill()
    proc.wait(timeout=5)


@pytest.mark.parametrize("version,max_version,accepted", [
    ("--tlsv1.0", "1.0", False),
    ("--tlsv1.1", "1.1", False),
    ("--tlsv1.2", "1.2", True),
    ("--tlsv1.3", "1.3", True),
])
def test_only_tls_1_2_and_newer(pki, prosody, make_instance, tmp_path, legacy_tls_server,
                                version, max_version, accepted):
    a, _ = pki
    inst = tls_instance(make_instance, prosody, tmp_path / "tls", *a.issue("leaf_v"),
                        a.ca_cert)
    inst.start()
    args = ["--cacert", a.ca_cert, version, "--tls-max", max_version,
            "--ciphers", LEGACY_CIPHERS]
    r = curl(https_url(inst), *args)
    if accepted:
        assert r.returncode == 0 and r.stdout == "401", f"{r.returncode} {r.stdout} {r.stderr}"
        return
    assert r.returncode == 35 and r.stdout == "000", \
        f"TLS {max_version} should be refused: {r.returncode} {r.stdout} {r.stderr}"
    # the same client does TLS 1.1 with a server that allows it
    if max_version == "1.1":
        r = curl(f"https://localhost:{legacy_tls_server}/", *args)
        assert r.returncode == 0 and r.stdout == "200", f"control failed: {r!r}"
    assert inst.proc.poll() is None, inst.describe()


def test_sighup_serves_the_new_certificate_and_xmpp_stays_connected(pki, prosody,
                                                                     make_instance, tmp_path):
    a, b = pki
    old = a.issue("leaf_old")
    inst = tls_instance(make_instance, prosody, tmp_path / "tls", *old, a.ca_cert)
    key = inst.create_key(MAIN_HOST, "reload")
    inst.start()
    cert_path, key_path = inst.tls[0], inst.tls[1]
    assert served_cert(inst.http_port, a.ca_cert) == der_of(old[0])
    connections = component_connections(prosody)

    # a connection made before the reload, kept alive across it
    ctx_a = ssl.create_default_context(cafile=str(a.ca_cert))
    kept = http.client.HTTPSConnection("localhost", inst.http_port, timeout=10, context=ctx_a)
    kept.request("GET", inst.path)
    first = kept.getresponse()
    first.read()
    assert first.status == 401

    new = b.issue("leaf_new")
    install(*new, cert_path, key_path)
    inst.proc.send_signal(signal.SIGHUP)
    inst.wait_log("reloaded the HTTPS certificate")

    assert served_cert(inst.http_port, b.ca_cert) == der_of(new[0])
    r = curl(https_url(inst, "key=" + key), "--cacert", b.ca_cert)
    assert r.returncode == 0 and r.stdout == "201", f"{r.returncode} {r.stdout} {r.stderr}"
    r = curl(https_url(inst, "key=" + key), "--cacert", a.ca_cert)
    assert r.returncode == 60, f"the old CA should no longer verify: {r!r}"

    # the connection opened before goes on with its session
    kept.request("GET", inst.path + "?key=" + key)
    again = kept.getresponse()
    again.read()
    assert again.status == 201, inst.describe()
    kept.close()

    # XMPP: one stream all along, in the daemon's view and in Prosody's
    log = inst.log_text()
    assert log.count("connected to ") - log.count("disconnected from") == 1, inst.describe()
    assert "disconnected from" not in log, inst.describe()
    assert component_connections(prosody) == connections, prosody.describe()
    assert inst.proc.poll() is None


BAD_RELOADS = ["mismatched key", "not a certificate", "key missing", "key readable by all",
               "certificate is a FIFO", "key is a FIFO"]


@pytest.mark.parametrize("case", BAD_RELOADS)
def test_sighup_with_bad_files_keeps_the_old_certificate(pki, prosody, make_instance, tmp_path,
                                                          case):
    a, b = pki
    old = a.issue("leaf_keep")
    inst = tls_instance(make_instance, prosody, tmp_path / "tls", *old, a.ca_cert)
    key = inst.create_key(MAIN_HOST, "keep")
    inst.start()
    cert_path, key_path = Path(inst.tls[0]), Path(inst.tls[1])
    new = b.issue("leaf_bad")
    other = b.issue("leaf_other")
    if case == "mismatched key":
        install(new[0], other[1], cert_path, key_path)
        expected = "does not match the certificate"
    elif case == "not a certificate":
        install(new[0], new[1], cert_path, key_path)
        cert_path.write_text("this is not PEM\n")
        expected = "no PEM certificate"
    elif case == "key missing":
        install(*new, cert_path, key_path)
        key_path.unlink()
        expected = "No such file or directory"
    elif case.endswith("FIFO"):   # opening one for reading would wait for a writer
        install(*new, cert_path, key_path)
        fifo = cert_path if case.startswith("certificate") else key_path
        fifo.unlink()
        os.mkfifo(fifo, 0o600)
        expected = f"{fifo} is not a regular file"
    else:
        install(*new, cert_path, key_path)
        os.chmod(key_path, 0o644)
        expected = f"chmod o-rwx,g-w {key_path}"
    offset = len(inst.log_text())
    inst.proc.send_signal(signal.SIGHUP)
    inst.wait_log("keeping the current HTTPS certificate", start_offset=offset)
    line = [ln for ln in inst.log_text()[offset:].splitlines() if "HTTPS" in ln][0]
    assert expected in line, f"{expected!r} not in {line!r}"

    assert served_cert(inst.http_port, a.ca_cert) == der_of(old[0])
    r = curl(https_url(inst, "key=" + key), "--cacert", a.ca_cert)
    assert r.returncode == 0 and r.stdout == "201", f"{r.returncode} {r.stdout} {r.stderr}"

    # fixed files are taken at the next SIGHUP
    install(*new, cert_path, key_path)
    inst.proc.send_signal(signal.SIGHUP)
    inst.wait_log("reloaded the HTTPS certificate", start_offset=offset)
    assert served_cert(inst.http_port, b.ca_cert) == der_of(new[0])


BAD_STARTS = {   # case: (what is done, what the error says)
    "certificate missing": ("no-such.pem", "cannot read: No such file or directory"),
    "not a certificate": ("garbage", "no PEM certificate"),
    "a key as certificate": ("key-as-cert", "no PEM certificate"),
    "mismatched key": ("mismatch", "does not match the certificate"),
    "chain out of order": ("reversed", "out of order"),
    "key readable by all": ("world-readable", "chmod o-rwx,g-w"),
    "key without certificate": ("key-only", "set both or neither"),
}


@pytest.mark.parametrize("case", sorted(BAD_STARTS))
def test_bad_tls_files_are_refused_by_serve_and_check(pki, make_instance, tmp_path, case):
    a, b = pki
    cert, key = a.issue("leaf_start")
    d = tmp_path / "tls"
    inst = tls_instance(make_instance, None, d, cert, key, a.ca_cert)
    cert_path, key_path = Path(inst.tls[0]), Path(inst.tls[1])
    how, expected = BAD_STARTS[case]
    config = inst.config.read_text()
    if how == "no-such.pem":
        config = config.replace(str(cert_path), str(d / "no-such.pem"))
    elif how == "garbage":
        cert_path.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                             "-----END CERTIFICATE-----\n")
    elif how == "key-as-cert":
        cert_path.write_text(Path(key).read_text())
    elif how == "mismatch":
        install(cert, b.issue("leaf_mismatch")[1], cert_path, key_path)
    elif how == "reversed":
        leaf = a.issue("leaf_rev", issuer=a.intermediate)
        cert_path.write_text(Path(a.intermediate[0]).read_text() + Path(leaf[0]).read_text())
        harness.write_private(key_path, Path(leaf[1]).read_text())
    elif how == "world-readable":
        os.chmod(key_path, 0o644)
    elif how == "key-only":
        config = re.sub(r"(?m)^tls_certificate = .*\n", "", config)
    harness.write_private(inst.config, config)

    r = inst.cli("check")
    assert r.returncode == 1 and expected in r.stderr, repr(r)
    assert "configuration OK" not in r.stdout
    start = time.monotonic()
    proc = subprocess.run([harness.binary_path(), "-c", str(inst.config), "serve"],
                          capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and expected in proc.stderr, proc.stderr
    assert time.monotonic() - start < 5
    assert not harness.port_accepts(inst.http_port)


def test_check_describes_the_certificate(pki, make_instance, tmp_path):
    a, _ = pki
    inst = tls_instance(make_instance, None, tmp_path / "tls", *a.issue("leaf_check"),
                        a.ca_cert)
    r = inst.cli("check")
    assert r.returncode == 0, repr(r)
    assert "HTTPS certificate: subject CN=localhost, expires " in r.stdout, repr(r)
    assert "HTTPS 127.0.0.1 port" in r.stdout, repr(r)


def test_sighup_on_plain_http_changes_nothing(prosody, make_instance):
    inst = make_instance(prosody)
    key = inst.create_key(MAIN_HOST, "plain")
    inst.start()
    assert f"listening on http://127.0.0.1:{inst.http_port}" in inst.log_text()
    connections = component_connections(prosody)
    inst.proc.send_signal(signal.SIGHUP)
    inst.wait_log("SIGHUP: nothing to reload")
    harness.assert_created(inst.get_invite(key), inst)
    assert component_connections(prosody) == connections
    assert "disconnected from" not in inst.log_text()
