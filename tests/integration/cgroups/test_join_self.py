"""A forked child moving itself into a cgroup (Cgroup.join_files + join_self), on the real v1
hierarchies and on the real cgroup2 one (hybrid here: no controllers, but membership works
the same)."""

from __future__ import annotations

import os

import pytest

from dockyard.cgroups import Cgroup, CgroupV1, CgroupV2
from dockyard.cgroups.base import join_self
from tests.support.forked import run_forked

pytestmark = pytest.mark.root


def _own_cgroups() -> list[str]:
    with open("/proc/self/cgroup") as f:
        return f.read().splitlines()


def _join_then_list(files: list[str]) -> list[str]:
    join_self(files)
    return _own_cgroups()


def test_a_child_joins_every_v1_hierarchy_through_tasks(cgroup: Cgroup) -> None:
    if not isinstance(cgroup, CgroupV1):
        pytest.skip("no cgroup v1 hierarchies here")
    files = cgroup.join_files()
    assert files and all(f.endswith("/tasks") for f in files)
    lines = run_forked(lambda: _join_then_list(files))
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers and "unified" not in controllers:  # every v1 hierarchy
            assert path == f"/{cgroup.path}", line
    assert not any(f"/{cgroup.path}" in line for line in _own_cgroups())  # not the parent


def test_a_child_joins_the_v2_cgroup_through_cgroup_procs(v2_cgroup: CgroupV2) -> None:
    files = v2_cgroup.join_files()
    assert [os.path.basename(f) for f in files] == ["cgroup.procs"]
    lines = run_forked(lambda: _join_then_list(files))
    assert f"0::/{v2_cgroup.path}" in lines


def test_joining_a_missing_cgroup_names_it() -> None:
    from dockyard.errors import Internal

    with pytest.raises(Internal, match="cannot join cgroup /nonexistent/dir"):
        join_self(["/nonexistent/dir/tasks"])
