"""/containers/...: create, start, attach, wait, logs, stop, kill, rm, list, inspect, ..."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any

from aiohttp import web

from dockyard.api import shapes
from dockyard.api.app import Routes, engine_of, filters, json_body, qbool, qint
from dockyard.api.framing import frame
from dockyard.api.hijack import hijack, release
from dockyard.errors import InvalidArgument

RUNNING_OR_NOT = {"not-running", "next-exit", "removed", ""}


def _svc(request: web.Request) -> Any:
    return engine_of(request).containers


def _no_content() -> web.Response:
    return web.Response(status=204)


async def list_containers(request: web.Request) -> web.Response:
    svc = _svc(request)
    size = qbool(request, "size")
    cs = svc.list(all_=qbool(request, "all"), limit=qint(request, "limit", -1) or -1, filters=filters(request))
    sizes = [await rootfs_size(engine_of(request), c.id) if size else None for c in cs]
    return web.json_response([shapes.container_summary(c, sz) for c, sz in zip(cs, sizes, strict=True)])


async def rootfs_size(engine: Any, cid: str) -> tuple[int, int]:
    """``(SizeRw, SizeRootFs)``; (0, 0) when the store cannot tell."""
    try:
        sizes = await asyncio.to_thread(engine.images.rootfs_size, cid)
        return int(sizes[0]), int(sizes[1])
    except Exception:
        return 0, 0


def _check_types(body: Any) -> None:
    if not isinstance(body, dict):
        raise InvalidArgument("json: cannot unmarshal into Go value of type container.Config")
    typed = {"Cmd": list, "Entrypoint": list, "Env": list, "Labels": dict, "Volumes": dict, "ExposedPorts": dict,
             "Tty": bool, "OpenStdin": bool, "StdinOnce": bool, "AttachStdin": bool, "AttachStdout": bool,
             "AttachStderr": bool, "User": str, "WorkingDir": str, "Hostname": str, "Image": str,
             "HostConfig": dict, "StopSignal": str}
    for key, typ in typed.items():
        value = body.get(key)
        if value is None:
            continue
        if key in ("Cmd", "Entrypoint") and isinstance(value, str):
            body[key] = [value]  # Docker's strslice accepts a plain string
            continue
        if not isinstance(value, typ):
            raise InvalidArgument(f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                                  f"Config.{key} of type {typ.__name__}")
    for key in ("Cmd", "Entrypoint", "Env"):
        if any(not isinstance(x, str) for x in body.get(key) or []):
            raise InvalidArgument(f"json: cannot unmarshal number into Go struct field Config.{key} of type string")
    if any(not isinstance(v, str) for v in (body.get("Labels") or {}).values()):
        raise InvalidArgument("json: cannot unmarshal into Go struct field Config.Labels of type string")
    hc = body.get("HostConfig") or {}
    for key in ("Binds", "CapAdd", "CapDrop", "Dns", "ExtraHosts", "VolumesFrom", "Mounts", "SecurityOpt"):
        if hc.get(key) is not None and not isinstance(hc[key], list):
            raise InvalidArgument(f"json: cannot unmarshal into Go struct field HostConfig.{key} of type []string")
    if hc.get("RestartPolicy") is not None and not isinstance(hc["RestartPolicy"], dict):
        raise InvalidArgument("json: cannot unmarshal into Go struct field HostConfig.RestartPolicy")


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, required=True)
    _check_types(body)
    c, warnings = await _svc(request).create(request.query.get("name"), body, request.query.get("platform", ""))
    return web.json_response({"Id": c.id, "Warnings": warnings}, status=201)


async def inspect(request: web.Request) -> web.Response:
    engine = engine_of(request)
    c = engine.containers.get(request.match_info["id"])
    size = await rootfs_size(engine, c.id) if qbool(request, "size") else None
    return web.json_response(shapes.container_inspect(c, engine.cfg.data_root, engine.cfg.exec_root, size))


async def start(request: web.Request) -> web.Response:
    await _svc(request).start(request.match_info["id"])
    return _no_content()


async def stop(request: web.Request) -> web.Response:
    await _svc(request).stop(request.match_info["id"], qint(request, "t"), request.query.get("signal"))
    return _no_content()


async def restart(request: web.Request) -> web.Response:
    await _svc(request).restart(request.match_info["id"], qint(request, "t"), request.query.get("signal"))
    return _no_content()


async def kill(request: web.Request) -> web.Response:
    await _svc(request).kill(request.match_info["id"], request.query.get("signal") or "SIGKILL")
    return _no_content()


async def remove(request: web.Request) -> web.Response:
    await _svc(request).remove(request.match_info["id"], force=qbool(request, "force"), volumes=qbool(request, "v"))
    return _no_content()


async def wait(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    condition = request.query.get("condition", "not-running")
    if condition not in RUNNING_OR_NOT:
        raise InvalidArgument(f"invalid condition: {condition!r}")
    c = svc.get(request.match_info["id"])
    waiter = asyncio.ensure_future(svc.wait(c.id, condition))
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)  # headers now; the body comes at exit (the CLI starts meanwhile)
    try:
        done = await waiter
    except asyncio.CancelledError:
        waiter.cancel()
        raise
    err = {"Message": done.state.error} if done.state.error else None
    with contextlib.suppress(ConnectionError):
        await resp.write(json.dumps({"Error": err, "StatusCode": done.state.exit_code}).encode() + b"\n")
        await resp.write_eof()
    return resp


async def attach(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    want_in, want_out, want_err = qbool(request, "stdin"), qbool(request, "stdout"), qbool(request, "stderr")
    keys = parse_detach_keys(request.query.get("detachKeys"))
    c, stream = await svc.attach(request.match_info["id"], stdin=want_in, stdout=want_out, stderr=want_err)
    h = await hijack(request)
    tty = stream.tty
    if qbool(request, "logs"):
        _, lines = await svc.logs(c.id, follow_=False, stdout=want_out, stderr=want_err, since=0, until=0, tail=None)
        async for line in lines:
            await h.write(line.data if tty else frame(1 if line.stream == "stdout" else 2, line.data))
    if not qbool(request, "stream", True):
        h.close()
        release(h)
        return h.response
    await pump(h, stream, stdin=want_in and bool(c.config.get("OpenStdin")), detach_keys=keys)
    return h.response


DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's ``--detach-keys``: ``ctrl-<c>`` or single characters, comma separated."""
    spec = spec or DEFAULT_DETACH_KEYS
    out = bytearray()
    for part in spec.split(","):
        if len(part) == 1:
            out.append(ord(part))
        elif part.startswith("ctrl-") and len(part) == 6 and (part[5].isalpha() or part[5] in "@[\\]^_"):
            out.append(ord(part[5].upper()) & 0x1F)
        else:
            raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class DetachScanner:
    """Splits client stdin at the detach sequence (which may straddle reads)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.pending = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, detached?)"""
        buf = self.pending + data
        self.pending = b""
        idx = buf.find(self.keys)
        if idx >= 0:
            return buf[:idx], True
        for k in range(len(self.keys) - 1, 0, -1):
            if buf.endswith(self.keys[:k]):
                self.pending = buf[-k:]
                return buf[:-k], False
        return buf, False


