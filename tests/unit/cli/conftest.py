from __future__ import annotations

from tests.unit.client.conftest import fake_daemon

__all__ = ["fake_daemon"]
