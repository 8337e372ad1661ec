"""What /info reports about the host, read from the kernel (the API layer never reads it itself)."""

from __future__ import annotations

import os

__all__ = ["backing_fs", "ip_forwarding", "open_fds", "read_flag", "swap_limit"]


def read_flag(path: str) -> bool:
    """A 0/1 kernel setting (a missing file reads as off)."""
    try:
        with open(path) as fh:
            return fh.read().strip() == "1"
    except OSError:
        return False


def swap_limit(cgroup_version: str) -> bool:
    """v1 limits swap only when the kernel accounts it (memory.memsw.*); v2 always can."""
    if cgroup_version == "2":
        return True
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")


def backing_fs(path: str, mountinfo: str = "/proc/self/mountinfo") -> str:
    """The filesystem type under ``path`` (the longest mount point containing it), named as Docker does."""
    path = os.path.realpath(path)
    best, fstype = "", "unknown"
    try:
        with open(mountinfo) as fh:
            for line in fh:
                pre, _, post = line.partition(" - ")
                fields = pre.split()
                if len(fields) < 5 or not post:
                    continue
                point = fields[4].replace("\\040", " ")
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, fstype = point, post.split()[0]
    except OSError:
        return "unknown"
    return "extfs" if fstype in ("ext2", "ext3", "ext4") else fstype


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def ip_forwarding() -> bool:
    return read_flag("/proc/sys/net/ipv4/ip_forward")
