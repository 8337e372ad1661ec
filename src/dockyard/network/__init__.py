"""Container networking: bridges, IPAM, veth pairs, NAT and published ports, embedded DNS.

Modules (import what you need; this package re-exports the daemon's entry points):

- :mod:`~dockyard.network.manager` -- :class:`NetworkManager`, the daemon's one entry point
- :mod:`~dockyard.network.ipam` -- subnets from ``bip``/``default-address-pools``, addresses
- :mod:`~dockyard.network.links` -- bridges, veth pairs, addresses, routes (pyroute2 netlink)
- :mod:`~dockyard.network.netns` -- run code in a container's netns from a throwaway thread
- :mod:`~dockyard.network.firewall` -- one nftables table: masquerade, isolation, DNAT
- :mod:`~dockyard.network.ports` -- ``-p`` parsing (Docker's messages), host port reservation
- :mod:`~dockyard.network.proxy` -- the single userland proxy for what NAT cannot serve
- :mod:`~dockyard.network.dns` -- the embedded DNS server at 127.0.0.11
- :mod:`~dockyard.network.etcfiles` -- /etc/hosts, /etc/resolv.conf, /etc/hostname contents
- :mod:`~dockyard.network.modes` -- ``--network`` modes (none, host, container:<id>, ...)
"""

from __future__ import annotations

from dockyard.network.manager import Endpoint, Network, NetworkConfig, NetworkManager
from dockyard.network.modes import NetworkMode, parse_network_mode
from dockyard.network.ports import PortBinding, PortSpec, parse_port_spec, parse_port_specs

__all__ = [
    "Endpoint",
    "Network",
    "NetworkConfig",
    "NetworkManager",
    "NetworkMode",
    "PortBinding",
    "PortSpec",
    "parse_network_mode",
    "parse_port_spec",
    "parse_port_specs",
]
