"""Rebuild a layer's original tar, byte for byte, from its unpacked directory.

A layer's identity is the sha256 of its exact tar bytes (the diff id), but tar writers
differ (padding, header formats, PAX records, entry order), so a tar made afresh from the
unpacked files would not match. Like Docker's use of vbatts/tar-split, unpacking records
every byte of the stream except file contents in ``tar-split.gz``::

    record  := "R" u32-be length, bytes          headers, padding, end blocks, trailing data
             | "F" u32-be payload id, u64-be size   contents of one regular file
    payloads.json  ["diff/bin/busybox", "payload/7", ...]   payload id -> file in the layer dir

File contents are read back from ``diff/``; contents no longer there (a file replaced by a
later entry of the same tar, AUFS ``.wh..wh.plnk`` stashes) are kept in ``payload/<id>``.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
from collections.abc import Iterator
from typing import Any

from dockyard.errors import Internal
from dockyard.images._util import exact_chunks

__all__ = ["TarSplitWriter", "iter_tar"]

_RAW = b"R"
_FILE = b"F"
CHUNK = 1 << 20
RAW_MAX = (1 << 32) - 1


class TarSplitWriter:
    def __init__(self, layer_dir: str) -> None:
        self.dir = layer_dir
        self.paths: list[str] = []
        self._f: gzip.GzipFile = gzip.open(os.path.join(layer_dir, "tar-split.gz"), "wb", compresslevel=1)  # noqa: SIM115
        self._buf = bytearray()  # records are small: batch them (gzip.write per call is slow)

    def _write(self, data: bytes | memoryview) -> None:
        self._buf += data
        if len(self._buf) >= CHUNK:
            self._f.write(self._buf)
            self._buf.clear()

    def raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            part = view[:RAW_MAX]
            self._write(_RAW + struct.pack(">I", len(part)))
            self._write(part)
            view = view[len(part) :]

    def payload(self, path: str, size: int) -> int:
        """Contents of ``size`` bytes are the file ``path`` (relative to the layer dir)."""
        ident = len(self.paths)
        self.paths.append(path)
        self.payload_ref(ident, size)
        return ident

    def new_payload(self, size: int) -> tuple[int, str]:
        """Reserve ``payload/<id>`` for contents that will not stay in diff/."""
        ident = len(self.paths)
        self.paths.append(f"payload/{ident}")
        os.makedirs(os.path.join(self.dir, "payload"), exist_ok=True)
        return ident, os.path.join(self.dir, "payload", str(ident))

    def payload_ref(self, ident: int, size: int) -> None:
        self._write(_FILE + struct.pack(">IQ", ident, size))

    def set_aside(self, ident: int, path: str) -> None:
        """The file holding payload ``ident`` is about to be replaced: move it aside."""
        os.makedirs(os.path.join(self.dir, "payload"), exist_ok=True)
        dest = os.path.join(self.dir, "payload", str(ident))
        os.rename(path, dest)
        self.paths[ident] = f"payload/{ident}"

    def close(self) -> None:
        self._f.write(self._buf)
        self._f.close()
        with open(os.path.join(self.dir, "payloads.json"), "w") as f:
            json.dump(self.paths, f)

    def __enter__(self) -> TarSplitWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def iter_tar(layer_dir: str) -> Iterator[bytes]:
    """The layer's original tar as chunks (the caller verifies the digest if it cares)."""
    try:
        with open(os.path.join(layer_dir, "payloads.json"), "rb") as f:
            paths: list[str] = json.load(f)
        split = gzip.open(os.path.join(layer_dir, "tar-split.gz"), "rb")  # noqa: SIM115
    except FileNotFoundError as exc:
        raise Internal(f"layer {layer_dir} has no tar-split record") from exc
    with split:
        while tag := split.read(1):
            if tag == _RAW:
                (length,) = struct.unpack(">I", _exact(split, 4))
                yield from exact_chunks(split.read, length, lambda: Internal("truncated tar-split"))
            elif tag == _FILE:
                ident, size = struct.unpack(">IQ", _exact(split, 12))
                path = os.path.join(layer_dir, paths[ident])
                with open(path, "rb") as f:
                    shrank = Internal(f"{path} shrank")
                    yield from exact_chunks(f.read, size, lambda: shrank)  # noqa: B023
            else:
                raise Internal(f"layer {layer_dir}: corrupt tar-split")


def _exact(f: gzip.GzipFile, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise Internal("truncated tar-split")
    return data
