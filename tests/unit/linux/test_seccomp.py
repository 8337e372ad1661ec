"""Seccomp: OCI spec -> BPF through libseccomp, and our default profile vs Docker's."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import struct
from typing import Any

import pytest

from dockyard.errors import InvalidArgument, Unsupported
from dockyard.linux import capabilities, seccomp, seccomp_default
from tests.support.forked import run_forked

DOCKER_PROFILE = pathlib.Path(__file__).parent / "data" / "docker-seccomp-default.json"
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}
PR_SET_NO_NEW_PRIVS = 38


def docker_resolve(arch: str, caps: set[str]) -> dict[str, Any]:
    """moby's profiles/seccomp setupSeccomp(): includes/excludes against arch and caps."""
    profile = json.loads(DOCKER_PROFILE.read_text())
    goarch = GOARCH[arch]
    rules = []
    for rule in profile["syscalls"]:
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if inc.get("caps") and not all(c in caps for c in inc["caps"]):
            continue
        if exc.get("arches") and goarch in exc["arches"]:
            continue
        if exc.get("caps") and any(c in caps for c in exc["caps"]):
            continue
        rules.append(rule)  # minKernel 4.8: every kernel we run on
    arches = next(a for a in profile["archMap"] if a["architecture"] == seccomp_default.ARCHITECTURES[arch][0])
    return {"defaultAction": profile["defaultAction"], "defaultErrnoRet": profile["defaultErrnoRet"],
            "architectures": [arches["architecture"], *arches["subArchitectures"]], "syscalls": rules}


def normalise(profile: dict[str, Any]) -> tuple[Any, ...]:
    default_errno = profile.get("defaultErrnoRet")
    rules = set()
    for rule in profile["syscalls"]:
        args = frozenset((a["index"], a["op"], a["value"], a.get("valueTwo", 0)) for a in rule.get("args") or ())
        for name in rule["names"]:
            rules.add((name, rule["action"], rule.get("errnoRet", default_errno), args))
    return profile["defaultAction"], default_errno, tuple(profile["architectures"]), frozenset(rules)


CAP_SETS = {
    "docker-default": set(capabilities.DEFAULT_CAPS),
    "with-sys-admin": {*capabilities.DEFAULT_CAPS, "CAP_SYS_ADMIN"},
    "privileged": set(capabilities.CAPABILITIES),
    "none": set(),
}


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("caps", list(CAP_SETS))
def test_default_profile_allows_and_denies_what_dockers_does(arch: str, caps: str) -> None:
    ours = seccomp.default_profile(CAP_SETS[caps], arch)
    assert normalise(ours) == normalise(docker_resolve(arch, CAP_SETS[caps]))


def test_default_profile_compiles_to_the_same_filter_as_dockers() -> None:
    arch = os.uname().machine
    if arch not in GOARCH:
        pytest.skip(f"no reference for {arch}")
    caps = CAP_SETS["docker-default"]
    assert seccomp.compile(seccomp.default_profile(caps)) == seccomp.compile(docker_resolve(arch, caps))


def test_default_profile_without_sys_admin_keeps_clone_but_not_namespaces() -> None:
    rules = seccomp.default_profile()["syscalls"]
    names = {n for r in rules if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}
    assert {"read", "execve", "capset", "setresuid"} <= names
    assert not {"unshare", "mount", "setns", "clone", "reboot"} & names
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS} in rules


def test_compiled_program_is_whole_sock_filters() -> None:
    program = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})
    assert program and len(program) % 8 == 0
    # the last instruction of a filter is a return (BPF_RET = 0x06)
    assert program[-8] & 0x07 == 0x06


def test_unknown_syscalls_and_rules_equal_to_the_default_are_skipped() -> None:
    # (write is 1 and read 0 on x86_64 and 64/63 on aarch64: the highest name stays write)
    base = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}]}
    extra = {**base, "syscalls": [*base["syscalls"],
                                  {"names": ["no_such_syscall_xyz"], "action": "SCMP_ACT_ALLOW"},
                                  {"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}
    assert seccomp.compile(extra) == seccomp.compile(base)


@pytest.mark.parametrize(("spec", "field"), [
    ({"defaultAction": "SCMP_ACT_BOGUS"}, "defaultAction"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}, "architectures"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                                        "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     r"syscalls\[0\]\.args"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]},
     "operator"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                                        "errnoRet": 70000}]}, "errnoRet"),
])
def test_malformed_specs_are_refused_naming_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        seccomp.compile(spec)


