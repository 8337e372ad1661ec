from __future__ import annotations

import os
import tempfile
import tracemalloc  # noqa: F401
from collections.abc import Iterator

import pytest

from tests.unit.client.fakedaemon import FakeDaemon

# Imported up front on purpose: some client tests leave sockets for the garbage collector, and
# pytest's unraisable-exception hook imports tracemalloc on the first ResourceWarning; when a
# second socket is collected during that import the hook sees a partially initialised module
# and the test fails ("partially initialized module 'tracemalloc'"), now and then.


@pytest.fixture
def fake_daemon() -> Iterator[FakeDaemon]:
    # a short path: AF_UNIX paths are limited to 108 bytes
    d = tempfile.mkdtemp(prefix="dyc-")
    with FakeDaemon(os.path.join(d, "d.sock")) as daemon:
        yield daemon
    os.rmdir(d)
