from __future__ import annotations

import pytest

from dockyard.errors import InvalidReference
from dockyard.oci.reference import parse_reference


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("index.docker.io/library/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
        ("127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest", "127.0.0.1:5000/busybox:latest"),
    ],
)
def test_parse_reference_normalises_like_docker(text: str, full: str, familiar: str) -> None:
    ref = parse_reference(text).with_default_tag()
    assert str(ref) == full
    assert ref.familiar() == familiar


def test_digest_reference_keeps_no_default_tag() -> None:
    d = "sha256:" + "ab" * 32
    ref = parse_reference(f"quay.io/x/y@{d}").with_default_tag()
    assert ref.tag is None and ref.digest == d and ref.tag_or_digest == d


@pytest.mark.parametrize("text", ["", "bad..name", "x:", ":tag", "a/b/", "UPPER/x:y ", "a@sha256:12"])
def test_parse_reference_refuses_invalid_format(text: str) -> None:
    with pytest.raises(InvalidReference, match="invalid reference format"):
        parse_reference(text)


def test_uppercase_repository_has_dockers_message() -> None:
    with pytest.raises(InvalidReference, match="repository name must be lowercase"):
        parse_reference("Busybox")


def test_64_hex_name_is_refused() -> None:
    with pytest.raises(InvalidReference, match="64-byte hexadecimal"):
        parse_reference("a" * 64)
