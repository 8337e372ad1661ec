"""The HTTP API: distribution spec v2 / OCI distribution, the v1 search, and the token endpoint.

Routes (``<name>`` may contain slashes, so the path is matched here, not by aiohttp)::

    GET        /v2/                                  version check (auth probe)
    GET HEAD   /v2/<name>/manifests/<ref>            ref: tag or digest
    PUT DELETE /v2/<name>/manifests/<ref>
    GET HEAD   /v2/<name>/blobs/<digest>             sendfile, Range
    DELETE     /v2/<name>/blobs/<digest>
    POST       /v2/<name>/blobs/uploads/             [?digest=] [?mount=&from=]
    GET PATCH PUT DELETE /v2/<name>/blobs/uploads/<uuid>
    GET        /v2/<name>/tags/list                  ?n=&last=
    GET        /v2/<name>/referrers/<digest>         ?artifactType=
    GET        /v2/_catalog                          ?n=&last=
    GET        /v1/_ping, /v1/search                 ?q=&n=&page=  (Docker Hub's shape)
    GET        /token                                ?service=&scope=  (token auth only)

Storage calls are synchronous and short, except blob bodies: uploads are streamed to storage
by :mod:`dockyard.registry.uploads`, downloads go through ``web.FileResponse`` (sendfile(2)).
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, unquote

from aiohttp import web
from multidict import MultiDict

from dockyard.errors import DockyardError
from dockyard.oci import mediatypes
from dockyard.oci.digest import Digest
from dockyard.registry.apierrors import RegistryError
from dockyard.registry.auth import Access, Authorizer, HtpasswdAuth, NoAuth, TokenAuth
from dockyard.registry.config import Config
from dockyard.registry.content import (
    MAX_MANIFEST_SIZE,
    parse_digest,
    validate_name,
    validate_tag,
)
from dockyard.registry.notify import Notifier
from dockyard.registry.proxy import Proxy
from dockyard.registry.responses import (
    accepted_types,
    default_platform,
    int_param,
    paginated,
    read_limited,
    stream_body,
    stream_from_driver,
)
from dockyard.registry.storage import FilesystemDriver, StorageDriver
from dockyard.registry.store import Store
from dockyard.registry.uploads import (
    PIECE,
    UploadReceiver,
    blob_created,
    upload_status,
)

__all__ = ["REGISTRY_KEY", "RegistryApp", "make_app"]

API_VERSION = "registry/2.0"
_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/v2/?$"), "base"),
    (re.compile(r"^/v2/_catalog$"), "catalog"),
    (re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$"), "manifest"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$"), "uploads"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]+)$"), "upload"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$"), "blob"),
    (re.compile(r"^/v2/(?P<name>.+)/tags/list$"), "tags"),
    (re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$"), "referrers"),
    (re.compile(r"^/v1/_ping$"), "ping"),
    (re.compile(r"^/v1/search$"), "search"),
    (re.compile(r"^/token$"), "token"),
]


Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


class RegistryApp:
    def __init__(self, config: Config, driver: StorageDriver | None = None) -> None:
        self.config = config
        self.driver = driver or FilesystemDriver(config.root, durable=config.durable)
        self.store = Store(self.driver, touch_after=config.gc_grace / 4)
        self.auth: Authorizer
        self.token: TokenAuth | None = None
        if config.token is not None:
            self.token = TokenAuth(config.token)
            self.auth = self.token
        elif config.htpasswd:
            self.auth = HtpasswdAuth(config.htpasswd, config.htpasswd_realm)
        else:
            self.auth = NoAuth()
        self.proxy = Proxy(config, self.store) if config.proxy_url else None
        self.notifier = Notifier(config.notifications)
        self.receiver = UploadReceiver(self.store)
        self._handlers: dict[str, Handler] = {
            "base": self.base, "catalog": self.catalog, "manifest": self.manifest,
            "uploads": self.uploads, "upload": self.upload, "blob": self.blob,
            "tags": self.tags, "referrers": self.referrers, "ping": self.ping,
            "search": self.search, "token": self.token_endpoint,
        }

    # -- plumbing ----------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path  # match before decoding: "%2f" stays inside a part
        for pattern, route in _ROUTES:
            m = pattern.match(path)
            if m is not None:
                params = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
                if "name" in params:
                    validate_name(params["name"])
                return await self._handlers[route](request, params)
        raise RegistryError("UNSUPPORTED", "no such endpoint", status=404)

    def _base_url(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    def _authorize(self, request: web.Request, wanted: list[Access]) -> str | None:
        return self.auth.authorize(request.headers, self._base_url(request), wanted)

    def _repo_access(self, request: web.Request, name: str, *actions: str) -> None:
        self._authorize(request, [Access("repository", name, a) for a in actions])

    @staticmethod
    def _write_actions(request: web.Request) -> tuple[str, ...]:
        if request.method in ("GET", "HEAD"):
            return ("pull",)
        if request.method == "DELETE":
            return ("delete",)
        return ("pull", "push")

    def _check_writable(self) -> None:
        if self.proxy is not None:
            raise RegistryError("UNSUPPORTED", "a pull-through cache does not accept pushes")
        if self.config.read_only:
            raise RegistryError("UNSUPPORTED", "the registry is in read-only mode")

    # -- /v2/, /v1 ---------------------------------------------------------------------

    async def base(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        self._authorize(request, [])
        return web.json_response({})

    async def ping(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        return web.json_response({"standalone": True}, headers={
            "X-Docker-Registry-Version": "0.6.0", "X-Docker-Registry-Standalone": "true"})

    async def search(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        query = request.query.get("q", "")
        n = int_param(request, "n", 25, 1, 100)
        page = int_param(request, "page", 1, 1, 1 << 30)
        names = [r for r in self.store.catalog() if query.lower() in r]
        if not self._may_list_all(request):
            names = []
        chunk = names[(page - 1) * n: page * n]
        return web.json_response({
            "num_pages": max(1, math.ceil(len(names) / n)),
            "num_results": len(names),
            "page_size": n,
            "page": page,
            "query": query,
            "results": [{"name": r, "description": self.store.description(r), "star_count": 0,
                         "is_official": False, "is_automated": False, "is_trusted": False}
                        for r in chunk],
        })

    def _may_list_all(self, request: web.Request) -> bool:
        """Search shows everything or nothing: our auth grants all repositories or none."""
        if self.token is not None:
            return self.token.may_list(request.headers)
        try:
            self._authorize(request, [])
        except RegistryError:
            return False
        return True

    def _may_pull(self, request: web.Request, name: str) -> bool:
        try:
            self._repo_access(request, name, "pull")
        except RegistryError:
            return False
        return True

    async def token_endpoint(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        if self.token is None or request.method not in ("GET", "POST"):
            raise RegistryError("UNSUPPORTED", "no token endpoint here", status=404)
        params = request.query
        headers: Mapping[str, str] = request.headers
        if request.method == "POST":  # OAuth2 password grant (auth-oauth.md), form-encoded
            form = await read_limited(request, 65536, "form")
            params = MultiDict(parse_qsl(form.decode(errors="replace")))
            if params.get("grant_type") != "password":
                raise RegistryError("UNSUPPORTED", "only grant_type=password is supported",
                                    status=400)
            basic = f"{params.get('username', '')}:{params.get('password', '')}"
            headers = {"Authorization": "Basic " + base64.b64encode(basic.encode()).decode()}
        scopes = [s for value in params.getall("scope", []) for s in value.split(" ") if s]
        return web.json_response(self.token.issue(headers, self._base_url(request), scopes))

    # -- catalog, tags, referrers ------------------------------------------------------

    async def catalog(self, request: web.Request, _: dict[str, str]) -> web.StreamResponse:
        self._authorize(request, [Access("registry", "catalog", "*")])
        return paginated(request, "/v2/_catalog", "repositories", self.store.catalog())

    async def tags(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name = p["name"]
        self._repo_access(request, name, "pull")
        if self.proxy is not None and not self.store.repo_exists(name):
            return web.json_response(await self.proxy.tags(name, dict(request.query)))
        if not self.store.repo_exists(name):
            raise RegistryError("NAME_UNKNOWN", detail={"name": name})
        return paginated(request, f"/v2/{name}/tags/list", "tags", self.store.tags(name),
                         {"name": name})

    async def referrers(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name = p["name"]
        self._repo_access(request, name, "pull")
        subject = parse_digest(p["digest"])
        artifact_type = request.query.get("artifactType")
        found = self.store.referrers(name, subject, artifact_type)
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
        return web.json_response(
            {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": found},
            content_type=mediatypes.OCI_INDEX, headers=headers)

    # -- manifests ---------------------------------------------------------------------

    async def manifest(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name, ref = p["name"], p["ref"]
        self._repo_access(request, name, *self._write_actions(request))
        if request.method in ("GET", "HEAD"):
            return await self._get_manifest(request, name, ref)
        if request.method == "PUT":
            return await self._put_manifest(request, name, ref)
        if request.method == "DELETE":
            self._check_deletable()
            self.store.delete_manifest(name, ref)
            self.notifier.emit("delete", name, ref, None, 0, request)
            return web.Response(status=202, headers={"Content-Length": "0"})
        raise RegistryError("UNSUPPORTED", status=405)

    def _check_deletable(self) -> None:
        self._check_writable()
        if not self.config.delete_enabled:
            raise RegistryError("UNSUPPORTED", "deletes are disabled")

    async def _get_manifest(self, request: web.Request, name: str, ref: str) -> web.StreamResponse:
        if self.proxy is not None:
            found = await self.proxy.manifest(name, ref)
        else:
            found = self.store.get_manifest(name, ref)
        accepted = accepted_types(request)
        if accepted and found.media_type not in accepted and "*/*" not in accepted:
            if found.media_type in mediatypes.INDEX_TYPES:
                child = default_platform(found.data, accepted)
                if child is not None:
                    found = self.store.get_manifest(name, child)
            if found.media_type not in accepted:
                raise RegistryError("MANIFEST_UNKNOWN",
                                    f"{found.media_type} not in the Accept header")
        headers = {"Docker-Content-Digest": str(found.digest), "ETag": f'"{found.digest}"',
                   "Content-Type": found.media_type}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(found.data))
            return web.Response(status=200, headers=headers)
        return web.Response(body=found.data, headers=headers)

    async def _put_manifest(self, request: web.Request, name: str, ref: str) -> web.StreamResponse:
        self._check_writable()
        data = await read_limited(request, MAX_MANIFEST_SIZE)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip() or None
        tags = [validate_tag(t) for t in request.query.getall("tag", [])] if ":" in ref else []
        # fsyncs inside: keep them off the event loop
        d, subject = await asyncio.to_thread(self.store.put_manifest, name, ref, data, content_type)
        for tag in tags:
            await asyncio.to_thread(self.store.put_manifest, name, tag, data, content_type)
        headers = {"Location": f"/v2/{name}/manifests/{d}", "Docker-Content-Digest": str(d),
                   "Content-Length": "0"}
        if subject is not None:
            headers["OCI-Subject"] = str(subject)
        resp = web.Response(status=201, headers=headers)
        for tag in tags:
            resp.headers.add("OCI-Tag", tag)
        self.notifier.emit("push", name, ref, d, len(data), request,
                           media_type=content_type or "")
        return resp

    # -- blobs -------------------------------------------------------------------------

    async def blob(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name = p["name"]
        self._repo_access(request, name, *self._write_actions(request))
        d = parse_digest(p["digest"])
        if request.method == "DELETE":
            self._check_deletable()
            self.store.unlink_blob(name, d)
            return web.Response(status=202, headers={"Content-Length": "0"})
        if request.method not in ("GET", "HEAD"):
            raise RegistryError("UNSUPPORTED", status=405)
        # no ETag of ours: FileResponse sets its own (mtime-size) and answers If-None-Match
        headers = {"Docker-Content-Digest": str(d),
                   "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes",
                   "Cache-Control": "max-age=31536000"}
        if self.proxy is not None:
            if request.method == "GET":
                streamed = await self.proxy.stream_blob(name, d)
                if streamed is not None:
                    return await stream_body(request, headers, *streamed)
            await self.proxy.ensure_blob(name, d)
        size = self.store.repo_blob_size(name, d, touch=request.method == "HEAD")
        if request.method == "HEAD":
            headers["Content-Length"] = str(size)
            return web.Response(status=200, headers=headers)
        local = self.driver.local_path(self.store.blob_path(d))
        if local is not None:
            return web.FileResponse(local, chunk_size=PIECE, headers=headers)
        return await stream_from_driver(request, headers, self.driver,
                                        self.store.blob_path(d), size)

    async def uploads(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name = p["name"]
        if request.method != "POST":
            raise RegistryError("UNSUPPORTED", status=405)
        self._repo_access(request, name, "pull", "push")
        self._check_writable()
        mount, source = request.query.get("mount"), request.query.get("from")
        if mount and source:
            validate_name(source)
            d = parse_digest(mount)
            if self._may_pull(request, source) and self.store.mount_blob(name, d, source):
                return blob_created(name, d)
        up = self.store.start_upload(name)
        digest = request.query.get("digest")
        if digest is not None:
            d = parse_digest(digest)
            await self.receiver.receive(request, up, None)
            return await self._commit(name, up.uuid, d, request)
        if request.content_length:
            await self.receiver.receive(request, up, None)
            up = self.store.upload(name, up.uuid)
        return upload_status(up, 202)

    async def upload(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        name, ident = p["name"], p["uuid"]
        self._repo_access(request, name, *self._write_actions(request))
        up = self.store.upload(name, ident)
        if request.method == "GET":
            return upload_status(up, 204)
        if request.method == "DELETE":
            self.store.cancel_upload(up.uuid)
            self.receiver.forget(up.uuid)
            return web.Response(status=204, headers={"Content-Length": "0"})
        self._check_writable()
        if request.method == "PATCH":
            await self.receiver.receive(request, up, request.headers.get("Content-Range"))
            return upload_status(self.store.upload(name, ident), 202)
        if request.method == "PUT":
            digest = request.query.get("digest")
            if not digest:
                raise RegistryError("DIGEST_INVALID", "digest parameter missing")
            d = parse_digest(digest)
            if request.content_length or request.headers.get("Transfer-Encoding"):
                await self.receiver.receive(request, up, request.headers.get("Content-Range"))
            return await self._commit(name, ident, d, request)
        raise RegistryError("UNSUPPORTED", status=405)

    async def _commit(self, name: str, ident: str, d: Digest, request: web.Request) -> web.StreamResponse:
        up = self.store.upload(name, ident)
        computed = self.receiver.computed(up)
        size = await asyncio.to_thread(self.store.commit_upload, up, d, computed)
        self.notifier.emit("push", name, None, d, size, request,
                           media_type="application/octet-stream")
        return blob_created(name, d)

@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except RegistryError as exc:
        resp = web.json_response(exc.body(), status=exc.http_status, headers=exc.headers)
    except DockyardError as exc:
        code = {400: "BLOB_UPLOAD_INVALID", 404: "NAME_UNKNOWN"}.get(exc.http_status, "UNAVAILABLE")
        err = RegistryError(code, exc.message, status=exc.http_status)
        resp = web.json_response(err.body(), status=err.http_status)
    resp.headers["Docker-Distribution-API-Version"] = API_VERSION
    return resp


def make_app(config: Config, driver: StorageDriver | None = None) -> web.Application:
    """The application; ``driver`` defaults to the filesystem under ``config.root``."""
    registry = RegistryApp(config, driver)
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY)
    app[REGISTRY_KEY] = registry
    app.router.add_route("*", "/{tail:.*}", registry.dispatch)
    app.on_cleanup.append(lambda _: registry.notifier.close())
    if registry.proxy is not None:
        proxy = registry.proxy
        app.on_cleanup.append(lambda _: proxy.close())
    return app


MAX_BODY = 1 << 40
REGISTRY_KEY = web.AppKey("registry", RegistryApp)
