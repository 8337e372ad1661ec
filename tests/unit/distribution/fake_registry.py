"""A registry that misbehaves on purpose (aiohttp, 127.0.0.1, random port).

Serves what a test puts in ``repos`` and breaks the protocol where ``faults`` says:
wrong bytes for a blob, truncated bodies, connection resets, redirect loops, slow answers,
wrong media types; auth ``none``, ``basic`` or ``bearer`` (its own token endpoint).
It also accepts pushes (POST/PATCH/PUT uploads, cross-repository mounts).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import socket
import struct
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.registries import Blob, TestImage


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Faults:
    blob_bytes: dict[str, bytes] = field(default_factory=dict)  # serve these bytes instead
    truncate: dict[str, int] = field(default_factory=dict)  # digest -> times to cut halfway
    no_range: bool = False  # ignore Range headers (answer 200 with everything)
    redirect_loop: bool = False
    redirect_blobs: bool = False  # 307 to /storage/<digest> on the same server
    slow_blob: float = 0.0  # seconds to stall in the middle of a blob
    manifest_type: str | None = None  # Content-Type override
    manifest_bytes: dict[str, bytes] = field(default_factory=dict)  # ref -> body override
    status: dict[str, int] = field(default_factory=dict)  # path regex -> status
    wrong_content_digest: bool = False
    revoke_tokens_on_blob: bool = False
    reset: bool = False  # truncate with a TCP reset rather than a clean close


class FakeRegistry:
    def __init__(self, auth: str = "none", users: dict[str, str] | None = None,
                 token_ttl: int = 300, search: bool = True) -> None:
        self.repos: dict[str, dict[str, tuple[str, bytes]]] = {}
        self.blobs: dict[str, bytes] = {}
        self.repo_blobs: dict[str, set[str]] = {}
        self.uploads: dict[str, bytearray] = {}
        self.faults = Faults()
        self.auth = auth
        self.users = users or {}
        self.token_ttl = token_ttl
        self.tokens: dict[str, tuple[float, set[str]]] = {}
        self.search_enabled = search
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.port = 0
        self.url = ""
        self.host = ""
        self.token_requests = 0
        self.tag_page = 1000  # registries may cap a page below the n asked for
        self.inflight = 0  # slow blob bodies stalled now, and the most at once
        self.max_inflight = 0

    # content --------------------------------------------------------------------------------
    def add_blob(self, repo: str, blob: Blob | bytes) -> str:
        data = blob.data if isinstance(blob, Blob) else blob
        d = _digest(data)
        self.blobs[d] = data
        self.repo_blobs.setdefault(repo, set()).add(d)
        return d

    def add_manifest(self, repo: str, ref: str, media_type: str, data: bytes) -> str:
        manifests = self.repos.setdefault(repo, {})
        d = _digest(data)
        manifests[ref] = (media_type, data)
        manifests[d] = (media_type, data)
        return d

    def add_image(self, repo: str, tag: str, image: TestImage) -> str:
        for blob in image.blobs():
            self.add_blob(repo, blob)
        return self.add_manifest(repo, tag, image.manifest.media_type, image.manifest.data)

    # auth -----------------------------------------------------------------------------------
    def _check(self, request: web.Request, repo: str | None, action: str) -> web.Response | None:
        if self.auth == "none":
            return None
        header = request.headers.get("Authorization", "")
        if self.auth == "basic":
            if header.startswith("Basic "):
                user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                if self.users.get(user) == pw:
                    return None
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                status=401, headers={"WWW-Authenticate": 'Basic realm="fake"'},
            )
        scope = f"repository:{repo}:{action}" if repo else ""
        if header.startswith("Bearer "):
            entry = self.tokens.get(header[7:])
            if entry and entry[0] > time.time() and (not repo or f"{repo}:{action}" in entry[1]):
                return None
        challenge = f'Bearer realm="{self.url}/token",service="fake"'
        if scope:
            challenge += f',scope="{scope}"'
        return web.json_response(
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            status=401, headers={"WWW-Authenticate": challenge},
        )

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        if request.method == "POST":
            form = await request.post()
            refresh = str(form.get("refresh_token", ""))
            if refresh != "refresh-" + "alice":
                return web.json_response({"details": "bad refresh token"}, status=401)
            scopes = str(form.get("scope", "")).split()
        else:
            header = request.headers.get("Authorization", "")
            if header:
                user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                if self.users.get(user) != pw:
                    return web.json_response({"details": "incorrect username or password"}, status=401)
            scopes = request.query.getall("scope", [])
        granted: set[str] = set()
        for scope in scopes:
            _kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            for a in actions.split(","):
                granted.add(f"{name}:{a}")
                if a == "push":
                    granted.add(f"{name}:pull,push")
            granted.add(f"{name}:{actions}")
        tok = uuid.uuid4().hex
        self.tokens[tok] = (time.time() + self.token_ttl, granted)
        body: dict[str, Any] = {"token": tok, "expires_in": self.token_ttl}
        if request.query.get("offline_token") == "true":
            body["refresh_token"] = "refresh-alice"
        return web.json_response(body)

    # handlers -------------------------------------------------------------------------------
    async def ping(self, request: web.Request) -> web.StreamResponse:
        if self.faults.redirect_loop:
            raise web.HTTPFound("/v2/")
        denied = self._check(request, None, "")
        if denied is not None and (self.auth == "basic" or "Authorization" not in request.headers):
            return denied
        return web.json_response({})

    def _status_fault(self, request: web.Request) -> web.Response | None:
        for pattern, status in self.faults.status.items():
            if re.search(pattern, request.path):
                return web.json_response(
                    {"errors": [{"code": "UNKNOWN", "message": f"injected {status}"}]}, status=status
                )
        return None

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        repo, ref = request.match_info["repo"], request.match_info["ref"]
        if self.faults.redirect_loop:
            raise web.HTTPFound(request.path + "x")
        action = "push" if request.method == "PUT" else "pull"
        denied = self._check(request, repo, action)
        if denied is not None:
            return denied
        fault = self._status_fault(request)
        if fault is not None:
            return fault
        if request.method == "PUT":
            data = await request.read()
            self.add_manifest(repo, ref, request.headers.get("Content-Type", ""), data)
            return web.Response(status=201, headers={"Docker-Content-Digest": _digest(data)})
        found = self.repos.get(repo, {}).get(ref)
        if found is None:
            return web.json_response(
                {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}, status=404
            )
        media_type, data = found
        data = self.faults.manifest_bytes.get(ref, data)
        digest = "sha256:" + "0" * 64 if self.faults.wrong_content_digest else _digest(found[1])
        headers = {
            "Content-Type": self.faults.manifest_type or media_type,
            "Docker-Content-Digest": digest,
        }
        if request.method == "HEAD":
            return web.Response(headers=headers)
        return web.Response(body=data, headers=headers)

    async def blob(self, request: web.Request) -> web.StreamResponse:
        repo, digest = request.match_info["repo"], request.match_info["digest"]
        if self.faults.revoke_tokens_on_blob:
            self.faults.revoke_tokens_on_blob = False
            self.tokens.clear()
        denied = self._check(request, repo, "pull")
        if denied is not None:
            return denied
        fault = self._status_fault(request)
        if fault is not None:
            return fault
        if digest not in self.blobs or digest not in self.repo_blobs.get(repo, set()):
            return web.json_response(
                {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry"}]}, status=404
            )
        if self.faults.redirect_blobs and request.method == "GET":
            # another origin (localhost vs 127.0.0.1): credentials must not follow
            raise web.HTTPTemporaryRedirect(f"http://localhost:{self.port}/storage/{digest}")
        return await self._send_blob(request, digest)

    async def storage(self, request: web.Request) -> web.StreamResponse:
        assert "Authorization" not in request.headers or self.auth == "none"
        return await self._send_blob(request, request.match_info["digest"])

    async def _send_blob(self, request: web.Request, digest: str) -> web.StreamResponse:
        data = self.faults.blob_bytes.get(digest, self.blobs[digest])
        if request.method == "HEAD":
            return web.Response(headers={"Content-Length": str(len(data)), "Docker-Content-Digest": digest})
        start = 0
        rng = request.headers.get("Range")
        status = 200
        if rng and not self.faults.no_range:
            start = int(rng.split("=")[1].split("-")[0])
            status = 206
        body = data[start:]
        resp = web.StreamResponse(status=status)
        resp.content_length = len(body)
        resp.content_type = "application/octet-stream"
        if status == 206:
            resp.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        await resp.prepare(request)
        return await self._send_body(request, resp, digest, body)

    async def _send_body(self, request: web.Request, resp: web.StreamResponse, digest: str,
                         body: bytes) -> web.StreamResponse:
        cut = self.faults.truncate.get(digest, 0)
        if cut:
            self.faults.truncate[digest] = cut - 1
            await resp.write(body[: len(body) // 2])
            assert request.transport is not None
            if self.faults.reset:
                # SO_LINGER 0: close() sends RST instead of FIN (a connection reset)
                sock = request.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                request.transport.abort()
            else:
                request.transport.close()
            return resp
        if self.faults.slow_blob and len(body) > 10_000:
            await resp.write(body[: len(body) // 2])
            # bodies stalled at the same moment: transfers that really run in parallel
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            try:
                await asyncio.sleep(self.faults.slow_blob)
            finally:
                self.inflight -= 1
            await resp.write(body[len(body) // 2 :])
        else:
            await resp.write(body)
        await resp.write_eof()
        return resp

    async def start_upload(self, request: web.Request) -> web.StreamResponse:
        repo = request.match_info["repo"]
        denied = self._check(request, repo, "push")
        if denied is not None:
            return denied
        mount, source = request.query.get("mount"), request.query.get("from")
        if mount and source and mount in self.repo_blobs.get(source, set()):
            self.repo_blobs.setdefault(repo, set()).add(mount)
            return web.Response(status=201, headers={"Location": f"/v2/{repo}/blobs/{mount}"})
        uid = uuid.uuid4().hex
        self.uploads[uid] = bytearray()
        return web.Response(status=202, headers={"Location": f"/v2/{repo}/blobs/uploads/{uid}", "Range": "0-0"})

    async def upload(self, request: web.Request) -> web.StreamResponse:
        repo, uid = request.match_info["repo"], request.match_info["uid"]
        denied = self._check(request, repo, "push")
        if denied is not None:
            return denied
        if uid not in self.uploads:
            return web.json_response({"errors": [{"code": "BLOB_UPLOAD_UNKNOWN", "message": "x"}]}, status=404)
        if request.method == "DELETE":
            del self.uploads[uid]
            return web.Response(status=204)
        self.uploads[uid] += await request.read()
        if request.method == "PATCH":
            return web.Response(status=202, headers={"Location": f"/v2/{repo}/blobs/uploads/{uid}"})
        data = bytes(self.uploads.pop(uid))
        if _digest(data) != request.query.get("digest"):
            return web.json_response({"errors": [{"code": "DIGEST_INVALID", "message": "digest"}]}, status=400)
        self.add_blob(repo, data)
        return web.Response(status=201, headers={"Location": f"/v2/{repo}/blobs/{_digest(data)}"})

    async def search(self, request: web.Request) -> web.Response:
        if not self.search_enabled:
            return web.Response(status=404)
        q = request.query.get("q", "")
        results = [{"name": r, "description": "", "star_count": 1, "is_official": False,
                    "is_automated": False} for r in self.repos if q in r]
        return web.json_response({"num_results": len(results), "query": q, "results": results})

    async def tags(self, request: web.Request) -> web.Response:
        repo = request.match_info["repo"]
        denied = self._check(request, repo, "pull")
        if denied is not None:
            return denied
        names = sorted(t for t in self.repos.get(repo, {}) if not t.startswith("sha256:"))
        n = min(int(request.query.get("n", "1000")), self.tag_page)
        last = request.query.get("last", "")
        page = [t for t in names if t > last][:n]
        headers = {}
        if page and page[-1] != names[-1]:
            headers["Link"] = f'</v2/{repo}/tags/list?n={n}&last={page[-1]}>; rel="next"'
        return web.json_response({"name": repo, "tags": page}, headers=headers)

    async def catalog(self, request: web.Request) -> web.Response:
        return web.json_response({"repositories": sorted(self.repos)})

    def app(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            self.log.append((request.method, request.path_qs, dict(request.headers)))
            return await handler(request)

        app = web.Application(middlewares=[record])
        name = r"{repo:[a-z0-9/._-]+?}"
        app.router.add_route("GET", "/v2/", self.ping)
        app.router.add_route("*", "/token", self.token)
        app.router.add_route("GET", "/v1/search", self.search)
        app.router.add_route("GET", "/v2/_catalog", self.catalog)
        app.router.add_route("GET", f"/v2/{name}/tags/list", self.tags)
        app.router.add_route("*", f"/v2/{name}/manifests/{{ref}}", self.manifest)
        app.router.add_route("POST", f"/v2/{name}/blobs/uploads/", self.start_upload)
        app.router.add_route("*", f"/v2/{name}/blobs/uploads/{{uid}}", self.upload)
        app.router.add_route("*", f"/v2/{name}/blobs/{{digest:sha256:[a-f0-9]+}}", self.blob)
        app.router.add_route("GET", "/storage/{digest}", self.storage)
        return app


@asynccontextmanager
async def serve(registry: FakeRegistry, ssl_context: Any = None) -> AsyncIterator[FakeRegistry]:
    runner = web.AppRunner(registry.app(), access_log=None)
    await runner.setup()
    # a registry served again keeps its port (references name host:port)
    site = web.TCPSite(runner, "127.0.0.1", registry.port, reuse_address=True, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    registry.port = port
    registry.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    registry.host = f"127.0.0.1:{port}"
    try:
        yield registry
    finally:
        await runner.cleanup()


def self_signed_context(directory: str) -> Any:
    """A TLS server context with a throwaway self-signed certificate for 127.0.0.1."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-registry")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = f"{directory}/cert.pem", f"{directory}/key.pem"
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def manifest_json(image: TestImage) -> dict[str, Any]:
    return json.loads(image.manifest.data)  # type: ignore[no-any-return]
