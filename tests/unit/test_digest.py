from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import Digest, Digester


def test_digest_round_trips() -> None:
    d = Digest.of(b"hello")
    assert Digest.parse(str(d)) == d
    assert d.short == d.hex[:12]


@pytest.mark.parametrize("text", ["sha256:../../etc/passwd", "sha256:ABC", "md5:" + "a" * 32, "sha256:" + "a" * 63, "sha256"])
def test_digest_refuses_anything_not_strictly_hex(text: str) -> None:
    with pytest.raises(InvalidArgument):
        Digest.parse(text)


def test_digester_counts_size() -> None:
    h = Digester()
    h.update(b"ab")
    h.update(memoryview(b"cd"))
    assert h.size == 4 and h.digest() == Digest.of(b"abcd")
