"""The spawner ("zygote"): the one process that forks monitors.

The daemon is a threaded asyncio process and must never fork into namespaces, nor pay an
interpreter start-up per container. So it starts one small single-threaded process (a fresh
interpreter: ``python -m dockyard.daemon.spawner FD``) that pre-imports the monitor and the
runtime, freezes the GC (so forked children keep sharing those pages: low PSS), and loops
(forking with :func:`dockyard.shim.monitor.raw_fork`: no CPython at-fork hooks in the child)::

    daemon --(SOCK_SEQPACKET: JSON config + SCM_RIGHTS control fd)--> spawner
    spawner: fork -> setsid -> fork -> monitor (re-parented to init; survives the daemon)

The daemon keeps its end of the control socketpair it sent: that is its first connection to
the new monitor. The spawner replies nothing: errors come back over the control connection.
It dies with the daemon (PR_SET_PDEATHSIG); if it dies alone, the next spawn starts a new one.
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
import subprocess
import sys
from typing import Any

PR_SET_PDEATHSIG = 1
PRELOAD = ("dockyard.shim.monitor", "dockyard.shim.drivers", "subprocess", "fcntl", "termios")
# everything a monitor (and the container init it forks) may import: nothing is imported after
# the fork, where each new module object would land on private pages
OPTIONAL_PRELOAD = ("dockyard.runtime", "dockyard.runtime.create", "dockyard.runtime.exec",
                    "dockyard.runtime.start", "dockyard.runtime.kill", "dockyard.runtime.delete",
                    "dockyard.runtime.hooks", "dockyard.runtime.cgroup", "dockyard.runtime.process",
                    "dockyard.runtime.rootfs", "dockyard.linux.pty", "dockyard.linux.capabilities",
                    "dockyard.linux.syscalls", "dockyard.linux.mountflags",
                    "dockyard.linux.seccomp", "dockyard.linux.seccomp_default", "dockyard.cgroups")


class Spawner:
    """The daemon's handle on the spawner process."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self._start()

    def _start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "dockyard.daemon.spawner", str(child.fileno())],
                                         pass_fds=[child.fileno()], stdin=subprocess.DEVNULL)
        finally:
            child.close()
        self.sock = parent

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def spawn(self, cfg: dict[str, Any]) -> socket.socket:
        """Ask for a monitor; returns the daemon's end of its control connection."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        payload = json.dumps(cfg).encode()
        try:
            try:
                assert self.sock is not None
                socket.send_fds(self.sock, [payload], [theirs.fileno()])
            except OSError:  # the spawner died: start another and try once more
                self.close()
                self._start()
                assert self.sock is not None
                socket.send_fds(self.sock, [payload], [theirs.fileno()])
        finally:
            theirs.close()
        return mine

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def start_spawner() -> Spawner:
    return Spawner()


def _spawner_main(sock: socket.socket) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the daemon died before the line above
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for name in PRELOAD:
        importlib.import_module(name)
    for name in OPTIONAL_PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    from dockyard.shim.monitor import raw_fork, run_monitor, warm_up

    with contextlib.suppress(Exception):
        warm_up()
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
        try:
            pid = raw_fork()
        except OSError:
            for fd in fds:
                os.close(fd)
            continue
        if pid == 0:
            sock.close()
            os.setsid()
            if raw_fork() != 0:
                os._exit(0)
            run_monitor(cfg, control_fd)
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


__all__ = ["Spawner", "start_spawner"]


if __name__ == "__main__":
    code = 0
    try:
        _spawner_main(socket.socket(fileno=int(sys.argv[1])))
    except BaseException:
        code = 1
    os._exit(code)
