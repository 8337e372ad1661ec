"""/networks: list, inspect, create, remove, connect, disconnect, prune (bridge driver)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dockyard.api import netshapes
from dockyard.api.app import Routes, engine_of, filters, json_body
from dockyard.errors import InvalidArgument, NotFound, Unavailable


def _service(request: web.Request) -> Any:
    svc = getattr(engine_of(request), "networks", None)
    if svc is None:
        raise Unavailable("networking is not available on this daemon")
    return svc


def _names(request: web.Request) -> dict[str, str]:
    return {cid: c.name for cid, c in engine_of(request).containers.containers.items()}


def _match(net: Any, flt: dict[str, list[str]]) -> bool:
    for key, values in flt.items():
        if key == "name" and not any(v in net.name for v in values):
            return False
        if key == "id" and not any(net.id.startswith(v) for v in values):
            return False
        if key == "driver" and net.driver not in values:
            return False
        if key == "scope" and netshapes.SCOPE not in values:
            return False
        if key == "type":
            kind = "builtin" if net.predefined else "custom"
            if kind not in values:
                return False
        if key == "dangling":
            dangling = not net.endpoints and not net.predefined
            if (values[0].lower() in ("1", "true")) != dangling:
                return False
        if key == "label":
            for item in values:
                k, sep, val = item.partition("=")
                if k not in net.labels or (sep and net.labels[k] != val):
                    return False
    return True


async def list_networks(request: web.Request) -> web.Response:
    svc = _service(request)
    flt = filters(request)
    nets = [n for n in svc.list() if _match(n, flt)]
    names = _names(request)
    return web.json_response([netshapes.network_json(n, names) for n in nets])


async def inspect(request: web.Request) -> web.Response:
    svc = _service(request)
    net = svc.get(request.match_info["id"])
    return web.json_response(netshapes.network_json(net, _names(request)))


async def create(request: web.Request) -> web.Response:
    svc = _service(request)
    body = await json_body(request, required=True)
    if not isinstance(body, dict) or not body.get("Name"):
        raise InvalidArgument("network name must not be empty")
    ipam = body.get("IPAM") or {}
    if (ipam.get("Driver") or "default") != "default":
        raise NotFound(f"plugin \"{ipam['Driver']}\" not found")
    net = await svc.create(
        str(body["Name"]), driver=body.get("Driver") or "bridge",
        internal=bool(body.get("Internal")), labels=body.get("Labels") or {},
        options=body.get("Options") or {}, enable_ipv6=bool(body.get("EnableIPv6")),
        ipam=[dict(e) for e in ipam.get("Config") or []])
    return web.json_response({"Id": net.id, "Warning": ""}, status=201)


async def remove(request: web.Request) -> web.Response:
    await _service(request).remove(request.match_info["id"])
    return web.Response(status=204)


async def connect(request: web.Request) -> web.Response:
    svc = _service(request)
    body = await json_body(request, required=True)
    c = engine_of(request).containers.get(str(body.get("Container") or ""))
    ep = body.get("EndpointConfig") or {}
    ipam = ep.get("IPAMConfig") or {}
    await svc.connect(c, request.match_info["id"], aliases=ep.get("Aliases") or [],
                      ip=ipam.get("IPv4Address") or None)
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    svc = _service(request)
    body = await json_body(request, required=True)
    c = engine_of(request).containers.get(str(body.get("Container") or ""))
    await svc.disconnect(c, request.match_info["id"], force=bool(body.get("Force")))
    return web.Response(status=200)


async def prune(request: web.Request) -> web.Response:
    svc = _service(request)
    flt = filters(request)
    labels: dict[str, str | None] = {}
    for item in flt.get("label", []):
        k, sep, v = item.partition("=")
        labels[k] = v if sep else None
    removed = await svc.prune(labels or None)
    return web.json_response({"NetworksDeleted": removed or None})


def register(routes: Routes) -> None:
    routes.get("/networks", list_networks)
    routes.post("/networks/create", create)
    routes.post("/networks/prune", prune)
    routes.get("/networks/{id}", inspect)
    routes.delete("/networks/{id}", remove)
    routes.post("/networks/{id}/connect", connect)
    routes.post("/networks/{id}/disconnect", disconnect)


__all__ = ["register"]
