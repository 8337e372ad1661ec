"""The syscalls the mount sequence makes, behind one small interface.

``runtime.rootfs`` takes a :class:`Syscalls`; the container init passes :class:`RealSyscalls`,
unit tests pass :class:`RecordingSyscalls` and assert on the recorded calls, so the order and
arguments of every mount are checked without root. Plain file operations (mkdir, symlink,
creating an empty mount-point file) stay real: in tests they happen inside a temp rootfs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

from dockyard.linux import libc

__all__ = ["Call", "RealSyscalls", "RecordingSyscalls", "Syscalls"]


class Syscalls(Protocol):
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None) -> None: ...
    def umount2(self, target: str, flags: int = 0) -> None: ...
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    def chdir(self, path: str) -> None: ...
    def mknod(self, path: str, mode: int, device: int) -> None: ...
    def chown(self, path: str, uid: int, gid: int) -> None: ...


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


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[object, ...]


@dataclass
class RecordingSyscalls:
    """A fake that records every call; ``fail_on`` makes a named call raise ``OSError``."""

    calls: list[Call] = field(default_factory=list)
    fail_on: dict[str, int] = field(default_factory=dict)  # call name -> errno

    def _record(self, name: str, *args: object) -> None:
        self.calls.append(Call(name, args))
        if name in self.fail_on:
            raise OSError(self.fail_on[name], os.strerror(self.fail_on[name]))

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None) -> None:
        self._record("mount", source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int = 0) -> None:
        self._record("umount2", target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)

    def chdir(self, path: str) -> None:
        self._record("chdir", path)

    def mknod(self, path: str, mode: int, device: int) -> None:
        self._record("mknod", path, mode, device)
        with open(path, "a"):  # leave something where the node would be
            pass

    def chown(self, path: str, uid: int, gid: int) -> None:
        self._record("chown", path, uid, gid)

    def mounts(self) -> list[tuple[object, ...]]:
        return [c.args for c in self.calls if c.name == "mount"]
