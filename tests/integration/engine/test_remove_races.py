"""``rm -f`` racing a start in flight leaves nothing behind (root, a real daemon).

A forced remove that arrives while the start is still mounting the rootfs, wiring the network,
spawning the monitor or waiting for the runtime's create must not remove the container's
directories from under it: the start either finishes first (and the remove kills the container)
or gives up and deletes what it made. Before that, such a remove left the container's init
blocked on its (deleted) exec fifo, its cgroup, its monitor and its mounts.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import pytest

from tests.support.engine_daemon import EngineDaemon, _cgroup_dirs

pytestmark = [pytest.mark.root, pytest.mark.slow]

ROUNDS = 24
STEP = 0.008   # the remove comes 0, 8, 16 ... 184 ms after the start: every step of the start


def _holders(root: str, spared: set[int]) -> dict[int, str]:
    """Processes (other than ``spared``) with an fd, cwd or root under ``root``."""
    real = os.path.realpath(root) + "/"
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in spared:
            continue
        links = []
        try:
            links = [f"/proc/{entry}/fd/{fd}" for fd in os.listdir(f"/proc/{entry}/fd")]
        except OSError:
            continue
        for link in [f"/proc/{entry}/cwd", f"/proc/{entry}/root", *links]:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if target.startswith(real):
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    cmd = "?"
                found[int(entry)] = f"{cmd[:80]} holds {target}"
                break
    return found


def _children(pid: int) -> set[int]:
    out = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out.update(int(p) for p in f.read().split())
    return out


def _race(d: EngineDaemon, delay: float, body: dict[str, Any]) -> tuple[str, int, int]:
    status, _, out = d.request("POST", "/v1.41/containers/create", {"Image": "busybox", **body})
    assert status == 201, out
    cid = json.loads(out)["Id"]
    got: dict[str, int] = {}

    def start() -> None:
        try:
            got["start"] = d.request("POST", f"/v1.41/containers/{cid}/start")[0]
        except OSError as exc:   # e.g. no answer in 30 s: recorded, asserted on below
            got["start"] = -(exc.errno or 1)

    def remove() -> None:
        time.sleep(delay)
        try:
            got["rm"] = d.request("DELETE", f"/v1.41/containers/{cid}?force=1")[0]
        except OSError as exc:
            got["rm"] = -(exc.errno or 1)

    threads = [threading.Thread(target=start), threading.Thread(target=remove)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return cid, got.get("start", 0), got.get("rm", 0)


@pytest.mark.parametrize("body", [
    {"Cmd": ["sleep", "300"]},
    {"Cmd": ["sleep", "300"], "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1"}]}}},
], ids=["plain", "published-port"])
def test_forced_remove_during_start_leaves_nothing(body: dict[str, Any]) -> None:
    d = EngineDaemon()
    try:
        d.start()
        d.load_busybox()
        results = [_race(d, i * STEP, body) for i in range(ROUNDS)]
        ids = [cid for cid, _, _ in results]
        assert d.proc is not None
        spared = {os.getpid(), d.proc.pid, *_children(d.proc.pid)}   # the daemon and its spawner
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if any(cid in line for cid in ids)]
        runtime = os.path.join(d.exec_root, "runtime")
        left = {
            "processes": _holders(d.root, spared),
            "cgroups": {cid[:12]: _cgroup_dirs(cid) for cid in ids if _cgroup_dirs(cid)},
            "mounts": mounts,
            "runtime state": [os.path.join(dp, n) for dp, dn, _ in os.walk(runtime) for n in dn
                              if n in ids],
        }
        assert left == {"processes": {}, "cgroups": {}, "mounts": [], "runtime state": []}
        status, _, out = d.request("GET", "/v1.41/containers/json?all=1")
        assert status == 200 and json.loads(out) == []
        # the start either won (204) or was refused: the container is (being) removed
        assert {s for _, s, _ in results} <= {204, 404, 409}, results
        assert {r for _, _, r in results} == {204}, results
    finally:
        d.cleanup()
