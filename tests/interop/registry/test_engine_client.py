"""Dockyard's own registry client (``dockyard.distribution``) against our registry server:
push, pull into a fresh store, search, and login with Bearer token auth."""

from __future__ import annotations

import asyncio
import os

import bcrypt
import pytest

from tests.interop.registry.conftest import Served, start_registry, stop_registry
from tests.unit.registry.test_auth import _key

distribution = pytest.importorskip("dockyard.distribution")
images = pytest.importorskip("dockyard.images.store")
bootstrap = pytest.importorskip("dockyard.images.bootstrap")

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def _settings(host: str) -> object:
    return distribution.RegistrySettings(insecure_registries=(host,))


def _roundtrip(served: Served, tmp: str, auth: object | None) -> None:
    source = images.ImageStore(os.path.join(tmp, "source"))
    image_id = bootstrap.build_busybox_image(source)
    ref = f"{served.host}/engine/busybox:1"
    source.tag(image_id, ref)
    pushed = asyncio.run(distribution.push(source, ref, auth=auth, settings=_settings(served.host)))
    assert [p.tag for p in pushed] == ["1"]
    target = images.ImageStore(os.path.join(tmp, "target"))
    pulled = asyncio.run(distribution.pull(target, ref, auth=auth,
                                           settings=_settings(served.host)))
    assert pulled.digest == pushed[0].digest
    assert pulled.image_id == image_id  # same config, byte for byte
    found = asyncio.run(distribution.search(f"{served.host}/engine", auth=auth,
                                            settings=_settings(served.host)))
    assert [r["name"] for r in found] == ["engine/busybox"]


def test_engine_client_push_pull_search(served_registry: Served,
                                        tmp_path: pytest.TempPathFactory) -> None:
    _roundtrip(served_registry, str(tmp_path), None)


def test_engine_client_with_token_auth(tmp_path: pytest.TempPathFactory) -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    with open(f"{tmp_path}/htpasswd", "w") as f:
        f.write(f"eve:{hashed}\n")
    with open(f"{tmp_path}/registry.yml", "w") as f:
        f.write(f"auth: {{token: {{key: {_key(f'{tmp_path}/key.pem')}, service: engine, "
                f"htpasswd: {tmp_path}/htpasswd}}}}\n")
    served = start_registry(f"{tmp_path}/root", "--config", f"{tmp_path}/registry.yml")
    try:
        auth = distribution.AuthConfig(username="eve", password="pw")
        result = asyncio.run(distribution.login(served.host, auth,
                                                settings=_settings(served.host)))
        assert result is not None
        _roundtrip(served, str(tmp_path), auth)
    finally:
        stop_registry(served)
