"""Docker's JSON for networks, endpoints and published ports (Engine API v1.41).

Inputs are :class:`dockyard.network.Network` / ``Endpoint`` / ``PortBinding`` values and the
container's ``c.network`` view (see :mod:`dockyard.daemon.networks`: ``endpoints()``,
``attachments(network_mode)``, ``ports()``, ``sandbox_key()``).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from typing import Any

__all__ = ["container_network_settings", "endpoint_id", "network_json", "port_summary"]

SCOPE = "local"


def endpoint_id(network_id: str, container_id: str) -> str:
    return hashlib.sha256(f"{network_id}/{container_id}".encode()).hexdigest()


def _created(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%f000Z")


def network_json(net: Any, names: dict[str, str] | None = None, *, verbose: bool = True) -> dict[str, Any]:
    config: list[dict[str, str]] = []
    if net.subnet:
        config.append({"Subnet": net.subnet, "Gateway": net.gateway})
    if net.subnet6:
        config.append({"Subnet": net.subnet6, "Gateway": net.gateway6 or ""})
    containers: dict[str, Any] = {}
    if verbose:
        for cid, ep in net.endpoints.items():
            containers[cid] = {
                "Name": ep.name or (names or {}).get(cid, ""),
                "EndpointID": endpoint_id(net.id, cid), "MacAddress": ep.mac,
                "IPv4Address": f"{ep.ip}/{ep.prefixlen}",
                "IPv6Address": f"{ep.ip6}/{ep.prefixlen6}" if ep.ip6 else ""}
    options = dict(net.options)
    if net.name == "bridge":
        options = {"com.docker.network.bridge.default_bridge": "true",
                   "com.docker.network.bridge.enable_icc": "true",
                   "com.docker.network.bridge.enable_ip_masquerade": "true",
                   "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                   "com.docker.network.bridge.name": net.bridge,
                   "com.docker.network.driver.mtu": "1500", **options}
    return {
        "Name": net.name, "Id": net.id, "Created": _created(net.created), "Scope": SCOPE,
        "Driver": net.driver, "EnableIPv6": net.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": None if net.predefined else {},
                 "Config": config},
        "Internal": net.internal, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
        "Options": options, "Labels": dict(net.labels),
    }


def _ports_map(exposed: Iterable[str], bindings: Iterable[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {key if "/" in key else f"{key}/tcp": None for key in exposed}
    for b in bindings:
        key = f"{b.container_port}/{b.proto}"
        out[key] = (out.get(key) or []) + [{"HostIp": b.host_ip, "HostPort": str(b.host_port)}]
    return out


def _endpoint_json(net: Any, ep: Any, att: Any = None) -> dict[str, Any]:
    return {"IPAMConfig": _ipam_config(att), "Links": None,
            "Aliases": [*ep.aliases, ep.container_id[:12]] if not net.predefined else None,
            "NetworkID": net.id, "EndpointID": endpoint_id(net.id, ep.container_id),
            "Gateway": ep.gateway, "IPAddress": ep.ip, "IPPrefixLen": ep.prefixlen,
            "IPv6Gateway": ep.gateway6 or "", "GlobalIPv6Address": ep.ip6 or "",
            "GlobalIPv6PrefixLen": ep.prefixlen6 or 0, "MacAddress": ep.mac, "DriverOpts": None}


_EMPTY_ENDPOINT: dict[str, Any] = {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "",
                                   "EndpointID": "", "Gateway": "", "IPAddress": "",
                                   "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                                   "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}
_PREDEFINED = ("bridge", "host", "none")


def _ipam_config(att: Any) -> dict[str, str] | None:
    return {"IPv4Address": att.ip} if att is not None and att.ip else None


def _sandbox_only(att: Any) -> bool:
    """``none`` and ``host`` give a container no endpoint of ours, yet dockerd shows one."""
    return att.network is not None and att.network.driver in ("null", "host")


def _configured_json(c: Any, att: Any, *, running: bool) -> dict[str, Any]:
    """A network the container is on by its settings but not attached to right now.

    What dockerd 20.10 shows: before the first start only what create or ``network connect``
    asked for (``NetworkID`` empty; connect already adds the short-id alias on a user-defined
    network); after a stop the network's id and the aliases stay, the addresses go.
    ``none``/``host`` have an id (and, while running, an endpoint id) once the container ran.
    """
    started = c.state.status != "created"
    out = dict(_EMPTY_ENDPOINT)
    out["IPAMConfig"] = _ipam_config(att)
    user_defined = att.name not in _PREDEFINED
    if user_defined and (att.joined_id or att.connected):
        out["Aliases"] = [*att.aliases, c.id[:12]]
    elif att.aliases:
        out["Aliases"] = list(att.aliases)
    if att.joined_id:
        out["NetworkID"] = att.joined_id
    elif _sandbox_only(att) and started:
        out["NetworkID"] = att.network.id
        if running:
            out["EndpointID"] = endpoint_id(att.network.id, c.id)
    return out


def container_network_settings(c: Any, view: Any) -> dict[str, Any]:
    """``NetworkSettings`` of container inspect.

    ``Networks`` lists the endpoints the container has now, and -- when it is not running, or
    for ``none``/``host`` -- the networks it is configured on (see :func:`_configured_json`).
    Keys are sorted, as Go's JSON encoder writes dockerd's map.
    """
    mode = c.host_config.get("NetworkMode")
    running = c.state.status in ("running", "paused")
    eps = view.endpoints()
    attached = {net.name: (net, ep) for net, ep in eps}
    networks: dict[str, Any] = {}
    for att in view.attachments(mode):
        if att.name in attached:
            net, ep = attached.pop(att.name)
            networks[att.name] = _endpoint_json(net, ep, att)
        elif not running or _sandbox_only(att):
            networks[att.name] = _configured_json(c, att, running=running)
    for name, (net, ep) in attached.items():
        networks[name] = _endpoint_json(net, ep)
    primary = next((_endpoint_json(n, e) for n, e in eps if n.name == "bridge"), _EMPTY_ENDPOINT)
    ports = _ports_map(c.config.get("ExposedPorts") or {}, view.ports()) if running else {}
    return {"Bridge": "", "SandboxID": c.id if running else "", "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": ports,
            "SandboxKey": view.sandbox_key() if running else "",
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": primary["EndpointID"], "Gateway": primary["Gateway"],
            "GlobalIPv6Address": primary["GlobalIPv6Address"],
            "GlobalIPv6PrefixLen": primary["GlobalIPv6PrefixLen"],
            "IPAddress": primary["IPAddress"], "IPPrefixLen": primary["IPPrefixLen"],
            "IPv6Gateway": primary["IPv6Gateway"], "MacAddress": primary["MacAddress"],
            "Networks": dict(sorted(networks.items()))}


def port_summary(c: Any, view: Any) -> list[dict[str, Any]]:
    """``Ports`` of ``GET /containers/json`` (what ``docker ps`` prints)."""
    out: list[dict[str, Any]] = []
    published: set[str] = set()
    if c.state.status in ("running", "paused"):
        for b in view.ports():
            published.add(f"{b.container_port}/{b.proto}")
            out.append({"IP": b.host_ip, "PrivatePort": b.container_port,
                        "PublicPort": b.host_port, "Type": b.proto})
    for key in c.config.get("ExposedPorts") or {}:
        port, _, proto = key.partition("/")
        if f"{port}/{proto or 'tcp'}" not in published and port.isdigit():
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return out
