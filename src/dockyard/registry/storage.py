"""Storage drivers: the only code of the registry that touches bytes at rest.

The registry layer (:mod:`dockyard.registry.store`) speaks in driver paths ("/blobs/sha256/ab/
ab12.../data") and never in file names, so an S3-compatible driver can be added by implementing
:class:`StorageDriver` alone. Paths are always built by the store from validated names and
digests; the filesystem driver still refuses anything that would leave its root.

Contract (what an object store can give, nothing more)::

    read(path) -> bytes              whole small object (links, manifests, records)
    write(path, data)                atomic replace: readers see the old or the new content
    stat(path) -> FileInfo | None    size, mtime, is_dir
    list(path) -> [child names]      one level, sorted; [] when absent
    delete(path)                     recursive, missing is fine
    move(src, dst)                   atomic publish of a finished upload
    append_writer(path) -> Writer    streaming upload data (create or resume at the end)
    open_read(path, offset) -> file  streaming reads
    touch(path)                      refresh mtime (GC grace period)
    local_path(path) -> str | None   a real file for sendfile(2), None for remote drivers
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from dockyard.atomic import atomic_write, fsync_dir
from dockyard.errors import InvalidArgument, NotFound

__all__ = ["FileInfo", "FilesystemDriver", "StorageDriver", "Writer"]


@dataclass(frozen=True)
class FileInfo:
    size: int
    mtime: float
    is_dir: bool


class Writer(Protocol):
    @property
    def size(self) -> int: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class StorageDriver(Protocol):
    def read(self, path: str) -> bytes: ...

    def write(self, path: str, data: bytes) -> None: ...

    def stat(self, path: str) -> FileInfo | None: ...

    def list(self, path: str) -> list[str]: ...

    def delete(self, path: str) -> None: ...

    def move(self, src: str, dst: str) -> None: ...

    def append_writer(self, path: str) -> Writer: ...

    def open_read(self, path: str, offset: int = 0) -> BinaryIO: ...

    def touch(self, path: str) -> None: ...

    def local_path(self, path: str) -> str | None: ...


class _FileWriter:
    """Appends to a file with plain write(2) calls; no fsync until commit (see ``close``)."""

    def __init__(self, full: str) -> None:
        os.makedirs(os.path.dirname(full), exist_ok=True)
        self._fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._size = os.fstat(self._fd).st_size

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            self._size += n
            view = view[n:]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class FilesystemDriver:
    """Everything under one local directory; ``durable`` adds fsyncs (off only in benchmarks)."""

    def __init__(self, root: str, *, durable: bool = True) -> None:
        self.root = os.path.abspath(root)
        self.durable = durable
        os.makedirs(self.root, exist_ok=True)

    def _full(self, path: str) -> str:
        full = os.path.normpath(os.path.join(self.root, path.lstrip("/")))
        if full != self.root and not full.startswith(self.root + os.sep):
            raise InvalidArgument(f"storage path escapes the root: {path!r}")
        return full

    def read(self, path: str) -> bytes:
        try:
            with open(self._full(path), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(f"no such storage path: {path}") from exc

    def write(self, path: str, data: bytes) -> None:
        full = self._full(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        atomic_write(full, data, durable=self.durable)

    def stat(self, path: str) -> FileInfo | None:
        try:
            st = os.stat(self._full(path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return FileInfo(st.st_size, st.st_mtime, os.path.isdir(self._full(path)))

    def list(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self._full(path)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def delete(self, path: str) -> None:
        full = self._full(path)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            try:
                os.unlink(full)
            except FileNotFoundError:
                pass

    def move(self, src: str, dst: str) -> None:
        full_src, full_dst = self._full(src), self._full(dst)
        os.makedirs(os.path.dirname(full_dst), exist_ok=True)
        if self.durable:
            fd = os.open(full_src, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.rename(full_src, full_dst)
        if self.durable:
            fsync_dir(os.path.dirname(full_dst))  # the published name survives a power cut

    def append_writer(self, path: str) -> Writer:
        return _FileWriter(self._full(path))

    def open_read(self, path: str, offset: int = 0) -> BinaryIO:
        try:
            f = open(self._full(path), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError as exc:
            raise NotFound(f"no such storage path: {path}") from exc
        if offset:
            f.seek(offset)
        return f

    def touch(self, path: str) -> None:
        try:
            os.utime(self._full(path))
        except FileNotFoundError:
            pass

    def local_path(self, path: str) -> str | None:
        return self._full(path)
