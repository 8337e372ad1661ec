"""SIGKILL the daemon while containers run; a new daemon finds them, manages them, and knows
how the ones that ended meanwhile exited (live restore), with their logs (root, slow)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator

import pytest

from tests.support.engine_daemon import EngineDaemon

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
def own_daemon() -> Iterator[EngineDaemon]:
    d = EngineDaemon()
    try:
        d.start()
        d.load_busybox()
        yield d
    finally:
        d.cleanup()


def _run(d: EngineDaemon, name: str, cmd: list[str], restart: str = "no") -> str:
    status, _, out = d.request("POST", f"/containers/create?name={name}",
                               {"Image": "busybox", "Cmd": cmd, "HostConfig": {"RestartPolicy": {"Name": restart}}})
    assert status == 201, out
    cid = json.loads(out)["Id"]
    assert d.request("POST", f"/containers/{cid}/start")[0] == 204
    return cid


def _state(d: EngineDaemon, name: str) -> dict:
    status, _, out = d.request("GET", f"/containers/{name}/json")
    assert status == 200, out
    return json.loads(out)["State"]


def test_sigkill_of_the_daemon_keeps_containers_and_their_fate(own_daemon: EngineDaemon) -> None:
    d = own_daemon
    _run(d, "runner", ["sh", "-c", "echo up; sleep 300"])
    _run(d, "ender", ["sh", "-c", "echo before; sleep 1; echo after; exit 9"])
    pid = _state(d, "runner")["Pid"]
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    time.sleep(1.8)  # "ender" exits while no daemon runs; its monitor records it
    d.start()
    runner = _state(d, "runner")
    assert runner["Running"] is True and runner["Pid"] == pid
    ender = _state(d, "ender")
    assert ender["Status"] == "exited" and ender["ExitCode"] == 9
    _, _, logs = d.request("GET", "/containers/ender/logs?stdout=1")
    assert logs.endswith(b"after\n") and b"before\n" in logs
    # the survivor is still manageable: exec, then stop
    status, _, out = d.request("POST", "/containers/runner/exec", {"Cmd": ["true"]})
    assert status == 201, out
    assert d.request("POST", "/containers/runner/stop?t=1")[0] == 204
    assert _state(d, "runner")["Running"] is False
    assert d.request("DELETE", "/containers/runner")[0] == 204


def test_restart_policy_always_is_honoured_after_a_daemon_restart(own_daemon: EngineDaemon) -> None:
    d = own_daemon
    _run(d, "always", ["sh", "-c", "sleep 1; exit 1"], restart="always")
    d.stop(signal.SIGKILL)
    time.sleep(1.5)
    d.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        st = _state(d, "always")
        _, _, out = d.request("GET", "/containers/always/json")
        if json.loads(out)["RestartCount"] >= 1 and st["Running"]:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"not restarted: {out!r}")
    assert d.request("POST", "/containers/always/stop?t=1")[0] == 204
    time.sleep(2.5)
    assert _state(d, "always")["Running"] is False  # a manual stop is not undone


def test_a_start_cut_short_by_sigkill_leaves_a_created_container(own_daemon: EngineDaemon) -> None:
    d = own_daemon
    cid = _run(d, "halfway", ["sleep", "300"])
    pid = _state(d, "halfway")["Pid"]
    d.stop(signal.SIGKILL)
    # what the record says when the daemon dies between spawning the monitor and "start"
    path = f"{d.data_root}/containers/{cid}/config.v2.json"
    with open(path) as f:
        record = json.load(f)
    record["state"]["status"] = "created"
    with open(path, "w") as f:
        json.dump(record, f)
    d.start()
    assert _state(d, "halfway")["Status"] == "created"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except OSError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the half-started container's process is still alive")
    assert d.request("POST", "/containers/halfway/start")[0] == 204
    assert _state(d, "halfway")["Running"] is True
    assert d.request("DELETE", "/containers/halfway?force=1")[0] == 204
