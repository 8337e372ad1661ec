"""The daemon's side of a monitor's control connection (see :mod:`dockyard.shim.protocol`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Callable
from typing import Any

from dockyard.errors import Conflict, Unavailable
from dockyard.shim import protocol

EventHandler = Callable[[dict[str, Any]], None]


MAX_SUN_PATH = 100


async def _open_unix(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a unix socket whose path may exceed sun_path (108 bytes): long paths go
    through ``/proc/self/fd/<dir fd>/<name>``."""
    if len(path.encode()) <= MAX_SUN_PATH:
        return await asyncio.open_unix_connection(path, limit=1 << 22)
    dfd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return await asyncio.open_unix_connection(f"/proc/self/fd/{dfd}/{os.path.basename(path)}", limit=1 << 22)
    finally:
        os.close(dfd)


class MonitorClient:
    """Requests with replies matched by ``seq``; unsolicited events go to ``on_event``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_event: EventHandler) -> None:
        self.reader = reader
        self.writer = writer
        self.on_event = on_event
        self._seq = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.closed = asyncio.Event()
        self._task = asyncio.create_task(self._read_loop())

    @classmethod
    async def from_socket(cls, sock: socket.socket, on_event: EventHandler) -> MonitorClient:
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 22)
        return cls(reader, writer, on_event)

    @classmethod
    async def connect(cls, path: str, on_event: EventHandler) -> MonitorClient:
        reader, writer = await _open_unix(path)
        writer.write(protocol.encode({"op": "control"}))
        return cls(reader, writer, on_event)

    async def _read_loop(self) -> None:
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    break
                try:
                    msg = protocol.decode(line)
                except ValueError:
                    continue
                if "event" in msg:
                    self.on_event(msg)
                    continue
                fut = self._pending.pop(int(msg.get("seq") or 0), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(Unavailable("the container's monitor went away"))
            self._pending.clear()
            with contextlib.suppress(Exception):
                self.writer.close()

    async def request(self, op: str, **args: Any) -> dict[str, Any]:
        if self.closed.is_set():
            raise Unavailable("the container's monitor went away")
        self._seq += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._seq] = fut
        self.writer.write(protocol.encode({"op": op, "seq": self._seq, **args}))
        reply = await fut
        if "error" in reply:
            raise Conflict(str(reply["error"]))
        return reply

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
        self._task.cancel()


async def open_stream(path: str, header: dict[str, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A new attach/exec stream connection to a monitor."""
    reader, writer = await _open_unix(path)
    writer.write(protocol.encode(header))
    return reader, writer


async def read_frames(reader: asyncio.StreamReader) -> Any:
    """Yield ``(stream, payload)`` until the END frame (whose JSON is yielded as stream 3)."""
    while True:
        try:
            head = await reader.readexactly(protocol.HEADER.size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        stream, size = protocol.HEADER.unpack(head)
        try:
            payload = await reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        if stream == protocol.END:
            yield stream, json.loads(payload or b"{}")
            return
        yield stream, payload


__all__ = ["MonitorClient", "open_stream", "read_frames"]
