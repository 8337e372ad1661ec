"""Fixtures for the real-cgroup tests: a fresh cgroup in the host's mode, and one on the real
cgroup2 hierarchy (the hybrid one here), each killed and removed in its finalizer."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator

import pytest

from dockyard.cgroups import Cgroup, CgroupV2, detect_mode, open_cgroup


@pytest.fixture
def cgroup() -> Iterator[Cgroup]:
    cg = open_cgroup(f"/dockyard-test/{uuid.uuid4().hex[:16]}")
    cg.create()
    try:
        yield cg
    finally:
        if cg.exists():
            cg.kill_all(signal.SIGKILL)
            cg.destroy()
        for directory in cg.directories():
            try:
                os.rmdir(os.path.dirname(directory))  # /dockyard-test, if no other test uses it
            except OSError:
                pass


@pytest.fixture
def v2_cgroup() -> Iterator[CgroupV2]:
    mode = detect_mode()
    if mode == "v1":
        pytest.skip("no cgroup2 hierarchy mounted")
    root = "/sys/fs/cgroup/unified" if mode == "hybrid" else "/sys/fs/cgroup"
    path = f"dockyard-test/{uuid.uuid4().hex[:16]}"
    os.makedirs(os.path.join(root, path))
    cg = CgroupV2(path, root)
    try:
        yield cg
    finally:
        cg.kill_all()
        cg.destroy()
        try:
            os.rmdir(os.path.join(root, "dockyard-test"))
        except OSError:
            pass
