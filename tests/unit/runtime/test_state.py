"""Status is re-derived from the kernel; the verbs check it before acting."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from dockyard.errors import Conflict, ContainerNotFound, InvalidArgument
from dockyard.linux import proc
from dockyard.runtime import Runtime
from dockyard.runtime import state as st


def _record(cid: str = "c1", pid: int | None = None, start: int | None = None) -> st.Record:
    pid = os.getpid() if pid is None else pid
    start = proc.start_time(pid) if start is None else start
    return st.Record(id=cid, pid=pid, start_time=start or 0, bundle="/b", rootfs="/b/rootfs",
                     created="2026-01-01T00:00:00Z", cgroup_path=f"/dockyard-unit-test/{cid}",
                     config={"ociVersion": "1.0.2", "process": {"args": ["true"]}})


@pytest.fixture
def rt(tmp_path: Any) -> Runtime:
    return Runtime(str(tmp_path / "root"))


def _save(rt: Runtime, record: st.Record, fifo: bool = False) -> None:
    os.makedirs(os.path.join(rt.root, record.id))
    st.save_record(rt.root, record)
    if fifo:
        os.mkfifo(os.path.join(rt.root, record.id, "exec.fifo"))


def test_live_init_with_fifo_is_created(rt: Runtime) -> None:
    _save(rt, _record(), fifo=True)
    assert rt.state("c1").status == "created"


def test_live_init_without_fifo_is_running(rt: Runtime) -> None:
    _save(rt, _record())
    state = rt.state("c1")
    assert state.status == "running" and state.to_oci()["pid"] == os.getpid()


def test_reused_pid_is_stopped(rt: Runtime) -> None:
    _save(rt, _record(start=1))  # our pid, but another start time: PID reuse
    assert rt.state("c1").status == "stopped"
    assert rt.state("c1").to_oci()["pid"] == 0


def test_zombie_init_is_stopped(rt: Runtime) -> None:
    child = subprocess.Popen(["true"])
    while proc.process_state(child.pid) != "Z":
        os.sched_yield()
    try:
        _save(rt, _record(pid=child.pid))
        assert rt.state("c1").status == "stopped"
    finally:
        child.wait()


def test_frozen_cgroup_means_paused(tmp_path: Any) -> None:
    record = _record()
    assert st.derive_status(str(tmp_path), record, frozen=True) == "paused"


def test_start_refuses_running_container(rt: Runtime) -> None:
    _save(rt, _record())
    with pytest.raises(Conflict, match="cannot start a container that is running: c1"):
        rt.start("c1")


def test_delete_refuses_running_container_without_force(rt: Runtime) -> None:
    _save(rt, _record())
    with pytest.raises(Conflict, match="not stopped: running"):
        rt.delete("c1")
    assert os.path.exists(os.path.join(rt.root, "c1", "state.json"))


def test_delete_of_stopped_container_removes_its_state(rt: Runtime) -> None:
    _save(rt, _record(start=1))
    rt.delete("c1")
    assert rt.list() == []
    with pytest.raises(ContainerNotFound):
        rt.state("c1")


def test_kill_refuses_stopped_container(rt: Runtime) -> None:
    _save(rt, _record(start=1))
    with pytest.raises(Conflict, match="not running"):
        rt.kill("c1", 15)


def test_resume_refuses_running_container(rt: Runtime) -> None:
    _save(rt, _record())
    with pytest.raises(Conflict, match="cannot resume"):
        rt.resume("c1")


def test_state_file_is_written_atomically_and_round_trips(rt: Runtime) -> None:
    record = _record()
    _save(rt, record)
    assert st.load_record(rt.root, "c1") == record
    assert [n for n in os.listdir(os.path.join(rt.root, "c1")) if n.endswith(".tmp")] == []


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "-x", "a b"])
def test_invalid_ids_are_refused(rt: Runtime, bad: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid container id"):
        rt.state(bad)


def test_list_reports_every_container(rt: Runtime) -> None:
    _save(rt, _record("a"))
    _save(rt, _record("b", start=1))
    assert [(s.id, s.status) for s in rt.list()] == [("a", "running"), ("b", "stopped")]


def test_forced_delete_clears_a_directory_left_by_an_interrupted_create(rt: Runtime) -> None:
    os.makedirs(os.path.join(rt.root, "half"))
    os.mkfifo(os.path.join(rt.root, "half", "exec.fifo"))
    with pytest.raises(ContainerNotFound):
        rt.delete("half", force=True)
    assert not os.path.exists(os.path.join(rt.root, "half"))