def test_notify_action_is_unsupported() -> None:
    with pytest.raises(Unsupported, match="NOTIFY"):
        seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW",
                         "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]})


def test_filter_flags_are_translated() -> None:
    assert seccomp.filter_flags({"flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}) == 6
    with pytest.raises(InvalidArgument):
        seccomp.filter_flags({"flags": ["NOPE"]})


def _install_with_nnp_program(program: bytes) -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    seccomp.install(program)


def _install_with_nnp(spec: dict[str, Any]) -> None:
    _install_with_nnp_program(seccomp.compile(spec))


def test_errno_rule_returns_the_given_errno_and_args_select(tmp_path: pathlib.Path) -> None:
    # Unprivileged processes may install filters once no_new_privs is set: no root needed.
    spec = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EAFNOSUPPORT,
         "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]},  # AF_INET6 only
    ]}

    def child() -> list[Any]:
        import socket

        _install_with_nnp(spec)
        out: list[Any] = []
        try:
            os.mkdir(tmp_path / "d")
            out.append("created")
        except OSError as exc:
            out.append(exc.errno)
        try:
            socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            out.append("created")
        except OSError as exc:
            out.append(exc.errno)
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        out.append("inet ok")
        return out

    assert run_forked(child) == [errno.EROFS, errno.EAFNOSUPPORT, "inet ok"]
    assert not (tmp_path / "d").exists()


def test_install_refuses_a_program_that_is_not_bpf() -> None:
    with pytest.raises(InvalidArgument):
        seccomp.install(b"\x00" * 7)


def test_compile_cache_returns_the_same_program_and_keys_by_spec(tmp_path: pathlib.Path) -> None:
    spec = seccomp.default_profile()
    cache = str(tmp_path / "cache")
    first = seccomp.compile(spec, cache_dir=cache)
    assert first == seccomp.compile(spec)
    assert len(os.listdir(cache)) == 1
    assert seccomp.compile(spec, cache_dir=cache) == first
    other = {**spec, "defaultErrnoRet": errno.EACCES}
    assert seccomp.compile(other, cache_dir=cache) != first
    assert len(os.listdir(cache)) == 2


def test_features_come_from_the_tables_compile_uses() -> None:
    feats = seccomp.features()
    assert feats["enabled"] is True
    assert "SCMP_ACT_ERRNO" in feats["actions"] and "SCMP_ACT_NOTIFY" not in feats["actions"]
    assert "SCMP_ARCH_X86_64" in feats["archs"] and "SCMP_CMP_MASKED_EQ" in feats["operators"]
    for action in feats["actions"]:  # every advertised action compiles
        seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW" if action != "SCMP_ACT_ALLOW" else "SCMP_ACT_LOG",
                         "syscalls": [{"names": ["mkdir"], "action": action}]})


def test_syscalls_newer_than_the_profile_get_enosys_not_eperm() -> None:
    machine = os.uname().machine
    if machine not in GOARCH:
        pytest.skip(f"no ENOSYS stub for {machine}")
    program = seccomp.compile(seccomp.default_profile())
    sys_reboot = {"x86_64": 169, "aarch64": 142}[machine]

    def child() -> list[int]:
        import ctypes

        _install_with_nnp_program(program)
        libc = ctypes.CDLL(None, use_errno=True)
        out = []
        for nr in (1000, sys_reboot):  # far past any syscall; a known one the profile denies
            ret = libc.syscall(ctypes.c_long(nr), 0, 0, 0, 0)
            out.append(ctypes.get_errno() if ret < 0 else 0)
        return out

    assert run_forked(child) == [errno.ENOSYS, errno.EPERM]


def test_allow_by_default_filters_get_no_enosys_stub() -> None:
    spec = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    deny = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"}]}
    # the stub's sixth instruction: ret SECCOMP_RET_ERRNO | ENOSYS
    ret_enosys = struct.pack("<HBBI", 0x06, 0, 0, 0x00050000 | errno.ENOSYS)
    assert seccomp.compile(deny)[40:48] == ret_enosys
    assert seccomp.compile(spec)[40:48] != ret_enosys


def test_compile_cache_in_a_directory_others_can_write_is_not_used(tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "shared"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    spec = seccomp.default_profile()
    assert seccomp.compile(spec, cache_dir=str(cache)) == seccomp.compile(spec)
    assert os.listdir(cache) == []
