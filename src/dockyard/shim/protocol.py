"""Wire formats between the daemon and a container's monitor.

Control connection (JSON lines, both ways)::

    daemon -> monitor   {"op": "start", "seq": 3}
    monitor -> daemon   {"seq": 3, "ok": true, ...}   or  {"seq": 3, "error": "..."}
    monitor -> daemon   {"event": "exit", "code": 0, "oom": false, ...}   (unsolicited)

Stream connection: the first line is a JSON header (``{"op": "attach", ...}`` or
``{"op": "exec", ...}``); after it, the daemon sends raw stdin bytes (``shutdown(SHUT_WR)``
means EOF) and the monitor sends frames shaped like Docker's multiplexed stream::

    +--------+---------+--------------------+----------------+
    | stream | 0  0  0 | length (u32, BE)   | payload ...    |
    +--------+---------+--------------------+----------------+
    stream 1 = stdout, 2 = stderr, 3 = end (payload: JSON {"code": N} of the process)

so without a tty the daemon forwards frames 1 and 2 untouched, and with a tty it forwards
only their payloads.
"""

from __future__ import annotations

import json
import struct
from typing import Any

STDOUT = 1
STDERR = 2
END = 3
HEADER = struct.Struct(">BxxxI")


def frame(stream: int, payload: bytes) -> bytes:
    return HEADER.pack(stream, len(payload)) + payload


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    value = json.loads(line)
    if not isinstance(value, dict):
        raise ValueError("message is not an object")
    return value


__all__ = ["END", "HEADER", "STDERR", "STDOUT", "decode", "encode", "frame"]
