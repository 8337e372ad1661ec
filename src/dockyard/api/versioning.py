"""API versions as Docker negotiates them.

Paths come with or without ``/v1.NN``; 1.24 through 1.41 are served, a newer one is refused
with Docker's 400 ("client version 1.42 is too new. Maximum supported API version is 1.41"),
an older one likewise ("... is too old. Minimum supported API version is 1.24, ..."). Every
response carries ``Api-Version``, ``Docker-Experimental``, ``Ostype`` and ``Server``.
"""

from __future__ import annotations

from dockyard.errors import InvalidArgument

API_VERSION = "1.41"
MIN_API_VERSION = "1.24"
SERVER = "Dockyard/0.1.0 (linux)"
ENGINE_VERSION = "0.1.0"


def parse(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        raise InvalidArgument(f"invalid API version {version!r}") from None


def check(version: str | None) -> str:
    """The effective version of a request (its path's, or the current one)."""
    if not version:
        return API_VERSION
    v = parse(version)
    if v > parse(API_VERSION):
        raise InvalidArgument(f"client version {version} is too new. Maximum supported API version is {API_VERSION}")
    if v < parse(MIN_API_VERSION):
        raise InvalidArgument(f"client version {version} is too old. Minimum supported API version is "
                              f"{MIN_API_VERSION}, please upgrade your client to a newer version")
    return version


def headers() -> dict[str, str]:
    return {"Api-Version": API_VERSION, "Docker-Experimental": "false", "Ostype": "linux", "Server": SERVER}


__all__ = ["API_VERSION", "ENGINE_VERSION", "MIN_API_VERSION", "check", "headers"]
