"""Seccomp and capabilities applied for real, in forked children (root: full capabilities)."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any

import pytest

from dockyard.linux import capabilities as caps
from dockyard.linux import seccomp
from tests.support.forked import run_forked

pytestmark = pytest.mark.root

PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _errno_of(ret: int) -> int:
    return 0 if ret == 0 else ctypes.get_errno()


def _status(field: str) -> str:
    with open("/proc/self/status") as f:
        return next(line.split(":", 1)[1].strip() for line in f if line.startswith(field + ":"))


def _probe_namespaces_and_mount() -> dict[str, Any]:
    libc = _libc()
    return {
        "unshare": _errno_of(libc.unshare(CLONE_NEWNS)),
        "unshare_uts": _errno_of(libc.unshare(CLONE_NEWUTS)),
        "mount": _errno_of(libc.mount(b"none", b"/mnt", b"tmpfs", 0, None)),
        "getpid_ok": os.getpid() > 0,
        "read_ok": len(open("/proc/self/stat").read()) > 0,
        "seccomp": _status("Seccomp"),
    }


def test_default_profile_blocks_unshare_and_mount_but_not_ordinary_calls() -> None:
    program = seccomp.compile(seccomp.default_profile(caps.DEFAULT_CAPS))

    def child() -> dict[str, Any]:
        _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        seccomp.install(program)
        pid = os.fork()  # clone without namespace flags stays allowed
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        return {**_probe_namespaces_and_mount(), "fork_exit": os.waitstatus_to_exitcode(status)}

    got = run_forked(child)
    assert got == {"unshare": errno.EPERM, "unshare_uts": errno.EPERM, "mount": errno.EPERM,
                   "getpid_ok": True, "read_ok": True, "seccomp": "2", "fork_exit": 7}


def test_without_the_filter_the_same_child_may_unshare() -> None:
    # The control for the test above: root can unshare, so EPERM there came from the filter.
    got = run_forked(_probe_namespaces_and_mount)
    assert got["unshare"] == 0 and got["seccomp"] == "0"


def test_install_without_no_new_privs_works_while_cap_sys_admin_is_held() -> None:
    program = seccomp.compile(seccomp.default_profile(caps.DEFAULT_CAPS))

    def child() -> list[str]:
        seccomp.install(program)  # before dropping capabilities: allowed
        caps.apply(caps.DEFAULT_CAPS, caps.DEFAULT_CAPS, caps.DEFAULT_CAPS, caps.DEFAULT_CAPS)
        return [_status("NoNewPrivs"), _status("Seccomp"), _status("CapEff")]

    assert run_forked(child) == ["0", "2", "00000000a80425fb"]


def test_install_after_dropping_cap_sys_admin_without_no_new_privs_is_refused() -> None:
    program = seccomp.compile(seccomp.default_profile(caps.DEFAULT_CAPS))

    def child() -> str:
        caps.apply(caps.DEFAULT_CAPS, caps.DEFAULT_CAPS, caps.DEFAULT_CAPS, caps.DEFAULT_CAPS)
        try:
            seccomp.install(program)
        except Exception as exc:
            return str(exc)
        return "installed"

    assert "no_new_privs" in run_forked(child)


def test_applying_docker_defaults_gives_capeff_a80425fb() -> None:
    def child() -> dict[str, str]:
        d = caps.DEFAULT_CAPS
        caps.apply(d, d, d, d)
        return {f: _status(f) for f in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb")}

    assert run_forked(child) == {"CapBnd": "00000000a80425fb", "CapEff": "00000000a80425fb",
                                 "CapPrm": "00000000a80425fb", "CapInh": "00000000a80425fb",
                                 "CapAmb": "0000000000000000"}


def test_switching_user_keeps_the_requested_caps_and_ambient_survives() -> None:
    def switch() -> None:
        os.setgroups([])
        os.setresgid(1000, 1000, 1000)
        os.setresuid(1000, 1000, 1000)

    def child() -> list[Any]:
        d = caps.DEFAULT_CAPS
        caps.apply(d, d, d, d, ["CAP_NET_BIND_SERVICE"], switch_user=switch)
        return [os.getuid(), _status("CapEff"), _status("CapAmb")]

    assert run_forked(child) == [1000, "00000000a80425fb", f"{1 << 10:016x}"]


def test_privileged_request_on_this_host_drops_missing_caps_instead_of_failing() -> None:
    everything = list(caps.CAPABILITIES)
    sets = caps.resolve({s: everything for s in ("bounding", "effective", "permitted")})
    host = caps.to_mask(caps.host_bounding_set())

    def child() -> str:
        caps.apply(sets.bounding, sets.effective, sets.permitted, sets.inheritable, sets.ambient)
        return _status("CapEff")

    assert int(run_forked(child), 16) == host


def test_capability_conditional_rules_follow_the_containers_caps() -> None:
    with_admin = [*caps.DEFAULT_CAPS, "CAP_SYS_ADMIN"]
    admin_program = seccomp.compile(seccomp.default_profile(with_admin))
    default_program = seccomp.compile(seccomp.default_profile(caps.DEFAULT_CAPS))
    sys_clone3 = {"x86_64": 435, "aarch64": 435}.get(os.uname().machine)
    if sys_clone3 is None:
        pytest.skip("clone3 number unknown for this arch")

    def probe(program: bytes) -> dict[str, int]:
        libc = _libc()
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        seccomp.install(program)
        # clone3(NULL, 0): EINVAL from the kernel, ENOSYS from the filter
        clone3 = _errno_of(libc.syscall(ctypes.c_long(sys_clone3), None, ctypes.c_size_t(0)))
        return {"unshare_uts": _errno_of(libc.unshare(CLONE_NEWUTS)), "clone3": clone3}

    assert run_forked(lambda: probe(admin_program)) == {"unshare_uts": 0, "clone3": errno.EINVAL}
    assert run_forked(lambda: probe(default_program)) == {"unshare_uts": errno.EPERM, "clone3": errno.ENOSYS}
