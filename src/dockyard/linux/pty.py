"""Pseudo-terminals and passing their master end to another process.

The container's pty is opened *inside* the container (its own devpts instance, pts(4)), and its
master travels to the caller over a unix socket as SCM_RIGHTS ancillary data (unix(7)); runc's
``--console-socket`` protocol is the same: one message whose payload is a name and whose
ancillary data carries one fd.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios

__all__ = ["get_size", "make_controlling", "open_pty", "recv_fd", "resize", "send_fd"]

# asm-generic/ioctls.h (termios lacks them): _IOW('T', 0x31, int), _IOR('T', 0x30, unsigned int)
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
TIOCGPTPEER = 0x5441  # _IO('T', 0x41): open the peer without a path (Linux 4.13)


def open_pty(ptmx: str = "/dev/ptmx") -> tuple[int, int]:
    """Open a new pty pair from ``ptmx`` and return (master, slave)."""
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    except BaseException:
        os.close(master)
        raise
    return master, slave


def make_controlling(slave: int) -> None:
    """New session with ``slave`` as controlling terminal and as fds 0, 1, 2."""
    os.login_tty(slave)


def resize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_size(fd: int) -> tuple[int, int]:
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols


def send_fd(sock: socket.socket, fd: int, name: bytes = b"/dev/ptmx") -> None:
    socket.send_fds(sock, [name], [fd])


def recv_fd(sock: socket.socket) -> int:
    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError("no file descriptor received")
    return fds[0]
