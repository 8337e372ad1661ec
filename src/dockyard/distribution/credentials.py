"""Docker-compatible credential storage: ``config.json`` and credential helpers.

Pure and synchronous so the CLI (``dockyard login/logout``) and the daemon share it.

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
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.atomic import atomic_write
from dockyard.errors import InvalidArgument, Unavailable
from dockyard.oci.reference import DEFAULT_DOMAIN

__all__ = [
    "INDEX_SERVER",
    "AuthConfig",
    "config_dir",
    "config_path",
    "erase_credentials",
    "get_credentials",
    "registry_key",
    "store_credentials",
]

INDEX_SERVER = "https://index.docker.io/v1/"
_TOKEN_USER = "<token>"


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


def config_dir(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if env.get("DOCKER_CONFIG"):
        return env["DOCKER_CONFIG"]
    return os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")


def config_path(directory: str | None = None) -> str:
    return os.path.join(directory or config_dir(), "config.json")


def registry_key(registry: str) -> str:
    """The config.json key for a registry domain (``docker.io`` -> Docker Hub's index URL)."""
    host = _hostname(registry)
    if host in (DEFAULT_DOMAIN, "index.docker.io", "registry-1.docker.io"):
        return INDEX_SERVER
    return host


def get_credentials(registry: str, directory: str | None = None) -> AuthConfig | None:
    """Credentials saved for ``registry`` (a domain or URL), or None."""
    config = _load(directory)
    key = registry_key(registry)
    helper = _helper_for(config, key)
    if helper:
        return _helper_get(helper, key)
    auths = config.get("auths") or {}
    for stored_key, entry in auths.items():
        if registry_key(stored_key) == key and isinstance(entry, dict):
            username, password = _decode_auth(entry["auth"]) if entry.get("auth") else ("", "")
            return AuthConfig(
                username=username,
                password=password,
                identity_token=entry.get("identitytoken", "") or "",
                server_address=key,
            )
    return None


def store_credentials(registry: str, auth: AuthConfig, directory: str | None = None) -> str:
    """Save credentials (in the helper if one is configured); returns the key used.

    With an identity token the password is not kept, as Docker does.
    """
    directory = directory or config_dir()
    config = _load(directory)
    key = registry_key(registry)
    helper = _helper_for(config, key)
    auths = config.setdefault("auths", {})
    if helper:
        if auth.identity_token:
            username, secret = _TOKEN_USER, auth.identity_token
        else:
            username, secret = auth.username, auth.password
        _run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": username, "Secret": secret}))
        auths[key] = {}
    else:
        entry: dict[str, str] = {}
        if auth.identity_token:
            entry["auth"] = _encode_auth(auth.username, "")
            entry["identitytoken"] = auth.identity_token
        else:
            entry["auth"] = _encode_auth(auth.username, auth.password)
        auths[key] = entry
    _save(directory, config)
    return key


def erase_credentials(registry: str, directory: str | None = None) -> bool:
    """Forget credentials; True when there was something to forget."""
    directory = directory or config_dir()
    config = _load(directory)
    key = registry_key(registry)
    helper = _helper_for(config, key)
    auths = config.get("auths") or {}
    found = False
    for stored_key in list(auths):
        if registry_key(stored_key) == key:
            del auths[stored_key]
            found = True
    if helper:
        try:
            _run_helper(helper, "erase", key)
            found = True
        except Unavailable:
            pass
    if found:
        _save(directory, config)
    return found


def _helper_for(config: Mapping[str, Any], key: str) -> str:
    helpers = config.get("credHelpers") or {}
    for name, helper in helpers.items():
        if registry_key(name) == key:
            return str(helper)
    return str(config.get("credsStore") or "")


def _helper_get(helper: str, key: str) -> AuthConfig | None:
    try:
        out = _run_helper(helper, "get", key)
    except Unavailable as exc:
        if "credentials not found" in str(exc).lower():
            return None
        raise
    try:
        data = json.loads(out)
        username, secret = str(data.get("Username", "")), str(data.get("Secret", ""))
    except (ValueError, AttributeError) as exc:
        raise Unavailable(f"credential helper docker-credential-{helper} returned bad JSON") from exc
    if username == _TOKEN_USER:
        return AuthConfig(identity_token=secret, server_address=key)
    return AuthConfig(username=username, password=secret, server_address=key)


def _run_helper(helper: str, action: str, stdin: str) -> str:
    program = f"docker-credential-{helper}"
    try:
        proc = subprocess.run(
            [program, action], input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"error running credential helper {program}: {exc}") from exc
    if proc.returncode != 0:
        message = (proc.stdout.strip() or proc.stderr.strip() or f"exit status {proc.returncode}")
        raise Unavailable(f"error {action} credentials with {program}: {message}")
    return proc.stdout


def _load(directory: str | None) -> dict[str, Any]:
    path = config_path(directory)
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise InvalidArgument(f"{path}: invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path}: not a JSON object")
    return data


def _save(directory: str, config: Mapping[str, Any]) -> None:
    os.makedirs(directory, mode=0o700, exist_ok=True)
    data = json.dumps(config, indent="\t").encode() + b"\n"
    atomic_write(config_path(directory), data, mode=0o600)


def _encode_auth(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def _decode_auth(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=False).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument("invalid auth configuration file: bad base64 in auth") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise InvalidArgument("invalid auth configuration file: auth has no ':'")
    return username, password.strip("\x00")


def _hostname(registry: str) -> str:
    # Docker's ConvertToHostname: strip the scheme and any path.
    out = registry
    for prefix in ("http://", "https://"):
        if out.startswith(prefix):
            out = out[len(prefix) :]
    return out.split("/", 1)[0]
