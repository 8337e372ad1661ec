"""Images in and out as tar archives: ``docker save``/``load`` and ``docker import``.

docker-archive, as dockerd 20.10 writes it (docker-image spec v1.2, "Combined Image JSON +
Filesystem Changeset Format")::

    <config hex>.json                 the image config, byte for byte
    <v1 id>/VERSION                   "1.0"
    <v1 id>/json                      legacy v1 metadata (id, parent)
    <v1 id>/layer.tar                 the layer's exact tar (sha256 = its diff id)
    manifest.json                     [{"Config": "<hex>.json", "RepoTags": [...], "Layers": [...]}]
    repositories                      {"busybox": {"latest": "<top v1 id>"}}

``load`` also takes OCI image layouts (``oci-layout``, ``index.json``, ``blobs/sha256/``) and
layer tars compressed with gzip, zstd, bzip2 or xz. The archive is first extracted into the
store's tmp/ (regular files and directories only, names checked), because its parts can come
in any order; images become visible only when all their layers are in.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import stat
import tarfile
import time
import zlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from dockyard.errors import Internal, InvalidArgument, NotFound, Unsupported
from dockyard.images._util import host_arch, now_rfc3339, remove_tree, tmp_name
from dockyard.images.diff import TarWriter
from dockyard.oci.digest import Digest
from dockyard.oci.reference import Reference, parse_reference

if TYPE_CHECKING:
    from dockyard.images.store import Image, ImageStore

__all__ = ["decompressed", "import_tar", "load", "save"]

CHUNK = 1 << 20
_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
}


class _Peek(io.RawIOBase):
    """Put bytes read to sniff the format back in front of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def decompressed(stream: BinaryIO) -> Iterator[BinaryIO]:
    """``stream`` uncompressed, whatever it was compressed with (by magic bytes)."""
    head = stream.read(6)
    raw: BinaryIO = io.BufferedReader(_Peek(head, stream), CHUNK)  # type: ignore[arg-type]
    kind = next((k for m, k in _MAGIC.items() if head.startswith(m)), None)
    out: BinaryIO
    if kind == "gzip":
        try:
            from isal import igzip

            out = igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment,no-untyped-call]
        except ImportError:
            out = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    elif kind == "zstd":
        import zstandard

        out = zstandard.ZstdDecompressor().stream_reader(raw)  # type: ignore[assignment]
    elif kind == "bzip2":
        out = bz2.BZ2File(raw, "rb")  # type: ignore[assignment]
    elif kind == "xz":
        out = lzma.LZMAFile(raw, "rb")  # type: ignore[assignment]  # noqa: SIM115
    else:
        out = raw
    try:
        yield out
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise InvalidArgument(f"corrupt {kind or 'tar'} data: {exc}") from exc
    except Exception as exc:
        if isinstance(exc, _codec_errors()):
            raise InvalidArgument(f"corrupt {kind} data: {exc}") from exc
        raise


def _codec_errors() -> tuple[type[BaseException], ...]:
    """zstandard's and isal's error classes (modules imported only when a stream needed them)."""
    import sys

    found: list[type[BaseException]] = []
    if "zstandard" in sys.modules:
        found.append(sys.modules["zstandard"].ZstdError)
    if "isal.isal_zlib" in sys.modules:
        found.append(sys.modules["isal.isal_zlib"].error)
    return tuple(found)


# -- save ------------------------------------------------------------------------------------


def _v1_id(chain_id: str, parent: str) -> str:
    doc = {"layer_id": chain_id}
    if parent:
        doc["parent"] = "sha256:" + parent
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _selected(store: ImageStore, names: Sequence[str]) -> list[tuple[Image, list[Reference]]]:
    """Each image once, in order, with the tags to write for it."""
    chosen: dict[str, list[Reference]] = {}  # insertion-ordered: the archive's order

    def add(image_id: str, ref: Reference | None) -> None:
        refs = chosen.setdefault(image_id, [])
        if ref is not None and ref not in refs:
            refs.append(ref)

    for name in names:
        try:
            ref: Reference | None = parse_reference(name)
        except InvalidArgument:
            ref = None
        if ref is not None and ref.tag is None and ref.digest is None:
            # a bare repository name saves every tag of it (docker save fedora)
            tagged = [(i, r) for i, refs in store.refs.all().items() for r in refs
                      if r.digest is None and r.name == ref.name]
            for image_id, r in tagged:
                add(image_id, r)
            if tagged:
                continue
        img = store.resolve(name)
        by_name = ref is not None and ref.digest is None and not _is_id(img.id, name)
        add(img.id, ref.with_default_tag() if by_name and ref is not None else None)
    return [(store.get(i), refs) for i, refs in chosen.items()]


def _is_id(image_id: str, text: str) -> bool:
    return image_id.startswith(text) or image_id[7:].startswith(text)


