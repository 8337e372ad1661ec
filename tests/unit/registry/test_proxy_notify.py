"""Pull-through cache against a token-protected remote, and webhook notifications."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import threading
import time
from collections.abc import Iterator

import pytest
from aiohttp import web

from dockyard.registry.config import Endpoint, TokenConfig
from tests.unit.registry.harness import (
    RunningRegistry,
    ThreadedApp,
    base_config,
    make_image,
    sha256,
)
from tests.unit.registry.test_auth import _key


@pytest.fixture
def remote(tmp_path: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    token = TokenConfig(key_path=_key(f"{tmp_path}/key.pem"), service="remote",
                        anonymous=("pull", "push"))
    server = RunningRegistry(base_config(f"{tmp_path}/remote", token=token))
    yield server
    server.stop()


def _anonymous_push(remote: RunningRegistry, repo: str, tag: str) -> str:
    token = remote.request("GET", f"/token?scope=repository:{repo}:pull,push").json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    image = make_image()
    for blob in image.blobs.values():
        r = remote.request("POST", f"/v2/{repo}/blobs/uploads/?digest={sha256(blob)}", blob, auth)
        assert r.status == 201
    r = remote.request("PUT", f"/v2/{repo}/manifests/{tag}", image.manifest,
                       {**auth, "Content-Type": image.media_type})
    assert r.status == 201
    return image.digest


def test_pull_through_cache_serves_and_keeps(remote: RunningRegistry,
                                             tmp_path: pytest.TempPathFactory) -> None:
    digest = _anonymous_push(remote, "library/busybox", "latest")
    cache = RunningRegistry(base_config(f"{tmp_path}/cache", proxy_url=remote.url))
    try:
        m = cache.request("GET", "/v2/library/busybox/manifests/latest")
        assert m.status == 200 and m.headers["Docker-Content-Digest"] == digest
        layers = [d["digest"] for d in json.loads(m.body)["layers"]]
        layer = cache.request("GET", f"/v2/library/busybox/blobs/{layers[0]}")
        assert layer.status == 200
        assert cache.request("POST", "/v2/library/busybox/blobs/uploads/").code == "UNSUPPORTED"
    finally:
        cache.stop()
    remote.stop()  # the remote is gone: what was fetched is still served
    cache = RunningRegistry(base_config(f"{tmp_path}/cache", proxy_url=remote.url))
    try:
        assert cache.request("GET", "/v2/library/busybox/manifests/latest").status == 200
        assert cache.request("GET", f"/v2/library/busybox/blobs/{layers[0]}").body == layer.body
    finally:
        cache.stop()


class _Hook:
    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self.calls = 0
        self.received = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        async def handle(request: web.Request) -> web.Response:
            assert request.content_type == "application/vnd.docker.distribution.events.v1+json"
            self.calls += 1
            if self.calls == 1:
                return web.Response(status=503)  # the first delivery fails: it is retried
            self.events += (await request.json())["events"]
            self.received.set()
            return web.Response()

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/hook", handle)
            self.runner = web.AppRunner(app, handle_signals=False)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def run() -> None:
            self.loop.run_until_complete(start())
            self.loop.run_forever()
            self.loop.run_until_complete(self.runner.cleanup())
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_push_and_delete_notify_the_webhook(tmp_path: pytest.TempPathFactory) -> None:
    hook = _Hook()
    endpoint = Endpoint("test", f"http://127.0.0.1:{hook.port}/hook")
    registry = RunningRegistry(base_config(f"{tmp_path}/root", notifications=(endpoint,)))
    try:
        image = make_image()
        digest = registry.push_image("r", "v1", image)
        registry.request("DELETE", "/v2/r/manifests/v1")
        deadline = time.monotonic() + 20  # delivery is asynchronous, with retries
        while time.monotonic() < deadline and len(hook.events) < len(image.blobs) + 2:
            time.sleep(0.02)
        targets: list[dict[str, str]] = [e["target"] for e in hook.events]  # type: ignore[misc]
        manifest_events = [e for e in hook.events if e["target"].get("tag") == "v1"]  # type: ignore[union-attr]
        actions = [(e["action"], e["target"]["repository"]) for e in manifest_events]  # type: ignore[index]
        assert actions == [("push", "r"), ("delete", "r")]
        assert manifest_events[0]["target"]["digest"] == digest  # type: ignore[index]
        # the first POST got a 503: its event came again, so no blob push was lost
        assert sorted(t["digest"] for t in targets if "tag" not in t) == sorted(image.blobs)
        assert hook.calls == len(image.blobs) + 3
    finally:
        registry.stop()
        hook.stop()


def _slow_remote(blob: bytes, served: bytes, requests: list[str]) -> ThreadedApp:
    """A remote that sends ``served`` (claimed to be ``blob``) in pieces, with pauses."""

    async def get_blob(request: web.Request) -> web.StreamResponse:
        requests.append(request.path)
        if request.match_info["digest"] != sha256(blob):
            return web.Response(status=404)
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = len(served)
        await resp.prepare(request)
        for i in range(0, len(served), 256 * 1024):
            await resp.write(served[i:i + 256 * 1024])
            await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/v2/lib/blob/blobs/{digest}", get_blob)
    return ThreadedApp(app)


def test_cache_miss_streams_to_concurrent_clients_with_one_fetch(
        tmp_path: pytest.TempPathFactory) -> None:
    blob = os.urandom(3 << 20)
    requests: list[str] = []
    remote = _slow_remote(blob, blob, requests)
    cache = RunningRegistry(base_config(f"{tmp_path}/cache", proxy_url=remote.url))
    try:
        bodies: list[bytes] = []
        threads = [threading.Thread(target=lambda: bodies.append(
            cache.request("GET", f"/v2/lib/blob/blobs/{sha256(blob)}").body)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert bodies == [blob] * 3
        assert len(requests) == 1
        again = cache.request("GET", f"/v2/lib/blob/blobs/{sha256(blob)}",
                              headers={"Range": "bytes=0-9"})
        assert again.status == 206 and again.body == blob[:10]
        assert len(requests) == 1
    finally:
        cache.stop()
        remote.stop()


def test_cache_refuses_a_remote_blob_that_does_not_match(tmp_path: pytest.TempPathFactory) -> None:
    blob = os.urandom(1 << 20)
    remote = _slow_remote(blob, os.urandom(len(blob)), [])
    cache = RunningRegistry(base_config(f"{tmp_path}/cache", proxy_url=remote.url))
    try:
        with pytest.raises(http.client.IncompleteRead):
            cache.request("GET", f"/v2/lib/blob/blobs/{sha256(blob)}")
        assert cache.request("HEAD", f"/v2/lib/blob/blobs/{sha256(blob)}").status == 404
        for sub in ("blobs", "uploads"):
            found = [f for _, _, files in os.walk(f"{tmp_path}/cache/{sub}") for f in files]
            assert found == []
    finally:
        cache.stop()
        remote.stop()
