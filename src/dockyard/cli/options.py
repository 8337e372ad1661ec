"""``run``/``create`` flags -> the ``POST /containers/create`` body, as the docker CLI builds it.

::

    {Hostname, User, AttachStdin/Stdout/Stderr, Tty, OpenStdin, StdinOnce, Env, Cmd, Image,
     Entrypoint, WorkingDir, Labels, ExposedPorts, Volumes, Healthcheck, StopSignal, ...,
     HostConfig: {Binds, Mounts, PortBindings, PublishAllPorts, NetworkMode, RestartPolicy,
                  AutoRemove, Init, Memory, NanoCpus, PidsLimit, CapAdd, CapDrop, Privileged,
                  ReadonlyRootfs, Tmpfs, ExtraHosts, Dns*, Runtime, ...},
     NetworkingConfig: {EndpointsConfig: {<network>: {Aliases, IPAMConfig}}}}
"""

from __future__ import annotations

import os

from dockyard.cli.context import Parser, UsageError

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping
    from typing import Any

__all__ = ["add_create_flags", "build_create", "parse_bytes", "parse_cpus", "parse_duration",
           "parse_restart"]

def parse_bytes(text: str) -> int:
    """go-units RAMInBytes: ``512m`` -> 536870912 (binary multiples)."""
    import re  # here, not at the top: most command lines have no size (re costs ~3 ms)

    m = re.match(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)?$", text.strip(), re.I)
    if not m:
        raise UsageError(f"invalid size: '{text}'")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    return int(float(m.group(1)) * mult[m.group(2).lower()])


def parse_cpus(text: str) -> int:
    try:
        return round(float(text) * 1e9)
    except ValueError:
        raise UsageError(f'invalid argument "{text}" for "--cpus" flag') from None


def parse_duration(text: str) -> int:
    """A Go duration (``1m30s``, ``500ms``) -> nanoseconds."""
    import re

    units = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
             "h": 3600 * 10**9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if text == "0":
        return 0
    if not parts or "".join(a + b for a, b in parts) != text:
        raise UsageError(f'invalid duration "{text}"')
    return int(sum(float(a) * units[b] for a, b in parts))


def parse_restart(text: str) -> dict[str, Any]:
    name, _, count = text.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise UsageError(f"invalid restart policy '{name}'")
    if count and name != "on-failure":
        raise UsageError(f"maximum retry count cannot be used with restart policy '{name}'")
    return {"Name": "" if name == "no" else name, "MaximumRetryCount": int(count or 0)}


