"""/volumes: create, list, inspect, remove, prune (local driver)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from dockyard.api import shapes
from dockyard.api.app import Routes, engine_of, filters, json_body, qbool
from dockyard.errors import DockyardError, InvalidArgument


def _match(engine: Any, v: Any, flt: dict[str, list[str]]) -> bool:
    for key, values in flt.items():
        if key == "name" and not any(x in v.name for x in values):
            return False
        if key == "driver" and v.driver not in values:
            return False
        if key == "dangling":
            dangling = not engine.containers.volume_users(v.name)
            if (values[0].lower() in ("1", "true")) != dangling:
                return False
        if key == "label":
            for item in values:
                k, sep, val = item.partition("=")
                if k not in v.labels or (sep and v.labels[k] != val):
                    return False
    return True


async def list_volumes(request: web.Request) -> web.Response:
    engine = engine_of(request)
    flt = filters(request)
    vols = [v for v in engine.volumes.list() if _match(engine, v, flt)]
    return web.json_response({"Volumes": [shapes.volume(v) for v in vols], "Warnings": []})


async def create(request: web.Request) -> web.Response:
    engine = engine_of(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidArgument("invalid volume config")
    v = engine.volumes.create(body.get("Name") or None, driver=body.get("Driver") or "local",
                              labels=body.get("Labels") or {}, options=body.get("DriverOpts") or {})
    engine.events.publish("volume", "create", v.name, driver=v.driver)
    return web.json_response(shapes.volume(v), status=201)


async def inspect(request: web.Request) -> web.Response:
    engine = engine_of(request)
    return web.json_response(shapes.volume(engine.volumes.get(request.match_info["name"])))


async def remove(request: web.Request) -> web.Response:
    engine = engine_of(request)
    name = request.match_info["name"]
    users = engine.containers.volume_users(name)
    if qbool(request, "force") and not engine.volumes.exists(name):
        return web.Response(status=204)
    engine.volumes.remove(name, in_use_by=users)
    engine.events.publish("volume", "destroy", name, driver="local")
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    engine = engine_of(request)
    flt = filters(request)
    # API 1.41 prunes every unused volume; the "all" filter (1.42+) narrows it to anonymous ones
    all_ = (flt.pop("all", ["true"])[0].lower() in ("1", "true"))
    deleted, reclaimed = [], 0
    for v in engine.volumes.list():
        if engine.containers.volume_users(v.name) or not _match(engine, v, flt):
            continue
        if not all_ and not v.anonymous:
            continue
        size = await asyncio.to_thread(engine.volumes.size, v)
        try:
            engine.volumes.remove(v.name)
        except DockyardError:
            continue
        deleted.append(v.name)
        reclaimed += size
    engine.events.publish("volume", "prune", "", reclaimed=str(reclaimed))
    return web.json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


def register(routes: Routes) -> None:
    routes.get("/volumes", list_volumes)
    routes.post("/volumes/create", create)
    routes.post("/volumes/prune", prune)
    routes.get("/volumes/{name}", inspect)
    routes.delete("/volumes/{name}", remove)


__all__ = ["register"]
