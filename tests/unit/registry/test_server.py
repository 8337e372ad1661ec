"""The serve command: TLS with a given certificate, several workers on one port, clean exit."""

from __future__ import annotations

import datetime
import hashlib
import http.client
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _self_signed(directory: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = f"{directory}/cert.pem", f"{directory}/key.pem"
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def _serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        proc.wait()
        pytest.fail(f"serve did not start: {line}{proc.stdout.read()}")
    return proc, line.split()[-1]


def _stop(proc: subprocess.Popen[str]) -> int | None:
    proc.send_signal(signal.SIGTERM)
    try:
        code: int | None = proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()  # never leave a server behind; None fails the caller's assertion
        proc.wait()
        code = None
    if proc.stdout:
        proc.stdout.close()
    return code


def test_tls_with_given_certificate(tmp_path: pytest.TempPathFactory) -> None:
    cert, key = _self_signed(str(tmp_path))
    with open(f"{tmp_path}/registry.yml", "w") as f:
        f.write(f"http: {{tls: {{certificate: {cert}, key: {key}}}}}\n")
    proc, url = _serve("--listen", "127.0.0.1:0", "--root", f"{tmp_path}/root",
                       "--config", f"{tmp_path}/registry.yml")
    try:
        assert url.startswith("https://")
        host, port = url.split("://")[1].split(":")
        ctx = ssl.create_default_context(cafile=cert)
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
        conn.request("GET", "/v2/")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        conn.close()
        plain = http.client.HTTPConnection(host, int(port), timeout=10)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            plain.request("GET", "/v2/")
            plain.getresponse()
        plain.close()
    finally:
        assert _stop(proc) == 0


def test_several_workers_share_the_port(tmp_path: pytest.TempPathFactory) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, _ = _serve("--listen", f"127.0.0.1:{port}", "--root", f"{tmp_path}/root",
                     "--workers", "2")
    try:
        for _ in range(6):  # fresh connections, spread over the workers by the kernel
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/v2/w/blobs/uploads/?digest=sha256:"
                         "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                         body=b"hello")
            assert conn.getresponse().status == 201
            conn.close()
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) == 2
    finally:
        assert _stop(proc) == 0


def test_bad_listen_address_is_an_error(tmp_path: pytest.TempPathFactory) -> None:
    out = subprocess.run([sys.executable, "-m", "dockyard.registry", "serve", "--listen",
                          "nonsense", "--root", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "invalid listen address" in out.stderr


def test_killed_server_leaves_no_partial_blob_and_the_upload_resumes(
        tmp_path: pytest.TempPathFactory) -> None:
    root = f"{tmp_path}/root"
    data = os.urandom(3 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    proc, url = _serve("--listen", "127.0.0.1:0", "--root", root)
    try:
        port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/v2/r/blobs/uploads/")
        started = conn.getresponse()
        started.read()
        location = started.headers["Location"]
        conn.request("PATCH", location, body=data[: 2 << 20])
        patched = conn.getresponse()
        patched.read()
        assert patched.status == 202
        conn.close()
    finally:
        proc.kill()  # SIGKILL: no cleanup of any kind
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
    assert [f for _, _, files in os.walk(f"{root}/blobs") for f in files] == []
    proc, url = _serve("--listen", "127.0.0.1:0", "--root", root)
    try:
        port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", location)
        status = conn.getresponse()
        status.read()
        assert status.headers["Range"] == f"0-{(2 << 20) - 1}"
        # the running hash died with the process: the commit hashes the stored bytes again
        conn.request("PUT", f"{location}?digest={digest}", body=data[2 << 20:],
                     headers={"Content-Range": f"{2 << 20}-{len(data) - 1}"})
        done = conn.getresponse()
        done.read()
        assert done.status == 201
        conn.request("GET", f"/v2/r/blobs/{digest}")
        assert conn.getresponse().read() == data
        conn.close()
    finally:
        assert _stop(proc) == 0
