from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def listing(root: str) -> list[tuple[str, str, int]]:
    """Every path under ``root`` with its kind and size: the store 'exactly as before'."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if path == os.path.join(root, "tmp"):
                continue  # created on first use; its contents still count
            st = os.lstat(path)
            kind = "d" if os.path.isdir(path) and not os.path.islink(path) else "f"
            out.append((os.path.relpath(path, root), kind, st.st_size if kind == "f" else 0))
    return sorted(out)


@pytest.fixture
def store(tmp_path: Any) -> Any:
    from dockyard.images.store import ImageStore

    return ImageStore(str(tmp_path / "store"))


@pytest.fixture
def snapshot(store: Any) -> Callable[[], list[tuple[str, str, int]]]:
    return lambda: listing(store.root)
