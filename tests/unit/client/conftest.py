from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from dockyard.client import Client
from tests.unit.client.fakedaemon import FakeDaemon


@pytest.fixture
def fake_daemon() -> Iterator[FakeDaemon]:
    # a short path: AF_UNIX paths are limited to 108 bytes
    d = tempfile.mkdtemp(prefix="dyc-")
    with FakeDaemon(os.path.join(d, "d.sock")) as daemon:
        yield daemon
    os.rmdir(d)


@pytest.fixture
def client(fake_daemon: FakeDaemon) -> Iterator[Client]:
    """A client of ``fake_daemon``, closed (its keep-alive socket too) after the test."""
    with Client(fake_daemon.host) as c:
        yield c
