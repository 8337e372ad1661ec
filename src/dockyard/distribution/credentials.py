"""Registry credentials as the daemon receives them (``X-Registry-Auth``, ``POST /auth``).

The CLI keeps docker's ``config.json`` and credential helpers (:mod:`dockyard.cli.auth`) and
sends what it finds there; the daemon never reads that file, as dockerd never does. For
reference, the file the CLI keeps:

``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``)::

    {
      "auths": {
        "https://index.docker.io/v1/": {"auth": "<base64 user:password>"},
        "127.0.0.1:5000": {"auth": "...", "identitytoken": "<oauth refresh token>"}
      },
      "credsStore": "pass",                       # helper for every registry ...
      "credHelpers": {"gcr.io": "gcloud"}         # ... or per registry (wins)
    }

A helper is the program ``docker-credential-<name>``: ``get`` reads the server URL on stdin and
prints ``{"ServerURL","Username","Secret"}`` (Username ``<token>`` means Secret is an identity
token); ``store`` reads that JSON; ``erase`` reads the server URL. Docker Hub's key is
``https://index.docker.io/v1/``; other registries are keyed by ``host[:port]``, and keys written
with a scheme or path (``https://host/v1/``) still match.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = ["AuthConfig"]


@dataclass(frozen=True)
class AuthConfig:
    """Credentials for one registry (the fields of Docker's AuthConfig, snake_case)."""

    username: str = ""
    password: str = ""
    identity_token: str = ""  # OAuth refresh token from an earlier login
    registry_token: str = ""  # a bearer token handed in directly
    server_address: str = ""

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    @classmethod
    def from_docker_json(cls, data: Mapping[str, Any]) -> AuthConfig:
        """From the JSON in ``X-Registry-Auth`` / ``POST /auth`` (keys in any case)."""
        lowered = {str(k).lower(): v for k, v in data.items() if isinstance(v, str)}
        username = lowered.get("username", "")
        password = lowered.get("password", "")
        if not username and lowered.get("auth"):
            username, password = _decode_auth(lowered["auth"])
        return cls(
            username=username,
            password=password,
            identity_token=lowered.get("identitytoken", ""),
            registry_token=lowered.get("registrytoken", ""),
            server_address=lowered.get("serveraddress", ""),
        )


def _decode_auth(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=False).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument("invalid auth configuration file: bad base64 in auth") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise InvalidArgument("invalid auth configuration file: auth has no ':'")
    return username, password.strip("\x00")
