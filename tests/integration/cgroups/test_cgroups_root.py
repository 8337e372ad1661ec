"""Real cgroups on this machine (v1 controllers in hybrid mode; v2 elsewhere): limits bite.

Each test gets its own cgroup /dockyard-test/<uuid>, killed and removed in the finalizer.
Processes are plain Python children placed in the cgroup before they start their work.
"""

from __future__ import annotations

import errno
import inspect
import json
import os
import select
import signal

import pytest

from dockyard.cgroups import Cgroup, open_cgroup
from tests.support.forked import spawn

pytestmark = pytest.mark.root


def test_limits_are_written_to_the_kernel(cgroup: Cgroup) -> None:
    cgroup.set({"memory": {"limit": 64 << 20, "reservation": 32 << 20},
                "cpu": {"shares": 512, "quota": 25000, "period": 100000, "cpus": "0"},
                "pids": {"limit": 50}, "blockIO": {"weight": 300}})
    st = cgroup.stats()
    assert st.memory.limit == 64 << 20
    assert st.pids.limit == 50
    if cgroup.mode != "v2":
        root = "/sys/fs/cgroup"
        with open(f"{root}/cpu/{cgroup.path}/cpu.cfs_quota_us") as f:
            assert f.read().strip() == "25000"
        with open(f"{root}/cpu/{cgroup.path}/cpu.shares") as f:
            assert f.read().strip() == "512"
        with open(f"{root}/cpuset/{cgroup.path}/cpuset.cpus") as f:
            assert f.read().strip() == "0"
        weights = [f"{root}/blkio/{cgroup.path}/{n}" for n in ("blkio.weight", "blkio.bfq.weight")]
        present = [w for w in weights if os.path.exists(w)]
        if present:  # this machine: BFQ's file, in non-root cgroups only
            with open(present[0]) as f:
                assert f.read().split()[-1] == "300"


