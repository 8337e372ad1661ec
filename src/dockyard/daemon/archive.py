"""``docker cp``: stat, tar out and extract into a container's filesystem, confined to it.

Paths are resolved component by component with symlinks interpreted *inside* the container's
root (an absolute link target restarts at the container's root, ``..`` stops at it), so a
container cannot point the daemon at the host's files. A running container is reached through
``/proc/<pid>/root`` (its own view, volumes included); a stopped one through its mounted rootfs.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import Any, BinaryIO

from dockyard.errors import InvalidArgument, NotFound

MAX_LINKS = 40
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27


def resolve_in_root(root: str, path: str, *, follow_last: bool = True) -> str:
    """The host path of container path ``path`` under ``root``, symlinks kept inside."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        is_last = not parts
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode) and (follow_last or not is_last):
            links += 1
            if links > MAX_LINKS:
                raise InvalidArgument(f"too many levels of symbolic links: {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def path_stat(root: str, path: str) -> dict[str, Any]:
    host = resolve_in_root(root, path, follow_last=False)
    try:
        st = os.lstat(host)
    except FileNotFoundError:
        raise NotFound(f"Could not find the file {path} in container") from None
    mode = stat.S_IMODE(st.st_mode)
    link = ""
    if stat.S_ISDIR(st.st_mode):
        mode |= GO_DIR
    elif stat.S_ISLNK(st.st_mode):
        mode |= GO_SYMLINK
        link = os.readlink(host)
    import time

    mtime = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(st.st_mtime)) + "Z"
    return {"name": os.path.basename(path.rstrip("/")) or "/", "size": st.st_size, "mode": mode, "mtime": mtime,
            "linkTarget": link}


def write_tar(root: str, path: str, out: BinaryIO) -> None:
    host = resolve_in_root(root, path)
    if not os.path.lexists(host):
        raise NotFound(f"Could not find the file {path} in container")
    name = os.path.basename(path.rstrip("/")) or "."
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(host, arcname=name)


def extract_tar(root: str, path: str, data: BinaryIO, *, no_overwrite_dir_non_dir: bool = False) -> None:
    dest = resolve_in_root(root, path)
    if not os.path.isdir(dest):
        raise NotFound(f"Could not find the file {path} in container") if not os.path.exists(dest) else \
            InvalidArgument(f"extraction point is not a directory: {path}")
    rel_dest = os.path.relpath(dest, root)
    with tarfile.open(fileobj=data, mode="r|*") as tar:
        for member in tar:
            name = member.name.lstrip("/")
            target_rel = os.path.normpath(os.path.join(rel_dest, name))
            parent = resolve_in_root(root, os.path.dirname(target_rel))
            os.makedirs(parent, exist_ok=True)
            target = os.path.join(parent, os.path.basename(target_rel))
            if os.path.lexists(target):
                existing_dir = os.path.isdir(target) and not os.path.islink(target)
                if no_overwrite_dir_non_dir and existing_dir != member.isdir():
                    raise InvalidArgument(f"cannot overwrite {'directory' if existing_dir else 'non-directory'} "
                                          f"{target_rel} with {'directory' if member.isdir() else 'non-directory'}")
                if member.isdir() and existing_dir:
                    os.chmod(target, member.mode & 0o7777)
                    continue
                if existing_dir:
                    import shutil

                    shutil.rmtree(target)
                else:
                    os.unlink(target)
            if member.isdir():
                os.mkdir(target, member.mode & 0o7777)
            elif member.issym():
                os.symlink(member.linkname, target)
            elif member.islnk():
                src = resolve_in_root(root, os.path.join(rel_dest, member.linkname.lstrip("/")), follow_last=False)
                os.link(src, target)
            elif member.isfile():
                src_f = tar.extractfile(member)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, member.mode & 0o7777)
                with os.fdopen(fd, "wb") as f:
                    while src_f is not None and (chunk := src_f.read(1 << 20)):
                        f.write(chunk)
            else:
                continue  # devices and fifos are not copied in
            os.lchown(target, member.uid, member.gid)
            if not member.issym():
                os.utime(target, (member.mtime, member.mtime))


__all__ = ["extract_tar", "path_stat", "resolve_in_root", "write_tar"]
