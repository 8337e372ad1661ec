"""The :class:`Syscalls` interface of :mod:`dockyard.linux.syscalls` and its recording fake.

Apart from ``syscalls`` so that the container init, which only needs :class:`RealSyscalls`,
does not import ``typing`` and ``dataclasses`` (~10 ms at start-up). Both names are still
importable from :mod:`dockyard.linux.syscalls`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Call", "RecordingSyscalls", "Syscalls"]


class Syscalls(Protocol):
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None) -> None: ...
    def umount2(self, target: str, flags: int = 0) -> None: ...
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    def chdir(self, path: str) -> None: ...
    def mknod(self, path: str, mode: int, device: int) -> None: ...
    def chown(self, path: str, uid: int, gid: int) -> None: ...



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
