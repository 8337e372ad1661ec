"""Progress as Docker's JSON messages (what ``docker pull`` and docker-py render).

::

    {"status": "Pulling from library/busybox", "id": "latest"}
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "8a0af2f3e2b1"}
    {"status": "Downloading", "progressDetail": {"current": 1048576, "total": 2228915},
     "progress": "[=======================>                           ]  1.049MB/2.229MB",
     "id": "8a0af2f3e2b1"}
    {"status": "Verifying Checksum" | "Download complete" | "Extracting" | "Pull complete" |
               "Already exists", "progressDetail": {}, "id": "8a0af2f3e2b1"}
    {"status": "Digest: sha256:..."}
    {"status": "Status: Downloaded newer image for busybox:latest"}

The callback runs on the event loop; byte counts are throttled per layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["Progress", "ProgressCallback", "human_size"]

ProgressCallback = Callable[[dict[str, Any]], None]
_INTERVAL = 0.1
_BAR = 50


def human_size(n: float) -> str:
    """Docker's units.HumanSize: decimal units, four significant digits."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{units[i]}"


def _bar(current: int, total: int) -> str:
    if total <= 0:
        return human_size(current)
    filled = min(_BAR, int(_BAR * current / total))
    arrow = ">" if filled < _BAR else ""
    box = "=" * filled + arrow + " " * (_BAR - filled - len(arrow))
    return f"[{box}] {human_size(current):>8}/{human_size(total)}"


class Progress:
    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last: dict[str, float] = {}

    def emit(self, message: dict[str, Any]) -> None:
        if self._callback is not None:
            self._callback(message)

    def status(self, status: str, ident: str | None = None) -> None:
        message: dict[str, Any] = {"status": status}
        if ident is not None:
            message["id"] = ident
        self.emit(message)

    def layer(self, ident: str, status: str) -> None:
        self._last.pop(ident, None)
        self.emit({"status": status, "progressDetail": {}, "id": ident})

    def transfer(self, ident: str, status: str, current: int, total: int) -> None:
        now = time.monotonic()
        key = f"{ident}/{status}"
        if current < total and now - self._last.get(key, 0.0) < _INTERVAL:
            return
        self._last[key] = now
        self.emit(
            {
                "status": status,
                "progressDetail": {"current": current, "total": total},
                "progress": _bar(current, total),
                "id": ident,
            }
        )

    def aux(self, data: dict[str, Any]) -> None:
        self.emit({"progressDetail": {}, "aux": data})
