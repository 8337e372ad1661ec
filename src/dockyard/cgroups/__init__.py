"""cgroups v1 and v2 behind one interface.

::

    from dockyard.cgroups import open_cgroup
    cg = open_cgroup("/dockyard/<id>")       # OCI linux.cgroupsPath; mode detected from root
    cg.create(); cg.apply(pid); cg.set(spec["linux"]["resources"])
    cg.freeze(); cg.thaw(); cg.stats(); cg.oom_kill_count(); cg.kill_all(); cg.destroy()

Modes (:func:`detect_mode`): ``v2`` when the root is a cgroup2 mount (pure unified, most
current distributions); ``hybrid`` when v1 controllers sit beside a cgroup2 at
``<root>/unified`` (this machine: only hugetlb lives there) and ``v1`` otherwise. Hybrid is
handled by the v1 code: every controller we set is a v1 one.
"""

from __future__ import annotations

import os

from dockyard.cgroups.base import Cgroup, check_path
from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.cgroups.devices import DEFAULT_RULES
    from dockyard.cgroups.stats import BlkioEntry, CgroupStats, CpuStats, MemoryStats, PidsStats
    from dockyard.cgroups.v1 import CgroupV1
    from dockyard.cgroups.v2 import CgroupV2

__all__ = [
    "DEFAULT_RULES",
    "FEATURES",
    "BlkioEntry",
    "Cgroup",
    "CgroupStats",
    "CgroupV1",
    "CgroupV2",
    "CpuStats",
    "MemoryStats",
    "PidsStats",
    "detect_mode",
    "open_cgroup",
]


# Imported on first use: a CLI call pays only for the cgroup version of its host (v2 brings
# the eBPF code and ctypes), and stats (``dataclasses``) only where stats are read.
_LAZY = {"BlkioEntry": "stats", "CgroupStats": "stats", "CpuStats": "stats", "MemoryStats": "stats",
         "PidsStats": "stats", "CgroupV1": "v1", "CgroupV2": "v2", "DEFAULT_RULES": "devices"}


def __getattr__(name: str) -> object:
    """The names of ``_LAZY``, imported from their module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import sys  # built in, and already loaded (importlib would cost ~0.5 ms)

    full = f"{__name__}.{module}"
    __import__(full)
    value = getattr(sys.modules[full], name)
    globals()[name] = value
    return value


# ``linux.cgroup`` of the OCI features document (``dockyard-runtime features``).
FEATURES = {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False}

DEFAULT_ROOT = "/sys/fs/cgroup"


def detect_mode(root: str = DEFAULT_ROOT) -> str:
    """``"v2"``, ``"hybrid"`` or ``"v1"``, from what the root holds.

    A cgroup2 root has ``cgroup.controllers``; the v1 root is a tmpfs of hierarchies, with
    ``unified/cgroup.controllers`` in hybrid mode. Judged from files (not statfs) so fake
    trees in tests are detected the same way.
    """
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return "v2"
    if os.path.exists(os.path.join(root, "unified", "cgroup.controllers")):
        return "hybrid"
    return "v1"


def open_cgroup(path: str, *, root: str = DEFAULT_ROOT, mode: str | None = None) -> Cgroup:
    """The cgroup at OCI ``cgroupsPath`` ``path`` (need not exist yet: see ``create()``)."""
    rel = check_path(path)
    mode = mode or detect_mode(root)
    if mode == "v2":
        from dockyard.cgroups.v2 import CgroupV2

        return CgroupV2(rel, root)
    if mode in ("v1", "hybrid"):
        from dockyard.cgroups.v1 import CgroupV1

        return CgroupV1(rel, root, mode)
    raise InvalidArgument(f"unknown cgroup mode {mode!r}")
