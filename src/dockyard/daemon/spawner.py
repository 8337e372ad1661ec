"""The spawner ("zygote"): the one process that forks monitors.

The daemon is a threaded asyncio process and must never fork into namespaces, nor pay an
interpreter start-up per container. So before the event loop (or any thread) exists,
:func:`start_spawner` forks a small single-threaded process that pre-imports the monitor and
the runtime, freezes the GC (so forked children keep sharing those pages: low PSS), and then
loops::

    daemon --(SOCK_SEQPACKET: JSON config + SCM_RIGHTS control fd)--> spawner
    spawner: fork -> setsid -> fork -> monitor (re-parented to init; survives the daemon)

The daemon keeps its end of the control socketpair it sent: that is its first connection to
the new monitor. The spawner replies nothing: errors come back over the control connection.
It dies with the daemon (PR_SET_PDEATHSIG) and a restarted daemon forks a new one.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import signal
import socket
from typing import Any

PR_SET_PDEATHSIG = 1
PRELOAD = ("dockyard.shim.monitor", "dockyard.shim.drivers", "subprocess", "fcntl", "termios")
OPTIONAL_PRELOAD = ("dockyard.runtime", "dockyard.runtime.create", "dockyard.runtime.exec",
                    "dockyard.linux.seccomp", "dockyard.cgroups")


class Spawner:
    """The daemon's handle on the spawner process."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock

    def spawn(self, cfg: dict[str, Any]) -> socket.socket:
        """Ask for a monitor; returns the daemon's end of its control connection."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            socket.send_fds(self.sock, [json.dumps(cfg).encode()], [theirs.fileno()])
        finally:
            theirs.close()
        return mine

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def start_spawner() -> Spawner:
    """Fork the spawner. Call before any thread or event loop exists."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        parent.close()
        code = 0
        try:
            _spawner_main(child)
        except BaseException:
            code = 1
        os._exit(code)
    child.close()
    return Spawner(pid, parent)


def _spawner_main(sock: socket.socket) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for name in PRELOAD:
        importlib.import_module(name)
    for name in OPTIONAL_PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    from dockyard.shim.monitor import run_monitor

    gc.collect()
    gc.freeze()
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
        except InterruptedError:
            continue
        if not msg:
            return
        try:
            cfg = json.loads(msg)
        except ValueError:
            for fd in fds:
                os.close(fd)
            continue
        control_fd = fds[0] if fds else -1
        pid = os.fork()
        if pid == 0:
            sock.close()
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            run_monitor(cfg, control_fd)
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


__all__ = ["Spawner", "start_spawner"]
