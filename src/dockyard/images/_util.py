"""Small helpers shared by the image modules."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator

__all__ = ["CHUNK", "exact_chunks", "host_arch", "now_rfc3339", "remove_tree", "tmp_name", "writer_alive"]

CHUNK = 1 << 20


def now_rfc3339() -> str:
    """The current time as Go's RFC 3339 with nanoseconds (what image configs carry)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def host_arch() -> str:
    """The host's architecture in GOARCH terms (amd64, arm64, ...)."""
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def exact_chunks(
    read: Callable[[int], bytes], size: int, short: Callable[[], Exception]
) -> Iterator[bytes]:
    """Exactly ``size`` bytes from ``read`` in chunks; ``short()`` is raised if they end early."""
    while size:
        chunk = read(min(CHUNK, size))
        if not chunk:
            raise short()
        size -= len(chunk)
        yield chunk


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (None for a zombie or a missing process)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return None
    return None if fields[0] == "Z" else fields[19]


def tmp_name(kind: str) -> str:
    """``<kind>-<pid>.<start time>-<random>``: names what a writer puts in tmp/, so that a
    later open can tell leftovers of dead processes (pids get reused) from live work."""
    return f"{kind}-{os.getpid()}.{_start_time(os.getpid())}-{os.urandom(6).hex()}"


def writer_alive(name: str) -> bool:
    """Is the process that made the tmp/ entry ``name`` (see :func:`tmp_name`) still running?"""
    parts = name.split("-")
    if len(parts) < 3:
        return False
    pid, _, start = parts[1].partition(".")
    return pid.isdigit() and _start_time(int(pid)) == start


def remove_tree(path: str, *, ignore_errors: bool = True) -> None:
    """``shutil.rmtree`` without recursion: a hostile layer can nest 2,000 directories deep,
    beyond Python's recursion limit, and cleanup must still work. Never follows symlinks."""
    try:
        if not os.path.isdir(path) or os.path.islink(path):
            os.unlink(path)
            return
    except FileNotFoundError:
        return
    stack: list[tuple[str, bool]] = [(path, False)]  # (directory, children already queued)
    while stack:
        directory, expanded = stack.pop()
        if expanded:
            try:
                os.rmdir(directory)
            except OSError:
                if not ignore_errors:
                    raise
            continue
        stack.append((directory, True))
        try:
            with os.scandir(directory) as entries:
                for e in entries:
                    if e.is_dir(follow_symlinks=False):
                        stack.append((e.path, False))
                    else:
                        try:
                            os.unlink(e.path)
                        except OSError:
                            if not ignore_errors:
                                raise
        except OSError:
            if not ignore_errors:
                raise
