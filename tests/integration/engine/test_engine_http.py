"""The daemon driven with raw HTTP: create/start/wait/logs/attach framing/errors (root)."""

from __future__ import annotations

import json
import socket
import struct
import time

import pytest

from tests.support.engine_daemon import EngineDaemon

pytestmark = pytest.mark.root


def _create(d: EngineDaemon, body: dict, name: str | None = None) -> str:
    path = "/v1.41/containers/create" + (f"?name={name}" if name else "")
    status, _, out = d.request("POST", path, {"Image": "busybox", **body})
    assert status == 201, out
    return json.loads(out)["Id"]


def _read_frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while len(data) >= 8:
        stream, size = struct.unpack(">BxxxI", data[:8])
        out.append((stream, data[8:8 + size]))
        data = data[8 + size:]
    return out


def test_run_wait_logs_and_remove(daemon: EngineDaemon) -> None:
    cid = _create(daemon, {"Cmd": ["sh", "-c", "echo out; echo err >&2; exit 7"]})
    assert daemon.request("POST", f"/containers/{cid}/start")[0] == 204
    status, _, out = daemon.request("POST", f"/containers/{cid}/wait")
    assert status == 200 and json.loads(out)["StatusCode"] == 7
    status, _, logs = daemon.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
    assert _read_frames(logs) == [(1, b"out\n"), (2, b"err\n")]
    status, _, out = daemon.request("GET", f"/containers/{cid}/json")
    doc = json.loads(out)
    assert doc["State"]["Status"] == "exited" and doc["State"]["ExitCode"] == 7
    assert doc["Config"]["Cmd"] == ["sh", "-c", "echo out; echo err >&2; exit 7"]
    assert doc["Name"].startswith("/")
    assert daemon.request("DELETE", f"/containers/{cid}")[0] == 204
    status, _, out = daemon.request("GET", f"/containers/{cid}/json")
    assert status == 404 and json.loads(out)["message"] == f"No such container: {cid}"


def test_attach_before_start_gets_all_output_and_buffered_stdin(daemon: EngineDaemon) -> None:
    cid = _create(daemon, {"Cmd": ["sh", "-c", "read x; echo got:$x"], "OpenStdin": True, "StdinOnce": True,
                           "AttachStdin": True, "AttachStdout": True, "AttachStderr": True})
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(daemon.sock)
    s.sendall(f"POST /v1.41/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n"
              "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101 UPGRADED")
    assert b"application/vnd.docker.raw-stream" in head
    s.sendall(b"hello\n")
    s.shutdown(socket.SHUT_WR)  # all of stdin, then half-close, before start: as `docker run -i`
    assert daemon.request("POST", f"/containers/{cid}/start")[0] == 204
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    assert _read_frames(data) == [(1, b"got:hello\n")]
    daemon.request("DELETE", f"/containers/{cid}?force=1")


def test_errors_have_dockers_statuses(daemon: EngineDaemon) -> None:
    status, _, out = daemon.request("POST", "/containers/create", {"Image": "nosuch:img", "Cmd": ["true"]})
    assert status == 404 and json.loads(out)["message"].startswith("No such image: ")
    status, _, out = daemon.request("POST", "/containers/create?name=bad%20name", {"Image": "busybox"})
    assert status == 400 and "Invalid container name" in json.loads(out)["message"]
    name = f"dup-{time.time_ns()}"
    cid = _create(daemon, {"Cmd": ["true"]}, name=name)
    status, _, out = daemon.request("POST", f"/containers/create?name={name}", {"Image": "busybox", "Cmd": ["true"]})
    assert status == 409 and "is already in use by container" in json.loads(out)["message"]
    assert daemon.request("POST", f"/containers/{cid}/stop")[0] == 304
    assert daemon.request("POST", f"/containers/{cid}/kill")[0] == 409
    daemon.request("DELETE", f"/containers/{cid}")


def test_running_container_cannot_be_removed_without_force(daemon: EngineDaemon) -> None:
    cid = _create(daemon, {"Cmd": ["sleep", "60"]})
    assert daemon.request("POST", f"/containers/{cid}/start")[0] == 204
    status, _, out = daemon.request("DELETE", f"/containers/{cid}")
    assert status == 409 and "You cannot remove a running container" in json.loads(out)["message"]
    assert daemon.request("DELETE", f"/containers/{cid}?force=1")[0] == 204


def test_logs_tail_since_until_and_timestamps(daemon: EngineDaemon) -> None:
    cid = _create(daemon, {"Cmd": ["sh", "-c", "echo one; sleep 1.2; echo two; echo three"]})
    daemon.request("POST", f"/containers/{cid}/start")
    daemon.request("POST", f"/containers/{cid}/wait")
    _, _, raw = daemon.request("GET", f"/containers/{cid}/logs?stdout=1&timestamps=1")
    lines = [p for _, p in _read_frames(raw)]
    assert [x.split(b" ", 1)[1] for x in lines] == [b"one\n", b"two\n", b"three\n"]
    from dockyard.daemon.logs import parse_time

    t_two = parse_time(lines[1].split(b" ", 1)[0].decode())
    _, _, raw = daemon.request("GET", f"/containers/{cid}/logs?stdout=1&since={t_two - 0.5:.6f}")
    assert [p for _, p in _read_frames(raw)] == [b"two\n", b"three\n"]
    _, _, raw = daemon.request("GET", f"/containers/{cid}/logs?stdout=1&until={t_two - 0.5:.6f}")
    assert [p for _, p in _read_frames(raw)] == [b"one\n"]
    _, _, raw = daemon.request("GET", f"/containers/{cid}/logs?stdout=1&tail=1")
    assert [p for _, p in _read_frames(raw)] == [b"three\n"]
    daemon.request("DELETE", f"/containers/{cid}")


def test_stats_one_shot_has_cgroup_figures(daemon: EngineDaemon) -> None:
    cid = _create(daemon, {"Cmd": ["sleep", "30"], "HostConfig": {"Memory": 64 * 1024 * 1024}})
    daemon.request("POST", f"/containers/{cid}/start")
    try:
        status, _, out = daemon.request("GET", f"/containers/{cid}/stats?stream=0")
        doc = json.loads(out)
        assert status == 200 and doc["id"] == cid
        assert doc["memory_stats"]["limit"] == 64 * 1024 * 1024
        assert doc["memory_stats"]["usage"] > 0
        assert doc["pids_stats"]["current"] == 1
        assert doc["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    finally:
        daemon.request("DELETE", f"/containers/{cid}?force=1")


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Memory": "lots"}}),
    ("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}),
    ("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Binds": ["a:b:c:d"]}}),
    ("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Mounts": [{"Type": "bind", "Source": "/no/such",
                                                                                  "Target": "/x"}]}}),
    ("POST", "/containers/create", {"Image": "Not/A:Valid:Ref"}),
    ("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Runtime": "nosuch"}}),
    ("GET", "/containers/json?limit=abc", None),
    ("GET", "/images/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", None),
    ("POST", "/volumes/create", {"Name": "bad name!"}),
    ("POST", "/images/create?fromSrc=ftp://x", None),
    ("GET", "/events?since=notatime", None),
])
def test_bad_input_is_4xx_never_500(daemon: EngineDaemon, method: str, path: str, body: object) -> None:
    status, _, out = daemon.request(method, path, body)
    assert 400 <= status < 500, out
    assert "message" in json.loads(out)
