"""Reading a container's json-file log (written by its monitor): tail, since, until, follow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import BinaryIO

FOLLOW_POLL = 0.05


def parse_time(text: str) -> float:
    """RFC 3339 with nanoseconds (``2026-11-27T21:06:36.805506325Z``) -> Unix seconds."""
    import calendar
    import time as _time

    base, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(_time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


@dataclass(frozen=True)
class LogLine:
    stream: str      # stdout | stderr
    data: bytes
    time: str        # RFC3339Nano
    ts: float


def _parse(raw: bytes) -> LogLine | None:
    try:
        entry = json.loads(raw)
        t = entry.get("time", "")
        return LogLine(entry.get("stream", "stdout"), entry.get("log", "").encode(), t,
                       parse_time(t) if t else 0.0)
    except (ValueError, AttributeError):
        return None


def _files(path: str) -> list[str]:
    """Rotated files oldest first, then the live one."""
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return [*reversed(rotated), path]


def read_lines(path: str, *, tail: int | None, since: float, until: float) -> tuple[list[LogLine], int]:
    """Lines already written, filtered; also the live file's size (where following resumes)."""
    out: list[LogLine] = []
    offset = 0
    for name in _files(path):
        try:
            with open(name, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        if name == path:
            offset = len(data) - (len(data) - data.rfind(b"\n") - 1 if data and not data.endswith(b"\n") else 0)
        for raw in data.splitlines():
            line = _parse(raw)
            if line is None or (since and line.ts < since) or (until and line.ts > until):
                continue
            out.append(line)
    if tail is not None:
        out = out[-tail:] if tail > 0 else []
    return out, offset


async def follow(path: str, offset: int, until: float, stopped: Callable[[], bool]) -> AsyncIterator[LogLine]:
    """New lines from ``offset`` until the container stops (then whatever is left).

    The file stays open between polls: a container removed (its log deleted) right after it
    stopped still has its last lines read, and a rotated file is read to its end before the
    new live file is opened.
    """
    pending = b""
    f: BinaryIO | None = None
    try:
        while True:
            done = stopped()
            if f is None:
                with contextlib.suppress(FileNotFoundError):
                    f = open(path, "rb")  # noqa: SIM115 (held across polls)
                    f.seek(offset)
            rotated = False
            if f is not None:
                with contextlib.suppress(FileNotFoundError):  # removed: our fd still reads
                    rotated = os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
                pending += f.read()
                *raws, pending = pending.split(b"\n")
                for raw in raws:
                    line = _parse(raw)
                    if line is None:
                        continue
                    if until and line.ts > until:
                        return
                    yield line
                if rotated:  # the live file is a new one: follow it from its start
                    f.close()
                    f, offset, pending = None, 0, b""
                    continue
            if done:
                return
            await asyncio.sleep(FOLLOW_POLL)
    finally:
        if f is not None:
            f.close()


__all__ = ["LogLine", "follow", "read_lines"]
