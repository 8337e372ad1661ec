"""cgroup v2 (unified): one directory, controllers delegated from the root down.

::

    /sys/fs/cgroup/                     cgroup2 root: cgroup.controllers, cgroup.subtree_control
      dockyard/                         "+cpu +cpuset +io +memory +pids +hugetlb" written to the
        cgroup.subtree_control          subtree_control of every ancestor (never of the leaf:
        <id>/                           the no-internal-processes rule) before the leaf is made
          memory.max memory.swap.max memory.low cpu.weight cpu.max cpuset.cpus cpuset.mems
          pids.max io.weight io.max hugetlb.<size>.max cgroup.freeze cgroup.events cgroup.kill

Conversions from the OCI (v1-shaped) fields, as runc does (libcontainer/cgroups/utils.go):

- ``cpu.shares`` -> ``cpu.weight = 1 + (shares - 2) * 9999 / 262142`` (2..262144 -> 1..10000);
- ``cpu.quota``/``period`` -> ``cpu.max`` "<quota|max> <period>";
- ``memory.swap`` is memory+swap in OCI -> ``memory.swap.max = swap - limit``;
- ``memory.reservation`` -> ``memory.low``; -1 -> ``max`` everywhere;
- ``blockIO.weight`` (10..1000) -> ``io.bfq.weight`` as is, or ``io.weight = 1 + (w - 10) * 9999 / 990``.

Devices: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) built from the rules, see ebpf.py.
"""

from __future__ import annotations

import os
import time

from dockyard.cgroups.base import (
    SIGKILL,
    Cgroup,
    host_cpu_usage_ns,
    limit_or_none,
    log,
    make_dirs,
    read_int,
    read_kv,
    read_procs,
    read_text,
    section,
    write_file,
    write_optional,
)
from dockyard.errors import Internal, InvalidArgument, Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from dockyard.cgroups.stats import BlkioEntry, CgroupStats

__all__ = ["CgroupV2", "blkio_weight_to_io_weight", "shares_to_weight", "swap_to_v2"]

WANTED_CONTROLLERS = ("cpu", "cpuset", "io", "memory", "pids", "hugetlb", "misc", "rdma")


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) -> cpu.weight (1..10000), runc 1.1's linear mapping."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_to_v2(swap: int | None, memory: int | None) -> int | None:
    """OCI memory+swap -> memory.swap.max value (None: leave alone, -1: max)."""
    swap, memory = swap or 0, memory or 0
    if memory == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap if swap == -1 else None
    if memory in (0, -1):
        raise InvalidArgument("linux.resources.memory.swap: cannot limit swap without a memory limit")
    if swap < memory:
        raise InvalidArgument("linux.resources.memory.swap: memory+swap must be >= memory limit")
    return swap - memory


def _num(value: int) -> str:
    return "max" if value == -1 else str(value)


