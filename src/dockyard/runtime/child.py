"""What runs in the forked children of ``create`` and ``exec`` (protocol: ``runtime.sync``).

Every child body runs under :func:`run_child`, which never returns: an exception becomes an
``error`` message to the parent (class name and text) and exit status 1, success ends with
``execve`` or ``os._exit(0)``.
"""

from __future__ import annotations

import os

from dockyard.cgroups.base import join_self
from dockyard.linux import libc
from dockyard.runtime.namespaces import NAMESPACES, join_order, new_flags
from dockyard.runtime.sync import Channel
from dockyard.runtime.trace import mark

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    from dockyard.linux.syscalls import Syscalls

__all__ = ["ExecPlan", "InitPlan", "exec_direct", "init_direct", "preload", "run_child",
           "stage1_create"]


class InitPlan:
    """What the init needs; ``fifo_fd`` is an O_PATH fd of exec.fifo opened by the parent
    (the state directory is 0700: a user-namespaced init could not open it by path)."""

    __slots__ = ("bundle", "fifo_fd", "join", "rootfs", "seccomp", "seccomp_flags", "spec",
                 "stdio")

    def __init__(self, spec: dict[str, Any], bundle: str, rootfs: str, fifo_fd: int,
                 stdio: tuple[int, int, int] | None, seccomp: bytes | None,
                 seccomp_flags: int, join: list[str]) -> None:
        self.spec, self.bundle, self.rootfs, self.fifo_fd = spec, bundle, rootfs, fifo_fd
        self.stdio, self.seccomp, self.seccomp_flags = stdio, seccomp, seccomp_flags
        self.join = join  # cgroup files the child writes "0" to (Cgroup.join_files)


class ExecPlan:
    __slots__ = ("init_pid", "join", "ns_types", "process", "seccomp", "seccomp_flags", "stdio")

    def __init__(self, process: dict[str, Any], init_pid: int, ns_types: tuple[str, ...],
                 stdio: tuple[int, int, int] | None, seccomp: bytes | None,
                 seccomp_flags: int, join: list[str]) -> None:
        self.process, self.init_pid, self.ns_types = process, init_pid, ns_types
        self.stdio, self.seccomp, self.seccomp_flags = stdio, seccomp, seccomp_flags
        self.join = join


def run_child(ch: Channel, body: Callable[[], None]) -> NoReturn:
    code = 0
    try:
        body()
    except BaseException as exc:  # report anything, then die: never unwind into the caller
        code = 1
        try:
            from dockyard.errors import DockyardError

            kind = type(exc).__name__ if isinstance(exc, DockyardError) else "Internal"
            msg = str(exc) if isinstance(exc, DockyardError) else f"{type(exc).__name__}: {exc}"
            ch.send("error", kind=kind, msg=msg)
        except BaseException:
            os.write(2, f"dockyard-runtime: {type(exc).__name__}: {exc}\n".encode())
    os._exit(code)


def preload(seccomp: bytes | None, hooks: dict[str, Any] | None, terminal: bool,
            rlimits: bool = False) -> None:
    """Import what the children need, in the parent before it forks: after the uid switch
    into a user namespace or pivot_root the host's Python library may be out of reach, and a
    forked child importing is twice as slow (copy-on-write faults on both sides)."""
    from dockyard.linux import capabilities, syscalls  # noqa: F401
    from dockyard.runtime import process, rootfs  # noqa: F401

    if terminal:
        from dockyard.linux import pty  # noqa: F401
    if rlimits:
        import resource  # noqa: F401
    if seccomp:
        from dockyard.linux import seccomp as _seccomp  # noqa: F401
    if hooks:
        import subprocess  # noqa: F401

        from dockyard.runtime import hooks as _hooks  # noqa: F401
    from dockyard.linux import signals  # noqa: F401


def _dup_stdio(stdio: tuple[int, int, int] | None) -> None:
    if stdio is None:
        return
    for target, fd in enumerate(stdio):
        if fd != target:
            os.dup2(fd, target)


