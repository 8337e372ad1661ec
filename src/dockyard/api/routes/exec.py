"""/containers/{id}/exec and /exec/{id}/start|resize|json."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dockyard.api.app import Routes, engine_of, json_body, qint
from dockyard.api.hijack import hijack
from dockyard.api.routes.containers import parse_detach_keys, pump
from dockyard.errors import InvalidArgument


def _svc(request: web.Request) -> Any:
    return engine_of(request).containers


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, required=True)
    if not isinstance(body, dict):
        raise InvalidArgument("invalid exec config")
    if isinstance(body.get("Cmd"), str):
        body["Cmd"] = [body["Cmd"]]
    rec = _svc(request).exec_create(request.match_info["id"], body)
    return web.json_response({"Id": rec.id}, status=201)


async def start(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidArgument("invalid exec start config")
    svc = _svc(request)
    rec = svc.exec_get(request.match_info["id"])
    detach = bool(body.get("Detach"))
    stream = await svc.exec_start(rec.id, tty=body.get("Tty"), detach=detach)
    if detach:
        return web.Response(status=204)
    h = await hijack(request)
    try:
        await pump(h, stream, stdin=bool(rec.config.get("AttachStdin")),
                   detach_keys=parse_detach_keys(rec.config.get("DetachKeys")))
    finally:
        if stream.result is not None:
            svc.exec_finished(rec, stream.result)
    return h.response


async def resize(request: web.Request) -> web.Response:
    await _svc(request).exec_resize(request.match_info["id"], qint(request, "h", 0) or 0, qint(request, "w", 0) or 0)
    return web.Response(status=200)


async def inspect(request: web.Request) -> web.Response:
    svc = _svc(request)
    rec = svc.exec_get(request.match_info["id"])
    cfg = rec.config
    cmd = list(cfg.get("Cmd") or [])
    return web.json_response({
        "CanRemove": False, "ContainerID": rec.container_id, "DetachKeys": cfg.get("DetachKeys", ""),
        "ExitCode": rec.exit_code, "ID": rec.id, "OpenStderr": bool(cfg.get("AttachStderr")),
        "OpenStdin": bool(cfg.get("AttachStdin")), "OpenStdout": bool(cfg.get("AttachStdout")),
        "ProcessConfig": {"arguments": cmd[1:], "entrypoint": cmd[0] if cmd else "",
                          "privileged": bool(cfg.get("Privileged")), "tty": bool(cfg.get("Tty")),
                          "user": cfg.get("User", "")},
        "Running": rec.running, "Pid": rec.pid})


def register(routes: Routes) -> None:
    routes.post("/containers/{id}/exec", create)
    routes.post("/exec/{id}/start", start)
    routes.post("/exec/{id}/resize", resize)
    routes.get("/exec/{id}/json", inspect)


__all__ = ["register"]
