"""OCI namespace types -> clone(2) flags and /proc/<pid>/ns names: the one table used by
``create``, ``exec`` and ``features``."""

from __future__ import annotations

from dockyard.linux import libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = ["NAMESPACES", "join_order", "new_flags"]

# OCI type -> (clone flag, name under /proc/<pid>/ns)
NAMESPACES: dict[str, tuple[int, str]] = {
    "cgroup": (libc.CLONE_NEWCGROUP, "cgroup"),
    "ipc": (libc.CLONE_NEWIPC, "ipc"),
    "mount": (libc.CLONE_NEWNS, "mnt"),
    "network": (libc.CLONE_NEWNET, "net"),
    "pid": (libc.CLONE_NEWPID, "pid"),
    "user": (libc.CLONE_NEWUSER, "user"),
    "uts": (libc.CLONE_NEWUTS, "uts"),
}

# setns(2) order: the user namespace first (it grants the rights to join the others), the
# mount namespace last (joining it changes our root and cwd), cgroup after the cgroup move.
_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "mount")


def join_order(types: list[str] | set[str]) -> list[str]:
    return [t for t in _ORDER if t in types]


def new_flags(namespaces: list[dict[str, Any]]) -> int:
    flags = 0
    for ns in namespaces:
        if not ns.get("path"):
            flags |= NAMESPACES[ns["type"]][0]
    return flags
