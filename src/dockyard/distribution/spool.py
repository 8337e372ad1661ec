"""A blob on its way from the network (event loop) to the unpacker (a worker thread).

::

    downloader (loop) --write()--> [ unnamed temp file ] --read()--> unpacker (thread)
                        finish() after the digest checked / fail(exc)

The writer appends with pwrite; the reader follows behind with pread, blocking until more
bytes, the end, or an error arrive. So a layer unpacks while it downloads when its turn has
come, and waits on disk (not in memory) while earlier layers are still being applied. The end
of the stream is only ever reported after the whole blob matched its digest: a corrupt blob
fails the unpacker's last read and the store rolls the layer back. The file is unnamed
(O_TMPFILE or unlinked at once): nothing is left behind, even after a crash.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from dockyard.errors import DockyardError, Internal

__all__ = ["Spool", "SpoolAborted"]


class SpoolAborted(DockyardError):
    """The reading side gave up (the unpack failed); the download should stop."""


class Spool:
    def __init__(self, directory: str | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by close()
        self._fd = self._file.fileno()
        self._cond = threading.Condition()
        self._written = 0
        self._done = False
        self._error: BaseException | None = None
        self._aborted = False

    # writer side ---------------------------------------------------------------------------
    def write(self, data: bytes | memoryview) -> None:
        if self._aborted:
            raise SpoolAborted("unpacking stopped")
        view = memoryview(data)
        offset = self._written
        while view:
            n = os.pwrite(self._fd, view, offset)
            view = view[n:]
            offset += n
        with self._cond:
            self._written = offset
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = error
            self._cond.notify_all()

    @property
    def written(self) -> int:
        return self._written

    # reader side ---------------------------------------------------------------------------
    def reader(self, on_read: Callable[[int], None] | None = None) -> io.BufferedReader:
        return io.BufferedReader(_SpoolReader(self, on_read), buffer_size=1 << 20)

    def abort(self) -> None:
        self._aborted = True
        with self._cond:
            self._cond.notify_all()

    def _read_at(self, offset: int, size: int) -> bytes:
        with self._cond:
            while True:
                if self._error is not None:
                    raise self._error
                if self._aborted:
                    raise SpoolAborted("pull cancelled")
                if offset < self._written or self._done:
                    break
                self._cond.wait()
            available = self._written - offset
        if available <= 0:
            return b""
        data = os.pread(self._fd, min(size, available), offset)
        if not data:
            raise Internal("spool file shorter than written")
        return data

    def close(self) -> None:
        self._file.close()


class _SpoolReader(io.RawIOBase):
    def __init__(self, spool: Spool, on_read: Callable[[int], None] | None) -> None:
        self._spool = spool
        self._pos = 0
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._spool._read_at(self._pos, len(view))
        n = len(data)
        view[:n] = data
        self._pos += n
        if self._on_read is not None and n:
            self._on_read(self._pos)
        return n
