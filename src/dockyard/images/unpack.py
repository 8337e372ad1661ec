"""Unpack one layer tar into a directory in overlay form, refusing hostile entries.

The tar arrives as a stream (never seeked, never buffered whole) and is read by
:mod:`~dockyard.images.tarstream`; every byte is hashed, including the zero blocks after the
end-of-archive marker, so the caller gets the layer's ``diff_id`` once the stream is drained.

Layer tars use AUFS-style whiteouts; the unpacked directory uses overlayfs' own form (the
kernel's Documentation/filesystems/overlayfs.rst, "whiteouts and opaque directories")::

    tar entry                         unpacked directory
    ---------                         ------------------
    dir/.wh.name                      dir/name     character device 0/0
    dir/.wh..wh..opq                  dir          xattr trusted.overlay.opaque = "y"
    .wh..wh.plnk/<ino>  (AUFS)        kept aside; hardlinks to it get a copy of its content
    .wh..wh.aufs, .wh..wh.orph        skipped (AUFS bookkeeping)

What is refused (:class:`~dockyard.errors.InvalidArgument`), as Docker's pkg/archive does and
more strictly: absolute names and names with ``..`` components; symlinks whose relative target
climbs out of the layer; hardlinks to anything outside it; any entry whose parent is a symlink
(writing through a symlink); device nodes unless ``allow_devices``; entries larger than the
free space; unknown entry types; ``trusted.*`` xattrs (they would forge overlay metadata).

Hardlinks to a file not in this layer but in a lower one get a copy of the lower file
(a hardlink across layers cannot be made without sharing an inode between layers). As in
Docker (chrootarchive), a hardlink entry's owner, mode and mtime are applied to the inode it
shares with its target.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from dockyard.errors import InvalidArgument
from dockyard.images._util import exact_chunks, remove_tree
from dockyard.images.tarsplit import TarSplitWriter
from dockyard.images.tarstream import TarStream
from dockyard.oci.digest import Digester

__all__ = [
    "OPAQUE_XATTR",
    "WHITEOUT_META_PREFIX",
    "WHITEOUT_OPAQUE",
    "WHITEOUT_PREFIX",
    "UnpackResult",
    "find_in_layers",
    "is_opaque",
    "is_whiteout",
    "unpack_layer",
]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
WHITEOUT_LINK_DIR = ".wh..wh.plnk"
OPAQUE_XATTR = "trusted.overlay.opaque"
CHUNK = 1 << 20
MAX_NAME = 4096
TRAILING_MAX = 64 << 20  # record padding is at most a few blocks; more is refused
REPLACED_DIRS_MAX = 1000  # a directory replaced by a later entry of the same layer
ID_LIMIT = (1 << 32) - 1  # uid_t is 32 bits and (uid_t)-1 means "unchanged" to chown(2)
RAW_PAYLOAD_MAX = 1 << 20  # contents of non-files (kept in tar-split) beyond this: refused


@dataclass(frozen=True)
class UnpackResult:
    diff_id: str
    size: int  # bytes of file content unpacked (what Docker reports as the layer's size)
    tar_size: int


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def find_in_layers(rel: str, layers: Sequence[str]) -> str | None:
    """Where ``rel`` is visible through ``layers`` (top first), as overlayfs would resolve it.

    Whiteouts, opaque directories and non-directories in upper layers hide what is below.
    Symlinks among the ancestors are not followed (returns None): callers only need regular
    entries.
    """
    parts = [p for p in rel.split("/") if p]
    if not parts:
        return None
    for layer in layers:
        cur = layer
        opaque_above = False
        present = True
        for part in parts[:-1]:
            cur = os.path.join(cur, part)
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                present = False
                break
            if not stat.S_ISDIR(st.st_mode):
                return None  # whiteout or a file where a directory should be: hidden
            if is_opaque(cur):
                opaque_above = True
        if present:
            target = os.path.join(cur, parts[-1])
            try:
                st = os.lstat(target)
            except FileNotFoundError:
                pass
            else:
                return None if is_whiteout(st) else target
        if opaque_above:
            return None
    return None


def _clean_name(name: str) -> str:
    """``./a/b/`` -> ``a/b``; refuses absolute names and ``..`` components."""
    if len(name) > MAX_NAME:
        raise InvalidArgument(f"layer entry name too long ({len(name)} bytes)")
    if name.startswith("/"):
        raise InvalidArgument(f"layer entry {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"layer entry {name!r}: path escapes the layer")
    if "\x00" in name:
        raise InvalidArgument(f"layer entry {name!r}: NUL in name")
    return "/".join(parts)


def _escapes(base_dir: str, target: str) -> bool:
    """Does ``target`` (relative to ``base_dir``, both layer-relative) leave the layer?"""
    joined = os.path.normpath(os.path.join(base_dir, target))
    return joined == ".." or joined.startswith("../")


class _Unpacker:
    def __init__(
        self,
        dest: str,
        lowers: Sequence[str],
        allow_devices: bool,
        split: TarSplitWriter,
    ) -> None:
        self.dest = os.path.realpath(dest)
        self.lowers = lowers
        self.allow_devices = allow_devices
        self.split = split
        self.payload_of: dict[str, int] = {}  # diff-relative path -> payload id in the split
        self.is_root = os.geteuid() == 0
        self.dirs: set[str] = {""}  # real directories created by this layer
        self.made: set[str] = set()  # every other path created by this layer
        self.dir_meta: list[tuple[str, tarfile.TarInfo]] = []
        self.plnk: dict[str, str] = {}  # AUFS hardlink stash: name -> file in payload/
        self.size = 0
        st = os.statvfs(dest)
        self.free = st.f_bavail * st.f_frsize
        self.free_inodes = st.f_favail if st.f_files else None  # None: no inode limit (btrfs)
        self.entries = 0
        self.replaced_dirs = 0

    # -- helpers ---------------------------------------------------------------------------

    def path(self, rel: str) -> str:
        return os.path.join(self.dest, rel) if rel else self.dest

    def ensure_parent(self, rel: str) -> None:
        """Make sure every ancestor of ``rel`` is a real directory (never a symlink)."""
        parent = os.path.dirname(rel)
        if parent in self.dirs:
            return
        cur = ""
        for part in parent.split("/"):
            cur = f"{cur}/{part}" if cur else part
            if cur in self.dirs:
                continue
            p = self.path(cur)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                os.mkdir(p, 0o755)
            else:
                if stat.S_ISLNK(st.st_mode):
                    raise InvalidArgument(f"layer entry {rel!r}: writes through symlink {cur!r}")
                if not stat.S_ISDIR(st.st_mode):
                    raise InvalidArgument(f"layer entry {rel!r}: parent {cur!r} is not a directory")
            self.dirs.add(cur)

    def clear(self, rel: str, keep_dir: bool) -> None:
        """Docker's rule for duplicate entries: replace, except a directory by a directory."""
        if rel not in self.made and rel not in self.dirs:
            return  # the directory started empty: only what this layer made can be there
        p = self.path(rel)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            self.replaced_dirs += 1
            if self.replaced_dirs > REPLACED_DIRS_MAX:  # each costs a scan of the bookkeeping
                raise InvalidArgument("layer replaces too many of its own directories")
            for owned in [k for k in self.payload_of if k.startswith(rel + "/")]:
                self.split.set_aside(self.payload_of.pop(owned), p[: -len(rel)] + owned)
            remove_tree(p)
            self.dirs = {d for d in self.dirs if d != rel and not d.startswith(rel + "/")}
            self.made = {m for m in self.made if not m.startswith(rel + "/")}
        else:
            if rel in self.payload_of:  # its bytes are part of the tar: keep them aside
                self.split.set_aside(self.payload_of.pop(rel), p)
            else:
                os.unlink(p)

    def metadata(self, rel: str, info: tarfile.TarInfo, fd: int | None = None) -> None:
        """Owner, mode, xattrs and mtime from the header; through ``fd`` when given (a file
        just written: no path lookups, and root-owned already unless the header says not)."""
        p: str | int = self.path(rel) if fd is None else fd
        follow = fd is not None
        if self.is_root and (fd is None or info.uid or info.gid):
            os.chown(p, info.uid, info.gid, follow_symlinks=follow)
        if not info.issym() and not (info.islnk() and os.path.islink(p)):  # type: ignore[arg-type]
            # after chown: chown(2) clears the setuid and setgid bits. Never through a
            # symlink (a hardlink to a symlink shares the symlink's inode): chmod follows.
            os.chmod(p, info.mode & 0o7777)
        for key, value in info.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                name = key[len("SCHILY.xattr.") :]
                if name.startswith("trusted."):
                    continue
                raw = value.encode("utf-8", "surrogateescape")
                try:
                    os.setxattr(p, name, raw, follow_symlinks=follow)
                except OSError as exc:
                    # user.* is refused on symlinks; Docker ignores ENOTSUP/EPERM likewise
                    if exc.errno not in (1, 95, 22):
                        raise
        if not info.isdir():
            os.utime(p, ns=(_ns(info.mtime), _ns(info.mtime)), follow_symlinks=follow)

    # -- entry kinds -----------------------------------------------------------------------

    def whiteout(self, rel: str, info: tarfile.TarInfo) -> None:
        parent, base = os.path.split(rel)
        if base == WHITEOUT_OPAQUE:
            self.ensure_parent(rel)
            os.setxattr(self.path(parent), OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # AUFS bookkeeping (.wh..wh.aufs, .wh..wh.orph); .plnk handled earlier
        name = base[len(WHITEOUT_PREFIX) :]
        if not name or name in (".", ".."):
            raise InvalidArgument(f"layer entry {rel!r}: bad whiteout")
        target = os.path.join(parent, name)
        self.ensure_parent(target)
        self.clear(target, keep_dir=False)
        p = self.path(target)
        if self.is_root:
            os.mknod(p, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            self.made.add(target)
            os.chown(p, info.uid, info.gid, follow_symlinks=False)
        else:
            raise InvalidArgument("whiteouts need root (overlay whiteouts are device nodes)")

    def regular(self, rel: str, info: tarfile.TarInfo, src: TarStream) -> None:
        if info.size > self.free - self.size:
            raise InvalidArgument(
                f"layer entry {rel!r}: size {info.size} exceeds the free space of the store"
            )
        fd = os.open(
            self.path(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            truncated = InvalidArgument(f"layer entry {rel!r}: truncated")
            for chunk in exact_chunks(src.read, info.size, lambda: truncated):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            self.metadata(rel, info, fd)
        finally:
            os.close(fd)
        self.size += info.size
        if info.size:
            self.payload_of[rel] = self.split.payload(f"diff/{rel}", info.size)

    def hardlink(self, rel: str, info: tarfile.TarInfo) -> None:
        raw = info.linkname.lstrip("/")
        if raw.split("/")[0] == WHITEOUT_LINK_DIR:
            stash = self.plnk.get(raw)
            if stash is None:
                raise InvalidArgument(f"layer entry {rel!r}: link to unknown {raw!r}")
            _copy_file(stash, self.path(rel))
            return
        target = _clean_name(raw)
        if not target:
            raise InvalidArgument(f"layer entry {rel!r}: hardlink to the layer root")
        tp = self.path(target)
        if os.path.realpath(os.path.dirname(tp)) != os.path.dirname(tp):
            raise InvalidArgument(f"layer entry {rel!r}: hardlink through a symlink {target!r}")
        try:
            st = os.lstat(tp)
        except FileNotFoundError:
            lower = find_in_layers(target, self.lowers)
            if lower is None:
                raise InvalidArgument(f"layer entry {rel!r}: hardlink to missing {target!r}") from None
            if not stat.S_ISREG(os.lstat(lower).st_mode):
                raise InvalidArgument(f"layer entry {rel!r}: hardlink to non-file {target!r}")
            _copy_file(lower, self.path(rel))  # copy-up: layers never share inodes
            return
        if stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"layer entry {rel!r}: hardlink to directory {target!r}")
        os.link(tp, self.path(rel), follow_symlinks=False)

    def stash_plnk(self, rel: str, info: tarfile.TarInfo, src: TarStream) -> None:
        if not info.isreg():
            return
        ident, dest = self.split.new_payload(info.size)
        with open(dest, "wb") as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)
        os.chmod(dest, info.mode & 0o7777)
        self.plnk[rel] = dest
        self.split.payload_ref(ident, info.size)

    # -- driver ----------------------------------------------------------------------------

    def entry(self, info: tarfile.TarInfo, src: TarStream) -> None:
        self.entries += 1
        if self.free_inodes is not None and self.entries > self.free_inodes:
            raise InvalidArgument(f"layer has more entries than the store has free inodes ({self.free_inodes})")
        rel = _clean_name(info.name)
        if not (0 <= info.uid < ID_LIMIT and 0 <= info.gid < ID_LIMIT):
            raise InvalidArgument(f"layer entry {rel!r}: owner {info.uid}:{info.gid} out of range")
        if not rel:
            return  # the layer root itself ("./"): the root keeps the lower's metadata
        base = os.path.basename(rel)
        if rel.split("/")[0] == WHITEOUT_LINK_DIR:
            self.stash_plnk(rel, info, src)
            return
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(rel, info)
            return
        self.ensure_parent(rel)
        self.clear(rel, keep_dir=info.isdir())
        p = self.path(rel)
        if info.isdir():
            if not os.path.isdir(p):
                os.mkdir(p, 0o700)
            self.dirs.add(rel)
            self.dir_meta.append((rel, info))
        elif info.isreg():
            self.regular(rel, info, src)
            self.made.add(rel)
            return
        elif info.issym():
            if "\x00" in info.linkname or not info.linkname:
                raise InvalidArgument(f"layer entry {rel!r}: bad symlink target")
            if not info.linkname.startswith("/") and _escapes(
                os.path.dirname(rel), info.linkname
            ):
                raise InvalidArgument(
                    f"layer entry {rel!r}: symlink target {info.linkname!r} escapes the layer"
                )
            os.symlink(info.linkname, p)
        elif info.islnk():
            # Docker then applies the link header's owner, mode and times to the shared inode
            self.hardlink(rel, info)
        elif info.ischr() or info.isblk():
            if not self.allow_devices:
                raise InvalidArgument(f"layer entry {rel!r}: device nodes are not allowed")
            kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
            os.mknod(p, kind | 0o600, os.makedev(info.devmajor, info.devminor))
        elif info.isfifo():
            os.mkfifo(p, 0o600)
        else:
            raise InvalidArgument(f"layer entry {rel!r}: unsupported type {info.type!r}")
        if not info.isdir():
            self.made.add(rel)
            self.metadata(rel, info)

    def finish(self) -> None:
        # directories last and deepest first: adding children changes a directory's mtime
        for rel, info in reversed(self.dir_meta):
            p = self.path(rel)
            if not os.path.isdir(p) or os.path.islink(p):
                continue  # replaced by a later entry
            self.metadata(rel, info)
            os.utime(p, ns=(_ns(info.mtime), _ns(info.mtime)), follow_symlinks=False)


def _contents_to_file(info: tarfile.TarInfo) -> bool:
    """Will the entry's contents be written to a file (and so referenced by tar-split)?"""
    base = info.name.rstrip("/").rsplit("/", 1)[-1]
    return info.isreg() and info.size > 0 and not base.startswith(WHITEOUT_PREFIX)


def unpack_layer(
    stream: BinaryIO,
    layer_dir: str,
    *,
    lowers: Sequence[str] = (),
    allow_devices: bool = False,
) -> UnpackResult:
    """Unpack the uncompressed layer tar ``stream`` into ``layer_dir``/diff (created).

    Also writes ``layer_dir``/tar-split.gz (and payload/ for bytes not kept in diff/), from
    which :func:`~dockyard.images.tarsplit.assemble` rebuilds the exact tar. ``lowers`` are
    the unpacked parent layers, top first (for hardlinks into them). Raises InvalidArgument
    for a hostile or malformed layer; the caller discards ``layer_dir`` on any exception.
    """
    dest = os.path.join(layer_dir, "diff")
    os.makedirs(dest, exist_ok=True)
    hasher = Digester()
    tar = TarStream(stream, hasher)
    with TarSplitWriter(layer_dir) as split:
        unpacker = _Unpacker(dest, lowers, allow_devices, split)
        try:
            while (item := tar.next()) is not None:
                info, header = item
                split.raw(header)
                to_file = _contents_to_file(info)
                if not to_file and info.size > RAW_PAYLOAD_MAX:
                    raise InvalidArgument(f"layer entry {info.name!r}: unexpected contents")
                before = len(split.paths)
                unpacker.entry(info, tar)
                if (len(split.paths) > before) != to_file:
                    raise InvalidArgument(f"layer entry {info.name!r}: contents not stored")
                # contents written to a file are referenced by the split, the rest kept raw
                split.raw(tar.skip_padding() if to_file else tar.finish_entry())
            unpacker.finish()
            trailing = 0
            for chunk in tar.trailing():  # end blocks, padding, anything after the end
                trailing += len(chunk)
                if trailing > TRAILING_MAX:  # a decompression bomb of padding, not a layer
                    raise InvalidArgument(f"more than {TRAILING_MAX} bytes after the end of the layer tar")
                split.raw(chunk)
        except (OverflowError, ValueError) as exc:  # absurd ids, times, device numbers
            raise InvalidArgument(f"invalid layer tar: {exc}") from exc
        except OSError as exc:
            if exc.errno in (errno.ENAMETOOLONG, errno.EEXIST, errno.ENOTDIR, errno.EISDIR,
                             errno.ENOTEMPTY, errno.ELOOP, errno.EINVAL, errno.EOVERFLOW):
                raise InvalidArgument(f"invalid layer tar: {exc}") from exc
            raise
    return UnpackResult(str(hasher.digest()), unpacker.size, hasher.size)


def _ns(mtime: float) -> int:
    return round(mtime * 1_000_000_000)


def _copy_file(src: str, dst: str) -> None:
    st = os.lstat(src)
    with open(src, "rb") as fin:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fout:
            while chunk := fin.read(CHUNK):
                fout.write(chunk)
    if os.geteuid() == 0:
        os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    for name in _listxattr(src):
        if not name.startswith("trusted."):
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _listxattr(path: str) -> list[str]:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []
