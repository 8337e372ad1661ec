"""Garbage collection: referenced and recent blobs stay, old orphans and stale uploads go."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from dockyard.registry.gc import collect_garbage
from dockyard.registry.storage import FilesystemDriver
from dockyard.registry.store import Store
from tests.unit.registry.harness import RunningRegistry, make_image, make_index, small_layer


def _age_everything(root: str, seconds: float) -> None:
    old = time.time() - seconds
    for dirpath, _, files in os.walk(root):
        for f in files:
            os.utime(os.path.join(dirpath, f), (old, old))


def _blob(root: str, digest: str) -> str:
    hex_ = digest.split(":")[1]
    return os.path.join(root, "blobs", "sha256", hex_[:2], hex_, "data")


def test_gc_deletes_old_orphans_only(registry: RunningRegistry) -> None:
    image = make_image()
    registry.push_image("r", "v1", image)
    orphan = registry.push_blob("r", b"orphan layer")
    _age_everything(registry.root, 7200)
    store = Store(FilesystemDriver(registry.root))
    dry = collect_garbage(store, dry_run=True, grace=3600)
    assert [d for d, _ in dry.deleted_blobs] == [orphan]
    assert os.path.exists(_blob(registry.root, orphan))
    report = collect_garbage(store, grace=3600)
    assert [d for d, _ in report.deleted_blobs] == [orphan]
    assert not os.path.exists(_blob(registry.root, orphan))
    assert registry.request("HEAD", f"/v2/r/blobs/{orphan}").status == 404
    assert not os.path.exists(os.path.join(registry.root, "repositories", "r", "_layers",
                                           "sha256", orphan.split(":")[1]))
    for digest in [*image.blobs, image.digest]:
        assert os.path.exists(_blob(registry.root, digest))
    assert registry.request("GET", "/v2/r/manifests/v1").status == 200


def test_gc_spares_a_push_in_progress(registry: RunningRegistry) -> None:
    """Blobs of a push whose manifest is not there yet, and an old blob it reuses, survive."""
    old_layer = small_layer(b"old")
    registry.push_blob("r", old_layer)
    _age_everything(registry.root, 7200)
    new = make_image([small_layer(b"new"), old_layer])
    for blob in new.blobs.values():
        if blob != old_layer:
            registry.push_blob("r", blob)
    location = registry.request("POST", "/v2/r/blobs/uploads/").headers["Location"]
    registry.request("PATCH", location, b"half")
    # the client probes the old layer (as docker push does) before it sends the manifest
    assert registry.request("HEAD", f"/v2/r/blobs/{sorted(new.blobs)[0]}").status == 200
    for digest in new.blobs:
        registry.request("HEAD", f"/v2/r/blobs/{digest}")
    report = collect_garbage(Store(FilesystemDriver(registry.root)), grace=3600)
    assert report.deleted_blobs == [] and report.deleted_uploads == []
    assert registry.push_manifest("r", "v2", new.manifest).status == 201
    assert registry.request("PATCH", location, b"rest").status == 202


def test_gc_purges_abandoned_uploads(registry: RunningRegistry) -> None:
    location = registry.request("POST", "/v2/r/blobs/uploads/").headers["Location"]
    registry.request("PATCH", location, b"abandoned")
    _age_everything(os.path.join(registry.root, "uploads"), 3 * 86400)
    report = collect_garbage(Store(FilesystemDriver(registry.root)))
    assert len(report.deleted_uploads) == 1
    assert registry.request("GET", location).code == "BLOB_UPLOAD_UNKNOWN"


def test_gc_command_dry_run_and_real(registry: RunningRegistry) -> None:
    orphan = registry.push_blob("r", b"orphan")
    cmd = [sys.executable, "-m", "dockyard.registry", "gc", "--root", registry.root]
    out = subprocess.run([*cmd, "--dry-run", "--grace", "0s"], capture_output=True, text=True,
                         check=True).stdout
    assert f"would delete blob {orphan}" in out
    assert os.path.exists(_blob(registry.root, orphan))
    kept = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "deleted 0 blobs" in kept  # default grace: an hour
    out = subprocess.run([*cmd, "--grace", "0"], capture_output=True, text=True, check=True).stdout
    assert f"deleted blob {orphan}" in out
    assert not os.path.exists(_blob(registry.root, orphan))


def test_gc_command_refuses_a_missing_root(tmp_path: pytest.TempPathFactory) -> None:
    out = subprocess.run([sys.executable, "-m", "dockyard.registry", "gc", "--root",
                          f"{tmp_path}/nothing"], capture_output=True, text=True)
    assert out.returncode == 1 and "no registry storage" in out.stderr
    assert not os.path.exists(f"{tmp_path}/nothing")


def test_delete_untagged_keeps_what_tags_reach(registry: RunningRegistry) -> None:
    old = make_image([small_layer(b"old")])
    new = make_image([small_layer(b"new")])
    registry.push_image("r", "latest", old)
    registry.push_image("r", "latest", new)  # "old" is now untagged
    child = make_image([small_layer(b"child")])
    registry.push_image("r", child.digest, child)
    index = make_index([child])
    assert registry.push_manifest("r", "multi", index.manifest, index.media_type).status == 201
    subject = {"mediaType": new.media_type, "digest": new.digest, "size": len(new.manifest)}
    sig = make_image([small_layer(b"sig")], subject=subject, artifact_type="application/x-sig")
    registry.push_image("r", sig.digest, sig)
    _age_everything(registry.root, 7200)
    fresh = make_image([small_layer(b"fresh")])  # pushed by digest just now, tag comes later
    registry.push_image("r", fresh.digest, fresh)
    store = Store(FilesystemDriver(registry.root))
    report = collect_garbage(store, grace=3600, delete_untagged=True)
    assert report.deleted_manifests == [f"r@{old.digest}"]
    assert registry.request("HEAD", f"/v2/r/manifests/{old.digest}").status == 404
    old_layer = [d for d in old.blobs if d not in new.blobs and d not in fresh.blobs]
    assert {d for d, _ in report.deleted_blobs} == {old.digest, *old_layer}
    for kept in (new, child, index, sig, fresh):
        assert registry.request("HEAD", f"/v2/r/manifests/{kept.digest}").status == 200


def test_gc_command_delete_untagged_dry_run(registry: RunningRegistry) -> None:
    old = make_image([small_layer(b"old")])
    registry.push_image("r", "latest", old)
    registry.push_image("r", "latest", make_image([small_layer(b"new")]))
    out = subprocess.run([sys.executable, "-m", "dockyard.registry", "gc", "--root",
                          registry.root, "--dry-run", "--grace", "0", "--delete-untagged"],
                         capture_output=True, text=True, check=True).stdout
    assert f"would delete manifest r@{old.digest}" in out
    assert registry.request("HEAD", f"/v2/r/manifests/{old.digest}").status == 200
