from __future__ import annotations

import os

import pytest

from dockyard.atomic import atomic_write, atomic_write_json


def test_atomic_write_replaces_content_and_leaves_no_temp(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "rec.json")
    atomic_write(path, b"old")
    atomic_write_json(path, {"a": 1})
    with open(path) as f:
        assert f.read() == '{"a":1}'
    assert os.listdir(tmp_path) == ["rec.json"]


def test_atomic_write_failure_keeps_old_record(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = os.path.join(tmp_path, "rec")
    atomic_write(path, b"old")

    def boom(fd: int) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write(path, b"new")
    with open(path, "rb") as f:
        assert f.read() == b"old"
    assert os.listdir(tmp_path) == ["rec"]
