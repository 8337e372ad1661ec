"""IP address management: choosing subnets for networks and addresses for endpoints.

Pure logic; the manager persists the results in each network's record (atomically, with the
endpoint that owns each address), so allocations survive daemon restarts.

Subnets come from, in order: ``--subnet`` (checked for overlap), the daemon's ``bip`` (default
bridge only), then the ``default-address-pools`` split into ``size``-bit subnets. A candidate is
refused when it overlaps a network Dockyard already has, a route or interface address of the
host, or 172.17.0.0/16 (docker0's default, so Dockyard and a later-started dockerd never clash).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dockyard.errors import Conflict, InvalidArgument, Unavailable

__all__ = [
    "DEFAULT_POOLS",
    "DOCKER0_DEFAULT",
    "AddressPool",
    "IPNet",
    "allocate_address",
    "check_requested_subnet",
    "choose_subnet",
    "parse_pools",
]

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
DOCKER0_DEFAULT = ipaddress.ip_network("172.17.0.0/16")


@dataclass(frozen=True)
class AddressPool:
    base: IPNet
    size: int

    def subnets(self) -> Iterator[IPNet]:
        if self.size < self.base.prefixlen:
            raise InvalidArgument(f"invalid pool {self.base}: size {self.size} is too large")
        return self.base.subnets(new_prefix=self.size)


# Docker's defaults (172.17-31/16, then 192.168/16 as /20s); 172.17 is skipped by the overlap check
DEFAULT_POOLS = (
    AddressPool(ipaddress.ip_network("172.17.0.0/16"), 16),
    AddressPool(ipaddress.ip_network("172.18.0.0/16"), 16),
    AddressPool(ipaddress.ip_network("172.19.0.0/16"), 16),
    AddressPool(ipaddress.ip_network("172.20.0.0/14"), 16),
    AddressPool(ipaddress.ip_network("172.24.0.0/14"), 16),
    AddressPool(ipaddress.ip_network("172.28.0.0/14"), 16),
    AddressPool(ipaddress.ip_network("192.168.0.0/16"), 20),
)


def parse_pools(raw: Iterable[dict[str, object]]) -> tuple[AddressPool, ...]:
    """daemon.json ``default-address-pools``: ``[{"base": "10.10.0.0/16", "size": 24}]``."""
    pools = []
    for item in raw:
        try:
            base = ipaddress.ip_network(str(item["base"]))
            size = int(str(item["size"]))
        except (KeyError, ValueError) as exc:
            raise InvalidArgument(f"invalid default-address-pools entry {item!r}") from exc
        pools.append(AddressPool(base, size))
    return tuple(pools)


def _overlaps(net: IPNet, others: Iterable[IPNet]) -> bool:
    return any(net.version == o.version and net.overlaps(o) for o in others)  # type: ignore[arg-type]


def check_requested_subnet(subnet: str, used: Iterable[IPNet]) -> IPNet:
    """Validate ``--subnet``; overlapping one of our networks is a conflict (Docker's words)."""
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError as exc:
        raise InvalidArgument(f"invalid subnet {subnet}: invalid CIDR address") from exc
    if str(net) != subnet and subnet != str(net.network_address):
        raise InvalidArgument(
            f"invalid subnet {subnet}: it should be {net}"
        )
    if net.num_addresses < 4 and net.version == 4:
        raise InvalidArgument(f"invalid subnet {subnet}: too small")
    if _overlaps(net, used):
        raise Conflict("Pool overlaps with other one on this address space")
    return net


def choose_subnet(
    pools: Iterable[AddressPool], used: Iterable[IPNet], host: Iterable[IPNet]
) -> IPNet:
    """First pool subnet that overlaps nothing we have, nothing the host routes, nor docker0."""
    avoid = [*used, *host, DOCKER0_DEFAULT]
    for pool in pools:
        for candidate in pool.subnets():
            if not _overlaps(candidate, avoid):
                return candidate
    raise Unavailable(
        "could not find an available, non-overlapping IPv4 address pool among the defaults"
        " to assign to the network"
    )


def allocate_address(
    subnet: IPNet, taken: Iterable[str], requested: str | None = None
) -> str:
    """An address of ``subnet`` not in ``taken`` (which includes the gateway).

    The network and broadcast addresses are never handed out. ``requested`` (``--ip``) must be
    in the subnet and free.
    """
    taken_set = set(taken)
    if requested is not None:
        try:
            ip = ipaddress.ip_address(requested)
        except ValueError as exc:
            raise InvalidArgument(f"invalid IP address {requested}") from exc
        if ip not in subnet:
            raise InvalidArgument(
                f"no configured subnet or ip-range contain the IP address {requested}"
            )
        if str(ip) in taken_set or ip in (subnet.network_address, subnet.broadcast_address):
            raise Conflict(f"Address already in use: {requested}")
        return str(ip)
    first = int(subnet.network_address) + 1
    last = int(subnet.broadcast_address) - (1 if subnet.version == 4 else 0)
    for value in range(first, last + 1):
        ip = ipaddress.ip_address(value)
        if str(ip) not in taken_set:
            return str(ip)
    raise Unavailable(f"no available IPv{subnet.version} addresses on this network's address pools: {subnet}")
