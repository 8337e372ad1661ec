"""The docker Python SDK (docker-py) against our daemon."""

from __future__ import annotations

import os

import pytest

from tests.support.engine_daemon import EngineDaemon

pytestmark = [pytest.mark.interop, pytest.mark.root]
docker = pytest.importorskip("docker")


def test_docker_py_run_logs_exec_and_errors(daemon: EngineDaemon) -> None:
    client = docker.DockerClient(base_url=daemon.host)
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.41"
        out = client.containers.run("busybox", ["sh", "-c", "echo py-hello"], remove=True)
        assert out == b"py-hello\n"
        name = f"py-{os.getpid()}"
        c = client.containers.run("busybox", ["sleep", "60"], name=name, detach=True)
        try:
            c.reload()
            assert c.status == "running"
            code, output = c.exec_run(["sh", "-c", "echo from-exec; exit 3"])
            assert (code, output) == (3, b"from-exec\n")
            assert name in [x.name for x in client.containers.list()]
            c.stop(timeout=1)
            assert c.wait()["StatusCode"] == 137
        finally:
            c.remove(force=True)
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(name)
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("no-such-image:here")
        assert any("busybox:latest" in i.tags for i in client.images.list())
    finally:
        client.close()


def test_docker_py_attach_socket_and_volumes(daemon: EngineDaemon) -> None:
    client = docker.DockerClient(base_url=daemon.host)
    vol = f"pyvol-{os.getpid()}"
    try:
        client.volumes.create(vol)
        client.containers.run("busybox", ["sh", "-c", "echo kept > /v/f"], volumes={vol: {"bind": "/v"}},
                              remove=True)
        out = client.containers.run("busybox", ["cat", "/v/f"], volumes={vol: {"bind": "/v"}}, remove=True)
        assert out == b"kept\n"
        assert vol in [v.name for v in client.volumes.list()]
    finally:
        client.volumes.get(vol).remove(force=True)
        client.close()
