"""Published ports: Docker's ``-p`` syntax, the API's ``PortBindings``, host port reservation.

``-p`` forms (go-connections ``nat.ParsePortSpec``, same error texts)::

    [ip:][hostPort|hostRange:]containerPort|containerRange[/tcp|udp|sctp]
    8080:80    127.0.0.1:8080:80    127.0.0.1::80    80    8000-8010:80-90/udp    [::1]:8080:80

A host port is *reserved* by binding a socket to it (a TCP socket also listens, so it is the
userland proxy's listener where NAT does not apply) and by Dockyard's own table, so a port in
use by anyone fails with Docker's "Bind for 0.0.0.0:8080 failed: port is already allocated".
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dockyard.errors import Conflict, InvalidArgument

__all__ = [
    "PortBinding",
    "PortReservations",
    "PortSpec",
    "bindings_from_api",
    "parse_port_range",
    "parse_port_spec",
    "parse_port_specs",
    "publish_all_bindings",
]

PROTOS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PortSpec:
    """One ``-p`` entry for one container port (ranges are expanded)."""

    container_port: int
    proto: str
    host_ip: str          # "" = all addresses
    host_port: str        # "" = ephemeral; "8080" or a range "8000-8010" (pick one)

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


@dataclass(frozen=True)
class PortBinding:
    """A published port, resolved: ``host_ip:host_port -> container ip:container_port``."""

    proto: str
    host_ip: str          # "0.0.0.0" for all
    host_port: int
    container_port: int

    def to_dict(self) -> dict[str, object]:
        return {"proto": self.proto, "host_ip": self.host_ip, "host_port": self.host_port,
                "container_port": self.container_port}

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> PortBinding:
        return cls(str(raw["proto"]), str(raw["host_ip"]), int(str(raw["host_port"])),
                   int(str(raw["container_port"])))


def _uint16(text: str) -> int:
    if not text.isdigit():
        raise ValueError(text)
    value = int(text)
    if value > 65535:
        raise ValueError(text)
    return value


def parse_port_range(ports: str) -> tuple[int, int]:
    """``"80"`` -> (80, 80); ``"80-90"`` -> (80, 90) (nat.ParsePortRange)."""
    if ports == "":
        raise InvalidArgument("Empty string specified for ports.")
    if "-" not in ports:
        value = _uint16(ports)
        return value, value
    start_s, _, end_s = ports.partition("-")
    start, end = _uint16(start_s), _uint16(end_s)
    if end < start:
        raise InvalidArgument(f"Invalid range specified for the Port: {ports}")
    return start, end


def _split_spec(raw: str) -> tuple[str, str, str]:
    """ip, host port, container port[/proto] (handles ``[::1]:80:80``)."""
    if raw.startswith("["):
        close = raw.find("]")
        if close < 0:
            raise InvalidArgument(f"Invalid ip address: {raw}")
        ip, rest = raw[1:close], raw[close + 1:]
        if not rest.startswith(":"):
            raise InvalidArgument(f"Invalid ip address: {raw}")
        host, _, container = rest[1:].partition(":")
        if not _:
            raise InvalidArgument(f"Invalid ip address: {raw}")
        return ip, host, container
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    # an unbracketed IPv6 address: everything before the last two fields
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def parse_port_spec(raw: str) -> list[PortSpec]:
    ip, host, container_proto = _split_spec(raw)
    container, _, proto = container_proto.partition("/")
    proto = proto or "tcp"
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError as exc:
            raise InvalidArgument(f"Invalid ip address: {ip}") from exc
    if container == "":
        raise InvalidArgument(f"No port specified: {raw}<empty>")
    try:
        start, end = parse_port_range(container)
    except (InvalidArgument, ValueError) as exc:
        raise InvalidArgument(f"Invalid containerPort: {container}") from exc
    host_start = host_end = 0
    if host:
        try:
            host_start, host_end = parse_port_range(host)
        except (InvalidArgument, ValueError) as exc:
            raise InvalidArgument(f"Invalid hostPort: {host}") from exc
        if (end - start) != (host_end - host_start) and end != start:
            raise InvalidArgument(
                f"Invalid ranges specified for container and host Ports: {container} and {host}"
            )
    if proto.lower() not in PROTOS:
        raise InvalidArgument(f"Invalid proto: {proto}")
    proto = proto.lower()
    specs = []
    for i in range(end - start + 1):
        if not host:
            host_port = ""
        elif end == start:
            host_port = host  # a single container port may take any port of a host range
        else:
            host_port = str(host_start + i)
        specs.append(PortSpec(start + i, proto, ip, host_port))
    return specs


def parse_port_specs(
    raw: Iterable[str],
) -> tuple[dict[str, dict[str, object]], dict[str, list[dict[str, str]]]]:
    """CLI ``-p`` list -> the API's (``ExposedPorts``, ``HostConfig.PortBindings``)."""
    exposed: dict[str, dict[str, object]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for item in raw:
        for spec in parse_port_spec(item):
            exposed[spec.key] = {}
            bindings.setdefault(spec.key, []).append(
                {"HostIp": spec.host_ip, "HostPort": spec.host_port}
            )
    return exposed, bindings


def bindings_from_api(port_bindings: Mapping[str, Sequence[Mapping[str, str]] | None]) -> list[PortSpec]:
    """``HostConfig.PortBindings`` (``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``)."""
    specs: list[PortSpec] = []
    for key, entries in port_bindings.items():
        port_s, _, proto = key.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in PROTOS:
            raise InvalidArgument(f"Invalid proto: {proto}")
        try:
            port, port_end = parse_port_range(port_s)
        except ValueError as exc:
            raise InvalidArgument(f"Invalid containerPort: {port_s}") from exc
        if port != port_end:
            raise InvalidArgument(f"Invalid containerPort: {port_s}")
        for entry in entries or [{}]:
            host_ip = entry.get("HostIp") or ""
            host_port = entry.get("HostPort") or ""
            if host_ip:
                try:
                    ipaddress.ip_address(host_ip)
                except ValueError as exc:
                    raise InvalidArgument(f"Invalid ip address: {host_ip}") from exc
            if host_port:
                try:
                    parse_port_range(host_port)
                except ValueError as exc:
                    raise InvalidArgument(f"Invalid hostPort: {host_port}") from exc
            specs.append(PortSpec(port, proto, host_ip, host_port))
    return specs


def publish_all_bindings(exposed: Iterable[str]) -> list[PortSpec]:
    """``-P``: every ``EXPOSE``d port (``"80/tcp"`` keys) on an ephemeral host port."""
    specs = []
    for key in exposed:
        port_s, _, proto = key.partition("/")
        start, end = parse_port_range(port_s)
        for port in range(start, end + 1):
            specs.append(PortSpec(port, (proto or "tcp").lower(), "", ""))
    return specs


class PortReservations:
    """Host ports Dockyard holds: its own table plus one bound socket per port.

    Not thread-safe; the manager serialises calls.
    """

    def __init__(self) -> None:
        self._held: dict[tuple[str, str, int], socket.socket] = {}

    def held(self) -> dict[tuple[str, str, int], socket.socket]:
        return dict(self._held)

    def _conflicts(self, proto: str, ip: str, port: int) -> bool:
        for p, i, n in self._held:
            if p == proto and n == port and (i == ip or "0.0.0.0" in (i, ip)):
                return True
        return False

    def reserve(self, spec: PortSpec) -> PortBinding:
        """Bind the host side of ``spec``; ranges try each port in turn (ephemeral: kernel)."""
        ip = spec.host_ip or "0.0.0.0"
        if ":" in ip:
            raise InvalidArgument(f"publishing on IPv6 address {ip} is not supported")
        if spec.host_port:
            start, end = parse_port_range(spec.host_port)
            candidates = list(range(start, end + 1))
        else:
            candidates = [0]
        last_error = ""
        for port in candidates:
            if port and self._conflicts(spec.proto, ip, port):
                last_error = f"Bind for {ip}:{port} failed: port is already allocated"
                continue
            try:
                sock = _bind(spec.proto, ip, port)
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    last_error = f"Bind for {ip}:{port} failed: port is already allocated"
                    continue
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise InvalidArgument(
                        f"Error starting userland proxy: listen {spec.proto} {ip}:{port}:"
                        " bind: cannot assign requested address"
                    ) from exc
                raise
            bound = sock.getsockname()[1]
            self._held[(spec.proto, ip, bound)] = sock
            return PortBinding(spec.proto, ip, bound, spec.container_port)
        raise Conflict(last_error)

    def socket_for(self, binding: PortBinding) -> socket.socket | None:
        return self._held.get((binding.proto, binding.host_ip, binding.host_port))

    def release(self, binding: PortBinding) -> None:
        sock = self._held.pop((binding.proto, binding.host_ip, binding.host_port), None)
        if sock is not None:
            sock.close()

    def release_all(self) -> None:
        for sock in self._held.values():
            sock.close()
        self._held.clear()


def _bind(proto: str, ip: str, port: int) -> socket.socket:
    kind = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}.get(proto)
    if kind is None:  # sctp: the kernel may lack it; NAT still works, only the table reserves
        kind = socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
        sock.set_inheritable(False)
    except BaseException:
        sock.close()
        raise
    return sock
