"""The image store: blobs, layers, image records, names, and containers' root filesystems.

See the package docstring for the on-disk layout. Every method is synchronous and safe to
call from several threads (record changes take one lock); the daemon runs them in a thread.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from dockyard.atomic import atomic_write_json
from dockyard.errors import ImageNotFound, Internal, InvalidArgument, NotFound
from dockyard.images._util import now_rfc3339, remove_tree, writer_alive
from dockyard.images.blobs import BlobStore, BlobWriter
from dockyard.images.layers import Layer, LayerStore, chain_id_of
from dockyard.images.refs import RefIndex, familiar_match
from dockyard.oci.digest import Digest
from dockyard.oci.reference import Reference, parse_reference

__all__ = ["ContainerUse", "Image", "ImageRecord", "ImageStore", "parse_time"]

GC_GRACE = 3600.0  # seconds an unreferenced layer or blob is left alone (work in flight)

# Callers tell the store which containers use an image: image id -> [(container id, running)]
ContainerUse = Callable[[str], Sequence[tuple[str, bool]]]


def _no_users(image_id: str) -> Sequence[tuple[str, bool]]:
    return ()


@dataclass(frozen=True)
class Image:
    """An image as the engine sees it (snake_case; the API layer renames)."""

    id: str  # "sha256:<hex of the config>"
    config: dict[str, Any]
    repo_tags: tuple[str, ...]  # familiar: "busybox:latest"
    repo_digests: tuple[str, ...]  # familiar: "busybox@sha256:..."
    layers: tuple[str, ...]  # diff ids, bottom first
    chain_ids: tuple[str, ...]
    size: int
    created: str  # the config's RFC 3339 "created" ("" when absent)
    parent: str = ""
    manifests: tuple[str, ...] = field(default=())
    last_tag_time: str = ""  # RFC 3339, "" if never tagged (Docker's Metadata.LastTagTime)

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]

    @property
    def top_layer(self) -> str | None:
        return self.chain_ids[-1] if self.chain_ids else None

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.config.get("config") or {}).get("Labels") or {})

    @property
    def created_unix(self) -> int:
        return int(parse_time(self.created)) if self.created else 0


def parse_time(text: str) -> float:
    """RFC 3339 with up to nanoseconds (Go's format) -> Unix seconds."""
    base, frac = text, ""
    tz = "+00:00"
    if text.endswith("Z"):
        base = text[:-1]
    elif len(text) > 6 and text[-6] in "+-" and text[-3] == ":":
        base, tz = text[:-6], text[-6:]
    if "." in base:
        base, frac = base.split(".", 1)
    try:
        dt = datetime.fromisoformat(base + tz)
    except ValueError as exc:
        raise InvalidArgument(f"invalid time {text!r}") from exc
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


@dataclass(frozen=True)
class ImageRecord:
    """What the store caches per image; ``Image`` values are built from it on each call (so
    callers may change an ``Image``'s config dict without touching the cache)."""

    config_raw: bytes
    created: str
    diff_ids: tuple[str, ...]
    parent: str
    manifests: tuple[str, ...]
    chain_ids: tuple[str, ...]
    size: int
    last_tag_time: str = ""


class ImageStore:
    """``ImageStore(root)``; see the package docstring for the layout and the whole API."""

    def __init__(self, root: str, *, driver: str | None = None) -> None:
        self.root = os.path.abspath(root)
        self.tmp_dir = os.path.join(self.root, "tmp")
        os.makedirs(self.tmp_dir, exist_ok=True)
        self._clean_tmp()
        self.blobs = BlobStore(os.path.join(self.root, "blobs"), self.tmp_dir)
        self.layers = LayerStore(self.root, self.tmp_dir)
        self.images_dir = os.path.join(self.root, "images", "sha256")
        self.compressed_dir = os.path.join(self.root, "compressed", "sha256")
        for d in (self.images_dir, self.compressed_dir):
            os.makedirs(d, exist_ok=True)
        self.refs = RefIndex(os.path.join(self.root, "repositories.json"))
        self.lock = threading.RLock()
        self._cache: dict[str, ImageRecord] = {}
        from dockyard.images.rootfs import RootfsManager

        self.rootfs = RootfsManager(self, driver)

    # -- housekeeping ----------------------------------------------------------------------

    def _clean_tmp(self) -> None:
        """Remove what dead writers left in tmp/ (names say who wrote them: tmp_name)."""
        for name in os.listdir(self.tmp_dir):
            if writer_alive(name):
                continue
            p = os.path.join(self.tmp_dir, name)
            if os.path.isdir(p) and not os.path.islink(p):
                remove_tree(p)
            else:
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass

    # -- blobs -----------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        return self.blobs.has_blob(digest)

    def blob_path(self, digest: str) -> str:
        return self.blobs.blob_path(digest)

    def open_blob(self, digest: str) -> BinaryIO:
        return self.blobs.open_blob(digest)

    def write_blob(
        self,
        data: bytes | Iterable[bytes] | BinaryIO,
        expected: str | None = None,
        size: int | None = None,
    ) -> str:
        return self.blobs.write_blob(data, expected, size)

    def blob_writer(self, expected: str | None = None, size: int | None = None) -> BlobWriter:
        return self.blobs.blob_writer(expected, size)

    # -- layers ----------------------------------------------------------------------------

    def has_layer(self, chain_id: str) -> bool:
        return self.layers.has(chain_id)

    def chain_id(self, diff_ids: Iterable[str]) -> str:
        return chain_id_of(diff_ids)

    def layer(self, chain_id: str) -> Layer:
        return self.layers.get(chain_id)

    def apply_layer(
        self,
        parent_chain_id: str | None,
        tar_stream: BinaryIO,
        expected_diff_id: str | None = None,
        *,
        allow_devices: bool = False,
    ) -> tuple[str, str]:
        """Unpack an uncompressed layer tar on top of ``parent_chain_id``.

        Returns ``(chain_id, diff_id)``. Hashes while unpacking; refuses hostile entries
        (InvalidArgument); atomic: on any failure nothing of the layer remains. If the layer
        named by ``expected_diff_id`` is already present the stream is left unread.
        """
        return self.layers.apply(
            parent_chain_id, tar_stream, expected_diff_id, allow_devices=allow_devices
        )

    def remember_compressed(
        self, diff_id: str, blob_digest: str, media_type: str, source: str | None = None
    ) -> None:
        """Record that ``blob_digest`` (``media_type``, seen in repository ``source``) is a
        compressed form of the layer ``diff_id``, so a push can reuse it."""
        path = os.path.join(self.compressed_dir, Digest.parse(diff_id).hex + ".json")
        Digest.parse(blob_digest)
        with self.lock:
            known = self.compressed_for(diff_id)
            entry = {"digest": blob_digest, "media_type": media_type, "source": source}
            known = [k for k in known if not (k["digest"] == blob_digest and k["source"] == source)]
            atomic_write_json(path, [entry, *known], durable=False)

    def compressed_for(self, diff_id: str) -> list[dict[str, Any]]:
        """Known compressed forms of a layer, most recent first:
        ``[{"digest", "media_type", "source"}]``."""
        path = os.path.join(self.compressed_dir, Digest.parse(diff_id).hex + ".json")
        try:
            with open(path, "rb") as f:
                value: list[dict[str, Any]] = json.load(f)
                return value
        except FileNotFoundError:
            return []

    # -- images ----------------------------------------------------------------------------

    def _record_path(self, image_id: str) -> str:
        return os.path.join(self.images_dir, Digest.parse(image_id).hex + ".json")

    def add_image(
        self,
        config: bytes,
        *,
        manifest: bytes | None = None,
        repo_digest: str | Reference | None = None,
        parent: str | None = None,
        tags: Iterable[str | Reference] = (),
    ) -> str:
        """Record an image whose layers are all in the store; returns its id.

        ``config`` is the exact config JSON (the id is its sha256). ``manifest`` (optional)
        is stored as a blob and listed in the record; ``repo_digest`` (``name@sha256:...``)
        is added to the name index, as are ``tags``.
        """
        try:
            doc = json.loads(config)
            diff_ids = list(doc["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(f"invalid image config: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("rootfs", {}).get("type") != "layers":
            raise InvalidArgument("invalid image config: rootfs.type must be \"layers\"")
        chains = []
        for i in range(len(diff_ids)):
            chain = chain_id_of(diff_ids[: i + 1])
            if not self.layers.has(chain):
                raise NotFound(f"layer {diff_ids[i]} (chain {chain}) is not in the store")
            chains.append(chain)
        image_id = self.blobs.write_blob(config)
        with self.lock:
            manifests: list[str] = []
            old = None
            if os.path.exists(self._record_path(image_id)):
                old = self.record(image_id)
                manifests = list(old.manifests)
                parent = parent if parent is not None else old.parent
            if manifest is not None:
                mdigest = self.blobs.write_blob(manifest)
                if mdigest not in manifests:
                    manifests.append(mdigest)
            if parent:
                self.record(parent)  # must exist
            record = {"id": image_id, "parent": parent or "", "manifests": manifests,
                      "last_tag_time": old.last_tag_time if old else ""}
            atomic_write_json(self._record_path(image_id), record)
            self._cache.pop(image_id, None)
            if repo_digest is not None:
                ref = repo_digest if isinstance(repo_digest, Reference) else parse_reference(repo_digest)
                if ref.digest is None:
                    raise InvalidArgument(f"repo digest {ref} has no digest")
                self.refs.add(Reference(ref.domain, ref.path, None, ref.digest), image_id)
            for tag in tags:
                self.tag(image_id, tag)
        return image_id

    def record(self, image_id: str) -> ImageRecord:
        """The cached record of an image (raises ImageNotFound)."""
        rec = self._cache.get(image_id)
        if rec is not None:
            return rec
        try:
            with open(self._record_path(image_id), "rb") as f:
                meta = json.load(f)
            raw = self.blobs.read_blob(image_id)
        except (FileNotFoundError, NotFound):
            raise ImageNotFound(image_id) from None
        config = json.loads(raw)
        diff_ids = tuple(config.get("rootfs", {}).get("diff_ids", []))
        chains = tuple(chain_id_of(diff_ids[: i + 1]) for i in range(len(diff_ids)))
        size = 0
        for chain in chains:
            try:
                size += self.layers.get(chain).size
            except NotFound:
                pass
        rec = ImageRecord(
            raw, str(config.get("created") or ""), diff_ids, meta.get("parent", ""),
            tuple(meta.get("manifests", [])), chains, size, meta.get("last_tag_time", ""),
        )
        self._cache[image_id] = rec
        return rec

    def _image(self, image_id: str, refs: Sequence[Reference] | None = None) -> Image:
        rec = self.record(image_id)
        if refs is None:
            refs = self.refs.refs_of(image_id)
        return Image(
            id=image_id,
            config=json.loads(rec.config_raw),
            repo_tags=tuple(r.familiar() for r in refs if r.digest is None),
            repo_digests=tuple(r.familiar() for r in refs if r.digest is not None),
            layers=rec.diff_ids,
            chain_ids=rec.chain_ids,
            size=rec.size,
            created=rec.created,
            parent=rec.parent,
            manifests=rec.manifests,
            last_tag_time=rec.last_tag_time,
        )

    def image_ids(self) -> list[str]:
        return [
            "sha256:" + name[:-5]
            for name in sorted(os.listdir(self.images_dir))
            if name.endswith(".json") and len(name) == 69
        ]

    def records(self) -> dict[str, ImageRecord]:
        """Every readable image record by id; a broken one (config blob lost) is left out here
        and reported by :meth:`check`, so one bad image never breaks listing or removal."""
        out = {}
        for image_id in self.image_ids():
            try:
                out[image_id] = self.record(image_id)
            except ImageNotFound:
                continue
        return out

    def get(self, image_id: str) -> Image:
        return self._image(image_id)

    def resolve(self, name_or_id: str) -> Image:
        """A reference (``busybox``, ``busybox:1``, ``x@sha256:...``), a full id
        (``sha256:<hex>`` or ``<hex>``) or a unique id prefix -> the image.

        Names are tried before id prefixes, as Docker's GetImage does.
        """
        text = name_or_id
        if Digest.is_valid(text):
            return self._image(text)
        if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
            return self._image("sha256:" + text)
        try:
            ref = parse_reference(text).with_default_tag()
        except InvalidArgument:
            ref = None
        if ref is not None:
            found = self.refs.get(ref)
            if found is not None:
                return self._image(found)
        prefix = text[7:] if text.startswith("sha256:") else text
        if prefix and all(c in "0123456789abcdef" for c in prefix):
            matches = [i for i in self.image_ids() if i[7:].startswith(prefix)]
            if len(matches) == 1:
                return self._image(matches[0])
        raise ImageNotFound(name_or_id)

    def tag(self, image_id: str, ref: str | Reference) -> None:
        """Point ``ref`` (``latest`` when no tag) at the image, moving it if it pointed elsewhere."""
        r = ref if isinstance(ref, Reference) else parse_reference(ref)
        if r.digest is not None:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        with self.lock:
            rec = self.record(image_id)
            self.refs.add(r.with_default_tag(), image_id)
            # Docker's Metadata.LastTagTime
            record = {"id": image_id, "parent": rec.parent, "manifests": list(rec.manifests),
                      "last_tag_time": now_rfc3339()}
            atomic_write_json(self._record_path(image_id), record)
            self._cache.pop(image_id, None)

    def untag(self, ref: str | Reference) -> str:
        """Remove one tag or digest reference; returns the image id it pointed at."""
        r = ref if isinstance(ref, Reference) else parse_reference(ref)
        if r.digest is None:
            r = r.with_default_tag()
        image_id = self.refs.remove(r)
        if image_id is None:
            raise ImageNotFound(r.familiar())
        return image_id

    def children(self, image_id: str) -> list[str]:
        return [i for i, rec in self.records().items() if rec.parent == image_id]

    def list(
        self,
        *,
        all: bool = True,
        dangling: bool | None = None,
        reference: Sequence[str] = (),
        label: Sequence[str] = (),
        before: str | None = None,
        since: str | None = None,
    ) -> builtins.list[Image]:
        """Images, newest first, filtered as ``GET /images/json`` filters them.

        ``all=False`` hides untagged images that have children (intermediate images).
        With ``reference`` patterns, images keep only the names that match.
        """
        index = self.refs.all()
        records = self.records()
        ids = list(records)
        parents = {rec.parent for rec in records.values()}
        before_t = self.resolve(before).created_unix if before else None
        since_t = self.resolve(since).created_unix if since else None
        out = []
        for image_id in ids:
            refs = index.get(image_id, [])
            if reference:
                refs = [r for r in refs if any(familiar_match(p, r) for p in reference)]
                if not refs:
                    continue
            img = self._image(image_id, refs)
            if not img.repo_tags and not img.repo_digests and not all and image_id in parents:
                continue
            if dangling is True and img.repo_tags:
                continue
            if dangling is False and not img.repo_tags:
                continue
            if label and not labels_match(img.labels, label):
                continue
            if before_t is not None and img.created_unix >= before_t:
                continue
            if since_t is not None and img.created_unix <= since_t:
                continue
            out.append(img)
        out.sort(key=lambda i: (i.created_unix, i.id), reverse=True)
        return out

    def history(self, name_or_id: str) -> builtins.list[dict[str, Any]]:
        """``docker history`` rows, newest first: id ("<missing>" beyond the local parent
        chain), created (Unix seconds), created_by, tags, size, comment."""
        img = self.resolve(name_or_id)
        rows: builtins.list[dict[str, Any]] = []
        layer_index = 0
        entries = img.config.get("history") or []
        for h in entries:
            size = 0
            if not h.get("empty_layer"):
                if layer_index < len(img.chain_ids):
                    try:
                        size = self.layers.get(img.chain_ids[layer_index]).size
                    except NotFound:
                        size = 0
                layer_index += 1
            rows.append(
                {
                    "id": "<missing>",
                    "created": int(parse_time(h["created"])) if h.get("created") else 0,
                    "created_by": h.get("created_by", ""),
                    "tags": [],
                    "size": size,
                    "comment": h.get("comment", ""),
                }
            )
        rows.reverse()
        current: Image | None = img
        for row in rows:
            if current is None:
                break
            row["id"] = current.id
            row["tags"] = list(current.repo_tags)
            current = self.get(current.parent) if current.parent else None
        return rows

    # -- removal ---------------------------------------------------------------------------

    def disk_usage(self) -> tuple[int, dict[str, int]]:
        """For ``/system/df``: (LayersSize: every layer once, {image id: SharedSize}) where an
        image's shared size counts its layers that other images use too."""
        users: dict[str, int] = {}
        records = self.records()
        for rec in records.values():
            for chain in rec.chain_ids:
                users[chain] = users.get(chain, 0) + 1
        sizes = {c: self.layers.get(c).size for c in self.layers.list() if self.layers.has(c)}
        shared = {
            i: sum(sizes.get(c, 0) for c in rec.chain_ids if users[c] > 1) for i, rec in records.items()
        }
        return sum(sizes.values()), shared

    def check(self, *, deep: bool = False) -> builtins.list[str]:
        """Consistency problems, one line each (empty: consistent). Every image's config blob
        must hash to its id and all its layers be present, every name point at an image,
        every container filesystem's layers be present; ``deep`` also rebuilds every
        layer's tar and checks it against the diff id (reads every byte)."""
        problems: builtins.list[str] = []
        for image_id in self.image_ids():
            try:
                raw = self.blobs.read_blob(image_id)
            except NotFound:
                problems.append(f"image {image_id}: config blob missing")
                continue
            if "sha256:" + hashlib.sha256(raw).hexdigest() != image_id:
                problems.append(f"image {image_id}: config blob does not match its digest")
            for chain in self.record(image_id).chain_ids:
                if not self.layers.has(chain):
                    problems.append(f"image {image_id}: layer {chain} missing")
        ids = set(self.image_ids())
        for image_id, refs in self.refs.all().items():
            if image_id not in ids:
                problems.extend(f"name {r.familiar()}: image {image_id} missing" for r in refs)
        for chain in self.rootfs.chains_in_use():
            if not self.layers.has(chain):
                problems.append(f"container filesystem layer {chain} missing")
        for chain in self.layers.list() if deep else ():
            if not self.layers.has(chain):
                continue
            h = hashlib.sha256()
            try:
                for chunk in self.layers.iter_tar(chain):
                    h.update(chunk)
            except (OSError, Internal) as exc:
                problems.append(f"layer {chain}: cannot rebuild its tar: {exc}")
                continue
            if "sha256:" + h.hexdigest() != self.layers.get(chain).diff_id:
                problems.append(f"layer {chain}: contents do not match its diff id")
        return problems

    def layers_in_use(self) -> set[str]:
        used: set[str] = set()
        for rec in self.records().values():
            used.update(rec.chain_ids)
        for top in self.rootfs.chains_in_use():
            chain: str | None = top
            while chain is not None and chain not in used:
                used.add(chain)
                chain = self.layers.get(chain).parent if self.layers.has(chain) else None
        return used

    def remove(
        self,
        name_or_id: str,
        *,
        force: bool = False,
        noprune: bool = False,
        users: ContainerUse = _no_users,
    ) -> builtins.list[dict[str, str]]:
        """``docker rmi`` with Docker's conflict rules (see :func:`removal.remove`)."""
        from dockyard.images import removal

        return removal.remove(self, name_or_id, force=force, noprune=noprune, users=users)

    def prune(
        self,
        *,
        all: bool = False,
        users: ContainerUse = _no_users,
        label: Sequence[str] = (),
        until: float | None = None,
    ) -> tuple[builtins.list[dict[str, str]], int]:
        """``docker image prune`` (see :func:`removal.prune`): (records, bytes reclaimed)."""
        from dockyard.images import removal

        return removal.prune(self, all=all, users=users, label=label, until=until)

    def gc(self, grace: float = GC_GRACE) -> int:
        """Unreferenced layers and blobs older than ``grace`` s (see :func:`removal.gc`)."""
        from dockyard.images import removal

        return removal.gc(self, grace)

    # -- containers' root filesystems (rootfs.py) -----------------------------------------

    def prepare_rootfs(self, container_id: str, image_id: str | None) -> Any:
        return self.rootfs.prepare(container_id, image_id)

    def mount_rootfs(self, container_id: str) -> str:
        return self.rootfs.mount(container_id)

    def unmount_rootfs(self, container_id: str) -> None:
        self.rootfs.unmount(container_id)

    def remove_rootfs(self, container_id: str) -> None:
        self.rootfs.remove(container_id)

    def rootfs_size(self, container_id: str) -> tuple[int, int]:
        """``(size_rw, size_root_fs)`` of a container's filesystem (``docker ps -s``)."""
        return self.rootfs.size(container_id)

    def changes(self, container_id: str) -> builtins.list[tuple[str, str]]:
        return self.rootfs.changes(container_id)

    def commit(
        self,
        container_id: str,
        config: dict[str, Any] | None = None,
        *,
        ref: str | None = None,
        author: str = "",
        comment: str = "",
        created_by: str = "",
    ) -> str:
        return self.rootfs.commit(
            container_id, config, ref=ref, author=author, comment=comment, created_by=created_by
        )

    def export_rootfs(self, container_id: str, out: BinaryIO) -> None:
        self.rootfs.export(container_id, out)

    # -- archives (archive.py) -------------------------------------------------------------

    def layer_tar(self, chain_id: str) -> Iterator[bytes]:
        """The exact tar of one layer (sha256 of the bytes = its diff id), for push/save."""
        return self.layers.iter_tar(chain_id)

    def write_layer_tar(self, chain_id: str, out: BinaryIO) -> int:
        """Write the exact tar of one layer to ``out``; returns its size. Raises Internal if
        the bytes no longer hash to the layer's diff id (store corruption)."""
        h = hashlib.sha256()
        size = 0
        for chunk in self.layers.iter_tar(chain_id):
            h.update(chunk)
            out.write(chunk)
            size += len(chunk)
        if "sha256:" + h.hexdigest() != self.layers.get(chain_id).diff_id:
            raise Internal(f"layer {chain_id} is corrupt in the store")
        return size

    def save(self, names: Sequence[str], out: BinaryIO) -> None:
        """``docker save``: docker-archive of ``names`` (references or ids)."""
        from dockyard.images.archive import save

        save(self, names, out)

    def load(self, tar: BinaryIO) -> builtins.list[str]:
        """``docker load`` (docker-archive or OCI layout): familiar tags, or ids if untagged."""
        from dockyard.images.archive import load

        return load(self, tar)

    def import_tar(
        self,
        stream: BinaryIO,
        *,
        ref: str | None = None,
        config: dict[str, Any] | None = None,
        comment: str | None = None,
        source: str = "-",
    ) -> str:
        """``docker import``: a rootfs tarball (plain, gzip, zstd, bzip2 or xz) -> a one-layer
        image; ``config`` is the image config's "config" (Cmd, Env, ...) from ``--change``."""
        from dockyard.images.archive import import_tar

        return import_tar(self, stream, ref=ref, config=config, comment=comment, source=source)

    def config_bytes(self, image_id: str) -> bytes:
        return self.blobs.read_blob(image_id)


def labels_match(labels: dict[str, str], wanted: Sequence[str]) -> bool:
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True
