"""Docker's stream framing (attach, logs, exec without a tty)::

    +--------+---------+--------------------+-------------+
    | stream | 0  0  0 | size (u32, BE)     | payload ... |   stream 0 stdin, 1 stdout, 2 stderr
    +--------+---------+--------------------+-------------+

With a tty the stream is raw: payloads only, no headers.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct(">BxxxI")
STDOUT = 1
STDERR = 2


def frame(stream: int, payload: bytes) -> bytes:
    return HEADER.pack(stream, len(payload)) + payload


def split_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Parse a complete multiplexed byte string (used by tests and the client)."""
    out = []
    while data:
        stream, size = HEADER.unpack_from(data)
        out.append((stream, data[HEADER.size:HEADER.size + size]))
        data = data[HEADER.size + size:]
    return out


__all__ = ["HEADER", "STDERR", "STDOUT", "frame", "split_frames"]
