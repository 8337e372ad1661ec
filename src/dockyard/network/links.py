"""Kernel links through netlink (pyroute2): bridges, veth pairs, addresses, routes.

One container endpoint on a bridge network::

      host netns                              container netns
    +---------------------------+           +----------------------------+
    | dockyard0 (bridge)        |           | eth0  172.18.0.2/16        |
    |   172.18.0.1/16 (gateway) |           |   mac 02:42:ac:12:00:02    |
    |   +-- dyv1a2b3c4d --------+-- veth ---+   default via 172.18.0.1   |
    +---------------------------+           +----------------------------+

The pair is created by one netlink request with the peer born inside the container's namespace
(IFLA_NET_NS_FD), already named ``ethN`` and carrying its MAC; it is then addressed and routed
from a thread that joined that namespace (:mod:`dockyard.network.netns`). Deleting the host end
deletes both ends (veth(4)), which is how every rollback and teardown works.

Several Dockyard instances may share a host (tests run many daemons in parallel). Two bridges
carrying the same subnet break one of them without a word: the kernel sends that subnet's
traffic through whichever route came first, so a published port's DNAT lands on the other
bridge, where nothing answers ARP (``connect`` fails with EHOSTUNREACH after ~3 s). So
:func:`ensure_bridge` refuses a bridge another instance owns and, for the default bridge and
automatically chosen subnets, an address whose subnet another link already routes at least as
specifically (an explicit ``--subnet`` only logs it, as Docker accepts it); and
:func:`bridge_lock` (a host-wide flock) makes "check the host's routes, choose, create the
bridge" one step for every instance.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dockyard.errors import Conflict, Internal, NotFound
from dockyard.network.netns import run_in_netns

__all__ = [
    "BRIDGE_LOCK",
    "ContainerIface",
    "bridge_exists",
    "bridge_lock",
    "configure_container_iface",
    "create_veth",
    "delete_link",
    "ensure_bridge",
    "host_routes",
    "link_exists",
    "mac_for_ip",
    "owned_bridges",
    "remove_container_iface",
    "routes_taking",
    "set_sysctl",
]

log = logging.getLogger(__name__)

BRIDGE_LOCK = "/run/dockyard-bridges.lock"
_THREAD_LOCK = threading.RLock()
_held = threading.local()


@dataclass(frozen=True)
class ContainerIface:
    """What goes on the container side of a veth pair."""

    peer: str                        # the peer's name in the netns (renamed unless "ethN")
    address: str                     # "172.18.0.2/16"
    gateway: str | None              # default route, set only if the netns has none yet
    address6: str | None = None      # "fd00:1::2/64"
    gateway6: str | None = None


def mac_for_ip(ip: str) -> str:
    """Docker's scheme: 02:42 followed by the four bytes of the IPv4 address."""
    raw = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in raw)


def set_sysctl(key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    with open(path, "w") as f:
        f.write(value)


def _index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return _index(ipr, name) is not None


def bridge_exists(name: str) -> bool:
    return link_exists(name)


@contextlib.contextmanager
def bridge_lock(path: str = BRIDGE_LOCK) -> Iterator[None]:
    """Host-wide: one Dockyard instance at a time chooses subnets and creates bridges.

    flock(2) on ``path``; re-entrant within a process (a thread lock plus a depth count), as a
    second flock on a new open file description of the same file would wait for itself.
    """
    with _THREAD_LOCK:
        depth = getattr(_held, "depth", 0)
        if depth:
            _held.depth = depth + 1
            try:
                yield
            finally:
                _held.depth = depth
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _held.depth = 1
            try:
                yield
            finally:
                _held.depth = 0
        finally:
            os.close(fd)   # closing the last fd of the description drops the flock


def routes_taking(cidr: str, exclude: str = "") -> list[tuple[str, str]]:
    """(route, link) of main-table routes through links other than ``exclude`` that would
    carry traffic meant for ``cidr``: overlapping it and at least as specific."""
    net = ipaddress.ip_network(cidr, strict=False)
    family = 2 if net.version == 4 else 10
    found = []
    with IPRoute() as ipr:
        names = {link["index"]: str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()}
        for r in ipr.get_routes(family=family, table=254):
            dst = r.get_attr("RTA_DST")
            if not dst or r["dst_len"] < net.prefixlen:
                continue
            route = ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False)
            link = names.get(r.get_attr("RTA_OIF") or 0, "")
            if link and link != exclude and route.overlaps(net):  # type: ignore[arg-type]
                found.append((str(route), link))
    return found


