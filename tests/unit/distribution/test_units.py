"""Pure parts: challenges, manifests and platforms, settings, X-Registry-Auth credentials."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockyard.distribution.auth import parse_challenges
from dockyard.distribution.compression import compressor, decompressing_reader
from dockyard.distribution.credentials import AuthConfig
from dockyard.distribution.manifest import Index, Platform, parse_manifest, select_platform
from dockyard.distribution.settings import RegistrySettings
from dockyard.errors import InvalidArgument, NotFound
from tests.support import registries as r


def test_challenge_parsing_handles_quotes_and_several_schemes() -> None:
    (bearer, basic) = parse_challenges([
        'Bearer realm="https://auth.example/token",service="reg, with comma",scope="repository:a/b:pull,push"',
        'Basic realm=plain',
    ])
    assert bearer.scheme == "bearer" and bearer.realm == "https://auth.example/token"
    assert bearer.service == "reg, with comma"
    assert bearer.params["scope"] == "repository:a/b:pull,push"
    assert basic.scheme == "basic" and basic.realm == "plain"


def test_platform_parsing_and_selection() -> None:
    assert Platform.parse("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert Platform.parse("linux/x86_64").architecture == "amd64"
    with pytest.raises(InvalidArgument):
        Platform.parse("linux//")
    images = [r.TestImage([b""], architecture=a) for a in ("amd64", "arm64")]
    blob = r.index_of(images)
    index = parse_manifest(blob.data, blob.media_type, blob.digest)
    assert isinstance(index, Index)
    assert select_platform(index, Platform("linux", "arm64")).digest == images[1].manifest.digest
    assert select_platform(index, Platform("linux", "arm64", "v8")).digest == images[1].manifest.digest
    with pytest.raises(NotFound):
        select_platform(index, Platform("windows", "amd64"))


def test_oci_manifest_without_media_type_is_recognised() -> None:
    img = r.TestImage([b"x"], oci=True)
    body = json.loads(img.manifest.data)
    del body["mediaType"]
    raw = json.dumps(body).encode()
    m = parse_manifest(raw, "application/octet-stream", r.sha256(raw))
    assert m.media_type == r.OCI_MANIFEST


def test_settings_from_daemon_json_and_insecure_defaults() -> None:
    s = RegistrySettings.from_daemon_config({
        "registry-mirrors": ["https://hub-mirror.example", "quay.io=http://quay-mirror:5000"],
        "insecure-registries": ["myreg:5000", "10.0.0.0/8"],
        "max-concurrent-downloads": 7,
    })
    assert s.mirrors_for("docker.io") == ("https://hub-mirror.example",)
    assert s.mirrors_for("quay.io") == ("http://quay-mirror:5000",)
    assert s.max_concurrent_downloads == 7
    assert s.is_insecure("127.0.0.1:5000") and s.is_insecure("localhost:5000")
    assert s.is_insecure("myreg:5000") and s.is_insecure("10.1.2.3")
    assert not s.is_insecure("192.0.2.1:443")
    with pytest.raises(InvalidArgument):
        RegistrySettings.from_daemon_config({"max-concurrent-uploads": 0})


def test_gzip_reader_rejects_trailing_garbage_but_reads_members(tmp_path: Any) -> None:
    import gzip
    import io

    two = gzip.compress(b"a" * 10) + gzip.compress(b"b" * 10)
    assert decompressing_reader(io.BytesIO(two), r.DOCKER_LAYER).read() == b"a" * 10 + b"b" * 10
    with pytest.raises(InvalidArgument, match="gzip"):
        decompressing_reader(io.BytesIO(two + b"junk"), r.DOCKER_LAYER).read()
    comp = b"".join(compressor(1)(iter([b"x" * 1000, b"y" * 1000])))
    assert gzip.decompress(comp) == b"x" * 1000 + b"y" * 1000


def test_auth_config_from_x_registry_auth_json() -> None:
    a = AuthConfig.from_docker_json({"username": "u", "password": "p", "serveraddress": "h:1"})
    assert (a.username, a.password, a.server_address) == ("u", "p", "h:1")
    b = AuthConfig.from_docker_json({"IdentityToken": "tok"})
    assert b.identity_token == "tok" and not b.empty
    assert AuthConfig.from_docker_json({}).empty


def test_spool_keeps_order_across_disk_and_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from dockyard.distribution import spool as spool_mod
    from dockyard.errors import InvalidArgument as Bad

    monkeypatch.setattr(spool_mod, "MEMORY_LIMIT", 10)
    sp = spool_mod.Spool()
    sp.write(b"aaaa")  # nobody reads yet: to disk
    assert sp._file is not None
    reader = sp.reader()
    sp.write(b"bbbb")  # reader attached: memory
    sp.write(b"cccccccc")  # over the limit: disk again
    sp.write(b"dd")
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(reader.read()))
    t.start()
    sp.finish()  # the end is only visible once the writer says so
    t.join(5)
    assert got == [b"aaaabbbbccccccccdd"]
    sp.close()
    failing = spool_mod.Spool()
    r2 = failing.reader()
    failing.write(b"x")
    failing.fail(Bad("digest mismatch"))
    with pytest.raises(Bad, match="digest mismatch"):
        r2.read()


def test_zlib_fallback_when_isal_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip
    import io

    from dockyard.distribution import compression

    monkeypatch.setattr(compression, "_igzip", None)
    monkeypatch.setattr(compression, "_isal_zlib", None)
    data = b"layer bytes " * 1000
    packed = b"".join(compression.compressor(1)(iter([data])))
    assert gzip.decompress(packed) == data
    assert compression.decompressing_reader(io.BytesIO(packed), r.DOCKER_LAYER).read() == data
    with pytest.raises(InvalidArgument, match="gzip"):
        compression.decompressing_reader(io.BytesIO(packed + b"x"), r.DOCKER_LAYER).read()
