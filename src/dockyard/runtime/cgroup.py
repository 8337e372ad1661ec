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


# ------------------------------------------------------------ the v2 grace period
#
# The init joins its cgroup itself (Cgroup.join_files, cgroups.base.join_self): on v1 that
# skips the kernel's cgroup-migration grace period; on v2 it cannot. There the CLI starts a
# thread, first thing, that writes its own pid into the cgroup it is already in (a no-op move)
# every few ms until create has placed the init; writes that follow within about one more
# grace period are fast. Not on v1, where the thread would only hold cgroup_mutex (through its
# own waits) against the parent's mkdirs. Failures end the thread silently.

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
    if os.geteuid() != 0 or not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return  # root of a pure cgroup2 tree only (see above)
    procs = _own_procs_file()
    if procs is None:
        return
    import _thread

    _WARM_UNTIL[0] = time.monotonic() + seconds
    _thread.start_new_thread(_keep_warm, (procs,))


def stop_warming() -> None:
    _WARM_UNTIL[0] = 0.0
