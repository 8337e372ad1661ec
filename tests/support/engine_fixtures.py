"""Fixtures shared by the engine's integration and interop tests: a real daemon per test module
(root), torn down completely even when a test fails, and the docker CLI."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support.engine_daemon import EngineDaemon


@pytest.fixture(scope="module")
def daemon() -> Iterator[EngineDaemon]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static is not installed")
    d = EngineDaemon()
    try:
        d.start()
        d.load_busybox()
        yield d
    finally:
        d.cleanup()


@pytest.fixture(scope="module")
def docker_cli() -> str:
    path = shutil.which("docker") or "/usr/local/bin/docker"
    if not os.path.exists(path):
        pytest.skip("the docker CLI is not installed")
    return path
