"""A registry served from a background thread, a tiny HTTP client, and test images."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import http.client
import io
import json
import os
import tarfile
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from dockyard.oci import mediatypes
from dockyard.registry.app import make_app
from dockyard.registry.config import Config
from dockyard.registry.storage import StorageDriver


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        return str(self.json()["errors"][0]["code"])


class RunningRegistry:
    """``make_app(config)`` on 127.0.0.1:<free port> in its own thread and event loop."""

    def __init__(self, config: Config, driver: StorageDriver | None = None) -> None:
        self.config = config
        self.driver = driver
        self.root = config.root
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError("registry did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        finally:
            self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
        self._loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(make_app(self.config, self.driver), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    # -- conveniences -------------------------------------------------------------------

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data)
        assert r.status == 201, r.body
        return digest

    def push_manifest(self, repo: str, ref: str, manifest: bytes,
                      media_type: str = mediatypes.OCI_MANIFEST) -> Reply:
        return self.request("PUT", f"/v2/{repo}/manifests/{ref}", manifest,
                            {"Content-Type": media_type})

    def push_image(self, repo: str, tag: str, image: Image) -> str:
        for blob in image.blobs.values():
            self.push_blob(repo, blob)
        r = self.push_manifest(repo, tag, image.manifest, image.media_type)
        assert r.status == 201, r.body
        return str(r.headers["Docker-Content-Digest"])


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    manifest: bytes
    media_type: str
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def small_layer(content: bytes = b"hello\n", name: str = "hello.txt") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def make_image(layers: list[bytes] | None = None, *, docker: bool = False,
               subject: dict[str, Any] | None = None, artifact_type: str | None = None,
               labels: dict[str, str] | None = None,
               annotations: dict[str, str] | None = None) -> Image:
    layers = [small_layer()] if layers is None else layers
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha256(gzip.decompress(x))
                                                                   for x in layers]},
                         "config": {"Cmd": ["/bin/sh"], "Labels": labels or {}}}).encode()
    manifest_type = mediatypes.DOCKER_MANIFEST if docker else mediatypes.OCI_MANIFEST
    layer_type = mediatypes.DOCKER_LAYER if docker else mediatypes.OCI_LAYER_GZIP
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": mediatypes.DOCKER_CONFIG if docker else mediatypes.OCI_CONFIG,
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": sha256(x), "size": len(x)} for x in layers],
    }
    if subject is not None:
        doc["subject"] = subject
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    if annotations:
        doc["annotations"] = annotations
    blobs = {sha256(config): config, **{sha256(x): x for x in layers}}
    return Image(json.dumps(doc, indent=3).encode(), manifest_type, blobs)


def make_index(children: list[Image]) -> Image:
    doc = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": [
        {"mediaType": c.media_type, "digest": c.digest, "size": len(c.manifest),
         "platform": {"os": "linux", "architecture": arch}}
        for c, arch in zip(children, ["amd64", "arm64", "s390x", "ppc64le"], strict=False)]}
    return Image(json.dumps(doc).encode(), mediatypes.OCI_INDEX)


def base_config(root: str, **kw: Any) -> Config:
    return replace(Config(root=root, durable=False), **kw)


def write_oci_layout(dest: str, image: Image, tag: str = "latest") -> str:
    """An OCI image layout directory (for skopeo's ``oci:`` transport)."""
    os.makedirs(os.path.join(dest, "blobs", "sha256"), exist_ok=True)
    for digest, data in [*image.blobs.items(), (image.digest, image.manifest)]:
        with open(os.path.join(dest, "blobs", "sha256", digest.split(":")[1]), "wb") as f:
            f.write(data)
    with open(os.path.join(dest, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
    return dest


class ThreadedApp:
    """Any aiohttp application on 127.0.0.1:<free port>, in its own thread (fake remotes)."""

    def __init__(self, app: web.Application) -> None:
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.port = 0
        ready = threading.Event()

        async def start() -> None:
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        def run() -> None:
            try:
                self._loop.run_until_complete(start())
            finally:
                ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
