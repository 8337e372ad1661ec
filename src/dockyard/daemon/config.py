"""The daemon's configuration: dockerd-like flags merged with a daemon.json, resolved once.

Precedence is dockerd's: a directive given both as a flag and in the file is an error; a flag
or file value overrides the built-in default. Keys use dockerd's names where they apply::

    hosts, data-root, exec-root, group, pidfile, debug, log-level, runtimes, default-runtime,
    log-driver, log-opts (max-size, max-file), default-shm-size, live-restore (always on),
    allow-insecure-tcp (ours: listen on a non-loopback TCP address without TLS), seccomp-profile
    ("unconfined" disables the default profile), bip, default-address-pools (for the network)

SIGHUP reloads the reloadable subset (:data:`RELOADABLE`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from typing import Any

from dockyard.errors import InvalidArgument

DEFAULT_HOST = "unix:///var/run/dockyard.sock"
DEFAULT_DATA_ROOT = "/var/lib/dockyard"
DEFAULT_EXEC_ROOT = "/run/dockyard"
DEFAULT_PIDFILE = "/var/run/dockyard.pid"
DEFAULT_CONFIG_FILE = "/etc/dockyard/daemon.json"
DEFAULT_GROUP = "dockyard"
BUILTIN_RUNTIME = "dockyard"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
RELOADABLE = ("debug", "log-level", "runtimes", "default-runtime", "log-opts", "log-driver")

# flag dest -> daemon.json key
_FILE_KEYS = {
    "hosts": "hosts", "data_root": "data-root", "exec_root": "exec-root", "group": "group",
    "pidfile": "pidfile", "debug": "debug", "log_level": "log-level",
    "default_runtime": "default-runtime", "allow_insecure_tcp": "allow-insecure-tcp",
}


@dataclass(frozen=True)
class RuntimeSpec:
    """An execution driver: our library (``path`` empty) or a runc-compatible binary."""

    name: str
    path: str = ""
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class DaemonConfig:
    hosts: tuple[str, ...] = (DEFAULT_HOST,)
    data_root: str = DEFAULT_DATA_ROOT
    exec_root: str = DEFAULT_EXEC_ROOT
    group: str = DEFAULT_GROUP
    pidfile: str = DEFAULT_PIDFILE
    config_file: str = DEFAULT_CONFIG_FILE
    debug: bool = False
    log_level: str = "info"
    allow_insecure_tcp: bool = False
    runtimes: dict[str, RuntimeSpec] = field(default_factory=dict)
    default_runtime: str = BUILTIN_RUNTIME
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=lambda: {"max-size": "20m", "max-file": "5"})
    default_shm_size: int = 64 * 1024 * 1024
    seccomp_profile: str = ""
    network: dict[str, Any] = field(default_factory=dict)

    def runtime(self, name: str | None) -> RuntimeSpec:
        name = name or self.default_runtime
        try:
            return self.runtimes[name]
        except KeyError:
            raise InvalidArgument(f"unknown or invalid runtime name: {name}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard daemon", description="Run the Dockyard engine daemon")
    p.add_argument("-H", "--host", dest="hosts", action="append", default=None,
                   help="daemon socket(s) to listen on: unix:///path, tcp://host:port, fd://")
    p.add_argument("--data-root", default=None, help=f"persistent state (default {DEFAULT_DATA_ROOT})")
    p.add_argument("--exec-root", default=None, help=f"runtime state (default {DEFAULT_EXEC_ROOT})")
    p.add_argument("-G", "--group", default=None, help=f"group of the unix socket (default {DEFAULT_GROUP})")
    p.add_argument("-p", "--pidfile", default=None, help=f"pid file (default {DEFAULT_PIDFILE})")
    p.add_argument("--config-file", default=DEFAULT_CONFIG_FILE, help="daemon.json")
    p.add_argument("-D", "--debug", action="store_const", const=True, default=None, help="debug mode")
    p.add_argument("-l", "--log-level", choices=LOG_LEVELS, default=None, help="logging level")
    p.add_argument("--default-runtime", default=None, help="runtime for containers without --runtime")
    p.add_argument("--add-runtime", action="append", default=[], metavar="NAME=PATH",
                   help="register a runc-compatible runtime binary")
    p.add_argument("--allow-insecure-tcp", action="store_const", const=True, default=None,
                   help="allow TCP without TLS on non-loopback addresses (dangerous)")
    return p


def load_file(path: str, *, required: bool) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        if required:
            raise InvalidArgument(f"unable to configure the daemon: open {path}: no such file or directory") from None
        return {}
    except ValueError as exc:
        raise InvalidArgument(f"unable to configure the daemon with file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidArgument(f"unable to configure the daemon with file {path}: not a JSON object")
    return data


def _runtimes(file_value: Any, extra: list[str]) -> dict[str, RuntimeSpec]:
    out = {BUILTIN_RUNTIME: RuntimeSpec(BUILTIN_RUNTIME)}
    for name in ("runc", "crun"):
        path = shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        if path:
            out[name] = RuntimeSpec(name, path)
    if file_value is not None:
        if not isinstance(file_value, dict):
            raise InvalidArgument("runtimes: must be an object")
        for name, spec in file_value.items():
            if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
                raise InvalidArgument(f"runtimes.{name}: a path is required")
            args = spec.get("runtimeArgs") or []
            out[name] = RuntimeSpec(name, spec["path"], tuple(str(a) for a in args))
    for item in extra:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InvalidArgument(f"--add-runtime: expected NAME=PATH, got {item!r}")
        out[name] = RuntimeSpec(name, path)
    return out


def _apply_file(cfg: DaemonConfig, data: dict[str, Any], extra_runtimes: list[str]) -> DaemonConfig:
    changes: dict[str, Any] = {}
    for dest, key in _FILE_KEYS.items():
        if key in data:
            value = data[key]
            changes[dest] = tuple(value) if dest == "hosts" else value
    if "log-level" in data and data["log-level"] not in LOG_LEVELS:
        raise InvalidArgument(f"log-level: invalid value {data['log-level']!r}")
    if "log-driver" in data:
        if data["log-driver"] not in ("json-file", "none"):
            raise InvalidArgument(f"log-driver: {data['log-driver']} is not supported (json-file, none)")
        changes["log_driver"] = data["log-driver"]
    if "log-opts" in data:
        changes["log_opts"] = {**cfg.log_opts, **{str(k): str(v) for k, v in data["log-opts"].items()}}
    if "seccomp-profile" in data:
        changes["seccomp_profile"] = str(data["seccomp-profile"])
    if "default-shm-size" in data:
        from dockyard.shim.logfile import parse_size

        changes["default_shm_size"] = parse_size(str(data["default-shm-size"]), cfg.default_shm_size)
    changes["network"] = {k: data[k] for k in ("bip", "default-address-pools", "iptables", "bridge") if k in data}
    changes["runtimes"] = _runtimes(data.get("runtimes"), extra_runtimes)
    return replace(cfg, **changes)


def parse_args(argv: list[str]) -> DaemonConfig:
    """Flags, then daemon.json (the default path may be absent, an explicit one may not)."""
    ns = _parser().parse_args(argv)
    explicit_file = ns.config_file != DEFAULT_CONFIG_FILE
    data = load_file(ns.config_file, required=explicit_file)
    conflicts = [key for dest, key in _FILE_KEYS.items() if getattr(ns, dest) is not None and key in data]
    if conflicts:
        raise InvalidArgument(
            "unable to configure the daemon with file " + ns.config_file
            + ": the following directives are specified both as a flag and in the configuration file: "
            + ", ".join(conflicts))
    cfg = _apply_file(DaemonConfig(config_file=os.path.abspath(ns.config_file)), data, ns.add_runtime)
    flags: dict[str, Any] = {}
    for dest in _FILE_KEYS:
        value = getattr(ns, dest)
        if value is not None:
            flags[dest] = tuple(value) if dest == "hosts" else value
    cfg = replace(cfg, **flags)
    if cfg.debug and ns.log_level is None and "log-level" not in data:
        cfg = replace(cfg, log_level="debug")
    if cfg.default_runtime not in cfg.runtimes:
        raise InvalidArgument(f"default runtime {cfg.default_runtime} is not a configured runtime")
    return replace(cfg, data_root=os.path.abspath(cfg.data_root), exec_root=os.path.abspath(cfg.exec_root))


def reload(cfg: DaemonConfig) -> DaemonConfig:
    """SIGHUP: re-read the file and take what can change while running."""
    data = load_file(cfg.config_file, required=False)
    base = replace(cfg, default_runtime=BUILTIN_RUNTIME, log_opts=DaemonConfig().log_opts)  # keys removed
    fresh = _apply_file(base, {k: v for k, v in data.items() if k in RELOADABLE}, [])
    if fresh.default_runtime not in fresh.runtimes:
        raise InvalidArgument(f"default runtime {fresh.default_runtime} is not a configured runtime")
    return fresh


__all__ = ["BUILTIN_RUNTIME", "DaemonConfig", "RuntimeSpec", "parse_args", "reload"]
