"""The aiohttp application: middlewares (versions, errors, headers) and route registration."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dockyard.api import versioning
from dockyard.api.errors import error_response, http_status
from dockyard.errors import DockyardError, InvalidArgument

log = logging.getLogger("dockyard.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_VERSION = web.RequestKey("api_version", str)  # the request's effective API version


class Routes:
    """What a route module registers into: each path is served bare and as ``/v{N}/path``."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)
        self.app.router.add_route(method, r"/v{api_version:[0-9]+\.[0-9]+}" + path, handler)

    def get(self, path: str, handler: Handler) -> None:
        self.add("GET", path, handler)

    def post(self, path: str, handler: Handler) -> None:
        self.add("POST", path, handler)

    def delete(self, path: str, handler: Handler) -> None:
        self.add("DELETE", path, handler)

    def put(self, path: str, handler: Handler) -> None:
        self.add("PUT", path, handler)

    def head(self, path: str, handler: Handler) -> None:
        self.add("HEAD", path, handler)


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        request[API_VERSION] = versioning.check(request.match_info.get("api_version"))
        resp = await handler(request)
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            resp = error_response(exc.status, "page not found" if exc.status == 404 else "method not allowed")
        else:
            raise
    except DockyardError as exc:
        if http_status(exc) >= 500:
            log.warning("%s %s: %s", request.method, request.path, exc)
        resp = error_response(http_status(exc), exc.message)
    except (ValueError, TypeError, KeyError) as exc:
        resp = error_response(400, str(exc))
    except Exception as exc:  # a bug: still answer in Docker's shape
        log.exception("%s %s failed", request.method, request.path)
        resp = error_response(500, str(exc) or type(exc).__name__)
    if not resp.prepared:
        resp.headers.update(versioning.headers())
    return resp


def engine_of(request: web.Request) -> Any:
    return request.app["engine"]


async def json_body(request: web.Request, *, required: bool = False) -> Any:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise InvalidArgument("invalid JSON: request body is empty")
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid character in JSON body: {exc}") from exc


def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    return value.lower() not in ("", "0", "false", "no")


def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {value!r}") from None


def filters(request: web.Request) -> dict[str, list[str]]:
    """Docker's ``filters`` JSON: ``{"key": ["v", ...]}`` or the old ``{"key": {"v": true}}``."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid filter: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidArgument("invalid filter: not an object")
    out: dict[str, list[str]] = {}
    for k, v in value.items():
        if isinstance(v, dict):
            out[k] = [str(x) for x, on in v.items() if on]
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        else:
            raise InvalidArgument(f"invalid filter value for {k!r}")
    return out


def build_app(engine: Any) -> web.Application:
    from dockyard.api.routes import MODULES

    app = web.Application(middlewares=[api_middleware], client_max_size=1 << 40, handler_args={"max_field_size": 1 << 16})
    with warnings.catch_warnings():
        # plain string keys on purpose: route modules of other areas read app["engine"] and
        # install app["image_pull"]; aiohttp only recommends AppKey
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["engine"] = engine
        app["hijacked"] = set()
    routes = Routes(app)
    for module in MODULES:
        module.register(routes)
    return app


__all__ = ["Routes", "build_app", "engine_of", "filters", "json_body", "qbool", "qint"]
