"""DNS wire format and the server's decision: answer locally or forward."""

from __future__ import annotations

import asyncio
import struct

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network.dns import QTYPE_A, EmbeddedDns, build_answer, parse_question


def query(name: str, qtype: int = QTYPE_A) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1)


def test_question_round_trip() -> None:
    msg = query("Web.Example")
    q = parse_question(msg)
    assert (q.id, q.name, q.qtype, q.qclass, q.end) == (7, "web.example", 1, 1, len(msg))
    reply = build_answer(msg, q, ["10.0.0.5", "fd00::5"])
    ident, flags, qd, an = struct.unpack_from("!HHHH", reply)
    assert (ident, qd, an) == (7, 1, 2) and flags & 0x8000 and flags & 0x0100
    assert reply.endswith(bytes([0xFD, 0] + [0] * 13 + [5]))


@pytest.mark.parametrize("bad", [b"", b"\0" * 11, struct.pack("!HHHHHH", 1, 0, 2, 0, 0, 0),
                                 struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x05ab"])
def test_malformed_questions_are_refused(bad: bytes) -> None:
    with pytest.raises(InvalidArgument):
        parse_question(bad)


def test_unknown_names_without_upstream_get_servfail() -> None:
    server = EmbeddedDns(lambda scope, name, qtype: ["10.9.9.9"] if name == "db" else None,
                         lambda scope: [])
    local = asyncio.run(server.handle("c", query("db"), tcp=False))
    assert local is not None and local.endswith(bytes([10, 9, 9, 9]))
    remote = asyncio.run(server.handle("c", query("nope"), tcp=False))
    assert remote is not None and struct.unpack_from("!H", remote, 2)[0] & 0xF == 2
    assert asyncio.run(server.handle("c", b"junk", tcp=False)) is None
