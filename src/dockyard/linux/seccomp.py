"""OCI ``linux.seccomp`` -> a classic BPF program, and installing it.

Why libseccomp (the system ``libseccomp.so.2``, through ctypes) rather than generating BPF
ourselves: a correct filter needs per-architecture syscall number tables (x86_64, its x86 and
x32 sub-ABIs, aarch64 and arm, ...), the x32 syscall bit, the multiplexed ``socketcall``/``ipc``
calls of 32-bit x86, 64-bit argument comparisons split into two 32-bit loads on 32-bit ABIs,
and a balanced decision tree so 400 rules do not cost 400 jumps. libseccomp does all of this,
is what runc, crun and Docker link, so our filters have their semantics exactly, and Debian
ships it everywhere (``libseccomp2``; runc and crun depend on it). libseccomp's own Python
binding is not on PyPI (Debian's ``python3-seccomp`` is outside the venv) and the PyPI
wrappers are stale or third-party repackagings: seven C functions through ctypes are enough.

Two steps, so the container's init does as little as possible::

    parent (runtime)                         child (container init), last steps before execve
    ---------------------------------        ------------------------------------------------
    program = compile(spec)   # libseccomp   ...
    fork ------------------------------->    prctl(PR_SET_NO_NEW_PRIVS) if noNewPrivileges
                                             install(program)   # prctl(PR_SET_SECCOMP), no libseccomp
                                             execve(args)

Ordering the runtime must use (runc does the same): the kernel accepts a filter only from a
thread that has no_new_privs set *or* CAP_SYS_ADMIN in its effective set (seccomp(2), EACCES).

- ``noNewPrivileges: true``: set no_new_privs, drop capabilities, switch user, then
  :func:`install` as the very last step before ``execve`` (the filter then never sees the
  runtime's own setup syscalls).
- ``noNewPrivileges: false``: :func:`install` *before* dropping capabilities / switching user,
  while CAP_SYS_ADMIN is still effective. The runtime's remaining syscalls (capset, setgroups,
  setresuid, prctl, execve, ...) then pass through the filter, so the profile must allow them
  (Docker's and ours do).

Syscall names libseccomp does not know (newer than 2.5.4, or of another architecture) are
skipped, as runc skips them; a rule whose action equals the default action is skipped too
(libseccomp refuses it). Native syscalls numbered above every syscall the profile names get
ENOSYS rather than the default action (runc's "ENOSYS stub", see :func:`_enosys_stub`), so
a libc trying a call newer than the profile falls back. ``SCMP_ACT_NOTIFY`` (seccomp agents)
is not supported.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import struct
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from dockyard.atomic import atomic_write
from dockyard.errors import Internal, InvalidArgument, Unavailable, Unsupported

__all__ = [
    "ACTIONS",
    "ARCHITECTURES",
    "FLAGS",
    "OPERATORS",
    "compile",
    "default_profile",
    "features",
    "filter_flags",
    "install",
    "native_architectures",
]

# seccomp.h (libseccomp): action values
_ACT_KILL_PROCESS = 0x80000000
_ACT_KILL_THREAD = 0x00000000
_ACT_TRAP = 0x00030000
_ACT_ERRNO = 0x00050000
_ACT_TRACE = 0x7FF00000
_ACT_LOG = 0x7FFC0000
_ACT_ALLOW = 0x7FFF0000

# OCI action name -> (libseccomp base value, takes an errno/trace data argument)
ACTIONS: dict[str, tuple[int, bool]] = {
    "SCMP_ACT_KILL": (_ACT_KILL_THREAD, False),
    "SCMP_ACT_KILL_THREAD": (_ACT_KILL_THREAD, False),
    "SCMP_ACT_KILL_PROCESS": (_ACT_KILL_PROCESS, False),
    "SCMP_ACT_TRAP": (_ACT_TRAP, False),
    "SCMP_ACT_ERRNO": (_ACT_ERRNO, True),
    "SCMP_ACT_TRACE": (_ACT_TRACE, True),
    "SCMP_ACT_LOG": (_ACT_LOG, False),
    "SCMP_ACT_ALLOW": (_ACT_ALLOW, False),
}
OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}  # fmt: skip
# OCI architecture name -> libseccomp's name for seccomp_arch_resolve_name()
ARCHITECTURES: dict[str, str] = {
    f"SCMP_ARCH_{n.upper()}": n
    for n in ("x86", "x86_64", "x32", "arm", "aarch64", "mips", "mips64", "mips64n32", "mipsel",
              "mipsel64", "mipsel64n32", "ppc", "ppc64", "ppc64le", "s390", "s390x", "parisc",
              "parisc64", "riscv64")
}
# seccomp(2) filter flags (linux/seccomp.h)
FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}
_NATIVE = {"x86_64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
           "aarch64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")}
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SECCOMP_SET_MODE_FILTER = 1
_NR_SCMP_ERROR = -1
_CACHE_FORMAT = b"dockyard-seccomp/2"  # bump when what compile() emits changes
_ARG_MAX = 6


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


@cache
def _lib() -> ctypes.CDLL:
    name = "libseccomp.so.2"  # not ctypes.util.find_library: it costs 15 ms of imports
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise Unavailable(f"libseccomp is not installed ({name}): apt-get install libseccomp2") from exc
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
    return lib


def _machine() -> str:
    return os.uname().machine


def native_architectures() -> tuple[str, ...]:
    """The OCI architectures a container on this machine may use (native plus compat ABIs)."""
    return _NATIVE.get(_machine(), ())


def _action(name: str, errno_ret: int | None, default_errno: int, where: str) -> int:
    if name == "SCMP_ACT_NOTIFY":
        raise Unsupported(f"{where}: SCMP_ACT_NOTIFY (seccomp agents) is not supported")
    if name not in ACTIONS:
        raise InvalidArgument(f"{where}: unknown seccomp action {name!r}")
    base, takes_data = ACTIONS[name]
    if not takes_data:
        return base
    value = default_errno if errno_ret is None else errno_ret
    if not 0 <= value <= 0xFFFF:
        raise InvalidArgument(f"{where}: errnoRet {value} out of range")
    return base | value


def _conditions(args: Iterable[Mapping[str, Any]], where: str) -> list[_ArgCmp]:
    out = []
    for arg in args:
        index, op = arg.get("index"), arg.get("op")
        if not isinstance(index, int) or not 0 <= index < _ARG_MAX:
            raise InvalidArgument(f"{where}.args: index must be 0..5, got {index!r}")
        if op not in OPERATORS:
            raise InvalidArgument(f"{where}.args: unknown operator {op!r}")
        value, value_two = int(arg.get("value", 0)), int(arg.get("valueTwo", 0))
        out.append(_ArgCmp(index, OPERATORS[op], value & 2**64 - 1, value_two & 2**64 - 1))
    return out


def filter_flags(spec: Mapping[str, Any]) -> int:
    """OCI ``linux.seccomp.flags`` -> seccomp(2) flags for :func:`install`."""
    flags = 0
    for name in spec.get("flags") or ():
        if name not in FLAGS:
            raise InvalidArgument(f"linux.seccomp.flags: unknown flag {name!r}")
        flags |= FLAGS[name]
    return flags


def compile(spec: Mapping[str, Any], *, cache_dir: str | None = None) -> bytes:
    """Compile OCI ``linux.seccomp`` into a BPF program (an array of ``struct sock_filter``).

    Raises :class:`InvalidArgument` naming the field for a malformed spec. With ``cache_dir``
    (a root-only directory, e.g. under the runtime's state root) programs are kept by the
    sha256 of the spec, the libseccomp version and the machine: compiling Docker's profile
    costs ~11 ms, reading it back well under one.
    """
    if cache_dir is None or not _trusted_dir(cache_dir):
        return _compile(spec)
    version = bytes(_lib().seccomp_version().contents)
    key = hashlib.sha256(json.dumps(spec, separators=(",", ":")).encode() + version
                         + _machine().encode() + _CACHE_FORMAT).hexdigest()
    path = os.path.join(cache_dir, f"{key}.bpf")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        pass
    program = _compile(spec)
    try:
        atomic_write(path, program, 0o600, durable=False)
    except OSError:
        pass  # a cache: failing to fill it changes nothing
    return program


def _trusted_dir(path: str) -> bool:
    """A cache someone else can write to could hand us a permissive filter: use only our own."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _compile(spec: Mapping[str, Any]) -> bytes:
    lib = _lib()
    default_errno = int(spec.get("defaultErrnoRet") or errno.EPERM)
    default = _action(str(spec.get("defaultAction", "")), spec.get("defaultErrnoRet"),
                      errno.EPERM, "linux.seccomp.defaultAction")
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise Internal("seccomp_init failed")
    try:
        for arch in spec.get("architectures") or ():
            if arch not in ARCHITECTURES:
                raise InvalidArgument(f"linux.seccomp.architectures: unknown architecture {arch!r}")
            token = lib.seccomp_arch_resolve_name(ARCHITECTURES[arch].encode())
            ret = lib.seccomp_arch_add(ctx, token) if token else -errno.EINVAL
            if ret < 0 and ret != -errno.EEXIST:
                raise InvalidArgument(f"linux.seccomp.architectures: libseccomp cannot add {arch}")
        for i, rule in enumerate(spec.get("syscalls") or ()):
            _add_rule(lib, ctx, rule, default, default_errno, f"linux.seccomp.syscalls[{i}]")
        program = _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    if default in (_ACT_ALLOW, _ACT_LOG):
        return program
    return _enosys_stub(_highest_known(lib, spec)) + program


def _highest_known(lib: ctypes.CDLL, spec: Mapping[str, Any]) -> int:
    numbers = [lib.seccomp_syscall_resolve_name(str(name).encode())
               for rule in spec.get("syscalls") or () for name in rule.get("names") or ()]
    return max((n for n in numbers if n >= 0), default=-1)


# struct seccomp_data: int nr (offset 0), u32 arch (offset 4); linux/audit.h arch tokens
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_SYSCALL_BIT = 0x40000000


def _sock_filter(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def _enosys_stub(highest: int) -> bytes:
    """Prepended to a filter: native syscalls newer than any the profile names -> ENOSYS.

    runc does the same (libcontainer/seccomp/patchbpf): a profile written before a syscall
    existed gives it the default action, EPERM, and libcs that try the new call first
    (glibc's clone3, fchmodat2, ...) fall back only on ENOSYS. x32 calls are left alone.

        ld [4] ; jeq ARCH, 0, 4 ; ld [0] ; jge X32_BIT, 2, 0 ; jgt HIGHEST, 0, 1 ; ret ERRNO(ENOSYS)
    """
    arch = _AUDIT_ARCH.get(_machine())
    if arch is None or highest < 0:
        return b""
    ld_w_abs, jeq_k, jge_k, jgt_k, ret_k = 0x20, 0x15, 0x35, 0x25, 0x06
    return b"".join([
        _sock_filter(ld_w_abs, 0, 0, 4),
        _sock_filter(jeq_k, 0, 4, arch),
        _sock_filter(ld_w_abs, 0, 0, 0),
        _sock_filter(jge_k, 2, 0, _X32_SYSCALL_BIT),
        _sock_filter(jgt_k, 0, 1, highest),
        _sock_filter(ret_k, 0, 0, _ACT_ERRNO | errno.ENOSYS),
    ])


def _add_rule(lib: ctypes.CDLL, ctx: int, rule: Mapping[str, Any], default: int,
              default_errno: int, where: str) -> None:
    action = _action(str(rule.get("action", "")), rule.get("errnoRet"), default_errno, where)
    if action == default:
        return  # libseccomp refuses rules that repeat the default action (runc skips them too)
    conds = _conditions(rule.get("args") or (), where)
    # Two conditions on the same argument: libseccomp ANDs within a rule, runc (and Docker's
    # profile) mean OR, so add one rule per condition, as runc does.
    indexes = [c.arg for c in conds]
    groups = [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]
    for name in rule.get("names") or ():
        nr = lib.seccomp_syscall_resolve_name(str(name).encode())
        if nr == _NR_SCMP_ERROR:
            continue  # unknown to libseccomp (another arch, or newer than the library)
        for group in groups:
            array = (_ArgCmp * len(group))(*group)
            ret = lib.seccomp_rule_add_array(ctx, action, nr, len(group), array)
            if ret < 0:
                raise InvalidArgument(f"{where}: libseccomp refused the rule for {name}: "
                                      f"{os.strerror(-ret)}")


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        ret = lib.seccomp_export_bpf(ctx, fd)
        if ret < 0:
            raise Internal(f"seccomp_export_bpf: {os.strerror(-ret)}")
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def install(program: bytes, flags: int = 0) -> None:
    """Load ``program`` as this thread's seccomp filter (see the module doc for the ordering).

    Needs no_new_privs set or CAP_SYS_ADMIN; ``flags`` are seccomp(2) ``SECCOMP_FILTER_FLAG_*``.
    """
    if not program or len(program) % 8 or len(program) // 8 > 0xFFFF:
        raise InvalidArgument(f"seccomp program of {len(program)} bytes is not a BPF program")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p).value)
    libc = ctypes.CDLL(None, use_errno=True)
    if flags:
        nr = _SYS_SECCOMP.get(_machine())
        if nr is None:
            raise Unsupported(f"seccomp flags on {_machine()}")
        ret = libc.syscall(ctypes.c_long(nr), ctypes.c_uint(_SECCOMP_SET_MODE_FILTER),
                           ctypes.c_uint(flags), ctypes.byref(prog))
    else:
        ret = libc.prctl(ctypes.c_int(_PR_SET_SECCOMP), ctypes.c_ulong(_SECCOMP_MODE_FILTER),
                         ctypes.byref(prog), ctypes.c_ulong(0), ctypes.c_ulong(0))
    if ret < 0:
        err = ctypes.get_errno()
        hint = " (set no_new_privs first or keep CAP_SYS_ADMIN)" if err == errno.EACCES else ""
        raise Internal(f"cannot install the seccomp filter: {os.strerror(err)}{hint}")


def features() -> dict[str, Any]:
    """``linux.seccomp`` of the OCI features document (``dockyard-runtime features``)."""
    try:
        _lib()
        enabled = True
    except Unavailable:
        enabled = False
    return {
        "enabled": enabled,
        "actions": sorted(ACTIONS),
        "operators": sorted(OPERATORS),
        "archs": sorted(ARCHITECTURES),
        "knownFlags": sorted(FLAGS),
        "supportedFlags": sorted(FLAGS) if enabled else [],
    }


def default_profile(caps: Iterable[str] | None = None, arch: str | None = None) -> dict[str, Any]:
    """Dockyard's default profile (Docker-equivalent) resolved for ``caps`` and ``arch``.

    See :mod:`dockyard.linux.seccomp_default`.
    """
    from dockyard.linux import seccomp_default

    return seccomp_default.resolve(caps, arch)
