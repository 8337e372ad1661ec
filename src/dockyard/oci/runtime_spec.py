"""OCI runtime-spec ``config.json``: validation with errors naming the field, and defaults.

Pure data: no filesystem access (the runtime checks the rootfs and mount destinations against
the disk in ``dockyard.runtime.bundle``). Every error is an ``InvalidArgument`` whose message
starts with the JSON path of the offending field, e.g. ``process.args: must not be empty``.
"""

from __future__ import annotations

from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = [
    "HOOK_NAMES",
    "NAMESPACE_TYPES",
    "OCI_VERSION",
    "RLIMIT_NAMES",
    "default_spec",
    "validate",
]

OCI_VERSION = "1.0.2"
NAMESPACE_TYPES = ("cgroup", "ipc", "mount", "network", "pid", "user", "uts")
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")
RLIMIT_NAMES = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
                "RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
                "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
                "RLIMIT_SIGPENDING", "RLIMIT_STACK")
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
PROPAGATIONS = ("", "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
                "runbindable")

_DEFAULT: dict[str, Any] = {
    "ociVersion": OCI_VERSION,
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        # runc's set; no "ambient": raising those needs them inheritable too (capabilities(7))
        "capabilities": {s: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                         for s in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "dockyard",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                        "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger"],
    },
}


def default_spec(*, rootless: bool = False) -> dict[str, Any]:
    """The config ``dockyard-runtime spec`` writes: runc's defaults, plus a cgroup namespace,
    minus runc's ambient capabilities (they cannot be raised without being inheritable)."""
    import copy  # here: only `spec` needs it, and every runtime start imports this module

    spec = copy.deepcopy(_DEFAULT)
    if rootless:
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    return spec


def _fail(path: str, msg: str) -> InvalidArgument:
    return InvalidArgument(f"{path}: {msg}")


def _obj(value: Any, path: str, *, required: bool = False) -> dict[str, Any]:
    if value is None:
        if required:
            raise _fail(path, "is required")
        return {}
    if not isinstance(value, dict):
        raise _fail(path, "must be an object")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(path, "must be an array")
    return value


def _str(value: Any, path: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _fail(path, "must be a string" if value is not None else "is required")
    return value


def _int(value: Any, path: str, *, required: bool = False, lo: int | None = None,
         hi: int | None = None) -> int:
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, "must be an integer" if value is not None else "is required")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _fail(path, f"must be between {lo} and {hi}")
    return value


