"""Containers' root filesystems: an overlayfs snapshot per container, or a plain copy.

``overlay`` driver (the default where the kernel has overlayfs and we are root)::

    containers/<id>/meta.json   {"image", "chain", "driver"}
    containers/<id>/upper/      the container's writes (overlay upperdir): its diff
    containers/<id>/work/       overlay's workdir
    containers/<id>/merged/     the mount point handed to the runtime as root.path

    mount -t overlay overlay -o lowerdir=<root>/l/<short>:...,upperdir=..,workdir=..,
                                index=off,redirect_dir=off,metacopy=off  merged

``lowerdir`` lists the image's layers top first through the short ``l/`` links: the whole
option string must fit in one page (overlayfs.rst), about 80 layers with absolute paths.
Beyond that the layers are named relative to ``l/`` and mount(8) runs there (about 190).
``redirect_dir`` and ``metacopy`` stay off so the upper directory alone is a complete diff
(what commit and ``docker diff`` read), as Docker's overlay2 driver requires too.

``copy`` driver (no overlayfs, or not root): ``containers/<id>/rootfs/`` is a full copy of
the image, built layer by layer honouring whiteouts; diffs are computed by comparing it
with the layers (slow, like Docker's vfs driver, but correct).
"""

from __future__ import annotations

import builtins
import json
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from dockyard.atomic import atomic_write_json
from dockyard.errors import Conflict, Internal, InvalidArgument, NotFound, Unsupported
from dockyard.images._util import host_arch, now_rfc3339, remove_tree, tmp_name
from dockyard.images.diff import (
    changes,
    naive_changes,
    naive_diff_tree,
    walk,
    write_tree,
)
from dockyard.images.unpack import is_opaque, is_whiteout

if TYPE_CHECKING:
    from dockyard.images.store import ImageStore

__all__ = ["RootfsManager", "RootfsMount", "overlay_supported"]

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MOUNT_DATA_MAX = 4095  # one page, including the NUL
OVERLAY_EXTRA = "index=off,redirect_dir=off,metacopy=off"


@dataclass(frozen=True)
class RootfsMount:
    container_id: str
    driver: str  # "overlay" | "copy"
    path: str  # the root filesystem the runtime uses (merged mount point, or the copy)
    image_id: str | None
    chain_id: str | None
    lowerdirs: tuple[str, ...] = ()  # top first
    upper: str = ""
    work: str = ""

    def mount_options(self) -> str:
        return f"lowerdir={':'.join(self.lowerdirs)},upperdir={self.upper},workdir={self.work},{OVERLAY_EXTRA}"


def _mounted(path: str) -> bool:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4].replace("\\040", " ") == real:
                return True
    return False


def overlay_supported(scratch: str) -> bool:
    """Can we mount overlayfs with upper/work dirs under ``scratch``? (tries it)"""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                return False
    except OSError:
        return False
    from dockyard.linux import libc

    d = os.path.join(scratch, tmp_name("probe"))
    os.mkdir(d, 0o700)
    try:
        for sub in ("l", "u", "w", "m"):
            os.mkdir(os.path.join(d, sub))
        data = f"lowerdir={d}/l,upperdir={d}/u,workdir={d}/w,{OVERLAY_EXTRA}"
        try:
            libc.mount("overlay", f"{d}/m", "overlay", 0, data)
        except OSError:
            return False
        libc.umount2(f"{d}/m", 0)
        return True
    finally:
        remove_tree(d)


