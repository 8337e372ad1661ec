"""The parent/child handshake of ``create`` and ``exec``, over one SOCK_SEQPACKET socketpair.

Each message is one JSON object in one packet; a packet may carry one fd (SCM_RIGHTS).
``P`` is the caller of ``Runtime.create`` (the CLI or the shim), ``I`` the container init,
forked straight into its new pid namespace (``runtime.spawn.fork_in_pid_ns``), so that it is
pid 1 there. With a user namespace, which must own the pid namespace and so be made first,
a first child ``S1`` makes the namespaces and forks ``I`` (the lines marked S1)::

      P (runtime ns)                          I (container side)
      --------------                          ------------------
      cgroup create + set ; import what
      the children run (runtime.child.preload)
      fork I -------------------------------> I: writes "0" to the cgroup's tasks files:
                                              moves itself in (Cgroup.join_files) ;
                                              setns(paths) ; unshare(new namespaces)
      [S1] fork S1 -------------------------> S1: the same, then unshare(CLONE_NEWUSER | ...)
      [S1]              <---------- "userns"  S1
      [S1] write uid_map/gid_map ;
      [S1] "mapped" ------------------------> S1: setresuid(0) ; fork I
      [S1]              <--------- "pid" n    S1 (n in P's pid namespace), then opens the
      [S1]                                    gate (a pipe I waits on: nothing I sends may
      [S1]                                    overtake "pid") ; exit
      [S1] waitpid(S1)
                                              I: mount sequence (rootfs.py), up to pivot_root
                        <---------- "hooks"   I
      prestart + createRuntime hooks ;
      "hooks-done" -------------------------> I: createContainer hooks ; pty ; hostname ;
                        <-- "console" + fd    I (only with process.terminal)
                                              I: pivot_root ; rlimits ; user ; caps ; seccomp
                        <---------- "ready"   I: closes the socket, opens exec.fifo for
      write state.json, return pid               writing: blocks until `start`
      ...
      start: open exec.fifo, read 1 byte <--- I: writes "0", startContainer hooks, execve
                        <--- "error" {msg}    any of S1/I at any step: P kills them, removes
                                              the cgroup and state; create raises
``exec`` forks its process into the init's pid namespace the same way; the process joins the
container's cgroup and the init's other namespaces (setns) instead of creating them; no
mount sequence, no hooks, no fifo: ``ready`` comes right before execve.
"""

from __future__ import annotations

import _socket
import os
import sys

from dockyard import fastjson
from dockyard.errors import Internal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = ["Channel"]

_MAX = 65536


class Channel:
    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        # _socket, not socket: the wrapper module costs ~3 ms of import (its enums)
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def send(self, msg_type: str, fd: int | None = None, **fields: Any) -> None:
        data = fastjson.dumps({"type": msg_type, **fields}).encode()
        if fd is None:
            self.sock.sendall(data)
        else:
            # socket.send_fds, without `array` (it imports collections.abc: ~2 ms)
            fds = fd.to_bytes(4, sys.byteorder, signed=True)
            self.sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])

    def recv(self) -> tuple[dict[str, Any], int | None]:
        """The next message and its fd; ``{"type": "eof"}`` when every peer closed."""
        # socket.recv_fds (C ints in native byte order)
        data, ancdata, _, _ = self.sock.recvmsg(_MAX, _socket.CMSG_LEN(4))
        fds = [int.from_bytes(cdata[i:i + 4], sys.byteorder, signed=True)
               for level, kind, cdata in ancdata
               if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
               for i in range(0, len(cdata) - 3, 4)]
        if not data:
            for fd in fds:
                os.close(fd)
            return {"type": "eof"}, None
        return fastjson.loads(data), (fds[0] if fds else None)

    def expect(self, kind: str) -> dict[str, Any]:
        msg, fd = self.recv()
        if fd is not None:
            os.close(fd)
        if msg["type"] != kind:
            raise Internal(f"sync: expected {kind!r}, got {msg.get('type')!r}")
        return msg

    def close(self) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()
