"""OCI mount options -> mount(2) flags: the one table the code and ``features`` share.

``parse_options`` splits an OCI ``options`` list into flags to set, propagation flags to
apply afterwards (a separate mount(2) call, see mount(2) "Changing the propagation type"),
and the remaining ``data`` string passed to the filesystem (``mode=755``, ``size=64k``).
"""

from __future__ import annotations

__all__ = ["FLAGS", "PROPAGATION", "MountOptions", "all_options", "parse_options"]

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# option -> (clear?, flag): "ro" sets MS_RDONLY, "rw" clears it.
FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "lazytime": (False, MS_LAZYTIME),
    "loud": (True, MS_SILENT),
    "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "nolazytime": (True, MS_LAZYTIME),
    "nomand": (True, MS_MANDLOCK),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "silent": (False, MS_SILENT),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "symfollow": (True, MS_NOSYMFOLLOW),
    "sync": (False, MS_SYNCHRONOUS),
}

PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}


class MountOptions:
    __slots__ = ("data", "flags", "propagation")

    def __init__(self, flags: int, propagation: tuple[int, ...], data: str) -> None:
        self.flags, self.propagation, self.data = flags, propagation, data

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & MS_BIND)


def parse_options(options: list[str] | tuple[str, ...]) -> MountOptions:
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    for opt in options:
        if opt in FLAGS:
            clear, flag = FLAGS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        else:
            data.append(opt)
    return MountOptions(flags, tuple(propagation), ",".join(data))


def all_options() -> list[str]:
    return sorted([*FLAGS, *PROPAGATION])
