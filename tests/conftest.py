"""Fixtures shared by every level of tests.

Levels (markers in pyproject.toml): unit tests need nothing; ``root`` tests need root and a
real kernel; ``interop`` tests drive third-party tools. Tests that need what this machine
lacks skip with the reason, never pass silently.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support import busybox


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    is_root = os.geteuid() == 0
    for item in items:
        if "root" in item.keywords and not is_root:
            item.add_marker(pytest.mark.skip(reason="needs root"))


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A pristine busybox rootfs; copy it before changing anything in it."""
    if not busybox.have_busybox():
        pytest.skip("busybox-static is not installed (make test-system-deps)")
    return busybox.make_rootfs(str(tmp_path_factory.mktemp("busybox") / "rootfs"))


@pytest.fixture
def rootfs_copy(busybox_rootfs: str, tmp_path: pytest.TempPathFactory) -> Iterator[str]:
    dest = os.path.join(str(tmp_path), "rootfs")
    shutil.copytree(busybox_rootfs, dest, symlinks=True)
    yield dest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the ``dockyard`` parent cgroups the tests' containers were created under.

    Each container's own cgroup is removed by the code under test (and checked by its tests);
    the shared parent stays, as Docker's ``docker`` parent does, until nothing uses it. Only the
    controlling process does this, after every worker is done; rmdir(2) fails with EBUSY on a
    parent still in use (say, by a real daemon on this machine), which is left alone.
    """
    if hasattr(session.config, "workerinput") or os.geteuid() != 0:
        return
    root = "/sys/fs/cgroup"
    if not os.path.isdir(root):
        return
    candidates = [os.path.join(root, "dockyard")]
    candidates += [os.path.join(root, c, "dockyard") for c in sorted(os.listdir(root))]
    for path in candidates:
        try:
            os.rmdir(path)
        except OSError:
            pass
