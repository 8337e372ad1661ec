"""Real overlay mounts (and the copy driver) of images built in a store: what a container sees,
what ``docker diff`` reports, and what commit, export and save/load carry over."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
import uuid

import pytest

from dockyard.errors import InvalidArgument
from dockyard.images import ImageStore
from dockyard.images.bootstrap import build_busybox_image
from tests.unit.images.tars import LNK, SYM, D, F, config_for, entry, make_tar

pytestmark = pytest.mark.root


def cid() -> str:
    return "t" + uuid.uuid4().hex


def sh(root: str, script: str) -> str:
    out = subprocess.run(["chroot", root, "/bin/sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_busybox_runs_in_a_mounted_rootfs(store: ImageStore) -> None:
    image_id = build_busybox_image(store)
    assert build_busybox_image(store) == image_id  # deterministic, idempotent
    c = cid()
    store.prepare_rootfs(c, image_id)
    root = store.mount_rootfs(c)
    assert sh(root, "echo Hello World!") == "Hello World!\n"
    assert os.stat(os.path.join(root, "tmp")).st_mode & 0o7777 == 0o1777
    st_ls, st_bb = os.stat(os.path.join(root, "bin/ls")), os.stat(os.path.join(root, "bin/busybox"))
    assert st_ls.st_ino == st_bb.st_ino  # applets are hardlinks, as in the official image
    store.unmount_rootfs(c)
    store.remove_rootfs(c)
    assert c not in store.rootfs.list()


def layered_image(store: ImageStore) -> str:
    base = build_busybox_image(store)
    base_img = store.get(base)
    lower = make_tar(
        entry("data/", D),
        entry("data/keep", F, b"keep"),
        entry("data/gone", F, b"gone"),
        entry("opq/", D),
        entry("opq/old", F, b"old"),
        entry("perm/", D, mode=0o2775, uid=1000, gid=1000),
        entry("perm/suid", F, b"#!/bin/sh\n", mode=0o4755, uid=1000, gid=50),
        entry("perm/sticky/", D, mode=0o1777),
        entry("perm/hard", LNK, link="perm/suid", mode=0o4755, uid=1000, gid=50),
    )
    upper = make_tar(
        entry("data/", D),
        entry("data/.wh.gone", F),
        entry("opq/", D),
        entry("opq/.wh..wh..opq", F),
        entry("opq/new", F, b"new"),
    )
    c1, d1 = store.apply_layer(base_img.top_layer, io.BytesIO(lower))
    _, d2 = store.apply_layer(c1, io.BytesIO(upper))
    return store.add_image(config_for([*base_img.layers, d1, d2]), tags=["layered"])


def test_whiteouts_and_opaque_dirs_hide_lower_files(store: ImageStore) -> None:
    image_id = layered_image(store)
    c = cid()
    store.prepare_rootfs(c, image_id)
    root = store.mount_rootfs(c)
    assert sorted(os.listdir(os.path.join(root, "data"))) == ["keep"]
    assert sorted(os.listdir(os.path.join(root, "opq"))) == ["new"]
    assert sh(root, "cat /data/keep /opq/new") == "keepnew"
    # ownership and special bits as the tar said
    st = os.stat(os.path.join(root, "perm/suid"))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o4755, 1000, 50)
    st = os.stat(os.path.join(root, "perm"))
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o2775, 1000)
    assert stat.S_IMODE(os.stat(os.path.join(root, "perm/sticky")).st_mode) == 0o1777
    assert os.stat(os.path.join(root, "perm/hard")).st_ino == os.stat(os.path.join(root, "perm/suid")).st_ino


def test_layer_dirs_hold_overlay_whiteouts(store: ImageStore) -> None:
    image_id = layered_image(store)
    top = store.layer(store.get(image_id).chain_ids[-1]).path
    st = os.lstat(os.path.join(top, "data/gone"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(top, "opq"), "trusted.overlay.opaque") == b"y"


def test_diff_commit_and_a_container_of_the_committed_image(store: ImageStore) -> None:
    image_id = layered_image(store)
    c = cid()
    store.prepare_rootfs(c, image_id)
    root = store.mount_rootfs(c)
    sh(root, "echo added > /tmp/new; rm /bin/ls; echo changed >> /etc/passwd; rm -r /data; mkdir /data; echo fresh > /data/only")
    changes = store.changes(c)
    assert ("A", "/tmp/new") in changes
    assert ("D", "/bin/ls") in changes
    assert ("C", "/etc/passwd") in changes
    assert ("C", "/bin") in changes
    assert ("A", "/data/only") in changes
    assert ("D", "/data/keep") in changes or ("C", "/data") in changes
    new_id = store.commit(c, {"Cmd": ["cat", "/tmp/new"]}, ref="committed:1", author="me", comment="test")
    img = store.get(new_id)
    assert img.parent == image_id
    assert img.config["config"] == {"Cmd": ["cat", "/tmp/new"]}
    assert img.config["history"][-1]["comment"] == "test"
    assert len(img.layers) == len(store.get(image_id).layers) + 1
    c2 = cid()
    store.prepare_rootfs(c2, new_id)
    root2 = store.mount_rootfs(c2)
    assert sh(root2, "cat /tmp/new /data/only") == "added\nfresh\n"
    assert not os.path.lexists(os.path.join(root2, "bin/ls"))
    assert os.listdir(os.path.join(root2, "data")) == ["only"]
    with open(os.path.join(root2, "etc/passwd")) as f:
        assert f.read().endswith("changed\n")
    assert store.changes(c2) == []


def test_rootfs_size_counts_what_the_container_wrote(store: ImageStore) -> None:
    image_id = build_busybox_image(store)
    c = cid()
    store.prepare_rootfs(c, image_id)
    assert store.rootfs_size(c) == (0, store.get(image_id).size)
    sh(store.mount_rootfs(c), "head -c 5000 /bin/busybox > /tmp/blob")
    rw, total = store.rootfs_size(c)
    assert rw == 5000
    assert total == 5000 + store.get(image_id).size


def test_a_container_of_no_image_starts_empty(store: ImageStore) -> None:
    c = cid()
    store.prepare_rootfs(c, None)
    root = store.mount_rootfs(c)
    assert os.listdir(root) == []
    with open(os.path.join(root, "x"), "w") as f:
        f.write("x")
    assert store.changes(c) == [("A", "/x")]
    img = store.get(store.commit(c, {"Cmd": ["/x"]}))
    assert len(img.layers) == 1 and img.parent == ""


def test_commit_without_changes_adds_an_empty_layer_entry(store: ImageStore) -> None:
    image_id = build_busybox_image(store)
    c = cid()
    store.prepare_rootfs(c, image_id)
    new_id = store.commit(c, None)
    img = store.get(new_id)
    assert img.layers == store.get(image_id).layers
    assert img.config["history"][-1]["empty_layer"] is True


def test_export_is_the_merged_filesystem(store: ImageStore) -> None:
    image_id = layered_image(store)
    c = cid()
    store.prepare_rootfs(c, image_id)
    sh(store.mount_rootfs(c), "echo x > /tmp/x")
    buf = io.BytesIO()
    store.export_rootfs(c, buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        names = set(tar.getnames())
    assert {"tmp/x", "bin/busybox", "data/keep", "opq/new"} <= names
    assert "data/gone" not in names and "opq/old" not in names
    assert not any(".wh." in n for n in names)


def test_save_load_keeps_whiteouts(store: ImageStore, tmp_path: os.PathLike[str]) -> None:
    image_id = layered_image(store)
    buf = io.BytesIO()
    store.save(["layered"], buf)
    other = ImageStore(os.path.join(str(tmp_path), "other"), driver=store.rootfs.driver)
    buf.seek(0)
    assert other.load(buf) == ["layered:latest"]
    c = cid()
    other.prepare_rootfs(c, image_id)
    try:
        root = other.mount_rootfs(c)
        assert sorted(os.listdir(os.path.join(root, "data"))) == ["keep"]
        assert sorted(os.listdir(os.path.join(root, "opq"))) == ["new"]
    finally:
        other.remove_rootfs(c)


def test_an_image_of_120_layers_mounts(store: ImageStore) -> None:
    base = store.get(build_busybox_image(store))
    chain, diffs = base.top_layer, list(base.layers)
    for i in range(120):
        chain, diff_id = store.apply_layer(chain, io.BytesIO(make_tar(entry(f"layer{i:03d}", F, str(i).encode()))))
        diffs.append(diff_id)
    image_id = store.add_image(config_for(diffs))
    c = cid()
    m = store.prepare_rootfs(c, image_id)
    if m.driver == "overlay":
        assert len(m.mount_options()) > 4096  # too long for one page: the relative form is used
    root = store.mount_rootfs(c)
    assert sh(root, "cat /layer000 /layer119") == "0119"


def test_layers_cannot_write_through_a_symlink_of_a_lower_layer(
    store: ImageStore, tmp_path: os.PathLike[str]
) -> None:
    outside = os.path.join(str(tmp_path), "outside")
    os.mkdir(outside)
    with open(os.path.join(outside, "secret"), "w") as f:
        f.write("host file")
    base = store.get(build_busybox_image(store))
    lower_chain, lower_diff = store.apply_layer(
        base.top_layer, io.BytesIO(make_tar(entry("escape", SYM, link=outside)))
    )
    # a hardlink through the lower symlink is refused ...
    with pytest.raises(InvalidArgument):
        store.apply_layer(lower_chain, io.BytesIO(make_tar(entry("x", LNK, link="escape/secret"))))
    # ... and a file under the symlink's name lands in the layer, which hides the symlink
    _chain, diff_id = store.apply_layer(lower_chain, io.BytesIO(make_tar(entry("escape/new", F, b"inside"))))
    image_id = store.add_image(config_for([*base.layers, lower_diff, diff_id]))
    c = cid()
    store.prepare_rootfs(c, image_id)
    root = store.mount_rootfs(c)
    assert sh(root, "cat /escape/new") == "inside"
    assert sorted(os.listdir(outside)) == ["secret"]


def test_image_in_use_by_a_rootfs_keeps_its_layers(store: ImageStore) -> None:
    image_id = build_busybox_image(store)
    c = cid()
    store.prepare_rootfs(c, image_id)
    store.remove(image_id, force=True)
    assert store.has_layer(store.rootfs.get(c).chain_id or "")
    assert sh(store.mount_rootfs(c), "echo still") == "still\n"
