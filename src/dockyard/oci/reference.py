"""Image references, parsed and normalised exactly as Docker does (distribution/reference).

Grammar (docker/distribution reference.go)::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ("/" path-component)*
    domain     := host [":" port]          ; host: dns-label ("." dns-label)*, or "[" ipv6 "]"
    path-comp  := [a-z0-9]+ ((\\.|_|__|-+) [a-z0-9]+)*
    tag        := [\\w][\\w.-]{0,127}

Normalisation: a first component without "." or ":" that is not "localhost" is a path, not a
domain, so the domain becomes ``docker.io``; a single-component name on docker.io gets
``library/``. ``busybox`` is ``docker.io/library/busybox:latest``; ``index.docker.io`` is
``docker.io``. The "familiar" form drops what normalisation added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dockyard.errors import InvalidReference
from dockyard.oci.digest import Digest

__all__ = ["DEFAULT_DOMAIN", "DEFAULT_TAG", "Reference", "parse_reference", "split_repo_tag"]

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(
    rf"^((?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::({_TAG}))?(?:@({_DIGEST}))?$"
)
_ANCHORED_DOMAIN = re.compile(rf"^{_DOMAIN}$")
_ANCHORED_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The fully qualified repository: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def repository(self) -> str:
        """Alias of :attr:`name` in the registry's terms (``domain/path``)."""
        return self.name

    def familiar_name(self) -> str:
        """``busybox`` for docker.io/library/busybox, ``user/x`` for docker.io/user/x."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_PREFIX) and self.path.count("/") == 1:
            return self.path[len(OFFICIAL_PREFIX) :]
        return self.path

    def familiar(self) -> str:
        out = self.familiar_name()
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_default_tag(self) -> Reference:
        """Docker's TagNameOnly: add ``latest`` when neither tag nor digest is given."""
        if self.tag is None and self.digest is None:
            return replace(self, tag=DEFAULT_TAG)
        return self

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.match(tag):
            raise InvalidReference(tag)
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, tag=None, digest=digest)

    @property
    def tag_or_digest(self) -> str:
        """What a registry's ``/manifests/<reference>`` wants."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def parse_reference(text: str) -> Reference:
    """Parse and normalise a reference as ``docker pull`` does (ParseNormalizedNamed).

    Raises :class:`InvalidReference` with Docker's wording.
    """
    if not text:
        raise InvalidReference(text)
    if _HEX64.match(text):
        raise InvalidReference(
            text,
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings",
        )
    m = _REFERENCE_RE.match(text)
    if m is None:
        lowered = text.lower()
        if lowered != text and _REFERENCE_RE.match(_lower_path(text)):
            raise InvalidReference(text, "invalid reference format: repository name must be lowercase")
        raise InvalidReference(text)
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_MAX:
        raise InvalidReference(
            text, f"invalid reference format: repository name must not be more than {NAME_TOTAL_MAX} characters"
        )
    if digest is not None and not Digest.is_valid(digest):
        raise InvalidReference(text, "invalid reference format")
    domain, path = _split_domain(name)
    if not _ANCHORED_DOMAIN.match(domain) or not _ANCHORED_PATH.match(path):
        raise InvalidReference(text)
    return Reference(domain, path, tag, digest)


def _lower_path(text: str) -> str:
    # Docker reports "must be lowercase" only when lowering the name part would make it valid;
    # the domain may legitimately contain capitals.
    name, sep, rest = text.partition("@")
    head, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        name_part, tail = head, ":" + tag
    else:
        name_part, tail = name, ""
    first, slash, others = name_part.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        name_part = first + "/" + others.lower()
    else:
        name_part = name_part.lower()
    return name_part + tail + sep + rest


def split_repo_tag(text: str) -> tuple[str, str | None]:
    """Split ``repo[:tag]`` without normalising (``localhost:5000/x`` keeps its port)."""
    head, colon, tag = text.rpartition(":")
    if colon and "/" not in tag:
        return head, tag
    return text, None