class RootfsManager:
    def __init__(self, store: ImageStore, driver: str | None) -> None:
        self.store = store
        self.dir = os.path.join(store.root, "containers")
        self.empty = os.path.join(store.root, "empty")
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(self.empty, exist_ok=True)
        if driver not in (None, "overlay", "copy"):
            raise InvalidArgument(f"unknown storage driver {driver!r}")
        self._driver = driver

    @property
    def driver(self) -> str:
        """"overlay" or "copy"; probed on first use (a test mount) unless given."""
        if self._driver is None:
            self._driver = "overlay" if overlay_supported(self.store.tmp_dir) else "copy"
        return self._driver

    def _dir(self, cid: str) -> str:
        if not _ID_RE.match(cid):
            raise InvalidArgument(f"invalid container id {cid!r}")
        return os.path.join(self.dir, cid)

    def _meta(self, cid: str) -> dict[str, Any]:
        try:
            with open(os.path.join(self._dir(cid), "meta.json"), "rb") as f:
                meta: dict[str, Any] = json.load(f)
                return meta
        except FileNotFoundError:
            raise NotFound(f"no root filesystem for container {cid}") from None

    def get(self, cid: str) -> RootfsMount:
        meta = self._meta(cid)
        d = self._dir(cid)
        chain = meta.get("chain")
        if meta["driver"] == "copy":
            return RootfsMount(cid, "copy", os.path.join(d, "rootfs"), meta.get("image"), chain)
        if chain is None:
            lowers: tuple[str, ...] = (self.empty,)
        else:
            lowers = tuple(layer.short_path for layer in self.store.layers.stack(chain))
        return RootfsMount(
            cid,
            "overlay",
            os.path.join(d, "merged"),
            meta.get("image"),
            chain,
            lowers,
            os.path.join(d, "upper"),
            os.path.join(d, "work"),
        )

    def list(self) -> builtins.list[str]:
        return sorted(n for n in os.listdir(self.dir) if _ID_RE.match(n))

    def chains_in_use(self) -> builtins.list[str]:
        out = []
        for cid in self.list():
            try:
                chain = self._meta(cid).get("chain")
            except NotFound:
                continue
            if chain:
                out.append(chain)
        return out

    def prepare(self, cid: str, image_id: str | None) -> RootfsMount:
        """Create the container's snapshot of ``image_id`` (None: an empty rootfs)."""
        final = self._dir(cid)
        if os.path.exists(final):
            raise Conflict(f"root filesystem for container {cid} already exists")
        with self.store.lock:  # so a concurrent remove of the image cannot take its layers
            return self._prepare(cid, final, image_id)

    def _prepare(self, cid: str, final: str, image_id: str | None) -> RootfsMount:
        chain = None
        if image_id is not None:
            chain = self.store.get(image_id).top_layer
        tmp = os.path.join(self.store.tmp_dir, tmp_name("rootfs"))
        os.mkdir(tmp, 0o700)
        try:
            if self.driver == "overlay":
                for sub in ("upper", "work", "merged"):
                    os.mkdir(os.path.join(tmp, sub), 0o755)
            else:
                dest = os.path.join(tmp, "rootfs")
                os.mkdir(dest, 0o755)
                for layer in reversed(self.store.layers.stack(chain)):
                    copy_layer(layer.path, dest)
            meta = {"image": image_id, "chain": chain, "driver": self.driver}
            atomic_write_json(os.path.join(tmp, "meta.json"), meta)
            os.rename(tmp, final)
        except BaseException:
            remove_tree(tmp)
            raise
        return self.get(cid)

    def mount(self, cid: str) -> str:
        m = self.get(cid)
        if m.driver == "copy" or _mounted(m.path):
            return m.path
        data = m.mount_options()
        if any(c in p for p in (*m.lowerdirs, m.upper, m.work) for c in ",:\\"):
            raise Unsupported(f"overlay cannot use paths with ',', ':' or '\\' ({self.store.root})")
        if len(data) <= MOUNT_DATA_MAX:
            from dockyard.linux import libc

            libc.mount("overlay", m.path, "overlay", 0, data)
            return m.path
        # Too long for one page: name the layers relative to l/ and mount from there, in a
        # child process (chdir is process-wide; Docker re-executes itself for the same reason).
        links = os.path.dirname(m.lowerdirs[0])
        short = ":".join(os.path.basename(p) for p in m.lowerdirs)
        data = f"lowerdir={short},upperdir={m.upper},workdir={m.work},{OVERLAY_EXTRA}"
        if len(data) > MOUNT_DATA_MAX or any(os.path.dirname(p) != links for p in m.lowerdirs):
            raise Unsupported(
                f"image of container {cid} has too many layers for one overlay mount ({len(m.lowerdirs)})"
            )
        out = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", data, m.path],
            cwd=links, capture_output=True, text=True, check=False,
        )
        if out.returncode != 0:
            raise Internal(f"mount of {m.path} failed: {out.stderr.strip()}")
        return m.path

    def unmount(self, cid: str) -> None:
        m = self.get(cid)
        if m.driver == "copy":
            return
        from dockyard.linux import libc

        while _mounted(m.path):
            try:
                libc.umount2(m.path, 0)
            except OSError:
                libc.umount2(m.path, libc.MNT_DETACH)

    def remove(self, cid: str) -> None:
        """Unmount and delete; renamed into tmp/ first so no half-removed rootfs is visible."""
        d = self._dir(cid)
        if not os.path.exists(d):
            return
        try:
            self.unmount(cid)
        except NotFound:
            pass
        trash = os.path.join(self.store.tmp_dir, tmp_name("rm"))
        os.rename(d, trash)
        remove_tree(trash)

    def _lower_paths(self, m: RootfsMount) -> builtins.list[str]:
        return [layer.path for layer in self.store.layers.stack(m.chain_id)]

    def changes(self, cid: str) -> builtins.list[tuple[str, str]]:
        """``docker diff``: [(kind "A"|"C"|"D", "/path")]."""
        m = self.get(cid)
        if m.driver == "copy":
            return naive_changes(m.path, self._lower_paths(m))
        return changes(m.upper, self._lower_paths(m))

    def size(self, cid: str) -> tuple[int, int]:
        """``(SizeRw, SizeRootFs)`` as ``docker ps -s`` / ``inspect --size`` report them:
        bytes the container wrote (its upper directory, or its changed files with the copy
        driver), and that plus the image's size. Hardlinked files count once."""
        m = self.get(cid)
        image_size = self.store.get(m.image_id).size if m.image_id else 0
        if m.driver == "overlay":
            rw = _tree_size(m.upper)
        else:
            rw = 0
            for kind, path in self.changes(cid):
                full = os.path.join(m.path, path.lstrip("/"))
                if kind != "D" and os.path.isfile(full) and not os.path.islink(full):
                    rw += os.lstat(full).st_size
        return rw, image_size + rw

    def diff_tar(self, cid: str, out: BinaryIO) -> None:
        """The container's changes as a layer tar (what commit stores)."""
        m = self.get(cid)
        if m.driver == "copy":
            naive_diff_tree(m.path, self._lower_paths(m), out)
        else:
            write_tree(m.upper, out, overlay_whiteouts=True)

    def export(self, cid: str, out: BinaryIO) -> None:
        """``docker export``: the container's whole filesystem as one tar."""
        m = self.get(cid)
        if m.driver == "copy":
            write_tree(m.path, out)
            return
        was_mounted = _mounted(m.path)
        self.mount(cid)
        try:
            write_tree(m.path, out)
        finally:
            if not was_mounted:
                self.unmount(cid)

    def commit(
        self,
        cid: str,
        config: dict[str, Any] | None,
        *,
        ref: str | None,
        author: str,
        comment: str,
        created_by: str,
    ) -> str:
        """A new image: the container's image plus its changes as one more layer."""
        m = self.get(cid)
        base: dict[str, Any] = {}
        if m.image_id is not None:
            base = dict(self.store.get(m.image_id).config)
        diff_ids = list((base.get("rootfs") or {}).get("diff_ids") or [])
        history = list(base.get("history") or [])
        tmp = os.path.join(self.store.tmp_dir, tmp_name("commit"))
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "w+b") as f:
                self.diff_tar(cid, f)
                f.seek(0)
                head = f.read(1025)
                empty = len(head) == 1024 and head == b"\0" * 1024
                f.seek(0)
                if not empty:
                    _chain, diff_id = self.store.apply_layer(m.chain_id, f)
                    diff_ids.append(diff_id)
        finally:
            os.unlink(tmp)
        now = now_rfc3339()
        entry: dict[str, Any] = {"created": now}
        if author:
            entry["author"] = author
        if created_by:
            entry["created_by"] = created_by
        if comment:
            entry["comment"] = comment
        if empty:
            entry["empty_layer"] = True
        image: dict[str, Any] = {
            "architecture": base.get("architecture") or host_arch(),
            "config": config if config is not None else base.get("config", {}),
            "container": cid,
            "created": now,
            "docker_version": "dockyard",
            "history": [*history, entry],
            "os": base.get("os") or "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        if author:
            image["author"] = author
        if comment:
            image["comment"] = comment
        raw = json.dumps(image, separators=(",", ":")).encode()
        tags = [ref] if ref else []
        return self.store.add_image(raw, parent=m.image_id or "", tags=tags)


def _tree_size(root: str) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for _rel, st in walk(root):
        if stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        total += st.st_size
    return total


def copy_layer(layer: str, dest: str) -> None:
    """Apply an unpacked layer (overlay form) onto the full copy ``dest``."""
    seen: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, str, os.stat_result]] = []
    for rel, st in walk(layer):
        src = os.path.join(layer, rel)
        dst = os.path.join(dest, rel)
        existing: os.stat_result | None
        try:
            existing = os.lstat(dst)
        except FileNotFoundError:
            existing = None
        if is_whiteout(st):
            _remove(dst, existing)
            continue
        if stat.S_ISDIR(st.st_mode):
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                _remove(dst, existing)
                existing = None
            if existing is None:
                os.mkdir(dst, 0o700)
            elif is_opaque(src):
                for name in os.listdir(dst):
                    p = os.path.join(dst, name)
                    _remove(p, os.lstat(p))
            dirs.append((src, dst, st))
            continue
        _remove(dst, existing)
        key = (st.st_dev, st.st_ino)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and key in seen:
            os.link(seen[key], dst)
            continue
        if stat.S_ISREG(st.st_mode):
            shutil.copyfile(src, dst, follow_symlinks=False)
            seen[key] = dst
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
        else:
            os.mknod(dst, st.st_mode, st.st_rdev)
        _copy_meta(src, dst, st)
    for src, dst, st in reversed(dirs):
        _copy_meta(src, dst, st)


def _remove(path: str, st: os.stat_result | None) -> None:
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        remove_tree(path, ignore_errors=False)
    else:
        os.unlink(path)


def _copy_meta(src: str | None, dst: str, st: os.stat_result) -> None:
    if os.geteuid() == 0:
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    if src is not None:
        try:
            names = os.listxattr(src, follow_symlinks=False)
        except OSError:
            names = []
        for name in names:
            if not name.startswith("trusted."):
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
