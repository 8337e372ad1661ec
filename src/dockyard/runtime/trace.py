"""Where a runtime call spends its time: opt-in timestamps from every process of a create.

With ``DOCKYARD_RUNTIME_TRACE=FILE`` in the environment, :func:`mark` appends one line per
event to ``FILE``: ``<pid> <CLOCK_MONOTONIC ns> <event>``, from the caller and from the
forked children alike (one ``O_APPEND`` write each, so lines never interleave). The file is
opened once, at import, before any fork: a container init keeps the fd across pivot_root and
loses it at execve (``O_CLOEXEC``). Without the variable, :func:`mark` returns at once.

``bench/runtime_bench.py`` turns the lines into the phase table it prints.
"""

from __future__ import annotations

import os
import time

__all__ = ["mark"]

_FD = -1
_path = os.environ.get("DOCKYARD_RUNTIME_TRACE")
if _path:
    try:
        _FD = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        _FD = -1


def mark(event: str) -> None:
    if _FD >= 0:
        os.write(_FD, f"{os.getpid()} {time.monotonic_ns()} {event}\n".encode())
