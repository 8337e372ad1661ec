"""Registry credentials in Docker's ``config.json`` (``~/.docker`` or ``$DOCKER_CONFIG``).

::

    {"auths": {"<server>": {"auth": base64("user:password")}},
     "credsStore": "<helper>",                   # docker-credential-<helper> for all servers
     "credHelpers": {"<server>": "<helper>"}}    # per-server helper

A helper is run as ``docker-credential-<helper> get|store|erase`` with the server URL (get,
erase) or ``{"ServerURL","Username","Secret"}`` (store) on stdin. Docker Hub's key is
``https://index.docker.io/v1/``. The daemon gets credentials as ``X-Registry-Auth``:
base64url of ``{"username","password","serveraddress"}`` (``e30=`` is ``{}``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

from dockyard.atomic import atomic_write
from dockyard.errors import InvalidArgument

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any

__all__ = ["DOCKER_HUB", "encode_auth", "erase", "get", "registry_for", "store"]

DOCKER_HUB = "https://index.docker.io/v1/"


def registry_for(image: str) -> str:
    """The config key for an image's registry (Docker Hub's legacy URL for docker.io)."""
    from dockyard.oci.reference import parse_reference

    domain = parse_reference(image).domain
    return DOCKER_HUB if domain == "docker.io" else domain


def normalize_server(server: str | None) -> str:
    if not server or server in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB
    for prefix in ("https://", "http://"):
        if server.startswith(prefix) and server.rstrip("/") not in (
                "https://index.docker.io/v1", "https://index.docker.io"):
            server = server[len(prefix):]
    return server.rstrip("/") if server != DOCKER_HUB else server


def _config_path(config_dir: str) -> str:
    return os.path.join(config_dir, "config.json")


def load_config(config_dir: str) -> dict[str, Any]:
    try:
        with open(_config_path(config_dir)) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise InvalidArgument(f"{_config_path(config_dir)}: invalid json: {exc}") from exc
    return data if isinstance(data, dict) else {}


def save_config(config_dir: str, data: dict[str, Any]) -> None:
    os.makedirs(config_dir, mode=0o700, exist_ok=True)
    atomic_write(_config_path(config_dir), (json.dumps(data, indent="\t") + "\n").encode(),
                 mode=0o600)


def _helper(config: dict[str, Any], server: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    return helpers.get(server) or config.get("credsStore") or None


def _run_helper(helper: str, action: str, payload: str) -> str:
    try:
        proc = subprocess.run([f"docker-credential-{helper}", action], input=payload,
                              capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise InvalidArgument(f"credential helper docker-credential-{helper} not found") from exc
    if proc.returncode != 0:
        raise InvalidArgument(f"error {action} credentials: "
                              f"{(proc.stdout or proc.stderr).strip()}")
    return proc.stdout


def get(config_dir: str, server: str) -> dict[str, str]:
    """``{"username", "password", "serveraddress"}`` for ``server`` or {}."""
    config = load_config(config_dir)
    helper = _helper(config, server)
    if helper:
        try:
            out = json.loads(_run_helper(helper, "get", server))
        except (InvalidArgument, ValueError):
            return {}
        return {"username": out.get("Username", ""), "password": out.get("Secret", ""),
                "serveraddress": server}
    entry = (config.get("auths") or {}).get(server) or {}
    if entry.get("auth"):
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        return {"username": user, "password": password, "serveraddress": server}
    if entry.get("identitytoken"):
        return {"identitytoken": entry["identitytoken"], "serveraddress": server}
    return {}


def store(config_dir: str, server: str, username: str, password: str,
          identity_token: str = "") -> None:
    config = load_config(config_dir)
    helper = _helper(config, server)
    auths = config.setdefault("auths", {})
    if helper:
        _run_helper(helper, "store", json.dumps(
            {"ServerURL": server, "Username": username, "Secret": identity_token or password}))
        auths[server] = {}
    else:
        entry: dict[str, str] = {"auth": base64.b64encode(f"{username}:{password}".encode()
                                                          ).decode()}
        if identity_token:
            entry = {"identitytoken": identity_token}
        auths[server] = entry
    save_config(config_dir, config)


def erase(config_dir: str, server: str) -> bool:
    config = load_config(config_dir)
    helper = _helper(config, server)
    found = server in (config.get("auths") or {})
    if helper:
        try:
            _run_helper(helper, "erase", server)
            found = True
        except InvalidArgument:
            pass
    if server in (config.get("auths") or {}):
        del config["auths"][server]
        save_config(config_dir, config)
    return found


def encode_auth(auth: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()
