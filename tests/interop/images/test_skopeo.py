"""skopeo (containers/image) reads our docker-archive, and we load what it writes as an OCI
archive or a docker-archive."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from dockyard.images import ImageStore
from dockyard.images.bootstrap import build_busybox_image

pytestmark = pytest.mark.interop


@pytest.fixture
def skopeo() -> str:
    path = shutil.which("skopeo")
    if path is None:
        pytest.skip("skopeo is not installed")
    return path


def skopeo_run(skopeo: str, *args: str) -> str:
    out = subprocess.run([skopeo, "--insecure-policy", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_skopeo_reads_our_archive_and_we_read_its_oci_and_docker_archives(
    skopeo: str, tmp_path: os.PathLike[str]
) -> None:
    base = str(tmp_path)
    ours = ImageStore(os.path.join(base, "ours"), driver="copy")
    image_id = build_busybox_image(ours, "bb:1")
    archive = os.path.join(base, "ours.tar")
    with open(archive, "wb") as f:
        ours.save(["bb:1"], f)
    info = json.loads(skopeo_run(skopeo, "inspect", "--config", f"docker-archive:{archive}"))
    assert info["rootfs"]["diff_ids"] == list(ours.get(image_id).layers)

    oci = os.path.join(base, "oci.tar")
    skopeo_run(skopeo, "copy", f"docker-archive:{archive}", f"oci-archive:{oci}:bb:2")
    back = os.path.join(base, "back.tar")
    skopeo_run(skopeo, "copy", f"docker-archive:{archive}", f"docker-archive:{back}:bb:3")

    theirs = ImageStore(os.path.join(base, "theirs"), driver="copy")
    with open(oci, "rb") as f:
        assert theirs.load(f) == ["bb:2"]
    with open(back, "rb") as f:
        assert theirs.load(f) == ["bb:3"]
    # containers/image keeps the layers; the docker-archive round trip keeps the config too
    assert theirs.resolve("bb:2").layers == ours.get(image_id).layers
    assert theirs.resolve("bb:3").id == image_id
    chain = theirs.resolve("bb:2").chain_ids[-1]
    assert b"".join(theirs.layer_tar(chain)) == b"".join(ours.layer_tar(chain))
