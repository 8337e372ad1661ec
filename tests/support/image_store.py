"""The image store fixture shared by the images integration and interop tests: one store per
test, on each driver (overlay, and the plain-copy fallback), every container rootfs removed after."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dockyard.images import ImageStore
from dockyard.images.rootfs import overlay_supported


@pytest.fixture(params=["overlay", "copy"])
def store(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[ImageStore]:
    s = ImageStore(os.path.join(str(tmp_path), "store"), driver=request.param)
    if request.param == "overlay" and not overlay_supported(s.tmp_dir):
        pytest.skip("overlayfs is not available here")
    yield s
    for cid in s.rootfs.list():
        s.remove_rootfs(cid)
