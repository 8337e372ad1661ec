"""Set up the calling process as the container's ``process`` (shared by init and exec).

Runs in the child, after the namespaces and the pivot, in this order (runc's
``finalizeNamespace``; seccomp ordering from ``dockyard.linux.seccomp``)::

    rlimits -> oom_score_adj -> no_new_privs -> [seccomp if !noNewPrivileges]
    -> bounding set -> KEEPCAPS -> setgroups/setresgid/setresuid -> capset + ambient
    -> umask -> chdir(cwd) -> find args[0] in $PATH
    ... ready / exec fifo ...
    -> [seccomp if noNewPrivileges] -> execve
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


__all__ = ["Prepared", "find_executable", "prepare_process", "reset_signals"]

_PR_SET_NO_NEW_PRIVS = 38


class Prepared:
    __slots__ = ("args", "env", "late_seccomp", "path", "seccomp_flags")

    def __init__(self, path: str, args: list[str], env: dict[str, str],
                 late_seccomp: bytes | None, seccomp_flags: int) -> None:
        self.path, self.args, self.env = path, args, env
        self.late_seccomp = late_seccomp  # installed right before execve
        self.seccomp_flags = seccomp_flags


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive execve(2)."""
    from dockyard.linux import signals as s

    s.reset((s.SIGPIPE, s.SIGXFSZ, s.SIGINT, s.SIGTERM, s.SIGCHLD, s.SIGHUP, s.SIGQUIT,
             s.SIGUSR1, s.SIGUSR2))


def find_executable(name: str, env: dict[str, str]) -> str:
    if "/" in name:
        if os.access(name, os.X_OK) and not os.path.isdir(name):
            return name
        raise InvalidArgument(f'exec: "{name}": stat {name}: no such file or directory'
                              if not os.path.exists(name) else f'exec: "{name}": permission denied')
    for d in env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        candidate = os.path.join(d or ".", name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    raise InvalidArgument(f'exec: "{name}": executable file not found in $PATH')


def _set_rlimits(rlimits: list[dict[str, Any]], warn: Callable[[str], None]) -> None:
    if not rlimits:
        return
    import resource  # preloaded by the parent when the spec has rlimits (runtime.child.preload)

    for rl in rlimits:
        kind = getattr(resource, rl["type"], None)
        if kind is None:
            warn(f"rlimit {rl['type']} is not known here, skipped")
            continue
        _, hard_now = resource.getrlimit(kind)
        soft, hard = rl["soft"], rl["hard"]
        inf = resource.RLIM_INFINITY
        if hard_now != inf and (hard == inf or hard > hard_now or hard >= 2**63):
            # raising a hard limit needs CAP_SYS_RESOURCE, which this host may not have
            warn(f"{rl['type']}: hard limit {hard} above the inherited {hard_now}, capped")
            hard = hard_now
            soft = min(soft, hard)
        resource.setrlimit(kind, (inf if soft >= 2**63 else soft, inf if hard >= 2**63 else hard))


def _set_oom_score_adj(value: int, warn: Callable[[str], None]) -> None:
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except PermissionError:  # lowering it needs CAP_SYS_RESOURCE (proc(5))
        warn(f"cannot set oomScoreAdj to {value} (needs CAP_SYS_RESOURCE), left unchanged")


def _switch_user(user: dict[str, Any]) -> Callable[[], None]:
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    groups = list(user.get("additionalGids") or [])

    def switch() -> None:
        try:
            os.setgroups(groups)
        except PermissionError:
            if groups:
                raise
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)

    return switch


def prepare_process(proc: dict[str, Any], *, seccomp_program: bytes | None, seccomp_flags: int,
                    warn: Callable[[str], None]) -> Prepared:
    from dockyard.linux import capabilities, libc

    _set_rlimits(proc.get("rlimits") or [], warn)
    if proc.get("oomScoreAdj") is not None:
        _set_oom_score_adj(proc["oomScoreAdj"], warn)
    nnp = bool(proc.get("noNewPrivileges"))
    if nnp:
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if seccomp_program and not nnp:
        from dockyard.linux import seccomp

        seccomp.install(seccomp_program, seccomp_flags)
    host = capabilities.host_bounding_set()
    wanted = proc.get("capabilities") or {}
    missing = sorted({c for names in wanted.values() for c in names} - host)
    if missing:
        warn(f"capabilities not in the host bounding set, dropped: {', '.join(missing)}")
    sets = capabilities.resolve({k: [c for c in v if c in host] for k, v in wanted.items()}, host)
    ambient = sets.ambient & sets.permitted & sets.inheritable
    if ambient != sets.ambient:  # runc warns and goes on too (capabilities(7): ambient rule)
        warn("ambient capabilities not both permitted and inheritable, not raised: "
             + ", ".join(sorted(sets.ambient - ambient)))
    capabilities.apply(sets.bounding, sets.effective, sets.permitted, sets.inheritable,
                       ambient, switch_user=_switch_user(proc.get("user") or {}))
    umask = (proc.get("user") or {}).get("umask")
    os.umask(0o022 if umask is None else umask)
    cwd = proc.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise InvalidArgument(f"process.cwd: cannot chdir to {cwd}: {exc.strerror}") from exc
    env = dict(e.split("=", 1) for e in proc.get("env") or [])
    args = list(proc["args"])
    path = find_executable(args[0], env)
    late = seccomp_program if (seccomp_program and nnp) else None
    return Prepared(path, args, env, late, seccomp_flags)


def exec_prepared(p: Prepared) -> None:
    if p.late_seccomp:
        from dockyard.linux import seccomp

        seccomp.install(p.late_seccomp, p.seccomp_flags)
    os.execve(p.path, p.args, p.env)
