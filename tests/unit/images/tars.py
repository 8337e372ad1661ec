"""Build layer tars entry by entry, including the hostile ones a registry could send."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any


def entry(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    *,
    mode: int = 0o644,
    link: str = "",
    uid: int = 0,
    gid: int = 0,
    mtime: int = 1_600_000_000,
    pax: dict[str, str] | None = None,
    major: int = 0,
    minor: int = 0,
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    info.uid, info.gid, info.mtime = uid, gid, mtime
    info.devmajor, info.devminor = major, minor
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    if pax:
        info.pax_headers = dict(pax)
    return info, data


def make_tar(*entries: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(diff_ids: list[str], **extra: Any) -> bytes:
    doc: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "created": "2024-01-02T03:04:05.123456789Z",
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": f"layer {i}"} for i in range(len(diff_ids))],
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    doc.update(extra)
    return json.dumps(doc).encode()


D = tarfile.DIRTYPE
F = tarfile.REGTYPE
SYM = tarfile.SYMTYPE
LNK = tarfile.LNKTYPE
CHR = tarfile.CHRTYPE
BLK = tarfile.BLKTYPE
FIFO = tarfile.FIFOTYPE
