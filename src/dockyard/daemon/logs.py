"""Reading a container's json-file log (written by its monitor): tail, since, until, follow."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

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
    """New lines from ``offset`` until the container stops (then whatever is left)."""
    pending = b""
    ino = None
    while True:
        done = stopped()
        try:
            st = os.stat(path)
            if ino is not None and st.st_ino != ino:
                offset = 0  # rotated: the live file is new
            ino = st.st_ino
            if st.st_size > offset:
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                offset += len(chunk)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = _parse(raw)
                    if line is None:
                        continue
                    if until and line.ts > until:
                        return
                    yield line
        except FileNotFoundError:
            pass
        if done:
            return
        await asyncio.sleep(FOLLOW_POLL)


__all__ = ["LogLine", "follow", "read_lines"]