def ensure_bridge(name: str, gateways: list[str], mtu: int = 1500, owner: str = "", *,
                  exclusive: bool = True) -> None:
    """Create (or adopt) bridge ``name`` with addresses ``gateways`` ("ip/prefix"), up.

    Idempotent, so a restarted daemon re-runs it for every network it knows. ``owner`` goes
    into the link's alias (IFLA_IFALIAS) so that leftovers of a daemon whose state directory
    is gone can be recognised and removed (:func:`owned_bridges`). Raises Conflict, changing
    nothing, if another instance owns the bridge or (``exclusive``) another link already
    routes one of the subnets (see the module docstring); without ``exclusive`` that is only
    logged (Docker accepts an explicit ``--subnet`` the host routes elsewhere). Call it under
    :func:`bridge_lock`.
    """
    with IPRoute() as ipr:
        idx = _index(ipr, name)
        if idx is not None and owner:
            alias = str(ipr.get_links(idx)[0].get_attr("IFLA_IFALIAS") or "")
            if alias.startswith("dockyard:") and alias != owner:
                raise Conflict(f"bridge {name} belongs to another Dockyard instance ({alias})")
        have = set() if idx is None else {
            f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=idx)}
        for cidr in gateways:
            taken = [] if cidr in have else routes_taking(cidr, exclude=name)
            if taken:
                route, link = taken[0]
                why = f"{link} already routes {route}"
                if exclusive:
                    raise Conflict(f"cannot use {ipaddress.ip_interface(cidr).network} for "
                                   f"bridge {name}: {why}")
                log.warning("bridge %s: %s; the host reaches its containers only once that "
                            "route is gone", name, why)
        if idx is None:
            try:
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            except NetlinkError as exc:
                raise Internal(f"cannot create bridge {name}: {exc}") from exc
            idx = _index(ipr, name)
            if owner:
                ipr.link("set", index=idx, ifalias=owner)
            assert idx is not None
        for cidr in gateways:
            if cidr in have:
                continue
            ip, plen = cidr.split("/")
            try:
                ipr.addr("add", index=idx, address=ip, prefixlen=int(plen))
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise Internal(f"cannot address bridge {name}: {exc}") from exc
        ipr.link("set", index=idx, state="up")
    # Docker sets route_localnet on its bridge so that DNAT of 127.0.0.1:port works
    set_sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")


def owned_bridges(prefix: str = "dockyard:") -> list[tuple[str, str, int]]:
    """(name, alias, number of ports) of every bridge whose alias starts with ``prefix``."""
    found = []
    with IPRoute() as ipr:
        links = list(ipr.get_links())
        masters: dict[int, int] = {}
        for link in links:
            master = link.get_attr("IFLA_MASTER")
            if master:
                masters[master] = masters.get(master, 0) + 1
        for link in links:
            alias = link.get_attr("IFLA_IFALIAS") or ""
            if alias.startswith(prefix):
                found.append((str(link.get_attr("IFLA_IFNAME")), alias, masters.get(link["index"], 0)))
    return found


def delete_link(name: str) -> bool:
    """Delete a link by name if it exists; True if something was deleted."""
    with IPRoute() as ipr:
        idx = _index(ipr, name)
        if idx is None:
            return False
        try:
            ipr.link("del", index=idx)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return False
            raise Internal(f"cannot delete link {name}: {exc}") from exc
        return True


