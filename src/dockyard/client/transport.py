"""Connections to the daemon: where it listens and how to reach it.

Host strings follow Docker's ``-H`` syntax::

    unix:///var/run/dockyard.sock     a UNIX socket (the default)
    tcp://127.0.0.1:2375              plain TCP (no TLS in this client)
    /path/to.sock                     shorthand for unix://

The resolution order is ``-H``, then ``$DOCKYARD_HOST``, then ``$DOCKER_HOST``, then the
default socket. The HTTP itself is :mod:`dockyard.client.wire` (see there why not
:mod:`http.client`).
"""

from __future__ import annotations

import os

from dockyard.client.wire import Connection
from dockyard.errors import InvalidArgument

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Mapping

__all__ = ["DEFAULT_HOST", "Endpoint", "connect", "parse_host", "resolve_host"]

DEFAULT_HOST = "unix:///var/run/dockyard.sock"


class Endpoint:
    """A parsed daemon address: ``scheme`` is ``unix`` (``path`` set) or ``tcp`` (host, port).

    A plain class, not a dataclass: ``dataclasses`` costs ~6 ms of start-up.
    """

    __slots__ = ("host", "path", "port", "scheme")

    def __init__(self, scheme: str, path: str = "", host: str = "", port: int = 0) -> None:
        self.scheme = scheme
        self.path = path
        self.host = host
        self.port = port

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Endpoint) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return f"Endpoint({self})"

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        return f"tcp://{self.host}:{self.port}"


def resolve_host(flag: str | None, env: Mapping[str, str] | None = None) -> str:
    """Pick the daemon address: ``-H``, ``$DOCKYARD_HOST``, ``$DOCKER_HOST``, the default."""
    env = os.environ if env is None else env
    for candidate in (flag, env.get("DOCKYARD_HOST"), env.get("DOCKER_HOST")):
        if candidate:
            return candidate
    return DEFAULT_HOST


def parse_host(text: str) -> Endpoint:
    """Parse a ``-H`` value; raises InvalidArgument for schemes this client cannot speak."""
    if text.startswith("unix://"):
        path = text[len("unix://"):]
        if not path:
            raise InvalidArgument(f"invalid bind address format: {text}")
        return Endpoint("unix", path=path)
    if text.startswith("/"):
        return Endpoint("unix", path=text)
    if text.startswith(("tcp://", "http://")):
        rest = text.split("://", 1)[1].rstrip("/")
        host, sep, port = rest.rpartition(":")
        if not sep:
            host, port = rest, "2375"
        host = host.strip("[]") or "127.0.0.1"
        try:
            return Endpoint("tcp", host=host, port=int(port))
        except ValueError:
            raise InvalidArgument(f"invalid bind address format: {text}") from None
    raise InvalidArgument(f"invalid bind address format: {text}")


def open_socket(endpoint: Endpoint, timeout: float | None = None) -> socket:
    """A connected socket to the daemon (for UNIX sockets a plain ``_socket.socket``: the
    ``socket`` module's import builds enums of every constant, ~3 ms of CLI start-up)."""
    if endpoint.scheme == "unix":
        import _socket

        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(endpoint.path)
        except OSError:
            sock.close()
            raise
        return sock
    import socket as socket_module

    return socket_module.create_connection((endpoint.host, endpoint.port), timeout=timeout)


def connect(endpoint: Endpoint, timeout: float | None = None) -> Connection:
    """A new HTTP connection to the daemon."""
    sock = open_socket(endpoint, timeout)
    host = "localhost" if endpoint.scheme == "unix" else f"{endpoint.host}:{endpoint.port}"
    return Connection(sock, host)
