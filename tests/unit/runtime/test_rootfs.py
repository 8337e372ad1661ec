"""The mount sequence, recorded through the fake syscall layer (no root needed)."""

from __future__ import annotations

import errno
import os
from typing import Any

import pytest

from dockyard.errors import InvalidArgument
from dockyard.linux import mountflags as mf
from dockyard.linux.syscalls import RecordingSyscalls
from dockyard.oci.runtime_spec import default_spec
from dockyard.runtime.rootfs import RootfsPlan, pivot, prepare_rootfs


@pytest.fixture
def rootfs(tmp_path: Any) -> str:
    root = tmp_path / "rootfs"
    for d in ("proc", "dev", "sys", "etc", "data"):
        os.makedirs(root / d)
    return str(root)


def _plan(rootfs: str, spec: dict[str, Any] | None = None, **kw: Any) -> RootfsPlan:
    spec = spec or default_spec()
    return RootfsPlan.from_spec(spec, rootfs, os.path.dirname(rootfs), in_userns=False, **kw)


def test_sequence_starts_private_then_binds_rootfs_onto_itself(rootfs: str) -> None:
    sys = RecordingSyscalls()
    prepare_rootfs(sys, _plan(rootfs))
    mounts = sys.mounts()
    assert mounts[0] == (None, "/", None, mf.MS_PRIVATE | mf.MS_REC, None)
    assert mounts[1] == (rootfs, rootfs, None, mf.MS_BIND | mf.MS_REC, None)
    assert mounts[2] == ("proc", f"{rootfs}/proc", "proc", 0, None)
    dev = mounts[3]
    assert dev[1:3] == (f"{rootfs}/dev", "tmpfs")
    assert dev[3] == mf.MS_NOSUID | mf.MS_STRICTATIME and dev[4] == "mode=755,size=65536k"
    sysfs = next(m for m in mounts if m[2] == "sysfs")
    assert sysfs[3] & mf.MS_RDONLY and sysfs[3] & mf.MS_NOEXEC


def test_rootfs_propagation_is_honoured(rootfs: str) -> None:
    spec = default_spec()
    spec["linux"]["rootfsPropagation"] = "rslave"
    sys = RecordingSyscalls()
    prepare_rootfs(sys, _plan(rootfs, spec))
    assert sys.mounts()[0][3] == mf.MS_SLAVE | mf.MS_REC


def test_dev_gets_standard_nodes_and_symlinks(rootfs: str) -> None:
    sys = RecordingSyscalls()
    prepare_rootfs(sys, _plan(rootfs))
    nodes = {c.args[0]: c.args[2] for c in sys.calls if c.name == "mknod"}
    assert nodes[f"{rootfs}/dev/null"] == os.makedev(1, 3)
    assert set(nodes) == {f"{rootfs}/dev/{n}" for n in
                          ("null", "zero", "full", "random", "urandom", "tty")}
    assert os.readlink(f"{rootfs}/dev/ptmx") == "pts/ptmx"
    assert os.readlink(f"{rootfs}/dev/fd") == "/proc/self/fd"


def test_user_namespace_binds_host_devices_instead_of_mknod(rootfs: str) -> None:
    sys = RecordingSyscalls()
    plan = RootfsPlan.from_spec(default_spec(), rootfs, "/b", in_userns=True)
    prepare_rootfs(sys, plan)
    assert not [c for c in sys.calls if c.name == "mknod"]
    assert ("/dev/null", f"{rootfs}/dev/null", None, mf.MS_BIND, None) in sys.mounts()


def test_readonly_bind_mount_is_bind_then_remount(rootfs: str, tmp_path: Any) -> None:
    src = tmp_path / "src"
    src.mkdir()
    spec = default_spec()
    spec["mounts"] = [{"destination": "/data", "type": "bind", "source": str(src),
                       "options": ["rbind", "ro", "nosuid", "rprivate"]}]
    sys = RecordingSyscalls()
    prepare_rootfs(sys, _plan(rootfs, spec))
    m = sys.mounts()[2:]
    target = f"{rootfs}/data"
    assert m[0] == (str(src), target, None, mf.MS_BIND | mf.MS_REC, None)
    assert m[1][1] == target and m[1][3] & (mf.MS_REMOUNT | mf.MS_BIND | mf.MS_RDONLY |
                                            mf.MS_NOSUID) == (mf.MS_REMOUNT | mf.MS_BIND |
                                                              mf.MS_RDONLY | mf.MS_NOSUID)
    assert m[2] == (None, target, None, mf.MS_PRIVATE | mf.MS_REC, None)


