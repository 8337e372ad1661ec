"""Credentials in docker's config.json and through credential helpers."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from dockyard.cli import auth

HELPER = """#!/bin/sh
# a docker-credential helper keeping one secret in a file next to itself
store="$(dirname "$0")/store.json"
case "$1" in
  store) cat > "$store" ;;
  get) read server; if [ -f "$store" ]; then
         python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({"ServerURL": d["ServerURL"], "Username": d["Username"], "Secret": d["Secret"]}))' "$store"
       else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) rm -f "$store" ;;
esac
"""


@pytest.fixture
def helper_dir(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> str:
    bindir = os.path.join(tmp_path, "bin")
    os.mkdir(bindir)
    path = os.path.join(bindir, "docker-credential-fake")
    with open(path, "w") as f:
        f.write(HELPER)
    os.chmod(path, stat.S_IRWXU)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ["PATH"])
    return bindir


def test_plain_auths_round_trip(tmp_path: os.PathLike[str]) -> None:
    cfg = str(tmp_path)
    auth.store(cfg, "127.0.0.1:5000", "me", "pw")
    with open(os.path.join(cfg, "config.json")) as f:
        data = json.load(f)
    assert base64.b64decode(data["auths"]["127.0.0.1:5000"]["auth"]) == b"me:pw"
    assert oct(os.stat(os.path.join(cfg, "config.json")).st_mode & 0o777) == "0o600"
    assert auth.get(cfg, "127.0.0.1:5000") == {"username": "me", "password": "pw",
                                               "serveraddress": "127.0.0.1:5000"}
    assert auth.erase(cfg, "127.0.0.1:5000")
    assert auth.get(cfg, "127.0.0.1:5000") == {}


def test_creds_store_helper_is_used_for_store_get_and_erase(
        tmp_path: os.PathLike[str], helper_dir: str) -> None:
    cfg = str(tmp_path)
    with open(os.path.join(cfg, "config.json"), "w") as f:
        json.dump({"credsStore": "fake", "other": "kept"}, f)
    auth.store(cfg, "reg.example:443", "u", "s")
    with open(os.path.join(cfg, "config.json")) as f:
        data = json.load(f)
    assert data["auths"] == {"reg.example:443": {}}  # no secret in the file
    assert data["other"] == "kept"
    assert auth.get(cfg, "reg.example:443") == {"username": "u", "password": "s",
                                                "serveraddress": "reg.example:443"}
    auth.erase(cfg, "reg.example:443")
    assert auth.get(cfg, "reg.example:443") == {}


def test_cred_helpers_apply_per_registry(tmp_path: os.PathLike[str], helper_dir: str) -> None:
    cfg = str(tmp_path)
    with open(os.path.join(cfg, "config.json"), "w") as f:
        json.dump({"credHelpers": {"helped.example": "fake"},
                   "auths": {"plain.example": {"auth": base64.b64encode(b"a:b").decode()}}}, f)
    auth.store(cfg, "helped.example", "h", "hp")
    assert auth.get(cfg, "helped.example")["password"] == "hp"
    assert auth.get(cfg, "plain.example")["password"] == "b"


def test_docker_hub_names_normalise_to_the_legacy_key() -> None:
    assert auth.normalize_server(None) == auth.DOCKER_HUB
    assert auth.normalize_server("docker.io") == auth.DOCKER_HUB
    assert auth.normalize_server("https://index.docker.io/v1/") == auth.DOCKER_HUB
    assert auth.normalize_server("http://127.0.0.1:5000/") == "127.0.0.1:5000"
    assert auth.registry_for("busybox") == auth.DOCKER_HUB
    assert auth.registry_for("127.0.0.1:5000/x/y:1") == "127.0.0.1:5000"
