"""Docker's json-file log format, written by the monitor, with rotation.

One JSON object per line of output (``{"log":"hi\\n","stream":"stdout","time":"<RFC3339Nano>"}``);
a line longer than 16 KiB is split, as Docker does. When the file passes ``max_size`` bytes
it is renamed ``<path>.1`` (older ones shift up to ``<path>.<max_file-1>``) and a new one begins.
"""

from __future__ import annotations

import json
import os
import time

MAX_LINE = 16 * 1024


def rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{base}.{frac:09d}Z"


def parse_size(text: str | int | None, default: int) -> int:
    """``10m`` -> 10485760; ``-1`` or empty -> unlimited (0)."""
    if text is None or text == "":
        return default
    if isinstance(text, int):
        return max(text, 0)
    t = text.strip().lower().rstrip("b")
    mult = 1
    for suffix, m in (("k", 1024), ("m", 1024**2), ("g", 1024**3)):
        if t.endswith(suffix):
            t, mult = t[:-1], m
            break
    try:
        value = int(float(t) * mult)
    except ValueError:
        return default
    return max(value, 0)


class JsonLog:
    """Append-only json-file log with size-based rotation (``max_size`` 0 = never rotate)."""

    def __init__(self, path: str, max_size: int = 20 * 1024 * 1024, max_file: int = 5) -> None:
        self.path = path
        self.max_size = max_size
        self.max_file = max(max_file, 1)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial[stream] + data
        out = []
        now = rfc3339nano(time.time_ns())
        while buf:
            nl = buf.find(b"\n")
            if nl < 0 or nl >= MAX_LINE:
                if len(buf) < MAX_LINE:
                    break
                piece, buf = buf[:MAX_LINE], buf[MAX_LINE:]
            else:
                piece, buf = buf[: nl + 1], buf[nl + 1 :]
            out.append(self._entry(stream, piece, now))
        self._partial[stream] = buf
        if out:
            self._append(b"".join(out))

    def flush_partial(self) -> None:
        now = rfc3339nano(time.time_ns())
        out = [self._entry(s, b, now) for s, b in self._partial.items() if b]
        self._partial = {"stdout": b"", "stderr": b""}
        if out:
            self._append(b"".join(out))

    @staticmethod
    def _entry(stream: str, piece: bytes, now: str) -> bytes:
        text = piece.decode("utf-8", "replace")
        return json.dumps({"log": text, "stream": stream, "time": now}).encode() + b"\n"

    def _append(self, data: bytes) -> None:
        if self.max_size and self._size + len(data) > self.max_size and self._size > 0:
            self._rotate()
        os.write(self._fd, data)
        self._size += len(data)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_file <= 1:
            os.truncate(self.path, 0)
        else:
            for i in range(self.max_file - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i}")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = 0

    def close(self) -> None:
        self.flush_partial()
        os.close(self._fd)


__all__ = ["JsonLog", "parse_size", "rfc3339nano"]
