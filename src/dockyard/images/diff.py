"""From directories back to tars: layer diffs (overlay upper -> AUFS whiteouts) and exports.

The tar stream is written as Docker's pkg/archive writes it: names relative without ``./``,
directories with a trailing ``/``, no root entry, PAX headers only when needed, empty
uname/gname, mtimes truncated to seconds, ``security.capability`` kept as
``SCHILY.xattr.*``, the second and later names of a hardlinked regular file as link entries,
and the archive ended by exactly two zero blocks (Go's archive/tar does not pad to a 10 KiB
record as Python's tarfile does; the bytes are what the diff id hashes).

Overlay upper directory to layer tar (moby pkg/archive overlayWhiteoutConverter)::

    upper entry                              tar entries
    dir/name   char device 0/0               dir/.wh.name       regular, mode 0, size 0
    dir        trusted.overlay.opaque=y      dir/  then  dir/.wh..wh..opq  regular, size 0

``changes()`` reports what ``docker diff`` shows (moby pkg/archive changes.go): A for added,
C for changed, D for deleted, and the parent directory of an added or deleted path as C.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from dockyard.images._util import exact_chunks
from dockyard.images.unpack import (
    WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
    find_in_layers,
    is_opaque,
    is_whiteout,
)

__all__ = ["EMPTY_LAYER_DIFF_ID", "TarWriter", "changes", "naive_changes", "walk", "write_tree"]

# sha256 of 1024 zero bytes: the empty tar as Go writes it (Docker's layer.EmptyLayer)
EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
BLOCK = 512
CHUNK = 1 << 20
KEEP_XATTRS = ("security.capability",)


class TarWriter:
    """A minimal streaming tar writer (headers from :meth:`tarfile.TarInfo.tobuf`)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.written = 0

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.written += len(data)

    def add(self, info: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if data is None or not info.size:
            return
        for chunk in exact_chunks(data.read, info.size, lambda: OSError(f"{info.name}: file shrank")):
            self._write(chunk)
        if info.size % BLOCK:
            self._write(b"\0" * (BLOCK - info.size % BLOCK))

    def close(self) -> None:
        self._write(b"\0" * (2 * BLOCK))


def walk(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """``(relative path, lstat)`` of everything under ``root``: depth first, lexical order,
    parents before children (Go's filepath.Walk order). Iterative: hostile trees can be deep."""
    stack = sorted(os.listdir(root), reverse=True)
    while stack:
        rel = stack.pop()
        st = os.lstat(os.path.join(root, rel))
        yield rel, st
        if stat.S_ISDIR(st.st_mode):
            names = sorted(os.listdir(os.path.join(root, rel)), reverse=True)
            stack.extend(f"{rel}/{n}" for n in names)


def _header(rel: str, full: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(st.st_mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(full)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
    else:
        raise OSError(f"{rel}: cannot archive a socket")
    pax: dict[str, str] = {}
    for name in KEEP_XATTRS:
        try:
            value = os.getxattr(full, name, follow_symlinks=False)
        except OSError:
            continue
        pax[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    info.pax_headers = pax
    return info


def write_tree(root: str, out: BinaryIO, *, overlay_whiteouts: bool = False) -> int:
    """Archive everything under ``root`` into ``out``; returns the bytes written.

    With ``overlay_whiteouts`` the tree is an overlay upper directory and whiteouts are
    written in the layer (AUFS) form.
    """
    w = TarWriter(out)
    seen: dict[tuple[int, int], str] = {}
    for rel, st in walk(root):
        full = os.path.join(root, rel)
        if overlay_whiteouts and is_whiteout(st):
            parent, name = os.path.split(rel)
            info = _header(rel, full, st)
            info.name = os.path.join(parent, WHITEOUT_PREFIX + name)
            info.type, info.mode, info.size = tarfile.REGTYPE, 0, 0
            info.devmajor = info.devminor = 0
            w.add(info)
            continue
        info = _header(rel, full, st)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = seen.get(key)
            if first is not None:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
                info.pax_headers = {}
                w.add(info)
                continue
            seen[key] = rel
        if info.type == tarfile.REGTYPE and info.size:
            with open(full, "rb") as f:
                w.add(info, f)
        else:
            w.add(info)
        if overlay_whiteouts and stat.S_ISDIR(st.st_mode) and is_opaque(full):
            wo = tarfile.TarInfo(f"{rel}/{WHITEOUT_OPAQUE}")
            wo.type, wo.size, wo.mode = tarfile.REGTYPE, 0, info.mode & 0o777
            wo.uid, wo.gid, wo.uname, wo.gname, wo.mtime = info.uid, info.gid, "", "", 0
            w.add(wo)
    w.close()
    return w.written


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    return (
        a.st_size == b.st_size
        and a.st_mode == b.st_mode
        and int(a.st_mtime) == int(b.st_mtime)
        and a.st_mtime_ns % 1_000_000_000 in (0, b.st_mtime_ns % 1_000_000_000)
    )


def changes(upper: str, lowers: Sequence[str]) -> list[tuple[str, str]]:
    """``docker diff`` of an overlay upper directory over ``lowers`` (top first)."""
    out: list[tuple[str, str]] = []
    changed_dirs: set[str] = set()
    for rel, st in walk(upper):
        path = "/" + rel
        if is_whiteout(st):
            kind = "D"
        else:
            kind = "A"
            lower = find_in_layers(rel, lowers)
            if lower is not None:
                lst = os.lstat(lower)
                if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(lst.st_mode) and _same_dir(st, lst):
                    continue
                kind = "C"
        if stat.S_ISDIR(st.st_mode):
            changed_dirs.add(path)
        if kind in ("A", "D"):
            parent = os.path.dirname(path)
            if parent != "/" and parent not in changed_dirs:
                out.append(("C", parent))
                changed_dirs.add(parent)
        out.append((kind, path))
    return out


def _visible(lowers: Sequence[str]) -> dict[str, str]:
    """Every path visible through the stack ``lowers`` (top first) -> the file that shows."""
    candidates: set[str] = set()
    for layer in lowers:
        for rel, _st in walk(layer):
            candidates.add(rel)
    out = {}
    for rel in sorted(candidates):
        found = find_in_layers(rel, lowers)
        if found is not None:
            out[rel] = found
    return out


def naive_changes(tree: str, lowers: Sequence[str]) -> list[tuple[str, str]]:
    """``docker diff`` of a full copy ``tree`` against the image ``lowers`` (copy driver)."""
    before = _visible(lowers)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for rel, st in walk(tree):
        seen.add(rel)
        lower = before.get(rel)
        if lower is None:
            out.append(("A", "/" + rel))
            continue
        lst = os.lstat(lower)
        if _differs(st, lst, os.path.join(tree, rel), lower):
            out.append(("C", "/" + rel))
    for rel in before:
        if rel not in seen and os.path.dirname(rel) in seen | {""}:
            out.append(("D", "/" + rel))
    # a directory with changes inside is itself changed (moby changes.go addChanges)
    listed = {path for _, path in out}
    for _, path in list(out):
        parent = os.path.dirname(path)
        while parent != "/" and parent not in listed:
            out.append(("C", parent))
            listed.add(parent)
            parent = os.path.dirname(parent)
    out.sort(key=lambda c: c[1])
    return out


def _differs(a: os.stat_result, b: os.stat_result, pa: str, pb: str) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return True
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return True
    if stat.S_ISDIR(a.st_mode):
        return False
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(pa) != os.readlink(pb)
    return a.st_size != b.st_size or a.st_mtime_ns != b.st_mtime_ns or a.st_rdev != b.st_rdev


def naive_diff_tree(tree: str, lowers: Sequence[str], out: BinaryIO) -> None:
    """A layer tar of what changed in the full copy ``tree`` (copy driver's commit)."""
    chg = naive_changes(tree, lowers)
    w = TarWriter(out)
    for kind, path in chg:
        rel = path[1:]
        if kind == "D":
            parent, name = os.path.split(rel)
            info = tarfile.TarInfo(os.path.join(parent, WHITEOUT_PREFIX + name))
            info.uname = info.gname = ""
            w.add(info)
            continue
        full = os.path.join(tree, rel)
        st = os.lstat(full)
        # a changed path's parents must be in the tar for tools that need them
        info = _header(rel, full, st)
        if info.type == tarfile.REGTYPE and info.size:
            with open(full, "rb") as f:
                w.add(info, f)
        else:
            w.add(info)
    w.close()

