"""Small helpers shared by the image modules."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator

__all__ = ["CHUNK", "exact_chunks", "host_arch", "now_rfc3339"]

CHUNK = 1 << 20


def now_rfc3339() -> str:
    """The current time as Go's RFC 3339 with nanoseconds (what image configs carry)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def host_arch() -> str:
    """The host's architecture in GOARCH terms (amd64, arm64, ...)."""
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def exact_chunks(
    read: Callable[[int], bytes], size: int, short: Callable[[], Exception]
) -> Iterator[bytes]:
    """Exactly ``size`` bytes from ``read`` in chunks; ``short()`` is raised if they end early."""
    while size:
        chunk = read(min(CHUNK, size))
        if not chunk:
            raise short()
        size -= len(chunk)
        yield chunk
