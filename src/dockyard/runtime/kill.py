"""``kill``: send a signal to the init (or, with ``all``, to every process of the cgroup)."""

from __future__ import annotations

import os
import signal

from dockyard.errors import Conflict, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.runtime.runtime import Runtime

__all__ = ["kill", "parse_signal"]


def parse_signal(value: str | int) -> int:
    """``9``, ``KILL``, ``SIGKILL`` -> 9 (runc accepts all three)."""
    if isinstance(value, int) or value.isdigit():
        return int(value)
    name = value.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidArgument(f"unknown signal {value!r}") from None


def kill(rt: Runtime, container_id: str, sig: int, all: bool = False) -> None:
    record, status = rt.load(container_id)
    if all:
        cg = rt.cgroup(record)
        if cg is not None and cg.exists():
            if status == "paused" and sig == signal.SIGKILL:
                cg.kill_all(sig)
                cg.thaw()
            else:
                cg.kill_all(sig)
            return
    if status == "stopped":
        raise Conflict(f"container not running: {container_id}")
    try:
        os.kill(record.pid, sig)
    except ProcessLookupError:
        raise Conflict(f"container not running: {container_id}") from None