def create_veth(host: str, peer: str, bridge: str, netns_path: str, *, mtu: int = 1500,
                mac: str | None = None) -> str:
    """Create a veth pair in ONE netlink request: host end enslaved to ``bridge`` and up, peer
    born inside the container's namespace (IFLA_NET_NS_FD in the peer's info).

    Creating the peer in place avoids moving it afterwards, which costs the kernel an RCU grace
    period (``dev_change_net_namespace`` calls ``synchronize_net``): ~20 ms per container.
    If ``peer`` is taken in the namespace, a temporary name is used (the caller renames it);
    returns the peer's actual name.
    """
    try:
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise NotFound(f"network namespace {netns_path} does not exist") from exc
    try:
        with IPRoute() as ipr:
            br = _index(ipr, bridge)
            if br is None:
                raise NotFound(f"bridge {bridge} does not exist")
            names = [peer, "dyp" + host[-8:]]
            for i, name in enumerate(names):
                info: dict[str, object] = {"ifname": name, "net_ns_fd": fd}
                if mac:
                    info["address"] = mac
                try:
                    ipr.link("add", ifname=host, kind="veth", master=br, state="up", mtu=mtu,
                             peer=info)
                    # hairpin: a container reaching its own published port through a host
                    # address gets its packets back out of the port they came in by (as
                    # Docker does when NAT, not docker-proxy, serves published ports)
                    # (netlink, not /sys: sysfs shows the namespace of whoever mounted it)
                    ipr.brport("set", index=_index(ipr, host), mode=1)
                    return name
                except NetlinkError as exc:
                    if exc.code != errno.EEXIST or i == len(names) - 1:
                        raise
                    if _index(ipr, host) is not None:
                        raise Conflict(f"link {host} already exists") from exc
            raise AssertionError("unreachable")
    except NetlinkError as exc:
        raise Internal(f"cannot create veth {host}: {exc}") from exc
    finally:
        os.close(fd)


def _free_eth_name(ipr: IPRoute) -> str:
    names = {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
    n = 0
    while f"eth{n}" in names:
        n += 1
    return f"eth{n}"


def _has_default_route(ipr: IPRoute, family: int) -> bool:
    return any(r["dst_len"] == 0 for r in ipr.get_routes(family=family, table=254))


def configure_container_iface(netns_path: str, spec: ContainerIface) -> str:
    """Rename the moved peer to ``ethN``, give it MAC, addresses, routes; return its name."""

    def body() -> str:
        with IPRoute() as ipr:
            lo = _index(ipr, "lo")
            if lo is not None:
                ipr.link("set", index=lo, state="up")
            idx = _index(ipr, spec.peer)
            if idx is None:
                raise NotFound(f"link {spec.peer} is not in {netns_path}")
            name = spec.peer
            if not name.startswith("eth"):
                name = _free_eth_name(ipr)
                ipr.link("set", index=idx, ifname=name)
            if spec.address6:
                # no DAD: the address is ours by IPAM, and DAD would delay usability ~1 s
                set_sysctl(f"net.ipv6.conf.{name}.accept_dad", "0")
            ip, plen = spec.address.split("/")
            ipr.addr("add", index=idx, address=ip, prefixlen=int(plen))
            if spec.address6:
                ip6, plen6 = spec.address6.split("/")
                ipr.addr("add", index=idx, address=ip6, prefixlen=int(plen6))
            ipr.link("set", index=idx, state="up")
            if spec.gateway and not _has_default_route(ipr, 2):
                ipr.route("add", dst="0.0.0.0/0", gateway=spec.gateway, oif=idx)
            if spec.gateway6 and not _has_default_route(ipr, 10):
                ipr.route("add", dst="::/0", gateway=spec.gateway6, oif=idx, family=10)
            return name

    try:
        return run_in_netns(netns_path, body)
    except NetlinkError as exc:
        raise Internal(f"cannot configure {spec.peer} in {netns_path}: {exc}") from exc


def remove_container_iface(netns_path: str, name: str) -> bool:
    """Delete ``name`` inside the netns (used by disconnect when the host end is already gone)."""

    def body() -> bool:
        with IPRoute() as ipr:
            idx = _index(ipr, name)
            if idx is None:
                return False
            ipr.link("del", index=idx)
            return True

    return run_in_netns(netns_path, body)


def host_routes() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Networks the host already reaches directly: routes and interface addresses."""
    found: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    with IPRoute() as ipr:
        for fam in (2, 10):
            for r in ipr.get_routes(family=fam, table=254):
                dst = r.get_attr("RTA_DST")
                if dst and r["dst_len"]:
                    found.append(ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False))
        for a in ipr.get_addr():
            addr = a.get_attr("IFA_ADDRESS")
            if addr and not addr.startswith(("127.", "fe80", "::1")):
                found.append(ipaddress.ip_network(f"{addr}/{a['prefixlen']}", strict=False))
    return found
