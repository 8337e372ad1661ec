from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.registry.harness import RunningRegistry, base_config


@pytest.fixture
def registry(tmp_path: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    server = RunningRegistry(base_config(str(tmp_path) + "/root"))
    yield server
    server.stop()
