"""Pure rules for what clients send: names, tags, digests and manifests (no I/O).

A manifest is accepted when it is a JSON object with ``schemaVersion`` 2, its ``mediaType``
(if any) agrees with the request's Content-Type, it has the shape of its kind (``config`` +
``layers``, or ``manifests``), every descriptor has a valid digest and a non-negative size,
and its ``subject`` (if any) names a valid digest. Which blobs it needs is for the store.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dockyard.oci import mediatypes
from dockyard.oci.digest import Digest
from dockyard.registry.apierrors import RegistryError

__all__ = [
    "MAX_MANIFEST_SIZE",
    "manifest_children",
    "manifest_subject",
    "media_type_of",
    "parse_digest",
    "parse_manifest",
    "references",
    "subject_of",
    "validate_name",
    "validate_tag",
]

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
NAME_MAX = 255
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")


def validate_name(name: str) -> str:
    if len(name) > NAME_MAX or not _NAME_RE.match(name):
        raise RegistryError("NAME_INVALID", detail={"name": name[:NAME_MAX + 1]})
    return name


def validate_tag(tag: str) -> str:
    if not _TAG_RE.match(tag):
        raise RegistryError("TAG_INVALID", detail={"tag": tag[:200]})
    return tag


def parse_digest(text: str, code: str = "DIGEST_INVALID") -> Digest:
    if not Digest.is_valid(text):
        raise RegistryError(code, detail={"digest": text[:200]})
    return Digest.parse(text)


def media_type_of(data: dict[str, Any], content_type: str | None) -> str:
    """The manifest's media type: its own field, else the request's, else by shape."""
    declared = data.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if content_type in mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES:
        return content_type
    return mediatypes.OCI_INDEX if "manifests" in data else mediatypes.OCI_MANIFEST



def parse_manifest(data: bytes, content_type: str | None) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError("MANIFEST_INVALID", detail={"reason": f"invalid json: {exc}"}) from exc
    if not isinstance(parsed, dict):
        raise RegistryError("MANIFEST_INVALID", detail={"reason": "not a json object"})
    if parsed.get("schemaVersion") != 2:
        raise RegistryError("MANIFEST_INVALID", detail={"reason": "schemaVersion must be 2"})
    declared = parsed.get("mediaType")
    known = mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES
    if declared is not None and content_type in known and declared != content_type:
        raise RegistryError("MANIFEST_INVALID",
                            detail={"reason": "mediaType does not match Content-Type"})
    kind = media_type_of(parsed, content_type)
    if kind in mediatypes.INDEX_TYPES:
        if not isinstance(parsed.get("manifests"), list):
            raise RegistryError("MANIFEST_INVALID", detail={"reason": "manifests must be a list"})
    elif kind in mediatypes.MANIFEST_TYPES:
        if not isinstance(parsed.get("config"), dict) or not isinstance(parsed.get("layers"), list):
            raise RegistryError("MANIFEST_INVALID", detail={"reason": "config and layers required"})
    else:
        raise RegistryError("MANIFEST_INVALID", detail={"reason": f"unsupported mediaType {kind}"})
    for desc in references(parsed):
        if not isinstance(desc.get("size"), int) or desc["size"] < 0:
            raise RegistryError("MANIFEST_INVALID", detail={"reason": "descriptor size invalid"})
    subject = parsed.get("subject")
    if subject is not None and (not isinstance(subject, dict)
                                or not Digest.is_valid(str(subject.get("digest")))):
        raise RegistryError("MANIFEST_INVALID", detail={"reason": "subject invalid"})
    return parsed


def references(parsed: dict[str, Any]) -> list[dict[str, Any]]:
    """Descriptors the manifest depends on, each tagged with ``_kind`` blob or manifest."""
    out: list[dict[str, Any]] = []
    for key, kind in (("manifests", "manifest"), ("layers", "blob"), ("blobs", "blob")):
        for desc in parsed.get(key) or []:
            if not isinstance(desc, dict):
                raise RegistryError("MANIFEST_INVALID", detail={"reason": f"bad {key} entry"})
            out.append({**desc, "_kind": kind})
    config = parsed.get("config")
    if isinstance(config, dict):
        out.append({**config, "_kind": "blob"})
    return out


def manifest_subject(data: bytes) -> Digest | None:
    try:
        return subject_of(json.loads(data))
    except ValueError:
        return None


def subject_of(parsed: Any) -> Digest | None:
    if not isinstance(parsed, dict) or not isinstance(parsed.get("subject"), dict):
        return None
    text = str(parsed["subject"].get("digest"))
    return Digest.parse(text) if Digest.is_valid(text) else None


def manifest_children(data: bytes) -> list[Digest]:
    """Digests a stored manifest references (config, layers, child manifests)."""
    try:
        parsed = json.loads(data)
    except ValueError:
        return []
    if not isinstance(parsed, dict):
        return []
    out = []
    for key in ("manifests", "layers", "blobs"):
        for desc in parsed.get(key) or []:
            if isinstance(desc, dict) and Digest.is_valid(str(desc.get("digest"))):
                out.append(Digest.parse(desc["digest"]))
    config = parsed.get("config")
    if isinstance(config, dict) and Digest.is_valid(str(config.get("digest"))):
        out.append(Digest.parse(config["digest"]))
    return out
