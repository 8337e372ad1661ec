"""The daemon process: TCP listeners, SIGHUP reload, pid file, SIGKILL during an import (root)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support.engine_daemon import REPO, EngineDaemon

pytestmark = pytest.mark.root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fresh() -> Iterator[EngineDaemon]:
    d = EngineDaemon()
    try:
        yield d
    finally:
        d.cleanup()


def test_tcp_on_loopback_serves_the_api(fresh: EngineDaemon) -> None:
    port = _free_port()
    fresh.extra_args = ["-H", f"tcp://127.0.0.1:{port}"]
    fresh.start()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /v1.41/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"OK")


def test_tcp_without_tls_off_loopback_is_refused(fresh: EngineDaemon) -> None:
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    p = subprocess.run([sys.executable, "-m", "dockyard.daemon", "-H", f"tcp://0.0.0.0:{_free_port()}",
                        "--data-root", fresh.data_root, "--exec-root", fresh.exec_root, "--pidfile", fresh.pidfile,
                        "--config-file", fresh.config_file], capture_output=True, env=env, timeout=30)
    assert p.returncode == 1
    assert b"refusing to listen on tcp://0.0.0.0" in p.stderr
    assert not os.path.exists(fresh.pidfile)


def test_second_daemon_on_the_same_pidfile_is_refused(fresh: EngineDaemon) -> None:
    fresh.start()
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    p = subprocess.run([sys.executable, "-m", "dockyard.daemon", "-H", f"unix://{fresh.root}/other.sock",
                        "--data-root", fresh.data_root, "--exec-root", fresh.exec_root, "--pidfile", fresh.pidfile,
                        "--config-file", fresh.config_file], capture_output=True, env=env, timeout=30)
    assert p.returncode == 1 and b"pid file found" in p.stderr
    assert fresh.ping()


def test_sighup_reloads_daemon_json(fresh: EngineDaemon) -> None:
    fresh.start()
    assert json.loads(fresh.request("GET", "/info")[2])["Debug"] is False
    with open(fresh.config_file) as f:
        conf = json.load(f)
    conf["debug"] = True
    with open(fresh.config_file, "w") as f:
        json.dump(conf, f)
    assert fresh.proc is not None
    os.kill(fresh.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while json.loads(fresh.request("GET", "/info")[2])["Debug"] is False and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(fresh.request("GET", "/info")[2])["Debug"] is True


def test_sigkill_during_an_import_leaves_no_half_image(fresh: EngineDaemon) -> None:
    fresh.start()
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(fresh.sock)
        s.sendall(b"POST /v1.41/images/create?fromSrc=-&repo=half&tag=1 HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/x-tar\r\nContent-Length: 50000000\r\n\r\n")
        s.sendall(b"\0" * 4_000_000)  # the daemon is now spooling the upload
        time.sleep(0.3)
        assert fresh.stop(signal.SIGKILL) == -signal.SIGKILL
    fresh.start()
    status, _, out = fresh.request("GET", "/images/json")
    assert status == 200 and json.loads(out) == []
    spool = os.path.join(fresh.data_root, "tmp")
    assert not os.path.isdir(spool) or not os.listdir(spool)
    assert fresh.request("GET", "/images/half:1/json")[0] == 404


def test_socket_group_and_mode(fresh: EngineDaemon) -> None:
    import grp

    fresh.extra_args = ["-G", "nosuchgroup-dy"]
    fresh.start()
    st = os.stat(fresh.sock)
    assert st.st_mode & 0o777 == 0o660 and st.st_gid == 0
    assert "group nosuchgroup-dy not found" in fresh.log()
    fresh.stop()
    fresh.extra_args = ["-G", "daemon"]
    fresh.start()
    assert os.stat(fresh.sock).st_gid == grp.getgrnam("daemon").gr_gid


def test_a_dead_spawner_is_replaced(fresh: EngineDaemon) -> None:
    fresh.start()
    fresh.load_busybox()
    assert fresh.proc is not None
    out = subprocess.run(["pgrep", "-P", str(fresh.proc.pid), "-f", "dockyard.daemon.spawner"],
                         capture_output=True, text=True).stdout.split()
    assert len(out) == 1
    os.kill(int(out[0]), signal.SIGKILL)
    time.sleep(0.2)
    _, _, body = fresh.request("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]})
    cid = json.loads(body)["Id"]
    assert fresh.request("POST", f"/containers/{cid}/start")[0] == 204
    assert json.loads(fresh.request("POST", f"/containers/{cid}/wait")[2])["StatusCode"] == 0


def test_fd_socket_activation(fresh: EngineDaemon) -> None:
    listener = socket.socket(socket.AF_UNIX)
    path = os.path.join(fresh.root, "activated.sock")
    listener.bind(path)
    listener.listen(16)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"), LISTEN_FDS="1")
    env.pop("LISTEN_PID", None)
    # the passed socket must be fd 3, as systemd hands it over
    proc = subprocess.Popen(
        [sys.executable, "-c", "import os, sys; os.dup2(int(sys.argv[1]), 3); "
         "from dockyard.daemon.main import main; sys.exit(main(sys.argv[2:]))", str(listener.fileno()),
         "-H", "fd://", "--data-root", fresh.data_root, "--exec-root", fresh.exec_root, "--pidfile", fresh.pidfile,
         "--config-file", fresh.config_file],
        pass_fds=[listener.fileno()], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listener.close()
    try:
        deadline = time.monotonic() + 20
        data = b""
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(path)
                    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    data = s.recv(4096)
                if data:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert data.startswith(b"HTTP/1.1 200")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_events_stream_live_until(fresh: EngineDaemon) -> None:
    import threading

    fresh.start()
    fresh.load_busybox()
    got: list[bytes] = []
    until = time.time() + 4
    reader = threading.Thread(target=lambda: got.append(
        fresh.request("GET", f"/events?until={until:.3f}&filters=%7B%22type%22%3A%5B%22container%22%5D%7D")[2]))
    reader.start()
    time.sleep(0.5)
    status, _, _ = fresh.request("POST", "/containers/create?name=live", {"Image": "busybox", "Cmd": ["true"]})
    assert status == 201
    fresh.request("POST", "/containers/live/start")
    fresh.request("POST", "/containers/live/wait")
    reader.join(10)
    actions = [json.loads(line)["Action"] for line in got[0].splitlines() if line.strip()]
    assert actions[:3] == ["create", "start", "die"]
