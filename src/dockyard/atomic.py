"""Crash-safe writes: every on-disk record goes through :func:`atomic_write`.

The sequence (temp file in the same directory, fsync, rename, fsync the directory) means a
reader, or a daemon restarted after SIGKILL, sees either the old record or the new one, never
a torn mix (rename(2) is atomic within one filesystem; fsync of the directory makes the rename
itself durable, see fsync(2) "Calling fsync() does not necessarily ensure that the entry in the
directory containing the file has also reached disk").
"""

from __future__ import annotations

import os

from dockyard import fastjson

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = ["atomic_write", "atomic_write_json", "fsync_dir"]


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically.

    ``durable=False`` skips both fsyncs: the write stays atomic (no torn file) but may be lost
    on power failure. Use it only for records that are re-derived on restart anyway.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    if durable:
        fsync_dir(directory)


def atomic_write_json(path: str, value: Any, mode: int = 0o644, *, durable: bool = True) -> None:
    atomic_write(path, fastjson.dumps(value, compact=True).encode(), mode, durable=durable)
