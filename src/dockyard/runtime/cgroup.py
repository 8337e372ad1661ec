"""The runtime's use of ``dockyard.cgroups`` (owned by the cgroups engineer), in one place."""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["cgroup_path", "open_cg", "stop_warming", "warm_migration_lock"]

DEFAULT_PARENT = "/dockyard"


def cgroup_path(spec: dict[str, Any], container_id: str) -> str:
    path = (spec.get("linux") or {}).get("cgroupsPath") or f"{DEFAULT_PARENT}/{container_id}"
    if ":" in path:  # systemd form "slice:prefix:name": we drive cgroupfs directly
        slice_, prefix, name = [*path.split(":"), "", ""][:3]
        path = f"/{slice_ or 'dockyard'}/{prefix + '-' if prefix else ''}{name}"
    return path if path.startswith("/") else f"{DEFAULT_PARENT}/{path}"


def open_cg(path: str) -> Any:
    """The ``Cgroup`` for ``path``, or None where ``dockyard.cgroups`` is not available."""
    try:
        from dockyard.cgroups import open_cgroup
    except ImportError:
        return None
    return open_cgroup(path)


# ------------------------------------------------------------ the migration grace period
#
# Moving a process into a cgroup (a write to cgroup.procs; v1, and v2 without favordynmods)
# takes the kernel's global cgroup_threadgroup_rwsem for writing, and the first writer after a
# quiet spell waits for an RCU grace period: 5-15 ms on our VM, most of `create` (runc and crun
# pay it too: strace -T shows their cgroup.procs write at ~15 ms). Writes that follow within
# about one more grace period are fast (~0.1 ms). So the CLI starts a thread, first thing,
# that writes our own pid into the cgroup we are already in (a no-op move) every few ms until
# create has placed the init: the wait overlaps the interpreter's imports instead of adding to
# them. Failures (no cgroupfs, no permission) end the thread silently: nothing depends on it.

_WARM_UNTIL = [0.0]


def _own_procs_file() -> str | None:
    """``cgroup.procs`` of a hierarchy this process is in (mounted the usual way), or None."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        bases = (("/sys/fs/cgroup/unified", "/sys/fs/cgroup") if not controllers
                 else ("/sys/fs/cgroup/" + controllers.removeprefix("name="),))
        for base in bases:
            procs = f"{base}{path.rstrip('/')}/cgroup.procs"
            if os.path.exists(procs):
                return procs
    return None


def _keep_warm(procs: str) -> None:
    pid = str(os.getpid()).encode()
    try:
        while True:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
            if time.monotonic() >= _WARM_UNTIL[0]:
                return
            time.sleep(0.004)
    except OSError:
        return


def warm_migration_lock(seconds: float = 0.25) -> None:
    """Start paying the cgroup-migration grace period now, in a background thread, for at
    most ``seconds`` (or until :func:`stop_warming`). For short-lived CLI processes only: it
    starts a thread, and a process that later forks without CPython's hooks must not."""
    if os.geteuid() != 0:
        return
    procs = _own_procs_file()
    if procs is None:
        return
    import _thread

    _WARM_UNTIL[0] = time.monotonic() + seconds
    _thread.start_new_thread(_keep_warm, (procs,))


def stop_warming() -> None:
    _WARM_UNTIL[0] = 0.0
