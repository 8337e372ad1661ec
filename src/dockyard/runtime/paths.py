"""Resolve a container path inside the rootfs the way the container will see it.

``resolve_in_root(root, "/var/run/x")`` follows symlinks component by component: an absolute
link target is taken relative to ``root`` (``/var/run -> /run`` means ``<root>/run``, as the
container sees it), and a relative target that climbs above ``root`` with ``..`` is refused,
so a mount can never land outside the container's root filesystem.
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidArgument

__all__ = ["resolve_in_root"]

_MAX_LINKS = 40  # the kernel's limit too (path_resolution(7))


def resolve_in_root(root: str, path: str, *, field: str = "path") -> str:
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if not resolved:
                raise InvalidArgument(f"{field}: {path!r} escapes the container's root filesystem")
            resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            links += 1
            if links > _MAX_LINKS:
                raise InvalidArgument(f"{field}: too many levels of symbolic links in {path!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)
