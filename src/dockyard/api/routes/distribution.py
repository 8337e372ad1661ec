"""Registry endpoints: POST /images/create?fromImage= (handed over by the images module as
``app["image_pull"]``), POST /images/{name}/push, POST /auth, GET /images/search.

Pull and push answer ``200 application/json`` with one JSON progress message per line,
separated by ``\\r\\n`` as dockerd does. The response starts with the first message: an error
before that (unknown image, refused credentials) is an ordinary error response with its
status, as the docker CLI expects; after it, the error is a last
``{"errorDetail": {"message": ...}, "error": ...}`` line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from dockyard.api.app import Routes, filters, json_body, qint
from dockyard.daemon.distribution import DistributionService
from dockyard.distribution import AuthConfig
from dockyard.errors import DockyardError, InvalidArgument
from dockyard.oci.reference import parse_reference

SERVICE = web.AppKey("distribution", DistributionService)
_DONE = object()


def _service(request: web.Request) -> DistributionService:
    return request.app[SERVICE]


def registry_auth(request: web.Request) -> AuthConfig | None:
    """Decode ``X-Registry-Auth`` (base64url JSON); absent, ``{}`` or unreadable means none."""
    raw = request.headers.get("X-Registry-Auth", "").strip()
    if not raw:
        return None
    try:
        padded = raw + "=" * (-len(raw) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    auth = AuthConfig.from_docker_json(data)
    return None if auth.empty else auth


async def _stream(
    request: web.Request, work: Callable[[Callable[[dict[str, Any]], None]], Coroutine[Any, Any, Any]]
) -> web.StreamResponse:
    """Run ``work(progress)``; stream its messages; see the module docstring for errors."""
    messages: asyncio.Queue[Any] = asyncio.Queue()
    task: asyncio.Task[Any] = asyncio.create_task(work(messages.put_nowait))
    task.add_done_callback(lambda _t: messages.put_nowait(_DONE))
    resp: web.StreamResponse | None = None
    try:
        while True:
            item = await messages.get()
            if item is _DONE:
                break
            if resp is None:
                resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
                resp.enable_chunked_encoding()
                await resp.prepare(request)
            await resp.write(json.dumps(item, separators=(",", ":")).encode() + b"\r\n")
        exc = task.exception()
        if exc is not None:
            if resp is None:
                raise exc
            message = str(exc) if isinstance(exc, DockyardError) else f"{type(exc).__name__}: {exc}"
            line = {"errorDetail": {"message": message}, "error": message}
            await resp.write(json.dumps(line).encode() + b"\r\n")
    except (ConnectionResetError, asyncio.CancelledError):
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    if resp is None:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
    await resp.write_eof()
    return resp


async def create(request: web.Request) -> web.StreamResponse:
    from_image = request.query.get("fromImage", "")
    if not from_image:
        if request.query.get("fromSrc"):
            raise InvalidArgument("importing with fromSrc is served by the images module")
        raise InvalidArgument("fromImage or fromSrc is required")
    tag = request.query.get("tag", "")
    ref = parse_reference(from_image)
    # no tag anywhere: every tag (docker pull -a); the CLI sends tag=latest otherwise
    all_tags = not tag and ref.tag is None and ref.digest is None
    if tag:
        ref = ref.with_digest(tag) if tag.startswith("sha256:") else ref.with_tag(tag)
    platform = request.query.get("platform", "")
    auth = registry_auth(request)
    service = _service(request)

    async def work(progress: Callable[[dict[str, Any]], None]) -> Any:
        if all_tags:
            return await service.pull_all_tags(str(ref), auth=auth, platform=platform, progress=progress)
        return await service.pull(str(ref), auth=auth, platform=platform, progress=progress)

    return await _stream(request, work)


async def push_image(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    tag = request.query.get("tag", "")
    ref = parse_reference(name)
    if tag:
        ref = ref.with_tag(tag)
    auth = registry_auth(request)
    service = _service(request)

    async def work(progress: Callable[[dict[str, Any]], None]) -> Any:
        return await service.push(str(ref), auth=auth, progress=progress)

    return await _stream(request, work)


async def auth(request: web.Request) -> web.Response:
    body = await json_body(request, required=True)
    if not isinstance(body, dict):
        raise InvalidArgument("invalid auth configuration")
    config = AuthConfig.from_docker_json(body)
    result = await _service(request).login(config)
    return web.json_response({"Status": result.status, "IdentityToken": result.identity_token})


async def search_images(request: web.Request) -> web.Response:
    term = request.query.get("term", "")
    limit = qint(request, "limit", 25) or 25
    wanted = filters(request)
    results = await _service(request).search(term, limit=limit, auth=registry_auth(request))
    if "is-official" in wanted:
        official = wanted["is-official"][-1].lower() == "true"
        results = [r for r in results if r["is_official"] == official]
    if "stars" in wanted:
        try:
            stars = int(wanted["stars"][-1])
        except ValueError as exc:
            raise InvalidArgument(f"invalid filter 'stars={wanted['stars'][-1]}'") from exc
        results = [r for r in results if r["star_count"] >= stars]
    return web.json_response(results)


def register(routes: Routes) -> None:
    routes.app[SERVICE] = DistributionService(routes.app["engine"])
    # POST /images/create belongs to the images module, which hands fromImage to us under a
    # plain string key (its contract), hence aiohttp's AppKey advice is silenced here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        routes.app["image_pull"] = create
    routes.post(r"/images/{name:.+}/push", push_image)
    routes.post("/auth", auth)
    routes.get("/images/search", search_images)
