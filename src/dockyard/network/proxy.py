"""The userland proxy: ONE asyncio service for every published port NAT does not serve.

Docker starts one ``docker-proxy`` process per published port and address family (a 1,000-port
range costs ~2,000 processes). Dockyard's kernel NAT rules (:mod:`dockyard.network.firewall`)
carry the traffic; what they cannot carry (the firewall disabled with ``"iptables": false``, or
a client NAT does not see) reaches the listening socket that reserves the host port, and this
proxy relays it. It runs on the daemon's event loop: no process per port, none at all in fact.

TCP: accept, connect to ``container_ip:port``, then splice(2) both ways through a pipe (the
data never enters Python), half-closing as the peers do.
UDP: one connected socket per client address towards the container, dropped after
``udp_idle`` seconds without traffic (docker-proxy's 90 s "UDPConnTrackTimeout").
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import time
from collections.abc import Coroutine
from typing import Any

__all__ = ["PortProxy"]

log = logging.getLogger(__name__)

PIPE_SIZE = 1 << 20


def _wait(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> asyncio.Future[None]:
    fut: asyncio.Future[None] = loop.create_future()
    add, remove = (loop.add_writer, loop.remove_writer) if write else (loop.add_reader, loop.remove_reader)

    def ready() -> None:
        remove(fd)
        if not fut.done():
            fut.set_result(None)

    add(fd, ready)
    fut.add_done_callback(lambda _f: remove(fd))
    return fut


async def _splice(src: socket.socket, dst: socket.socket) -> None:
    """Copy ``src`` to ``dst`` through a pipe with splice(2): the bytes never enter Python."""
    loop = asyncio.get_running_loop()
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, 1031, PIPE_SIZE)  # F_SETPIPE_SZ
        while True:
            try:
                n = os.splice(src.fileno(), w, PIPE_SIZE, flags=flags)
            except BlockingIOError:
                await _wait(loop, src.fileno(), write=False)
                continue
            if n == 0:
                break
            while n:
                try:
                    n -= os.splice(r, dst.fileno(), n, flags=flags)
                except BlockingIOError:
                    await _wait(loop, dst.fileno(), write=True)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
    except OSError:                 # a peer reset: close both directions
        with contextlib.suppress(OSError):
            src.shutdown(socket.SHUT_RDWR)
            dst.shutdown(socket.SHUT_RDWR)
    finally:
        os.close(r)
        os.close(w)


class _TcpRelay:
    """Accepts on a listening socket and splices each connection to the target."""

    def __init__(self, proxy: PortProxy, listener: socket.socket, target: tuple[str, int]) -> None:
        self.proxy, self.listener, self.target = proxy, listener, target
        self.task = asyncio.ensure_future(self._accept())

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            client, _ = await loop.sock_accept(self.listener)
            self.proxy._spawn(self._relay(client))

    async def _relay(self, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with client, upstream:
            client.setblocking(False)
            upstream.setblocking(False)
            try:
                await loop.sock_connect(upstream, self.target)
            except OSError as exc:
                log.debug("proxy: cannot reach %s: %s", self.target, exc)
                return
            await asyncio.gather(_splice(client, upstream), _splice(upstream, client))

    def close(self) -> None:
        self.task.cancel()
        self.task.add_done_callback(lambda _t: self.listener.close())


class _UdpRelay(asyncio.DatagramProtocol):
    def __init__(self, proxy: PortProxy, target: tuple[str, int]) -> None:
        self.proxy, self.target = proxy, target
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[tuple[str, int], tuple[asyncio.DatagramTransport, list[float]]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        session = self.sessions.get(addr)
        if session is not None:
            session[1][0] = time.monotonic()
            session[0].sendto(data)
            return
        self.proxy._spawn(self._open(data, addr))

    async def _open(self, first: bytes, addr: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        relay = self

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, _src: tuple[str, int]) -> None:
                if relay.transport is not None:
                    relay.transport.sendto(data, addr)

        transport, _ = await loop.create_datagram_endpoint(Back, remote_addr=self.target)
        self.sessions[addr] = (transport, [time.monotonic()])
        transport.sendto(first)

    def expire(self, idle: float) -> None:
        now = time.monotonic()
        for addr, (transport, seen) in list(self.sessions.items()):
            if now - seen[0] > idle:
                transport.close()
                del self.sessions[addr]

    def close(self) -> None:
        for transport, _ in self.sessions.values():
            transport.close()
        self.sessions.clear()
        if self.transport is not None:
            self.transport.close()


class PortProxy:
    """Relays connections arriving on reserved host sockets to containers."""

    def __init__(self, udp_idle: float = 90.0) -> None:
        self.udp_idle = udp_idle
        self._entries: dict[tuple[str, str, int], _TcpRelay | _UdpRelay] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reaper: asyncio.Task[None] | None = None

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def add(self, proto: str, sock: socket.socket, target: tuple[str, int]) -> None:
        """Serve ``sock`` (a listening TCP or bound UDP socket) towards ``target``.

        The socket stays owned by the caller (the port reservation): :meth:`remove` stops
        serving it without closing it.
        """
        key = (proto, *sock.getsockname()[:2])
        await self.remove(proto, key[1], key[2])
        dup = sock.dup()   # asyncio closes what it serves; the reservation keeps the original
        dup.setblocking(False)
        if proto == "tcp":
            self._entries[key] = _TcpRelay(self, dup, target)
        else:
            loop = asyncio.get_running_loop()
            _, relay = await loop.create_datagram_endpoint(
                lambda: _UdpRelay(self, target), sock=dup)
            self._entries[key] = relay
            if self._reaper is None:
                self._reaper = asyncio.ensure_future(self._reap())

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(self.udp_idle, 10.0))
            for entry in self._entries.values():
                if isinstance(entry, _UdpRelay):
                    entry.expire(self.udp_idle)

    async def remove(self, proto: str, host_ip: str, host_port: int) -> None:
        entry = self._entries.pop((proto, host_ip, host_port), None)
        if entry is None:
            return
        entry.close()

    def serving(self) -> list[tuple[str, str, int]]:
        return list(self._entries)

    async def close(self) -> None:
        for key in list(self._entries):
            await self.remove(*key)
        pending: list[asyncio.Future[Any]] = list(self._tasks)
        if self._reaper is not None:
            pending.append(self._reaper)
        for entry in pending:
            entry.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
