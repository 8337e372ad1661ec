"""Docker's container configuration -> an OCI runtime bundle ``config.json``.

Modelled on what dockerd 20.10 generates (../shared/reference/dockerd-generated-oci-config.json):
the same namespaces, default capabilities, device allow-list, masked and read-only paths and
the resolv.conf/hostname/hosts bind mounts from the container's directory. Values go through
as given; the runtime validates them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
DEFAULT_DEVICES: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    *({"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"}
      for ma, mi in ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1))),
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # /dev/pts/*
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # /dev/ptmx
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
]


@dataclass(frozen=True)
class SpecInputs:
    cid: str
    config: dict[str, Any]          # Docker Config, already merged with the image's
    host_config: dict[str, Any]
    rootfs: str
    container_dir: str              # holds hosts, hostname, resolv.conf
    mounts: list[dict[str, Any]] = field(default_factory=list)  # OCI mounts for volumes/binds/tmpfs
    netns: str | None = None        # join this netns (None: a new, loopback-only one)
    host_caps: frozenset[str] | None = None
    seccomp: dict[str, Any] | None = None
    cgroup_parent: str = "/dockyard"
    shm_size: int = 64 * 1024 * 1024
    init_path: str | None = None


def _lookup(path: str, key: str, numeric_field: int) -> tuple[int, int] | None:
    try:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) > numeric_field and parts[0] == key:
                    gid = int(parts[3]) if numeric_field == 2 and len(parts) > 3 else 0
                    return int(parts[numeric_field]), gid
    except (OSError, ValueError):
        return None
    return None


def resolve_user(rootfs: str, user: str) -> tuple[int, int]:
    """``name|uid[:group|gid]`` looked up in the container's /etc/passwd and /etc/group."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    if name.isdigit():
        uid = int(name)
        found = None
        gid = 0
        try:
            with open(os.path.join(rootfs, "etc/passwd")) as f:
                for line in f:
                    parts = line.split(":")
                    if len(parts) > 3 and parts[2] == name:
                        found = int(parts[3])
                        break
        except (OSError, ValueError):
            pass
        gid = found or 0
    else:
        entry = _lookup(os.path.join(rootfs, "etc/passwd"), name, 2)
        if entry is None:
            raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
        uid, gid = entry
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = _lookup(os.path.join(rootfs, "etc/group"), group, 2)
            if g is None:
                raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")
            gid = g[0]
    return uid, gid


def _caps(host_config: dict[str, Any], host_caps: frozenset[str] | None) -> list[str]:
    def norm(c: str) -> str:
        c = c.upper()
        return c if c.startswith("CAP_") else "CAP_" + c

    if host_config.get("Privileged"):
        caps = set(host_caps or DEFAULT_CAPS)
    else:
        caps = set(DEFAULT_CAPS)
        adds = [norm(c) for c in host_config.get("CapAdd") or []]
        drops = [norm(c) for c in host_config.get("CapDrop") or []]
        if "CAP_ALL" in adds:
            caps = set(host_caps or DEFAULT_CAPS)
        caps |= {c for c in adds if c != "CAP_ALL"}
        caps = set() if "CAP_ALL" in drops else caps - set(drops)
    if host_caps is not None:
        caps &= host_caps
    return sorted(caps)


