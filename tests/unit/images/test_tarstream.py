"""The streaming tar reader against what Python's tarfile writes, and against broken headers."""

from __future__ import annotations

import io
import tarfile

import pytest

from dockyard.errors import InvalidArgument
from dockyard.images.tarstream import TarStream
from dockyard.oci.digest import Digester
from tests.unit.images.tars import LNK, SYM, D, F, digest, entry, make_tar


def read_all(data: bytes) -> tuple[list[tuple[tarfile.TarInfo, bytes]], bytes, Digester]:
    h = Digester()
    ts = TarStream(io.BytesIO(data), h)
    out = []
    raw = b""
    while (item := ts.next()) is not None:
        info, header = item
        body = b""
        while chunk := ts.read(7):
            body += chunk
        raw += header + body + ts.skip_padding()
        out.append((info, body))
    raw += b"".join(ts.trailing())
    return out, raw, h


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_reads_what_tarfile_writes_and_every_byte_is_accounted_for(fmt: int) -> None:
    long = "dir/" + "x" * 90 + "/" + "y" * 60 if fmt != tarfile.USTAR_FORMAT else "dir/" + "x" * 90 + "/y"
    data = make_tar(
        entry("dir/", D, mode=0o755),
        entry(long, F, b"hello world", mode=0o4755, uid=1000, gid=50, mtime=1_234_567_890),
        entry("dir/link", LNK, link=long),
        entry("dir/sym", SYM, link="/" + "t" * 120 if fmt != tarfile.USTAR_FORMAT else "/t"),
        fmt=fmt,
    )
    entries, raw, h = read_all(data)
    assert raw == data and str(h.digest()) == digest(data)
    names = [i.name for i, _ in entries]
    assert names == ["dir/", long, "dir/link", "dir/sym"]
    info, body = entries[1]
    assert body == b"hello world"
    assert (info.mode, info.uid, info.gid, int(info.mtime), info.size) == (0o4755, 1000, 50, 1_234_567_890, 11)
    assert entries[2][0].islnk() and entries[2][0].linkname == long
    assert entries[3][0].issym()


def test_pax_records_override_the_header_and_global_ones_apply() -> None:
    g = tarfile.TarInfo("global")
    g.type = tarfile.XGLTYPE
    records = b"25 SCHILY.xattr.user.a=1\n"
    g.size = len(records)
    data = g.tobuf(tarfile.USTAR_FORMAT) + records + b"\0" * (512 - len(records))
    data += make_tar(entry("f", F, b"x", pax={"uid": "123456789", "mtime": "1.5"}))
    entries, raw, _ = read_all(data)
    info = entries[0][0]
    assert (info.uid, info.mtime) == (123456789, 1.5)
    assert info.pax_headers["SCHILY.xattr.user.a"] == "1"
    assert raw == data


def test_base256_numbers() -> None:
    info = tarfile.TarInfo("big")
    info.uid = 1 << 40
    info.size = 0
    (got, _), = read_all(info.tobuf(tarfile.GNU_FORMAT) + b"\0" * 1024)[0]
    assert got.uid == 1 << 40


def test_v7_directory_is_a_regular_entry_with_a_slash() -> None:
    info = tarfile.TarInfo("olddir/")
    info.type = tarfile.AREGTYPE
    (got, _), = read_all(info.tobuf(tarfile.USTAR_FORMAT) + b"\0" * 1024)[0]
    assert got.isdir()


def test_no_end_blocks_is_accepted() -> None:
    data = make_tar(entry("f", F, b"abc"))
    body = data[: 512 + 512]  # header and padded contents, no end blocks
    entries, raw, _ = read_all(body)
    assert [(i.name, b) for i, b in entries] == [("f", b"abc")]
    assert raw == body


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d[:148] + b"0000000\0" + d[156:],  # checksum
        lambda d: d[:600],  # truncated in the contents
        lambda d: d[:300],  # truncated header
    ],
    ids=["checksum", "truncated-contents", "truncated-header"],
)
def test_broken_tars_are_refused(mutate) -> None:  # type: ignore[no-untyped-def]
    data = make_tar(entry("f", F, b"x" * 2000))
    with pytest.raises(InvalidArgument):
        read_all(mutate(data))


def test_huge_extension_header_is_refused_before_reading_it() -> None:
    x = tarfile.TarInfo("pax")
    x.type = tarfile.XHDTYPE
    x.size = 1 << 30
    with pytest.raises(InvalidArgument, match="extension header"):
        read_all(x.tobuf(tarfile.USTAR_FORMAT))


def test_sparse_files_are_refused() -> None:
    data = make_tar(entry("s", F, b"", pax={"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}))
    with pytest.raises(InvalidArgument, match="sparse"):
        read_all(data)
