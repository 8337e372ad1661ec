"""/images/... and /commit over the image store.

``POST /images/create`` serves ``fromSrc`` (import) here; ``fromImage`` (pull) is delegated to
``app["image_pull"]``, a handler the distribution engineer's route module installs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from typing import Any

from aiohttp import web

from dockyard.api import shapes
from dockyard.api.app import Routes, engine_of, filters, json_body, qbool
from dockyard.api.routes.containers import stream_from_thread
from dockyard.daemon.dockerfile_changes import apply_changes
from dockyard.errors import InvalidArgument, NotFound, Unavailable


def _store(request: web.Request) -> Any:
    engine = engine_of(request)
    if engine.images is None:
        raise Unavailable(f"the image store is not available: {engine.image_error}")
    return engine.images


def _users(engine: Any) -> Any:
    def users(image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.state.running) for c in engine.containers.containers.values() if c.image_id == image_id]
    return users


async def list_images(request: web.Request) -> web.Response:
    store = _store(request)
    flt = filters(request)
    for key in flt:
        if key not in ("dangling", "reference", "label", "before", "since"):
            raise InvalidArgument(f"invalid filter '{key}'")
    dangling = None
    if flt.get("dangling"):
        value = flt["dangling"][0].lower()
        if value not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={flt['dangling'][0]}'")
        dangling = value in ("true", "1")
    imgs = await asyncio.to_thread(
        store.list, all=qbool(request, "all"), dangling=dangling, reference=flt.get("reference", []),
        label=flt.get("label", []), before=(flt.get("before") or [""])[0] or None,
        since=(flt.get("since") or [""])[0] or None)
    users = _users(engine_of(request))
    return web.json_response([shapes.image_summary(i, len(users(i.id))) for i in imgs])


async def inspect(request: web.Request) -> web.Response:
    store = _store(request)
    img = await asyncio.to_thread(store.resolve, request.match_info["name"])
    return web.json_response(shapes.image_inspect(img, engine_of(request).facts.storage_driver))


async def history(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(_store(request).history, request.match_info["name"])
    return web.json_response([{"Id": r["id"], "Created": r["created"], "CreatedBy": r.get("created_by", ""),
                               "Tags": r.get("tags") or None, "Size": r.get("size", 0),
                               "Comment": r.get("comment", "")} for r in rows])


async def tag(request: web.Request) -> web.Response:
    store = _store(request)
    repo = request.query.get("repo", "")
    if not repo:
        raise InvalidArgument("repository name must have at least one component")
    t = request.query.get("tag") or "latest"
    img = await asyncio.to_thread(store.resolve, request.match_info["name"])
    ref = f"{repo}:{t}"
    await asyncio.to_thread(store.tag, img.id, ref)
    engine_of(request).events.publish("image", "tag", img.id, name=ref)
    return web.Response(status=201)


async def remove(request: web.Request) -> web.Response:
    store = _store(request)
    engine = engine_of(request)
    records = await asyncio.to_thread(store.remove, request.match_info["name"], force=qbool(request, "force"),
                                      noprune=qbool(request, "noprune"), users=_users(engine))
    for r in records:
        for kind, value in r.items():
            engine.events.publish("image", "untag" if kind == "Untagged" else "delete", value)
    return web.json_response(records)


async def _spool(request: web.Request) -> str:
    """The request body in a temp file under the data root (removed by the caller)."""
    engine = engine_of(request)
    tmp_dir = os.path.join(engine.cfg.data_root, "tmp")
    os.makedirs(tmp_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=f"upload-{os.getpid()}-", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.content.iter_chunked(1 << 20):
                f.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path


async def create(request: web.Request) -> web.StreamResponse:
    if request.query.get("fromImage"):
        handler = request.app.get("image_pull")
        if handler is None:
            raise NotFound(f"pull access denied for {request.query['fromImage']}, repository does not exist "
                           "or may require 'docker login': pulling is not available in this build")
        resp: web.StreamResponse = await handler(request)
        return resp
    src = request.query.get("fromSrc")
    if not src:
        raise InvalidArgument("one of fromImage or fromSrc is required")
    store = _store(request)
    engine = engine_of(request)
    repo = request.query.get("repo", "")
    ref = None
    if repo:
        ref = f"{repo}:{request.query.get('tag') or 'latest'}" if ":" not in repo.rsplit("/", 1)[-1] or request.query.get("tag") else repo
    config = apply_changes({}, request.query.getall("changes", []))
    if src == "-":
        path = await _spool(request)
    else:
        path = await _download(engine, src)
    try:
        with open(path, "rb") as f:
            image_id = await asyncio.to_thread(store.import_tar, f, ref=ref, config=config or None,
                                               comment=request.query.get("message") or None, source=src)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    engine.events.publish("image", "import", image_id)
    return web.Response(body=json.dumps({"status": image_id}).encode() + b"\r\n",
                        content_type="application/json")


async def _download(engine: Any, url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise InvalidArgument(f"import source must be '-' or an http(s) URL, not {url!r}")
    import aiohttp

    tmp_dir = os.path.join(engine.cfg.data_root, "tmp")
    os.makedirs(tmp_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=f"download-{os.getpid()}-", dir=tmp_dir)
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as r:
            if r.status != 200:
                raise InvalidArgument(f"error downloading {url}: {r.status}")
            with os.fdopen(fd, "wb") as f:
                async for chunk in r.content.iter_chunked(1 << 20):
                    f.write(chunk)
    except aiohttp.ClientError as exc:
        os.unlink(path)
        raise Unavailable(f"error downloading {url}: {exc}") from exc
    return path


async def commit(request: web.Request) -> web.Response:
    store = _store(request)
    engine = engine_of(request)
    c = engine.containers.get(request.query.get("container", ""))
    body = await json_body(request)
    if body is not None and not isinstance(body, dict):
        raise InvalidArgument("invalid commit config")
    config = {k: v for k, v in c.config.items() if k not in ("Hostname", "Image")}
    config.update({k: v for k, v in (body or {}).items() if v not in (None, "", [], {})})
    config = apply_changes(config, request.query.getall("changes", []))
    repo = request.query.get("repo", "")
    ref = f"{repo}:{request.query.get('tag') or 'latest'}" if repo else None
    paused = False
    if qbool(request, "pause", True) and c.state.status == "running":
        with contextlib.suppress(Exception):
            await engine.containers.pause(c.id)
            paused = True
    try:
        image_id = await asyncio.to_thread(store.commit, c.id, config, ref=ref,
                                           author=request.query.get("author", ""),
                                           comment=request.query.get("comment", ""),
                                           created_by=" ".join([c.path, *c.args]))
    finally:
        if paused:
            with contextlib.suppress(Exception):
                await engine.containers.unpause(c.id)
    engine.events.publish("container", "commit", c.id, name=c.name, image=c.config.get("Image", ""))
    return web.json_response({"Id": image_id}, status=201)


async def save(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    names = request.query.getall("names", []) if "name" not in request.match_info else [request.match_info["name"]]
    if not names:
        raise InvalidArgument("no images to save")
    for n in names:
        await asyncio.to_thread(store.resolve, n)
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await stream_from_thread(resp, lambda out: store.save(names, out))
    await resp.write_eof()
    for n in names:
        engine_of(request).events.publish("image", "save", n)
    return resp


async def load(request: web.Request) -> web.Response:
    store = _store(request)
    path = await _spool(request)
    try:
        with open(path, "rb") as f:
            loaded = await asyncio.to_thread(store.load, f)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    lines = []
    for name in loaded:
        text = f"Loaded image ID: {name}\n" if name.startswith("sha256:") else f"Loaded image: {name}\n"
        lines.append(json.dumps({"stream": text}).encode() + b"\r\n")
        engine_of(request).events.publish("image", "load", name)
    return web.Response(body=b"".join(lines), content_type="application/json")


async def prune(request: web.Request) -> web.Response:
    store = _store(request)
    flt = filters(request)
    all_ = bool(flt.get("dangling")) and flt["dangling"][0].lower() in ("false", "0")
    until = None
    if flt.get("until"):
        from dockyard.daemon.logs import parse_time

        text = flt["until"][0]
        until = float(text) if text.replace(".", "").isdigit() else parse_time(text)
    records, reclaimed = await asyncio.to_thread(store.prune, all=all_, users=_users(engine_of(request)),
                                                 label=flt.get("label", []), until=until)
    return web.json_response({"ImagesDeleted": records or None, "SpaceReclaimed": reclaimed})


def register(routes: Routes) -> None:
    routes.get("/images/json", list_images)
    routes.post("/images/create", create)
    routes.post("/images/load", load)
    routes.get("/images/get", save)
    routes.post("/images/prune", prune)
    routes.post("/commit", commit)
    routes.get("/images/{name:.+}/json", inspect)
    routes.get("/images/{name:.+}/history", history)
    routes.get("/images/{name:.+}/get", save)
    routes.post("/images/{name:.+}/tag", tag)
    routes.delete("/images/{name:.+}", remove)


__all__ = ["register"]