def _fork_after_pid(ch: Channel, body: Callable[[], None]) -> None:
    """Fork the final process; it starts ``body`` only once S1 has sent its "pid" message.

    Both share the socket: without this gate the child's first messages (even "ready") could
    overtake S1's "pid" on a loaded machine, and the parent would not know whom to kill or
    reap. EOF on the gate (S1 died first) ends the child.
    """
    gate_r, gate_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(gate_w)

        def gated() -> None:
            if os.read(gate_r, 1) != b"1":
                raise RuntimeError("stage 1 exited before reporting the pid")
            os.close(gate_r)
            body()

        run_child(ch, gated)
    os.close(gate_r)
    ch.send("pid", pid=pid)
    os.write(gate_w, b"1")
    os.close(gate_w)


def _host_cgroup_dirs() -> list[tuple[str, str]]:
    """(name, host directory of this process's cgroup) for each mounted hierarchy."""
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, cg_path = line.rstrip("\n").split(":", 2)
            for c in (ctrls.split(",") if ctrls else [""]):
                own[c.removeprefix("name=")] = cg_path
    dirs = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fields, rfields = left.split(), right.split()
            if rfields[0] not in ("cgroup", "cgroup2"):
                continue
            mnt, root = fields[4], fields[3]
            if rfields[0] == "cgroup2":
                path = own.get("")
            else:
                opts = [o.removeprefix("name=") for o in rfields[2].split(",")]
                path = next((own[o] for o in opts if o in own), None)
            if path is None or root != "/":
                continue
            name = os.path.basename(mnt)
            dirs.append((name, os.path.join(mnt, path.lstrip("/"))))
    return dirs


def _join(joined: dict[str, str]) -> None:
    """Join the namespaces at ``joined`` paths, in setns order."""
    for kind in join_order(set(joined)):
        fd = os.open(joined[kind], os.O_RDONLY | os.O_CLOEXEC)
        try:
            libc.setns(fd, NAMESPACES[kind][0])
        finally:
            os.close(fd)


def _enter(ch: Channel, plan: InitPlan, *, born_in_pid_ns: bool) -> tuple[bool, list[tuple[str, str]]]:
    """Join the cgroup, join and make the namespaces; returns (in a user namespace, the
    cgroup directories the init mounts). With ``born_in_pid_ns`` the fork did the pid one."""
    join_self(plan.join)  # first: a user namespace would take our rights on the host's files
    linux = plan.spec.get("linux") or {}
    namespaces = linux.get("namespaces") or []
    joined = {ns["type"]: ns["path"] for ns in namespaces if ns.get("path")}
    flags = new_flags(namespaces)
    if born_in_pid_ns:
        joined.pop("pid", None)
        flags &= ~libc.CLONE_NEWPID
    _join(joined)
    wants_cgroup_mount = any(m.get("type") == "cgroup" for m in plan.spec.get("mounts") or [])
    cgroup_dirs = _host_cgroup_dirs() if wants_cgroup_mount else []
    if flags:
        libc.unshare(flags)
    new_user = bool(flags & libc.CLONE_NEWUSER)
    if new_user:
        ch.send("userns")
        ch.expect("mapped")
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    mark("in the cgroup and the namespaces")
    return new_user or "user" in joined, cgroup_dirs


def stage1_create(ch: Channel, plan: InitPlan) -> None:
    """S1, for a container with a user namespace: its pid namespace must be made inside it."""
    in_userns, cgroup_dirs = _enter(ch, plan, born_in_pid_ns=False)
    _fork_after_pid(ch, lambda: _init(ch, plan, in_userns, cgroup_dirs))


def init_direct(ch: Channel, plan: InitPlan) -> None:
    """The init, forked straight into its pid namespace (``spawn.fork_in_pid_ns``)."""
    in_userns, cgroup_dirs = _enter(ch, plan, born_in_pid_ns=True)
    _init(ch, plan, in_userns, cgroup_dirs)


