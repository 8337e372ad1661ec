"""The library as the shim uses it: in-process, the caller a subreaper reaping the init."""

from __future__ import annotations

import os
import select
import signal
import time
from typing import Any

import pytest

from dockyard.errors import Conflict, InvalidArgument
from dockyard.linux import pty
from dockyard.runtime import Runtime
from tests.integration.runtime.conftest import Bundle, pipe_stdio, wait_exit

pytestmark = pytest.mark.root


def _create(runtime: Runtime, bundle: Bundle, args: list[str], **kw: Any) -> int:
    bundle.spec["process"]["args"] = args
    bundle.write()
    return runtime.create(bundle.id, bundle.path, **kw)


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_lifecycle_created_running_stopped(runtime: Runtime, bundle: Bundle) -> None:
    stdio, read = pipe_stdio()
    pid = _create(runtime, bundle, ["sh", "-c", "echo started"], stdio=stdio)
    assert runtime.state(bundle.id).status == "created"
    assert runtime.state(bundle.id).pid == pid
    runtime.start(bundle.id)
    with pytest.raises(Conflict):
        runtime.start(bundle.id)
    assert wait_exit(pid) == 0
    assert read() == "started\n"
    assert runtime.state(bundle.id).status == "stopped"
    runtime.delete(bundle.id)
    assert runtime.list() == []


def test_memory_limit_oom_kills_a_hog_and_reports_it(runtime: Runtime, bundle: Bundle) -> None:
    limit = 32 * 1024 * 1024
    bundle.spec["linux"]["resources"] = {"memory": {"limit": limit, "swap": limit}}
    pid = _create(runtime, bundle, ["sh", "-c", "tail /dev/zero"])
    runtime.start(bundle.id)
    code = wait_exit(pid)
    assert code == -signal.SIGKILL
    record, _ = runtime.load(bundle.id)
    cg = runtime.cgroup(record)
    assert cg.oom_kill_count() >= 1
    stats = runtime.stats(bundle.id)
    assert stats.memory.limit == limit


def test_pids_limit_stops_a_fork_loop(runtime: Runtime, bundle: Bundle) -> None:
    bundle.spec["linux"]["resources"] = {"pids": {"limit": 10}}
    r, w = os.pipe()
    script = "for i in $(seq 30); do sleep 30 & done"
    pid = _create(runtime, bundle, ["sh", "-c", script], stdio=(0, w, w))
    os.close(w)
    runtime.start(bundle.id)
    _read_until(r, b"can't fork")  # busybox sh gives up at the first refused fork
    assert len(runtime.ps(bundle.id)) <= 10
    runtime.kill(bundle.id, signal.SIGKILL, all=True)
    wait_exit(pid)
    os.close(r)


def test_pause_freezes_and_resume_thaws(runtime: Runtime, bundle: Bundle) -> None:
    pid = _create(runtime, bundle, ["sh", "-c", "while :; do :; done"])
    runtime.start(bundle.id)
    runtime.pause(bundle.id)
    assert runtime.state(bundle.id).status == "paused"
    before = _cpu_ticks(pid)
    time.sleep(0.3)
    assert _cpu_ticks(pid) == before  # a frozen task accumulates no CPU time
    runtime.resume(bundle.id)
    assert runtime.state(bundle.id).status == "running"
    while _cpu_ticks(pid) == before:
        time.sleep(0.01)
    runtime.kill(bundle.id, signal.SIGKILL)
    assert wait_exit(pid) == -signal.SIGKILL


def test_exec_joins_the_namespaces_and_cgroup(runtime: Runtime, bundle: Bundle) -> None:
    pid = _create(runtime, bundle, ["sleep", "60"])
    runtime.start(bundle.id)
    stdio, read = pipe_stdio()
    names = ("pid", "net", "ipc", "uts", "mnt", "cgroup")
    process = dict(bundle.spec["process"],
                   args=["sh", "-c", "for n in " + " ".join(names) +
                         "; do readlink /proc/self/ns/$n; done; echo $$; "
                         "grep memory /proc/self/cgroup; grep memory /proc/1/cgroup"])
    epid = runtime.exec(bundle.id, process, stdio=stdio)
    assert wait_exit(epid) == 0
    lines = read().splitlines()
    assert lines[:len(names)] == [os.readlink(f"/proc/{pid}/ns/{n}") for n in names]
    assert int(lines[len(names)]) > 1  # a pid of the container's pid namespace, not ours
    assert lines[-2] == lines[-1] and lines[-1].endswith(":memory:/")  # the init's cgroup
    runtime.kill(bundle.id, signal.SIGKILL)
    wait_exit(pid)


def test_joining_another_containers_pid_namespace_leaves_ours_alone(runtime: Runtime,
                                                                    bundle: Bundle) -> None:
    """The init is forked straight into its pid namespace (runtime.spawn.fork_in_pid_ns):
    a joined one by path here, and afterwards our own children are born beside us again."""
    first_id = bundle.id
    first = _create(runtime, bundle, ["sleep", "60"])
    try:
        runtime.start(first_id)
        bundle.id = f"{first_id}-b"  # the fixture cleans this one up
        for ns in bundle.spec["linux"]["namespaces"]:
            if ns["type"] == "pid":
                ns["path"] = f"/proc/{first}/ns/pid"
        stdio, read = pipe_stdio()
        second = _create(runtime, bundle, ["sh", "-c", "echo $$; readlink /proc/self/ns/pid"],
                         stdio=stdio)
        assert os.readlink("/proc/self/ns/pid_for_children") == os.readlink("/proc/self/ns/pid")
        runtime.start(bundle.id)
        assert wait_exit(second) == 0
        pid_in_ns, ns = read().split()
        assert int(pid_in_ns) > 1  # the first container's init is pid 1 there
        assert ns == os.readlink(f"/proc/{first}/ns/pid")
    finally:
        runtime.kill(first_id, signal.SIGKILL)
        wait_exit(first)
        runtime.delete(first_id)


