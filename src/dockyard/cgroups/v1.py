"""cgroup v1 (and hybrid): one hierarchy per controller under the root, one directory in each.

Layout this code expects (Debian/systemd's; co-mounted ``cpu,cpuacct`` with symlinks works too)::

    /sys/fs/cgroup/                 tmpfs
      cpu/ cpuacct/ cpuset/ memory/ devices/ freezer/ blkio/ pids/ ...   one controller each
      systemd/                      named hierarchy (name=systemd): joined, carries no limits
      unified/                      cgroup2 in hybrid mode: ignored (carries nothing we set)
      <hierarchy>/<cgroupsPath>/    the container's directory in every hierarchy

Fields -> files (runc's fs driver): memory.limit/swap/reservation -> memory.limit_in_bytes,
memory.memsw.limit_in_bytes, memory.soft_limit_in_bytes; cpu.shares/quota/period ->
cpu.shares, cpu.cfs_quota_us, cpu.cfs_period_us; cpu.cpus/mems -> cpuset.*; pids.limit ->
pids.max; blockIO.weight -> blkio.weight or blkio.bfq.weight; devices -> devices.allow/deny.
"""

from __future__ import annotations

import os
import time

from dockyard.cgroups.base import (
    Cgroup,
    find_procs,
    host_cpu_usage_ns,
    limit_or_none,
    log,
    make_dirs,
    read_int,
    read_kv,
    read_text,
    section,
    write_file,
    write_optional,
)
from dockyard.errors import Internal, InvalidArgument, Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from dockyard.cgroups.stats import BlkioEntry, CgroupStats, CpuStats, MemoryStats, PidsStats

__all__ = ["CgroupV1"]

# Where pids are read from, in order of preference.
_PROCS_FROM = ("pids", "freezer", "memory", "cpu", "devices", "systemd")
_IGNORED = {"unified"}


