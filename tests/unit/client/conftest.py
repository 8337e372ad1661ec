from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from tests.unit.client.fakedaemon import FakeDaemon


@pytest.fixture
def fake_daemon() -> Iterator[FakeDaemon]:
    # a short path: AF_UNIX paths are limited to 108 bytes
    d = tempfile.mkdtemp(prefix="dyc-")
    with FakeDaemon(os.path.join(d, "d.sock")) as daemon:
        yield daemon
    os.rmdir(d)
