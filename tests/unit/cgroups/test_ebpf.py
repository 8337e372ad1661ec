"""cgroup v2 device programs: run the emitted eBPF in a tiny interpreter of the opcodes we use."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from dockyard.cgroups.devices import with_defaults
from dockyard.cgroups.ebpf import device_program

BLOCK, CHAR = 1, 2
MKNOD, READ, WRITE = 1, 2, 4


def run(program: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    """Execute ``program`` against a bpf_cgroup_dev_ctx; returns r0."""
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    regs = [0] * 11
    insns = [struct.unpack_from("<BBhi", program, i) for i in range(0, len(program), 8)]
    pc = 0
    for _ in range(10_000):
        code, regbyte, off, imm = insns[pc]
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if code == 0x61:  # ldx w: only from the ctx (r1 at entry)
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:
            regs[dst] = regs[dst] & (imm & 0xFFFFFFFF)
        elif code == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == 0xBC:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == 0xB7:
            regs[dst] = imm
        elif code == 0x55:
            pc += off if regs[dst] != imm else 0
        elif code == 0x15:
            pc += off if regs[dst] == imm else 0
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("no exit")


DOCKER_LIKE: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"},
    {"allow": True, "type": "b", "major": 7, "access": "rw"},
]


@pytest.mark.parametrize(("dev", "access", "major", "minor", "allowed"), [
    (CHAR, READ | WRITE, 1, 3, 1),    # /dev/null: a default rule
    (CHAR, READ, 136, 4, 1),          # /dev/pts/4: wildcard minor
    (CHAR, MKNOD, 99, 99, 1),         # mknod of anything (c *:* m)
    (CHAR, READ, 99, 99, 0),          # but not opening it
    (CHAR, READ, 1, 11, 1),           # /dev/kmsg read: allowed "r"
    (CHAR, WRITE, 1, 11, 0),          # write asks a bit the rule lacks
    (CHAR, READ | WRITE, 1, 11, 0),
    (BLOCK, WRITE, 7, 3, 1),          # b 7:* rw
    (BLOCK, MKNOD | READ, 7, 3, 0),
    (BLOCK, READ, 8, 0, 0),           # not listed
])
def test_restrictive_rules_decide_like_v1(dev: int, access: int, major: int, minor: int, allowed: int) -> None:
    assert run(device_program(with_defaults(DOCKER_LIKE)), dev, access, major, minor) == allowed


def test_later_rules_override_earlier_ones_and_the_default_is_allow() -> None:
    prog = device_program([{"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"},
                           {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"}])
    assert run(prog, CHAR, WRITE, 1, 5) == 1
    prog = device_program([{"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"}])
    assert run(prog, CHAR, WRITE, 1, 5) == 0
    assert run(prog, CHAR, READ, 1, 5) == 1
    assert run(prog, BLOCK, READ, 8, 0) == 1


def test_nothing_follows_a_rule_that_matches_everything() -> None:
    # the verifier refuses unreachable instructions
    prog = device_program([{"allow": False, "access": "rwm"}])
    assert len(prog) == 6 * 8 + 2 * 8