def add_create_flags(p: Parser) -> None:
    a = p.add_argument
    a("-a", "--attach", action="append", choices=["stdin", "stdout", "stderr", "STDIN",
                                                  "STDOUT", "STDERR"],
      help="Attach to STDIN, STDOUT or STDERR")
    a("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    a("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    a("--rm", action="store_true", help="Automatically remove the container when it exits")
    a("--name", help="Assign a name to the container")
    a("-e", "--env", action="append", default=[], help="Set environment variables")
    a("--env-file", action="append", default=[], help="Read in a file of environment variables")
    a("-v", "--volume", action="append", default=[], help="Bind mount a volume")
    a("--mount", action="append", default=[], help="Attach a filesystem mount to the container")
    a("--volumes-from", action="append", default=[], help="Mount volumes from containers")
    a("--tmpfs", action="append", default=[], help="Mount a tmpfs directory")
    a("-p", "--publish", action="append", default=[], help="Publish a container's port(s)")
    a("-P", "--publish-all", action="store_true", help="Publish all exposed ports")
    a("--expose", action="append", default=[], help="Expose a port or a range of ports")
    a("--network", "--net", help="Connect a container to a network")
    a("--network-alias", action="append", default=[], help="Add network-scoped alias")
    a("--ip", help="IPv4 address")
    a("--mac-address", help="Container MAC address")
    a("-w", "--workdir", help="Working directory inside the container")
    a("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    a("--group-add", action="append", default=[], help="Add additional groups to join")
    a("--entrypoint", help="Overwrite the default ENTRYPOINT of the image")
    a("--restart", default="no", help="Restart policy to apply when a container exits")
    a("--init", action="store_true", help="Run an init inside the container")
    a("--health-cmd", help="Command to run to check health")
    a("--health-interval", help="Time between running the check")
    a("--health-timeout", help="Maximum time to allow one check to run")
    a("--health-retries", type=int, help="Consecutive failures needed to report unhealthy")
    a("--health-start-period", help="Start period for the container to initialize")
    a("--no-healthcheck", action="store_true", help="Disable any container-specified HEALTHCHECK")
    a("-m", "--memory", help="Memory limit")
    a("--memory-swap", help="Swap limit equal to memory plus swap: '-1' for unlimited swap")
    a("--memory-reservation", help="Memory soft limit")
    a("--oom-kill-disable", action="store_true", help="Disable OOM Killer")
    a("--cpus", help="Number of CPUs")
    a("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
    a("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    a("--pids-limit", type=int, help="Tune container pids limit (set -1 for unlimited)")
    a("--shm-size", help="Size of /dev/shm")
    a("--ulimit", action="append", default=[], help="Ulimit options")
    a("--cap-add", action="append", default=[], help="Add Linux capabilities")
    a("--cap-drop", action="append", default=[], help="Drop Linux capabilities")
    a("--privileged", action="store_true", help="Give extended privileges to this container")
    a("--security-opt", action="append", default=[], help="Security Options")
    a("--device", action="append", default=[], help="Add a host device to the container")
    a("--sysctl", action="append", default=[], help="Sysctl options")
    a("--read-only", action="store_true", help="Mount the container's root filesystem as read only")
    a("-h", "--hostname", dest="hostname", help="Container host name")
    a("--domainname", help="Container NIS domain name")
    a("--add-host", action="append", default=[], help="Add a custom host-to-IP mapping (host:ip)")
    a("--dns", action="append", default=[], help="Set custom DNS servers")
    a("--dns-search", action="append", default=[], help="Set custom DNS search domains")
    a("--dns-option", "--dns-opt", action="append", default=[], help="Set DNS options")
    a("-l", "--label", action="append", default=[], help="Set meta data on a container")
    a("--runtime", help="Runtime to use for this container")
    a("--pull", default="missing", choices=["always", "missing", "never"],
      help='Pull image before running ("always", "missing", "never")')
    a("--platform", help="Set platform if server is multi-platform capable")
    a("--stop-signal", help="Signal to stop the container")
    a("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container")
    a("--ipc", help="IPC mode to use")
    a("--pid", help="PID namespace to use")
    a("--uts", help="UTS namespace to use")
    a("--userns", help="User namespace to use")
    a("--cgroupns", help="Cgroup namespace to use (host|private)")
    a("--cgroup-parent", help="Optional parent cgroup for the container")
    a("--log-driver", help="Logging driver for the container")
    a("--log-opt", action="append", default=[], help="Log driver options")
    a("--cidfile", help="Write the container ID to the file")
    a("--detach-keys", help="Override the key sequence for detaching a container")
    a("-q", "--quiet", action="store_true", help="Suppress the pull output")
    a("image", metavar="IMAGE")
    a("command", nargs="...", metavar="[COMMAND] [ARG...]")  # argparse.REMAINDER


def _kv_list(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        if not key:
            raise UsageError(f"invalid {what}: {value!r}")
        out[key] = val
    return out


def env_list(ns: argparse.Namespace, environ: Mapping[str, str]) -> list[str]:
    env: list[str] = []
    lines: list[str] = []
    for path in ns.env_file:
        try:
            with open(path) as f:
                lines += [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
        except OSError as exc:
            raise UsageError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}")
    for item in [*lines, *ns.env]:
        if "=" in item:
            env.append(item)
        elif item in environ:
            env.append(f"{item}={environ[item]}")
    return env


def _ports(ns: argparse.Namespace) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for value in ns.expose:
        port, _, proto = value.partition("/")
        lo, _, hi = port.partition("-")
        for n in range(int(lo), int(hi or lo) + 1):
            exposed[f"{n}/{proto or 'tcp'}"] = {}
    for value in ns.publish:
        spec, _, proto = value.partition("/")
        proto = proto or "tcp"
        if spec.startswith("["):  # [ipv6]:host:container
            end = spec.index("]")
            ip, rest = spec[1:end], spec[end + 2:]
            parts = [ip, *rest.split(":")]
        else:
            parts = spec.split(":")
        if len(parts) == 1:
            ip, host, cport = "", "", parts[0]
        elif len(parts) == 2:
            ip, host, cport = "", parts[0], parts[1]
        elif len(parts) == 3:
            ip, host, cport = parts
        else:
            raise UsageError(f"invalid publish spec: {value}")
        clo, _, chi = cport.partition("-")
        if not clo.isdigit() or (chi and not chi.isdigit()):
            raise UsageError(f'invalid containerPort: {cport}')
        hlo, _, hhi = host.partition("-")
        count = int(chi or clo) - int(clo) + 1
        for i in range(count):
            key = f"{int(clo) + i}/{proto}"
            exposed[key] = {}
            hp = ""
            if hlo:
                hp = str(int(hlo) + i) if (hhi or count > 1) else hlo
                if hhi and count == 1:
                    hp = host
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": hp})
    return exposed, bindings


def _mounts(values: list[str]) -> list[dict[str, Any]]:
    mounts = []
    for value in values:
        m: dict[str, Any] = {"Type": "volume"}
        for field in value.split(","):
            key, eq, val = field.partition("=")
            key = key.strip().lower()
            if key == "type":
                m["Type"] = val
            elif key in ("source", "src"):
                m["Source"] = val
            elif key in ("target", "destination", "dst"):
                m["Target"] = val
            elif key in ("readonly", "ro"):
                m["ReadOnly"] = (not eq) or val.lower() in ("1", "true")
            elif key == "bind-propagation":
                m.setdefault("BindOptions", {})["Propagation"] = val
            elif key == "volume-nocopy":
                m.setdefault("VolumeOptions", {})["NoCopy"] = (not eq) or val == "true"
            elif key == "volume-label":
                k, _, v = val.partition("=")
                m.setdefault("VolumeOptions", {}).setdefault("Labels", {})[k] = v
            elif key == "tmpfs-size":
                m.setdefault("TmpfsOptions", {})["SizeBytes"] = parse_bytes(val)
            elif key == "tmpfs-mode":
                m.setdefault("TmpfsOptions", {})["Mode"] = int(val, 8)
            else:
                raise UsageError(f"unexpected key '{key}' in '{value}'")
        if "Target" not in m:
            raise UsageError("target is required")
        if m["Type"] == "bind" and m.get("Source") and not os.path.isabs(m["Source"]):
            m["Source"] = os.path.abspath(m["Source"])
        mounts.append(m)
    return mounts


def _healthcheck(ns: argparse.Namespace) -> dict[str, Any] | None:
    if ns.no_healthcheck:
        return {"Test": ["NONE"]}
    hc: dict[str, Any] = {}
    if ns.health_cmd:
        hc["Test"] = ["CMD-SHELL", ns.health_cmd]
    if ns.health_interval:
        hc["Interval"] = parse_duration(ns.health_interval)
    if ns.health_timeout:
        hc["Timeout"] = parse_duration(ns.health_timeout)
    if ns.health_start_period:
        hc["StartPeriod"] = parse_duration(ns.health_start_period)
    if ns.health_retries is not None:
        hc["Retries"] = ns.health_retries
    return hc or None


def build_create(ns: argparse.Namespace, environ: Mapping[str, str], *,
                 detach: bool) -> dict[str, Any]:
    """The create body for parsed run/create flags."""
    attach = {s.lower() for s in ns.attach or []}
    if detach and attach:
        raise UsageError("Conflicting options: -a and -d", "run")
    if not attach and not detach:
        attach = {"stdout", "stderr"} | ({"stdin"} if ns.interactive else set())
    exposed, port_bindings = _ports(ns)
    binds: list[str] = []
    volumes: dict[str, Any] = {}
    for value in ns.volume:
        if ":" in value and not value.startswith(":"):
            source, _, rest = value.partition(":")
            if source.startswith("."):  # like docker 23+: ./dir is a bind of an absolute path
                value = f"{os.path.abspath(source)}:{rest}"
            binds.append(value)
        else:
            volumes[value] = {}
    tmpfs = {}
    for value in ns.tmpfs:
        path, _, opts = value.partition(":")
        tmpfs[path] = opts
    ulimits = []
    for value in ns.ulimit:
        name, _, limits = value.partition("=")
        soft, _, hard = limits.partition(":")
        ulimits.append({"Name": name, "Soft": int(soft), "Hard": int(hard or soft)})
    devices = []
    for value in ns.device:
        parts = value.split(":")
        devices.append({"PathOnHost": parts[0],
                        "PathInContainer": parts[1] if len(parts) > 1 else parts[0],
                        "CgroupPermissions": parts[2] if len(parts) > 2 else "rwm"})
    network = ns.network or "default"
    host_config: dict[str, Any] = {
        "Binds": binds or None,
        "Mounts": _mounts(ns.mount) or None,
        "PortBindings": port_bindings,
        "PublishAllPorts": ns.publish_all,
        "NetworkMode": network,
        "RestartPolicy": parse_restart(ns.restart),
        "AutoRemove": ns.rm,
        "VolumesFrom": ns.volumes_from or None,
        "CapAdd": ns.cap_add or None,
        "CapDrop": ns.cap_drop or None,
        "Privileged": ns.privileged,
        "ReadonlyRootfs": ns.read_only,
        "Tmpfs": tmpfs or None,
        "ExtraHosts": ns.add_host or None,
        "Dns": ns.dns,
        "DnsSearch": ns.dns_search,
        "DnsOptions": ns.dns_option,
        "SecurityOpt": ns.security_opt or None,
        "GroupAdd": ns.group_add or None,
        "Sysctls": _kv_list(ns.sysctl, "sysctl") or None,
        "Ulimits": ulimits or None,
        "Devices": devices,
        "Memory": parse_bytes(ns.memory) if ns.memory else 0,
        "MemoryReservation": parse_bytes(ns.memory_reservation) if ns.memory_reservation else 0,
        "MemorySwap": (-1 if ns.memory_swap == "-1" else parse_bytes(ns.memory_swap))
        if ns.memory_swap else 0,
        "NanoCpus": parse_cpus(ns.cpus) if ns.cpus else 0,
        "CpuShares": ns.cpu_shares or 0,
        "CpusetCpus": ns.cpuset_cpus or "",
        "PidsLimit": ns.pids_limit,
        "OomKillDisable": ns.oom_kill_disable,
        "ShmSize": parse_bytes(ns.shm_size) if ns.shm_size else 0,
        "IpcMode": ns.ipc or "",
        "PidMode": ns.pid or "",
        "UTSMode": ns.uts or "",
        "UsernsMode": ns.userns or "",
        "CgroupnsMode": ns.cgroupns or "",
        "CgroupParent": ns.cgroup_parent or "",
        "Runtime": ns.runtime or "",
        "LogConfig": {"Type": ns.log_driver or "", "Config": _kv_list(ns.log_opt, "log-opt")},
    }
    if ns.init:
        host_config["Init"] = True
    labels = {}
    for value in ns.label:
        key, _, val = value.partition("=")
        labels[key] = val
    config: dict[str, Any] = {
        "Hostname": ns.hostname or "",
        "Domainname": ns.domainname or "",
        "User": ns.user or "",
        "AttachStdin": "stdin" in attach,
        "AttachStdout": "stdout" in attach,
        "AttachStderr": "stderr" in attach,
        "ExposedPorts": exposed or None,
        "Tty": ns.tty,
        "OpenStdin": ns.interactive,
        "StdinOnce": ns.interactive and "stdin" in attach,
        "Env": env_list(ns, environ),
        "Cmd": ns.command or None,
        "Image": ns.image,
        "Volumes": volumes or None,
        "WorkingDir": ns.workdir or "",
        "Entrypoint": None if ns.entrypoint is None else [ns.entrypoint],
        "Labels": labels,
        "HostConfig": host_config,
    }
    if ns.mac_address:
        config["MacAddress"] = ns.mac_address
    hc = _healthcheck(ns)
    if hc:
        config["Healthcheck"] = hc
    if ns.stop_signal:
        config["StopSignal"] = ns.stop_signal
    if ns.stop_timeout is not None:
        config["StopTimeout"] = ns.stop_timeout
    endpoint: dict[str, Any] = {}
    if ns.network_alias:
        endpoint["Aliases"] = ns.network_alias
    if ns.ip:
        endpoint["IPAMConfig"] = {"IPv4Address": ns.ip}
    if endpoint:
        config["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint}}
    return config