def _file(w: TarWriter, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, mtime
    w.add(info, io.BytesIO(data))


def save(store: ImageStore, names: Sequence[str], out: BinaryIO) -> None:
    """Write ``names`` (references or ids) as one docker-archive tar to ``out``."""
    images = _selected(store, names)
    w = TarWriter(out)
    mtime = int(time.time())
    written: set[str] = set()
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for img, refs in images:
        layer_paths = []
        parent = ""
        for chain in img.chain_ids:
            v1 = _v1_id(chain, parent)
            layer_paths.append(f"{v1}/layer.tar")
            if v1 not in written:
                written.add(v1)
                _write_layer(store, w, v1, parent, chain, mtime)
            parent = v1
        config_name = img.id[7:] + ".json"
        if config_name not in written:
            written.add(config_name)
            _file(w, config_name, store.config_bytes(img.id), mtime)
        tags = [r.familiar() for r in refs]
        manifest.append({"Config": config_name, "RepoTags": tags or None, "Layers": layer_paths})
        for r in refs:
            if parent and r.tag:
                repositories.setdefault(r.familiar_name(), {})[r.tag] = parent
    _file(w, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode(), mtime)
    if repositories:
        _file(w, "repositories", json.dumps(repositories, separators=(",", ":")).encode(), mtime)
    w.close()


def _write_layer(store: ImageStore, w: TarWriter, v1: str, parent: str, chain: str, mtime: int) -> None:
    layer = store.layers.get(chain)
    info = tarfile.TarInfo(v1)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
    w.add(info)
    _file(w, f"{v1}/VERSION", b"1.0", mtime)
    legacy: dict[str, Any] = {"id": v1, "created": "0001-01-01T00:00:00Z", "container_config": {}}
    if parent:
        legacy["parent"] = parent
    _file(w, f"{v1}/json", json.dumps(legacy, separators=(",", ":")).encode(), mtime)
    size = store.layers.tar_size(chain)
    info = tarfile.TarInfo(f"{v1}/layer.tar")
    info.size, info.mode, info.mtime = size, 0o644, mtime
    w.add(info, _VerifyingReader(store.layers.iter_tar(chain), layer.diff_id, size))  # type: ignore[arg-type]


class _VerifyingReader:
    """Reads chunks and fails at the end if their sha256 is not the expected digest."""

    def __init__(self, chunks: Iterator[bytes], expected: str, size: int) -> None:
        self._chunks = chunks
        self._buf = b""
        self._h = hashlib.sha256()
        self._expected = expected
        self._left = size

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._h.update(chunk)
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        self._left -= len(data)
        if self._left == 0 and "sha256:" + self._h.hexdigest() != self._expected:
            raise Internal(f"layer {self._expected} is corrupt in the store")
        return data


# -- load ------------------------------------------------------------------------------------


def _extract(stream: BinaryIO, dest: str) -> None:
    """Unpack the outer archive: plain files and directories only, inside ``dest``."""
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for info in tar:
                parts = [p for p in info.name.split("/") if p not in ("", ".")]
                if not parts or ".." in parts or info.name.startswith("/"):
                    if parts:
                        raise InvalidArgument(f"archive entry {info.name!r} escapes the archive")
                    continue
                path = os.path.join(dest, *parts)
                if info.isdir():
                    os.makedirs(path, exist_ok=True)
                elif info.isreg():
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    src = tar.extractfile(info)
                    assert src is not None
                    with open(path, "wb") as f:
                        shutil.copyfileobj(src, f, CHUNK)
                elif info.issym():
                    # docker save writes symlinks for layers shared by v1 ids; resolved (and
                    # checked) when used, never made as real symlinks
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path + ".link", "w") as f:
                        f.write(info.linkname)
                elif info.islnk():  # names are archive-root relative: a copy of the file
                    target = _inside(dest, info.linkname)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    shutil.copyfile(target, path)
    except tarfile.TarError as exc:
        raise InvalidArgument(f"invalid archive: {exc}") from exc
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise InvalidArgument(f"invalid archive: conflicting entries ({exc.filename})") from exc


def _inside(base: str, rel: str) -> str:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts or rel.startswith("/"):
        raise InvalidArgument(f"archive path {rel!r} escapes the archive")
    path = os.path.join(base, *parts)
    for _ in range(8):  # follow link stand-ins written by _extract
        if os.path.exists(path) or not os.path.exists(path + ".link"):
            break
        with open(path + ".link") as f:
            target = f.read()
        path = _inside(base, os.path.normpath(os.path.join(os.path.dirname(os.path.relpath(path, base)), target)))
    if not os.path.isfile(path) or stat.S_ISLNK(os.lstat(path).st_mode):
        raise InvalidArgument(f"archive is missing {rel!r}")
    return path


