"""``create``: build the container and leave its init waiting on the exec fifo.

Four steps like every verb: check (bundle, id) -> do the work (cgroup, fork, handshake) ->
save (state.json, pid file) -> return the init pid. A failure at any step undoes the earlier
ones: the init is killed (its mounts die with its mount namespace), the cgroup and the state
directory are removed.
"""

from __future__ import annotations

import os
import time

from dockyard.errors import Conflict
from dockyard.linux import proc
from dockyard.runtime import state as st
from dockyard.runtime.bundle import Bundle, load_bundle
from dockyard.runtime.cgroup import cgroup_path, open_cg, stop_warming
from dockyard.runtime.child import InitPlan, init_direct, preload, stage1_create
from dockyard.runtime.spawn import Spawn
from dockyard.runtime.trace import mark

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from dockyard.runtime.runtime import Runtime

__all__ = ["create"]


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def compile_seccomp(spec: dict[str, Any], cache_dir: str | None = None) -> tuple[bytes | None, int]:
    """The BPF program for ``linux.seccomp`` (cached by spec hash under the runtime root:
    libseccomp takes ~10 ms for Docker's profile, a cache hit well under 1 ms)."""
    sc = (spec.get("linux") or {}).get("seccomp")
    if not sc:
        return None, 0
    from dockyard.linux import seccomp

    return seccomp.compile(sc, cache_dir=cache_dir), seccomp.filter_flags(sc)


def _write_id_maps(pid: int, linux: dict[str, Any]) -> None:
    for key, name in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n"
                        for m in linux.get(key) or [])
        if lines:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(lines)


def create(rt: Runtime, container_id: str, bundle_path: str, *,
           stdio: tuple[int, int, int] | None = None,
           console: Callable[[int], None] | None = None, pid_file: str | None = None) -> int:
    mark("create: begin")
    st.validate_id(container_id)
    bundle = load_bundle(bundle_path)
    mark("create: bundle loaded")
    spec = bundle.spec
    os.makedirs(rt.root, mode=0o700, exist_ok=True)
    seccomp_program, seccomp_flags = compile_seccomp(spec, os.path.join(rt.root, ".seccomp"))
    sdir = os.path.join(rt.root, container_id)
    try:
        os.mkdir(sdir, 0o711)
    except FileExistsError:
        raise Conflict(f"container with id exists: {container_id}") from None
    cg = None
    spawn = None
    try:
        fifo = os.path.join(sdir, "exec.fifo")
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)
        cg_path = cgroup_path(spec, container_id)
        cg = open_cg(cg_path)
        join: list[str] = []
        if cg is None:
            rt.warn("cgroups are not available: resources are not limited")
        else:
            cg.create()
            cg.set((spec.get("linux") or {}).get("resources") or {})
            join = cg.join_files()  # the child moves itself in (Cgroup.join_files)
        mark("create: cgroup made")
        # Everything the children need is imported and decided before the fork: whatever
        # either side touches afterwards costs copy-on-write faults on top (2x, measured).
        preload(seccomp_program, spec.get("hooks"), bool(spec["process"].get("terminal")),
                bool(spec["process"].get("rlimits")))
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        plan = InitPlan(spec, bundle.path, bundle.rootfs, fifo_fd, stdio, seccomp_program,
                        seccomp_flags, join)
        spawn = _spawn(plan)
        os.close(fifo_fd)
        mark("create: forked")
        pid = _handshake(rt, spawn, container_id, bundle, console)
        stop_warming()  # the init is placed (runtime.cgroup: warm_migration_lock)
        mark("create: init ready")
        start_time = proc.start_time(pid)
        if start_time is None:
            raise Conflict(f"container {container_id} init exited during create")
        record = st.Record(id=container_id, pid=pid, start_time=start_time, bundle=bundle.path,
                           rootfs=bundle.rootfs, created=_now(), cgroup_path=cg_path,
                           config=spec, annotations=spec.get("annotations") or {},
                           owner="root" if os.geteuid() == 0 else str(os.geteuid()))
        st.save_record(rt.root, record)
        if pid_file:
            from dockyard.atomic import atomic_write

            atomic_write(os.path.abspath(pid_file), str(pid).encode(), durable=False)
        mark("create: state saved")
        return pid
    except BaseException:
        _undo(rt, container_id, spawn, cg)
        raise


def _spawn(plan: InitPlan) -> Spawn:
    """Fork the init straight into its pid namespace; through S1 only with a user namespace,
    which must own the pid namespace and so be made first (runtime.sync)."""
    namespaces = (plan.spec.get("linux") or {}).get("namespaces") or []
    kinds = {ns["type"]: ns.get("path") or "" for ns in namespaces}
    if "user" in kinds:
        return Spawn(lambda ch: stage1_create(ch, plan))
    return Spawn(lambda ch: init_direct(ch, plan), direct=True, pid_ns=kinds.get("pid"))


def _undo(rt: Runtime, container_id: str, spawn: Spawn | None, cg: Any) -> None:
    """Best effort, and never masking the error that brought us here: report what is left."""
    try:
        if spawn is not None:
            spawn.abort()
            if spawn.pid:
                _wait_gone(spawn.pid)
        if cg is not None:
            _destroy_cgroup(cg)
        st.remove_state_dir(rt.root, container_id)
    except Exception as exc:
        rt.warn(f"cleanup after a failed create of {container_id} is incomplete: {exc}")


def _handshake(rt: Runtime, spawn: Spawn, container_id: str, bundle: Bundle,
               console: Callable[[int], None] | None) -> int:
    """The parent's answers in the sync protocol (runtime.sync); returns the init pid."""
    spec = bundle.spec

    def on_userns(_msg: dict[str, Any], _fd: int | None) -> None:
        _write_id_maps(spawn.s1, spec.get("linux") or {})
        spawn.reply("mapped")

    def on_hooks(_msg: dict[str, Any], _fd: int | None) -> None:
        from dockyard.runtime.hooks import run_hooks

        oci = {"ociVersion": spec["ociVersion"], "id": container_id, "status": "creating",
               "pid": spawn.pid, "bundle": bundle.path,
               "annotations": spec.get("annotations") or {}}
        run_hooks(spec, "prestart", oci)
        run_hooks(spec, "createRuntime", oci)
        spawn.reply("hooks-done")

    def on_console(_msg: dict[str, Any], fd: int | None) -> None:
        if fd is not None:
            if console is None:
                os.close(fd)
            else:
                console(fd)

    return spawn.run({"userns": on_userns, "hooks": on_hooks, "console": on_console,
                      "warning": lambda m, _fd: rt.warn(m["msg"])})


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    """Wait for a killed init to be gone *and reaped*: a zombie still pins its cgroup (the
    kernel drops it from the populated count only in release_task). If we are its subreaper,
    nobody else will reap it while we are busy here, and nobody wants its status: reap it."""
    deadline = time.monotonic() + timeout
    while proc.process_state(pid) not in (None, "Z", "X") and time.monotonic() < deadline:
        time.sleep(0.005)
    if proc.parent_pid(pid) == os.getpid():
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _destroy_cgroup(cg: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            cg.destroy()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
