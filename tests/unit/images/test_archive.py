"""docker save / load / import between stores, and what a bad archive leaves behind."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import tarfile

import pytest
import zstandard

from dockyard.errors import InvalidArgument
from dockyard.images import ImageStore
from tests.unit.images.tars import LNK, SYM, D, F, config_for, digest, entry, make_tar


@pytest.fixture
def src(tmp_path: os.PathLike[str]) -> ImageStore:
    return ImageStore(os.path.join(str(tmp_path), "src"), driver="copy")


@pytest.fixture
def dst(tmp_path: os.PathLike[str]) -> ImageStore:
    return ImageStore(os.path.join(str(tmp_path), "dst"), driver="copy")


def two_layer_image(store: ImageStore, tag: str = "app:1") -> str:
    one = make_tar(entry("bin/", D), entry("bin/tool", F, os.urandom(3000), mode=0o755))
    two = make_tar(entry("etc/", D), entry("etc/motd", F, b"hi\n"), entry("etc/link", SYM, link="motd"))
    c1, d1 = store.apply_layer(None, io.BytesIO(one))
    _, d2 = store.apply_layer(c1, io.BytesIO(two))
    return store.add_image(config_for([d1, d2]), tags=[tag])


def members(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            f = tar.extractfile(m)
            if f is not None:
                out[m.name] = f.read()
    return out


def test_save_writes_docker_archive_layout(src: ImageStore) -> None:
    image_id = two_layer_image(src)
    buf = io.BytesIO()
    src.save(["app:1"], buf)
    files = members(buf.getvalue())
    manifest = json.loads(files["manifest.json"])
    assert manifest[0]["Config"] == image_id[7:] + ".json"
    assert manifest[0]["RepoTags"] == ["app:1"]
    layers = manifest[0]["Layers"]
    assert len(layers) == 2
    img = src.get(image_id)
    for path, diff_id in zip(layers, img.layers, strict=True):
        assert digest(files[path]) == diff_id
        v1 = path.split("/")[0]
        assert files[f"{v1}/VERSION"] == b"1.0"
    assert json.loads(files["repositories"]) == {"app": {"1": layers[-1].split("/")[0]}}
    assert digest(files[manifest[0]["Config"]]) == image_id


def test_save_then_load_gives_the_same_image(src: ImageStore, dst: ImageStore) -> None:
    image_id = two_layer_image(src)
    buf = io.BytesIO()
    src.save(["app"], buf)
    buf.seek(0)
    assert dst.load(buf) == ["app:1"]
    img = dst.resolve("app:1")
    assert img.id == image_id
    assert img.chain_ids == src.get(image_id).chain_ids
    # and the layers rebuild to the same bytes in the second store too
    for chain in img.chain_ids:
        assert b"".join(dst.layer_tar(chain)) == b"".join(src.layer_tar(chain))


def test_save_by_id_has_no_tags_and_load_reports_the_id(src: ImageStore, dst: ImageStore) -> None:
    image_id = two_layer_image(src)
    buf = io.BytesIO()
    src.save([image_id[7:19]], buf)
    assert json.loads(members(buf.getvalue())["manifest.json"])[0]["RepoTags"] is None
    buf.seek(0)
    assert dst.load(buf) == [image_id]


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress, zstandard.compress])
def test_load_of_a_compressed_archive(src: ImageStore, dst: ImageStore, compress) -> None:  # type: ignore[no-untyped-def]
    two_layer_image(src)
    buf = io.BytesIO()
    src.save(["app:1"], buf)
    assert dst.load(io.BytesIO(compress(buf.getvalue()))) == ["app:1"]


def test_load_refuses_a_tampered_layer_and_keeps_nothing(src: ImageStore, dst: ImageStore) -> None:
    two_layer_image(src)
    buf = io.BytesIO()
    src.save(["app:1"], buf)
    files = members(buf.getvalue())
    manifest = json.loads(files["manifest.json"])
    evil = make_tar(entry("bin/", D), entry("bin/tool", F, b"trojan", mode=0o755))
    files[manifest[0]["Layers"][0]] = evil
    out = make_tar(*(entry(name, F, data) for name, data in files.items()))
    with pytest.raises(InvalidArgument, match="diff id mismatch"):
        dst.load(io.BytesIO(out))
    assert dst.list() == []
    assert dst.layers.list() == []
    assert [n for n in os.listdir(dst.tmp_dir) if not n.startswith("probe-")] == []


def test_load_refuses_escaping_names(dst: ImageStore) -> None:
    bad = make_tar(entry("../manifest.json", F, b"[]"))
    with pytest.raises(InvalidArgument):
        dst.load(io.BytesIO(bad))


def test_load_of_an_oci_layout(dst: ImageStore) -> None:
    layer = make_tar(entry("hello", F, b"world"))
    blob = gzip.compress(layer)
    config = config_for([digest(layer)])
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(blob), "size": len(blob)}],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest), "size": len(manifest),
        "annotations": {"io.containerd.image.name": "docker.io/library/hello:oci", "org.opencontainers.image.ref.name": "oci"},
    }]}).encode()
    out = make_tar(
        entry("oci-layout", F, b'{"imageLayoutVersion":"1.0.0"}'),
        entry("index.json", F, index),
        *(entry(f"blobs/sha256/{digest(b)[7:]}", F, b) for b in (blob, config, manifest)),
    )
    assert dst.load(io.BytesIO(out)) == ["hello:oci"]
    assert dst.resolve("hello:oci").id == digest(config)


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress, lzma.compress, bz2.compress, zstandard.compress],
                         ids=["plain", "gzip", "xz", "bzip2", "zstd"])
def test_import_tar(dst: ImageStore, compress) -> None:  # type: ignore[no-untyped-def]
    rootfs = make_tar(entry("etc/", D), entry("etc/hostname", F, b"box\n"))
    image_id = dst.import_tar(io.BytesIO(compress(rootfs)), ref="imported:v1", config={"Cmd": ["/bin/sh"]})
    img = dst.resolve("imported:v1")
    assert img.id == image_id
    assert img.layers == (digest(rootfs),)
    assert img.config["config"] == {"Cmd": ["/bin/sh"]}
    assert img.config["history"][0]["comment"] == "Imported from -"


def test_import_of_garbage_fails_cleanly(dst: ImageStore) -> None:
    with pytest.raises(InvalidArgument):
        dst.import_tar(io.BytesIO(gzip.compress(b"this is not a tar" * 100)))
    assert dst.list() == [] and dst.layers.list() == []


def test_load_follows_layer_symlinks_between_legacy_dirs(src: ImageStore, dst: ImageStore) -> None:
    # dockerd writes a layer shared under two v1 ids once, the second as a symlink to it
    layer = make_tar(entry("shared", F, b"same bytes"))
    _, diff_id = src.apply_layer(None, io.BytesIO(layer))
    one, two = config_for([diff_id], comment="one"), config_for([diff_id], comment="two")
    manifest = json.dumps([
        {"Config": digest(one)[7:] + ".json", "RepoTags": ["one:1"], "Layers": ["aaa/layer.tar"]},
        {"Config": digest(two)[7:] + ".json", "RepoTags": ["two:1"], "Layers": ["bbb/layer.tar"]},
    ]).encode()
    out = make_tar(
        entry("aaa/", D), entry("aaa/layer.tar", F, layer),
        entry("bbb/", D), entry("bbb/layer.tar", SYM, link="../aaa/layer.tar"),
        entry(digest(one)[7:] + ".json", F, one), entry(digest(two)[7:] + ".json", F, two),
        entry("manifest.json", F, manifest),
    )
    assert dst.load(io.BytesIO(out)) == ["one:1", "two:1"]
    assert dst.resolve("two:1").layers == (diff_id,)


def test_load_of_an_archive_with_hardlinked_layers(src: ImageStore, dst: ImageStore) -> None:
    layer = make_tar(entry("f", F, b"x"))
    _, diff_id = src.apply_layer(None, io.BytesIO(layer))
    config = config_for([diff_id])
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["h:1"], "Layers": ["b/layer.tar"]}]).encode()
    out = make_tar(entry("a/", D), entry("a/layer.tar", F, layer), entry("b/", D),
                   entry("b/layer.tar", LNK, link="a/layer.tar"),
                   entry("c.json", F, config), entry("manifest.json", F, manifest))
    assert dst.load(io.BytesIO(out)) == ["h:1"]


def test_load_refuses_a_symlink_out_of_the_archive(dst: ImageStore) -> None:
    config = config_for([digest(b"x")])
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}]).encode()
    out = make_tar(entry("l/", D), entry("l/layer.tar", SYM, link="../../../../etc/passwd"),
                   entry("c.json", F, config), entry("manifest.json", F, manifest))
    with pytest.raises(InvalidArgument):
        dst.load(io.BytesIO(out))


@pytest.mark.parametrize("compress", [gzip.compress, zstandard.compress, bz2.compress, lzma.compress],
                         ids=["gzip", "zstd", "bzip2", "xz"])
def test_import_of_corrupt_compressed_data_is_invalid(dst: ImageStore, compress) -> None:  # type: ignore[no-untyped-def]
    good = compress(make_tar(entry("f", F, os.urandom(100_000))))
    bad = good[:40] + bytes(b ^ 0x55 for b in good[40:200]) + good[200:]
    with pytest.raises(InvalidArgument):
        dst.import_tar(io.BytesIO(bad))
    assert dst.list() == [] and dst.layers.list() == []
