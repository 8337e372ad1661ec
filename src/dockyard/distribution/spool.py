"""A blob on its way from the network (event loop) to the unpacker (a worker thread).

::

    downloader (loop) --write()--> [ segments: memory chunks | ranges of an unnamed file ]
                        finish() after the digest checked / fail(exc)       |
                                                     unpacker (thread) <--read()

Only what must wait is spooled to disk: while nobody reads this blob yet (earlier layers are
still being applied) its bytes go to the file; once the unpacker is reading it, they are handed
over in memory (up to ``MEMORY_LIMIT`` bytes queued, beyond that the file takes them again, so
a slow unpacker never costs unbounded memory). Segments are consumed strictly in order.

The end of the stream is only ever reported after the whole blob matched its digest: a corrupt
blob fails the unpacker's last read and the store rolls the layer back. The file is unnamed
(O_TMPFILE or unlinked at once): nothing is left behind, even after a crash.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from dockyard.errors import DockyardError, Internal

__all__ = ["MEMORY_LIMIT", "Spool", "SpoolAborted"]

MEMORY_LIMIT = 64 << 20


class SpoolAborted(DockyardError):
    """The reading side gave up (the unpack failed); the download should stop."""


class Spool:
    def __init__(self, directory: str | None = None) -> None:
        self._directory = directory
        self._file: Any = None
        self._cond = threading.Condition()
        # each segment: bytes (in memory) or [start, end] (a range of the file)
        self._segments: deque[bytes | list[int]] = deque()
        self._file_end = 0
        self._memory = 0
        self._written = 0
        self._attached = False
        self._done = False
        self._error: BaseException | None = None
        self._aborted = False

    # writer side ---------------------------------------------------------------------------
    def write(self, data: bytes | memoryview) -> None:
        if self._aborted:
            raise SpoolAborted("unpacking stopped")
        data = bytes(data)
        with self._cond:
            to_memory = self._attached and self._memory + len(data) <= MEMORY_LIMIT
            if to_memory:
                self._segments.append(data)
                self._memory += len(data)
                self._written += len(data)
                self._cond.notify_all()
                return
        start = self._file_end
        self._pwrite(data, start)
        with self._cond:
            self._file_end = start + len(data)
            last = self._segments[-1] if self._segments else None
            if isinstance(last, list) and last[1] == start:
                last[1] = self._file_end
            else:
                self._segments.append([start, self._file_end])
            self._written += len(data)
            self._cond.notify_all()

    def _pwrite(self, data: bytes, offset: int) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115 - close()
        view = memoryview(data)
        fd = self._file.fileno()
        while view:
            n = os.pwrite(fd, view, offset)
            view = view[n:]
            offset += n

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
        """The bytes in order; from now on new bytes are handed over in memory."""
        with self._cond:
            self._attached = True
        return io.BufferedReader(_SpoolReader(self, on_read), buffer_size=1 << 20)

    def abort(self) -> None:
        self._aborted = True
        with self._cond:
            self._cond.notify_all()

    def _read(self, size: int) -> bytes:
        with self._cond:
            while True:
                if self._error is not None:
                    raise self._error
                if self._aborted:
                    raise SpoolAborted("pull cancelled")
                if self._segments:
                    break
                if self._done:
                    return b""
                self._cond.wait()
            head = self._segments[0]
            if isinstance(head, bytes):
                if len(head) <= size:
                    self._segments.popleft()
                    out = head
                else:
                    out, self._segments[0] = head[:size], head[size:]
                self._memory -= len(out)
                return out
            start = head[0]
            end = min(head[1], start + size)
            head[0] = end
            if head[0] == head[1]:
                self._segments.popleft()
        # the writer never touches a range once published: read it without the lock
        data = os.pread(self._file.fileno(), end - start, start)
        if len(data) != end - start:
            raise Internal("spool file shorter than written")
        return data

    def close(self) -> None:
        if self._file is not None:
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
        data = self._spool._read(len(view))
        n = len(data)
        view[:n] = data
        self._pos += n
        if self._on_read is not None and n:
            self._on_read(self._pos)
        return n
