"""Content digests (``algorithm:hex``), as the OCI image spec defines them (descriptor.md).

Only sha256 and sha512 are accepted; the hex part is validated strictly because digests
end up in file paths (a digest like ``sha256:../../etc`` must never get that far).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = ["Digest", "Digester", "sha256_of"]

_HEX_LEN = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^(sha256|sha512):([a-f0-9]+)$")


@dataclass(frozen=True, order=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        m = _DIGEST_RE.match(text)
        if m is None or len(m.group(2)) != _HEX_LEN[m.group(1)]:
            raise InvalidArgument(f"invalid digest {text!r}")
        return cls(m.group(1), m.group(2))

    @classmethod
    def is_valid(cls, text: str) -> bool:
        m = _DIGEST_RE.match(text)
        return m is not None and len(m.group(2)) == _HEX_LEN[m.group(1)]

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        """The 12-character form Docker prints for layer and image ids."""
        return self.hex[:12]

    def new_hasher(self) -> Digester:
        return Digester(self.algorithm)


class Digester:
    """Incremental hashing that ends in a :class:`Digest`."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _HEX_LEN:
            raise InvalidArgument(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._h: Any = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._h.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._h.hexdigest())


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
