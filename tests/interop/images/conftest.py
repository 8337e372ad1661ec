"""The image store fixture (each driver), shared with the other images test level."""

from tests.support.image_store import store

__all__ = ["store"]
