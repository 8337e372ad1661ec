"""htpasswd Basic and Bearer token auth, challenges exactly as distribution words them."""

from __future__ import annotations

import base64
import json
import os
import pathlib
from collections.abc import Iterator
from urllib.parse import quote

import bcrypt
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.registry.config import TokenConfig
from tests.unit.registry.harness import RunningRegistry, base_config


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _htpasswd(path: str) -> str:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    with open(path, "w") as f:
        f.write(f"alice:{hashed}\n")
    return path


def _key(path: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return path


@pytest.fixture
def basic_registry(tmp_path: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    config = base_config(f"{tmp_path}/root", htpasswd=_htpasswd(f"{tmp_path}/htpasswd"),
                         htpasswd_realm="Dockyard Realm")
    server = RunningRegistry(config)
    yield server
    server.stop()


@pytest.fixture
def token_registry(tmp_path: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    token = TokenConfig(key_path=_key(f"{tmp_path}/key.pem"), service="test-registry",
                        htpasswd=_htpasswd(f"{tmp_path}/htpasswd"), anonymous=("pull",))
    server = RunningRegistry(base_config(f"{tmp_path}/root", token=token))
    yield server
    server.stop()


def test_basic_auth_challenges_refuses_and_accepts(basic_registry: RunningRegistry) -> None:
    r = basic_registry.request("GET", "/v2/")
    assert (r.status, r.code) == (401, "UNAUTHORIZED")
    assert r.headers["WWW-Authenticate"] == 'Basic realm="Dockyard Realm"'
    assert basic_registry.request("GET", "/v2/", headers=_basic("alice", "wrong")).status == 401
    assert basic_registry.request("GET", "/v2/", headers=_basic("mallory", "s3cret")).status == 401
    assert basic_registry.request("GET", "/v2/", headers=_basic("alice", "s3cret")).status == 200
    r = basic_registry.request("POST", "/v2/r/blobs/uploads/", headers=_basic("alice", "s3cret"))
    assert r.status == 202


def test_bearer_challenge_matches_distribution(token_registry: RunningRegistry) -> None:
    host = token_registry.host
    r = token_registry.request("GET", "/v2/")
    assert r.status == 401
    assert r.headers["WWW-Authenticate"] == \
        f'Bearer realm="http://{host}/token",service="test-registry"'
    r = token_registry.request("POST", "/v2/library/busybox/blobs/uploads/")
    assert r.headers["WWW-Authenticate"] == (
        f'Bearer realm="http://{host}/token",service="test-registry",'
        'scope="repository:library/busybox:pull,push"')
    assert r.json()["errors"][0]["detail"] == [
        {"Type": "repository", "Name": "library/busybox", "Action": "pull"},
        {"Type": "repository", "Name": "library/busybox", "Action": "push"}]


def _token(registry: RunningRegistry, scope: str, headers: dict[str, str] | None = None) -> str:
    r = registry.request("GET", f"/token?service=test-registry&scope={quote(scope)}",
                         headers=headers)
    assert r.status == 200, r.body
    body = r.json()
    assert body["token"] == body["access_token"] and body["expires_in"] > 0
    return str(body["token"])


def test_token_endpoint_grants_scopes_by_account(token_registry: RunningRegistry) -> None:
    scope = "repository:r:pull,push"
    user_token = _token(token_registry, scope, _basic("alice", "s3cret"))
    claims = jwt.decode(user_token, options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": "r", "actions": ["pull", "push"]}]
    assert claims["aud"] == "test-registry" and claims["sub"] == "alice"
    anon = jwt.decode(_token(token_registry, scope), options={"verify_signature": False})
    assert anon["access"] == [{"type": "repository", "name": "r", "actions": ["pull"]}]
    bad = token_registry.request("GET", "/token?scope=x", headers=_basic("alice", "nope"))
    assert bad.status == 401


def test_bearer_token_authorizes_only_its_scope(token_registry: RunningRegistry) -> None:
    auth = {"Authorization": "Bearer " + _token(token_registry, "repository:r:pull,push",
                                               _basic("alice", "s3cret"))}
    assert token_registry.request("GET", "/v2/", headers=auth).status == 200
    assert token_registry.request("POST", "/v2/r/blobs/uploads/", headers=auth).status == 202
    other = token_registry.request("POST", "/v2/other/blobs/uploads/", headers=auth)
    assert other.status == 401
    assert other.headers["WWW-Authenticate"].endswith(
        'scope="repository:other:pull,push",error="insufficient_scope"')
    anon = {"Authorization": "Bearer " + _token(token_registry, "repository:r:pull,push")}
    assert token_registry.request("GET", "/v2/r/tags/list", headers=anon).status == 404
    assert token_registry.request("POST", "/v2/r/blobs/uploads/", headers=anon).status == 401


def test_forged_and_expired_tokens_are_invalid(token_registry: RunningRegistry,
                                               tmp_path: pytest.TempPathFactory) -> None:
    other_key = serialization.load_pem_private_key(
        pathlib.Path(_key(f"{tmp_path}/other.pem")).read_bytes(), None)
    claims = {"iss": "dockyard-registry", "aud": "test-registry", "exp": 4102444800,
              "access": [{"type": "repository", "name": "r", "actions": ["pull"]}]}
    forged = jwt.encode(claims, other_key, algorithm="ES256")  # type: ignore[arg-type]
    for token in (forged, "not.a.jwt", base64.b64encode(json.dumps(claims).encode()).decode()):
        r = token_registry.request("GET", "/v2/r/tags/list",
                                   headers={"Authorization": f"Bearer {token}"})
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].endswith(',error="invalid_token"')


def test_search_hides_repositories_the_caller_cannot_pull(basic_registry: RunningRegistry) -> None:
    alice = _basic("alice", "s3cret")
    r = basic_registry.request("POST", f"/v2/secret/blobs/uploads/?digest=sha256:{'0' * 64}",
                               b"", headers=alice)
    assert r.code == "DIGEST_INVALID"
    os.makedirs(os.path.join(basic_registry.root, "repositories", "secret", "_layers"))
    assert basic_registry.request("GET", "/v1/search?q=sec").json()["num_results"] == 0
    found = basic_registry.request("GET", "/v1/search?q=sec", headers=alice).json()
    assert [x["name"] for x in found["results"]] == ["secret"]


def test_search_with_token_auth_needs_an_account(tmp_path: pytest.TempPathFactory) -> None:
    token = TokenConfig(key_path=_key(f"{tmp_path}/key.pem"), service="test-registry",
                        htpasswd=_htpasswd(f"{tmp_path}/htpasswd"))
    registry = RunningRegistry(base_config(f"{tmp_path}/root", token=token))
    try:
        os.makedirs(os.path.join(registry.root, "repositories", "hidden", "_layers"))
        search = "/v1/search?q=hid"
        assert registry.request("GET", search).json()["num_results"] == 0
        basic = registry.request("GET", search, headers=_basic("alice", "s3cret")).json()
        assert basic["num_results"] == 1  # docker 20.10 sends Basic credentials to /v1/search
        wrong = registry.request("GET", search, headers=_basic("alice", "x")).json()
        assert wrong["num_results"] == 0
        for account, expected in ((_basic("alice", "s3cret"), 1), (None, 0)):
            bearer = {"Authorization": f"Bearer {_token(registry, 'repository:x:pull', account)}"}
            assert registry.request("GET", search, headers=bearer).json()[
                "num_results"] == expected
    finally:
        registry.stop()


def test_token_endpoint_oauth2_password_grant(token_registry: RunningRegistry) -> None:
    form = "grant_type=password&username=alice&password=s3cret&service=test-registry&" \
           "scope=repository%3Ar%3Apull%2Cpush&client_id=test"
    r = token_registry.request("POST", "/token", form.encode(),
                               {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200
    claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "alice"
    assert claims["access"] == [{"type": "repository", "name": "r", "actions": ["pull", "push"]}]
    bad = token_registry.request("POST", "/token", form.replace("s3cret", "no").encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert bad.status == 401


def test_token_endpoint_refuses_a_huge_form(token_registry: RunningRegistry) -> None:
    r = token_registry.request("POST", "/token", b"grant_type=password&x=" + b"a" * 100_000,
                               {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 413