async def pump(h: Any, stream: Any, *, stdin: bool, detach_keys: bytes = b"") -> None:
    """Client stdin -> monitor, monitor frames -> client, until the stream's END (or the
    client types the detach keys: the container keeps running)."""
    scanner = DetachScanner(detach_keys) if stdin and detach_keys else None

    async def feed() -> None:
        while True:
            data = await h.read()
            if data is None:
                break
            if not stdin:
                continue
            if scanner is not None:
                data, detached = scanner.feed(data)
                if data:
                    stream.feed_stdin(data)
                if detached:
                    stream.close()  # ends frames(): the attach is over, the process is not
                    return
                continue
            stream.feed_stdin(data)
        if stdin:
            stream.close_stdin()

    feeder = asyncio.create_task(feed())
    h.tasks = {feeder}  # strong reference for the connection's lifetime
    try:
        async for kind, payload in stream.frames():
            if kind == 3:
                if isinstance(payload, dict) and payload.get("error"):
                    msg = f"OCI runtime exec failed: {payload['error']}: unknown\r\n".encode()
                    await h.write(msg if stream.tty else frame(2, msg))
                break
            await h.write(payload if stream.tty else frame(kind, payload))
            if h.closed:
                break
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        stream.close()
        h.close()
        release(h)


async def resize(request: web.Request) -> web.Response:
    h, w = qint(request, "h", 0) or 0, qint(request, "w", 0) or 0
    await _svc(request).resize(request.match_info["id"], h, w)
    return web.Response(status=200)


