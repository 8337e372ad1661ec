"""Registry client settings: the daemon.json keys that shape registry traffic.

One frozen object, built once at the daemon's entry point from daemon.json and passed down::

    {"registry-mirrors": ["https://mirror.example", "quay.io=https://quay-mirror.example"],
     "insecure-registries": ["myreg:5000", "10.0.0.0/8"],
     "allow-nondistributable-artifacts": ["myreg:5000"],
     "max-concurrent-downloads": 3, "max-concurrent-uploads": 5}

A mirror entry without ``<registry>=`` mirrors Docker Hub (Docker's meaning); with it, any
registry. 127.0.0.0/8 and ``localhost`` are insecure by default, as in Docker: for an insecure
registry HTTPS is tried first without certificate verification, then plain HTTP.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.oci.reference import DEFAULT_DOMAIN

__all__ = ["RegistrySettings"]

_DEFAULT_INSECURE = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class RegistrySettings:
    mirrors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    insecure_registries: tuple[str, ...] = ()
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    max_redirects: int = 10
    download_attempts: int = 5
    allow_nondistributable: bool = False  # every registry
    nondistributable_registries: tuple[str, ...] = ()  # daemon.json allow-nondistributable-artifacts
    chunk_size: int = 0  # 0: monolithic blob uploads; otherwise PATCH chunks of this many bytes
    compression_level: int = 1
    user_agent: str = "dockyard/0.1"
    # Docker's per-registry TLS files: <dir>/<host[:port]>/{*.crt, *.cert + *.key}
    certs_dirs: tuple[str, ...] = ("/etc/docker/certs.d", "/etc/dockyard/certs.d")

    @classmethod
    def from_daemon_config(cls, config: Mapping[str, Any]) -> RegistrySettings:
        """Build from daemon.json's keys (unknown keys are someone else's business)."""
        mirrors: dict[str, list[str]] = {}
        for entry in config.get("registry-mirrors", []) or []:
            domain, sep, url = str(entry).partition("=")
            if not sep:
                domain, url = DEFAULT_DOMAIN, entry
            if not url.startswith(("http://", "https://")):
                raise InvalidArgument(f"invalid mirror: {entry!r} (want an http(s) URL)")
            mirrors.setdefault(domain, []).append(url.rstrip("/"))
        kwargs: dict[str, Any] = {
            "mirrors": {k: tuple(v) for k, v in mirrors.items()},
            "insecure_registries": tuple(config.get("insecure-registries", []) or []),
            "nondistributable_registries": tuple(
                config.get("allow-nondistributable-artifacts", []) or []
            ),
        }
        for key, attr in (
            ("max-concurrent-downloads", "max_concurrent_downloads"),
            ("max-concurrent-uploads", "max_concurrent_uploads"),
        ):
            if key in config:
                value = config[key]
                if not isinstance(value, int) or value < 1:
                    raise InvalidArgument(f"{key} must be a positive integer, got {value!r}")
                kwargs[attr] = value
        return cls(**kwargs)

    def allows_nondistributable(self, host: str) -> bool:
        """Foreign/non-distributable layers may be pulled from ``host`` (by name or CIDR)."""
        if self.allow_nondistributable or host in self.nondistributable_registries:
            return True
        networks = []
        for entry in self.nondistributable_registries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue
        return any(a in net for a in _addresses(_hostname(host)) for net in networks)

    def mirrors_for(self, domain: str) -> tuple[str, ...]:
        return tuple(self.mirrors.get(domain, ()))

    def is_insecure(self, host: str) -> bool:
        """Docker's isSecureIndex, inverted: listed by name, or an address in a listed CIDR."""
        if host in self.insecure_registries:
            return True
        hostname = _hostname(host)
        networks = []
        for entry in (*_DEFAULT_INSECURE, *self.insecure_registries):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue
        return any(address in net for address in _addresses(hostname) for net in networks)


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _addresses(hostname: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(hostname)]
    except ValueError:
        pass
    if hostname == "localhost":
        return [ipaddress.ip_address("127.0.0.1")]
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    out: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for info in infos:
        try:
            out.append(ipaddress.ip_address(info[4][0]))
        except ValueError:
            continue
    return out