def _bool(value: Any, path: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise _fail(path, "must be a boolean")


def _abs(value: Any, path: str) -> str:
    s = _str(value, path, required=True)
    if not s.startswith("/"):
        raise _fail(path, f"must be an absolute path, got {s!r}")
    return s


def _strings(value: Any, path: str) -> list[str]:
    items = _list(value, path)
    for i, item in enumerate(items):
        _str(item, f"{path}[{i}]", required=True)
    return items


def validate(config: Any, *, need_process: bool = True) -> dict[str, Any]:
    """Check ``config`` (a parsed config.json) and return it; raise ``InvalidArgument``."""
    cfg = _obj(config, "config", required=True)
    _str(cfg.get("ociVersion"), "ociVersion", required=True)
    root = _obj(cfg.get("root"), "root", required=True)
    _str(root.get("path"), "root.path", required=True)
    if not root["path"]:
        raise _fail("root.path", "must not be empty")
    _bool(root.get("readonly"), "root.readonly")
    if need_process or cfg.get("process") is not None:
        validate_process(cfg.get("process"), "process")
    _str(cfg.get("hostname"), "hostname")
    for i, m in enumerate(_list(cfg.get("mounts"), "mounts")):
        _validate_mount(m, f"mounts[{i}]")
    hooks = _obj(cfg.get("hooks"), "hooks")
    for name, entries in hooks.items():
        if name not in HOOK_NAMES:
            raise _fail(f"hooks.{name}", f"unknown hook, expected one of {', '.join(HOOK_NAMES)}")
        for i, hook in enumerate(_list(entries, f"hooks.{name}")):
            _validate_hook(hook, f"hooks.{name}[{i}]")
    _obj(cfg.get("annotations"), "annotations")
    _validate_linux(_obj(cfg.get("linux"), "linux"), cfg)
    return cfg


def validate_process(value: Any, path: str) -> dict[str, Any]:
    proc = _obj(value, path, required=True)
    args = _strings(proc.get("args"), f"{path}.args")
    if not args:
        raise _fail(f"{path}.args", "must not be empty")
    _abs(proc.get("cwd"), f"{path}.cwd")
    for i, e in enumerate(_strings(proc.get("env"), f"{path}.env")):
        if "=" not in e:
            raise _fail(f"{path}.env[{i}]", f"must be KEY=value, got {e!r}")
    _bool(proc.get("terminal"), f"{path}.terminal")
    _bool(proc.get("noNewPrivileges"), f"{path}.noNewPrivileges")
    user = _obj(proc.get("user"), f"{path}.user")
    _int(user.get("uid"), f"{path}.user.uid", lo=0, hi=2**32 - 2)
    _int(user.get("gid"), f"{path}.user.gid", lo=0, hi=2**32 - 2)
    _int(user.get("umask"), f"{path}.user.umask", lo=0, hi=0o777)
    for i, g in enumerate(_list(user.get("additionalGids"), f"{path}.user.additionalGids")):
        _int(g, f"{path}.user.additionalGids[{i}]", required=True, lo=0, hi=2**32 - 2)
    caps = _obj(proc.get("capabilities"), f"{path}.capabilities")
    for name, items in caps.items():
        if name not in CAP_SETS:
            raise _fail(f"{path}.capabilities.{name}", "unknown capability set")
        for i, cap in enumerate(_strings(items, f"{path}.capabilities.{name}")):
            if not cap.startswith("CAP_") or not cap[4:].replace("_", "").isalnum():
                raise _fail(f"{path}.capabilities.{name}[{i}]", f"invalid capability {cap!r}")
    for i, rl in enumerate(_list(proc.get("rlimits"), f"{path}.rlimits")):
        p = f"{path}.rlimits[{i}]"
        rl = _obj(rl, p, required=True)
        if _str(rl.get("type"), f"{p}.type", required=True) not in RLIMIT_NAMES:
            raise _fail(f"{p}.type", f"unknown rlimit {rl['type']!r}")
        soft = _int(rl.get("soft"), f"{p}.soft", required=True, lo=0, hi=2**64 - 1)
        hard = _int(rl.get("hard"), f"{p}.hard", required=True, lo=0, hi=2**64 - 1)
        if soft > hard:
            raise _fail(p, "soft limit exceeds hard limit")
    if proc.get("oomScoreAdj") is not None:
        _int(proc["oomScoreAdj"], f"{path}.oomScoreAdj", lo=-1000, hi=1000)
    cs = _obj(proc.get("consoleSize"), f"{path}.consoleSize")
    for k in ("height", "width"):
        if k in cs:
            _int(cs[k], f"{path}.consoleSize.{k}", lo=0, hi=65535)
    return proc


def _validate_mount(value: Any, path: str) -> None:
    m = _obj(value, path, required=True)
    _abs(m.get("destination"), f"{path}.destination")
    if ".." in m["destination"].split("/"):
        raise _fail(f"{path}.destination", "must not contain '..'")
    _str(m.get("type"), f"{path}.type")
    _str(m.get("source"), f"{path}.source")
    _strings(m.get("options"), f"{path}.options")


def _validate_hook(value: Any, path: str) -> None:
    h = _obj(value, path, required=True)
    _abs(h.get("path"), f"{path}.path")
    _strings(h.get("args"), f"{path}.args")
    _strings(h.get("env"), f"{path}.env")
    if h.get("timeout") is not None:
        _int(h["timeout"], f"{path}.timeout", lo=1)


def _validate_linux(linux: dict[str, Any], cfg: dict[str, Any]) -> None:
    seen: set[str] = set()
    for i, ns in enumerate(_list(linux.get("namespaces"), "linux.namespaces")):
        p = f"linux.namespaces[{i}]"
        ns = _obj(ns, p, required=True)
        kind = _str(ns.get("type"), f"{p}.type", required=True)
        if kind not in NAMESPACE_TYPES:
            raise _fail(f"{p}.type", f"unknown namespace {kind!r}, expected one of "
                        f"{', '.join(NAMESPACE_TYPES)}")
        if kind in seen:
            raise _fail(f"{p}.type", f"duplicate namespace {kind!r}")
        seen.add(kind)
        if ns.get("path") is not None:
            _abs(ns["path"], f"{p}.path")
    for key in ("uidMappings", "gidMappings"):
        for i, mp in enumerate(_list(linux.get(key), f"linux.{key}")):
            p = f"linux.{key}[{i}]"
            mp = _obj(mp, p, required=True)
            for f in ("containerID", "hostID", "size"):
                _int(mp.get(f), f"{p}.{f}", required=True, lo=0, hi=2**32 - 1)
        if linux.get(key) and "user" not in seen:
            raise _fail(f"linux.{key}", "needs a user namespace in linux.namespaces")
    if cfg.get("hostname") and "uts" not in seen:
        raise _fail("hostname", "needs a uts namespace in linux.namespaces")
    for key in ("maskedPaths", "readonlyPaths"):
        for i, item in enumerate(_list(linux.get(key), f"linux.{key}")):
            _abs(item, f"linux.{key}[{i}]")
    for k, v in _obj(linux.get("sysctl"), "linux.sysctl").items():
        _str(v, f"linux.sysctl.{k}", required=True)
    _str(linux.get("cgroupsPath"), "linux.cgroupsPath")
    if _str(linux.get("rootfsPropagation"), "linux.rootfsPropagation") not in PROPAGATIONS:
        raise _fail("linux.rootfsPropagation", f"unknown propagation {linux['rootfsPropagation']!r}")
    for i, dev in enumerate(_list(linux.get("devices"), "linux.devices")):
        p = f"linux.devices[{i}]"
        dev = _obj(dev, p, required=True)
        _abs(dev.get("path"), f"{p}.path")
        if _str(dev.get("type"), f"{p}.type", required=True) not in ("c", "b", "u", "p"):
            raise _fail(f"{p}.type", f"must be one of c, b, u, p, got {dev['type']!r}")
        if dev["type"] != "p":
            _int(dev.get("major"), f"{p}.major", required=True, lo=0)
            _int(dev.get("minor"), f"{p}.minor", required=True, lo=0)
    _obj(linux.get("resources"), "linux.resources")
    _obj(linux.get("seccomp"), "linux.seccomp")