def _resources(hc: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {"devices": [dict(d) for d in DEFAULT_DEVICES]}
    if hc.get("Privileged"):
        res["devices"] = [{"allow": True, "access": "rwm"}]
    mem: dict[str, Any] = {}
    if hc.get("Memory"):
        mem["limit"] = int(hc["Memory"])
        swap = hc.get("MemorySwap") or 0
        if swap > 0:
            mem["swap"] = int(swap)
        elif swap == 0:
            mem["swap"] = int(hc["Memory"]) * 2
    if hc.get("MemoryReservation"):
        mem["reservation"] = int(hc["MemoryReservation"])
    if hc.get("OomKillDisable"):
        mem["disableOOMKiller"] = True
    if mem:
        res["memory"] = mem
    cpu: dict[str, Any] = {}
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = int(hc["NanoCpus"]) * 100000 // 1_000_000_000
    if hc.get("CpuQuota"):
        cpu["quota"] = int(hc["CpuQuota"])
    if hc.get("CpuPeriod"):
        cpu["period"] = int(hc["CpuPeriod"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if cpu:
        res["cpu"] = cpu
    if hc.get("PidsLimit"):
        res["pids"] = {"limit": int(hc["PidsLimit"])}
    if hc.get("BlkioWeight"):
        res["blockIO"] = {"weight": int(hc["BlkioWeight"])}
    return res


def _standard_mounts(shm_size: int, hc: dict[str, Any]) -> list[dict[str, Any]]:
    ro = [] if hc.get("Privileged") else ["ro"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", *ro]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"]},
    ]


def build_spec(inp: SpecInputs) -> dict[str, Any]:
    cfg, hc = inp.config, inp.host_config
    args = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    if not args:
        raise InvalidArgument("no command specified")
    uid, gid = resolve_user(inp.rootfs, cfg.get("User") or "")
    env = [DEFAULT_PATH, f"HOSTNAME={cfg.get('Hostname') or inp.cid[:12]}"]
    if cfg.get("Tty"):
        env.append("TERM=xterm")
    for item in cfg.get("Env") or []:
        key = item.split("=", 1)[0]
        env = [e for e in env if e.split("=", 1)[0] != key]
        env.append(item)
    if inp.init_path:
        args = ["/sbin/docker-init", "--", *args]
    caps = _caps(hc, inp.host_caps)
    process: dict[str, Any] = {
        "terminal": bool(cfg.get("Tty")),
        "user": {"uid": uid, "gid": gid,
                 **({"additionalGids": [int(g) for g in hc.get("GroupAdd") or [] if str(g).isdigit()]}
                    if hc.get("GroupAdd") else {})},
        "args": args, "env": env, "cwd": cfg.get("WorkingDir") or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "oomScoreAdj": int(hc.get("OomScoreAdj") or 0),
    }
    if cfg.get("Tty") and hc.get("ConsoleSize") and all(hc["ConsoleSize"]):
        process["consoleSize"] = {"height": hc["ConsoleSize"][0], "width": hc["ConsoleSize"][1]}
    rlimits = []
    for u in hc.get("Ulimits") or []:
        rlimits.append({"type": "RLIMIT_" + str(u.get("Name", "")).upper(),
                        "hard": int(u.get("Hard", 0)), "soft": int(u.get("Soft", 0))})
    if rlimits:
        process["rlimits"] = rlimits
    if any(str(o).startswith("no-new-privileges") and not str(o).endswith("false")
           for o in hc.get("SecurityOpt") or []):
        process["noNewPrivileges"] = True
    mounts = _standard_mounts(inp.shm_size, hc)
    mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["ro", "nosuid", "noexec", "nodev"]})
    for name in ("resolv.conf", "hostname", "hosts"):
        mounts.append({"destination": f"/etc/{name}", "type": "bind",
                       "source": os.path.join(inp.container_dir, name), "options": ["rbind", "rprivate"]})
    if inp.init_path:
        mounts.append({"destination": "/sbin/docker-init", "type": "bind", "source": inp.init_path,
                       "options": ["bind", "ro"]})
    user_dests = {m["destination"] for m in inp.mounts}
    mounts = [m for m in mounts if m["destination"] not in user_dests] + list(inp.mounts)
    namespaces: list[dict[str, Any]] = [{"type": "mount"}]
    net_mode = str(hc.get("NetworkMode") or "")
    if net_mode != "host":
        namespaces.append({"type": "network", **({"path": inp.netns} if inp.netns else {})})
    if hc.get("UTSMode") != "host":
        namespaces.append({"type": "uts"})
    if hc.get("PidMode") != "host":
        namespaces.append({"type": "pid"})
    if hc.get("IpcMode") != "host":
        namespaces.append({"type": "ipc"})
    if hc.get("CgroupnsMode") == "private":
        namespaces.append({"type": "cgroup"})
    linux: dict[str, Any] = {
        "resources": _resources(hc),
        "cgroupsPath": f"{hc.get('CgroupParent') or inp.cgroup_parent}/{inp.cid}",
        "namespaces": namespaces,
    }
    sysctl = {str(k): str(v) for k, v in (hc.get("Sysctls") or {}).items()}
    if net_mode != "host":
        sysctl.setdefault("net.ipv4.ip_unprivileged_port_start", "0")
        sysctl.setdefault("net.ipv4.ping_group_range", "0 2147483647")
    linux["sysctl"] = sysctl
    if not hc.get("Privileged"):
        linux["maskedPaths"] = list(hc.get("MaskedPaths") or MASKED_PATHS)
        linux["readonlyPaths"] = list(hc.get("ReadonlyPaths") or READONLY_PATHS)
        if inp.seccomp is not None:
            linux["seccomp"] = inp.seccomp
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": inp.rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))},
        "hostname": cfg.get("Hostname") or inp.cid[:12],
        "mounts": mounts,
        "linux": linux,
    }
    if cfg.get("Domainname"):
        spec["domainname"] = cfg["Domainname"]
    return spec


def exec_process(base: dict[str, Any], exec_cfg: dict[str, Any], rootfs: str) -> dict[str, Any]:
    """The OCI process of an exec: the container's process with the exec's overrides."""
    proc = dict(base)
    proc["args"] = list(exec_cfg.get("Cmd") or [])
    if not proc["args"]:
        raise InvalidArgument("No exec command specified")
    proc["terminal"] = bool(exec_cfg.get("Tty"))
    proc.pop("consoleSize", None)
    env = list(base.get("env") or [])
    for item in exec_cfg.get("Env") or []:
        key = item.split("=", 1)[0]
        env = [e for e in env if e.split("=", 1)[0] != key]
        env.append(item)
    proc["env"] = env
    if exec_cfg.get("WorkingDir"):
        proc["cwd"] = exec_cfg["WorkingDir"]
    if exec_cfg.get("User"):
        uid, gid = resolve_user(rootfs, exec_cfg["User"])
        proc["user"] = {"uid": uid, "gid": gid}
    if exec_cfg.get("Privileged"):
        caps = base.get("capabilities", {}).get("bounding", [])
        proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    return proc


__all__ = ["SpecInputs", "build_spec", "exec_process", "resolve_user"]
