"""Push, login and search against the fake registry."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from dockyard.distribution import AuthConfig, RegistrySettings, login, pull, push, search
from dockyard.errors import ImageNotFound, Unauthorized
from tests.support import registries as r
from tests.unit.distribution.conftest import run
from tests.unit.distribution.fake_registry import FakeRegistry, serve

FAST = RegistrySettings(read_timeout=5, connect_timeout=2)


def _image() -> r.TestImage:
    return r.TestImage([
        r.layer_tar([r.directory("etc"), r.file("etc/a", os.urandom(100_000))]),
        r.layer_tar([r.file("etc/b", b"b" * 5000)]),
    ])


def _seed(reg: FakeRegistry, store: Any, img: r.TestImage, name: str = "src") -> Any:
    """Pull ``img`` from ``reg`` so the store has it (and knows its compressed blobs)."""
    reg.add_image(name, "latest", img)

    async def go() -> Any:
        async with serve(reg):
            return await pull(store, f"{reg.host}/{name}", settings=FAST)

    return run(go())


def _exporting(store: Any, img: r.TestImage) -> None:
    """The store rebuilds each layer's exact tar (``write_layer_tar``): push compresses that."""
    assert hasattr(store, "write_layer_tar")


def test_push_compresses_once_and_the_result_pulls_back(store: Any, tmp_path: Any) -> None:
    src, dst = FakeRegistry(), FakeRegistry()
    img = _image()
    _seed(src, store, img)
    _exporting(store, img)
    events: list[dict[str, Any]] = []

    async def go() -> Any:
        async with serve(dst):
            store.tag(img.image_id, f"{dst.host}/app:1")
            first = await push(store, f"{dst.host}/app:1", progress=events.append, settings=FAST)
            dst.log.clear()
            again = await push(store, f"{dst.host}/app:1", settings=FAST)
            return first, again

    (first,), (again,) = run(go())
    assert first.digest == again.digest
    assert events[0]["status"] == f"The push refers to repository [{dst.host}/app]"
    assert sum(e.get("status") == "Pushed" for e in events) == 2
    assert events[-1]["aux"] == {"Tag": "1", "Digest": first.digest, "Size": first.size}
    # second push: every blob is already there, nothing uploaded
    assert not any(m in ("PATCH", "PUT") and "/blobs/" in p for m, p, _ in dst.log)
    # compressed once: the store kept the blobs it made
    layer_digests = [k["digest"] for d in img.diff_ids for k in store.compressed_for(d) if k["source"] == f"{dst.host}/app"]
    assert len(layer_digests) == 2 and all(store.has_blob(d) for d in layer_digests)
    from dockyard.images.store import ImageStore

    other = ImageStore(str(tmp_path / "other"))

    async def back() -> Any:
        async with serve(dst):
            return await pull(other, f"{dst.host}/app:1", settings=FAST)

    assert run(back()).image_id == img.image_id


def test_push_mounts_from_the_repository_it_was_pulled_from(store: Any) -> None:
    reg = FakeRegistry()
    img = _image()
    _seed(reg, store, img, name="library/base")
    store.tag(img.image_id, f"{reg.host}/mine:v2")
    events: list[dict[str, Any]] = []

    async def go() -> Any:
        async with serve(reg):
            return await push(store, f"{reg.host}/mine:v2", progress=events.append, settings=FAST)

    (result,) = run(go())
    assert [e.get("status") for e in events].count("Mounted from library/base") == 2
    assert not any(m == "PATCH" for m, _, _ in reg.log)
    assert result.tag == "v2"
    # and the store now knows the layers are in "mine" too (a later push there is a HEAD)
    for diff_id in img.diff_ids:
        assert f"{reg.host}/mine" in {k["source"] for k in store.compressed_for(diff_id)}


def test_push_with_bearer_auth_and_without_credentials(store: Any) -> None:
    reg = FakeRegistry(auth="bearer", users={"alice": "pw"})
    img = _image()
    reg_open = FakeRegistry()
    _seed(reg_open, store, img)
    _exporting(store, img)

    async def go(auth: AuthConfig | None) -> Any:
        async with serve(reg):
            store.tag(img.image_id, f"{reg.host}/x:1")
            return await push(store, f"{reg.host}/x:1", auth=auth, settings=FAST)

    run(go(AuthConfig(username="alice", password="pw")))
    assert "x" in reg.repos
    with pytest.raises(Unauthorized):
        run(go(AuthConfig(username="alice", password="wrong")))


