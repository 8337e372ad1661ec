"""Attach and exec streams between a hijacked API connection and a monitor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from dockyard.daemon.monitor_client import open_stream, read_frames


class MonitorStream:
    """One attach or exec stream. Stdin given before the monitor exists is buffered."""

    def __init__(self, header: dict[str, Any], tty: bool) -> None:
        self.header = header
        self.tty = tty
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.ready = asyncio.Event()
        self.failed: str | None = None
        self._stdin: list[bytes] = []
        self._stdin_closed = False
        self.result: dict[str, Any] | None = None

    async def connect(self, sock_path: str) -> None:
        try:
            self.reader, self.writer = await open_stream(sock_path, self.header)
            for chunk in self._stdin:
                self.writer.write(chunk)
            self._stdin.clear()
            if self._stdin_closed and self.writer.can_write_eof():
                self.writer.write_eof()
            await self.writer.drain()
        except OSError as exc:
            self.failed = str(exc)
        finally:
            self.ready.set()

    def fail(self, message: str) -> None:
        self.failed = message
        self.ready.set()

    def feed_stdin(self, data: bytes) -> None:
        if self.writer is None:
            self._stdin.append(data)
        elif not self.writer.is_closing():
            self.writer.write(data)

    def close_stdin(self) -> None:
        if self.writer is None:
            self._stdin_closed = True
        elif not self.writer.is_closing() and self.writer.can_write_eof():
            with contextlib.suppress(OSError):
                self.writer.write_eof()

    async def frames(self) -> AsyncIterator[tuple[int, Any]]:
        await self.ready.wait()
        if self.reader is None:
            return
        async for stream, payload in read_frames(self.reader):
            if stream == 3:
                self.result = payload
            yield stream, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


__all__ = ["MonitorStream"]