def _since(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        return float(value)
    except ValueError:
        from dockyard.daemon.logs import parse_time

        try:
            return parse_time(value)
        except ValueError:
            raise InvalidArgument(f"invalid value for since/until: {value!r}") from None


async def logs(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    out, err = qbool(request, "stdout"), qbool(request, "stderr")
    if not (out or err):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    tail_q = request.query.get("tail", "all")
    tail = None if tail_q in ("all", "") else int(tail_q) if tail_q.lstrip("-").isdigit() else None
    if tail is not None and tail < 0:
        tail = None
    c, lines = await svc.logs(request.match_info["id"], follow_=qbool(request, "follow"), stdout=out, stderr=err,
                              since=_since(request.query.get("since")), until=_since(request.query.get("until")),
                              tail=tail)
    timestamps = qbool(request, "timestamps")
    tty = bool(c.config.get("Tty"))
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    with contextlib.suppress(ConnectionError):
        async for line in lines:
            data = (line.time.encode() + b" " + line.data) if timestamps else line.data
            await resp.write(data if tty else frame(1 if line.stream == "stdout" else 2, data))
        await resp.write_eof()
    return resp


async def top(request: web.Request) -> web.Response:
    return web.json_response(await _svc(request).top(request.match_info["id"], request.query.get("ps_args", "")))


async def rename(request: web.Request) -> web.Response:
    await _svc(request).rename(request.match_info["id"], request.query.get("name", ""))
    return _no_content()


async def pause(request: web.Request) -> web.Response:
    await _svc(request).pause(request.match_info["id"])
    return _no_content()


async def unpause(request: web.Request) -> web.Response:
    await _svc(request).unpause(request.match_info["id"])
    return _no_content()


async def update(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidArgument("invalid update body")
    warnings = await _svc(request).update(request.match_info["id"], body)
    return web.json_response({"Warnings": warnings})


async def changes(request: web.Request) -> web.Response:
    engine = engine_of(request)
    c = engine.containers.get(request.match_info["id"])
    kinds = {"C": 0, "A": 1, "D": 2, "modified": 0, "added": 1, "deleted": 2}
    items = await asyncio.to_thread(engine.images.changes, c.id)
    return web.json_response([{"Path": path, "Kind": kinds.get(kind, kind) if isinstance(kind, str) else kind}
                              for kind, path in items] or None)


async def export(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    c = engine.containers.get(request.match_info["id"])
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await stream_from_thread(resp, lambda out: engine.images.export_rootfs(c.id, out))
    await resp.write_eof()
    return resp


class _QueueWriter:
    """A file-like sink for a worker thread, feeding the event loop through a bounded queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]) -> None:
        self.loop = loop
        self.queue = queue

    def write(self, data: bytes) -> int:
        if data:
            asyncio.run_coroutine_threadsafe(self.queue.put(bytes(data)), self.loop).result()
        return len(data)

    def flush(self) -> None:
        pass


async def stream_from_thread(resp: web.StreamResponse, produce: Any) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)
    writer = _QueueWriter(loop, queue)

    def run() -> None:
        try:
            produce(writer)
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    task = asyncio.ensure_future(asyncio.to_thread(run))
    while True:
        chunk = await queue.get()
        if chunk is None:
            break
        await resp.write(chunk)
    await task


async def stats(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    c = svc.get(request.match_info["id"])
    stream = qbool(request, "stream", True) and not qbool(request, "one-shot")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    prev: dict[str, Any] | None = None
    with contextlib.suppress(ConnectionError):
        while True:
            cur = await asyncio.to_thread(svc.stats, c)
            doc = _stats_doc(c, cur, prev)
            await resp.write(json.dumps(doc).encode() + b"\n")
            if not stream or not c.state.running:
                break
            prev = doc
            await asyncio.sleep(1)
    await resp.write_eof()
    return resp


def _stats_doc(c: Any, cur: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
    empty_cpu = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                 "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    return {"read": now, "preread": prev["read"] if prev else "0001-01-01T00:00:00Z",
            "pids_stats": cur.get("pids_stats", {}), "blkio_stats": cur.get("blkio_stats", {}),
            "num_procs": 0, "storage_stats": {}, "cpu_stats": cur.get("cpu_stats", empty_cpu),
            "precpu_stats": prev["cpu_stats"] if prev else empty_cpu,
            "memory_stats": cur.get("memory_stats", {}), "name": "/" + c.name, "id": c.id, "networks": {}}


async def prune(request: web.Request) -> web.Response:
    deleted, reclaimed = await _svc(request).prune(filters(request))
    return web.json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})


def _stat_header(st: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(st).encode()).decode()


async def archive_head(request: web.Request) -> web.Response:
    svc = _svc(request)
    st = await svc.archive_stat(request.match_info["id"], request.query.get("path", ""))
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": _stat_header(st)})


async def archive_get(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    cid, path = request.match_info["id"], request.query.get("path", "")
    st = await svc.archive_stat(cid, path)
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar",
                                       "X-Docker-Container-Path-Stat": _stat_header(st)})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await stream_from_thread(resp, lambda out: svc.archive_write(cid, path, out))
    await resp.write_eof()
    return resp


async def archive_put(request: web.Request) -> web.Response:
    svc = _svc(request)
    cid, path = request.match_info["id"], request.query.get("path", "")
    if not path:
        raise InvalidArgument("path is required")
    data = await request.read()
    await svc.archive_extract(cid, path, data, no_overwrite_dir_non_dir=qbool(request, "noOverwriteDirNonDir"))
    return web.Response(status=200)


def register(routes: Routes) -> None:
    routes.get("/containers/json", list_containers)
    routes.post("/containers/create", create)
    routes.post("/containers/prune", prune)
    routes.get("/containers/{id}/json", inspect)
    routes.post("/containers/{id}/start", start)
    routes.post("/containers/{id}/stop", stop)
    routes.post("/containers/{id}/restart", restart)
    routes.post("/containers/{id}/kill", kill)
    routes.post("/containers/{id}/wait", wait)
    routes.post("/containers/{id}/attach", attach)
    routes.post("/containers/{id}/resize", resize)
    routes.get("/containers/{id}/logs", logs)
    routes.get("/containers/{id}/top", top)
    routes.post("/containers/{id}/rename", rename)
    routes.post("/containers/{id}/pause", pause)
    routes.post("/containers/{id}/unpause", unpause)
    routes.post("/containers/{id}/update", update)
    routes.get("/containers/{id}/changes", changes)
    routes.get("/containers/{id}/export", export)
    routes.get("/containers/{id}/stats", stats)
    routes.head("/containers/{id}/archive", archive_head)
    routes.get("/containers/{id}/archive", archive_get)
    routes.put("/containers/{id}/archive", archive_put)
    routes.delete("/containers/{id}", remove)


__all__ = ["DetachScanner", "parse_detach_keys", "pump", "register", "rootfs_size", "stream_from_thread"]
