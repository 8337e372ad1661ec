"""cgroup v1 (and hybrid) file writes, against fake trees in tmp dirs."""

from __future__ import annotations

import logging
import os

import pytest

from dockyard.cgroups import CgroupV1, detect_mode, open_cgroup
from dockyard.cgroups.devices import DEFAULT_RULES, v1_lines, v1_transition, with_defaults
from dockyard.errors import InvalidArgument, Unsupported
from tests.unit.cgroups.fake import make_v1, read, write

PATH = "dockyard/c1"


@pytest.fixture
def root(tmp_path: os.PathLike[str]) -> str:
    r = str(tmp_path)
    make_v1(r, PATH)
    return r


def f(root: str, ctrl: str, name: str) -> str:
    return read(os.path.join(root, ctrl, PATH, name))


def test_detect_mode_tells_v1_hybrid_and_v2_apart(tmp_path: os.PathLike[str]) -> None:
    hybrid, v1, v2 = (os.path.join(str(tmp_path), n) for n in ("h", "v1", "v2"))
    make_v1(hybrid, PATH)
    make_v1(v1, PATH, hybrid=False)
    write(os.path.join(v2, "cgroup.controllers"), "memory")
    assert (detect_mode(hybrid), detect_mode(v1), detect_mode(v2)) == ("hybrid", "v1", "v2")
    assert isinstance(open_cgroup("/" + PATH, root=hybrid), CgroupV1)


@pytest.mark.parametrize("bad", ["/", "/../etc", "a/../../b", "system.slice:docker:abc"])
def test_open_cgroup_refuses_paths_that_escape_or_systemd_slices(root: str, bad: str) -> None:
    with pytest.raises((InvalidArgument, Unsupported)):
        open_cgroup(bad, root=root)


def test_set_writes_memory_cpu_pids_and_cpuset_files(root: str) -> None:
    cg = open_cgroup("/" + PATH, root=root)
    cg.create()
    cg.set({
        "memory": {"limit": 33554432, "swap": 67108864, "reservation": 16777216, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 200000, "cpus": "1", "mems": "0"},
        "pids": {"limit": 42},
    })
    assert f(root, "memory", "memory.limit_in_bytes") == "33554432"
    assert f(root, "memory", "memory.memsw.limit_in_bytes") == "67108864"
    assert f(root, "memory", "memory.soft_limit_in_bytes") == "16777216"
    assert f(root, "memory", "memory.swappiness") == "10"
    assert f(root, "cpu", "cpu.shares") == "512"
    assert f(root, "cpu", "cpu.cfs_quota_us") == "50000"
    assert f(root, "cpu", "cpu.cfs_period_us") == "200000"
    assert f(root, "cpuset", "cpuset.cpus") == "1"
    assert f(root, "pids", "pids.max") == "42"


def test_unlimited_memory_lifts_swap_too_and_negative_pids_is_max(root: str) -> None:
    cg = open_cgroup(PATH, root=root)
    cg.set({"memory": {"limit": -1}, "pids": {"limit": -1}})
    assert f(root, "memory", "memory.limit_in_bytes") == "-1"
    assert f(root, "memory", "memory.memsw.limit_in_bytes") == "-1"
    assert f(root, "pids", "pids.max") == "max"


def test_absent_fields_leave_files_alone(root: str) -> None:
    cg = open_cgroup(PATH, root=root)
    cg.set({"pids": {"limit": 0}, "memory": {"limit": 0, "swap": 0, "reservation": 0}})
    assert f(root, "pids", "pids.max") == "max"
    assert f(root, "memory", "memory.limit_in_bytes") == "9223372036854771712"


def test_create_copies_cpuset_from_parent_into_every_new_level(root: str) -> None:
    open_cgroup(PATH, root=root).create()
    assert read(os.path.join(root, "cpuset", "dockyard", "cpuset.cpus")) == "0-1"
    assert f(root, "cpuset", "cpuset.cpus") == "0-1"
    assert f(root, "cpuset", "cpuset.mems") == "0"