def test_bind_of_a_file_creates_a_file_mount_point(rootfs: str, tmp_path: Any) -> None:
    src = tmp_path / "hosts"
    src.write_text("127.0.0.1 localhost\n")
    spec = default_spec()
    spec["mounts"] = [{"destination": "/etc/hosts", "type": "bind", "source": str(src),
                       "options": ["rbind"]}]
    prepare_rootfs(RecordingSyscalls(), _plan(rootfs, spec))
    assert os.path.isfile(f"{rootfs}/etc/hosts")


def test_relative_bind_source_is_relative_to_the_bundle(rootfs: str) -> None:
    os.makedirs(os.path.join(os.path.dirname(rootfs), "shared"))
    spec = default_spec()
    spec["mounts"] = [{"destination": "/data", "source": "shared", "options": ["bind"]}]
    sys = RecordingSyscalls()
    prepare_rootfs(sys, _plan(rootfs, spec))
    assert sys.mounts()[2][0] == os.path.join(os.path.dirname(rootfs), "shared")


def test_masked_paths_tmpfs_for_dirs_and_dev_null_for_files(rootfs: str) -> None:
    os.makedirs(f"{rootfs}/proc/acpi")
    open(f"{rootfs}/proc/kcore", "w").close()
    sys = RecordingSyscalls()
    prepare_rootfs(sys, _plan(rootfs))
    assert ("tmpfs", f"{rootfs}/proc/acpi", "tmpfs", mf.MS_RDONLY, None) in sys.mounts()
    assert ("/dev/null", f"{rootfs}/proc/kcore", None, mf.MS_BIND, None) in sys.mounts()
    # absent masked paths are skipped, not created
    assert not os.path.exists(f"{rootfs}/proc/keys")


def test_readonly_paths_are_bound_then_remounted_readonly(rootfs: str) -> None:
    os.makedirs(f"{rootfs}/proc/sys")
    sys = RecordingSyscalls()
    prepare_rootfs(sys, _plan(rootfs))
    target = f"{rootfs}/proc/sys"
    i = sys.mounts().index((target, target, None, mf.MS_BIND | mf.MS_REC, None))
    remount = sys.mounts()[i + 1]
    assert remount[1] == target and remount[3] & mf.MS_RDONLY and remount[3] & mf.MS_REMOUNT


def test_mount_through_escaping_symlink_is_refused(rootfs: str) -> None:
    os.symlink("../../..", f"{rootfs}/evil")
    spec = default_spec()
    spec["mounts"] = [{"destination": "/evil/tmp", "type": "tmpfs", "source": "tmpfs"}]
    sys = RecordingSyscalls()
    with pytest.raises(InvalidArgument, match="escapes"):
        prepare_rootfs(sys, _plan(rootfs, spec))
    assert len(sys.mounts()) == 2  # nothing mounted for the bad entry


def test_cgroup_mount_is_tmpfs_with_each_hierarchy_bound(rootfs: str) -> None:
    sys = RecordingSyscalls()
    dirs = (("memory", "/sys/fs/cgroup/memory/dockyard/x"),
            ("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/dockyard/x"))
    prepare_rootfs(sys, _plan(rootfs, cgroup_dirs=dirs))
    target = f"{rootfs}/sys/fs/cgroup"
    mounts = sys.mounts()
    assert ("tmpfs", target, "tmpfs", mf.MS_NOSUID | mf.MS_NODEV | mf.MS_NOEXEC,
            "mode=755") in mounts
    assert (dirs[0][1], f"{target}/memory", None, mf.MS_BIND | mf.MS_REC, None) in mounts
    assert os.readlink(f"{target}/cpu") == "cpu,cpuacct"


def test_pivot_sequence(rootfs: str) -> None:
    sys = RecordingSyscalls()
    pivot(sys, rootfs, readonly=True)
    names = [c.name for c in sys.calls]
    assert names == ["chdir", "pivot_root", "mount", "umount2", "chdir", "mount"]
    assert sys.calls[1].args == (".", ".")
    assert sys.calls[3].args == (".", 2)
    last = sys.calls[-1].args
    assert last[1] == "/" and last[3] & (mf.MS_RDONLY | mf.MS_REMOUNT | mf.MS_BIND) == (
        mf.MS_RDONLY | mf.MS_REMOUNT | mf.MS_BIND)


def test_failing_mount_propagates_oserror(rootfs: str) -> None:
    sys = RecordingSyscalls(fail_on={"mount": errno.EPERM})
    with pytest.raises(PermissionError):
        prepare_rootfs(sys, _plan(rootfs))


def test_mount_options_split_flags_propagation_and_data() -> None:
    opts = mf.parse_options(["nosuid", "ro", "rw", "rshared", "mode=755", "size=1m"])
    assert opts.flags == mf.MS_NOSUID
    assert opts.propagation == (mf.MS_SHARED | mf.MS_REC,)
    assert opts.data == "mode=755,size=1m"
