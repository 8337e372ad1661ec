"""A forked child moving itself into a cgroup (runtime.cgroup.join_files/join_self), on the
real v1 hierarchies and on the real cgroup2 one (hybrid here: no controllers, but membership
works the same)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from dockyard.cgroups import CgroupV1, CgroupV2, detect_mode
from dockyard.runtime.cgroup import join_files, join_self
from tests.support.forked import run_forked

pytestmark = pytest.mark.root


def _own_cgroups() -> list[str]:
    with open("/proc/self/cgroup") as f:
        return f.read().splitlines()


def _join_then_list(files: list[str]) -> list[str]:
    join_self(files)
    return _own_cgroups()


@pytest.fixture
def v1_cgroup() -> Iterator[CgroupV1]:
    if detect_mode() == "v2":
        pytest.skip("no cgroup v1 hierarchies here")
    cg = CgroupV1(f"dockyard-test/join-{uuid.uuid4().hex[:12]}")
    cg.create()
    try:
        yield cg
    finally:
        cg.kill_all()
        cg.destroy()
        for d in cg.directories():
            try:
                os.rmdir(os.path.dirname(d))
            except OSError:
                pass


@pytest.fixture
def v2_cgroup() -> Iterator[CgroupV2]:
    mode = detect_mode()
    if mode == "v1":
        pytest.skip("no cgroup2 hierarchy mounted")
    root = "/sys/fs/cgroup/unified" if mode == "hybrid" else "/sys/fs/cgroup"
    path = f"dockyard-test/join-{uuid.uuid4().hex[:12]}"
    os.makedirs(os.path.join(root, path))  # by hand: create() would delegate at the root
    cg = CgroupV2(path, root)
    try:
        yield cg
    finally:
        cg.kill_all()
        cg.destroy()
        try:
            os.rmdir(os.path.join(root, "dockyard-test"))
        except OSError:
            pass


def test_a_child_joins_every_v1_hierarchy_through_tasks(v1_cgroup: CgroupV1) -> None:
    files = join_files(v1_cgroup)
    assert files and all(f.endswith("/tasks") for f in files)
    lines = run_forked(lambda: _join_then_list(files))
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers and "unified" not in controllers:  # every v1 hierarchy
            assert path == f"/{v1_cgroup.path}", line
    assert not any(f"/{v1_cgroup.path}" in line for line in _own_cgroups())  # not the parent


def test_a_child_joins_the_v2_cgroup_through_cgroup_procs(v2_cgroup: CgroupV2) -> None:
    files = join_files(v2_cgroup)
    assert [os.path.basename(f) for f in files] == ["cgroup.procs"]
    lines = run_forked(lambda: _join_then_list(files))
    assert f"0::/{v2_cgroup.path}" in lines


def test_joining_a_missing_cgroup_names_it() -> None:
    from dockyard.errors import Internal

    with pytest.raises(Internal, match="cannot join cgroup /nonexistent/dir"):
        join_self(["/nonexistent/dir/tasks"])
