"""The registry's content model over a :class:`~dockyard.registry.storage.StorageDriver`.

Layout (driver paths; content is stored once by digest, repositories only *link* to it, and
uploads live apart until they are verified and published with one rename)::

    /blobs/<alg>/<hex[:2]>/<hex>/data                   every blob and manifest, once
    /repositories/<name>/                               <name> may nest: library/busybox
        _layers/<alg>/<hex>/link                        "sha256:..." blob usable by this repo
        _manifests/revisions/<alg>/<hex>/link           manifest pushed to this repo
        _manifests/tags/<tag>/current/link              tag -> manifest digest
        _referrers/<alg>/<subject-hex>/<alg>/<hex>/link manifest whose "subject" is <subject>
    /uploads/<uuid>/data                                bytes received so far (append only)
    /uploads/<uuid>/info                                {"repo": name, "started": unix time}

Repository components never start with "_", so the underscore directories cannot collide with
nested repository names. Every record is written atomically (temp + rename); a blob appears
under /blobs only after its digest was verified, so a crash mid-upload leaves at most an
orphaned /uploads entry, which garbage collection purges.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import NotFound
from dockyard.oci import mediatypes
from dockyard.oci.digest import Digest, Digester
from dockyard.registry.apierrors import RegistryError
from dockyard.registry.content import (
    MAX_MANIFEST_SIZE,
    media_type_of,
    parse_digest,
    parse_manifest,
    references,
    subject_of,
    validate_tag,
)
from dockyard.registry.storage import StorageDriver

__all__ = ["GcReport", "Manifest", "Store", "Upload"]

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HASH_CHUNK = 1 << 20
_DESCRIPTION = "org.opencontainers.image.description"


@dataclass(frozen=True)
class Manifest:
    digest: Digest
    media_type: str
    data: bytes


@dataclass(frozen=True)
class Upload:
    uuid: str
    repo: str
    size: int
    started: float


@dataclass
class GcReport:
    marked: set[str] = field(default_factory=set)
    deleted_blobs: list[tuple[str, int]] = field(default_factory=list)
    deleted_manifests: list[str] = field(default_factory=list)
    kept_recent: list[str] = field(default_factory=list)
    deleted_uploads: list[str] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(size for _, size in self.deleted_blobs)


def _blob_path(d: Digest) -> str:
    return f"/blobs/{d.algorithm}/{d.hex[:2]}/{d.hex}/data"


def _repo(name: str) -> str:
    return f"/repositories/{name}"


def _layer_link(name: str, d: Digest) -> str:
    return f"{_repo(name)}/_layers/{d.algorithm}/{d.hex}/link"


def _revision_link(name: str, d: Digest) -> str:
    return f"{_repo(name)}/_manifests/revisions/{d.algorithm}/{d.hex}/link"


def _tag_dir(name: str, tag: str) -> str:
    return f"{_repo(name)}/_manifests/tags/{tag}"


def _referrer_dir(name: str, subject: Digest) -> str:
    return f"{_repo(name)}/_referrers/{subject.algorithm}/{subject.hex}"


class Store:
    """Repositories, blobs, manifests and uploads; every method is synchronous and short."""

    def __init__(self, driver: StorageDriver, *, touch_after: float = 600.0) -> None:
        self.driver = driver
        # blobs older than this are touched when a push probes or references them (see gc)
        self.touch_after = touch_after

    # -- blobs -------------------------------------------------------------------------

    def blob_size(self, d: Digest) -> int | None:
        info = self.driver.stat(_blob_path(d))
        return None if info is None else info.size

    def blob_path(self, d: Digest) -> str:
        return _blob_path(d)

    def repo_blob_size(self, name: str, d: Digest, *, touch: bool = False) -> int:
        """Size of a blob this repository may serve; BLOB_UNKNOWN otherwise."""
        if self.driver.stat(_layer_link(name, d)) is None:
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": str(d)})
        info = self.driver.stat(_blob_path(d))
        if info is None:
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": str(d)})
        if touch and time.time() - info.mtime > self.touch_after:
            self.driver.touch(_blob_path(d))
        return info.size

    def link_blob(self, name: str, d: Digest) -> None:
        self.driver.touch(_blob_path(d))
        self.driver.write(_layer_link(name, d), str(d).encode())

    def unlink_blob(self, name: str, d: Digest) -> None:
        if self.driver.stat(_layer_link(name, d)) is None:
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": str(d)})
        self.driver.delete(f"{_repo(name)}/_layers/{d.algorithm}/{d.hex}")

    def mount_blob(self, name: str, d: Digest, source: str) -> bool:
        try:
            self.repo_blob_size(source, d)
        except RegistryError:
            return False
        self.link_blob(name, d)
        return True

    # -- uploads -----------------------------------------------------------------------

    def start_upload(self, name: str) -> Upload:
        ident = str(uuid.uuid4())
        now = time.time()
        self.driver.write(f"/uploads/{ident}/info", json.dumps({"repo": name, "started": now}).encode())
        self.driver.append_writer(f"/uploads/{ident}/data").close()
        return Upload(ident, name, 0, now)

    def upload(self, name: str, ident: str) -> Upload:
        if not _UUID_RE.match(ident):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": ident[:64]})
        try:
            info = json.loads(self.driver.read(f"/uploads/{ident}/info"))
        except (NotFound, ValueError) as exc:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": ident}) from exc
        data = self.driver.stat(f"/uploads/{ident}/data")
        if info.get("repo") != name or data is None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": ident})
        return Upload(ident, name, data.size, float(info.get("started", 0)))

    def upload_data_path(self, ident: str) -> str:
        return f"/uploads/{ident}/data"

    def cancel_upload(self, ident: str) -> None:
        self.driver.delete(f"/uploads/{ident}")

    def commit_upload(self, up: Upload, expected: Digest, computed: Digest | None = None) -> int:
        """Verify the upload against ``expected`` and publish it; returns the blob size.

        ``computed`` is the digest hashed while the bytes streamed in; without it the data is
        hashed again from storage (another process received the chunks, or a restart).
        """
        data_path = f"/uploads/{up.uuid}/data"
        if computed is None or computed.algorithm != expected.algorithm:
            hasher = Digester(expected.algorithm)
            with self.driver.open_read(data_path) as f:
                while chunk := f.read(_HASH_CHUNK):
                    hasher.update(chunk)
            computed = hasher.digest()
        if computed != expected:
            self.cancel_upload(up.uuid)
            raise RegistryError("DIGEST_INVALID", detail={"digest": str(expected)})
        info = self.driver.stat(data_path)
        size = info.size if info else 0
        if self.blob_size(expected) is None:
            self.driver.move(data_path, _blob_path(expected))
        self.cancel_upload(up.uuid)
        self.link_blob(up.repo, expected)
        return size

    def uploads(self) -> Iterator[tuple[str, float]]:
        for ident in self.driver.list("/uploads"):
            info = self.driver.stat(f"/uploads/{ident}/data") or self.driver.stat(f"/uploads/{ident}")
            yield ident, info.mtime if info else 0.0

    # -- manifests ---------------------------------------------------------------------

    def resolve(self, name: str, reference: str) -> Digest:
        if ":" in reference:
            d = parse_digest(reference)
            if self.driver.stat(_revision_link(name, d)) is None:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": reference})
            return d
        validate_tag(reference)
        try:
            text = self.driver.read(f"{_tag_dir(name, reference)}/current/link").decode()
        except NotFound as exc:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": reference}) from exc
        return Digest.parse(text)

    def get_manifest(self, name: str, reference: str) -> Manifest:
        d = self.resolve(name, reference)
        try:
            data = self.driver.read(_blob_path(d))
        except NotFound as exc:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": str(d)}) from exc
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = {}
        return Manifest(d, media_type_of(parsed if isinstance(parsed, dict) else {}, None), data)

    def put_manifest(
        self, name: str, reference: str, data: bytes, content_type: str | None,
        *, check_references: bool = True,
    ) -> tuple[Digest, Digest | None]:
        """Validate and store a manifest; returns its digest and its subject, if any."""
        is_digest = ":" in reference
        expected = parse_digest(reference) if is_digest else None
        if not is_digest:
            validate_tag(reference)
        if len(data) > MAX_MANIFEST_SIZE:
            raise RegistryError("MANIFEST_INVALID", "manifest too large", status=413,
                                detail={"size": len(data), "limit": MAX_MANIFEST_SIZE})
        parsed = parse_manifest(data, content_type)
        if check_references:
            self._checkreferences(name, parsed)
        algorithm = expected.algorithm if expected else "sha256"
        d = Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
        if expected is not None and d != expected:
            raise RegistryError("DIGEST_INVALID", detail={"digest": reference})
        if self.blob_size(d) is None:
            self.driver.write(_blob_path(d), data)
        else:
            self.driver.touch(_blob_path(d))
        subject = subject_of(parsed)
        if subject is not None:
            self.driver.write(f"{_referrer_dir(name, subject)}/{d.algorithm}/{d.hex}/link",
                              str(d).encode())
        self.driver.write(_revision_link(name, d), str(d).encode())
        if not is_digest:
            self.driver.write(f"{_tag_dir(name, reference)}/current/link", str(d).encode())
        return d, subject

    def _checkreferences(self, name: str, parsed: dict[str, Any]) -> None:
        for desc in references(parsed):
            d = parse_digest(str(desc.get("digest", "")), "MANIFEST_INVALID")
            if desc["_kind"] == "manifest":
                if self.driver.stat(_revision_link(name, d)) is None:
                    raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": str(d)})
                continue
            if desc.get("mediaType") in mediatypes.NON_DISTRIBUTABLE and desc.get("urls"):
                continue
            size = self.repo_blob_size(name, d, touch=True) if self.is_linked(name, d) else None
            if size is None:
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": str(d)})
            if desc.get("size") != size:
                raise RegistryError("MANIFEST_INVALID", "descriptor size does not match blob",
                                    detail={"digest": str(d), "size": desc.get("size")})

    def is_linked(self, name: str, d: Digest) -> bool:
        return (self.driver.stat(_layer_link(name, d)) is not None
                and self.blob_size(d) is not None)

    def delete_manifest(self, name: str, reference: str) -> None:
        if ":" not in reference:  # DELETE by tag removes the tag only
            validate_tag(reference)
            if self.driver.stat(f"{_tag_dir(name, reference)}/current/link") is None:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": reference})
            self.driver.delete(_tag_dir(name, reference))
            return
        d = self.resolve(name, reference)
        for tag in self.tags(name):
            if self._tag_target(name, tag) == d:
                self.driver.delete(_tag_dir(name, tag))
        try:
            subject = subject_of(json.loads(self.driver.read(_blob_path(d))))
        except (NotFound, ValueError, RegistryError):
            subject = None
        if subject is not None:
            self.driver.delete(f"{_referrer_dir(name, subject)}/{d.algorithm}/{d.hex}")
        self.driver.delete(f"{_repo(name)}/_manifests/revisions/{d.algorithm}/{d.hex}")

    def _tag_target(self, name: str, tag: str) -> Digest | None:
        try:
            return Digest.parse(self.driver.read(f"{_tag_dir(name, tag)}/current/link").decode())
        except (NotFound, ValueError):
            return None

    def referrers(self, name: str, subject: Digest, artifact_type: str | None) -> list[dict[str, Any]]:
        out = []
        base = _referrer_dir(name, subject)
        for alg in self.driver.list(base):
            for hex_ in self.driver.list(f"{base}/{alg}"):
                d = Digest(alg, hex_)
                if self.driver.stat(_revision_link(name, d)) is None:
                    continue
                try:
                    data = self.driver.read(_blob_path(d))
                    parsed = json.loads(data)
                except (NotFound, ValueError):
                    continue
                art = parsed.get("artifactType") or (parsed.get("config") or {}).get("mediaType")
                if artifact_type and art != artifact_type:
                    continue
                desc: dict[str, Any] = {"mediaType": media_type_of(parsed, None),
                                        "digest": str(d), "size": len(data)}
                if art:
                    desc["artifactType"] = art
                if parsed.get("annotations"):
                    desc["annotations"] = parsed["annotations"]
                out.append(desc)
        return out

    # -- listing -----------------------------------------------------------------------

    def description(self, name: str) -> str:
        """What search shows: the ``org.opencontainers.image.description`` of the ``latest``
        (else the last) tag, from the manifest's annotations or the image config's labels."""
        tags = self.tags(name)
        if not tags:
            return ""
        try:
            manifest = json.loads(self.get_manifest(name, "latest" if "latest" in tags
                                                    else tags[-1]).data)
            text = (manifest.get("annotations") or {}).get(_DESCRIPTION)
            config = manifest.get("config") or {}
            if not text and Digest.is_valid(str(config.get("digest"))) \
                    and int(config.get("size", 0)) <= MAX_MANIFEST_SIZE:
                image = json.loads(self.read_blob(Digest.parse(config["digest"])))
                text = ((image.get("config") or {}).get("Labels") or {}).get(_DESCRIPTION)
        except (RegistryError, NotFound, ValueError, AttributeError, TypeError):
            return ""
        return str(text or "")[:300]

    def repo_exists(self, name: str) -> bool:
        return any(c.startswith("_") for c in self.driver.list(_repo(name)))

    def tags(self, name: str) -> list[str]:
        base = f"{_repo(name)}/_manifests/tags"
        return sorted(t for t in self.driver.list(base)
                      if self.driver.stat(f"{base}/{t}/current/link") is not None)

    def tag_targets(self, name: str) -> set[Digest]:
        return {d for tag in self.tags(name) if (d := self._tag_target(name, tag)) is not None}

    def revision_mtime(self, name: str, d: Digest) -> float:
        info = self.driver.stat(_revision_link(name, d))
        return info.mtime if info else 0.0

    def revisions(self, name: str) -> list[Digest]:
        base = f"{_repo(name)}/_manifests/revisions"
        return [Digest(alg, h) for alg in self.driver.list(base)
                for h in self.driver.list(f"{base}/{alg}")]

    def catalog(self) -> list[str]:
        found: list[str] = []
        self._walk("", found)
        return sorted(found)

    def _walk(self, prefix: str, found: list[str]) -> None:
        children = self.driver.list(_repo(prefix) if prefix else "/repositories")
        if prefix and any(c.startswith("_") for c in children):
            found.append(prefix)
        for child in children:
            if not child.startswith("_") and not child.startswith("."):
                self._walk(f"{prefix}/{child}" if prefix else child, found)

    def layer_links(self, name: str) -> list[Digest]:
        base = f"{_repo(name)}/_layers"
        return [Digest(alg, h) for alg in self.driver.list(base)
                for h in self.driver.list(f"{base}/{alg}")]

    def all_blobs(self) -> Iterator[Digest]:
        for alg in self.driver.list("/blobs"):
            for prefix in self.driver.list(f"/blobs/{alg}"):
                for hex_ in self.driver.list(f"/blobs/{alg}/{prefix}"):
                    if Digest.is_valid(f"{alg}:{hex_}"):
                        yield Digest(alg, hex_)

    def read_blob(self, d: Digest) -> bytes:
        return self.driver.read(_blob_path(d))

    def delete_blob(self, d: Digest) -> None:
        self.driver.delete(f"/blobs/{d.algorithm}/{d.hex[:2]}/{d.hex}")


