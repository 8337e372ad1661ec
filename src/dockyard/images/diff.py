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


def _stat_differs(new: os.stat_result, old: os.stat_result) -> bool:
    """moby pkg/archive statDifferent: mode, owner and device always; size and mtime only
    for non-directories (a directory's mtime is "not a good measure of change")."""
    if (new.st_mode, new.st_uid, new.st_gid, new.st_rdev) != (old.st_mode, old.st_uid, old.st_gid, old.st_rdev):
        return True
    if stat.S_ISDIR(new.st_mode):
        return False
    a, b = divmod(new.st_mtime_ns, 1_000_000_000), divmod(old.st_mtime_ns, 1_000_000_000)
    same_time = a[0] == b[0] and (a[1] == b[1] or a[1] == 0 or b[1] == 0)
    return not same_time or new.st_size != old.st_size


def _with_parents(found: dict[str, str]) -> list[tuple[str, str]]:
    """Add every changed path's ancestors as C (moby addChanges), sorted by path."""
    for path in list(found):
        parent = os.path.dirname(path)
        while parent != "/" and parent not in found:
            found[parent] = "C"
            parent = os.path.dirname(parent)
    return sorted(((kind, path) for path, kind in found.items()), key=lambda c: c[1])


def changes(upper: str, lowers: Sequence[str]) -> list[tuple[str, str]]:
    """``docker diff`` of an overlay upper directory over ``lowers`` (top first).

    Same answers as dockerd's naive diff (what its overlay2 driver uses on kernels with
    redirect_dir, as here): A for each added path and everything under an added directory,
    D for the topmost deleted path only, C for a path whose stat differs (moby
    statDifferent) and for every directory with a change below it. Sorted by path.
    """
    found: dict[str, str] = {}
    added_dirs: set[str] = set()
    for rel, st in walk(upper):
        path = "/" + rel
        if is_whiteout(st):
            found[path] = "D"
            continue
        lower = None if os.path.dirname(path) in added_dirs else find_in_layers(rel, lowers)
        if lower is None:
            found[path] = "A"
            if stat.S_ISDIR(st.st_mode):
                added_dirs.add(path)
            continue
        if _stat_differs(st, os.lstat(lower)):
            found[path] = "C"
        if stat.S_ISDIR(st.st_mode) and is_opaque(os.path.join(upper, rel)):
            present = set(os.listdir(os.path.join(upper, rel)))
            for name in _visible_children(rel, lowers):
                if name not in present:
                    found[f"{path}/{name}"] = "D"
    return _with_parents(found)


def _visible_children(rel: str, layers: Sequence[str]) -> set[str]:
    names: set[str] = set()
    for layer in layers:
        d = os.path.join(layer, rel)
        if os.path.isdir(d) and not os.path.islink(d):
            names.update(os.listdir(d))
    return {n for n in names if find_in_layers(f"{rel}/{n}", layers) is not None}


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
    found: dict[str, str] = {}
    seen: set[str] = set()
    for rel, st in walk(tree):
        seen.add(rel)
        lower = before.get(rel)
        if lower is None:
            found["/" + rel] = "A"
        elif _stat_differs(st, os.lstat(lower)) or (
            stat.S_ISLNK(st.st_mode) and os.readlink(os.path.join(tree, rel)) != os.readlink(lower)
        ):
            found["/" + rel] = "C"
    for rel in before:
        if rel not in seen and os.path.dirname(rel) in seen | {""}:
            found["/" + rel] = "D"
    return _with_parents(found)


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

