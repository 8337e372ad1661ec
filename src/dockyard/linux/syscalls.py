"""The syscalls the mount sequence makes, behind one small interface.

``runtime.rootfs`` takes a :class:`Syscalls`; the container init passes :class:`RealSyscalls`,
unit tests pass :class:`RecordingSyscalls` and assert on the recorded calls, so the order and
arguments of every mount are checked without root. Plain file operations (mkdir, symlink,
creating an empty mount-point file) stay real: in tests they happen inside a temp rootfs.
"""

from __future__ import annotations

import os

from dockyard.linux import libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.linux.syscalls_fake import Call, RecordingSyscalls, Syscalls

__all__ = ["Call", "RealSyscalls", "RecordingSyscalls", "Syscalls"]


class RealSyscalls:
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None) -> None:
        libc.mount(source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int = 0) -> None:
        libc.umount2(target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        libc.pivot_root(new_root, put_old)

    def chdir(self, path: str) -> None:
        os.chdir(path)

    def mknod(self, path: str, mode: int, device: int) -> None:
        os.mknod(path, mode, device)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(path, uid, gid)


def __getattr__(name: str) -> object:
    """:class:`Syscalls`, :class:`Call`, :class:`RecordingSyscalls`: imported on first use."""
    if name in ("Call", "RecordingSyscalls", "Syscalls"):
        from dockyard.linux import syscalls_fake

        return getattr(syscalls_fake, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
