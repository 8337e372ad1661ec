"""HTTP hijack on aiohttp: ``Upgrade: tcp`` answered ``101 UPGRADED``, then raw bytes both ways.

aiohttp already recognises ``Upgrade: tcp`` (it holds back whatever follows the request as the
"message tail"). We then do what its WebSocketResponse does: a response without length
framing, and a payload parser of our own installed with ``protocol.set_parser`` that receives
every later byte, then put a small protocol of ours in front of the transport
(``transport.set_protocol``): asyncio closes a transport whose protocol's ``eof_received``
returns a false value, but the docker CLI half-closes its side right after the 101 when it has
no stdin; ours answers True so output keeps flowing (FIELD-NOTES).

Strong references: the connection's queue and tasks live in :class:`Hijacked`, which the
handler coroutine holds until the stream ends; the app also keeps every live one in a set
(asyncio holds tasks weakly; a GC'd reader closes the socket).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

RAW_STREAM = "application/vnd.docker.raw-stream"


class _RawResponse(web.StreamResponse):
    _length_check = False  # no chunking, no Content-Length: raw bytes after the headers


class _Feed:
    """Our payload parser: aiohttp hands it every byte after the upgrade."""

    def __init__(self, queue: asyncio.Queue[bytes | None]) -> None:
        self.queue = queue
        self.eof = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        if not self.eof:
            self.eof = True
            self.queue.put_nowait(None)


class _HalfClose(asyncio.Protocol):
    """Stands in for aiohttp's protocol once hijacked: bytes go straight to our feed, and a
    half-close from the client leaves the transport open for our output."""

    def __init__(self, inner: Any, feed: _Feed) -> None:
        self.inner = inner
        self.feed = feed

    def data_received(self, data: bytes) -> None:
        self.feed.feed_data(data)

    def eof_received(self) -> bool:
        self.feed.feed_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.feed.feed_eof()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class Hijacked:
    def __init__(self, request: web.Request, response: _RawResponse) -> None:
        self.request = request
        self.response = response
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.feed = _Feed(self.queue)
        self.closed = False

    async def read(self) -> bytes | None:
        """The next chunk from the client, or None at its EOF (half-close or disconnect)."""
        if self.feed.eof and self.queue.empty():
            return None
        return await self.queue.get()

    async def write(self, data: bytes) -> None:
        if self.closed:
            return
        transport = self.request.transport
        if transport is None or transport.is_closing():
            self.closed = True
            return
        try:
            await self.response.write(data)
        except (ConnectionError, RuntimeError):
            self.closed = True

    def close(self) -> None:
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.close()


async def hijack(request: web.Request, *, content_type: str = RAW_STREAM) -> Hijacked:
    upgrade = (request.headers.get("Upgrade", "").lower() == "tcp"
               and "upgrade" in request.headers.get("Connection", "").lower())
    resp = _RawResponse(status=101 if upgrade else 200, reason="UPGRADED" if upgrade else "OK")
    resp.content_type = content_type
    if upgrade:
        resp.headers["Connection"] = "Upgrade"
        resp.headers["Upgrade"] = "tcp"
    resp.force_close()
    h = Hijacked(request, resp)
    live: set[Hijacked] = request.app["hijacked"]
    live.add(h)
    await resp.prepare(request)
    protocol: Any = request.protocol
    if upgrade:
        protocol.set_parser(h.feed)  # flushes what came right after the request into our feed
    else:
        h.feed.feed_eof()
    transport = request.transport
    if transport is not None:
        transport.set_protocol(_HalfClose(protocol, h.feed))
    return h


def release(h: Hijacked) -> None:
    h.request.app["hijacked"].discard(h)


__all__ = ["RAW_STREAM", "Hijacked", "hijack", "release"]