def test_missing_swap_accounting_is_skipped_with_a_warning(tmp_path: os.PathLike[str],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    r = str(tmp_path)
    make_v1(r, PATH, missing_files=("memory.memsw.limit_in_bytes",))
    with caplog.at_level(logging.WARNING, "dockyard.cgroups"):
        open_cgroup(PATH, root=r).set({"memory": {"limit": 1048576, "swap": 2097152}})
    assert f(r, "memory", "memory.limit_in_bytes") == "1048576"
    assert "memory.swap: ignored" in caplog.text


def test_blkio_weight_is_skipped_when_the_kernel_has_none(root: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "dockyard.cgroups"):
        open_cgroup(PATH, root=root).set({"blockIO": {"weight": 300, "throttleReadBpsDevice": [
            {"major": 8, "minor": 0, "rate": 1048576}]}})
    assert "blockIO.weight: ignored" in caplog.text
    assert f(root, "blkio", "blkio.throttle.read_bps_device") == "8:0 1048576"


def test_kernel_memory_is_ignored_like_runc(root: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "dockyard.cgroups"):
        open_cgroup(PATH, root=root).set({"memory": {"kernel": 1 << 20}})
    assert "memory.kernel: ignored" in caplog.text


def test_missing_controller_for_a_requested_limit_is_an_error(tmp_path: os.PathLike[str]) -> None:
    r = str(tmp_path)
    make_v1(r, PATH, without=("pids",))
    with pytest.raises(Unsupported, match=r"pids\.limit: the pids cgroup controller"):
        open_cgroup(PATH, root=r).set({"pids": {"limit": 10}})


def test_a_value_the_kernel_refuses_names_the_field(root: str) -> None:
    shares = os.path.join(root, "cpu", PATH, "cpu.shares")
    os.unlink(shares)
    os.mkdir(shares)  # EISDIR stands in for the kernel's EINVAL
    with pytest.raises(InvalidArgument, match=r"cpu\.shares"):
        open_cgroup(PATH, root=root).set({"cpu": {"shares": 2}})


def test_unified_and_bad_swappiness_are_refused_on_v1(root: str) -> None:
    cg = open_cgroup(PATH, root=root)
    with pytest.raises(Unsupported, match="unified"):
        cg.set({"unified": {"memory.high": "1M"}})
    with pytest.raises(InvalidArgument, match="swappiness"):
        cg.set({"memory": {"swappiness": 101}})


def test_devices_start_with_the_config_rules_then_the_standard_nodes(root: str) -> None:
    cg = open_cgroup(PATH, root=root)
    cg.set({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10,
                                                           "minor": 229, "access": "rw"}]})
    lines = list(v1_lines(with_defaults([{"allow": False, "access": "rwm"}])))
    assert lines[0] == ("a", False)
    assert ("c 1:3 rwm", True) in lines and ("c 136:* rwm", True) in lines
    assert len(lines) == 1 + len(DEFAULT_RULES)
    assert f(root, "devices", "devices.deny") == "a"
    assert f(root, "devices", "devices.allow") == "c 5:2 rwm"  # the last default rule


def test_device_rule_with_bad_type_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"devices\[0\]"):
        list(v1_lines([{"allow": True, "type": "x"}]))


def test_apply_joins_each_hierarchy_once_with_comounted_controllers(tmp_path: os.PathLike[str]) -> None:
    r = str(tmp_path)
    make_v1(r, PATH, without=("cpu", "cpuacct"))
    write(os.path.join(r, "cpu,cpuacct", PATH, "cgroup.procs"), "")
    os.symlink("cpu,cpuacct", os.path.join(r, "cpu"))
    os.symlink("cpu,cpuacct", os.path.join(r, "cpuacct"))
    cg = open_cgroup(PATH, root=r)
    dirs = cg.directories()
    assert len({os.path.realpath(d) for d in dirs}) == len(dirs)
    assert not any("unified" in d for d in dirs)
    cg.create()
    cg.apply(4242)
    assert read(os.path.join(r, "cpu,cpuacct", PATH, "cgroup.procs")) == "4242"
    assert read(os.path.join(r, "systemd", PATH, "cgroup.procs")) == "4242"


