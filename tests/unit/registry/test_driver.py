"""The API layer works over any StorageDriver: here one without local files (like S3)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dockyard.registry.storage import FilesystemDriver
from tests.unit.registry.harness import RunningRegistry, base_config, make_image


class NoLocalFiles(FilesystemDriver):
    """Behaves like an object store: nothing can be handed to sendfile(2)."""

    def local_path(self, path: str) -> str | None:
        return None


@pytest.fixture
def remote_like(tmp_path: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    root = f"{tmp_path}/root"
    server = RunningRegistry(base_config(root), NoLocalFiles(root, durable=False))
    yield server
    server.stop()


def test_blobs_stream_from_a_driver_without_local_files(remote_like: RunningRegistry) -> None:
    data = os.urandom(3 << 20)
    digest = remote_like.push_blob("r", data)
    whole = remote_like.request("GET", f"/v2/r/blobs/{digest}")
    assert whole.status == 200 and whole.body == data
    part = remote_like.request("GET", f"/v2/r/blobs/{digest}", headers={"Range": "bytes=5-9"})
    assert (part.status, part.body) == (206, data[5:10])
    assert part.headers["Content-Range"] == f"bytes 5-9/{len(data)}"
    tail = remote_like.request("GET", f"/v2/r/blobs/{digest}", headers={"Range": "bytes=-4"})
    assert tail.body == data[-4:]
    past = remote_like.request("GET", f"/v2/r/blobs/{digest}",
                               headers={"Range": f"bytes={len(data)}-"})
    assert past.status == 416


def test_images_push_and_pull_over_that_driver(remote_like: RunningRegistry) -> None:
    image = make_image()
    digest = remote_like.push_image("r", "v1", image)
    assert remote_like.request("GET", "/v2/r/manifests/v1").body == image.manifest
    assert remote_like.request("GET", f"/v2/r/manifests/{digest}").status == 200
