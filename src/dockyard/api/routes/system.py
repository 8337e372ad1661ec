"""/_ping, /version, /info, /events, /system/df."""

from __future__ import annotations

import asyncio
import json
import platform
import time
from typing import Any

from aiohttp import web

from dockyard.api import shapes, versioning
from dockyard.api.app import Routes, engine_of, filters
from dockyard.daemon import hostinfo
from dockyard.errors import DockyardError, InvalidArgument

GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
           "s390x": "s390x"}
PING_HEADERS = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
                "Builder-Version": "1"}


async def ping(request: web.Request) -> web.Response:
    if request.method == "HEAD":
        return web.Response(status=200, headers=PING_HEADERS, content_type="text/plain", charset="utf-8")
    return web.Response(text="OK", content_type="text/plain", charset="utf-8", headers=PING_HEADERS)


async def version(request: web.Request) -> web.Response:
    engine = engine_of(request)
    arch = GO_ARCH.get(platform.machine(), platform.machine())
    details = {"ApiVersion": versioning.API_VERSION, "Arch": arch, "BuildTime": "", "Experimental": "false",
               "GitCommit": "", "GoVersion": "python" + platform.python_version(),
               "KernelVersion": engine.facts.kernel, "MinAPIVersion": versioning.MIN_API_VERSION, "Os": "linux"}
    return web.json_response({
        "Platform": {"Name": "Dockyard Engine"},
        "Components": [{"Name": "Engine", "Version": versioning.ENGINE_VERSION, "Details": details}],
        "Version": versioning.ENGINE_VERSION, "ApiVersion": versioning.API_VERSION,
        "MinAPIVersion": versioning.MIN_API_VERSION, "GitCommit": "", "GoVersion": details["GoVersion"],
        "Os": "linux", "Arch": arch, "KernelVersion": engine.facts.kernel, "BuildTime": ""})


def _count_images(engine: Any) -> int:
    if engine.images is None:
        return 0
    try:
        return len(engine.images.list())
    except DockyardError:
        return 0


async def info(request: web.Request) -> web.Response:
    engine = engine_of(request)
    cs = list(engine.containers.containers.values())
    running = sum(1 for c in cs if c.state.status == "running")
    paused = sum(1 for c in cs if c.state.status == "paused")
    f = engine.facts
    cfg = engine.cfg
    images = await asyncio.to_thread(_count_images, engine)
    return web.json_response({
        "ID": engine.id, "Containers": len(cs), "ContainersRunning": running, "ContainersPaused": paused,
        "ContainersStopped": len(cs) - running - paused, "Images": images, "Driver": f.storage_driver,
        "DriverStatus": [["Backing Filesystem", f.backing_fs], ["Supports d_type", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": None,
                    "Log": ["json-file", "none"]},
        "MemoryLimit": True, "SwapLimit": f.swap_limit,
        "KernelMemory": False, "KernelMemoryTCP": False,
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True, "PidsLimit": True,
        "IPv4Forwarding": hostinfo.ip_forwarding(),
        "BridgeNfIptables": False, "BridgeNfIp6tables": False, "Debug": cfg.debug,
        "NFd": hostinfo.open_fds(), "OomKillDisable": True, "NGoroutines": len(asyncio.all_tasks()),
        "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z",
        "LoggingDriver": cfg.log_driver, "CgroupDriver": f.cgroup_driver, "CgroupVersion": f.cgroup_version,
        "NEventsListener": len(engine.events.subscribers), "KernelVersion": f.kernel,
        "OperatingSystem": f.os_name, "OSVersion": "", "OSType": "linux", "Architecture": f.arch,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
                           "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {
                               "docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": True, "Official": True}},
                           "Mirrors": []},
        "NCPU": f.ncpu, "MemTotal": f.mem_total, "GenericResources": None, "DockerRootDir": cfg.data_root,
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": f.hostname, "Labels": [],
        "ExperimentalBuild": False, "ServerVersion": versioning.ENGINE_VERSION,
        "Runtimes": {name: {"path": rt.path or "dockyard (built in)"} for name, rt in cfg.runtimes.items()},
        "DefaultRuntime": cfg.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "docker-init",
        "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=default"] + (["name=cgroupns"] if f.cgroup_version == "2" else []),
        "Warnings": [] if engine.images is not None else [f"WARNING: image store unavailable: {engine.image_error}"],
    })


def _parse_ts(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        pass
    from dockyard.daemon.logs import parse_time

    try:
        return parse_time(text)
    except ValueError:
        raise InvalidArgument(f"invalid timestamp {text!r}") from None


def _event_matches(ev: Any, flt: dict[str, list[str]]) -> bool:
    for key, values in flt.items():
        if key == "type" and ev.type not in values:
            return False
        if key == "event" and not any(ev.action == v or ev.action.startswith(v + ":") for v in values):
            return False
        if key in ("container", "image", "volume", "network", "daemon"):
            if ev.type != key and not (key == "image" and ev.attributes.get("image") in values):
                return False
            if ev.type == key and not (ev.actor_id in values or ev.attributes.get("name") in values
                                       or any(ev.actor_id.startswith(v) for v in values)):
                return False
        if key == "label":
            for v in values:
                k, sep, val = v.partition("=")
                if k not in ev.attributes or (sep and ev.attributes[k] != val):
                    return False
    return True


async def events(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    since = _parse_ts(request.query.get("since"))
    until = _parse_ts(request.query.get("until"))
    flt = filters(request)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    queue = engine.events.subscribe()
    try:
        await resp.prepare(request)
        if since:
            for ev in list(engine.events.history):
                if ev.time_nano / 1e9 >= since and (not until or ev.time_nano / 1e9 <= until) and _event_matches(ev, flt):
                    await resp.write(json.dumps(shapes.event(ev)).encode() + b"\n")
        if until and until <= time.time():
            return resp
        while True:
            timeout = (until - time.time()) if until else None
            try:
                ev = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                break
            if _event_matches(ev, flt):
                await resp.write(json.dumps(shapes.event(ev)).encode() + b"\n")
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        engine.events.unsubscribe(queue)
    return resp


async def system_df(request: web.Request) -> web.Response:
    engine = engine_of(request)
    cs = list(engine.containers.containers.values())

    def gather() -> dict[str, Any]:
        imgs = engine.images.list() if engine.images is not None else []
        users: dict[str, int] = {}
        for c in cs:
            users[c.image_id] = users.get(c.image_id, 0) + 1
        layers = sum(i.size for i in imgs)
        vols = []
        for v in engine.volumes.list():
            vols.append(shapes.volume(v, (engine.volumes.size(v), len(engine.containers.volume_users(v.name)))))
        return {"LayersSize": layers, "Images": [shapes.image_summary(i, users.get(i.id, 0)) for i in imgs],
                "Containers": [shapes.container_summary(c, _size(c.id)) for c in cs], "Volumes": vols,
                "BuildCache": []}

    def _size(cid: str) -> tuple[int, int]:
        try:
            rw, root = engine.images.rootfs_size(cid)
            return int(rw), int(root)
        except Exception:
            return 0, 0

    return web.json_response(await asyncio.to_thread(gather))


def register(routes: Routes) -> None:
    routes.get("/_ping", ping)
    routes.head("/_ping", ping)
    routes.get("/version", version)
    routes.get("/info", info)
    routes.get("/events", events)
    routes.get("/system/df", system_df)


__all__ = ["register"]
