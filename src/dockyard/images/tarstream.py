"""A streaming reader for layer tars: one pass, every byte hashed, header bytes kept.

Why not ``tarfile``: in stream mode it re-buffers every read through 10 KiB blocks and
parses each header field by field; unpacking 20,000 small files spent about a third of its
Python time there (``bench/images_bench.py``). This reader parses a header with one slice per
field, reads contents straight from its buffer, and hands back the exact header bytes that the
tar-split record needs (tarfile only gives offsets, which forced a second buffer).

Formats, as Go's archive/tar reads them (Docker writes layers with it)::

    block      := 512 bytes; a header's checksum field holds the sum of its bytes
    entry      := [ext header ...] header, contents padded to a block
    ext header := "x" PAX records "<len> <key>=<value>\\n" | "g" global PAX records
                | "L" GNU long name | "K" GNU long link name
    end        := the first all-zero header block; everything after it is trailing data

USTAR/PAX headers (magic ``ustar\\0`` ``00``) carry a name prefix at 345; GNU headers (magic
``ustar  \\0``) keep times there instead. Numbers are octal, or base-256 when the top bit of
the field is set. Sparse files (``S``, ``GNU.sparse.*``) are refused. Entries are returned as
:class:`tarfile.TarInfo` values so the unpacker reads them as it would tarfile's.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import Digester

__all__ = ["TarStream"]

BLOCK = 512
READ = 1 << 20
SPECIAL_MAX = 1 << 20  # PAX records or a GNU long name larger than this: refused (as Go)
_ZERO = bytes(BLOCK)
_HEADER_ONLY = {tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
                tarfile.DIRTYPE, tarfile.FIFOTYPE}


def _num(field: bytes) -> int:
    if field and field[0] & 0x80:  # base-256 (GNU): two's complement, top bit is the marker
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise InvalidArgument(f"invalid number {field!r} in tar header") from None


def _str(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise InvalidArgument("invalid PAX header") from None
        record = data[space + 1 : pos + length]
        if space < 0 or length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise InvalidArgument("invalid PAX header")
        key, _, value = record[:-1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class TarStream:
    """Reads a tar from ``src`` once; ``hasher`` sees every byte, trailing data included."""

    def __init__(self, src: BinaryIO, hasher: Digester) -> None:
        self._src = src
        self.hasher = hasher
        self._buf = b""
        self._at = 0  # read position in _buf
        self._eof = False
        self._left = 0  # contents of the current entry not yet read
        self._pad = 0  # padding after them

    def _fill(self, n: int) -> None:
        while len(self._buf) - self._at < n and not self._eof:
            chunk = self._src.read(max(READ, n))
            if not chunk:
                self._eof = True
                break
            self.hasher.update(chunk)
            self._buf = self._buf[self._at :] + chunk
            self._at = 0

    def _take(self, n: int) -> bytes:
        self._fill(n)
        out = self._buf[self._at : self._at + n]
        self._at += len(out)
        return out

    def _exact(self, n: int) -> bytes:
        out = self._take(n)
        if len(out) != n:
            raise InvalidArgument("truncated tar")
        return out

    def _special(self, size: int) -> tuple[bytes, bytes]:
        """An extension header's contents and the raw bytes they took (padded)."""
        if size > SPECIAL_MAX:
            raise InvalidArgument(f"tar extension header of {size} bytes")
        raw = self._exact(-(-size // BLOCK) * BLOCK)
        return raw[:size], raw

    def next(self) -> tuple[tarfile.TarInfo, bytes] | None:
        """The next entry and its raw header bytes (extension headers included), or None at
        the end of the archive. The previous entry's contents must have been consumed with
        :meth:`read` or :meth:`finish_entry`."""
        if self._left or self._pad:
            raise AssertionError("previous tar entry not finished")
        raw_parts: list[bytes] = []
        pax: dict[str, str] = {}
        global_pax: dict[str, str] = {}
        long_name = long_link = None
        while True:
            hdr = self._take(BLOCK)
            if len(hdr) < BLOCK:
                if hdr or raw_parts:
                    raise InvalidArgument("truncated tar")
                return None  # no end-of-archive blocks: accepted, as tarfile and Go do
            if hdr == _ZERO:
                self._at -= BLOCK  # the end blocks belong to the trailing data
                if raw_parts:
                    raise InvalidArgument("tar ends after an extension header")
                return None
            stored = _num(hdr[148:156])
            unsigned = sum(hdr) - sum(hdr[148:156]) + 8 * 32
            if stored != unsigned:  # some old writers summed signed chars
                signed = unsigned - 256 * sum(1 for b in hdr[:148] + hdr[156:] if b > 127)
                if stored != signed:
                    raise InvalidArgument("tar header checksum mismatch")
            raw_parts.append(hdr)
            kind = hdr[156:157]
            size = _num(hdr[124:136])
            if kind in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.XGLTYPE):
                data, raw = self._special(size)
                raw_parts.append(raw)
                (global_pax if kind == tarfile.XGLTYPE else pax).update(_pax(data))
                continue
            if kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
                data, raw = self._special(size)
                raw_parts.append(raw)
                text = _str(data)
                if kind == tarfile.GNUTYPE_LONGNAME:
                    long_name = text
                else:
                    long_link = text
                continue
            break
        info = self._info(hdr, kind, size, {**global_pax, **pax}, long_name, long_link)
        self._left = info.size if (kind not in _HEADER_ONLY) else 0
        self._pad = -self._left % BLOCK
        return info, b"".join(raw_parts)

    def _info(
        self,
        hdr: bytes,
        kind: bytes,
        size: int,
        pax: dict[str, str],
        long_name: str | None,
        long_link: str | None,
    ) -> tarfile.TarInfo:
        if kind == tarfile.GNUTYPE_SPARSE or any(k.startswith("GNU.sparse.") for k in pax):
            raise InvalidArgument("sparse files are not supported in layers")
        name = _str(hdr[0:100])
        if hdr[257:263] == b"ustar\0":  # POSIX ustar/PAX: a name prefix (STAR: shorter)
            prefix = _str(hdr[345:476] if hdr[508:512] == b"tar\0" else hdr[345:500])
            if prefix:
                name = f"{prefix}/{name}"
        info = tarfile.TarInfo(pax.get("path") or long_name or name)
        info.type = tarfile.DIRTYPE if kind == tarfile.AREGTYPE and info.name.endswith("/") else kind
        info.mode = _num(hdr[100:108])
        try:
            info.uid = int(pax["uid"]) if "uid" in pax else _num(hdr[108:116])
            info.gid = int(pax["gid"]) if "gid" in pax else _num(hdr[116:124])
            info.size = int(pax["size"]) if "size" in pax else size
            info.mtime = float(pax["mtime"]) if "mtime" in pax else _num(hdr[136:148])
        except ValueError:
            raise InvalidArgument(f"tar entry {info.name!r}: invalid PAX number") from None
        info.linkname = pax.get("linkpath") or long_link or _str(hdr[157:257])
        info.uname = pax.get("uname") or _str(hdr[265:297])
        info.gname = pax.get("gname") or _str(hdr[297:329])
        info.devmajor = _num(hdr[329:337])
        info.devminor = _num(hdr[337:345])
        info.pax_headers = pax
        if info.size < 0 or info.uid < 0 or info.gid < 0:
            raise InvalidArgument(f"tar entry {info.name!r}: negative size or id")
        return info

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the current entry's contents (b"" when all are read)."""
        data = self._take(min(n, self._left))
        self._left -= len(data)
        if not data and self._left:
            raise InvalidArgument("truncated tar")
        return data

    def finish_entry(self) -> bytes:
        """Skip to the next header; returns the bytes skipped (unread contents and padding),
        which the caller keeps only when they are small."""
        out = self._exact(self._left + self._pad)
        self._left = self._pad = 0
        return out

    def skip_padding(self) -> bytes:
        """After all contents were read: the padding bytes (kept: they are part of the tar)."""
        if self._left:
            raise AssertionError("tar entry contents not fully read")
        return self.finish_entry()

    def trailing(self) -> Iterator[bytes]:
        """Everything after the last entry: end blocks, padding, anything at all."""
        while True:
            self._fill(1)
            chunk = self._buf[self._at :]
            self._buf, self._at = b"", 0
            if not chunk:
                return
            yield chunk
