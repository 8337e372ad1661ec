"""Events, --init, health checks, volumes and tmpfs, restart policies, prune (root)."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from tests.support.engine_daemon import EngineDaemon

pytestmark = pytest.mark.root


def _run(d: EngineDaemon, body: dict, name: str | None = None) -> str:
    path = "/containers/create" + (f"?name={name}" if name else "")
    status, _, out = d.request("POST", path, {"Image": "busybox", **body})
    assert status == 201, out
    cid = json.loads(out)["Id"]
    status, _, out = d.request("POST", f"/containers/{cid}/start")
    assert status == 204, out
    return cid


def _wait(d: EngineDaemon, cid: str) -> int:
    status, _, out = d.request("POST", f"/containers/{cid}/wait")
    assert status == 200, out
    return int(json.loads(out)["StatusCode"])


def _logs(d: EngineDaemon, cid: str) -> bytes:
    _, _, raw = d.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
    out = b""
    while len(raw) >= 8:
        size = int.from_bytes(raw[4:8], "big")
        out += raw[8:8 + size]
        raw = raw[8 + size:]
    return out


def test_events_replay_a_containers_life_with_filters(daemon: EngineDaemon) -> None:
    since = time.time()
    cid = _run(daemon, {"Cmd": ["true"]}, name=f"ev{time.time_ns()}")
    _wait(daemon, cid)
    daemon.request("DELETE", f"/containers/{cid}")
    flt = urllib.parse.quote(json.dumps({"container": [cid], "type": ["container"]}))
    # The die event is published by the monitor's exit report, which may land a moment after
    # wait answers on a loaded machine: replay until the life is complete (bounded), then
    # check it exactly.
    deadline = time.monotonic() + 10
    while True:
        until = time.time() + 0.01
        status, _, out = daemon.request("GET", f"/events?since={since:.6f}&until={until:.6f}&filters={flt}")
        assert status == 200
        actions = [json.loads(line)["Action"] for line in out.splitlines() if line.strip()]
        if len(actions) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert actions == ["create", "start", "die", "destroy"]
    first = json.loads(out.splitlines()[0])
    assert first["Type"] == "container" and first["Actor"]["ID"] == cid and first["status"] == "create"


def test_init_runs_a_reaper_as_pid_1(daemon: EngineDaemon) -> None:
    cid = _run(daemon, {"Cmd": ["cat", "/proc/1/cmdline"], "HostConfig": {"Init": True}})
    assert _wait(daemon, cid) == 0
    assert _logs(daemon, cid).split(b"\0")[0] == b"/sbin/docker-init"
    daemon.request("DELETE", f"/containers/{cid}")


@pytest.mark.slow
def test_health_check_turns_healthy_then_unhealthy(daemon: EngineDaemon) -> None:
    cid = _run(daemon, {"Cmd": ["sleep", "30"], "Healthcheck": {
        "Test": ["CMD-SHELL", "test ! -e /tmp/sick"], "Interval": 300_000_000, "Retries": 1}})
    try:
        def health() -> str:
            return json.loads(daemon.request("GET", f"/containers/{cid}/json")[2])["State"]["Health"]["Status"]

        deadline = time.monotonic() + 10
        while health() != "healthy" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert health() == "healthy"
        # probes do not pile up as the container's execs
        assert json.loads(daemon.request("GET", f"/containers/{cid}/json")[2])["ExecIDs"] is None
        _, _, out = daemon.request("POST", f"/containers/{cid}/exec", {"Cmd": ["touch", "/tmp/sick"]})
        eid = json.loads(out)["Id"]
        daemon.request("POST", f"/exec/{eid}/start", {"Detach": True})
        while health() != "unhealthy" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert health() == "unhealthy"
    finally:
        daemon.request("DELETE", f"/containers/{cid}?force=1")


def test_named_volume_copy_up_bind_tmpfs_and_volumes_from(daemon: EngineDaemon, tmp_path: object) -> None:
    vol = f"v{time.time_ns()}"
    host_dir = f"{daemon.root}/bind-{time.time_ns()}"
    a = _run(daemon, {"Cmd": ["sh", "-c", "ls /etc/passwd-copy >/dev/null 2>&1; ls /data; echo x > /bind/f; "
                             "mount | grep -c ' /scratch type tmpfs'"],
                      "HostConfig": {"Binds": [f"{vol}:/etc", f"{host_dir}:/bind"], "Tmpfs": {"/scratch": ""}}})
    assert _wait(daemon, a) == 0
    out = _logs(daemon, a)
    assert out.strip().endswith(b"1")  # tmpfs mounted
    with open(f"{host_dir}/f") as f:
        assert f.read() == "x\n"
    status, _, body = daemon.request("GET", f"/volumes/{vol}")
    mountpoint = json.loads(body)["Mountpoint"]
    with open(f"{mountpoint}/passwd") as f:  # copied up from the image's /etc on first use
        assert f.read().startswith("root:x:0:0")
    b = _run(daemon, {"Cmd": ["head", "-1", "/etc/passwd"], "HostConfig": {"VolumesFrom": [a]}})
    assert _wait(daemon, b) == 0 and _logs(daemon, b).startswith(b"root:x:0:0")
    status, _, out = daemon.request("DELETE", f"/volumes/{vol}")
    assert status == 409 and "volume is in use" in json.loads(out)["message"]
    for c in (a, b):
        daemon.request("DELETE", f"/containers/{c}")
    assert daemon.request("DELETE", f"/volumes/{vol}")[0] == 204


def test_on_failure_restart_policy_stops_after_max_retries(daemon: EngineDaemon) -> None:
    cid = _run(daemon, {"Cmd": ["sh", "-c", "exit 3"],
                        "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        doc = json.loads(daemon.request("GET", f"/containers/{cid}/json")[2])
        if doc["RestartCount"] == 2 and doc["State"]["Status"] == "exited":
            break
        time.sleep(0.1)
    assert doc["RestartCount"] == 2 and doc["State"]["ExitCode"] == 3
    daemon.request("DELETE", f"/containers/{cid}")


def test_container_prune_removes_only_stopped_ones(daemon: EngineDaemon) -> None:
    stopped = _run(daemon, {"Cmd": ["true"]})
    _wait(daemon, stopped)
    running = _run(daemon, {"Cmd": ["sleep", "30"]})
    status, _, out = daemon.request("POST", "/containers/prune")
    assert status == 200 and stopped in json.loads(out)["ContainersDeleted"]
    assert running not in json.loads(out)["ContainersDeleted"]
    daemon.request("DELETE", f"/containers/{running}?force=1")


def test_oom_kill_is_recorded(daemon: EngineDaemon) -> None:
    cid = _run(daemon, {"Cmd": ["sh", "-c", 'x=$(head -c 30000000 /dev/zero | tr "\\0" a); echo ${#x}'],
                        "HostConfig": {"Memory": 8 * 1024 * 1024, "MemorySwap": 8 * 1024 * 1024}})
    assert _wait(daemon, cid) == 137
    state = json.loads(daemon.request("GET", f"/containers/{cid}/json")[2])["State"]
    assert state["OOMKilled"] is True
    daemon.request("DELETE", f"/containers/{cid}")


def test_read_only_rootfs_and_dropped_caps(daemon: EngineDaemon) -> None:
    cid = _run(daemon, {"Cmd": ["sh", "-c", "touch /x 2>&1; chown 1 /dev/shm 2>&1; echo done"],
                        "HostConfig": {"ReadonlyRootfs": True, "CapDrop": ["ALL"]}})
    assert _wait(daemon, cid) == 0
    out = _logs(daemon, cid)
    assert b"Read-only file system" in out and b"Operation not permitted" in out and out.endswith(b"done\n")
    daemon.request("DELETE", f"/containers/{cid}")
