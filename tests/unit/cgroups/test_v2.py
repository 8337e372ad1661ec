"""cgroup v2 file writes and conversions, against fake unified trees in tmp dirs."""

from __future__ import annotations

import logging
import os
import select

import pytest

from dockyard.cgroups import CgroupV2, open_cgroup
from dockyard.cgroups.v2 import blkio_weight_to_io_weight, shares_to_weight, swap_to_v2
from dockyard.errors import Internal, InvalidArgument, Unsupported
from tests.unit.cgroups.fake import make_v2, read, write

PATH = "dockyard/c2"


@pytest.fixture
def leaf(tmp_path: os.PathLike[str]) -> str:
    return make_v2(str(tmp_path), PATH)


@pytest.fixture
def cg(leaf: str) -> CgroupV2:
    cgroup = open_cgroup(PATH, root=os.path.dirname(os.path.dirname(leaf)))
    assert isinstance(cgroup, CgroupV2)
    return cgroup


def f(leaf: str, name: str) -> str:
    return read(os.path.join(leaf, name))


def test_conversions_match_runc() -> None:
    assert [shares_to_weight(s) for s in (2, 1024, 262144)] == [1, 39, 10000]
    assert [blkio_weight_to_io_weight(w) for w in (10, 500, 1000)] == [1, 4950, 10000]
    assert swap_to_v2(64 << 20, 32 << 20) == 32 << 20
    assert swap_to_v2(None, -1) == -1 and swap_to_v2(-1, 100) == -1 and swap_to_v2(None, 100) is None
    with pytest.raises(InvalidArgument, match="without a memory limit"):
        swap_to_v2(100, None)
    with pytest.raises(InvalidArgument, match=">= memory"):
        swap_to_v2(10, 100)


def test_create_delegates_controllers_in_every_ancestor_but_not_the_leaf(cg: CgroupV2, leaf: str) -> None:
    cg.create()
    root = os.path.dirname(os.path.dirname(leaf))
    expected = "+cpu +cpuset +io +memory +pids +hugetlb"
    assert read(os.path.join(root, "cgroup.subtree_control")) == expected
    assert read(os.path.join(root, "dockyard", "cgroup.subtree_control")) == expected
    assert f(leaf, "cgroup.subtree_control") == ""


def test_set_writes_unified_files_with_conversions(cg: CgroupV2, leaf: str) -> None:
    cg.set({
        "memory": {"limit": 32 << 20, "swap": 64 << 20, "reservation": 16 << 20},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 64},
        "blockIO": {"weight": 500, "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "30000000"},
    })
    assert f(leaf, "memory.max") == str(32 << 20)
    assert f(leaf, "memory.swap.max") == str(32 << 20)
    assert f(leaf, "memory.low") == str(16 << 20)
    assert f(leaf, "cpu.weight") == "39"
    assert f(leaf, "cpu.max") == "50000 100000"
    assert (f(leaf, "cpuset.cpus"), f(leaf, "cpuset.mems")) == ("0", "0")
    assert f(leaf, "pids.max") == "64"
    assert f(leaf, "io.weight") == "default 4950"
    assert f(leaf, "io.max") == "8:0 wiops=100"
    assert f(leaf, "hugetlb.2MB.max") == "4194304"
    assert f(leaf, "memory.high") == "30000000"


def test_unlimited_values_become_max(cg: CgroupV2, leaf: str) -> None:
    cg.set({"memory": {"limit": -1}, "cpu": {"quota": -1, "period": 100000}, "pids": {"limit": -1}})
    assert (f(leaf, "memory.max"), f(leaf, "memory.swap.max")) == ("max", "max")
    assert f(leaf, "cpu.max") == "max 100000"
    assert f(leaf, "pids.max") == "max"


def test_bfq_weight_is_preferred_when_present(cg: CgroupV2, leaf: str) -> None:
    write(os.path.join(leaf, "io.bfq.weight"), "default 100")
    cg.set({"blockIO": {"weight": 300}})
    assert f(leaf, "io.bfq.weight") == "300"
    assert f(leaf, "io.weight") == "default 100"


def test_a_controller_not_delegated_is_an_error_naming_the_field(tmp_path: os.PathLike[str]) -> None:
    make_v2(str(tmp_path), PATH, controllers="cpu memory")
    with pytest.raises(Unsupported, match=r"pids\.limit: the pids controller is not enabled"):
        open_cgroup(PATH, root=str(tmp_path)).set({"pids": {"limit": 5}})


