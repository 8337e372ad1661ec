"""cgroup v2 code on a real cgroup2 hierarchy: device programs, freezer, cgroup.kill.

This machine's cgroup2 hierarchy (/sys/fs/cgroup/unified, hybrid mode) carries no resource
controllers, but device programs, cgroup.freeze/cgroup.events and cgroup.kill are core cgroup2
features of every directory, so that part of the v2 code runs on the real kernel here. The directories are made by hand: create() would delegate controllers at the
hierarchy root, which this test must not change.
"""

from __future__ import annotations

import errno
import os
import select
import signal

import pytest

from dockyard.cgroups import CgroupV2
from dockyard.cgroups.ebpf import attached_programs
from tests.support.forked import run_forked, spawn

pytestmark = pytest.mark.root


def _open_all(cg: CgroupV2) -> list[str]:
    cg.apply(os.getpid())
    out = []
    for path, flags in (("/dev/null", os.O_RDWR), ("/dev/kmsg", os.O_RDONLY), ("/dev/kmsg", os.O_WRONLY),
                        ("/dev/loop-control", os.O_RDONLY)):
        try:
            os.close(os.open(path, flags))
            out.append("ok")
        except OSError as exc:
            out.append(errno.errorcode[exc.errno or 0])
    return out


def test_device_rules_allow_defaults_and_listed_access_only(v2_cgroup: CgroupV2) -> None:
    if not os.path.exists("/dev/loop-control") or not os.path.exists("/dev/kmsg"):
        pytest.skip("needs /dev/kmsg and /dev/loop-control on the host")
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]
    v2_cgroup.set({"devices": rules})
    assert run_forked(lambda: _open_all(v2_cgroup)) == ["ok", "ok", "EPERM", "EPERM"]


def test_updating_rules_replaces_the_program(v2_cgroup: CgroupV2) -> None:
    v2_cgroup.set({"devices": [{"allow": False, "access": "rwm"}]})
    first = attached_programs(v2_cgroup.dir)
    v2_cgroup.set({"devices": [{"allow": False, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 10, "minor": 237, "access": "rwm"}]})
    second = attached_programs(v2_cgroup.dir)
    assert len(first) == len(second) == 1 and first != second
    if os.path.exists("/dev/loop-control"):
        assert run_forked(lambda: _open_all(v2_cgroup))[3] == "ok"


def test_v2_freeze_stops_a_writer_and_thaw_resumes_it(v2_cgroup: CgroupV2) -> None:
    proc = spawn(v2_cgroup, "import sys, time\nwhile True:\n    sys.stdout.write('x\\n'); sys.stdout.flush(); time.sleep(0.01)")
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    try:
        select.select([fd], [], [], 10)
        v2_cgroup.freeze()
        assert v2_cgroup.frozen()
        while select.select([fd], [], [], 0)[0]:
            if not os.read(fd, 65536):
                break
        assert select.select([fd], [], [], 0.3)[0] == []
        v2_cgroup.thaw()
        assert not v2_cgroup.frozen()
        assert select.select([fd], [], [], 10)[0] == [fd]
    finally:
        proc.kill()
        proc.wait()


def test_v2_kill_all_kills_every_process(v2_cgroup: CgroupV2) -> None:
    proc = spawn(v2_cgroup, "import time\nif os.fork() == 0:\n    os.close(1)\ntime.sleep(60)")
    assert proc.stdout is not None
    v2_cgroup.kill_all()
    assert proc.wait(timeout=10) == -signal.SIGKILL
    v2_cgroup.destroy()  # waits for the grandchild to leave
    assert not v2_cgroup.exists()
