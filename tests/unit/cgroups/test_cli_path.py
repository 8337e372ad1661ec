"""What the runtime's CLI path pays for: imports, and no freezer round trip on an empty cgroup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from dockyard.cgroups import open_cgroup
from dockyard.cgroups.base import Cgroup
from tests.unit.cgroups.fake import make_v1, make_v2, read, write

PATH = "dockyard/c3"

# Dear at start-up and not needed to create, join or remove a cgroup.
HEAVY = {"signal", "enum", "collections", "collections.abc", "typing", "functools", "dataclasses",
         "re", "logging", "ctypes", "struct", "importlib"}

PROBE = """
import sys
base = set(sys.modules)
import dockyard.cgroups as dc
after_import = set(sys.modules) - base
cg = dc.open_cgroup("dockyard/c3", root=sys.argv[1])
after_open = set(sys.modules) - base
import json
print(json.dumps({"import": sorted(after_import), "open": sorted(after_open), "type": type(cg).__name__}))
"""


def _probe(root: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", PROBE, root], check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_import_and_open_load_only_the_code_of_the_hosts_version(tmp_path: os.PathLike[str], version: str) -> None:
    (make_v1 if version == "v1" else make_v2)(str(tmp_path), PATH)
    seen = _probe(str(tmp_path))
    assert seen["type"] == f"CgroupV{version[1]}"
    assert not HEAVY & set(seen["open"]), HEAVY & set(seen["open"])
    ours = {m for m in seen["open"] if m.startswith("dockyard.cgroups")}
    assert ours == {"dockyard.cgroups", "dockyard.cgroups.base", f"dockyard.cgroups.{version}"}
    assert not [m for m in seen["import"] if m.startswith("dockyard.cgroups.v")]


def test_lazy_names_are_still_importable_from_the_package() -> None:
    from dockyard.cgroups import (
        DEFAULT_RULES,
        CgroupStats,
        CgroupV1,
        CgroupV2,
        devices,
        stats,
        v1,
        v2,
    )

    assert (CgroupV1, CgroupV2, DEFAULT_RULES, CgroupStats) == (
        v1.CgroupV1, v2.CgroupV2, devices.DEFAULT_RULES, stats.CgroupStats)
    with pytest.raises(ImportError):
        from dockyard.cgroups import NoSuchName  # type: ignore[attr-defined]  # noqa: F401


class _Spy:
    """Records freeze/thaw calls of one cgroup object (and still does them)."""

    def __init__(self, cg: Cgroup) -> None:
        self.calls: list[str] = []
        freeze, thaw = cg.freeze, cg.thaw

        def spy_freeze(timeout: float = 10.0) -> None:
            self.calls.append("freeze")
            freeze(timeout)

        def spy_thaw() -> None:
            self.calls.append("thaw")
            thaw()

        cg.freeze = spy_freeze  # type: ignore[method-assign]
        cg.thaw = spy_thaw  # type: ignore[method-assign]


def test_kill_all_of_an_empty_cgroup_neither_freezes_nor_thaws(tmp_path: os.PathLike[str]) -> None:
    make_v1(str(tmp_path), PATH)
    cg = open_cgroup(PATH, root=str(tmp_path))
    spy = _Spy(cg)
    cg.kill_all()
    assert spy.calls == []
    assert read(os.path.join(str(tmp_path), "freezer", PATH, "freezer.state")) == "THAWED"


@pytest.mark.parametrize("where", ["", "sub"])
def test_kill_all_freezes_kills_and_thaws_when_a_process_is_inside(tmp_path: os.PathLike[str], where: str) -> None:
    make_v1(str(tmp_path), PATH)
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write(os.path.join(str(tmp_path), "pids", PATH, where, "cgroup.procs"), f"{victim.pid}\n")
        cg = open_cgroup(PATH, root=str(tmp_path))
        spy = _Spy(cg)
        cg.kill_all()
        assert victim.wait(timeout=10) == -signal.SIGKILL
        assert spy.calls == ["freeze", "thaw"]
    finally:
        victim.kill()
        victim.wait()


def test_destroy_of_a_missing_cgroup_is_a_no_op(tmp_path: os.PathLike[str]) -> None:
    make_v1(str(tmp_path), PATH)
    cg = open_cgroup("dockyard/never-made", root=str(tmp_path))
    assert not cg.exists()
    cg.kill_all()
    cg.destroy()
    assert not os.path.exists(os.path.join(str(tmp_path), "memory", "dockyard", "never-made"))
    assert os.path.isdir(os.path.join(str(tmp_path), "memory", PATH))