class CgroupV1(Cgroup):
    def __init__(self, path: str, root: str = "/sys/fs/cgroup", mode: str = "v1") -> None:
        self.mode = mode
        self.path = path
        self.root = root
        self._hierarchies, self._dirs = self._discover()
        self._made: set[str] = set()  # directories create() made (fresh: no task, no setting)

    # ------------------------------------------------------------ layout

    def _discover(self) -> tuple[dict[str, str], list[str]]:
        """controller name -> this cgroup's directory in that controller's hierarchy, and the
        distinct directories (co-mounted controllers share one: ``cpu -> cpu,cpuacct``).

        One getdents of the root (d_type tells directories and symlinks apart); only
        symlinks are resolved.
        """
        found: dict[str, str] = {}
        mounts: dict[str, str] = {}  # controller -> the hierarchy's real mount point
        try:
            with os.scandir(self.root) as it:
                entries = sorted((e.name, e.is_symlink()) for e in it if e.name not in _IGNORED and e.is_dir())
        except FileNotFoundError:
            return found, []
        # Keys that tell hierarchies apart: the names, unless symlinks alias some of them.
        real_root = os.path.realpath(self.root) if any(link for _, link in entries) else None
        for name, symlink in entries:
            mount = os.path.join(self.root, name)
            if real_root is None:
                real = name
            else:
                real = os.path.realpath(mount) if symlink else os.path.join(real_root, name)
            for controller in name.split(","):
                if controller not in found:
                    found[controller] = os.path.join(mount, self.path)
                    mounts[controller] = real
        seen: dict[str, str] = {}
        for controller, directory in found.items():
            seen.setdefault(mounts[controller], directory)
        return found, list(seen.values())

    def _dir(self, controller: str, what: str) -> str:
        directory = self._hierarchies.get(controller)
        if directory is None:
            raise Unsupported(f"{what}: the {controller} cgroup controller is not mounted under {self.root}")
        return directory

    def directories(self) -> list[str]:
        return list(self._dirs)

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs)

    def create(self) -> None:
        for directory in self._dirs:
            if make_dirs(directory):
                self._made.add(directory)
        cpuset = self._hierarchies.get("cpuset")
        if cpuset is not None:
            self._init_cpuset(cpuset)

    def _init_cpuset(self, leaf: str) -> None:
        # A new cpuset cgroup starts with empty cpus/mems and refuses tasks (ENOSPC):
        # copy the values down every level that has none, from the nearest level above. A
        # leaf create() just made is known to be empty (or, with clone_children, to hold
        # the parent's values already): written without reading it first.
        mount = leaf[: len(leaf) - len(self.path)].rstrip("/")
        parts = self.path.split("/")
        for name in ("cpuset.cpus", "cpuset.mems"):
            above: str | None = None  # the value of the level above, read when first needed
            current = mount
            for i, part in enumerate(parts):
                parent, current = current, os.path.join(current, part)
                fresh = i == len(parts) - 1 and leaf in self._made
                value = "" if fresh else (read_text(os.path.join(current, name)) or "")
                if value == "":
                    if above is None:
                        above = read_text(os.path.join(parent, name)) or ""
                    if above:
                        write_file(os.path.join(current, name), above, f"cgroup {name}")
                    value = above
                above = value

    def join_files(self) -> list[str]:
        self._made.clear()  # a task will be inside: no longer fresh
        return [os.path.join(directory, "tasks") for directory in self._dirs]

    def apply(self, pid: int) -> None:
        self._made.clear()  # a task inside: no longer fresh
        for directory in self._dirs:
            write_file(os.path.join(directory, "cgroup.procs"), str(pid), f"cgroup join {directory}")

    # ------------------------------------------------------------ resources

    def set(self, resources: Mapping[str, Any]) -> None:
        if resources.get("unified"):
            raise Unsupported("linux.resources.unified needs cgroup v2 (this host runs cgroup v1)")
        self._set_memory(section(resources, "memory"))
        self._set_cpu(section(resources, "cpu"))
        self._set_pids(section(resources, "pids"))
        self._set_blkio(section(resources, "blockIO"))
        for limit in resources.get("hugepageLimits") or ():
            size = limit.get("pageSize", "")
            directory = self._hierarchies.get("hugetlb")
            what = f"linux.resources.hugepageLimits[{size}]"
            if directory is None:
                log.warning("%s: ignored, no hugetlb controller on the v1 hierarchies", what)
                continue
            write_file(os.path.join(directory, f"hugetlb.{size}.limit_in_bytes"), str(limit["limit"]), what)
        self._set_network(section(resources, "network"))
        if resources.get("rdma"):
            log.warning("linux.resources.rdma: ignored, not supported")
        if "devices" in resources:
            self._set_devices(resources.get("devices") or [])

    def _set_memory(self, mem: Mapping[str, Any]) -> None:
        fields = ("limit", "reservation", "swap", "kernelTCP", "disableOOMKiller")
        if not any(mem.get(f) for f in fields) and mem.get("swappiness") is None:
            if mem.get("kernel") is not None:
                log.warning("linux.resources.memory.kernel: ignored (deprecated, as runc does)")
            return
        d = self._dir("memory", "linux.resources.memory")
        # 0 means unset, as in runc (Go zero values): writing 0 would set a zero-byte limit.
        limit, swap = mem.get("limit") or None, mem.get("swap") or None
        memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
        if limit == -1 and swap is None and os.path.exists(memsw):
            swap = -1
        if swap is not None and not os.path.exists(memsw):
            log.warning("linux.resources.memory.swap: ignored, swap accounting is off in this kernel")
            swap = None
        lim_file = os.path.join(d, "memory.limit_in_bytes")
        if limit is not None and swap is not None:
            # The kernel wants memory <= memory+swap at every step: order the two writes.
            current = read_int(lim_file) or 0
            if swap == -1 or current < swap:
                write_file(memsw, str(swap), "linux.resources.memory.swap")
                write_file(lim_file, str(limit), "linux.resources.memory.limit")
            else:
                write_file(lim_file, str(limit), "linux.resources.memory.limit")
                write_file(memsw, str(swap), "linux.resources.memory.swap")
        elif limit is not None:
            write_file(lim_file, str(limit), "linux.resources.memory.limit")
        elif swap is not None:
            write_file(memsw, str(swap), "linux.resources.memory.swap")
        if mem.get("reservation"):
            write_file(os.path.join(d, "memory.soft_limit_in_bytes"), str(mem["reservation"]),
                       "linux.resources.memory.reservation")
        if mem.get("kernel") is not None:
            log.warning("linux.resources.memory.kernel: ignored (deprecated, as runc does)")
        if mem.get("kernelTCP"):
            write_optional(os.path.join(d, "memory.kmem.tcp.limit_in_bytes"), str(mem["kernelTCP"]),
                           "linux.resources.memory.kernelTCP")
        swappiness = mem.get("swappiness")
        if swappiness is not None and swappiness >= 0:
            if swappiness > 100:
                raise InvalidArgument(f"linux.resources.memory.swappiness {swappiness} is not 0..100")
            write_optional(os.path.join(d, "memory.swappiness"), str(swappiness),
                           "linux.resources.memory.swappiness")
        if mem.get("disableOOMKiller"):
            write_file(os.path.join(d, "memory.oom_control"), "1", "linux.resources.memory.disableOOMKiller")

    def _set_cpu(self, cpu: Mapping[str, Any]) -> None:
        sched = ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "idle", "burst")
        if any(cpu.get(f) for f in sched):
            d = self._dir("cpu", "linux.resources.cpu")
            if cpu.get("shares"):
                write_file(os.path.join(d, "cpu.shares"), str(cpu["shares"]), "linux.resources.cpu.shares")
            period, quota = cpu.get("period"), cpu.get("quota")
            period_file = os.path.join(d, "cpu.cfs_period_us")
            quota_file = os.path.join(d, "cpu.cfs_quota_us")
            if period:
                try:
                    write_file(period_file, str(period), "linux.resources.cpu.period")
                except InvalidArgument:
                    # The old quota may not fit the new period: set the quota, then retry.
                    if not quota:
                        raise
                    write_file(quota_file, str(quota), "linux.resources.cpu.quota")
            if quota:
                write_file(quota_file, str(quota), "linux.resources.cpu.quota")
            if cpu.get("burst") is not None:
                write_optional(os.path.join(d, "cpu.cfs_burst_us"), str(cpu["burst"]), "linux.resources.cpu.burst")
            if cpu.get("realtimePeriod"):
                write_file(os.path.join(d, "cpu.rt_period_us"), str(cpu["realtimePeriod"]),
                           "linux.resources.cpu.realtimePeriod")
            if cpu.get("realtimeRuntime"):
                write_file(os.path.join(d, "cpu.rt_runtime_us"), str(cpu["realtimeRuntime"]),
                           "linux.resources.cpu.realtimeRuntime")
            if cpu.get("idle") is not None:
                write_optional(os.path.join(d, "cpu.idle"), str(cpu["idle"]), "linux.resources.cpu.idle")
        for key in ("cpus", "mems"):
            if cpu.get(key):
                d = self._dir("cpuset", f"linux.resources.cpu.{key}")
                write_file(os.path.join(d, f"cpuset.{key}"), str(cpu[key]), f"linux.resources.cpu.{key}")

    def _set_pids(self, pids: Mapping[str, Any]) -> None:
        limit = pids.get("limit")
        if limit:  # 0 means unset (runc)
            d = self._dir("pids", "linux.resources.pids.limit")
            write_file(os.path.join(d, "pids.max"), str(limit) if limit > 0 else "max",
                       "linux.resources.pids.limit")

    def _set_blkio(self, blkio: Mapping[str, Any]) -> None:
        if not blkio:
            return
        d = self._hierarchies.get("blkio")
        if d is None:
            log.warning("linux.resources.blockIO: ignored, no blkio controller")
            return
        weight_file = next((os.path.join(d, f) for f in ("blkio.weight", "blkio.bfq.weight")
                            if os.path.exists(os.path.join(d, f))), None)
        for key in ("weight", "leafWeight"):
            if blkio.get(key):
                if weight_file is None or key == "leafWeight":
                    log.warning("linux.resources.blockIO.%s: ignored, this kernel has no blkio weight", key)
                    continue
                write_file(weight_file, str(blkio[key]), f"linux.resources.blockIO.{key}")
        for dev in blkio.get("weightDevice") or ():
            if weight_file is None or dev.get("weight") is None:
                log.warning("linux.resources.blockIO.weightDevice: ignored, this kernel has no blkio weight")
                continue
            # CFQ has blkio.weight_device; BFQ takes "major:minor weight" in blkio.bfq.weight
            device_file = weight_file + "_device" if os.path.basename(weight_file) == "blkio.weight" else weight_file
            write_file(device_file, f"{dev['major']}:{dev['minor']} {dev['weight']}",
                       "linux.resources.blockIO.weightDevice")
        throttles = {"throttleReadBpsDevice": "read_bps_device", "throttleWriteBpsDevice": "write_bps_device",
                     "throttleReadIOPSDevice": "read_iops_device", "throttleWriteIOPSDevice": "write_iops_device"}
        for key, name in throttles.items():
            for dev in blkio.get(key) or ():
                write_file(os.path.join(d, f"blkio.throttle.{name}"),
                           f"{dev['major']}:{dev['minor']} {dev['rate']}", f"linux.resources.blockIO.{key}")

    def _set_network(self, net: Mapping[str, Any]) -> None:
        if net.get("classID") is not None:
            d = self._hierarchies.get("net_cls")
            if d is None:
                log.warning("linux.resources.network.classID: ignored, no net_cls controller")
            else:
                write_file(os.path.join(d, "net_cls.classid"), str(net["classID"]), "linux.resources.network.classID")
        for prio in net.get("priorities") or ():
            d = self._hierarchies.get("net_prio")
            if d is None:
                log.warning("linux.resources.network.priorities: ignored, no net_prio controller")
                break
            write_file(os.path.join(d, "net_prio.ifpriomap"), f"{prio['name']} {prio['priority']}",
                       "linux.resources.network.priorities")

    def _set_devices(self, rules: list[Mapping[str, Any]]) -> None:
        from dockyard.cgroups import devices as devrules

        d = self._dir("devices", "linux.resources.devices")
        if d in self._made:
            # Fresh from create(), no task yet: the full rule sequence (which resets the
            # list first) is right whatever was inherited, no need to read devices.list.
            current = "a *:* rwm"
        else:
            current = read_text(os.path.join(d, "devices.list")) or ""
        for line, allow in devrules.v1_transition(current, devrules.with_defaults(rules)):
            write_file(os.path.join(d, "devices.allow" if allow else "devices.deny"), line,
                       "linux.resources.devices")

    # ------------------------------------------------------------ freezer

    def _can_freeze(self) -> bool:
        d = self._hierarchies.get("freezer")
        return d is not None and os.path.isdir(d)

    def freeze(self, timeout: float = 10.0) -> None:
        state = os.path.join(self._dir("freezer", "pause"), "freezer.state")
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            # Re-writing FROZEN makes the kernel retry tasks that were busy (vfork, ...).
            write_file(state, "FROZEN", "pause")
            if read_text(state) == "FROZEN":
                return
            if time.monotonic() > deadline:
                write_file(state, "THAWED", "pause")
                raise Internal(f"cgroup {self.path} did not freeze within {timeout:g}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def thaw(self) -> None:
        state = os.path.join(self._dir("freezer", "resume"), "freezer.state")
        write_file(state, "THAWED", "resume")

    def frozen(self) -> bool:
        d = self._hierarchies.get("freezer")
        return d is not None and read_text(os.path.join(d, "freezer.state")) == "FROZEN"

    def _needs_freeze(self) -> bool:
        # One read instead of _can_freeze()'s stat and frozen()'s read: None when the
        # freezer directory is missing, FROZEN when there is nothing to do.
        d = self._hierarchies.get("freezer")
        return d is not None and read_text(os.path.join(d, "freezer.state")) not in (None, "FROZEN")

    # ------------------------------------------------------------ observation

    def oom_kill_count(self) -> int:
        d = self._hierarchies.get("memory")
        return read_kv(os.path.join(d, "memory.oom_control")).get("oom_kill", 0) if d else 0

    def oom_notifier(self) -> int:
        d = self._dir("memory", "oom notification")
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            control = os.open(os.path.join(d, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            try:
                write_file(os.path.join(d, "cgroup.event_control"), f"{efd} {control}", "oom notification")
            finally:
                os.close(control)  # the kernel keeps its own reference
        except BaseException:
            os.close(efd)
            raise
        return efd

    def pids(self, recursive: bool = True) -> list[int]:
        for controller in _PROCS_FROM:
            d = self._hierarchies.get(controller)
            if d is not None:
                found = find_procs(d, recursive)
                if found is not None:
                    return found
        return []

    def stats(self) -> CgroupStats:
        from dockyard.cgroups.stats import CgroupStats

        return CgroupStats(memory=self._memory_stats(), cpu=self._cpu_stats(), pids=self._pids_stats(),
                           io_service_bytes=self._blkio("io_service_bytes_recursive"),
                           io_serviced=self._blkio("io_serviced_recursive"),
                           oom_kills=self.oom_kill_count())

    def _memory_stats(self) -> MemoryStats:
        from dockyard.cgroups.stats import MemoryStats

        d = self._hierarchies.get("memory")
        if d is None:
            return MemoryStats()
        stat = read_kv(os.path.join(d, "memory.stat"))
        usage = read_int(os.path.join(d, "memory.usage_in_bytes")) or 0
        memsw = read_int(os.path.join(d, "memory.memsw.usage_in_bytes"))
        return MemoryStats(
            usage=usage,
            max_usage=read_int(os.path.join(d, "memory.max_usage_in_bytes")) or 0,
            limit=limit_or_none(read_int(os.path.join(d, "memory.limit_in_bytes"))),
            cache=stat.get("total_cache", stat.get("cache", 0)),
            swap_usage=max(memsw - usage, 0) if memsw is not None else 0,
            stats=stat,
        )

    def _cpu_stats(self) -> CpuStats:
        from dockyard.cgroups.stats import CpuStats

        acct = self._hierarchies.get("cpuacct")
        cpu = self._hierarchies.get("cpu")
        percpu: tuple[int, ...] = ()
        total = kernel = user = 0
        if acct is not None:
            total = read_int(os.path.join(acct, "cpuacct.usage")) or 0
            percpu = tuple(int(v) for v in (read_text(os.path.join(acct, "cpuacct.usage_percpu")) or "").split())
            ticks = read_kv(os.path.join(acct, "cpuacct.stat"))
            tick_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
            user, kernel = ticks.get("user", 0) * tick_ns, ticks.get("system", 0) * tick_ns
        throttle = read_kv(os.path.join(cpu, "cpu.stat")) if cpu is not None else {}
        return CpuStats(
            usage_total=total, usage_percpu=percpu, usage_kernel=kernel, usage_user=user,
            system_usage=host_cpu_usage_ns(), online_cpus=os.cpu_count() or 0,
            throttling_periods=throttle.get("nr_periods", 0),
            throttled_periods=throttle.get("nr_throttled", 0),
            throttled_time=throttle.get("throttled_time", 0),
        )

    def _pids_stats(self) -> PidsStats:
        from dockyard.cgroups.stats import PidsStats

        d = self._hierarchies.get("pids")
        if d is None:
            return PidsStats()
        return PidsStats(current=read_int(os.path.join(d, "pids.current")) or 0,
                         limit=read_int(os.path.join(d, "pids.max")))

    def _blkio(self, name: str) -> tuple[BlkioEntry, ...]:
        d = self._hierarchies.get("blkio")
        if d is None:
            return ()
        for prefix in ("blkio.", "blkio.bfq.", "blkio.throttle."):
            text = read_text(os.path.join(d, prefix + name))
            if text is not None:
                return parse_blkio(text)
        return ()


def parse_blkio(text: str) -> tuple[BlkioEntry, ...]:
    """``8:0 Read 4096`` lines (the trailing ``Total N`` line has no device and is skipped)."""
    from dockyard.cgroups.stats import BlkioEntry

    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, minor = parts[0].split(":")
            out.append(BlkioEntry(int(major), int(minor), parts[1], int(parts[2])))
    return tuple(out)
