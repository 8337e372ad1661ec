"""Fake cgroup trees in a tmp dir: directories and the files a kernel would show.

A file that exists stands for a kernel feature; a write replaces its content, so a test reads
back the last value written. Leaf directories are made up front (the kernel would fill them in
at mkdir time), so ``create()`` finds them with their files.
"""

from __future__ import annotations

import os

V1_FILES: dict[str, dict[str, str]] = {
    "cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1",
            "cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 3000\n", "cpu.idle": "0"},
    "cpuacct": {"cpuacct.usage": "5000", "cpuacct.usage_percpu": "3000 2000",
                "cpuacct.stat": "user 1\nsystem 2\n"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
               "memory.soft_limit_in_bytes": "9223372036854771712", "memory.swappiness": "60",
               "memory.usage_in_bytes": "4096", "memory.max_usage_in_bytes": "8192",
               "memory.memsw.usage_in_bytes": "6144",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
               "memory.stat": "cache 100\nrss 200\ntotal_cache 150\n",
               "memory.kmem.tcp.limit_in_bytes": "9223372036854771712"},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
    "freezer": {"freezer.state": "THAWED"},
    "blkio": {"blkio.throttle.read_bps_device": "", "blkio.throttle.write_iops_device": "",
              "blkio.throttle.io_service_bytes_recursive": "8:0 Read 10\n8:0 Write 20\nTotal 30\n"},
    "pids": {"pids.max": "max", "pids.current": "1"},
    "systemd": {},
}
ALL_V2 = "cpuset cpu io memory hugetlb pids"
V2_LEAF = {
    "cgroup.controllers": ALL_V2, "cgroup.subtree_control": "", "cgroup.freeze": "0",
    "cgroup.events": "populated 1\nfrozen 0\n", "memory.max": "max", "memory.swap.max": "max",
    "memory.low": "0", "memory.current": "4096", "memory.peak": "8192", "memory.swap.current": "0",
    "memory.stat": "anon 10\nfile 20\n", "memory.events": "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n",
    "cpu.weight": "100", "cpu.max": "max 100000", "cpu.stat": "usage_usec 7\nuser_usec 5\nsystem_usec 2\n"
    "nr_periods 4\nnr_throttled 1\nthrottled_usec 9\n", "cpuset.cpus": "", "cpuset.mems": "",
    "memory.high": "max", "pids.max": "max", "pids.current": "2", "io.weight": "default 100", "io.max": "",
    "io.stat": "8:0 rbytes=100 wbytes=50 rios=3 wios=2 dbytes=0 dios=0\n", "hugetlb.2MB.max": "max",
}


def write(path: str, content: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(content)


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def make_v1(root: str, cgroup: str, *, hybrid: bool = True, without: tuple[str, ...] = (),
            missing_files: tuple[str, ...] = ()) -> None:
    """A v1 root with each controller mounted, the parents and the leaf ``cgroup`` made."""
    levels = [""]
    for part in cgroup.strip("/").split("/"):
        levels.append(os.path.join(levels[-1], part))
    for ctrl, files in V1_FILES.items():
        if ctrl in without:
            continue
        for level in levels:
            directory = os.path.join(root, ctrl, level)
            os.makedirs(directory, exist_ok=True)
            write(os.path.join(directory, "cgroup.procs"), "")
            for name, content in files.items():
                if name in missing_files:
                    continue
                if ctrl == "cpuset" and level == "":
                    content = {"cpuset.cpus": "0-1", "cpuset.mems": "0"}[name]
                write(os.path.join(directory, name), content)
    if hybrid:
        write(os.path.join(root, "unified", "cgroup.controllers"), "hugetlb")


def make_v2(root: str, cgroup: str, *, controllers: str = ALL_V2, missing_files: tuple[str, ...] = ()) -> str:
    """A v2 root and the levels down to ``cgroup``; returns the leaf directory."""
    levels = [""]
    for part in cgroup.strip("/").split("/"):
        levels.append(os.path.join(levels[-1], part))
    for level in levels:
        directory = os.path.join(root, level)
        os.makedirs(directory, exist_ok=True)
        write(os.path.join(directory, "cgroup.procs"), "")
        for name, content in V2_LEAF.items():
            if name in missing_files:
                continue
            write(os.path.join(directory, name), controllers if name == "cgroup.controllers" else content)
    return os.path.join(root, cgroup.strip("/"))
