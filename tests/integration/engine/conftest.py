"""A real daemon per test module (root), torn down completely even when a test fails."""

from tests.support.engine_fixtures import daemon, docker_cli

__all__ = ["daemon", "docker_cli"]
