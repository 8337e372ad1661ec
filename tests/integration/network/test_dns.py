"""The embedded DNS at 127.0.0.11 inside stand-in containers on a user-defined network."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from dockyard.network.dns import (
    QTYPE_A,
    QTYPE_AAAA,
    QTYPE_PTR,
    EmbeddedDns,
    build_answer,
    open_dns_sockets,
    parse_question,
)
from dockyard.network.netns import run_in_netns
from tests.integration.network.conftest import NetEnv, random_subnet

pytestmark = pytest.mark.root

WEB, DB, OTHER = "1a" * 32, "2b" * 32, "3c" * 32
UPSTREAM_ANSWER = "198.51.100.7"


def query(name: str, qtype: int = QTYPE_A, ident: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1)


def answers(reply: bytes) -> tuple[int, list[str]]:
    """(rcode, addresses) of a reply built like ours or the fake upstream's."""
    q = parse_question(reply)
    count = struct.unpack_from("!H", reply, 6)[0]
    pos, out = q.end, []
    for _ in range(count):
        _rtype, _, _, size = struct.unpack_from("!HHIH", reply, pos + 2)
        out.append(str(ipaddress.ip_address(reply[pos + 12:pos + 12 + size])))
        pos += 12 + size
    return q.flags & 0xF, out


def ask(ns: str, msg: bytes) -> bytes:
    sock = run_in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    with sock:
        sock.settimeout(5)
        sock.sendto(msg, ("127.0.0.11", 53))
        return sock.recv(4096)


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: object) -> object:
        fut: Future[object] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return fut.result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def upstream() -> Iterator[tuple[str, int]]:
    """A fake resolver on 127.0.0.1 answering every A question with UPSTREAM_ANSWER."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                msg, addr = sock.recvfrom(4096)
            except TimeoutError:
                continue
            sock.sendto(build_answer(msg, parse_question(msg), [UPSTREAM_ANSWER]), addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()
    stop.set()
    thread.join(5)
    sock.close()


@pytest.fixture
def dns(netenv: NetEnv, upstream: tuple[str, int]) -> Iterator[tuple[LoopThread, EmbeddedDns]]:
    lt = LoopThread()
    server = EmbeddedDns(netenv.nm.resolve, lambda scope: [upstream])
    try:
        yield lt, server
    finally:
        lt.call(server.close())
        lt.stop()


def _start(netenv: NetEnv, dns: tuple[LoopThread, EmbeddedDns], cid: str, ns: str) -> None:
    lt, server = dns
    udp, tcp = open_dns_sockets(ns)
    lt.call(server.add(cid, udp, tcp))


def test_names_and_aliases_resolve_on_the_same_network(netenv: NetEnv, dns: tuple[LoopThread, EmbeddedDns]) -> None:
    netenv.nm.create_network("app", subnet=random_subnet())
    netenv.nm.create_network("elsewhere", subnet=random_subnet())
    ns_web, ns_db, ns_other = netenv.netns(), netenv.netns(), netenv.netns()
    web = netenv.nm.attach(WEB, ns_web, "app", name="web", aliases=["frontend"])
    db = netenv.nm.attach(DB, ns_db, "app", name="db", aliases=["postgres"])
    netenv.nm.attach(OTHER, ns_other, "elsewhere", name="other")
    _start(netenv, dns, WEB, ns_web)
    _start(netenv, dns, DB, ns_db)
    assert answers(ask(ns_web, query("db"))) == (0, [db.ip])
    assert answers(ask(ns_web, query("POSTGRES."))) == (0, [db.ip])
    assert answers(ask(ns_db, query("frontend"))) == (0, [web.ip])
    assert answers(ask(ns_db, query(WEB[:12]))) == (0, [web.ip])
    assert answers(ask(ns_db, query("web.app"))) == (0, [web.ip])
    assert answers(ask(ns_web, query("db", QTYPE_AAAA))) == (0, [])    # known, no IPv6
    # a container on another network is not visible: the name goes upstream
    assert answers(ask(ns_web, query("other"))) == (0, [UPSTREAM_ANSWER])


def test_unknown_names_are_forwarded_with_the_callers_id(netenv: NetEnv, dns: tuple[LoopThread, EmbeddedDns]) -> None:
    netenv.nm.create_network("fwd", subnet=random_subnet())
    ns = netenv.netns()
    netenv.nm.attach(WEB, ns, "fwd", name="web")
    _start(netenv, dns, WEB, ns)
    reply = ask(ns, query("example.test", ident=0xBEEF))
    assert struct.unpack_from("!H", reply)[0] == 0xBEEF
    assert answers(reply) == (0, [UPSTREAM_ANSWER])


def test_busybox_nslookup_inside_the_container(netenv: NetEnv, dns: tuple[LoopThread, EmbeddedDns]) -> None:
    netenv.nm.create_network("look", subnet=random_subnet())
    ns_a, ns_b = netenv.netns(), netenv.netns()
    netenv.nm.attach(WEB, ns_a, "look", name="alpha")
    beta = netenv.nm.attach(DB, ns_b, "look", name="beta")
    _start(netenv, dns, WEB, ns_a)
    out = netenv.run(ns_a, "busybox", "nslookup", "beta", "127.0.0.11")
    assert beta.ip in out.stdout, out.stdout + out.stderr


def test_tcp_queries_are_answered(netenv: NetEnv, dns: tuple[LoopThread, EmbeddedDns]) -> None:
    netenv.nm.create_network("tcp", subnet=random_subnet())
    ns = netenv.netns()
    ep = netenv.nm.attach(WEB, ns, "tcp", name="web")
    _start(netenv, dns, WEB, ns)
    sock = run_in_netns(ns, lambda: socket.create_connection(("127.0.0.11", 53), timeout=5))
    with sock:
        msg = query("web")
        sock.sendall(struct.pack("!H", len(msg)) + msg)
        size = struct.unpack("!H", sock.recv(2))[0]
        reply = b""
        while len(reply) < size:
            reply += sock.recv(size - len(reply))
    assert answers(reply) == (0, [ep.ip])


def test_reverse_lookup_of_a_container_address(netenv: NetEnv, dns: tuple[LoopThread, EmbeddedDns]) -> None:
    netenv.nm.create_network("rev", subnet=random_subnet())
    ns_a, ns_b = netenv.netns(), netenv.netns()
    netenv.nm.attach(WEB, ns_a, "rev", name="alpha")
    beta = netenv.nm.attach(DB, ns_b, "rev", name="beta")
    _start(netenv, dns, WEB, ns_a)
    arpa = ".".join(reversed(beta.ip.split("."))) + ".in-addr.arpa"
    reply = ask(ns_a, query(arpa, QTYPE_PTR))
    q = parse_question(reply)
    assert struct.unpack_from("!H", reply, 6)[0] == 1
    rdata = reply[q.end + 12:]
    labels, pos = [], 0
    while rdata[pos]:
        labels.append(rdata[pos + 1:pos + 1 + rdata[pos]].decode())
        pos += rdata[pos] + 1
    assert ".".join(labels) == "beta.rev"
