"""The registry client against the reference tools: Debian's Go registry, skopeo, dockerd 20.10.

Images come from ``tests.support.registries`` (no Docker Hub here). dockerd runs privately
(own data root and socket) and pulls from the same local registry, so image IDs, RepoDigests
and unpacked layer trees can be compared one to one.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import bcrypt
import pytest

from dockyard.distribution import AuthConfig, RegistrySettings, login, pull, push
from dockyard.errors import DockyardError, Unauthorized
from tests.support import registries as r

pytestmark = pytest.mark.interop

SETTINGS = RegistrySettings(read_timeout=20)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[r.GoRegistry]:
    if not r.GoRegistry.available():
        pytest.skip("docker-registry (Debian's Go registry) is not installed")
    reg = r.GoRegistry(str(tmp_path_factory.mktemp("goreg"))).start()
    yield reg
    reg.cleanup()


@pytest.fixture
def store(tmp_path: Any) -> Any:
    from dockyard.images.store import ImageStore

    return ImageStore(str(tmp_path / "store"))


def special_image() -> r.TestImage:
    """Whiteouts, an opaque directory, setuid/setgid/sticky bits, symlinks, hardlinks, owners."""
    base = r.layer_tar([
        r.directory("etc"), r.file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        r.directory("a"), r.file("a/keep", b"keep"), r.file("a/gone", b"gone"),
        r.directory("b"), r.file("b/old1", b"1"), r.directory("b/sub"), r.file("b/sub/old2", b"2"),
        r.file("bin-suid", b"#!/bin/sh\n", 0o4755), r.file("bin-sgid", b"#!/bin/sh\n", 0o2755),
        r.directory("tmp", 0o1777),
        r.symlink("link-rel", "a/keep"), r.symlink("link-abs", "/etc/passwd"),
        r.symlink("dangling", "/nowhere"),
        r.file("hl-one", b"same inode"), r.hardlink("hl-two", "hl-one"),
        r.Entry("owned", b"x", mode=0o640, uid=1000, gid=1000),
    ])
    upper = r.layer_tar([
        r.file("a/.wh.gone"),
        r.directory("b"), r.file("b/.wh..wh..opq"), r.file("b/new", b"new"),
        r.file("a/keep", b"changed", 0o600),
        r.file(".wh.link-rel"),
    ])
    return r.TestImage([base, upper])


def test_pull_docker_oci_and_index_from_the_go_registry(registry: r.GoRegistry, store: Any) -> None:
    docker_img = special_image()
    oci_img = r.TestImage([r.layer_tar([r.file("z", b"zstd")])], oci=True, compression="zstd")
    arm = r.TestImage([r.layer_tar([r.file("arch", b"arm64")])], architecture="arm64")
    r.upload(registry.url, "it/docker", "1", docker_img)
    r.upload(registry.url, "it/oci", "1", oci_img)
    index = r.upload_index(registry.url, "it/multi", "1", [docker_img, arm], oci=True)
    a = asyncio.run(pull(store, f"{registry.host}/it/docker:1", settings=SETTINGS))
    b = asyncio.run(pull(store, f"{registry.host}/it/oci:1", settings=SETTINGS))
    c = asyncio.run(pull(store, f"{registry.host}/it/multi:1", platform="linux/arm64", settings=SETTINGS))
    assert (a.image_id, a.digest) == (docker_img.image_id, docker_img.manifest.digest)
    assert b.image_id == oci_img.image_id
    assert (c.image_id, c.digest) == (arm.image_id, index.digest)


def test_push_to_the_go_registry_and_skopeo_reads_it(registry: r.GoRegistry, store: Any, tmp_path: Any) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    img = special_image()
    r.upload(registry.url, "it/src", "1", img)
    asyncio.run(pull(store, f"{registry.host}/it/src:1", settings=SETTINGS))
    store.tag(img.image_id, f"{registry.host}/it/copy:2")
    (mounted,) = asyncio.run(push(store, f"{registry.host}/it/copy:2", settings=SETTINGS))
    # force a real upload too: a repository the registry cannot mount into from "it/src"
    for diff_id in img.diff_ids:
        assert store.compressed_for(diff_id)
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/it/copy:2"],
        capture_output=True, text=True, check=True,
    )
    info = json.loads(out.stdout)
    assert info["Digest"] == mounted.digest
    assert len(info["Layers"]) == 2
    dest = tmp_path / "copy"
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/it/copy:2", f"dir:{dest}"],
        capture_output=True, text=True, check=True,
    )
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["config"]["digest"] == img.image_id


def test_pull_what_skopeo_pushed(registry: r.GoRegistry, store: Any, tmp_path: Any) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    img = r.TestImage([r.layer_tar([r.file("from-skopeo", b"hi")])], oci=True)
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    for blob in [*img.blobs(), img.manifest]:
        (layout / "blobs" / "sha256" / blob.digest.split(":")[1]).write_bytes(blob.data)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    desc = img.manifest.descriptor()
    desc["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1",
         f"docker://{registry.host}/it/skopeo:v1"],
        capture_output=True, text=True, check=True,
    )
    result = asyncio.run(pull(store, f"{registry.host}/it/skopeo:v1", settings=SETTINGS))
    assert result.image_id == img.image_id


def test_basic_auth_login_and_pull(tmp_path: Any, store: Any) -> None:
    if not r.GoRegistry.available():
        pytest.skip("docker-registry is not installed")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    reg = r.GoRegistry(str(tmp_path / "reg"), htpasswd=str(htpasswd)).start()
    try:
        good = AuthConfig(username="alice", password="s3cret")
        img = r.TestImage([r.layer_tar([r.file("x", b"x")])])
        r.upload(reg.url, "private", "1", img, auth=("alice", "s3cret"))
        assert asyncio.run(login(reg.host, good, settings=SETTINGS)).status == "Login Succeeded"
        with pytest.raises(Unauthorized):
            asyncio.run(login(reg.host, AuthConfig(username="alice", password="bad"), settings=SETTINGS))
        with pytest.raises(DockyardError, match="no basic auth credentials"):
            asyncio.run(pull(store, f"{reg.host}/private:1", settings=SETTINGS))
        assert asyncio.run(pull(store, f"{reg.host}/private:1", auth=good, settings=SETTINGS)).image_id == img.image_id
    finally:
        reg.cleanup()


@pytest.mark.slow
@pytest.mark.root
def test_same_ids_digests_and_trees_as_dockerd(registry: r.GoRegistry, store: Any, tmp_path: Any) -> None:
    from tests.interop.registry.conftest import start_registry, stop_registry
    from tests.support.dockerd import private_dockerd

    img = special_image()
    r.upload(registry.url, "it/special", "1", img)
    ours = asyncio.run(pull(store, f"{registry.host}/it/special:1", settings=SETTINGS))
    with private_dockerd("dyd-") as dockerd:
        dockerd.run("pull", f"{registry.host}/it/special:1")
        info = json.loads(dockerd.run("image", "inspect", f"{registry.host}/it/special:1").stdout)[0]
        assert info["Id"] == ours.image_id
        image = store.get(ours.image_id)
        assert list(info["RepoDigests"]) == list(image.repo_digests)
        theirs = r.dockerd_layer_dirs(f"{dockerd.base}/data", info["RootFS"]["Layers"])
        mine = [store.layer(chain).path for chain in image.chain_ids]
        for t, m in zip(theirs, mine, strict=True):
            mine_tree, their_tree = r.tree(m), r.tree(t)
            diff = {k: (v, their_tree.get(k)) for k, v in mine_tree.items() if v != their_tree.get(k)}
            assert not diff, repr(diff)
            assert mine_tree == their_tree
        # and dockerd pulls what we push, to the Go registry and to ours (fresh: real uploads)
        served_root = tempfile.mkdtemp(prefix="dyo-", dir="/tmp")
        served = start_registry(served_root)
        try:
            for host in (registry.host, served.host):
                store.tag(ours.image_id, f"{host}/it/ours:9")
                asyncio.run(push(store, f"{host}/it/ours:9", settings=SETTINGS))
                dockerd.run("pull", f"{host}/it/ours:9")
                back = json.loads(dockerd.run("image", "inspect", f"{host}/it/ours:9").stdout)[0]
                assert back["Id"] == ours.image_id
        finally:
            stop_registry(served)
            shutil.rmtree(served_root, ignore_errors=True)


def test_search_falls_back_to_the_go_registry_catalog(registry: r.GoRegistry) -> None:
    from dockyard.distribution import search

    r.upload(registry.url, "findme/tool", "1", r.TestImage([r.layer_tar([r.file("t", b"t")])]))
    found = asyncio.run(search(f"{registry.host}/findme", settings=SETTINGS))
    assert [x["name"] for x in found] == ["findme/tool"]