def test_freeze_thaw_and_frozen_use_freezer_state(root: str) -> None:
    cg = open_cgroup(PATH, root=root)
    assert not cg.frozen()
    cg.freeze()
    assert f(root, "freezer", "freezer.state") == "FROZEN" and cg.frozen()
    cg.thaw()
    assert not cg.frozen()


def test_oom_kill_count_pids_and_stats_are_read_from_the_files(root: str) -> None:
    write(os.path.join(root, "pids", PATH, "cgroup.procs"), "11\n12\n")
    write(os.path.join(root, "pids", PATH, "sub", "cgroup.procs"), "13\n")
    cg = open_cgroup(PATH, root=root)
    assert cg.oom_kill_count() == 3
    assert sorted(cg.pids()) == [11, 12, 13] and sorted(cg.pids(recursive=False)) == [11, 12]
    st = cg.stats()
    assert (st.memory.usage, st.memory.max_usage, st.memory.limit, st.memory.cache) == (4096, 8192, None, 150)
    assert st.memory.swap_usage == 2048
    assert (st.cpu.usage_total, st.cpu.usage_percpu) == (5000, (3000, 2000))
    assert (st.cpu.throttling_periods, st.cpu.throttled_periods, st.cpu.throttled_time) == (10, 2, 3000)
    assert st.cpu.usage_kernel == 2 * st.cpu.usage_user > 0
    assert (st.pids.current, st.pids.limit) == (1, None)
    assert [(e.op, e.value) for e in st.io_service_bytes] == [("Read", 10), ("Write", 20)]
    assert st.oom_kills == 3


def test_destroy_removes_the_cgroup_from_every_hierarchy(root: str) -> None:
    cg = open_cgroup(PATH, root=root)
    cg.create()
    os.makedirs(os.path.join(root, "memory", PATH, "nested"))
    cg.destroy()
    assert not cg.exists()
    assert os.path.isdir(os.path.join(root, "memory", "dockyard"))


DEFAULT_LIST = "c *:* m\nb *:* m\nc 1:3 rwm\nc 1:8 rwm\nc 1:7 rwm\nc 5:0 rwm\nc 1:5 rwm\nc 1:9 rwm\nc 5:1 rwm\nc 136:* rwm\nc 5:2 rwm\n"
DENY_ALL = [{"allow": False, "access": "rwm"}]


def test_device_update_between_allow_lists_writes_only_the_difference() -> None:
    assert v1_transition(DEFAULT_LIST, with_defaults(DENY_ALL)) == []
    more = [*DENY_ALL, {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"}]
    assert v1_transition(DEFAULT_LIST, with_defaults(more)) == [("c 10:200 rw", True)]
    current = DEFAULT_LIST + "c 10:200 rwm\n"
    assert v1_transition(current, with_defaults(DENY_ALL)) == [("c 10:200 rwm", False)]
    current = DEFAULT_LIST + "c 10:200 rwm\n"
    assert v1_transition(current, with_defaults(more)) == [("c 10:200 m", False)]


def test_device_rules_on_a_fresh_cgroup_reset_then_allow() -> None:
    writes = v1_transition("a *:* rwm\n", with_defaults(DENY_ALL))
    assert writes[0] == ("a", False) and len(writes) == 1 + len(DEFAULT_RULES)
    # an allow-all target from a deny list: reset to allow
    assert v1_transition(DEFAULT_LIST, [{"allow": True, "access": "rwm"}]) == [("a", True)]


def test_blkio_weights_go_to_bfq_when_that_is_the_kernels_scheduler(root: str) -> None:
    write(os.path.join(root, "blkio", PATH, "blkio.bfq.weight"), "100")
    open_cgroup(PATH, root=root).set({"blockIO": {"weight": 500}})
    assert f(root, "blkio", "blkio.bfq.weight") == "500"
    open_cgroup(PATH, root=root).set({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 200}]}})
    assert f(root, "blkio", "blkio.bfq.weight") == "8:0 200"
