"""Stream formats the Engine API sends back.

Multiplexed stdio (attach, logs, exec without a tty) — every frame is::

    +--------+--------+--------+--------+--------+--------+--------+--------+==========+
    | stream |   0    |   0    |   0    |   length, big-endian uint32       | payload  |
    +--------+--------+--------+--------+--------+--------+--------+--------+==========+
    stream: 0 stdin, 1 stdout, 2 stderr (3: a system error, written to stderr)

With a tty the stream is raw bytes (no headers). The Content-Type says
``application/vnd.docker.raw-stream`` either way, so the caller decides from the container's
``Config.Tty``.

JSON streams (pull, push, load, events, stats, build) are JSON values one after the other,
separated by ``\\r\\n`` or ``\\n`` (or nothing at all); :func:`json_stream` decodes them as
they arrive.

A hijacked connection (:class:`Hijacked`) is the socket left after ``101 UPGRADED``: the
client writes stdin to it and half-closes (``shutdown(SHUT_WR)``) at stdin's EOF while the
daemon keeps sending output.
"""

from __future__ import annotations

import _socket
import struct

from dockyard import fastjson

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Callable, Iterator
    from typing import Any, Protocol

__all__ = ["STDERR", "STDIN", "STDOUT", "FrameDemuxer", "Hijacked", "demux", "json_stream", "raw"]

STDIN, STDOUT, STDERR, SYSERR = 0, 1, 2, 3
HEADER = struct.Struct(">BxxxL")


if TYPE_CHECKING:
    class Readable(Protocol):
        def read1(self, n: int = -1, /) -> bytes: ...


class FrameDemuxer:
    """Incremental demultiplexer: feed bytes, get ``(stream, payload)`` pairs back."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames: list[tuple[int, bytes]] = []
        while len(self._buf) >= HEADER.size:
            stream, length = HEADER.unpack_from(self._buf)
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            frames.append((stream, bytes(self._buf[HEADER.size:end])))
            del self._buf[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered (non-zero at EOF means truncation)."""
        return len(self._buf)


def encode_frame(stream: int, payload: bytes) -> bytes:
    """One multiplexed frame (used by tests and fakes)."""
    return HEADER.pack(stream, len(payload)) + payload


def demux(read: Callable[[int], bytes], chunk: int = 32768) -> Iterator[tuple[int, bytes]]:
    """Yield ``(stream, payload)`` frames from a reader until EOF."""
    demuxer = FrameDemuxer()
    while True:
        data = read(chunk)
        if not data:
            return
        yield from demuxer.feed(data)


def raw(read: Callable[[int], bytes], chunk: int = 32768) -> Iterator[tuple[int, bytes]]:
    """Yield a tty stream's bytes as stdout frames until EOF."""
    while True:
        data = read(chunk)
        if not data:
            return
        yield STDOUT, data


def json_stream(read: Callable[[int], bytes], chunk: int = 65536) -> Iterator[Any]:
    """Decode concatenated JSON values as they arrive; whitespace between them is skipped."""
    buf = ""
    pending = b""
    while True:
        data = read(chunk)
        if not data:
            break
        pending += data
        try:
            text = pending.decode()
            pending = b""
        except UnicodeDecodeError:
            # a multi-byte character split across reads: wait for the rest
            cut = len(pending) - 3
            text, pending = pending[:cut].decode(errors="replace"), pending[cut:]
        buf += text
        while True:
            stripped = buf.lstrip()
            if not stripped:
                buf = ""
                break
            try:
                value, end = fastjson.raw_decode(stripped)
            except ValueError:  # json.JSONDecodeError: incomplete so far
                buf = stripped
                break
            yield value
            buf = stripped[end:]
    tail = (buf + pending.decode(errors="replace")).strip()
    if tail:
        yield fastjson.loads(tail)


class Hijacked:
    """The raw connection after ``101 UPGRADED``.

    ``reader`` is the buffered reader the reply's headers were read through (it may already
    hold the first output bytes); writes go straight to ``sock``.
    """

    def __init__(self, sock: socket, reader: Readable | None = None) -> None:
        self.sock = sock
        self._reader = reader

    def read(self, n: int = 32768) -> bytes:
        try:
            if self._reader is not None:
                return self._reader.read1(n)
            return self.sock.recv(n)
        except (ValueError, OSError):  # ValueError: reader closed under us
            return b""

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        """Half-close: the daemon sees stdin's EOF but keeps sending output."""
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            if self._reader is not None and hasattr(self._reader, "close"):
                self._reader.close()
            self.sock.close()
        except OSError:
            pass

    def frames(self, tty: bool) -> Iterator[tuple[int, bytes]]:
        return raw(self.read) if tty else demux(self.read)

    def __enter__(self) -> Hijacked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
