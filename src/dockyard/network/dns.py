"""The embedded DNS server containers on user-defined networks reach at 127.0.0.11.

Where it runs: the daemon's asyncio loop, on sockets that live in each container's network
namespace. :func:`open_dns_sockets` creates a UDP and a TCP socket bound to 127.0.0.11:53 from a
short-lived thread that joined the container's namespace (:mod:`dockyard.network.netns`); the
sockets stay in that namespace after the thread has gone, so the loop serves every container
from the host while queries and answers never leave the container's loopback. No process is
forked. Names not known on the container's networks are forwarded, from the host namespace, to
the host's resolvers (loopback ones such as systemd-resolved's 127.0.0.53 included, as Docker
>= 26 does), or to ``--dns`` servers.

Wire format (RFC 1035 4.1), the only parts parsed here::

    +--+--+--+--+--+--+   header: ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT (6 x u16)
    | question        |   QNAME (length-prefixed labels, 0-terminated), QTYPE u16, QCLASS u16
    | answers ...     |   NAME (pointer 0xC00C to the question), TYPE, CLASS, TTL u32,
    +-----------------+   RDLENGTH u16, RDATA (4 bytes A / 16 bytes AAAA)

Why no library (dnslib): we read one question and write A/AAAA answers; everything else is
forwarded byte for byte with only the ID rewritten, so ~60 lines beat a dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import struct
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, cast

from dockyard.errors import InvalidArgument
from dockyard.network.netns import run_in_netns

__all__ = [
    "DNS_ADDRESS",
    "EmbeddedDns",
    "Question",
    "build_answer",
    "build_ptr_answer",
    "open_dns_sockets",
    "parse_question",
]

log = logging.getLogger(__name__)

DNS_ADDRESS = "127.0.0.11"
QTYPE_A, QTYPE_AAAA, QTYPE_PTR = 1, 28, 12
RCODE_SERVFAIL, RCODE_NXDOMAIN = 2, 3
TTL = 600

# resolve(scope, name, qtype) -> addresses (names for PTR), [] (the name exists, no such
# record), None (unknown: forward it)
Resolver = Callable[[str, str, int], list[str] | None]


@dataclass(frozen=True)
class Question:
    id: int
    flags: int
    name: str            # lower case, no trailing dot
    qtype: int
    qclass: int
    end: int             # offset just past the question


def parse_question(msg: bytes) -> Question:
    if len(msg) < 12:
        raise InvalidArgument("dns message too short")
    ident, flags, qdcount = struct.unpack_from("!HHH", msg)
    if qdcount != 1:
        raise InvalidArgument("dns message must carry exactly one question")
    labels, pos = [], 12
    while True:
        if pos >= len(msg):
            raise InvalidArgument("dns name runs past the message")
        length = msg[pos]
        pos += 1
        if length == 0:
            break
        if length & 0xC0:
            raise InvalidArgument("compressed name in a question")
        labels.append(msg[pos:pos + length].decode("ascii", "replace"))
        pos += length
    if pos + 4 > len(msg):
        raise InvalidArgument("dns question truncated")
    qtype, qclass = struct.unpack_from("!HH", msg, pos)
    return Question(ident, flags, ".".join(labels).lower(), qtype, qclass, pos + 4)


def build_answer(msg: bytes, q: Question, addresses: Sequence[str], rcode: int = 0) -> bytes:
    """A response echoing the question with A/AAAA records (or just ``rcode``)."""
    rd = q.flags & 0x0100
    flags = 0x8000 | 0x0400 | rd | 0x0080 | rcode        # QR, AA, RD copied, RA
    header = struct.pack("!HHHHHH", q.id, flags, 1, len(addresses), 0, 0)
    out = bytearray(header + msg[12:q.end])
    for addr in addresses:
        packed = ipaddress.ip_address(addr).packed
        rtype = QTYPE_A if len(packed) == 4 else QTYPE_AAAA
        out += struct.pack("!HHHIH", 0xC00C, rtype, 1, TTL, len(packed)) + packed
    return bytes(out)


def _encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.strip(".").split(".")) + b"\0"


def build_ptr_answer(msg: bytes, q: Question, names: Sequence[str]) -> bytes:
    """A response with PTR records (reverse lookups of container addresses)."""
    rd = q.flags & 0x0100
    flags = 0x8000 | 0x0400 | rd | 0x0080
    out = bytearray(struct.pack("!HHHHHH", q.id, flags, 1, len(names), 0, 0) + msg[12:q.end])
    for name in names:
        rdata = _encode_name(name)
        out += struct.pack("!HHHIH", 0xC00C, QTYPE_PTR, 1, TTL, len(rdata)) + rdata
    return bytes(out)


def _servfail(msg: bytes) -> bytes | None:
    try:
        return build_answer(msg, parse_question(msg), [], RCODE_SERVFAIL)
    except InvalidArgument:
        return None


def open_dns_sockets(netns_path: str, address: str = DNS_ADDRESS, port: int = 53
                     ) -> tuple[socket.socket, socket.socket]:
    """UDP and listening TCP sockets bound to ``address:port`` inside the namespace."""

    def body() -> tuple[socket.socket, socket.socket]:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            for s in (udp, tcp):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((address, port))
                s.setblocking(False)
            tcp.listen(64)
        except BaseException:
            udp.close()
            tcp.close()
            raise
        return udp, tcp

    return run_in_netns(netns_path, body)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: EmbeddedDns, scope: str) -> None:
        self.server, self.scope = server, scope
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._spawn(self._answer(data, addr))

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.server.handle(self.scope, data, tcp=False)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class EmbeddedDns:
    """Serves every container's 127.0.0.11 from one event loop.

    ``resolve(scope, name, qtype)`` is the manager's lookup (scope = container id);
    ``upstreams(scope)`` gives the (ip, port) servers to forward unknown names to ([] for
    ``--internal`` networks: answer SERVFAIL like Docker).
    """

    def __init__(self, resolve: Resolver,
                 upstreams: Callable[[str], Sequence[tuple[str, int]]],
                 timeout: float = 2.0) -> None:
        self.resolve = resolve
        self.upstreams = upstreams
        self.timeout = timeout
        self._servers: dict[str, tuple[asyncio.DatagramTransport, asyncio.AbstractServer]] = {}
        self._tasks: set[asyncio.Task[None]] = set()   # strong refs (asyncio keeps weak ones)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def add(self, scope: str, udp: socket.socket, tcp: socket.socket) -> None:
        """Start serving the sockets from :func:`open_dns_sockets` for container ``scope``."""
        await self.remove(scope)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self, scope), sock=udp)

        async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    reply = await self.handle(scope, await reader.readexactly(size), tcp=True)
                    if reply is None:
                        break
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(on_tcp, sock=tcp)
        self._servers[scope] = (transport, server)

    async def remove(self, scope: str) -> None:
        entry = self._servers.pop(scope, None)
        if entry is not None:
            entry[0].close()
            entry[1].close()
            with contextlib.suppress(Exception):
                await entry[1].wait_closed()

    async def close(self) -> None:
        for scope in list(self._servers):
            await self.remove(scope)
        for task in list(self._tasks):
            task.cancel()

    def serving(self) -> list[str]:
        return list(self._servers)

    async def handle(self, scope: str, msg: bytes, *, tcp: bool) -> bytes | None:
        try:
            q = parse_question(msg)
        except InvalidArgument:
            return None
        if q.qtype in (QTYPE_A, QTYPE_AAAA, QTYPE_PTR) and q.qclass == 1:
            found = self.resolve(scope, q.name, q.qtype)
            if found is not None:
                if q.qtype == QTYPE_PTR:
                    return build_ptr_answer(msg, q, found)
                return build_answer(msg, q, found)
        return await self._forward(scope, msg, tcp=tcp)

    async def _forward(self, scope: str, msg: bytes, *, tcp: bool) -> bytes | None:
        for server in self.upstreams(scope):
            try:
                if tcp:
                    reply = await asyncio.wait_for(_forward_tcp(server, msg), self.timeout)
                else:
                    reply = await asyncio.wait_for(_forward_udp(server, msg), self.timeout)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                log.debug("dns upstream %s failed: %s", server, exc)
                continue
            return reply
        return _servfail(msg)


async def _forward_udp(server: tuple[str, int], msg: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, server)
        ident = struct.unpack_from("!H", msg)[0]
        # a fresh random ID upstream (the container's own ID goes back to it)
        new_id = int.from_bytes(os.urandom(2), "big")
        await loop.sock_sendall(sock, struct.pack("!H", new_id) + msg[2:])
        while True:
            reply = await loop.sock_recv(sock, 65535)
            if len(reply) >= 2 and struct.unpack_from("!H", reply)[0] == new_id:
                return struct.pack("!H", ident) + reply[2:]
    finally:
        sock.close()


async def _forward_tcp(server: tuple[str, int], msg: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*server)
    try:
        writer.write(struct.pack("!H", len(msg)) + msg)
        await writer.drain()
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        return await reader.readexactly(size)
    finally:
        writer.close()
