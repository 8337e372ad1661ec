"""File capabilities (security.capability) survive unpack, commit and export, as in Docker."""

from __future__ import annotations

import io
import os
import struct
import tarfile

import pytest

from dockyard.images import ImageStore
from dockyard.images.diff import write_tree
from tests.unit.images.tars import F, entry, make_tar

pytestmark = pytest.mark.root

# vfs_cap_data revision 2: cap_net_raw (13) permitted and effective
CAP = struct.pack("<IIIII", 0x02000000 | 1, 1 << 13, 0, 0, 0)


def test_security_capability_round_trips(tmp_path: os.PathLike[str]) -> None:
    store = ImageStore(os.path.join(str(tmp_path), "store"), driver="copy")
    pax = {"SCHILY.xattr.security.capability": CAP.decode("utf-8", "surrogateescape")}
    data = make_tar(entry("ping", F, b"\x7fELF", mode=0o755, pax=pax))
    chain, _ = store.apply_layer(None, io.BytesIO(data))
    ping = os.path.join(store.layer(chain).path, "ping")
    assert os.getxattr(ping, "security.capability") == CAP
    assert b"".join(store.layer_tar(chain)) == data
    buf = io.BytesIO()
    write_tree(store.layer(chain).path, buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        info = tar.getmember("ping")
    value = info.pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape")
    assert value == CAP
