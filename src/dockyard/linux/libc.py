"""Bindings for the syscalls the ``os`` module lacks in Python 3.11.

Each function raises ``OSError(errno, strerror, path)`` on failure, like ``os`` does. The libc
handle is loaded on first use. Constants are the x86_64/aarch64 Linux values (linux/sched.h,
linux/mount.h, linux/prctl.h; mount(2) flags are in dockyard.linux.mountflags).

Built on ``_ctypes``, the C half of ctypes, not on ``ctypes`` itself: this module is imported by
every ``dockyard-runtime`` call, and ``import ctypes`` costs ~2 ms (its Python half defines
dozens of classes we never use). What ``ctypes`` would give us is the three lines below that
declare C ``int``/``long``/``unsigned long`` and a function-pointer class returning ``int``
with errno saved, exactly as ``ctypes.CDLL(None, use_errno=True)`` declares them.
"""

from __future__ import annotations

import os
from _ctypes import (
    FUNCFLAG_CDECL,
    FUNCFLAG_USE_ERRNO,
    Array,
    CFuncPtr,
    addressof,
    dlopen,
    get_errno,
)
from _ctypes import _SimpleCData as SimpleCData

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CLONE_NEWCGROUP",
    "CLONE_NEWIPC",
    "CLONE_NEWNET",
    "CLONE_NEWNS",
    "CLONE_NEWPID",
    "CLONE_NEWUSER",
    "CLONE_NEWUTS",
    "MNT_DETACH",
    "PR_SET_CHILD_SUBREAPER",
    "PR_SET_NO_NEW_PRIVS",
    "PR_SET_PDEATHSIG",
    "address_of",
    "buffer",
    "capset",
    "mount",
    "pivot_root",
    "prctl",
    "sethostname",
    "setns",
    "syscall",
    "umount2",
    "unshare",
]

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}


class _Char(SimpleCData):  # type: ignore[type-arg]
    _type_ = "c"


class _Int(SimpleCData):  # type: ignore[type-arg]
    _type_ = "i"


class _Long(SimpleCData):  # type: ignore[type-arg]
    _type_ = "l"


class _ULong(SimpleCData):  # type: ignore[type-arg]
    _type_ = "L"


class _Function(CFuncPtr):  # type: ignore[misc]
    _flags_ = FUNCFLAG_CDECL | FUNCFLAG_USE_ERRNO
    _restype_ = _Int


class _Libc:
    """The C library already mapped into this process (``dlopen(NULL)``); functions by name."""

    def __init__(self) -> None:
        self._handle = dlopen(None, 0)  # type: ignore[arg-type]  # NULL: this process
        self._functions: dict[str, _Function] = {}

    def __getattr__(self, name: str) -> _Function:
        fn = self._functions.get(name)
        if fn is None:
            fn = self._functions[name] = _Function((name, self))  # type: ignore[arg-type]
        return fn


_LIBC: list[_Libc] = []


def _libc() -> _Libc:
    if not _LIBC:
        _LIBC.append(_Libc())
    return _LIBC[0]


def _check(ret: int, what: str, path: str | None = None) -> int:
    if ret < 0:
        err = get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    ret = _libc().mount(_b(source), _b(target), _b(fstype), _ULong(flags), _b(data))
    _check(ret, "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc().umount2(_b(target), _Int(flags)), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    nr = _SYS_PIVOT_ROOT[os.uname().machine]
    ret = _libc().syscall(_Long(nr), _b(new_root), _b(put_old))
    _check(ret, "pivot_root", new_root)


def unshare(flags: int) -> None:
    _check(_libc().unshare(_Int(flags)), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc().setns(_Int(fd), _Int(nstype)), "setns")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc().sethostname(raw, _ULong(len(raw))), "sethostname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    args = (_ULong(a) for a in (arg2, arg3, arg4, arg5))
    return _check(_libc().prctl(_Int(option), *args), "prctl")


def capset(header: bytes, data: bytes) -> None:
    """capset(2) with a packed ``__user_cap_header_struct`` and its data array."""
    _check(_libc().capset(header, data), "capset")


def syscall(number: int, *args: Any) -> int:
    """syscall(2) by number: ints pass as C ints, :func:`buffer` arrays and bytes as pointers."""
    return _check(_libc().syscall(_Long(number), *args), f"syscall {number}")


_ARRAYS: dict[int, Any] = {}  # size -> the char[size] type


def buffer(size: int, init: bytes = b"") -> Any:
    """A zeroed, writable C ``char[size]`` starting with ``init`` (ctypes.create_string_buffer):
    for structs the kernel reads or fills in (pack them with ``struct.pack_into``)."""
    cls = _ARRAYS.get(size)
    if cls is None:
        array_type: Any = type(Array)  # ctypes' PyCArrayType, the metaclass of arrays
        cls = _ARRAYS[size] = array_type(f"char_{size}", (Array,), {"_type_": _Char, "_length_": size})
    buf = cls()
    buf[: len(init)] = init
    return buf


def address_of(buf: Any) -> int:
    """Where a :func:`buffer` lives, for pointers inside structs."""
    return int(addressof(buf))