def test_push_of_an_unknown_image_is_refused(store: Any) -> None:
    with pytest.raises(ImageNotFound):
        run(push(store, "127.0.0.1:1/none:1", settings=FAST))


def test_login_basic_and_bearer(tmp_path: Any) -> None:
    basic = FakeRegistry(auth="basic", users={"alice": "pw"})
    bearer = FakeRegistry(auth="bearer", users={"alice": "pw"})

    async def go() -> Any:
        async with serve(basic), serve(bearer):
            ok = await login(basic.host, AuthConfig(username="alice", password="pw"), settings=FAST)
            with pytest.raises(Unauthorized, match="incorrect username or password"):
                await login(basic.host, AuthConfig(username="alice", password="no"), settings=FAST)
            token = await login(f"http://{bearer.host}/", AuthConfig(username="alice", password="pw"), settings=FAST)
            with pytest.raises(Unauthorized):
                await login(bearer.host, AuthConfig(username="alice", password="no"), settings=FAST)
            # the identity token replaces the password next time
            again = await login(bearer.host, AuthConfig(identity_token=token.identity_token), settings=FAST)
            return ok, token, again

    ok, token, again = run(go())
    assert ok.status == "Login Succeeded" and not ok.identity_token
    assert token.identity_token == "refresh-alice"
    assert again.status == "Login Succeeded"


def test_search_uses_v1_search_then_the_catalog() -> None:
    with_search, without = FakeRegistry(), FakeRegistry(search=False)
    for reg in (with_search, without):
        reg.add_manifest("team/busybox", "latest", r.DOCKER_MANIFEST, b"{}")
        reg.add_manifest("alpine", "latest", r.DOCKER_MANIFEST, b"{}")

    async def go() -> Any:
        async with serve(with_search), serve(without):
            a = await search(f"{with_search.host}/busy", settings=FAST)
            b = await search(f"{without.host}/busy", settings=FAST)
            return a, b

    a, b = run(go())
    assert [x["name"] for x in a] == ["team/busybox"] and a[0]["star_count"] == 1
    assert [x["name"] for x in b] == ["team/busybox"]
    assert set(b[0]) == {"name", "description", "star_count", "is_official", "is_automated"}
    assert any(p.startswith("/v2/_catalog") for _, p, _ in without.log)


def test_a_second_registry_gets_the_blob_compressed_the_first_time(store: Any) -> None:
    src, first, second = FakeRegistry(), FakeRegistry(), FakeRegistry()
    img = _image()
    _seed(src, store, img)

    async def go(reg: FakeRegistry) -> Any:
        async with serve(reg):
            store.tag(img.image_id, f"{reg.host}/app:1")
            return await push(store, f"{reg.host}/app:1", settings=FAST)

    (a,) = run(go(first))

    def no_more_compression(chain_id: str) -> Any:
        raise AssertionError("the layer was compressed again")

    store.layer_tar = no_more_compression
    (b,) = run(go(second))
    assert a.digest == b.digest
    assert first.blobs.keys() == second.blobs.keys()
    assert [m for m, p, _ in second.log if "/blobs/uploads/" in p].count("PUT") == 3  # 2 layers + config


def test_chunked_upload_sends_content_ranges(store: Any) -> None:
    src, dst = FakeRegistry(), FakeRegistry()
    img = _image()
    _seed(src, store, img)
    chunked = RegistrySettings(read_timeout=5, chunk_size=16_384)

    async def go() -> Any:
        async with serve(dst):
            store.tag(img.image_id, f"{dst.host}/app:1")
            return await push(store, f"{dst.host}/app:1", settings=chunked)

    run(go())
    ranges = [h.get("Content-Range") for m, p, h in dst.log if m == "PATCH"]
    assert "0-16383" in ranges and "16384-32767" in ranges  # the big layer, in order
    assert all(r and re.fullmatch(r"\d+-\d+", r) for r in ranges)
    from dockyard.images.store import ImageStore

    back = ImageStore(os.path.join(store.root, "..", "back"))

    async def pull_back() -> Any:
        async with serve(dst):
            return await pull(back, f"{dst.host}/app:1", settings=FAST)

    assert run(pull_back()).image_id == img.image_id