def test_exec_refuses_a_stopped_container(runtime: Runtime, bundle: Bundle) -> None:
    pid = _create(runtime, bundle, ["true"])
    runtime.start(bundle.id)
    wait_exit(pid)
    with pytest.raises(Conflict, match="stopped"):
        runtime.exec(bundle.id, dict(bundle.spec["process"], args=["true"]))


def _read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} never came; got {buf!r}"
        if select.select([fd], [], [], left)[0]:
            buf += os.read(fd, 4096)
    return buf


def test_terminal_gives_a_pty_that_resizes(runtime: Runtime, bundle: Bundle) -> None:
    bundle.spec["process"]["terminal"] = True
    bundle.spec["process"]["consoleSize"] = {"height": 24, "width": 80}
    masters: list[int] = []
    pid = _create(runtime, bundle, ["sh", "-c", "tty; stty size; read x; stty size"],
                  console=masters.append)
    assert len(masters) == 1
    master = masters[0]
    runtime.start(bundle.id)
    out = _read_until(master, b"24 80")
    assert b"/dev/pts/0" in out or b"/dev/console" in out
    pty.resize(master, 40, 100)
    os.write(master, b"\n")
    _read_until(master, b"40 100")
    assert wait_exit(pid) == 0
    os.close(master)


def test_failure_half_way_leaves_no_mounts_cgroups_or_processes(runtime: Runtime,
                                                               bundle: Bundle) -> None:
    bundle.spec["process"]["cwd"] = "/no/such/dir"
    bundle.spec["linux"]["resources"] = {"pids": {"limit": 5}}
    with pytest.raises(InvalidArgument, match=r"process\.cwd"):
        _create(runtime, bundle, ["true"])
    assert runtime.list() == []
    assert not [d for d in bundle.cgroup_dirs() if os.path.exists(d)]
    with open("/proc/self/mountinfo") as f:
        assert bundle.path not in f.read()


def test_exec_into_a_user_namespaced_container(runtime: Runtime, bundle: Bundle) -> None:
    bundle.make_world_reachable()
    bundle.spec["linux"]["namespaces"].append({"type": "user"})
    bundle.spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    bundle.spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    pid = _create(runtime, bundle, ["sleep", "60"])
    runtime.start(bundle.id)
    stdio, read = pipe_stdio()
    process = dict(bundle.spec["process"], args=["sh", "-c", "id -u; cat /proc/self/uid_map"],
                   user={"uid": 0, "gid": 0})
    epid = runtime.exec(bundle.id, process, stdio=stdio)
    assert wait_exit(epid) == 0
    assert [line.split() for line in read().splitlines()] == [["0"], ["0", "300000", "65536"]]
    with open(f"/proc/{pid}/status") as f:  # seen from the host: the mapped uid
        uid_line = next(line for line in f if line.startswith("Uid:"))
    assert uid_line.split()[1] == "300000"
    runtime.kill(bundle.id, signal.SIGKILL)
    wait_exit(pid)


def test_update_changes_limits_of_a_running_container(runtime: Runtime, bundle: Bundle) -> None:
    import json
    import subprocess

    from tests.integration.runtime.conftest import CLI

    pid = _create(runtime, bundle, ["sleep", "60"])
    runtime.start(bundle.id)
    assert runtime.stats(bundle.id).pids.limit is None
    runtime.update(bundle.id, {"pids": {"limit": 42}})
    assert runtime.stats(bundle.id).pids.limit == 42
    # the CLI form containerd uses: JSON resources on stdin
    subprocess.run([*CLI, "--root", runtime.root, "update", "--resources", "-", bundle.id],
                   input=json.dumps({"pids": {"limit": 7}}), text=True, check=True)
    stats = runtime.stats(bundle.id)
    assert stats.pids.limit == 7 and stats.pids.current >= 1
    runtime.kill(bundle.id, signal.SIGKILL)
    wait_exit(pid)


def test_fork_in_pid_ns_puts_our_own_namespace_back() -> None:
    from dockyard.runtime.spawn import fork_in_pid_ns

    ours = os.readlink("/proc/self/ns/pid")
    r, w = os.pipe()
    pid = fork_in_pid_ns("")
    if pid == 0:  # pid 1 of a new namespace
        os.write(w, str(os.getpid()).encode())
        os._exit(0)
    os.close(w)
    assert os.read(r, 16) == b"1"
    os.close(r)
    assert wait_exit(pid) == 0
    assert os.readlink("/proc/self/ns/pid_for_children") == ours
    with pytest.raises(FileNotFoundError):
        fork_in_pid_ns("/nonexistent/ns/pid")
    assert os.readlink("/proc/self/ns/pid_for_children") == ours