class CgroupV2(Cgroup):
    def __init__(self, path: str, root: str = "/sys/fs/cgroup", *,
                 attach_devices: Callable[[str, bytes], None] | None = None) -> None:
        self.mode = "v2"
        self.path = path
        self.root = root
        self.dir = os.path.join(root, path)
        # The seam unit tests replace (no bpf() there); None: ebpf.attach_device_program,
        # imported when device rules are set (ebpf brings ctypes).
        self._attach_devices = attach_devices
        self._enabled: list[str] | None = None  # cgroup.controllers of the leaf, during set()

    def _f(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def directories(self) -> list[str]:
        return [self.dir]

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def create(self) -> None:
        current = self.root
        available: set[str] | None = None  # the root's: read from its cgroup.controllers
        for part in self.path.split("/"):
            available = self._delegate(current, available)
            current = os.path.join(current, part)
            make_dirs(current)

    def _delegate(self, directory: str, available: set[str] | None) -> set[str]:
        """Enable the wanted controllers for ``directory``'s children; returns the enabled set.

        A child's cgroup.controllers is its parent's cgroup.subtree_control, so below the
        root ``available`` is what the level above returned (one read less per level).
        """
        if available is None:
            available = set((read_text(os.path.join(directory, "cgroup.controllers")) or "").split())
        control = os.path.join(directory, "cgroup.subtree_control")
        enabled = set((read_text(control) or "").split())
        wanted = [c for c in WANTED_CONTROLLERS if c in available and c not in enabled]
        if not wanted:
            return enabled
        try:
            write_file(control, " ".join("+" + c for c in wanted), "cgroup delegation")
            enabled.update(wanted)
        except (InvalidArgument, Unsupported):
            # One at a time, ignoring refusals (runc does the same); set() then names the
            # field whose controller is missing.
            for c in wanted:
                try:
                    write_file(control, "+" + c, "cgroup delegation")
                    enabled.add(c)
                except (InvalidArgument, Unsupported) as exc:
                    log.debug("cannot enable %s in %s: %s", c, directory, exc)
        return enabled

    def apply(self, pid: int) -> None:
        write_file(self._f("cgroup.procs"), str(pid), f"cgroup join {self.dir}")

    def join_files(self) -> list[str]:
        return [self._f("cgroup.procs")]

    def _need(self, controller: str, what: str) -> None:
        if self._enabled is None:  # read once per set()
            self._enabled = (read_text(self._f("cgroup.controllers")) or "").split()
        if controller not in self._enabled:
            raise Unsupported(f"{what}: the {controller} controller is not enabled for {self.dir}")

    # ------------------------------------------------------------ resources

    def set(self, resources: Mapping[str, Any]) -> None:
        self._enabled = None
        try:
            self._set(resources)
        finally:
            self._enabled = None

    def _set(self, resources: Mapping[str, Any]) -> None:
        self._set_memory(section(resources, "memory"))
        self._set_cpu(section(resources, "cpu"))
        limit = section(resources, "pids").get("limit")
        if limit:
            self._need("pids", "linux.resources.pids.limit")
            write_file(self._f("pids.max"), str(limit) if limit > 0 else "max", "linux.resources.pids.limit")
        self._set_io(section(resources, "blockIO"))
        for hp in resources.get("hugepageLimits") or ():
            what = f"linux.resources.hugepageLimits[{hp.get('pageSize')}]"
            self._need("hugetlb", what)
            write_file(self._f(f"hugetlb.{hp['pageSize']}.max"), str(hp["limit"]), what)
        if section(resources, "network"):
            log.warning("linux.resources.network: ignored, net_cls/net_prio do not exist on cgroup v2")
        if resources.get("rdma"):
            log.warning("linux.resources.rdma: ignored, not supported")
        if "devices" in resources:
            from dockyard.cgroups import devices as devrules
            from dockyard.cgroups import ebpf

            rules = devrules.with_defaults(resources.get("devices") or [])
            attach = self._attach_devices or ebpf.attach_device_program
            attach(self.dir, ebpf.device_program(rules))
        for key, value in (resources.get("unified") or {}).items():
            if "/" in key or key.startswith(".") or "." not in key:
                raise InvalidArgument(f"linux.resources.unified: invalid key {key!r}")
            write_file(self._f(key), str(value), f"linux.resources.unified[{key}]")

    def _set_memory(self, mem: Mapping[str, Any]) -> None:
        limit, reservation = mem.get("limit"), mem.get("reservation")
        swap = swap_to_v2(mem.get("swap"), limit)
        if mem.get("kernel") is not None:
            log.warning("linux.resources.memory.kernel: ignored (deprecated, as runc does)")
        for key in ("swappiness", "disableOOMKiller", "kernelTCP"):
            if mem.get(key) not in (None, False, -1):
                log.warning("linux.resources.memory.%s: ignored, cgroup v2 has no such setting", key)
        if limit is None and reservation is None and swap is None:
            return
        self._need("memory", "linux.resources.memory")
        if swap is not None:
            swap_file = self._f("memory.swap.max")
            if os.path.exists(swap_file):
                write_file(swap_file, _num(swap), "linux.resources.memory.swap")
            elif swap == -1:
                log.debug("no memory.swap.max (swap accounting off): nothing to lift")
            else:
                log.warning("linux.resources.memory.swap: ignored, swap accounting is off in this kernel")
        if limit is not None and limit != 0:
            write_file(self._f("memory.max"), _num(limit), "linux.resources.memory.limit")
        if reservation is not None and reservation != 0:
            write_file(self._f("memory.low"), _num(reservation), "linux.resources.memory.reservation")

    def _set_cpu(self, cpu: Mapping[str, Any]) -> None:
        if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
            raise Unsupported("linux.resources.cpu.realtime*: real-time scheduling is not supported on cgroup v2")
        shares, quota, period = cpu.get("shares"), cpu.get("quota"), cpu.get("period")
        if shares or quota or period or cpu.get("idle") is not None or cpu.get("burst") is not None:
            self._need("cpu", "linux.resources.cpu")
        if shares:
            write_file(self._f("cpu.weight"), str(shares_to_weight(shares)), "linux.resources.cpu.shares")
        if quota or period:
            value = str(quota) if quota and quota > 0 else "max"
            if period:
                value += f" {period}"
            write_file(self._f("cpu.max"), value, "linux.resources.cpu.quota")
        if cpu.get("burst") is not None:
            write_optional(self._f("cpu.max.burst"), str(cpu["burst"]), "linux.resources.cpu.burst")
        if cpu.get("idle") is not None:
            write_optional(self._f("cpu.idle"), str(cpu["idle"]), "linux.resources.cpu.idle")
        for key in ("cpus", "mems"):
            if cpu.get(key):
                self._need("cpuset", f"linux.resources.cpu.{key}")
                write_file(self._f(f"cpuset.{key}"), str(cpu[key]), f"linux.resources.cpu.{key}")

    def _set_io(self, blkio: Mapping[str, Any]) -> None:
        if not blkio:
            return
        self._need("io", "linux.resources.blockIO")
        bfq = self._f("io.bfq.weight")
        weight = blkio.get("weight")
        if weight:
            if os.path.exists(bfq):
                write_file(bfq, str(weight), "linux.resources.blockIO.weight")
            else:
                write_optional(self._f("io.weight"), f"default {blkio_weight_to_io_weight(weight)}",
                               "linux.resources.blockIO.weight")
        for dev in blkio.get("weightDevice") or ():
            if dev.get("weight") is None:
                continue
            if os.path.exists(bfq):
                write_file(bfq, f"{dev['major']}:{dev['minor']} {dev['weight']}", "linux.resources.blockIO.weightDevice")
            else:
                write_optional(self._f("io.weight"),
                               f"{dev['major']}:{dev['minor']} {blkio_weight_to_io_weight(dev['weight'])}",
                               "linux.resources.blockIO.weightDevice")
        keys = {"throttleReadBpsDevice": "rbps", "throttleWriteBpsDevice": "wbps",
                "throttleReadIOPSDevice": "riops", "throttleWriteIOPSDevice": "wiops"}
        for key, name in keys.items():
            for dev in blkio.get(key) or ():
                rate = dev["rate"] or "max"
                write_file(self._f("io.max"), f"{dev['major']}:{dev['minor']} {name}={rate}",
                           f"linux.resources.blockIO.{key}")

    # ------------------------------------------------------------ freezer

    def _can_freeze(self) -> bool:
        return os.path.exists(self._f("cgroup.freeze"))

    def freeze(self, timeout: float = 10.0) -> None:
        write_file(self._f("cgroup.freeze"), "1", "pause")
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while read_kv(self._f("cgroup.events")).get("frozen") != 1:
            if time.monotonic() > deadline:
                write_file(self._f("cgroup.freeze"), "0", "pause")
                raise Internal(f"cgroup {self.path} did not freeze within {timeout:g}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def thaw(self) -> None:
        write_file(self._f("cgroup.freeze"), "0", "resume")

    def frozen(self) -> bool:
        return read_kv(self._f("cgroup.events")).get("frozen") == 1

    def kill_all(self, sig: int = SIGKILL) -> None:
        if sig == SIGKILL:  # Linux 5.14+ has cgroup.kill: atomic, no freeze needed
            try:
                write_file(self._f("cgroup.kill"), "1", "kill")
                return
            except Unsupported:  # no such file (older kernel, or the cgroup is gone)
                pass
        super().kill_all(sig)

    # ------------------------------------------------------------ observation

    def oom_kill_count(self) -> int:
        return read_kv(self._f("memory.events")).get("oom_kill", 0)

    def oom_notifier(self) -> int:
        return inotify_modify_fd(self._f("memory.events"))

    def pids(self, recursive: bool = True) -> list[int]:
        return read_procs(self.dir, recursive)  # [] when the directory is gone

    def stats(self) -> CgroupStats:
        from dockyard.cgroups.stats import CgroupStats, CpuStats, MemoryStats, PidsStats

        stat = read_kv(self._f("memory.stat"))
        memory = MemoryStats(
            usage=read_int(self._f("memory.current")) or 0,
            max_usage=read_int(self._f("memory.peak")) or 0,
            limit=limit_or_none(read_int(self._f("memory.max"))),
            cache=stat.get("file", 0),
            swap_usage=read_int(self._f("memory.swap.current")) or 0,
            stats=stat,
        )
        cs = read_kv(self._f("cpu.stat"))
        cpu = CpuStats(
            usage_total=cs.get("usage_usec", 0) * 1000,
            usage_kernel=cs.get("system_usec", 0) * 1000,
            usage_user=cs.get("user_usec", 0) * 1000,
            system_usage=host_cpu_usage_ns(),
            online_cpus=os.cpu_count() or 0,
            throttling_periods=cs.get("nr_periods", 0),
            throttled_periods=cs.get("nr_throttled", 0),
            throttled_time=cs.get("throttled_usec", 0) * 1000,
        )
        pids = PidsStats(current=read_int(self._f("pids.current")) or 0,
                         limit=read_int(self._f("pids.max")))
        service_bytes, serviced = parse_io_stat(read_text(self._f("io.stat")) or "")
        return CgroupStats(memory=memory, cpu=cpu, pids=pids, io_service_bytes=service_bytes,
                           io_serviced=serviced, oom_kills=self.oom_kill_count())


def parse_io_stat(text: str) -> tuple[tuple[BlkioEntry, ...], tuple[BlkioEntry, ...]]:
    """``8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`` -> (bytes entries, ios entries), v1-shaped."""
    from dockyard.cgroups.stats import BlkioEntry

    nbytes: list[BlkioEntry] = []
    nios: list[BlkioEntry] = []
    for line in text.splitlines():
        dev, *fields = line.split()
        if ":" not in dev:
            continue
        major, minor = (int(x) for x in dev.split(":"))
        kv = dict(f.split("=", 1) for f in fields if "=" in f)
        for out, r, w in ((nbytes, "rbytes", "wbytes"), (nios, "rios", "wios")):
            rv, wv = int(kv.get(r, 0)), int(kv.get(w, 0))
            out += [BlkioEntry(major, minor, "Read", rv), BlkioEntry(major, minor, "Write", wv),
                    BlkioEntry(major, minor, "Total", rv + wv)]
    return tuple(nbytes), tuple(nios)


_IN_CLOEXEC = 0o2000000
_IN_NONBLOCK = 0o4000
_IN_MODIFY = 0x2


def inotify_modify_fd(path: str) -> int:
    """An inotify fd watching ``path`` for modification (cgroupfs notifies on memory.events)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd: int = libc.inotify_init1(_IN_CLOEXEC | _IN_NONBLOCK)
    if fd < 0:
        raise Internal(f"inotify_init1: {os.strerror(ctypes.get_errno())}")
    if libc.inotify_add_watch(fd, os.fsencode(path), ctypes.c_uint32(_IN_MODIFY)) < 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise Internal(f"cannot watch {path}: {os.strerror(err)}")
    return fd
