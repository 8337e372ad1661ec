"""Docker's JSON shapes, built from the daemon's snake_case records (compare with
../shared/reference/dockerd-container-inspect.json)."""

from __future__ import annotations

import calendar
import os
import time
from typing import Any

from dockyard.units import human_duration

HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
    "CgroupnsMode": "host", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
    "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
    "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None,
    "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864, "Runtime": "runc", "ConsoleSize": [0, 0],
    "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
    "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
    "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None,
    "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0,
    "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": [],
    "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    "MaskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
    "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
}
CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts",
               "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "Image", "Volumes", "WorkingDir",
               "Entrypoint", "OnBuild", "Labels", "StopSignal", "StopTimeout")
CONFIG_DEFAULTS: dict[str, Any] = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
                                   "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
                                   "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
                                   "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": {}}


def container_config(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(CONFIG_DEFAULTS)
    for key in CONFIG_KEYS:
        if key in config and config[key] is not None:
            out[key] = config[key]
        elif key in ("ExposedPorts", "Healthcheck", "StopSignal", "StopTimeout"):
            out.pop(key, None)
    return out


def host_config(hc: dict[str, Any]) -> dict[str, Any]:
    out = dict(HOST_CONFIG_DEFAULTS)
    for key, value in hc.items():
        if value is not None or key in out:
            out[key] = value if value is not None else out.get(key)
    out.pop("GwPriority", None)
    return out


def mounts(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for mp in points:
        m = {"Type": mp["Type"], "Source": mp.get("Source", ""), "Destination": mp["Destination"],
             "Mode": mp.get("Mode", ""), "RW": bool(mp.get("RW", True)), "Propagation": mp.get("Propagation", "")}
        if mp["Type"] == "volume":
            m = {"Type": "volume", "Name": mp.get("Name", ""), **{k: v for k, v in m.items() if k != "Type"},
                 "Driver": mp.get("Driver", "local")}
        out.append(m)
    return out


def network_settings(c: Any, exec_root: str) -> dict[str, Any]:
    mode = c.host_config.get("NetworkMode") or "default"
    net = getattr(c, "network", None) or {}
    if net and hasattr(net, "endpoints"):  # the network service's live view (network engineer)
        from dockyard.api.netshapes import container_network_settings

        return container_network_settings(c, net)
    # no network service (networking unavailable): the network the settings name, as dockerd
    # shows a created container's
    name = "bridge" if mode in ("default", "bridge") else mode
    networks: dict[str, Any] = {} if name.startswith("container:") else {name: {
        "IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}}
    running = c.state.status in ("running", "paused")
    return {"Bridge": "", "SandboxID": c.id if running else "", "HairpinMode": False, "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": f"/proc/{c.state.pid}/ns/net" if running else "",
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "MacAddress": "", "Networks": networks}


def container_inspect(c: Any, data_root: str, exec_root: str, size: tuple[int, int] | None = None) -> dict[str, Any]:
    d = os.path.join(data_root, "containers", c.id)
    st = c.state
    state: dict[str, Any] = {
        "Status": st.status, "Running": st.status in ("running", "paused"), "Paused": st.status == "paused",
        "Restarting": st.status == "restarting", "OOMKilled": st.oom_killed, "Dead": st.status == "dead",
        "Pid": st.pid, "ExitCode": st.exit_code, "Error": st.error, "StartedAt": st.started_at,
        "FinishedAt": st.finished_at}
    if c.health is not None:
        state["Health"] = c.health
    out = {
        "Id": c.id, "Created": c.created, "Path": c.path, "Args": c.args, "State": state, "Image": c.image_id,
        "ResolvConfPath": os.path.join(d, "resolv.conf"), "HostnamePath": os.path.join(d, "hostname"),
        "HostsPath": os.path.join(d, "hosts"), "LogPath": os.path.join(d, f"{c.id}-json.log"),
        "Name": "/" + c.name, "RestartCount": c.restart_count, "Driver": c.driver, "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": list(c.exec_ids) or None,
        "HostConfig": host_config(c.host_config),
        "GraphDriver": {"Data": c.graph_driver or None, "Name": c.driver},
        "Mounts": mounts(c.mount_points), "Config": container_config(c.config),
        "NetworkSettings": network_settings(c, exec_root)}
    if size is not None:
        out["SizeRw"], out["SizeRootFs"] = size
    return out


def _unix(rfc3339: str) -> int:
    try:
        return calendar.timegm(time.strptime(rfc3339[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0


def status_text(c: Any) -> str:
    st = c.state
    if st.status == "created":
        return "Created"
    if st.status in ("running", "paused"):
        up = "Up " + human_duration(time.time() - _unix(st.started_at))
        if c.health is not None:
            h = c.health.get("Status")
            up += " (health: starting)" if h == "starting" else f" ({h})"
        return up + (" (Paused)" if st.status == "paused" else "")
    if st.status == "restarting":
        return f"Restarting ({st.exit_code}) " + human_duration(time.time() - _unix(st.finished_at)) + " ago"
    if st.status == "removing":
        return "Removal In Progress"
    if st.status == "dead":
        return "Dead"
    if st.finished_at.startswith("0001"):
        return "Created"
    return f"Exited ({st.exit_code}) " + human_duration(time.time() - _unix(st.finished_at)) + " ago"


def _ports(c: Any) -> list[dict[str, Any]]:
    net = getattr(c, "network", None)
    if net is None or not hasattr(net, "ports"):
        return []
    from dockyard.api.netshapes import port_summary

    return port_summary(c, net)


def container_summary(c: Any, size: tuple[int, int] | None = None) -> dict[str, Any]:
    cmd = " ".join([c.path, *c.args]) if c.path else ""
    out = {"Id": c.id, "Names": ["/" + c.name], "Image": c.config.get("Image", ""), "ImageID": c.image_id,
           "Command": cmd, "Created": _unix(c.created), "Ports": _ports(c), "Labels": c.config.get("Labels") or {},
           "State": c.state.status, "Status": status_text(c),
           "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode") or "default"},
           "NetworkSettings": {"Networks": network_settings(c, "")["Networks"]}, "Mounts": mounts(c.mount_points)}
    if size is not None:
        out["SizeRw"], out["SizeRootFs"] = size
    return out


def image_summary(img: Any, containers: int = -1) -> dict[str, Any]:
    return {"Id": img.id, "ParentId": img.parent or "", "RepoTags": list(img.repo_tags),
            "RepoDigests": list(img.repo_digests), "Created": img.created_unix, "Size": img.size,
            "VirtualSize": img.size, "SharedSize": -1, "Labels": img.labels or None, "Containers": containers}


def image_inspect(img: Any, driver: str = "overlay2") -> dict[str, Any]:
    cfg = img.config
    inner = dict(cfg.get("config") or {})
    container_cfg = dict(CONFIG_DEFAULTS)
    container_cfg.update(inner)
    return {
        "Id": img.id, "RepoTags": list(img.repo_tags), "RepoDigests": list(img.repo_digests),
        "Parent": img.parent or "", "Comment": cfg.get("comment", ""), "Created": img.created or "",
        "Container": cfg.get("container", ""), "ContainerConfig": cfg.get("container_config") or container_cfg,
        "DockerVersion": cfg.get("docker_version", ""), "Author": cfg.get("author", ""), "Config": container_cfg,
        "Architecture": cfg.get("architecture", "amd64"), "Os": cfg.get("os", "linux"),
        **({"Variant": cfg["variant"]} if cfg.get("variant") else {}),
        "Size": img.size, "VirtualSize": img.size,
        "GraphDriver": {"Data": None, "Name": driver},
        "RootFS": {"Type": "layers", "Layers": list(img.layers)},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def volume(v: Any, usage: tuple[int, int] | None = None) -> dict[str, Any]:
    out = {"CreatedAt": v.created_at, "Driver": v.driver, "Labels": v.labels or None, "Mountpoint": v.mountpoint,
           "Name": v.name, "Options": v.options or None, "Scope": "local"}
    if usage is not None:
        out["UsageData"] = {"Size": usage[0], "RefCount": usage[1]}
    return out


def event(ev: Any) -> dict[str, Any]:
    secs = ev.time_nano // 1_000_000_000
    out: dict[str, Any] = {"Type": ev.type, "Action": ev.action,
                           "Actor": {"ID": ev.actor_id, "Attributes": dict(ev.attributes)},
                           "scope": "local", "time": secs, "timeNano": ev.time_nano}
    if ev.type in ("container", "image"):
        out = {"status": ev.action, "id": ev.actor_id, **({"from": ev.attributes["image"]}
                                                          if "image" in ev.attributes else {}), **out}
    return out


__all__ = ["container_inspect", "container_summary", "event", "human_duration", "image_inspect",
           "image_summary", "volume"]
