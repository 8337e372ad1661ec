from __future__ import annotations

import io
import os

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.images import ImageStore
from tests.unit.images.tars import digest


@pytest.fixture
def store(tmp_path: os.PathLike[str]) -> ImageStore:
    return ImageStore(str(tmp_path), driver="copy")


def test_write_blob_returns_digest_and_is_readable(store: ImageStore) -> None:
    d = store.write_blob(b"hello")
    assert d == digest(b"hello")
    assert store.has_blob(d)
    with store.open_blob(d) as f:
        assert f.read() == b"hello"


def test_write_blob_from_chunks_and_file(store: ImageStore) -> None:
    data = os.urandom(3 << 20)
    assert store.write_blob(iter([data[:100], data[100:]]), digest(data)) == digest(data)
    assert store.write_blob(io.BytesIO(data), digest(data), len(data)) == digest(data)


def test_digest_mismatch_leaves_nothing(store: ImageStore) -> None:
    wrong = digest(b"other")
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        store.write_blob(iter([b"hello"]), wrong)
    assert not store.has_blob(wrong)
    assert not store.has_blob(digest(b"hello"))
    assert os.listdir(store.tmp_dir) == []


def test_size_mismatch_refused(store: ImageStore) -> None:
    with pytest.raises(InvalidArgument, match="larger than the expected 4 bytes"):
        store.write_blob(iter([b"hello"]), digest(b"hello"), 4)
    with pytest.raises(InvalidArgument, match="size"):
        store.write_blob(iter([b"hello"]), digest(b"hello"), 6)
    assert os.listdir(store.tmp_dir) == []


def test_blob_writer_aborts_on_exception(store: ImageStore) -> None:
    with pytest.raises(RuntimeError), store.blob_writer(digest(b"abc")) as w:
        w.write(b"ab")
        raise RuntimeError("connection reset")
    assert not store.has_blob(digest(b"abc"))
    assert os.listdir(store.tmp_dir) == []


def test_blob_writer_commit(store: ImageStore) -> None:
    with store.blob_writer(digest(b"abc"), 3) as w:
        w.write(b"a")
        w.write(b"bc")
        assert w.commit() == digest(b"abc")
    assert store.has_blob(digest(b"abc"))


def test_bad_digest_never_reaches_a_path(store: ImageStore) -> None:
    with pytest.raises(InvalidArgument):
        store.blob_path("sha256:../../etc/passwd")
    with pytest.raises(NotFound):
        store.open_blob(digest(b"missing"))


def test_reopen_removes_leftovers_of_dead_writers(tmp_path: os.PathLike[str]) -> None:
    store = ImageStore(str(tmp_path), driver="copy")
    # a pid that cannot be alive (above pid_max) left a half-written blob and layer dir
    with open(os.path.join(store.tmp_dir, "blob-99999999-abc"), "wb") as f:
        f.write(b"partial")
    os.makedirs(os.path.join(store.tmp_dir, "layer-99999999-abc", "diff"))
    ImageStore(str(tmp_path), driver="copy")
    assert os.listdir(store.tmp_dir) == []


def test_reopen_keeps_live_work_and_removes_work_of_a_reused_pid(tmp_path: os.PathLike[str]) -> None:
    store = ImageStore(str(tmp_path), driver="copy")
    with store.blob_writer(digest(b"abc")) as live:
        live.write(b"ab")
        # our pid, but another start time: a previous process that had the same pid
        stale = os.path.join(store.tmp_dir, f"layer-{os.getpid()}.1-abcdef")
        os.makedirs(stale)
        ImageStore(str(tmp_path), driver="copy")
        assert not os.path.exists(stale)
        live.write(b"c")
        assert live.commit() == digest(b"abc")
