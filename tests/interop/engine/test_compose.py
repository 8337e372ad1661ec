"""docker-compose 1.29 (Debian's ``docker-compose``, docker-py underneath) against our daemon,
and the same project against the reference dockerd.

A two-service project on the project's default network: ``web`` serves a page (written into a
named volume) with busybox httpd, ``client`` fetches it by service name. ``up -d``, ``ps``,
``logs``, ``exec`` and ``down -v`` must all work, and ``down -v`` must leave no container,
network or volume of the project behind (checked through the daemon's API).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.engine_daemon import EngineDaemon, ReferenceDockerd

pytestmark = [pytest.mark.interop, pytest.mark.root, pytest.mark.slow]

COMPOSE = shutil.which("docker-compose")

PROJECT_YML = """\
version: "2.4"
services:
  web:
    image: busybox:latest
    entrypoint: ["sh", "-c", "echo {page} > /www/index.html && exec httpd -f -p 80 -h /www"]
    labels:
      dockyard.test: {label}
    volumes:
      - site:/www
  client:
    image: busybox:latest
    depends_on: [web]
    command: ["sh", "-c", "for i in $$(seq 40); do printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc web 80 | grep -q {page} && echo FETCHED-{page} && exit 0; sleep 0.25; done; echo FETCH-FAILED; exit 1"]
volumes:
  site:
    labels:
      dockyard.test: {label}
"""


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("docker", timeout=30)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(self._path)


def _api(sock: str, path: str) -> Any:
    conn = _UnixHTTP(sock)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (path, resp.status, body)
        return json.loads(body)
    finally:
        conn.close()


@pytest.fixture(scope="module", params=["dockyard", "dockerd"])
def engine_sock(request: pytest.FixtureRequest, daemon: EngineDaemon) -> Iterator[str]:
    if COMPOSE is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    if request.param == "dockyard":
        yield daemon.sock
        return
    if shutil.which("dockerd") is None:
        pytest.skip("the reference dockerd is not installed")
    ref = ReferenceDockerd(bridge=False)
    try:
        ref.start()
        image = daemon.docker("save", "busybox:latest", check=True).stdout
        loaded = ref.docker("load", input=image)
        assert loaded.returncode == 0, loaded.stderr
        yield ref.sock
    finally:
        ref.stop()


def _compose(sock: str, project: str, workdir: str, *args: str,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    env = dict(os.environ, DOCKER_HOST="unix://" + sock, DOCKER_CONFIG=os.path.join(workdir, ".docker"),
               COMPOSE_INTERACTIVE_NO_CLI="1")
    env.pop("DOCKER_TLS_VERIFY", None)
    return subprocess.run([COMPOSE, "--no-ansi", "-p", project, *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _leftovers(sock: str, project: str) -> dict[str, list[str]]:
    def ours(name: str, labels: dict[str, str] | None) -> bool:
        return name.lstrip("/").startswith(project + "_") or \
            (labels or {}).get("com.docker.compose.project") == project

    return {
        "containers": [c["Names"][0] for c in _api(sock, "/v1.41/containers/json?all=1")
                       if any(ours(n, c.get("Labels")) for n in c["Names"])],
        "networks": [n["Name"] for n in _api(sock, "/v1.41/networks") if ours(n["Name"], n.get("Labels"))],
        "volumes": [v["Name"] for v in _api(sock, "/v1.41/volumes")["Volumes"] or []
                    if ours(v["Name"], v.get("Labels"))],
    }


def test_compose_up_ps_logs_exec_down(engine_sock: str) -> None:
    tag = f"{os.getpid()}{os.urandom(3).hex()}"
    project, page, label = f"dyc{tag}", f"page-{tag}", f"compose-{tag}"
    workdir = tempfile.mkdtemp(prefix="dy-compose-")
    with open(os.path.join(workdir, "docker-compose.yml"), "w") as f:
        f.write(PROJECT_YML.format(page=page, label=label))
    try:
        up = _compose(engine_sock, project, workdir, "up", "-d")
        assert up.returncode == 0, up.stderr
        # the client exits 0 once it has fetched the page from http://web/ by service name
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = _api(engine_sock, f"/v1.41/containers/{project}_client_1/json")["State"]
            if state["Status"] == "exited":
                break
            time.sleep(0.2)
        logs = _compose(engine_sock, project, workdir, "logs", "--no-color", "client")
        assert logs.returncode == 0, logs.stderr
        assert f"FETCHED-{page}" in logs.stdout, logs.stdout
        assert state["ExitCode"] == 0, logs.stdout

        ps = _compose(engine_sock, project, workdir, "ps")
        assert ps.returncode == 0, ps.stderr
        rows = {line.split()[0]: line for line in ps.stdout.splitlines()[2:] if line.strip()}
        assert "Up" in rows[f"{project}_web_1"], ps.stdout
        assert "Exit 0" in rows[f"{project}_client_1"], ps.stdout

        ex = _compose(engine_sock, project, workdir, "exec", "-T", "web", "cat", "/www/index.html")
        assert (ex.returncode, ex.stdout) == (0, page + "\n"), ex.stderr

        web = _api(engine_sock, f"/v1.41/containers/{project}_web_1/json")
        assert web["Config"]["Labels"]["dockyard.test"] == label
        assert web["Config"]["Labels"]["com.docker.compose.service"] == "web"
        assert list(web["NetworkSettings"]["Networks"]) == [f"{project}_default"]
        vol = _api(engine_sock, f"/v1.41/volumes/{project}_site")
        assert vol["Labels"]["dockyard.test"] == label
        assert any(m.get("Name") == f"{project}_site" and m["Destination"] == "/www" for m in web["Mounts"])
        before = _leftovers(engine_sock, project)
        assert (len(before["containers"]), len(before["networks"]), len(before["volumes"])) == (2, 1, 1), before

        down = _compose(engine_sock, project, workdir, "down", "-v", "-t", "1")
        assert down.returncode == 0, down.stderr
        assert _leftovers(engine_sock, project) == {"containers": [], "networks": [], "volumes": []}
    finally:
        _compose(engine_sock, project, workdir, "down", "-v", "-t", "0")
        shutil.rmtree(workdir, ignore_errors=True)
