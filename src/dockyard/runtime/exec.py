"""``exec``: start one more process in a running container: its namespaces, its cgroup, the
container's seccomp profile, and the process's own user, capabilities and limits."""

from __future__ import annotations

import os

from dockyard.errors import Conflict
from dockyard.oci import runtime_spec
from dockyard.runtime.child import ExecPlan, exec_direct, preload
from dockyard.runtime.create import compile_seccomp
from dockyard.runtime.spawn import Spawn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from dockyard.runtime.runtime import Runtime

__all__ = ["exec_process"]


def exec_process(rt: Runtime, container_id: str, process: dict[str, Any], *,
                 stdio: tuple[int, int, int] | None = None,
                 console: Callable[[int], None] | None = None,
                 pid_file: str | None = None) -> int:
    runtime_spec.validate_process(process, "process")
    record, status = rt.load(container_id)
    if status not in ("created", "running"):
        raise Conflict(f"cannot exec in a container that is {status}: {container_id}")
    spec = record.config
    seccomp_program, seccomp_flags = compile_seccomp(spec, os.path.join(rt.root, ".seccomp"))
    ns_types = tuple(ns["type"] for ns in (spec.get("linux") or {}).get("namespaces") or [])
    cg = rt.cgroup(record)
    plan = ExecPlan(process, record.pid, ns_types, stdio, seccomp_program, seccomp_flags,
                    cg.join_files() if cg is not None else [])
    preload(seccomp_program, None, bool(process.get("terminal")), bool(process.get("rlimits")))
    pid_ns = f"/proc/{record.pid}/ns/pid" if "pid" in ns_types else None
    spawn = Spawn(lambda ch: exec_direct(ch, plan), direct=True, pid_ns=pid_ns)

    def on_console(_msg: dict[str, Any], fd: int | None) -> None:
        if fd is not None:
            console(fd) if console is not None else os.close(fd)

    pid = spawn.run({"console": on_console, "warning": lambda m, _fd: rt.warn(m["msg"])})
    if pid_file:
        from dockyard.atomic import atomic_write

        atomic_write(os.path.abspath(pid_file), str(pid).encode(), durable=False)
    return pid
