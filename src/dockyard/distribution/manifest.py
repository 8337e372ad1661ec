"""Manifests and indexes as a registry serves them: parsed, validated, platform-selected.

Four shapes are accepted (media type from the body's ``mediaType``, else the Content-Type)::

    Docker schema 2 manifest / OCI manifest   {config: desc, layers: [desc, ...]}
    Docker manifest list     / OCI index      {manifests: [desc + platform, ...]}

A descriptor is {mediaType, digest, size[, urls, platform, annotations]}. Everything a
registry says is untrusted: digests are validated before they can reach a path, sizes must
be non-negative integers, media types must be ones we can unpack.
"""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument, NotFound, Unsupported
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest

__all__ = [
    "ACCEPT",
    "Descriptor",
    "Index",
    "Manifest",
    "Platform",
    "parse_manifest",
    "select_platform",
]

ACCEPT = ", ".join((mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST, mt.OCI_INDEX))
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
MAX_MANIFEST_SIZE = 4 << 20  # distribution's own limit
CONFIG_TYPES = frozenset({mt.DOCKER_CONFIG, mt.OCI_CONFIG})


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    platform: dict[str, Any] | None = None

    @property
    def short_id(self) -> str:
        return self.digest.partition(":")[2][:12]


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes
    digest: str


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes
    digest: str


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``os[/arch[/variant]]`` as ``--platform`` takes it (``linux/arm64/v8``)."""
        parts = text.strip().lower().split("/")
        if not parts[0] or len(parts) > 3 or not all(parts):
            raise InvalidArgument(f'"{text}": unknown operating system or architecture: invalid argument')
        host = cls.host()
        os_name = parts[0]
        arch = _normalise_arch(parts[1]) if len(parts) > 1 else host.architecture
        variant = parts[2] if len(parts) > 2 else ""
        return cls(os_name, arch, variant)

    @classmethod
    def host(cls) -> Platform:
        machine = _platform.machine().lower()
        arch = _normalise_arch(machine)
        variant = {"arm": "v7", "arm64": "v8"}.get(arch, "")
        return cls("linux", arch, variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def _normalise_arch(arch: str) -> str:
    return {
        "x86_64": "amd64",
        "x86-64": "amd64",
        "aarch64": "arm64",
        "armhf": "arm",
        "armel": "arm",
        "i386": "386",
        "i686": "386",
    }.get(arch, arch)


def parse_manifest(raw: bytes, content_type: str, digest: str) -> Manifest | Index:
    """Parse a manifest or index body whose digest the caller has verified."""
    if len(raw) > MAX_MANIFEST_SIZE:
        raise InvalidArgument(f"manifest {digest} is too large ({len(raw)} bytes)")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"malformed manifest {digest}: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidArgument(f"malformed manifest {digest}: not a JSON object")
    media_type = body.get("mediaType") or content_type.split(";")[0].strip()
    if body.get("schemaVersion") == 1 or media_type in SCHEMA1:
        raise Unsupported(
            "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support "
            "has been removed"
        )
    if media_type not in mt.MANIFEST_TYPES | mt.INDEX_TYPES:
        # OCI allows mediaType to be absent: decide by shape
        if "manifests" in body:
            media_type = mt.OCI_INDEX
        elif "config" in body and "layers" in body:
            media_type = mt.OCI_MANIFEST
        else:
            raise InvalidArgument(f"unsupported manifest media type {media_type or 'none'!r}")
    if body.get("schemaVersion") != 2:
        raise InvalidArgument(f"malformed manifest {digest}: schemaVersion must be 2")
    if media_type in mt.INDEX_TYPES:
        entries = body.get("manifests")
        if not isinstance(entries, list):
            raise InvalidArgument(f"malformed manifest list {digest}: no manifests")
        return Index(media_type, tuple(_descriptor(e, digest) for e in entries), raw, digest)
    config = _descriptor(body.get("config"), digest)
    if config.media_type not in CONFIG_TYPES:
        raise Unsupported(
            f"Encountered remote {config.media_type!r}(unknown) when fetching: not a container image"
        )
    layers_raw = body.get("layers")
    if not isinstance(layers_raw, list):
        raise InvalidArgument(f"malformed manifest {digest}: no layers")
    layers = tuple(_descriptor(layer, digest) for layer in layers_raw)
    for layer in layers:
        if layer.media_type not in mt.LAYER_TYPES:
            raise Unsupported(f"unsupported layer media type {layer.media_type!r} in {digest}")
    return Manifest(media_type, config, layers, raw, digest)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise InvalidArgument(f"malformed manifest {where}: descriptor is not an object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise InvalidArgument(f"malformed manifest {where}: descriptor without mediaType")
    if not isinstance(digest, str) or not Digest.is_valid(digest):
        raise InvalidArgument(f"malformed manifest {where}: invalid digest {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArgument(f"malformed manifest {where}: invalid size {size!r} for {digest}")
    urls = value.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise InvalidArgument(f"malformed manifest {where}: invalid urls for {digest}")
    plat = value.get("platform")
    return Descriptor(
        media_type, digest, size, tuple(urls), plat if isinstance(plat, dict) else None
    )


def select_platform(index: Index, want: Platform) -> Descriptor:
    """The manifest in ``index`` for ``want`` (Docker's platforms.Only matcher, simplified)."""
    best: Descriptor | None = None
    best_score = -1
    for desc in index.manifests:
        if desc.media_type not in mt.MANIFEST_TYPES or desc.platform is None:
            continue
        os_name = str(desc.platform.get("os", "")).lower()
        arch = _normalise_arch(str(desc.platform.get("architecture", "")).lower())
        variant = str(desc.platform.get("variant", "")).lower()
        if os_name != want.os or arch != want.architecture:
            continue
        score = _variant_score(want, variant)
        if score > best_score:
            best, best_score = desc, score
    if best is None:
        raise NotFound(f"no matching manifest for {want} in the manifest list entries")
    return best


def _variant_score(want: Platform, variant: str) -> int:
    if variant == want.variant:
        return 3
    if not variant or not want.variant:
        # arm64 images rarely say "v8"; a variant-less entry fits any variant
        return 2
    if want.architecture == "arm" and variant[:1] == "v" and want.variant[:1] == "v":
        try:
            # an armv7 host runs v6 and v5 images too (compatible, lower preference)
            if int(variant[1:]) < int(want.variant[1:]):
                return 1
        except ValueError:
            return -1
    return -1
