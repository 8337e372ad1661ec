"""The registry endpoints, driven by docker-py (the client library Docker users script with)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.support import registries as r
from tests.unit.distribution.fake_registry import FakeRegistry, serve

docker = pytest.importorskip("docker")

# the API layer keeps plain string keys on the app and requests (its choice)
pytestmark = [
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]


@dataclass
class _Cfg:
    config_file: str


@dataclass
class _Events:
    published: list[tuple[str, str, str]] = field(default_factory=list)

    def publish(self, type_: str, action: str, actor: str, **attrs: str) -> None:
        self.published.append((type_, action, actor))


@dataclass
class _Engine:
    cfg: _Cfg
    images: Any
    events: _Events = field(default_factory=_Events)


class _Server:
    """Our API app (registry routes only) and a fake registry, on one loop in a thread."""

    def __init__(self, store: Any, config_file: str, registry: FakeRegistry) -> None:
        self.engine = _Engine(_Cfg(config_file), store)
        self.registry = registry
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop: asyncio.Event | None = None
        self.url = ""
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        from dockyard.api.app import Routes, api_middleware
        from dockyard.api.routes import distribution, images

        app = web.Application(middlewares=[api_middleware])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", web.NotAppKeyWarning)
            app["engine"] = self.engine  # the engine's own (string) key
        images.register(Routes(app))  # owns POST /images/create, hands fromImage to us
        distribution.register(Routes(app))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"tcp://127.0.0.1:{port}"
        self.stop = asyncio.Event()
        async with serve(self.registry):
            self.ready.set()
            await self.stop.wait()
        await runner.cleanup()

    def __enter__(self) -> _Server:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.stop is not None
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def server(store: Any, tmp_path: Any) -> Iterator[_Server]:
    reg = FakeRegistry(auth="basic", users={"alice": "pw"})
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"max-concurrent-downloads": 1}))
    with _Server(store, str(cfg), reg) as s:
        yield s


def test_pull_streams_docker_progress_to_docker_py(server: _Server) -> None:
    img = r.TestImage([r.layer_tar([r.file("a", b"a")]), r.layer_tar([r.file("b", b"b")])])
    digest = server.registry.add_image("app", "v1", img)
    client = docker.APIClient(base_url=server.url, version="1.41")
    repo = f"{server.registry.host}/app"
    lines = list(client.pull(repo, tag="v1", stream=True, decode=True,
                             auth_config={"username": "alice", "password": "pw"}))
    statuses = [m.get("status") for m in lines]
    assert statuses[0] == "Pulling from app"
    assert f"Digest: {digest}" in statuses
    assert statuses[-1] == f"Status: Downloaded newer image for {repo}:v1"
    assert server.engine.images.get(img.image_id).repo_tags == (f"{repo}:v1",)
    assert ("image", "pull", f"{repo}:v1") in server.engine.events.published


def test_pull_errors_before_progress_are_http_errors(server: _Server) -> None:
    client = docker.APIClient(base_url=server.url, version="1.41")
    with pytest.raises(docker.errors.APIError) as info:
        client.pull(f"{server.registry.host}/app", tag="v1",
                    auth_config={"username": "alice", "password": "wrong"})
    assert info.value.status_code == 404  # dockerd: "pull access denied", not 401 (no prompt)
    assert "pull access denied" in str(info.value)
    with pytest.raises(docker.errors.APIError) as info:
        client.pull("Invalid//Name")
    assert info.value.status_code == 400


def test_pull_errors_after_progress_end_the_stream(server: _Server) -> None:
    img = r.TestImage([r.layer_tar([r.file("a", b"a" * 5000)])])
    server.registry.add_image("app", "v1", img)
    server.registry.faults.blob_bytes[img.layers[0].digest] = b"x" * len(img.layers[0].data)
    client = docker.APIClient(base_url=server.url, version="1.41")
    lines = list(client.pull(f"{server.registry.host}/app", tag="v1", stream=True, decode=True,
                             auth_config={"username": "alice", "password": "pw"}))
    assert "verification failed" in lines[-1]["error"]
    assert lines[-1]["errorDetail"]["message"] == lines[-1]["error"]


def test_push_login_and_search_endpoints(server: _Server) -> None:
    img = r.TestImage([r.layer_tar([r.file("a", b"a")])])
    server.registry.add_image("base", "1", img)
    client = docker.APIClient(base_url=server.url, version="1.41")
    creds = {"username": "alice", "password": "pw"}
    client.pull(f"{server.registry.host}/base", tag="1", auth_config=creds)
    server.engine.images.tag(img.image_id, f"{server.registry.host}/copy:2")
    out = list(client.push(f"{server.registry.host}/copy", tag="2", stream=True, decode=True, auth_config=creds))
    aux = [m["aux"] for m in out if "aux" in m]
    assert aux and aux[0]["Tag"] == "2"
    assert "copy" in server.registry.repos
    result = client.login("alice", "pw", registry=server.registry.host, reauth=True)
    assert result["Status"] == "Login Succeeded"
    with pytest.raises(docker.errors.APIError) as info:
        client.login("alice", "bad", registry=server.registry.host, reauth=True)
    assert info.value.status_code == 401
    header = base64.urlsafe_b64encode(json.dumps(creds).encode()).decode()
    found = client._result(client._get(client._url("/images/search"),
                                       params={"term": f"{server.registry.host}/cop"},
                                       headers={"X-Registry-Auth": header}), True)
    assert [x["name"] for x in found] == ["copy"]


def test_pull_without_a_tag_pulls_every_tag(server: _Server) -> None:
    for tag in ("a", "b"):
        server.registry.add_image("multi", tag, r.TestImage([r.layer_tar([r.file(tag, tag.encode())])]))
    client = docker.APIClient(base_url=server.url, version="1.41")
    repo = f"{server.registry.host}/multi"
    lines = list(client.pull(repo, all_tags=True, stream=True, decode=True,
                             auth_config={"username": "alice", "password": "pw"}))
    assert lines[-1]["status"] == f"Status: Downloaded newer image for {repo}"
    assert {t for i in server.engine.images.list() for t in i.repo_tags} >= {f"{repo}:a", f"{repo}:b"}


def test_concurrent_pulls_of_one_image_share_one_download(server: _Server) -> None:
    img = r.TestImage([r.layer_tar([r.file("big", os.urandom(400_000))])])
    server.registry.add_image("shared", "1", img)
    server.registry.faults.slow_blob = 0.5  # keep the first pull busy while the second comes
    repo = f"{server.registry.host}/shared"
    outputs: list[list[dict[str, Any]]] = []

    def one() -> None:
        client = docker.APIClient(base_url=server.url, version="1.41")
        outputs.append(list(client.pull(repo, tag="1", stream=True, decode=True,
                                        auth_config={"username": "alice", "password": "pw"})))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(outputs) == 2
    for out in outputs:
        assert out[-1]["status"] == f"Status: Downloaded newer image for {repo}:1"
    blob_gets = [p for m, p, _ in server.registry.log if m == "GET" and img.layers[0].digest in p]
    assert len(blob_gets) == 1


def test_max_concurrent_downloads_holds_across_pulls(server: _Server) -> None:
    # daemon.json says 1: two pulls of different images never fetch two layers at once
    for name in ("one", "two"):
        img = r.TestImage([r.layer_tar([r.file(f"{name}{i}", os.urandom(100_000))]) for i in range(2)])
        server.registry.add_image(name, "1", img)
    server.registry.faults.slow_blob = 0.2
    done: list[str] = []

    def one(name: str) -> None:
        client = docker.APIClient(base_url=server.url, version="1.41")
        out = list(client.pull(f"{server.registry.host}/{name}", tag="1", stream=True, decode=True,
                               auth_config={"username": "alice", "password": "pw"}))
        done.append(out[-1]["status"])

    threads = [threading.Thread(target=one, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(done) == 2 and all(s.startswith("Status: Downloaded newer image") for s in done)
    assert server.registry.max_inflight == 1