def _init(ch: Channel, plan: InitPlan, in_userns: bool, cgroup_dirs: list[tuple[str, str]]) -> None:
    from dockyard.linux.syscalls import RealSyscalls  # all preloaded by the parent
    from dockyard.runtime import rootfs as rfs
    from dockyard.runtime.process import exec_prepared, prepare_process, reset_signals

    mark("init: forked")
    reset_signals()

    spec, proc = plan.spec, plan.spec["process"]
    os.setsid()
    _dup_stdio(plan.stdio)
    fifo_fd = plan.fifo_fd
    sys = RealSyscalls()
    rplan = rfs.RootfsPlan.from_spec(spec, plan.rootfs, plan.bundle, in_userns=in_userns,
                                     cgroup_dirs=cgroup_dirs)
    rfs.prepare_rootfs(sys, rplan)
    mark("init: mounts made")
    hooks = spec.get("hooks") or {}
    if hooks.get("prestart") or hooks.get("createRuntime"):
        ch.send("hooks")
        ch.expect("hooks-done")
    if hooks.get("createContainer"):
        from dockyard.runtime.hooks import run_hooks

        run_hooks(spec, "createContainer", {"ociVersion": spec["ociVersion"], "status": "creating",
                                            "pid": os.getpid(), "bundle": plan.bundle})
    slave = -1
    if proc.get("terminal"):
        slave = _console(ch, sys, plan.rootfs, proc)
    if spec.get("hostname"):
        libc.sethostname(spec["hostname"])
    rfs.pivot(sys, plan.rootfs, readonly=bool(spec["root"].get("readonly")))
    mark("init: pivoted")
    prepared = prepare_process(proc, seccomp_program=plan.seccomp,
                               seccomp_flags=plan.seccomp_flags,
                               warn=lambda m: ch.send("warning", msg=m))
    if slave >= 0:
        os.login_tty(slave)
    mark("init: process prepared")
    ch.send("ready")
    ch.close()
    fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)  # blocks until start
    os.write(fd, b"0")
    os.close(fd)
    os.close(fifo_fd)
    mark("init: started")
    if hooks.get("startContainer"):
        from dockyard.runtime.hooks import run_hooks

        run_hooks(spec, "startContainer", {"ociVersion": spec["ociVersion"], "status": "running",
                                           "pid": os.getpid(), "bundle": plan.bundle})
    exec_prepared(prepared)


def _console(ch: Channel, sys: Syscalls, rootfs: str, proc: dict[str, Any]) -> int:
    """Open a pty on the container's devpts, bind its slave on /dev/console, send the master."""
    from dockyard.linux import pty
    from dockyard.linux.mountflags import MS_BIND

    master, slave = pty.open_pty(os.path.join(rootfs, "dev/pts/ptmx"))
    size = proc.get("consoleSize") or {}
    if size.get("height") and size.get("width"):
        pty.resize(master, size["height"], size["width"])
    console = os.path.join(rootfs, "dev/console")
    if not os.path.lexists(console):
        with open(console, "a"):
            pass
    sys.mount(os.readlink(f"/proc/self/fd/{slave}"), console, None, MS_BIND, None)
    ch.send("console", fd=master)
    os.close(master)
    return slave


def exec_direct(ch: Channel, plan: ExecPlan) -> None:
    """The exec'd process, forked straight into the init's pid namespace
    (``spawn.fork_in_pid_ns``): it joins the cgroup, then the other namespaces."""
    from dockyard.runtime.process import exec_prepared, prepare_process, reset_signals

    join_self(plan.join)
    fds = {kind: os.open(f"/proc/{plan.init_pid}/ns/{NAMESPACES[kind][1]}",
                         os.O_RDONLY | os.O_CLOEXEC) for kind in plan.ns_types if kind != "pid"}
    for kind in join_order(set(fds)):
        libc.setns(fds[kind], NAMESPACES[kind][0])
        os.close(fds[kind])
    reset_signals()
    proc = plan.process
    os.setsid()
    _dup_stdio(plan.stdio)
    slave = -1
    if proc.get("terminal"):
        from dockyard.linux import pty

        master, slave = pty.open_pty("/dev/ptmx")
        size = proc.get("consoleSize") or {}
        if size.get("height") and size.get("width"):
            pty.resize(master, size["height"], size["width"])
        ch.send("console", fd=master)
        os.close(master)
    prepared = prepare_process(proc, seccomp_program=plan.seccomp,
                               seccomp_flags=plan.seccomp_flags,
                               warn=lambda m: ch.send("warning", msg=m))
    if slave >= 0:
        os.login_tty(slave)
    ch.send("ready")
    ch.close()
    exec_prepared(prepared)
