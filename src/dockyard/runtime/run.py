"""Foreground helpers of the CLI: ``run`` and ``exec`` without ``--detach``.

The CLI becomes a subreaper (prctl(2) PR_SET_CHILD_SUBREAPER) so the container's init or the
exec'd process, orphaned by the fork chain, is reparented to it and its exit status can be
collected; signals the CLI receives are forwarded; a pty with no ``--console-socket`` is
proxied to the CLI's own stdin/stdout.
"""

from __future__ import annotations

import os
import select
import sys

from dockyard.linux import libc, signals
from dockyard.runtime.trace import mark

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = ["exec_and_wait", "process_from_flags", "run"]

_FORWARD = (signals.SIGTERM, signals.SIGINT, signals.SIGHUP, signals.SIGQUIT, signals.SIGUSR1,
            signals.SIGUSR2)


def _console_handler(console_socket: str | None, holder: list[int]) -> Any:
    if console_socket:
        from dockyard.runtime.cli import _send_console

        return _send_console(console_socket)
    return holder.append


def run(rt: Any, container_id: str, bundle: str, *, console_socket: str | None, detach: bool,
        keep: bool, pid_file: str | None) -> int:
    libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
    masters: list[int] = []
    pid = rt.create(container_id, bundle, console=_console_handler(console_socket, masters),
                    pid_file=pid_file)
    try:
        rt.start(container_id)
    except BaseException:
        rt.delete(container_id, force=True)
        raise
    if detach:
        return 0
    try:
        return _wait(pid, masters[0] if masters else None)
    finally:
        if not keep:
            rt.delete(container_id, force=True)


def exec_and_wait(rt: Any, container_id: str, process: dict[str, Any], *,
                  console_socket: str | None, detach: bool, pid_file: str | None) -> int:
    libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
    masters: list[int] = []
    pid = rt.exec(container_id, process, console=_console_handler(console_socket, masters),
                  pid_file=pid_file)
    if detach:
        return 0
    return _wait(pid, masters[0] if masters else None)


def _wait(pid: int, master: int | None) -> int:
    for sig in _FORWARD:
        signals.handle(sig, lambda s, _f: _forward(pid, s))
    if master is not None:
        signals.handle(signals.SIGWINCH, lambda _s, _f: _sync_size(master))
        _sync_size(master)
        _proxy(pid, master)
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if got == pid:
            mark("run: container exited")
            return _exit_code(status)


def _forward(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _sync_size(master: int) -> None:
    from dockyard.linux import pty

    if os.isatty(0):
        try:
            rows, cols = pty.get_size(0)
            pty.resize(master, rows, cols)
        except OSError:
            pass


def _proxy(pid: int, master: int) -> None:
    """Copy stdin -> pty and pty -> stdout until the pty hangs up (the process exited)."""
    import termios
    import tty

    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        fds = [master, 0]
        while True:
            ready, _, _ = select.select(fds, [], [])
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    return
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    fds = [master]
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        sys.stdout.flush()


def process_from_flags(rt: Any, a: Any) -> dict[str, Any]:
    """runc's ``exec ID CMD...`` form: the container's process, with the flags applied."""
    from dockyard.errors import InvalidArgument
    from dockyard.runtime.state import load_record

    base = dict(load_record(rt.root, a.id).config.get("process") or {})
    if not a.command:
        raise InvalidArgument("exec: a command or --process is required")
    env = list(base.get("env") or []) + list(a.env)
    user = dict(base.get("user") or {"uid": 0, "gid": 0})
    if a.user:
        uid, _, gid = a.user.partition(":")
        user = {"uid": int(uid), "gid": int(gid or 0)}
    return {**base, "args": a.command, "env": env, "cwd": a.cwd or base.get("cwd", "/"),
            "terminal": bool(a.tty), "user": user,
            "noNewPrivileges": bool(a.no_new_privs or base.get("noNewPrivileges"))}
