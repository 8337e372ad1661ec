"""Pull against a registry of our own that behaves, then misbehaves, on purpose.

Every failure must end with a clear error and the store exactly as before (a listing of
every path under its root is compared).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import urllib.parse
from typing import Any

import pytest

from dockyard.distribution import AuthConfig, RegistrySettings, pull
from dockyard.errors import (
    DockyardError,
    InvalidArgument,
    NotFound,
    Unavailable,
    Unsupported,
)
from tests.support import registries as r
from tests.unit.distribution.conftest import run
from tests.unit.distribution.fake_registry import FakeRegistry, serve

FAST = RegistrySettings(read_timeout=5, connect_timeout=2)


def small_image(**kw: Any) -> r.TestImage:
    return r.TestImage(
        [
            r.layer_tar([r.directory("etc"), r.file("etc/hello", b"hello\n"), r.symlink("etc/link", "hello")]),
            r.layer_tar([r.file("etc/big", os.urandom(300_000)), r.file("etc/hello", b"bye\n", 0o4755)]),
        ],
        **kw,
    )


def do_pull(reg: FakeRegistry, store: Any, name: str, **kw: Any) -> Any:
    kw.setdefault("settings", FAST)
    return run(pull(store, f"{reg.host}/{name}", **kw))


async def _with(reg: FakeRegistry, fn: Any) -> Any:
    async with serve(reg):
        return await fn()


def pull_from(reg: FakeRegistry, store: Any, name: str, **kw: Any) -> Any:
    kw.setdefault("settings", FAST)

    async def go() -> Any:
        async with serve(reg):
            return await pull(store, f"{reg.host}/{name}", **kw)

    return run(go())


def layer_path(store: Any, image_id: str, rel: str) -> str:
    image = store.get(image_id)
    return os.path.join(store.layer(image.chain_ids[-1]).path, rel)


def test_pull_docker_schema2_gives_docker_ids_and_progress(store: Any) -> None:
    reg = FakeRegistry()
    img = small_image()
    mdigest = reg.add_image("app", "v1", img)
    events: list[dict[str, Any]] = []
    result = pull_from(reg, store, "app:v1", progress=events.append)
    assert result.image_id == img.image_id
    assert result.digest == mdigest
    image = store.get(img.image_id)
    assert list(image.layers) == img.diff_ids
    assert image.repo_digests == (f"{reg.host}/app@{mdigest}",)
    assert image.repo_tags == (f"{reg.host}/app:v1",)
    top = store.layer(image.chain_ids[-1]).path
    with open(os.path.join(top, "etc/hello"), "rb") as f:
        assert f.read() == b"bye\n"
    assert os.stat(os.path.join(top, "etc/hello")).st_mode & 0o7777 == 0o4755
    statuses = [e["status"] for e in events]
    assert statuses[0] == "Pulling from app"
    ids = {layer.digest.split(":")[1][:12] for layer in img.layers}
    for ident in ids:
        mine = [e["status"] for e in events if e.get("id") == ident]
        assert mine[0] == "Pulling fs layer"
        assert "Downloading" in mine and "Verifying Checksum" in mine
        assert mine.index("Download complete") < mine.index("Pull complete")
        assert mine[-1] == "Pull complete"
    assert statuses[-2] == f"Digest: {mdigest}"
    assert statuses[-1] == f"Status: Downloaded newer image for {reg.host}/app:v1"


def test_second_pull_reports_already_exists_and_up_to_date(store: Any) -> None:
    reg = FakeRegistry()
    img = small_image()
    reg.add_image("app", "latest", img)
    pull_from(reg, store, "app")
    reg.log.clear()
    events: list[dict[str, Any]] = []
    result = pull_from(reg, store, "app", progress=events.append)
    assert result.up_to_date
    assert [e["status"] for e in events if "id" in e and e["id"] != "latest"] == ["Already exists"] * 2
    assert events[-1]["status"] == f"Status: Image is up to date for {reg.host}/app:latest"
    assert not any(layer.digest in path for _, path, _ in reg.log for layer in img.layers)


@pytest.mark.parametrize("compression", ["zstd", None, "gzip"])
def test_pull_oci_layers_in_every_compression(store: Any, compression: str | None) -> None:
    reg = FakeRegistry()
    img = small_image(oci=True, compression=compression)
    reg.add_image("oci", "latest", img)
    assert pull_from(reg, store, "oci").image_id == img.image_id
    with open(layer_path(store, img.image_id, "etc/hello"), "rb") as f:
        assert f.read() == b"bye\n"


@pytest.mark.parametrize("oci", [False, True])
def test_index_selects_the_requested_platform(store: Any, oci: bool) -> None:
    reg = FakeRegistry()
    amd = small_image(architecture="amd64")
    arm = r.TestImage([r.layer_tar([r.file("arch", b"arm64")])], architecture="arm64")
    for img in (amd, arm):
        reg.add_image("multi", img.manifest.digest, img)
    index = r.index_of([amd, arm], oci=oci)
    idigest = reg.add_manifest("multi", "latest", index.media_type, index.data)
    result = pull_from(reg, store, "multi", platform="linux/arm64")
    assert result.image_id == arm.image_id
    assert result.digest == idigest  # RepoDigests name the index, as dockerd does
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        pull_from(reg, store, "multi", platform="linux/s390x")


def test_pull_by_digest_verifies_the_manifest(store: Any, snapshot: Any) -> None:
    reg = FakeRegistry()
    img = small_image()
    mdigest = reg.add_image("app", "latest", img)
    assert pull_from(reg, store, f"app@{mdigest}").image_id == img.image_id
    other = r.TestImage([r.layer_tar([r.file("x", b"x")])])
    reg2 = FakeRegistry()
    d2 = reg2.add_image("app", "latest", other)
    reg2.faults.manifest_bytes[d2] = img.manifest.data  # a registry lying about content
    before = snapshot()
    with pytest.raises(InvalidArgument, match=f"manifest verification failed for digest {d2}"):
        pull_from(reg2, store, f"app@{d2}")
    assert snapshot() == before


def test_missing_manifest_says_not_found(store: Any) -> None:
    reg = FakeRegistry()
    with pytest.raises(NotFound, match=r"manifest for .*/nothere:latest not found: manifest unknown"):
        pull_from(reg, store, "nothere")


# -- auth -----------------------------------------------------------------------------------


def test_bearer_token_is_fetched_once_and_reused(store: Any) -> None:
    reg = FakeRegistry(auth="bearer")
    img = small_image()
    reg.add_image("app", "latest", img)
    assert pull_from(reg, store, "app").image_id == img.image_id
    assert reg.token_requests == 1
    token_calls = [p for m, p, h in reg.log if p.startswith("/token")]
    assert "scope=repository:app:pull" in urllib.parse.unquote(token_calls[0])


def test_bearer_token_is_refreshed_when_it_expires(store: Any) -> None:
    reg = FakeRegistry(auth="bearer", token_ttl=1)  # too close to expiry to be reused
    img = small_image()
    reg.add_image("app", "latest", img)
    assert pull_from(reg, store, "app").image_id == img.image_id
    assert reg.token_requests >= 2


def test_a_revoked_token_is_replaced_once(store: Any) -> None:
    reg = FakeRegistry(auth="bearer")
    img = small_image()
    reg.add_image("app", "latest", img)
    reg.faults.revoke_tokens_on_blob = True
    assert pull_from(reg, store, "app").image_id == img.image_id
    assert reg.token_requests >= 2


def test_bearer_with_wrong_password_is_a_plain_error(store: Any, snapshot: Any) -> None:
    reg = FakeRegistry(auth="bearer", users={"alice": "secret"})
    reg.add_image("app", "latest", small_image())
    before = snapshot()
    with pytest.raises(DockyardError, match="incorrect username or password") as info:
        pull_from(reg, store, "app", auth=AuthConfig(username="alice", password="nope"))
    # dockerd answers 500 here: a 401 would make the docker CLI prompt for a login
    assert info.value.http_status == 500
    assert snapshot() == before


def test_basic_auth(store: Any, snapshot: Any) -> None:
    reg = FakeRegistry(auth="basic", users={"alice": "secret"})
    img = small_image()
    reg.add_image("app", "latest", img)
    before = snapshot()
    with pytest.raises(DockyardError, match="no basic auth credentials") as info:  # dockerd's words
        pull_from(reg, store, "app")
    assert info.value.http_status == 500
    assert snapshot() == before
    denied = r"pull access denied for .*app, .*: denied: requested access to the resource is denied"
    with pytest.raises(NotFound, match=denied):  # refused credentials: dockerd's words and 404
        pull_from(reg, store, "app", auth=AuthConfig(username="alice", password="wrong"))
    good = AuthConfig(username="alice", password="secret")
    assert pull_from(reg, store, "app", auth=good).image_id == img.image_id


def test_blob_redirect_does_not_leak_credentials(store: Any) -> None:
    reg = FakeRegistry(auth="bearer")
    reg.faults.redirect_blobs = True
    img = small_image()
    reg.add_image("app", "latest", img)
    assert pull_from(reg, store, "app").image_id == img.image_id
    storage = [h for m, p, h in reg.log if p.startswith("/storage/")]
    assert storage and all("Authorization" not in h for h in storage)


# -- verification ----------------------------------------------------------------------------


def _fail(reg: FakeRegistry, store: Any, snapshot: Any, exc: type[Exception], match: str, **kw: Any) -> None:
    before = snapshot()
    with pytest.raises(exc, match=match):
        pull_from(reg, store, "app", **kw)
    assert snapshot() == before
    assert os.listdir(os.path.join(store.root, "tmp")) == []


def test_wrong_blob_bytes_fail_and_leave_nothing(store: Any, snapshot: Any) -> None:
    reg = FakeRegistry()
    img = small_image()
    reg.add_image("app", "latest", img)
    layer = img.layers[1]
    reg.faults.blob_bytes[layer.digest] = gzip.compress(b"\0" * 1024)[:-1] + b"\1"
    _fail(reg, store, snapshot, InvalidArgument, f"verification failed for digest {layer.digest}")


def test_a_bad_upper_layer_removes_the_good_lower_one(store: Any, snapshot: Any) -> None:
    reg = FakeRegistry()
    img = small_image()
    reg.add_image("app", "latest", img)
    upper = img.layers[1]
    reg.faults.blob_bytes[upper.digest] = upper.data[:-4] + b"\0\0\0\0"  # same size, wrong bytes
    _fail(reg, store, snapshot, InvalidArgument, "verification failed")
    assert not store.has_layer(store.chain_id(img.diff_ids[:1]))


def test_trailing_garbage_after_gzip_is_refused(store: Any, snapshot: Any) -> None:
    tar = r.layer_tar([r.file("a", b"a" * 1000)])
    img = r.TestImage([tar])
    # the registry's blob (and its digest) include the garbage: the digest matches, the stream does not
    img.layers[0].data = gzip.compress(tar) + b"GARBAGE!"
    img.__post_init__ = None  # type: ignore[assignment,method-assign]
    manifest = json.loads(img.manifest.data)
    manifest["layers"][0] = img.layers[0].descriptor()
    reg = FakeRegistry()
    for blob in img.blobs():
        reg.add_blob("app", blob)
    reg.add_manifest("app", "latest", r.DOCKER_MANIFEST, json.dumps(manifest).encode())
    _fail(reg, store, snapshot, InvalidArgument, "gzip")


def test_trailing_garbage_not_in_the_digest_is_a_mismatch(store: Any, snapshot: Any) -> None:
    reg = FakeRegistry()
    img = small_image()
    reg.add_image("app", "latest", img)
    layer = img.layers[0]
    reg.faults.blob_bytes[layer.digest] = layer.data + b"\0garbage"
    _fail(reg, store, snapshot, InvalidArgument, f"filesystem layer verification failed for digest {layer.digest}")


def test_diff_id_mismatch_is_refused(store: Any, snapshot: Any) -> None:
    img = small_image()
    config = json.loads(img.config.data)
    config["rootfs"]["diff_ids"][1] = r.sha256(b"something else")
    reg = FakeRegistry()
    for blob in img.layers:
        reg.add_blob("app", blob)
    cblob = r.Blob(r.DOCKER_CONFIG, json.dumps(config).encode())
    reg.add_blob("app", cblob)
    manifest = json.loads(img.manifest.data)
    manifest["config"] = cblob.descriptor()
    reg.add_manifest("app", "latest", r.DOCKER_MANIFEST, json.dumps(manifest).encode())
    _fail(reg, store, snapshot, InvalidArgument, "diff id mismatch")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"not json", "malformed manifest"),
        (b'{"schemaVersion": 1, "name": "x"}', "schema 1"),
        (b'{"schemaVersion": 2, "mediaType": "text/plain"}', "unsupported manifest media type"),
        (b'{"schemaVersion": 2, "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", '
         b'"digest": "sha256:' + b"a" * 64 + b'", "size": 2}, "layers": []}', "not a container image"),
        (b'{"schemaVersion": 2, "config": {"mediaType": "application/vnd.docker.container.image.v1+json", '
         b'"digest": "sha256:../../etc/passwd", "size": 2}, "layers": []}', "invalid digest"),
        (b'{"schemaVersion": 2, "config": {"mediaType": "application/vnd.docker.container.image.v1+json", '
         b'"digest": "sha256:' + b"a" * 64 + b'", "size": -5}, "layers": []}', "invalid size"),
    ],
)
def test_malformed_manifests_are_refused(store: Any, snapshot: Any, body: bytes, match: str) -> None:
    reg = FakeRegistry()
    reg.add_manifest("app", "latest", r.DOCKER_MANIFEST, body)
    _fail(reg, store, snapshot, DockyardError, match)


def test_malformed_config_is_refused(store: Any, snapshot: Any) -> None:
    img = small_image()
    reg = FakeRegistry()
    bad = r.Blob(r.DOCKER_CONFIG, b'{"rootfs": {"type": "layers", "diff_ids": "nope"}}')
    for blob in img.layers:
        reg.add_blob("app", blob)
    reg.add_blob("app", bad)
    manifest = json.loads(img.manifest.data)
    manifest["config"] = bad.descriptor()
    reg.add_manifest("app", "latest", r.DOCKER_MANIFEST, json.dumps(manifest).encode())
    _fail(reg, store, snapshot, InvalidArgument, "malformed image config")


def test_non_distributable_layers_are_refused_unless_allowed(store: Any, snapshot: Any) -> None:
    img = small_image()
    manifest = json.loads(img.manifest.data)
    manifest["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    reg = FakeRegistry()
    for blob in img.blobs():
        reg.add_blob("app", blob)
    reg.add_manifest("app", "latest", r.DOCKER_MANIFEST, json.dumps(manifest).encode())
    _fail(reg, store, snapshot, Unsupported, "non-distributable")
    allowed = RegistrySettings.from_daemon_config({"allow-nondistributable-artifacts": ["127.0.0.0/8"]})
    assert pull_from(reg, store, "app", settings=allowed).image_id == img.image_id


# -- transport faults -----------------------------------------------------------------------


def test_interrupted_download_resumes_with_range(store: Any) -> None:
    reg = FakeRegistry()
    img = small_image()
    reg.add_image("app", "latest", img)
    big = img.layers[1].digest
    reg.faults.truncate[big] = 2
    assert pull_from(reg, store, "app").image_id == img.image_id
    ranges = [h.get("Range") for m, p, h in reg.log if p.endswith(big)]
    assert ranges[0] is None and ranges[1] and ranges[1].startswith("bytes=")


def test_resume_works_without_range_support(store: Any) -> None:
    reg = FakeRegistry()
    img = small_image()
    reg.add_image("app", "latest", img)
    reg.faults.no_range = True
    reg.faults.truncate[img.layers[1].digest] = 1
    assert pull_from(reg, store, "app").image_id == img.image_id


def test_endless_truncation_gives_up(store: Any, snapshot: Any) -> None:
    reg = FakeRegistry()
    img = small_image()
    reg.add_image("app", "latest", img)
    reg.faults.truncate[img.layers[1].digest] = 100
    _fail(reg, store, snapshot, Unavailable, "after 3 attempts",
          settings=RegistrySettings(download_attempts=3, read_timeout=5))


def test_endless_redirects_stop(store: Any, snapshot: Any) -> None:
    reg = FakeRegistry()
    reg.add_image("app", "latest", small_image())
    reg.faults.redirect_loop = True
    _fail(reg, store, snapshot, Unavailable, "redirect")


def test_stalled_blob_times_out(store: Any, snapshot: Any) -> None:
    reg = FakeRegistry()
    reg.add_image("app", "latest", small_image())
    reg.faults.slow_blob = 3.0
    _fail(reg, store, snapshot, Unavailable, "(?i)timeout",
          settings=RegistrySettings(read_timeout=0.3, download_attempts=2))


def test_server_errors_are_reported(store: Any, snapshot: Any) -> None:
    reg = FakeRegistry()
    reg.add_image("app", "latest", small_image())
    reg.faults.status[r"/blobs/sha256"] = 500
    _fail(reg, store, snapshot, Unavailable, "injected 500")


def test_unreachable_registry_is_unavailable(store: Any) -> None:
    port = r.free_port()
    with pytest.raises(Unavailable, match=f"127.0.0.1:{port}"):
        run(pull(store, f"127.0.0.1:{port}/x", settings=FAST))


# -- hostile layers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [
        [r.file("../escape", b"x")],
        [r.file("a/../../escape", b"x")],
        [r.symlink("link", "/tmp"), r.file("link/escape", b"x")],
        [r.symlink("up", "../../../.."), r.file("up/escape", b"x")],
        [r.hardlink("h", "../../../../etc/passwd")],
        [r.Entry("dev/mem", kind=b"3", mode=0o600, devmajor=1, devminor=1)],
    ],
    ids=["dotdot", "nested-dotdot", "symlink-abs", "symlink-rel", "hardlink-out", "device"],
)
def test_hostile_layers_are_refused(store: Any, snapshot: Any, tmp_path: Any, entries: list[r.Entry]) -> None:
    reg = FakeRegistry()
    reg.add_image("app", "latest", r.TestImage([r.layer_tar(entries)]))
    before = snapshot()
    outside = sorted(os.listdir(tmp_path))  # the store's parent: where ".." would land
    with pytest.raises(DockyardError):
        pull_from(reg, store, "app")
    assert snapshot() == before
    assert sorted(os.listdir(tmp_path)) == outside
    assert not os.path.exists("/tmp/escape")


# -- mirrors and concurrency ----------------------------------------------------------------


def test_mirror_is_used_first_and_falls_back(store: Any) -> None:
    upstream, mirror = FakeRegistry(), FakeRegistry()
    img = small_image()
    upstream.add_image("app", "latest", img)

    async def go() -> Any:
        async with serve(upstream), serve(mirror):
            settings = RegistrySettings.from_daemon_config(
                {"registry-mirrors": [f"{upstream.host}={mirror.url}"]}
            )
            return await pull(store, f"{upstream.host}/app", settings=settings)

    assert run(go()).image_id == img.image_id  # mirror has nothing: upstream answered
    assert any("/manifests/latest" in p for _, p, _ in mirror.log)
    store2_root = os.path.join(store.root, "..", "store2")
    from dockyard.images.store import ImageStore

    store2 = ImageStore(store2_root)
    mirror.add_image("app", "latest", img)
    upstream.log.clear()

    async def go2() -> Any:
        async with serve(upstream), serve(mirror):
            settings = RegistrySettings.from_daemon_config(
                {"registry-mirrors": [f"{upstream.host}={mirror.url}"]}
            )
            return await pull(store2, f"{upstream.host}/app", settings=settings)

    run(go2())
    assert any("/blobs/" in p for _, p, _ in mirror.log)


def test_many_layers_one_download_at_a_time(store: Any) -> None:
    reg = FakeRegistry()
    tars = [r.layer_tar([r.file(f"f{i}", os.urandom(50_000))]) for i in range(6)]
    img = r.TestImage(tars)
    reg.add_image("app", "latest", img)
    settings = RegistrySettings(max_concurrent_downloads=1, read_timeout=5)
    assert pull_from(reg, store, "app", settings=settings).image_id == img.image_id
    image = store.get(img.image_id)
    for i in range(6):
        assert os.path.exists(os.path.join(store.layer(image.chain_ids[i]).path, f"f{i}"))


def test_insecure_registry_with_a_self_signed_certificate(store: Any, tmp_path: Any) -> None:
    from tests.unit.distribution.fake_registry import self_signed_context

    reg = FakeRegistry()
    img = small_image()
    reg.add_image("app", "latest", img)
    ctx = self_signed_context(str(tmp_path))

    async def go() -> Any:
        async with serve(reg, ssl_context=ctx):
            return await pull(store, f"{reg.host}/app", settings=FAST)

    # 127.0.0.0/8 is insecure by default: HTTPS without verification is tried first and works
    assert run(go()).image_id == img.image_id
    assert any(p.startswith("/v2/app/manifests") for _, p, _ in reg.log)


def test_allowed_foreign_layer_comes_from_its_urls(store: Any) -> None:
    img = small_image()
    manifest = json.loads(img.manifest.data)
    reg = FakeRegistry()
    for blob in img.blobs():
        reg.add_blob("app", blob)
    # the foreign layer is only at its URL (storage), not in the repository
    foreign = img.layers[0]
    reg.repo_blobs["app"].discard(foreign.digest)

    async def go() -> Any:
        async with serve(reg):
            manifest["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
            manifest["layers"][0]["urls"] = [f"{reg.url}/storage/{foreign.digest}"]
            reg.add_manifest("app", "latest", r.DOCKER_MANIFEST, json.dumps(manifest).encode())
            allowed = RegistrySettings(allow_nondistributable=True, read_timeout=5)
            return await pull(store, f"{reg.host}/app", settings=allowed)

    assert run(go()).image_id == img.image_id
    assert any(p == f"/storage/{foreign.digest}" for _, p, _ in reg.log)


def test_pull_all_tags_follows_pagination(store: Any) -> None:
    from dockyard.distribution import pull_all_tags
    from dockyard.oci.reference import parse_reference

    reg = FakeRegistry()
    reg.tag_page = 2
    images = {f"v{i}": r.TestImage([r.layer_tar([r.file("v", str(i).encode())])]) for i in range(3)}
    for tag, img in images.items():
        reg.add_image("app", tag, img)
    events: list[dict[str, Any]] = []

    async def go() -> Any:
        async with serve(reg):
            return await pull_all_tags(store, parse_reference(f"{reg.host}/app"),
                                       progress=events.append, settings=FAST)

    results = run(go())
    assert sorted(res.reference.tag for res in results) == ["v0", "v1", "v2"]
    assert sum("/tags/list" in p for _, p, _ in reg.log) == 2
    for tag, img in images.items():
        assert store.resolve(f"{reg.host}/app:{tag}").id == img.image_id
    statuses = [e["status"] for e in events if e.get("status", "").startswith("Status:")]
    assert statuses == [f"Status: Downloaded newer image for {reg.host}/app"]


def test_secure_registry_trusts_only_certs_d(store: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from dockyard.distribution import settings as settings_mod
    from tests.unit.distribution.fake_registry import self_signed_context

    # pretend loopback is not insecure, so certificates are verified as for any registry
    monkeypatch.setattr(settings_mod, "_DEFAULT_INSECURE", ())
    reg = FakeRegistry()
    img = small_image()
    reg.add_image("app", "latest", img)
    ctx = self_signed_context(str(tmp_path))
    reg.port = r.free_port()
    certs = tmp_path / "certs.d"
    strict = RegistrySettings(read_timeout=5, certs_dirs=(str(certs),))

    async def go() -> Any:
        async with serve(reg, ssl_context=ctx):
            return await pull(store, f"127.0.0.1:{reg.port}/app", settings=strict)

    with pytest.raises(Unavailable, match=r"(?i)certificate"):
        run(go())
    (certs / f"127.0.0.1:{reg.port}").mkdir(parents=True)
    (certs / f"127.0.0.1:{reg.port}" / "ca.crt").write_bytes((tmp_path / "cert.pem").read_bytes())
    assert run(go()).image_id == img.image_id


def test_explicit_platform_must_match_a_single_platform_image(store: Any, snapshot: Any) -> None:
    reg = FakeRegistry()
    reg.add_image("app", "latest", small_image(architecture="amd64"))
    _fail(reg, store, snapshot, NotFound, "does not match the specified platform: wanted linux/arm64",
          platform="linux/arm64")
    assert pull_from(reg, store, "app", platform="linux/amd64").image_id


def test_docker_hub_names_pull_through_a_hub_mirror(store: Any) -> None:
    mirror = FakeRegistry()
    img = small_image()
    mirror.add_image("library/ubuntu", "latest", img)

    async def go() -> Any:
        async with serve(mirror):
            settings = RegistrySettings.from_daemon_config({"registry-mirrors": [mirror.url]})
            return await pull(store, "ubuntu", settings=settings)

    result = run(go())  # no internet here: only the mirror can answer
    assert result.image_id == img.image_id
    image = store.get(img.image_id)
    assert image.repo_tags == ("ubuntu:latest",)
    assert image.repo_digests == (f"ubuntu@{img.manifest.digest}",)


def test_connection_reset_mid_blob_resumes(store: Any) -> None:
    reg = FakeRegistry()
    img = small_image()
    reg.add_image("app", "latest", img)
    big = img.layers[1].digest
    reg.faults.truncate[big] = 1
    reg.faults.reset = True
    assert pull_from(reg, store, "app").image_id == img.image_id
    # a second request, with Range unless the reset discarded every byte before we read it
    assert len([p for m, p, h in reg.log if p.endswith(big)]) == 2


def test_an_image_without_layers_pulls(store: Any) -> None:
    reg = FakeRegistry()
    img = r.TestImage([])  # FROM scratch with only metadata
    reg.add_image("empty", "latest", img)
    assert pull_from(reg, store, "empty").image_id == img.image_id
    assert store.get(img.image_id).layers == ()


def _two_images_one_base() -> tuple[r.TestImage, r.TestImage]:
    base = r.layer_tar([r.file("base", os.urandom(300_000))])
    a = r.TestImage([base, r.layer_tar([r.file("a", b"a")])])
    b = r.TestImage([base, r.layer_tar([r.file("b", b"b")])])
    return a, b


def test_concurrent_pulls_of_images_sharing_a_layer_fetch_it_once(store: Any) -> None:
    from dockyard.distribution import LayerWork

    reg = FakeRegistry()
    a, b = _two_images_one_base()
    reg.add_image("a", "1", a)
    reg.add_image("b", "1", b)
    reg.faults.slow_blob = 0.3  # the base is still arriving when the second pull starts
    shared = LayerWork()

    async def go() -> Any:
        async with serve(reg):
            first = asyncio.create_task(pull(store, f"{reg.host}/a:1", settings=FAST, shared=shared))
            await asyncio.sleep(0.1)
            second = await pull(store, f"{reg.host}/b:1", settings=FAST, shared=shared)
            return await first, second

    ra, rb = run(go())
    assert (ra.image_id, rb.image_id) == (a.image_id, b.image_id)
    base_gets = [p for m, p, _ in reg.log if m == "GET" and a.layers[0].digest in p]
    assert len(base_gets) == 1
    assert shared.inflight == {} and shared.waiters == {}


def test_a_waiting_pull_fetches_the_layer_itself_when_the_owner_fails(store: Any, snapshot: Any) -> None:
    from dockyard.distribution import LayerWork

    reg = FakeRegistry()
    a, b = _two_images_one_base()
    reg.add_image("a", "1", a)
    reg.add_image("b", "1", b)
    reg.faults.slow_blob = 0.3
    shared = LayerWork()
    # pull "a" is refused its base layer (a 500 only for its first request of it)
    failing = {"left": 1}
    original = reg._send_blob

    async def flaky(request: Any, digest: str) -> Any:
        if digest == a.layers[0].digest and failing["left"] and "/a/" in request.path:
            failing["left"] -= 1
            from aiohttp import web

            await asyncio.sleep(0.3)  # fail only once the second pull waits for this layer
            return web.Response(status=500, text="boom")
        return await original(request, digest)

    reg._send_blob = flaky  # type: ignore[method-assign]

    async def go() -> Any:
        async with serve(reg):
            first = asyncio.create_task(pull(store, f"{reg.host}/a:1", settings=FAST, shared=shared))
            await asyncio.sleep(0.05)
            second = asyncio.create_task(pull(store, f"{reg.host}/b:1", settings=FAST, shared=shared,
                                              progress=events.append))
            return await asyncio.gather(first, second, return_exceptions=True)

    events: list[dict[str, Any]] = []
    ra, rb = run(go())
    assert isinstance(ra, Unavailable)
    base_id = a.layers[0].digest[7:19]
    assert {"status": "Waiting", "progressDetail": {}, "id": base_id} in events  # it did wait
    assert rb.image_id == b.image_id
    assert store.get(b.image_id).layers == tuple(b.diff_ids)