def test_a_32mib_memory_limit_oom_kills_a_hog_and_is_counted(cgroup: Cgroup) -> None:
    cgroup.set({"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    assert cgroup.oom_kill_count() == 0
    hog = spawn(cgroup, "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))")
    assert hog.wait(timeout=60) == -signal.SIGKILL
    assert cgroup.oom_kill_count() == 1
    assert cgroup.stats().memory.max_usage >= 30 << 20 or cgroup.mode == "v2"


def test_a_pids_limit_stops_a_fork_loop(cgroup: Cgroup) -> None:
    cgroup.set({"pids": {"limit": 8}})
    proc = spawn(cgroup, """
import time
n = 0
try:
    for _ in range(50):
        if os.fork() == 0:
            os.close(1)
            time.sleep(120)
            os._exit(0)
        n += 1
    print(n, 0)
except OSError as exc:
    print(n, exc.errno)
""")
    out, _ = proc.communicate(timeout=60)
    forked, err = (int(x) for x in out.split())
    assert forked == 7  # the parent is the 8th task
    assert err == 11  # EAGAIN
    assert cgroup.stats().pids.current == 7  # the sleeping children


def test_freeze_stops_every_process_and_thaw_resumes(cgroup: Cgroup) -> None:
    proc = spawn(cgroup, "import sys, time\nwhile True:\n    sys.stdout.write('x\\n'); sys.stdout.flush(); time.sleep(0.01)")
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    select.select([fd], [], [], 10)
    cgroup.freeze()
    assert cgroup.frozen()
    while select.select([fd], [], [], 0)[0]:  # drain what was written before the freeze
        if not os.read(fd, 65536):
            break
    assert select.select([fd], [], [], 0.3)[0] == []  # a running child writes every 10 ms
    cgroup.thaw()
    assert not cgroup.frozen()
    assert select.select([fd], [], [], 10)[0] == [fd]
    proc.kill()
    proc.wait()


def test_stats_report_memory_cpu_and_pids(cgroup: Cgroup) -> None:
    proc = spawn(cgroup, "buf = bytearray(16 << 20)\nsum(range(2000000))\nprint('ready', flush=True)\nimport time\ntime.sleep(60)")
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    st = cgroup.stats()
    assert st.memory.usage >= 16 << 20
    assert st.cpu.usage_total > 0 and st.cpu.system_usage > st.cpu.usage_total
    assert st.pids.current == 1 or cgroup.mode == "v1"  # no pids controller -> 0
    assert cgroup.pids() == [proc.pid]
    proc.kill()
    proc.wait()


def test_kill_all_then_destroy_leaves_no_cgroup(cgroup: Cgroup) -> None:
    proc = spawn(cgroup, "import time\nif os.fork() == 0:\n    os.close(1)\ntime.sleep(60)")
    cgroup.kill_all(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    cgroup.destroy()
    assert not cgroup.exists()
    assert not any(os.path.exists(d) for d in cgroup.directories())


def test_kill_all_and_destroy_reach_a_process_in_a_nested_cgroup(cgroup: Cgroup) -> None:
    nested = open_cgroup(f"/{cgroup.path}/nested")
    nested.create()
    proc = spawn(nested, "import time\ntime.sleep(60)")
    try:
        assert proc.pid in cgroup.pids() and proc.pid not in cgroup.pids(recursive=False)
        cgroup.kill_all(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert not cgroup.frozen()
        cgroup.destroy()  # bottom-up, the nested cgroup first
        assert not nested.exists() and not cgroup.exists()
    finally:
        proc.kill()
        proc.wait()


def test_kill_all_of_an_empty_cgroup_leaves_it_usable(cgroup: Cgroup) -> None:
    cgroup.kill_all(signal.SIGKILL)
    assert not cgroup.frozen() and cgroup.pids() == []
    proc = spawn(cgroup, "print('up', flush=True)")
    assert proc.communicate(timeout=30)[0] == b"up\n"


def _try_open(paths: list[str]) -> list[str]:
    out = []
    for path in paths:
        try:
            os.close(os.open(path, os.O_RDONLY))
            out.append("ok")
        except OSError as exc:
            out.append(errno.errorcode[exc.errno or 0])
    return out


def test_device_rules_are_enforced_and_updated_with_only_the_difference(cgroup: Cgroup) -> None:
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("needs /dev/loop-control on the host")
    deny_all = {"allow": False, "access": "rwm"}
    cgroup.set({"devices": [deny_all]})
    child = spawn(cgroup, f"import json, errno\n{inspect.getsource(_try_open)}\n"
                          "print(json.dumps(_try_open(['/dev/null', '/dev/loop-control'])))")
    assert json.loads(child.communicate(timeout=30)[0]) == ["ok", "EPERM"]
    cgroup.set({"devices": [deny_all, {"allow": True, "type": "c", "major": 10, "minor": 237, "access": "r"}]})
    if cgroup.mode != "v2":
        with open(f"/sys/fs/cgroup/devices/{cgroup.path}/devices.list") as f:
            listed = f.read().splitlines()
        assert "c 10:237 r" in listed and "c 1:3 rwm" in listed
    child = spawn(cgroup, f"import json, errno\n{inspect.getsource(_try_open)}\n"
                          "print(json.dumps(_try_open(['/dev/null', '/dev/loop-control'])))")
    assert json.loads(child.communicate(timeout=30)[0]) == ["ok", "ok"]


def test_kill_all_on_a_paused_cgroup_keeps_it_frozen_until_thawed(cgroup: Cgroup) -> None:
    proc = spawn(cgroup, "import time\nprint('up', flush=True)\ntime.sleep(60)")
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    cgroup.freeze()
    cgroup.kill_all(signal.SIGTERM)
    assert cgroup.frozen()
    cgroup.thaw()
    assert proc.wait(timeout=10) == -signal.SIGTERM


def test_oom_notifier_fires_when_the_hog_is_killed(cgroup: Cgroup) -> None:
    cgroup.set({"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    fd = cgroup.oom_notifier()
    try:
        assert select.select([fd], [], [], 0)[0] == []
        hog = spawn(cgroup, "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))")
        assert hog.wait(timeout=60) == -signal.SIGKILL
        assert select.select([fd], [], [], 10)[0] == [fd]
        assert cgroup.oom_kill_count() == 1
    finally:
        os.close(fd)
