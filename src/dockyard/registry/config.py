"""The registry's configuration: one frozen object built at the entry point.

The YAML file follows distribution's ``config.yml`` where the two overlap (``http.tls``,
``storage.filesystem.rootdirectory``, ``storage.delete.enabled``,
``storage.maintenance.readonly.enabled``, ``auth.htpasswd``,
``auth.token``, ``proxy.remoteurl``, ``notifications.endpoints``); Dockyard's own keys are
``auth.token.key`` (the PEM private key our token endpoint signs with), ``auth.token.htpasswd``
(who may obtain tokens), ``auth.token.anonymous`` (actions granted without credentials),
``gc.grace`` / ``gc.uploadgrace`` and ``http.workers``; the access log is off unless
``log.accesslog.disabled: false``. Command-line options override the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from dockyard.errors import InvalidArgument

__all__ = ["Config", "Endpoint", "TokenConfig", "load_config", "parse_duration"]

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"1h"`` -> seconds."""
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION_RE.match(str(value).strip())
    if m is None:
        raise InvalidArgument(f"invalid duration {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass(frozen=True)
class TokenConfig:
    key_path: str
    realm: str | None = None  # None: <scheme>://<request host>/token
    service: str = "dockyard-registry"
    issuer: str = "dockyard-registry"
    htpasswd: str | None = None
    anonymous: tuple[str, ...] = ()
    expiration: float = 300.0


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 5.0


@dataclass(frozen=True)
class Config:
    root: str
    listen: str = "127.0.0.1:5000"
    tls_cert: str | None = None
    tls_key: str | None = None
    delete_enabled: bool = True
    read_only: bool = False
    htpasswd: str | None = None
    htpasswd_realm: str = "dockyard-registry"
    token: TokenConfig | None = None
    proxy_url: str | None = None
    proxy_username: str | None = None
    proxy_password: str | None = None
    notifications: tuple[Endpoint, ...] = ()
    gc_grace: float = 3600.0
    upload_grace: float = 86400.0
    workers: int = 1
    access_log: bool = False
    durable: bool = True


def _section(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"config: {key} must be a mapping")
    return value


def load_config(path: str | None, *, root: str | None = None, listen: str | None = None) -> Config:
    doc: dict[str, Any] = {}
    if path:
        try:
            with open(path) as f:
                doc = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidArgument(f"cannot read config {path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise InvalidArgument(f"config {path}: not a mapping")
    http = _section(doc, "http")
    tls = _section(http, "tls")
    storage = _section(doc, "storage")
    auth = _section(doc, "auth")
    htpasswd = _section(auth, "htpasswd")
    token = _section(auth, "token")
    proxy = _section(doc, "proxy")
    gc = _section(doc, "gc")
    root_dir = root or _section(storage, "filesystem").get("rootdirectory")
    if not root_dir:
        raise InvalidArgument("no storage root: give --root or storage.filesystem.rootdirectory")
    token_config = None
    if token:
        if not token.get("key"):
            raise InvalidArgument("config: auth.token.key (a PEM private key) is required")
        token_config = TokenConfig(
            key_path=str(token["key"]),
            realm=token.get("realm"),
            service=str(token.get("service", "dockyard-registry")),
            issuer=str(token.get("issuer", "dockyard-registry")),
            htpasswd=token.get("htpasswd"),
            anonymous=tuple(token.get("anonymous") or ()),
            expiration=parse_duration(token.get("expiration", 300)),
        )
    endpoints = tuple(
        Endpoint(str(e.get("name", e["url"])), str(e["url"]), dict(e.get("headers") or {}),
                 parse_duration(e.get("timeout", 5)))
        for e in (_section(doc, "notifications").get("endpoints") or [])
        if not e.get("disabled")
    )
    return Config(
        root=str(root_dir),
        listen=listen or str(http.get("addr", "127.0.0.1:5000")),
        tls_cert=tls.get("certificate"),
        tls_key=tls.get("key"),
        delete_enabled=bool(_section(storage, "delete").get("enabled", True)),
        read_only=bool(_section(_section(storage, "maintenance"), "readonly")
                       .get("enabled", False)),
        htpasswd=htpasswd.get("path"),
        htpasswd_realm=str(htpasswd.get("realm", "dockyard-registry")),
        token=token_config,
        proxy_url=proxy.get("remoteurl"),
        proxy_username=proxy.get("username"),
        proxy_password=proxy.get("password"),
        notifications=endpoints,
        gc_grace=parse_duration(gc.get("grace", 3600)),
        upload_grace=parse_duration(gc.get("uploadgrace", 86400)),
        workers=int(http.get("workers", 1)),
        access_log=not bool(_section(_section(doc, "log"), "accesslog").get("disabled", True)),
    )
