"""Unpacked layers, shared by every image and container, keyed by chain id.

OCI image spec (config.md, "Layer ChainID")::

    chain_id(L1)        = diff_id(L1)
    chain_id(L1 .. Ln)  = sha256(chain_id(L1 .. Ln-1) + " " + diff_id(Ln))

A layer directory appears with one rename(2) of a fully unpacked and verified temp
directory, so it either exists complete (with ``meta.json`` inside) or not at all. Each
layer also gets a short symlink ``l/<20 hex>`` so overlay's ``lowerdir=`` option (limited to
one page of mount data) can name many layers.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from dockyard.atomic import fsync_dir
from dockyard.errors import InvalidArgument, NotFound
from dockyard.images._util import remove_tree, tmp_name
from dockyard.images.tarsplit import iter_tar
from dockyard.images.unpack import unpack_layer
from dockyard.oci.digest import Digest

__all__ = ["Layer", "LayerStore", "chain_id_of"]

SHORT = 20


def chain_id_of(diff_ids: Iterable[str]) -> str:
    """The chain id of a stack of layers given bottom first; raises on an empty stack."""
    chain: str | None = None
    for diff_id in diff_ids:
        Digest.parse(diff_id)
        if chain is None:
            chain = diff_id
        else:
            chain = "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
    if chain is None:
        raise InvalidArgument("no layers")
    return chain


@dataclass(frozen=True)
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int  # bytes of file content in this layer alone
    path: str  # the unpacked directory (overlay form)
    short_path: str  # l/<short> symlink to ``path``


class LayerStore:
    """``layers/sha256/<chain hex>/{diff/,meta.json}`` and ``l/<short>`` links under ``root``."""

    def __init__(self, root: str, tmp_dir: str) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        self.dir = os.path.join(root, "layers", "sha256")
        self.links = os.path.join(root, "l")
        for d in (self.dir, self.links, tmp_dir):
            os.makedirs(d, exist_ok=True)
        self._commit = threading.Lock()

    def _dir(self, chain_id: str) -> str:
        return os.path.join(self.dir, Digest.parse(chain_id).hex)

    def dir_of(self, chain_id: str) -> str:
        """The layer's directory (diff/, meta.json, tar-split ...)."""
        return self._dir(chain_id)

    def has(self, chain_id: str) -> bool:
        return os.path.exists(os.path.join(self._dir(chain_id), "meta.json"))

    def get(self, chain_id: str) -> Layer:
        d = self._dir(chain_id)
        try:
            with open(os.path.join(d, "meta.json"), "rb") as f:
                meta = json.load(f)
        except FileNotFoundError:
            raise NotFound(f"layer {chain_id} not found") from None
        short = os.path.join(self.links, Digest.parse(chain_id).hex[:SHORT])
        if not os.path.islink(short):
            self._link(chain_id)
        return Layer(chain_id, meta["diff_id"], meta["parent"], meta["size"], os.path.join(d, "diff"), short)

    def stack(self, chain_id: str | None) -> list[Layer]:
        """The layer and its ancestors, top first."""
        out: list[Layer] = []
        while chain_id is not None:
            layer = self.get(chain_id)
            out.append(layer)
            chain_id = layer.parent
        return out

    def list(self) -> list[str]:
        return [f"sha256:{h}" for h in sorted(os.listdir(self.dir)) if len(h) == 64]

    def apply(
        self,
        parent: str | None,
        stream: BinaryIO,
        expected_diff_id: str | None = None,
        *,
        allow_devices: bool = False,
    ) -> tuple[str, str]:
        """Unpack ``stream`` on top of ``parent``; returns ``(chain_id, diff_id)``.

        When ``expected_diff_id`` names a layer already present, the stream is not read.
        """
        lowers = [layer.path for layer in self.stack(parent)]
        if expected_diff_id is not None:
            chain = chain_id_of([parent, expected_diff_id] if parent else [expected_diff_id])
            if self.has(chain):
                return chain, expected_diff_id
        tmp = os.path.join(self.tmp_dir, tmp_name("layer"))
        os.mkdir(tmp, 0o700)
        try:
            result = unpack_layer(stream, tmp, lowers=lowers, allow_devices=allow_devices)
            if expected_diff_id is not None and result.diff_id != expected_diff_id:
                raise InvalidArgument(
                    f"layer diff id mismatch: expected {expected_diff_id}, got {result.diff_id}"
                )
            chain = chain_id_of([parent, result.diff_id] if parent else [result.diff_id])
            meta = {
                "chain_id": chain,
                "diff_id": result.diff_id,
                "parent": parent,
                "size": result.size,
                "tar_size": result.tar_size,
            }
            with open(os.path.join(tmp, "meta.json"), "w") as f:
                json.dump(meta, f)
            final = self._dir(chain)
            with self._commit:  # another thread may be committing or deleting the same layer
                if self.has(chain):
                    remove_tree(tmp)  # it won: same contents, keep theirs
                else:
                    if os.path.exists(final):  # a half-deleted layer: finish deleting it
                        remove_tree(final, ignore_errors=False)
                    os.rename(tmp, final)
                    fsync_dir(self.dir)
                self._link(chain)
            return chain, result.diff_id
        except BaseException:
            remove_tree(tmp)
            raise

    def tar_size(self, chain_id: str) -> int:
        with open(os.path.join(self._dir(chain_id), "meta.json"), "rb") as f:
            size: int = json.load(f)["tar_size"]
        return size

    def iter_tar(self, chain_id: str) -> Iterator[bytes]:
        """The layer's exact original tar (its diff id is the sha256 of these bytes)."""
        if not self.has(chain_id):
            raise NotFound(f"layer {chain_id} not found")
        return iter_tar(self._dir(chain_id))

    def _link(self, chain_id: str) -> None:
        hexd = Digest.parse(chain_id).hex
        link = os.path.join(self.links, hexd[:SHORT])
        tmp = f"{link}.{os.getpid()}.tmp"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(f"../layers/sha256/{hexd}/diff", tmp)
        os.rename(tmp, link)

    def delete(self, chain_id: str) -> None:
        """Remove a layer: first its meta.json (the layer stops existing), then the rest."""
        with self._commit:
            self._delete(chain_id)

    def _delete(self, chain_id: str) -> None:
        d = self._dir(chain_id)
        try:
            os.unlink(os.path.join(d, "meta.json"))
        except FileNotFoundError:
            pass
        try:
            os.unlink(os.path.join(self.links, Digest.parse(chain_id).hex[:SHORT]))
        except FileNotFoundError:
            pass
        remove_tree(d)
