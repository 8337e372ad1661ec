"""Images move both ways between our store and the reference dockerd (docker save/load), and
``docker diff``/``commit`` layouts match ours for the same changes."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from dockyard.images import ImageStore
from dockyard.images.bootstrap import build_busybox_image
from tests.support.dockerd import PrivateDockerd, private_dockerd
from tests.unit.images.tars import LNK, D, F, config_for, entry, make_tar

pytestmark = [pytest.mark.interop, pytest.mark.root, pytest.mark.slow]

SCRIPT = (
    "echo added > /tmp/new; rm /bin/ls; echo more >> /etc/passwd; rm -r /home; mkdir /home; "
    "touch /home/fresh; rm -r /var; mkdir -p /new/a/b; touch /usr; chmod 711 /root; touch /etc/group"
)


@pytest.fixture(scope="module")
def docker() -> Iterator[PrivateDockerd]:
    with private_dockerd("dy-img-dockerd-") as d:
        yield d


def docker_load(docker: PrivateDockerd, data: bytes) -> str:
    path = os.path.join(docker.base, f"in-{uuid.uuid4().hex}.tar")
    with open(path, "wb") as f:
        f.write(data)
    try:
        return docker.run("load", "-i", path).stdout
    finally:
        os.unlink(path)


def docker_save(docker: PrivateDockerd, ref: str) -> bytes:
    path = os.path.join(docker.base, f"out-{uuid.uuid4().hex}.tar")
    docker.run("save", "-o", path, ref)
    try:
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def special_image(store: ImageStore, tag: str) -> str:
    base = store.get(build_busybox_image(store))
    lower = make_tar(
        entry("data/", D), entry("data/keep", F, b"keep"), entry("data/gone", F, b"gone"),
        entry("opq/", D), entry("opq/old", F, b"old"),
        entry("perm/", D, mode=0o2775, uid=1000, gid=1000),
        entry("perm/suid", F, b"x", mode=0o4755, uid=1000, gid=50),
        entry("perm/hard", LNK, link="perm/suid", mode=0o4755, uid=1000, gid=50),
    )
    upper = make_tar(entry("data/", D), entry("data/.wh.gone", F), entry("opq/", D),
                     entry("opq/.wh..wh..opq", F), entry("opq/new", F, b"new"))
    c1, d1 = store.apply_layer(base.top_layer, io.BytesIO(lower))
    _, d2 = store.apply_layer(c1, io.BytesIO(upper))
    return store.add_image(config_for([*base.layers, d1, d2], config={"Cmd": ["sh"]}), tags=[tag])


def test_our_save_loads_into_dockerd(docker: PrivateDockerd, store: ImageStore) -> None:
    tag = f"dy-special-{uuid.uuid4().hex[:8]}:1"
    image_id = special_image(store, tag)
    buf = io.BytesIO()
    store.save([tag], buf)
    assert f"Loaded image: {tag}" in docker_load(docker, buf.getvalue())
    assert docker.run("image", "inspect", "-f", "{{.Id}}", tag).stdout.strip() == image_id
    # the same Size and the same history rows (ids, sizes) as dockerd computes
    assert int(docker.run("image", "inspect", "-f", "{{.Size}}", tag).stdout) == store.get(image_id).size
    rows = docker.run("history", "--no-trunc", "--human=false", "--format", "{{.ID}} {{.Size}}", tag).stdout.split("\n")[:-1]
    assert rows == [f"{r['id']} {r['size']}" for r in store.history(tag)]
    script = "ls /data /opq; stat -c '%a %u %g' /perm/suid /perm; stat -c %i /perm/suid /perm/hard"
    out = docker.run("run", "--rm", "--network", "none", tag, "sh", "-c", script).stdout.split("\n")
    assert out[:4] == ["/data:", "keep", "", "/opq:"]
    assert out[4] == "new"
    assert out[5:7] == ["4755 1000 50", "2775 1000 1000"]
    assert out[7] == out[8]  # still one inode


def test_dockerd_commit_and_save_load_into_our_store(docker: PrivateDockerd, store: ImageStore) -> None:
    tag = f"dy-bb-{uuid.uuid4().hex[:8]}:latest"
    build_busybox_image(store, tag)
    buf = io.BytesIO()
    store.save([tag], buf)
    docker_load(docker, buf.getvalue())
    name = f"dy-{uuid.uuid4().hex[:10]}"
    docker.run("run", "--name", name, "--network", "none", tag, "sh", "-c", SCRIPT)
    try:
        docker_diff = sorted(docker.run("diff", name).stdout.split("\n")[:-1])
        committed = f"dy-committed-{uuid.uuid4().hex[:8]}:1"
        docker.run("commit", name, committed)
    finally:
        docker.run("rm", "-f", name, check=False)
    saved = docker_save(docker, committed)
    assert store.load(io.BytesIO(saved)) == [committed]
    img = store.resolve(committed)
    assert img.id == docker.run("image", "inspect", "-f", "{{.Id}}", committed).stdout.strip()
    # dockerd's diff layer unpacked by us: whiteout for /bin/ls, opaque /home
    top = store.layer(img.chain_ids[-1]).path
    st = os.lstat(os.path.join(top, "bin/ls"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(top, "home"), "trusted.overlay.opaque") == b"y"
    # the same changes in our own container give the same `docker diff`
    cid = "t" + uuid.uuid4().hex
    store.prepare_rootfs(cid, store.resolve(tag).id)
    root = store.mount_rootfs(cid)
    subprocess.run(["chroot", root, "/bin/sh", "-c", SCRIPT], check=True)
    ours = sorted(f"{kind} {path}" for kind, path in store.changes(cid))
    assert ours == docker_diff, (ours, docker_diff)
    # and our commit of it carries the same layout back to dockerd
    ours_committed = store.commit(cid, {"Cmd": ["sh"]}, ref=f"dy-ours-{uuid.uuid4().hex[:8]}:1")
    ref = store.get(ours_committed).repo_tags[0]
    buf = io.BytesIO()
    store.save([ref], buf)
    docker_load(docker, buf.getvalue())
    out = docker.run("run", "--rm", "--network", "none", ref, "sh", "-c",
                     "ls /home; test ! -e /bin/ls && cat /tmp/new").stdout
    assert out == "fresh\nadded\n"
