"""cgroup v2 device rules: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE, as runc builds.

cgroup v2 has no devices.allow/deny; the kernel runs the programs attached to the cgroup (and
its ancestors) on every device open/mknod and denies access if one returns 0. The context
(``struct bpf_cgroup_dev_ctx``, linux/bpf.h) and the program we emit::

    ctx + 0  u32 access_type   low 16 bits: type (1 block, 2 char); high 16: access (1 mknod, 2 read, 4 write)
    ctx + 4  u32 major
    ctx + 8  u32 minor

    r2 = ctx->access_type & 0xffff        ; type
    r3 = ctx->access_type >> 16           ; requested access
    r4 = ctx->major ; r5 = ctx->minor
    for rule in reversed(rules):          ; the last matching rule decides (v1 write order)
        if type/major/minor differ: next
        allow rule: if requested access has a bit the rule lacks: next
        deny rule:  if requested access shares no bit with the rule: next
        r0 = allow ; exit
    r0 = 1 ; exit                         ; no rule matched: allowed (the v1 default)

Attaching uses BPF_F_ALLOW_MULTI; on an update the new program is attached first, then the
old ones are detached (BPF_PROG_QUERY), so there is no moment without a filter.
"""

from __future__ import annotations

import _struct as struct  # what struct re-exports, without its Python module (~0.2 ms)
import errno
import os

from dockyard.cgroups.devices import parse_rule
from dockyard.errors import Internal, Unsupported
from dockyard.linux import libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = ["attach_device_program", "attached_programs", "device_program"]

# linux/bpf.h
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_BPF_PROG_DETACH = 9
_BPF_PROG_GET_FD_BY_ID = 13
_BPF_PROG_QUERY = 16
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6
_BPF_F_ALLOW_MULTI = 2
_SYS_BPF = {"x86_64": 321, "aarch64": 280}
_DEV_TYPE = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}

# opcodes (linux/bpf_common.h, linux/bpf.h)
_LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
_MOV64_K = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K
_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_EXIT = 0x95  # BPF_JMP | BPF_EXIT


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _block(kind: str, major: int | None, minor: int | None, access: str, allow: bool) -> list[bytes]:
    """One rule; each "skip" jump goes to the first instruction after the block."""
    body: list[tuple[int, int, int, int, bool]] = []  # (opcode, dst, src, imm, skip-jump)
    if kind != "a":
        body.append((_JNE_K, 2, 0, _DEV_TYPE[kind], True))
    if major is not None:
        body.append((_JNE_K, 4, 0, major, True))
    if minor is not None:
        body.append((_JNE_K, 5, 0, minor, True))
    mask = sum(_ACCESS[c] for c in set(access))
    if mask != 7:  # rwm: any request matches
        body.append((_MOV32_X, 1, 3, 0, False))
        if allow:  # every requested bit must be granted
            body += [(_AND32_K, 1, 0, ~mask & 7, False), (_JNE_K, 1, 0, 0, True)]
        else:  # any requested bit listed denies
            body += [(_AND32_K, 1, 0, mask, False), (_JEQ_K, 1, 0, 0, True)]
    body += [(_MOV64_K, 0, 0, int(allow), False), (_EXIT, 0, 0, 0, False)]
    n = len(body)
    return [_insn(op, dst, src, off=n - i - 1 if skip else 0, imm=imm)
            for i, (op, dst, src, imm, skip) in enumerate(body)]


def device_program(rules: Sequence[Mapping[str, Any]]) -> bytes:
    """Compile OCI device rules (already including the defaults) to eBPF instructions."""
    prog = [
        _insn(_LDX_W, 2, 1, 0),
        _insn(_AND32_K, 2, imm=0xFFFF),
        _insn(_LDX_W, 3, 1, 0),
        _insn(_RSH32_K, 3, imm=16),
        _insn(_LDX_W, 4, 1, 4),
        _insn(_LDX_W, 5, 1, 8),
    ]
    parsed = [parse_rule(rule, f"linux.resources.devices[{i}]") for i, rule in enumerate(rules)]
    for kind, major, minor, access, allow in reversed(parsed):
        block = _block(kind, major, minor, access, allow)
        prog += block
        if len(block) == 2:  # matches everything: what follows is unreachable, which the verifier refuses
            return b"".join(prog)
    prog += [_insn(_MOV64_K, 0, imm=1), _insn(_EXIT)]
    return b"".join(prog)


def _bpf(cmd: int, attr: Any) -> int:
    nr = _SYS_BPF.get(os.uname().machine)
    if nr is None:
        raise Unsupported(f"cgroup v2 device rules on {os.uname().machine}")
    try:
        return libc.syscall(nr, cmd, attr, len(attr))
    except OSError as exc:  # callers word the message (and test errno)
        raise OSError(exc.errno, os.strerror(exc.errno or 0)) from None


def _load(program: bytes) -> int:
    insns = libc.buffer(len(program), program)
    license_ = libc.buffer(8, b"Apache")
    log = libc.buffer(65536)
    attr = libc.buffer(128)
    struct.pack_into("<IIQQIIQ", attr, 0, _BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8,
                     libc.address_of(insns), libc.address_of(license_), 1, len(log), libc.address_of(log))
    try:
        return _bpf(_BPF_PROG_LOAD, attr)
    except OSError as exc:
        text = bytes(log).split(b"\0", 1)[0].decode(errors="replace").strip().splitlines()[-3:]
        raise Internal(f"cannot load the cgroup device program: {exc.strerror}: {' | '.join(text)}") from exc


def _attached(cgroup_fd: int) -> list[int]:
    ids = libc.buffer(64 * 4)
    attr = libc.buffer(128)
    struct.pack_into("<IIIIQI", attr, 0, cgroup_fd, _BPF_CGROUP_DEVICE, 0, 0, libc.address_of(ids), 64)
    _bpf(_BPF_PROG_QUERY, attr)
    (count,) = struct.unpack_from("<I", attr, 24)
    return list(struct.unpack_from(f"<{count}I", ids))


def attached_programs(cgroup_dir: str) -> list[int]:
    """Ids of the device programs attached to ``cgroup_dir`` itself."""
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _attached(fd)
    finally:
        os.close(fd)


def attach_device_program(cgroup_dir: str, program: bytes) -> None:
    """Load ``program`` and make it the cgroup's only device program (new first, then old off)."""
    cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = _attached(cgroup_fd)
        prog_fd = _load(program)
        try:
            attr = libc.buffer(128)
            struct.pack_into("<IIII", attr, 0, cgroup_fd, prog_fd, _BPF_CGROUP_DEVICE, _BPF_F_ALLOW_MULTI)
            try:
                _bpf(_BPF_PROG_ATTACH, attr)
            except OSError as exc:
                raise Internal(f"cannot attach the device program to {cgroup_dir}: {exc.strerror}") from exc
        finally:
            os.close(prog_fd)
        for prog_id in old:
            _detach(cgroup_fd, prog_id)
    finally:
        os.close(cgroup_fd)


def _detach(cgroup_fd: int, prog_id: int) -> None:
    attr = libc.buffer(128)
    struct.pack_into("<I", attr, 0, prog_id)
    try:
        fd = _bpf(_BPF_PROG_GET_FD_BY_ID, attr)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return
        raise
    try:
        attr = libc.buffer(128)
        struct.pack_into("<III", attr, 0, cgroup_fd, fd, _BPF_CGROUP_DEVICE)
        _bpf(_BPF_PROG_DETACH, attr)
    finally:
        os.close(fd)
