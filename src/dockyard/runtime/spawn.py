"""The parent's half of the handshake (``runtime.sync``): fork the child, answer its messages."""

from __future__ import annotations

import os

from dockyard import errors
from dockyard.linux import libc
from dockyard.linux.signals import SIGKILL
from dockyard.runtime.child import run_child
from dockyard.runtime.sync import Channel

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


__all__ = ["Spawn", "fork_in_pid_ns"]


def fork_in_pid_ns(pid_ns: str | None) -> int:
    """``os.fork()`` with the child born in a new pid namespace (``pid_ns == ""``), in the one
    at path ``pid_ns``, or in ours (None); returns what fork returns.

    unshare(2) and setns(2) with CLONE_NEWPID change only the namespace our *next* children
    are born in, never our own; we put ours back right after the fork, so this costs one fork
    where making the namespace in a first child (S1) and forking again costs two.
    """
    if pid_ns is None:
        return os.fork()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    forked = -1
    try:
        if pid_ns:
            target = os.open(pid_ns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                libc.setns(target, libc.CLONE_NEWPID)
            finally:
                os.close(target)
        else:
            libc.unshare(libc.CLONE_NEWPID)
        forked = os.fork()
        return forked
    finally:
        if forked != 0:  # the parent, or a failure: our next children are born beside us again
            try:
                libc.setns(own, libc.CLONE_NEWPID)
            except BaseException:
                if forked > 0:
                    os.kill(forked, SIGKILL)  # never leave a child nobody will talk to
                raise
            finally:
                os.close(own)


class Spawn:
    """One fork and the conversation with the child: S1 and the process S1 forks, or, with
    ``direct``, the final process itself, born in the pid namespace ``pid_ns`` (see
    :func:`fork_in_pid_ns`) so that no S1 is needed.

    ``pid`` is the final process (init or exec'd process) in our pid namespace; it is never
    reaped here (the caller, a subreaper or its parent, reaps it). S1 is reaped here.
    """

    def __init__(self, stage1: Callable[[Channel], None], *, direct: bool = False,
                 pid_ns: str | None = None) -> None:
        self.ch, child = Channel.pair()
        forked = fork_in_pid_ns(pid_ns) if direct else os.fork()
        if forked == 0:
            self.ch.close()
            run_child(child, lambda: stage1(child))
        child.close()
        self.s1, self.pid = (0, forked) if direct else (forked, 0)

    def run(self, on: dict[str, Callable[[dict[str, Any], int | None], None]]) -> int:
        """Answer the children's messages until "ready"; return the final process's pid."""
        try:
            while True:
                msg, fd = self.ch.recv()
                kind = msg["type"]
                if kind == "ready":
                    if not self.pid:  # cannot happen: the init waits for S1's "pid" (gate)
                        raise errors.Internal("sync: ready before the pid was known")
                    return self.pid
                if kind == "pid":
                    self.pid = msg["pid"]
                    self._reap_s1()
                elif kind == "error":
                    cls = getattr(errors, msg.get("kind", ""), errors.Internal)
                    if not (isinstance(cls, type) and issubclass(cls, errors.DockyardError)):
                        cls = errors.Internal
                    raise cls(msg["msg"])
                elif kind == "eof":
                    raise errors.Internal("container process exited during setup")
                elif kind in on:
                    on[kind](msg, fd)
                elif fd is not None:
                    os.close(fd)
        except BaseException:
            self.abort()
            raise
        finally:
            self.ch.close()

    def _reap_s1(self) -> None:
        if self.s1:
            os.waitpid(self.s1, 0)
            self.s1 = 0

    def abort(self) -> None:
        """Kill whatever was started; S1 is reaped, the final process left to its reaper."""
        if self.pid:
            try:
                os.kill(self.pid, SIGKILL)
            except ProcessLookupError:
                pass
        if self.s1:
            try:
                os.kill(self.s1, SIGKILL)
            except ProcessLookupError:
                pass
            self._reap_s1()

    def reply(self, kind: str, **fields: Any) -> None:
        self.ch.send(kind, **fields)
