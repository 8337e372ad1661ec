"""Process facts from /proc (proc(5)): the kernel is the source of truth for a container."""

from __future__ import annotations

__all__ = ["parent_pid", "process_state", "start_time"]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ")"
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """Field 22 (starttime, clock ticks since boot), or None if ``pid`` does not exist."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def process_state(pid: int) -> str | None:
    """Field 3 (R, S, D, Z, T, ...), or None if ``pid`` does not exist."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def parent_pid(pid: int) -> int | None:
    """Field 4 (ppid), or None if ``pid`` does not exist."""
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None
