"""Real clients against our registry: skopeo both ways (also over TLS with token auth), the
reference dockerd push/pull/search, and docker login through Basic and Bearer token auth."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable

import bcrypt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.interop.registry.conftest import Served, need, start_registry, stop_registry
from tests.support.dockerd import PrivateDockerd
from tests.unit.registry.harness import Image
from tests.unit.registry.test_server import _self_signed

pytestmark = [pytest.mark.interop, pytest.mark.slow,
              pytest.mark.xdist_group("registry-dockerd")]  # one private dockerd per run


def _skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True,
                          timeout=120).stdout


def test_skopeo_copies_both_ways(served_registry: Served, busybox_layout: str,
                                 busybox_image: Image, tmp_path: pytest.TempPathFactory) -> None:
    need("skopeo")
    dest = f"docker://{served_registry.host}/library/busybox:1.0"
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{busybox_layout}:latest", dest)
    inspected = json.loads(_skopeo("inspect", "--tls-verify=false", dest))
    assert inspected["Digest"] == busybox_image.digest  # stored exactly as pushed
    back = f"{tmp_path}/back"
    _skopeo("copy", "--src-tls-verify=false", dest, f"oci:{back}:latest")
    with open(f"{back}/index.json") as f:
        assert json.load(f)["manifests"][0]["digest"] == busybox_image.digest
    for digest in busybox_image.blobs:
        with open(f"{back}/blobs/sha256/{digest.split(':')[1]}", "rb") as f:
            assert f.read() == busybox_image.blobs[digest]
    tags = json.loads(_skopeo("list-tags", "--tls-verify=false",
                              f"docker://{served_registry.host}/library/busybox"))
    assert tags["Tags"] == ["1.0"]


def test_dockerd_push_pull_search(served_registry: Served,
                                  private_dockerd: Callable[[], PrivateDockerd]) -> None:
    docker = private_dockerd()
    ref = f"{served_registry.host}/team/busybox:v1"
    docker.run("tag", "busybox:latest", ref)
    pushed = docker.run("push", ref).stdout
    assert "digest: sha256:" in pushed
    docker.run("rmi", ref)
    pulled = docker.run("pull", ref).stdout
    assert "Downloaded newer image" in pulled
    inspected = json.loads(docker.run("image", "inspect", ref).stdout)[0]
    assert inspected["RepoDigests"] == [f"{served_registry.host}/team/busybox@"
                                        + pushed.split("digest: ")[1].split()[0]]
    found = docker.run("search", "--format", "{{.Name}}", f"{served_registry.host}/busy").stdout
    assert found.split() == ["team/busybox"]
    docker.run("rmi", ref)


def _token_key(path: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))


@pytest.mark.parametrize("scheme", ["htpasswd", "token"])
def test_dockerd_login_and_push_with_auth(scheme: str, tmp_path: pytest.TempPathFactory,
                                          private_dockerd: Callable[[], PrivateDockerd]) -> None:
    docker = private_dockerd()
    hashed = bcrypt.hashpw(b"pa55word", bcrypt.gensalt(rounds=4)).decode()
    with open(f"{tmp_path}/htpasswd", "w") as f:
        f.write(f"bob:{hashed}\n")
    if scheme == "htpasswd":
        auth = f"auth: {{htpasswd: {{realm: test, path: {tmp_path}/htpasswd}}}}"
    else:
        _token_key(f"{tmp_path}/key.pem")
        auth = (f"auth: {{token: {{key: {tmp_path}/key.pem, service: interop, "
                f"htpasswd: {tmp_path}/htpasswd}}}}")
    with open(f"{tmp_path}/registry.yml", "w") as f:
        f.write(auth + "\n")
    served = start_registry(f"{tmp_path}/root", "--config", f"{tmp_path}/registry.yml")
    try:
        ref = f"{served.host}/private/busybox:{scheme}"
        docker.run("tag", "busybox:latest", ref)
        refused = docker.run("push", ref, check=False)
        assert refused.returncode != 0
        assert "no basic auth credentials" in refused.stderr or "denied" in refused.stderr \
            or "unauthorized" in refused.stderr.lower()
        wrong = docker.run("login", "-u", "bob", "--password-stdin", served.host,
                           input="nope\n", check=False)
        assert wrong.returncode != 0
        docker.run("login", "-u", "bob", "--password-stdin", served.host, input="pa55word\n")
        docker.run("push", ref)
        docker.run("rmi", ref)
        docker.run("pull", ref)
        docker.run("rmi", ref)
        found = docker.run("search", "--format", "{{.Name}}", f"{served.host}/busy").stdout
        assert found.split() == ["private/busybox"]
        docker.run("logout", served.host)
        hidden = docker.run("search", "--format", "{{.Name}}", f"{served.host}/busy", check=False)
        assert "private/busybox" not in hidden.stdout
    finally:
        stop_registry(served)
    assert os.path.isdir(f"{tmp_path}/root/repositories/private/busybox/_manifests")


def test_skopeo_through_tls_and_token_auth(tmp_path: pytest.TempPathFactory, busybox_layout: str,
                                           busybox_image: Image) -> None:
    need("skopeo")
    certs = f"{tmp_path}/certs"
    os.makedirs(certs)
    cert, key = _self_signed(certs)
    os.rename(cert, f"{certs}/ca.crt")  # skopeo's --cert-dir wants *.crt for CAs
    os.rename(key, f"{tmp_path}/tls.key")
    _token_key(f"{tmp_path}/token.pem")
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    with open(f"{tmp_path}/htpasswd", "w") as f:
        f.write(f"sky:{hashed}\n")
    with open(f"{tmp_path}/registry.yml", "w") as f:
        f.write(f"http: {{tls: {{certificate: {certs}/ca.crt, key: {tmp_path}/tls.key}}}}\n"
                f"auth: {{token: {{key: {tmp_path}/token.pem, htpasswd: {tmp_path}/htpasswd}}}}\n")
    served = start_registry(f"{tmp_path}/root", "--config", f"{tmp_path}/registry.yml")
    try:
        assert served.url.startswith("https://")
        dest = f"docker://{served.host}/secure/busybox:1"
        denied = subprocess.run(["skopeo", "copy", "--dest-cert-dir", certs,
                                 f"oci:{busybox_layout}:latest", dest], capture_output=True,
                                text=True, timeout=120)
        assert denied.returncode != 0
        _skopeo("copy", "--dest-cert-dir", certs, "--dest-creds", "sky:pw",
                f"oci:{busybox_layout}:latest", dest)
        inspected = json.loads(_skopeo("inspect", "--cert-dir", certs, "--creds", "sky:pw", dest))
        assert inspected["Digest"] == busybox_image.digest
    finally:
        stop_registry(served)


def test_dockerd_pulls_through_the_cache(served_registry: Served, tmp_path: pytest.TempPathFactory,
                                         private_dockerd: Callable[[], PrivateDockerd]) -> None:
    docker = private_dockerd()
    docker.run("tag", "busybox:latest", f"{served_registry.host}/up/busybox:1")
    docker.run("push", f"{served_registry.host}/up/busybox:1")
    with open(f"{tmp_path}/cache.yml", "w") as f:
        f.write(f"proxy: {{remoteurl: {served_registry.url}}}\n")
    cache = start_registry(f"{tmp_path}/cache", "--config", f"{tmp_path}/cache.yml")
    try:
        ref = f"{cache.host}/up/busybox:1"
        assert "Downloaded newer image" in docker.run("pull", ref).stdout
        docker.run("rmi", ref)
        stop_registry(served_registry)  # the upstream is gone: the cache still serves
        assert "Downloaded newer image" in docker.run("pull", ref).stdout
        docker.run("rmi", ref, f"{served_registry.host}/up/busybox:1")
    finally:
        stop_registry(cache)
