"""Stats values of a cgroup (frozen dataclasses), read by :meth:`Cgroup.stats`.

Kept apart from :mod:`dockyard.cgroups.base` so that creating a container does not pay for
``dataclasses`` (it imports inspect, ~5 ms at start-up); only stats readers import this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["BlkioEntry", "CgroupStats", "CpuStats", "MemoryStats", "PidsStats"]


@dataclass(frozen=True)
class MemoryStats:
    usage: int = 0
    max_usage: int = 0  # v1 max_usage_in_bytes, v2 memory.peak (0 when the kernel lacks it)
    limit: int | None = None  # None: unlimited
    cache: int = 0
    swap_usage: int = 0
    stats: Mapping[str, int] = field(default_factory=dict)  # memory.stat as read


@dataclass(frozen=True)
class CpuStats:
    usage_total: int = 0  # nanoseconds
    usage_percpu: tuple[int, ...] = ()  # nanoseconds (v1 only)
    usage_kernel: int = 0
    usage_user: int = 0
    system_usage: int = 0  # host-wide, nanoseconds, from /proc/stat (Docker's system_cpu_usage)
    online_cpus: int = 0
    throttling_periods: int = 0
    throttled_periods: int = 0
    throttled_time: int = 0  # nanoseconds


@dataclass(frozen=True)
class PidsStats:
    current: int = 0
    limit: int | None = None  # None: unlimited


@dataclass(frozen=True)
class BlkioEntry:
    major: int
    minor: int
    op: str  # Read, Write, Sync, Async, Discard, Total
    value: int


@dataclass(frozen=True)
class CgroupStats:
    memory: MemoryStats = MemoryStats()
    cpu: CpuStats = CpuStats()
    pids: PidsStats = PidsStats()
    io_service_bytes: tuple[BlkioEntry, ...] = ()
    io_serviced: tuple[BlkioEntry, ...] = ()
    oom_kills: int = 0
