"""Content-addressed blobs: configs, manifests and compressed layers, stored once by digest.

A blob becomes visible only complete and verified: bytes go to a temp file under ``tmp/``,
are hashed while written, fsynced, and renamed to ``blobs/<alg>/<hex>`` only if the digest
(and size, when given) match what the caller expected. A crash leaves at most a temp file,
which :meth:`BlobStore.clean_tmp` removes when the store is opened again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from dockyard.atomic import fsync_dir
from dockyard.errors import InvalidArgument, NotFound
from dockyard.images._util import tmp_name
from dockyard.oci.digest import Digest, Digester

__all__ = ["BlobStore", "BlobWriter"]

CHUNK = 1 << 20


class BlobWriter:
    """Streams one blob into the store; used as a context manager.

    ``with store.blob_writer("sha256:...") as w: w.write(b); ...; w.commit()`` -- leaving the
    block without :meth:`commit` (or with an exception) discards everything written.
    """

    def __init__(self, store: BlobStore, expected: str | None, size: int | None) -> None:
        self._store = store
        self._expected = Digest.parse(expected) if expected else None
        self._size = size
        self._hasher = Digester(self._expected.algorithm if self._expected else "sha256")
        self._tmp = os.path.join(store.tmp_dir, tmp_name("blob"))
        self._fd: int | None = os.open(
            self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644
        )
        self.digest: str | None = None

    @property
    def written(self) -> int:
        return self._hasher.size

    def write(self, data: bytes | memoryview) -> None:
        if self._fd is None:
            raise InvalidArgument("blob writer is closed")
        if self._size is not None and self._hasher.size + len(data) > self._size:
            self.abort()
            raise InvalidArgument(f"blob is larger than the expected {self._size} bytes")
        self._hasher.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def commit(self) -> str:
        """Verify, make durable and publish the blob; returns its digest."""
        if self._fd is None:
            raise InvalidArgument("blob writer is closed")
        got = self._hasher.digest()
        if self._size is not None and self._hasher.size != self._size:
            self.abort()
            raise InvalidArgument(
                f"blob size mismatch: expected {self._size} bytes, got {self._hasher.size}"
            )
        if self._expected is not None and got != self._expected:
            self.abort()
            raise InvalidArgument(f"digest mismatch: expected {self._expected}, got {got}")
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        final = self._store.blob_path(str(got))
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.rename(self._tmp, final)
        fsync_dir(os.path.dirname(final))
        self.digest = str(got)
        return self.digest

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class BlobStore:
    """``blobs/<alg>/<hex>`` under ``root``, with ``tmp/`` for writes in flight."""

    def __init__(self, root: str, tmp_dir: str) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        os.makedirs(os.path.join(root, "sha256"), exist_ok=True)
        os.makedirs(tmp_dir, exist_ok=True)

    def blob_path(self, digest: str) -> str:
        d = Digest.parse(digest)  # validated: digests end up in paths
        return os.path.join(self.root, d.algorithm, d.hex)

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def blob_size(self, digest: str) -> int:
        try:
            return os.stat(self.blob_path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read_blob(self, digest: str) -> bytes:
        with self.open_blob(digest) as f:
            return f.read()

    def blob_writer(self, expected: str | None = None, size: int | None = None) -> BlobWriter:
        return BlobWriter(self, expected, size)

    def write_blob(
        self,
        data: bytes | Iterable[bytes] | BinaryIO,
        expected: str | None = None,
        size: int | None = None,
    ) -> str:
        """Store ``data`` (bytes, chunks or a readable file); returns the digest.

        Already present blobs are not written again (but a given ``expected`` digest is
        still checked against the bytes).
        """
        if isinstance(data, bytes | bytearray) and expected is None:
            expected = str(Digest.of(bytes(data)))
            if self.has_blob(expected):
                return expected
        with self.blob_writer(expected, size) as w:
            for chunk in _chunks(data):
                w.write(chunk)
            return w.commit()

    def delete_blob(self, digest: str) -> None:
        try:
            os.unlink(self.blob_path(digest))
        except FileNotFoundError:
            pass

    def list_blobs(self) -> list[str]:
        out = []
        for alg in sorted(os.listdir(self.root)):
            for hexd in sorted(os.listdir(os.path.join(self.root, alg))):
                out.append(f"{alg}:{hexd}")
        return out


def _chunks(data: bytes | Iterable[bytes] | BinaryIO) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray):
        yield bytes(data)
    elif hasattr(data, "read"):
        while chunk := data.read(CHUNK):  # type: ignore[union-attr]
            yield chunk
    else:
        yield from data  # type: ignore[misc]
