"""The monitor's memory helpers: the spawner's warm-up and the hook-free fork (no root)."""

from __future__ import annotations

import os

from dockyard.shim.monitor import raw_fork, warm_up


def _open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def test_warm_up_leaves_no_fd_and_no_file_behind() -> None:
    before = _open_fds()
    warm_up(rounds=3)
    after = _open_fds()
    assert after == before
    assert not os.path.exists("/nonexistent")


def test_raw_fork_runs_the_child_and_returns_its_pid() -> None:
    r, w = os.pipe()
    pid = raw_fork()
    if pid == 0:  # the child: report its pid, exit without cleanup
        os.write(w, str(os.getpid()).encode())
        os._exit(7)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        reported = int(f.read())
    _, status = os.waitpid(pid, 0)
    assert reported == pid
    assert os.waitstatus_to_exitcode(status) == 7
