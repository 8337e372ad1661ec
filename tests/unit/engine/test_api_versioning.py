"""Versioning, errors and route shapes of the API, against a fake engine (no root)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dockyard.api.app import build_app
from dockyard.daemon.config import DaemonConfig
from dockyard.daemon.events import EventBus
from dockyard.errors import ContainerNotFound


class FakeContainers:
    containers: dict[str, Any] = {}

    def get(self, ref: str) -> Any:
        raise ContainerNotFound(ref)

    def list(self, **_: Any) -> list[Any]:
        return []

    async def create(self, name: str | None, body: dict[str, Any], platform: str = "") -> Any:
        raise AssertionError("create must not be reached with bad input")


def fake_engine() -> Any:
    facts = SimpleNamespace(kernel="6.1.0", os_name="Debian", arch="x86_64", ncpu=2, mem_total=1 << 30,
                            hostname="h", cgroup_version="1", cgroup_driver="cgroupfs", storage_driver="overlay2",
                            backing_fs="extfs", swap_limit=False)
    return SimpleNamespace(cfg=DaemonConfig(), containers=FakeContainers(), images=None, image_error="none",
                           volumes=SimpleNamespace(list=list), events=EventBus(), facts=facts, id="x")


def call(method: str, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    async def go() -> tuple[int, dict[str, str], bytes]:
        async with TestClient(TestServer(build_app(fake_engine()))) as client:
            resp = await client.request(method, path, **kw)
            return resp.status, dict(resp.headers), await resp.read()
    return asyncio.run(go())


def test_ping_head_and_get_carry_version_headers() -> None:
    for method in ("HEAD", "GET"):
        status, headers, body = call(method, "/_ping")
        assert status == 200
        assert headers["Api-Version"] == "1.41"
        assert headers["Ostype"] == "linux"
        assert headers["Docker-Experimental"] == "false"
        assert headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
        assert headers["Pragma"] == "no-cache"
        assert body == (b"OK" if method == "GET" else b"")


@pytest.mark.parametrize("version", ["1.24", "1.30", "1.41"])
def test_supported_versions_are_served_with_and_without_prefix(version: str) -> None:
    assert call("GET", f"/v{version}/version")[0] == 200
    assert call("GET", "/version")[0] == 200


def test_too_new_version_gets_dockers_400() -> None:
    status, _, body = call("GET", "/v1.42/version")
    assert status == 400
    assert json.loads(body) == {"message": "client version 1.42 is too new. Maximum supported API version is 1.41"}


def test_too_old_version_gets_400() -> None:
    status, _, body = call("GET", "/v1.12/info")
    assert status == 400
    assert "is too old. Minimum supported API version is 1.24" in json.loads(body)["message"]


def test_missing_container_is_404_with_exact_text() -> None:
    status, headers, body = call("GET", "/v1.41/containers/nothere/json")
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"message": "No such container: nothere"}


@pytest.mark.parametrize("body", [b"{not json", b"[1,2]", b'{"Image": 5}', b'{"Image":"x","Tty":"yes"}',
                                  b'{"Image":"x","HostConfig":{"Binds":"notalist"}}', b'{"Image":"x","Cmd":["a",1]}',
                                  b'{"Image":"x","Labels":{"a":1}}'])
def test_bad_create_bodies_are_400_never_500(body: bytes) -> None:
    status, _, out = call("POST", "/containers/create", data=body, headers={"Content-Type": "application/json"})
    assert status == 400, out
    assert "message" in json.loads(out)


def test_unknown_path_is_404_json() -> None:
    status, _, body = call("GET", "/v1.41/nope")
    assert status == 404
    assert json.loads(body) == {"message": "page not found"}


def test_bad_filters_are_400() -> None:
    assert call("GET", "/containers/json?filters=notjson")[0] == 400


def test_version_document_shape() -> None:
    _, _, body = call("GET", "/version")
    doc = json.loads(body)
    assert doc["ApiVersion"] == "1.41"
    assert doc["MinAPIVersion"] == "1.24"
    assert doc["Os"] == "linux"
    assert doc["Components"][0]["Name"] == "Engine"


def test_info_reports_counts_and_host_facts() -> None:
    _, _, body = call("GET", "/info")
    doc = json.loads(body)
    assert doc["Containers"] == 0
    assert doc["NCPU"] == 2
    assert doc["MemTotal"] == 1 << 30
    assert doc["CgroupVersion"] == "1"
    assert doc["LiveRestoreEnabled"] is True


def test_info_host_flags_come_from_the_host(tmp_path: Any) -> None:
    from dockyard.daemon.hostinfo import backing_fs as _backing_fs
    from dockyard.daemon.hostinfo import read_flag as _read_flag

    doc = json.loads(call("GET", "/info")[2])
    assert doc["Plugins"]["Network"] == ["bridge", "host", "null"]
    with open("/proc/sys/net/ipv4/ip_forward") as fh:
        assert doc["IPv4Forwarding"] is (fh.read().strip() == "1")
    flag = tmp_path / "flag"
    flag.write_text("0\n")
    assert _read_flag(str(flag)) is False
    flag.write_text("1\n")
    assert _read_flag(str(flag)) is True
    assert _read_flag(str(tmp_path / "missing")) is False
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                         "30 22 0:40 / /var/lib/dy rw - xfs /dev/sdb rw\n"
                         "31 22 0:41 / /var/lib/dyx rw - tmpfs tmpfs rw\n")
    assert _backing_fs("/var/lib/dy/x", str(mountinfo)) == "xfs"
    assert _backing_fs("/var/lib/dyz", str(mountinfo)) == "extfs"
    assert _backing_fs("/var/lib/dyx", str(mountinfo)) == "tmpfs"