def test_missing_swap_file_is_skipped_with_a_warning(tmp_path: os.PathLike[str],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    leaf = make_v2(str(tmp_path), PATH, missing_files=("memory.swap.max",))
    with caplog.at_level(logging.WARNING, "dockyard.cgroups"):
        open_cgroup(PATH, root=str(tmp_path)).set({"memory": {"limit": 1 << 20, "swap": 2 << 20}})
    assert f(leaf, "memory.max") == str(1 << 20)
    assert "memory.swap: ignored" in caplog.text


def test_realtime_unknown_unified_key_and_v1_only_settings(cg: CgroupV2, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(Unsupported, match="realtime"):
        cg.set({"cpu": {"realtimeRuntime": 1000}})
    with pytest.raises(InvalidArgument, match="unified"):
        cg.set({"unified": {"../escape": "1"}})
    with pytest.raises(Unsupported, match=r"unified\[memory.nope\]"):
        cg.set({"unified": {"memory.nope": "1"}})
    with caplog.at_level(logging.WARNING, "dockyard.cgroups"):
        cg.set({"memory": {"swappiness": 10}})
    assert "swappiness: ignored" in caplog.text


def test_devices_become_an_ebpf_program_attached_to_the_leaf(leaf: str) -> None:
    attached: list[tuple[str, bytes]] = []
    cg = CgroupV2(PATH, os.path.dirname(os.path.dirname(leaf)),
                  attach_devices=lambda d, prog: attached.append((d, prog)))
    cg.set({"memory": {"limit": 1 << 20}})
    assert attached == []
    cg.set({"devices": [{"allow": False, "access": "rwm"}]})
    assert [d for d, _ in attached] == [leaf]
    assert len(attached[0][1]) % 8 == 0 and len(attached[0][1]) > 16


def test_freeze_waits_for_cgroup_events(cg: CgroupV2, leaf: str) -> None:
    with pytest.raises(Internal, match="did not freeze"):
        cg.freeze(timeout=0.05)  # the fake kernel never reports frozen
    assert f(leaf, "cgroup.freeze") == "0"  # rolled back
    write(os.path.join(leaf, "cgroup.events"), "populated 1\nfrozen 1\n")
    cg.freeze()
    assert f(leaf, "cgroup.freeze") == "1" and cg.frozen()
    cg.thaw()
    assert f(leaf, "cgroup.freeze") == "0"


def test_kill_all_uses_cgroup_kill_when_the_kernel_has_it(cg: CgroupV2, leaf: str) -> None:
    write(os.path.join(leaf, "cgroup.kill"), "")
    cg.kill_all()
    assert f(leaf, "cgroup.kill") == "1"


def test_stats_and_oom_kills_are_read_from_the_files(cg: CgroupV2, leaf: str) -> None:
    write(os.path.join(leaf, "cgroup.procs"), "7\n8\n")
    assert cg.oom_kill_count() == 1
    assert cg.pids() == [7, 8]
    st = cg.stats()
    assert (st.memory.usage, st.memory.max_usage, st.memory.limit, st.memory.cache) == (4096, 8192, None, 20)
    assert (st.cpu.usage_total, st.cpu.usage_user, st.cpu.usage_kernel) == (7000, 5000, 2000)
    assert (st.cpu.throttling_periods, st.cpu.throttled_periods, st.cpu.throttled_time) == (4, 1, 9000)
    assert (st.pids.current, st.pids.limit) == (2, None)
    assert [(e.op, e.value) for e in st.io_service_bytes] == [("Read", 100), ("Write", 50), ("Total", 150)]
    assert [(e.op, e.value) for e in st.io_serviced] == [("Read", 3), ("Write", 2), ("Total", 5)]


def test_destroy_removes_leaf_and_nested_cgroups(cg: CgroupV2, leaf: str) -> None:
    write(os.path.join(leaf, "inner", "cgroup.procs"), "")
    cg.destroy()
    assert not cg.exists() and os.path.isdir(os.path.dirname(leaf))


def test_oom_notifier_turns_readable_when_memory_events_changes(cg: CgroupV2, leaf: str) -> None:
    fd = cg.oom_notifier()
    try:
        assert select.select([fd], [], [], 0)[0] == []
        write(os.path.join(leaf, "memory.events"), "oom 1\noom_kill 2\n")
        assert select.select([fd], [], [], 5)[0] == [fd]
        os.read(fd, 4096)
        assert cg.oom_kill_count() == 2
    finally:
        os.close(fd)