def _load_image(store: ImageStore, base: str, config_path: str, layer_paths: Sequence[str]) -> str:
    with open(config_path, "rb") as f:
        config = f.read()
    try:
        diff_ids = list(json.loads(config)["rootfs"]["diff_ids"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"invalid image config in archive: {exc}") from exc
    if len(diff_ids) != len(layer_paths):
        raise InvalidArgument(
            f"invalid archive: {len(layer_paths)} layers for {len(diff_ids)} diff ids"
        )
    parent: str | None = None
    for diff_id, rel in zip(diff_ids, layer_paths, strict=True):
        chain = store.chain_id([parent, diff_id]) if parent else diff_id
        if not store.has_layer(chain):
            with open(_inside(base, rel), "rb") as f, decompressed(f) as tar:
                chain, _ = store.apply_layer(parent, tar, diff_id)
        parent = chain
    return store.add_image(config)


def load(store: ImageStore, stream: BinaryIO) -> list[str]:
    """Load a docker-archive or OCI-layout tar (optionally compressed).

    Returns what Docker prints: tag references (familiar form) of tagged images, ids
    ("sha256:...") of untagged ones.
    """
    tmp = os.path.join(store.tmp_dir, tmp_name("load"))
    os.mkdir(tmp, 0o700)
    try:
        with decompressed(stream) as raw:
            _extract(raw, tmp)
        if os.path.exists(os.path.join(tmp, "manifest.json")):
            return _load_docker(store, tmp)
        if os.path.exists(os.path.join(tmp, "index.json")):
            return _load_oci(store, tmp)
        if os.path.exists(os.path.join(tmp, "repositories")):
            raise Unsupported("legacy (pre-1.10) image archives are not supported")
        raise InvalidArgument("invalid archive: no manifest.json or index.json")
    finally:
        remove_tree(tmp)


def _load_docker(store: ImageStore, tmp: str) -> list[str]:
    try:
        with open(os.path.join(tmp, "manifest.json"), "rb") as f:
            manifest = json.load(f)
        entries = [(e["Config"], list(e.get("Layers") or []), list(e.get("RepoTags") or [])) for e in manifest]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"invalid manifest.json: {exc}") from exc
    out: list[str] = []
    for config, layers, tags in entries:
        refs = [parse_reference(t).with_default_tag() for t in tags]
        image_id = _load_image(store, tmp, _inside(tmp, config), layers)
        for ref in refs:
            store.tag(image_id, ref)
            out.append(ref.familiar())
        if not refs:
            out.append(image_id)
    return out


def _oci_blob(tmp: str, digest: str) -> str:
    d = Digest.parse(digest)
    return _inside(tmp, f"blobs/{d.algorithm}/{d.hex}")


def _oci_manifests(tmp: str, index: dict[str, Any], name: str | None) -> Iterator[tuple[dict[str, Any], str | None]]:
    for desc in index.get("manifests") or []:
        ann = desc.get("annotations") or {}
        ref = ann.get("io.containerd.image.name") or name
        tag = ann.get("org.opencontainers.image.ref.name")
        if ref is None and tag and ("/" in tag or ":" in tag):
            ref = tag
        with open(_oci_blob(tmp, desc["digest"]), "rb") as f:
            doc = json.load(f)
        if "manifests" in doc:
            yield from _oci_manifests(tmp, doc, ref)
        elif "config" in doc:
            plat = desc.get("platform") or {}
            if plat and plat.get("architecture") not in (None, host_arch()):
                continue
            yield doc, ref


def _load_oci(store: ImageStore, tmp: str) -> list[str]:
    with open(os.path.join(tmp, "index.json"), "rb") as f:
        index = json.load(f)
    out: list[str] = []
    try:
        for manifest, name in _oci_manifests(tmp, index, None):
            config_path = _oci_blob(tmp, manifest["config"]["digest"])
            with open(config_path, "rb") as f:
                if "sha256:" + hashlib.sha256(f.read()).hexdigest() != manifest["config"]["digest"]:
                    raise InvalidArgument("invalid archive: config digest mismatch")
            layers = [
                os.path.relpath(_oci_blob(tmp, layer["digest"]), tmp) for layer in manifest["layers"]
            ]
            image_id = _load_image(store, tmp, config_path, layers)
            if name:
                ref = parse_reference(name).with_default_tag()
                store.tag(image_id, ref)
                out.append(ref.familiar())
            else:
                out.append(image_id)
    except (KeyError, TypeError) as exc:
        raise InvalidArgument(f"invalid OCI layout: {exc}") from exc
    return out


# -- import ----------------------------------------------------------------------------------


def import_tar(
    store: ImageStore,
    stream: BinaryIO,
    *,
    ref: str | None = None,
    config: dict[str, Any] | None = None,
    comment: str | None = None,
    source: str = "-",
) -> str:
    """``docker import``: a root filesystem tarball (maybe compressed) -> a one-layer image."""
    with decompressed(stream) as tar:
        _chain, diff_id = store.apply_layer(None, tar)
    now = now_rfc3339()
    image = {
        "architecture": host_arch(),
        "config": config or {},
        "created": now,
        "docker_version": "dockyard",
        "history": [{"created": now, "comment": comment or f"Imported from {source}"}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    if comment:
        image["comment"] = comment
    raw = json.dumps(image, separators=(",", ":")).encode()
    try:
        return store.add_image(raw, tags=[ref] if ref else [])
    except NotFound as exc:  # the layer vanished under us (a concurrent prune)
        raise Internal(f"import failed: {exc}") from exc
