"""The runtime's use of ``dockyard.cgroups`` (owned by the cgroups engineer), in one place."""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["cgroup_path", "join_files", "join_self", "open_cg", "stop_warming",
           "warm_migration_lock"]

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


# ------------------------------------------------------------ joining the cgroup
#
# Moving a process into a cgroup by pid (a write of its pid to cgroup.procs, which is what
# runc and crun do) takes the kernel's global cgroup_threadgroup_rwsem for writing, and the
# first writer after a quiet spell waits for an RCU grace period: 5-20 ms on our VM (median
# ~12), most of what `create` used to cost. Since Linux 6.0 ("cgroup: Optimize single thread
# migration") a thread that moves *itself* alone -- "0" written to a v1 hierarchy's `tasks`
# file -- skips that lock: ~0.1 ms. So the parent makes and limits the cgroup and stage 1 of
# the fork chain (single-threaded, right after fork) moves itself in, before it forks the
# init, which inherits the cgroup. On cgroup v2 threads cannot leave their domain, so stage 1
# writes "0" to cgroup.procs and waits out the grace period; there the CLI can start paying
# it early (warm_migration_lock).


def join_files(cg: Any) -> list[str]:
    """The files a single-threaded process writes "0" to, to move itself into ``cg``."""
    name = "cgroup.procs" if cg.mode == "v2" else "tasks"
    return [os.path.join(d, name) for d in cg.directories()]


def join_self(files: list[str]) -> None:
    """Move the calling (single-threaded) process into the cgroup :func:`join_files` names."""
    from dockyard.errors import Internal

    for path in files:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError as exc:
            raise Internal(f"cannot join cgroup {os.path.dirname(path)}: {exc.strerror}") from exc


# The grace period on cgroup v2: the CLI starts a thread, first thing, that writes its own pid
# into the cgroup it is already in (a no-op move) every few ms until create has placed the
# init; writes that follow within about one more grace period are fast. Not on v1, where the
# self-move above needs no grace period and the thread would only hold cgroup_mutex (through
# its own waits) against the parent's mkdirs. Failures end the thread silently.

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
