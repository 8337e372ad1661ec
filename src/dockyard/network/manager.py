"""NetworkManager: the daemon's one entry point to networking.

State on disk (each record written with :mod:`dockyard.atomic`)::

    <state_dir>/
      networks/<network id>.json   the network (subnet, gateway, bridge, options) and its
                                   endpoints: container id -> address, MAC, veth names,
                                   published ports, and "state": "creating" | "ready"

Crash safety: an endpoint is recorded as ``creating`` (with the veth name it is about to use and
the address it took) *before* any kernel object exists, and becomes ``ready`` only when
everything is in place. A failure rolls back (deleting the host end of a veth deletes both
ends); a SIGKILL leaves a ``creating`` record that :meth:`NetworkManager.cleanup_stale` turns
back into nothing. Links carrying our prefixes but no record (killed between creating a bridge
and writing its network) are deleted too. The kernel is the source of truth for "ready" ones:
an endpoint whose veth is gone (its namespace died) is dropped.

Concurrency: methods may be called from several threads (the daemon's executor). One lock
serialises changes; readers (:meth:`resolve` for DNS, :meth:`list`) see an immutable snapshot,
because the network map is replaced, never mutated.
"""

from __future__ import annotations

import builtins
import contextlib
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pyroute2 import IPRoute

from dockyard.atomic import atomic_write, atomic_write_json
from dockyard.errors import Conflict, DockyardError, Forbidden, InvalidArgument, NotFound
from dockyard.network import etcfiles, firewall, ipam, links
from dockyard.network.dns import QTYPE_A, QTYPE_AAAA, QTYPE_PTR
from dockyard.network.modes import parse_network_mode
from dockyard.network.ports import PortBinding, PortReservations, PortSpec

__all__ = ["Endpoint", "Network", "NetworkConfig", "NetworkManager"]

log = logging.getLogger(__name__)

PREDEFINED = ("bridge", "host", "none")


@dataclass(frozen=True)
class NetworkConfig:
    """Daemon settings (daemon.json names in comments); tests change the name prefixes."""

    bip: str | None = None                                     # "bip": "172.18.0.1/16"
    default_address_pools: tuple[ipam.AddressPool, ...] = ipam.DEFAULT_POOLS
    fixed_cidr_v6: str | None = None                           # "fixed-cidr-v6"
    enable_ipv6: bool = False                                  # "ipv6" (default bridge)
    bridge_name: str = "dockyard0"
    bridge_prefix: str = "dy-"                                 # user networks: dy-<id>
    veth_prefix: str = "dyv"
    fw_table: str = "dockyard"
    mtu: int = 1500
    manage_firewall: bool = True                               # "iptables": false disables
    default_bridge: bool = True                                # "bridge": "none" disables
    firewall_backend: str = "auto"                             # "auto" | "nft" | "iptables"

    @classmethod
    def from_daemon_json(cls, raw: Mapping[str, Any]) -> NetworkConfig:
        """The network keys of daemon.json: bip, default-address-pools, bridge, iptables,
        ipv6, fixed-cidr-v6, mtu."""
        changes: dict[str, Any] = {}
        if raw.get("bip"):
            try:
                ipaddress.ip_interface(str(raw["bip"]))
            except ValueError as exc:
                raise InvalidArgument(f"invalid bip {raw['bip']!r}") from exc
            changes["bip"] = str(raw["bip"])
        if raw.get("default-address-pools"):
            changes["default_address_pools"] = ipam.parse_pools(raw["default-address-pools"])
        if raw.get("bridge") == "none":       # dockerd's --bridge=none: no default bridge
            changes["default_bridge"] = False
        elif raw.get("bridge"):
            changes["bridge_name"] = str(raw["bridge"])
        if "iptables" in raw:
            changes["manage_firewall"] = bool(raw["iptables"])
        if "ipv6" in raw:
            changes["enable_ipv6"] = bool(raw["ipv6"])
        if raw.get("fixed-cidr-v6"):
            changes["fixed_cidr_v6"] = str(raw["fixed-cidr-v6"])
        if raw.get("mtu"):
            changes["mtu"] = int(raw["mtu"])
        return replace(cls(), **changes)


@dataclass(frozen=True)
class Endpoint:
    container_id: str
    network_id: str
    name: str
    aliases: tuple[str, ...]
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    veth_host: str
    veth_peer: str
    netns_path: str
    state: str = "creating"
    iface: str = ""
    ip6: str | None = None
    prefixlen6: int | None = None
    gateway6: str | None = None
    ports: tuple[PortBinding, ...] = ()

    def to_dict(self) -> dict[str, object]:
        raw = {k: getattr(self, k) for k in self.__dataclass_fields__}
        raw["aliases"] = list(self.aliases)
        raw["ports"] = [p.to_dict() for p in self.ports]
        return raw

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> Endpoint:
        values: dict[str, Any] = dict(raw)
        values["aliases"] = tuple(values.get("aliases") or ())
        values["ports"] = tuple(PortBinding.from_dict(p) for p in values.get("ports") or ())
        return cls(**values)


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    driver: str                      # "bridge" | "host" | "null"
    bridge: str = ""
    subnet: str = ""
    gateway: str = ""
    subnet6: str | None = None
    gateway6: str | None = None
    internal: bool = False
    enable_ipv6: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    created: float = 0.0
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED

    @property
    def user_defined(self) -> bool:
        """User-defined bridge networks get the embedded DNS (the default bridge does not)."""
        return self.driver == "bridge" and not self.predefined

    def to_dict(self) -> dict[str, object]:
        raw = {k: getattr(self, k) for k in self.__dataclass_fields__}
        raw["labels"] = dict(self.labels)
        raw["options"] = dict(self.options)
        raw["endpoints"] = {k: e.to_dict() for k, e in self.endpoints.items()}
        return raw

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> Network:
        values: dict[str, Any] = dict(raw)
        eps = values.get("endpoints") or {}
        values["endpoints"] = {k: Endpoint.from_dict(e) for k, e in eps.items()}
        return cls(**values)


class NetworkManager:
    """Networks, endpoints, published ports and the firewall, persisted in ``state_dir``.

    Lifecycle: ``nm = NetworkManager(dir, cfg)`` loads records (no kernel changes);
    ``nm.start(live)`` cleans up after a crash and (re)creates bridges, rules and port
    reservations; ``nm.shutdown()`` releases ports and removes the firewall table.
    """

    def __init__(self, state_dir: str, config: NetworkConfig | None = None,
                 fw: Any = None) -> None:
        self.state_dir = state_dir
        self.config = config or NetworkConfig()
        self._dir = os.path.join(state_dir, "networks")
        os.makedirs(self._dir, exist_ok=True)
        self._lock = threading.RLock()
        self._ports = PortReservations()
        self._fw = fw
        self._kernel_ready = False
        self._kernel_starting = False
        # MAC -> host veth of endpoints detached while the kernel still tears their netns down
        self._lingering: dict[str, str] = {}
        # bridge alias: "dockyard:<nft table>:<state dir>" (see sweep_abandoned)
        self._owner = f"dockyard:{self.config.fw_table}:{os.path.abspath(state_dir)}"
        self._networks: Mapping[str, Network] = self._load()

    # ---------------------------------------------------------------- records
    def _load(self) -> dict[str, Network]:
        found: dict[str, Network] = {}
        for entry in sorted(os.listdir(self._dir)):
            if not entry.endswith(".json") or entry.startswith("."):
                continue
            try:
                with open(os.path.join(self._dir, entry)) as f:
                    net = Network.from_dict(json.load(f))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable network record %s: %s", entry, exc)
                continue
            found[net.id] = net
        return found

    def _save(self, net: Network, *, durable: bool = True) -> None:
        atomic_write_json(os.path.join(self._dir, f"{net.id}.json"), net.to_dict(),
                          durable=durable)
        nets = dict(self._networks)
        nets[net.id] = net
        self._networks = nets

    def _drop(self, net: Network) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self._dir, f"{net.id}.json"))
        nets = dict(self._networks)
        nets.pop(net.id, None)
        self._networks = nets

    def _fw_pending(self) -> bool:
        """True while :meth:`_ensure_kernel` itself applies the first ruleset."""
        return self._kernel_starting

    def _firewall(self) -> Any:
        if not self.config.manage_firewall:
            return None
        if self._fw is None:
            self._fw = firewall.detect_firewall(self.config.fw_table, self.config.firewall_backend)
        return self._fw

    def _apply_firewall(self) -> None:
        if not self._kernel_ready and not self._fw_pending():
            return
        fw = self._firewall()
        if fw is None:
            return
        nets = [n for n in self._networks.values() if n.driver == "bridge"]
        rules = [firewall.FwNetwork(n.bridge, n.subnet, n.internal, n.subnet6) for n in nets]
        ports = [
            firewall.FwPort(p.proto, p.host_ip, p.host_port, ep.ip, p.container_port, n.bridge)
            for n in nets for ep in n.endpoints.values() for p in ep.ports
        ]
        fw.apply(rules, ports)

    # ---------------------------------------------------------------- lookups
    def list(self) -> builtins.list[Network]:
        return sorted(self._networks.values(), key=lambda n: n.created)

    def get(self, id_or_name: str) -> Network:
        """By full id, exact name, or unique id prefix (Docker's order)."""
        nets = self._networks
        if id_or_name in nets:
            return nets[id_or_name]
        for net in nets.values():
            if net.name == id_or_name:
                return net
        matches = [n for n in nets.values() if id_or_name and n.id.startswith(id_or_name)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"network {id_or_name} is ambiguous ({len(matches)} matches found based on ID prefix)")
        raise NotFound(f"network {id_or_name} not found")

    def endpoints_of(self, container_id: str) -> builtins.list[tuple[Network, Endpoint]]:
        return [(n, n.endpoints[container_id]) for n in self.list() if container_id in n.endpoints]

    # ---------------------------------------------------------------- lifecycle
    def start(self, live_containers: Iterable[str] | None = None) -> None:
        """Recover after a restart; bring the kernel in line if any endpoint survived.

        ``live_containers``: ids whose endpoints must be kept (live-restore); ``None`` keeps
        every endpoint whose veth still exists. Bridges, the nft table and ip_forward are
        otherwise set up lazily, by the first create/attach/publish (:meth:`_ensure_kernel`),
        so a daemon that never runs a bridged container changes nothing on the host.
        """
        with self._lock:
            self._ensure_predefined()
            self.cleanup_stale(live_containers)
            if any(n.endpoints for n in self._networks.values()):
                self._ensure_kernel()

    def prepare(self) -> None:
        """Set the kernel up now (bridges, nft table, ip_forward) instead of on first use."""
        with self._lock:
            self._ensure_kernel()

    def _ensure_kernel(self) -> None:
        if self._kernel_ready:
            return
        self._kernel_starting = True
        try:
            self._bring_up()
        finally:
            self._kernel_starting = False
        self._kernel_ready = True

    def _bring_up(self) -> None:
        links.set_sysctl("net.ipv4.ip_forward", "1")
        with links.bridge_lock():
            self._rechoose_default_subnet()
            for net in self._networks.values():
                if net.driver == "bridge":   # a user network's subnet may be the user's choice
                    links.ensure_bridge(net.bridge, self._bridge_addresses(net),
                                        self.config.mtu, self._owner,
                                        exclusive=net.name == "bridge")
        for net in self._networks.values():
            for ep in net.endpoints.values():
                for binding in ep.ports:
                    self._rereserve(binding)
        self._apply_firewall()

    def _rechoose_default_subnet(self) -> None:
        """The default bridge's subnet is chosen at start but its bridge made on first use: if
        it was chosen automatically (no ``bip``) and another link routes it by now (another
        instance on this host), choose again while nothing uses it."""
        net = next((n for n in self._networks.values() if n.name == "bridge"), None)
        if (net is None or self.config.bip or net.endpoints or links.link_exists(net.bridge)
                or not links.routes_taking(net.subnet, exclude=net.bridge)):
            return
        used = [s for s in self._used_subnets() if str(s) != net.subnet]
        subnet = ipam.choose_subnet(self.config.default_address_pools, used, _host_networks())
        log.info("default bridge subnet %s is routed elsewhere now: using %s", net.subnet, subnet)
        self._save(replace(net, subnet=str(subnet), gateway=str(subnet.network_address + 1)))

    def shutdown(self, *, remove_rules: bool = True) -> None:
        """Release host ports and remove the firewall table; with no endpoint left, the
        bridges go too (recreated on first use). Endpoints of live containers stay."""
        with self._lock:
            self._ports.release_all()
            fw = self._firewall() if remove_rules and self._kernel_ready else None
            if fw is not None:
                fw.remove()
            if remove_rules and not any(n.endpoints for n in self._networks.values()):
                for net in self._networks.values():
                    if net.driver == "bridge":
                        links.delete_link(net.bridge)
            self._kernel_ready = False

    def destroy_all(self) -> None:
        """Remove every endpoint, bridge, rule and record (tests, `dockyard` uninstall)."""
        with self._lock:
            for net in list(self._networks.values()):
                for ep in net.endpoints.values():
                    links.delete_link(ep.veth_host)
                if net.driver == "bridge":
                    links.delete_link(net.bridge)
                self._drop(net)
            self._ports.release_all()
            fw = self._firewall()
            if fw is not None:
                fw.remove()
            self._kernel_ready = False

    def cleanup_stale(self, live_containers: Iterable[str] | None = None) -> builtins.list[str]:
        """Undo what a killed daemon left half-made; returns what was removed (for logs)."""
        live = None if live_containers is None else set(live_containers)
        removed: builtins.list[str] = []
        with self._lock:
            for net in list(self._networks.values()):
                keep: dict[str, Endpoint] = {}
                for cid, ep in net.endpoints.items():
                    alive = (ep.state == "ready" and os.path.exists(ep.netns_path)
                             and links.link_exists(ep.veth_host))
                    if alive and (live is None or cid in live):
                        keep[cid] = ep
                        continue
                    if links.delete_link(ep.veth_host):
                        removed.append(ep.veth_host)
                    removed.append(f"endpoint {cid[:12]} on {net.name}")
                if len(keep) != len(net.endpoints):
                    self._save(replace(net, endpoints=keep))
            removed += self._delete_orphan_links()
            removed += self.sweep_abandoned()
        return removed

    def sweep_abandoned(self) -> builtins.list[str]:
        """Remove bridges (and their nft tables) of Dockyard daemons whose state directory no
        longer exists -- e.g. test daemons killed without shutdown -- if nothing is attached."""
        removed = []
        for name, alias, ports in links.owned_bridges():
            _, table, state_dir = [*alias.split(":", 2), "", ""][:3]
            if ports or not state_dir.startswith("/") or os.path.exists(state_dir):
                continue
            if links.delete_link(name):
                removed.append(name)
            if table and table != self.config.fw_table and self.config.manage_firewall:
                with contextlib.suppress(DockyardError, OSError):
                    firewall.detect_firewall(table, self.config.firewall_backend).remove()
        return removed

    def _delete_orphan_links(self) -> builtins.list[str]:
        known = {self.config.bridge_name}
        for net in self._networks.values():
            known.add(net.bridge)
            known.update(ep.veth_host for ep in net.endpoints.values())
        prefixes = (self.config.bridge_prefix, self.config.veth_prefix)
        with IPRoute() as ipr:
            names = [str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]
        removed = []
        for name in names:
            if name.startswith(prefixes) and name not in known and links.delete_link(name):
                removed.append(name)
        return removed

    def _ensure_predefined(self) -> None:
        have = {n.name for n in self._networks.values()}
        if "none" not in have:
            self._save(Network(_new_id(), "none", "null", created=time.time()))
        if "host" not in have:
            self._save(Network(_new_id(), "host", "host", created=time.time()))
        if "bridge" not in have and self.config.default_bridge:
            cfg = self.config
            if cfg.bip:
                iface = ipaddress.ip_interface(cfg.bip)
                subnet = ipam.check_requested_subnet(str(iface.network), self._used_subnets())
                gateway = str(iface.ip)
            else:
                subnet = ipam.choose_subnet(cfg.default_address_pools, self._used_subnets(),
                                            _host_networks(exclude=(cfg.bridge_name,)))
                gateway = str(subnet.network_address + 1)
            subnet6 = gateway6 = None
            if cfg.enable_ipv6 and cfg.fixed_cidr_v6:
                net6 = ipaddress.ip_network(cfg.fixed_cidr_v6)
                subnet6, gateway6 = str(net6), str(net6.network_address + 1)
            self._save(Network(_new_id(), "bridge", "bridge", bridge=cfg.bridge_name,
                               subnet=str(subnet), gateway=gateway, subnet6=subnet6,
                               gateway6=gateway6, enable_ipv6=bool(subnet6),
                               options={"com.docker.network.bridge.name": cfg.bridge_name},
                               created=time.time()))

    def _used_subnets(self) -> builtins.list[ipam.IPNet]:
        used: builtins.list[ipam.IPNet] = []
        for n in self._networks.values():
            for s in (n.subnet, n.subnet6):
                if s:
                    used.append(ipaddress.ip_network(s))
        return used

    @staticmethod
    def _bridge_addresses(net: Network) -> builtins.list[str]:
        out = [f"{net.gateway}/{ipaddress.ip_network(net.subnet).prefixlen}"]
        if net.subnet6 and net.gateway6:
            out.append(f"{net.gateway6}/{ipaddress.ip_network(net.subnet6).prefixlen}")
        return out

    # ---------------------------------------------------------------- networks
    def create_network(self, name: str, driver: str = "bridge", subnet: str | None = None,
                       gateway: str | None = None, internal: bool = False,
                       labels: Mapping[str, str] | None = None,
                       options: Mapping[str, str] | None = None, enable_ipv6: bool = False,
                       subnet6: str | None = None, gateway6: str | None = None) -> Network:
        if driver != "bridge":
            raise NotFound(f"plugin \"{driver}\" not found") if driver not in ("host", "null") \
                else Forbidden(f"only one instance of \"{driver}\" network is allowed")
        if not name or "/" in name:
            raise InvalidArgument(f"invalid network name {name!r}")
        # the host-wide lock: no other instance takes the subnet between our choice and bridge
        with self._lock, links.bridge_lock():
            if any(n.name == name for n in self._networks.values()):
                raise Conflict(f"network with name {name} already exists")
            used = self._used_subnets()
            if subnet:
                net4 = ipam.check_requested_subnet(subnet, used)
            else:
                net4 = ipam.choose_subnet(self.config.default_address_pools, used,
                                          _host_networks())
            gw = self._gateway(net4, gateway)
            net6 = gw6 = None
            if enable_ipv6:
                if not subnet6:
                    raise InvalidArgument("IPv6 networks need an IPv6 --subnet")
                parsed6 = ipam.check_requested_subnet(subnet6, used)
                net6, gw6 = str(parsed6), self._gateway(parsed6, gateway6)
            ident = _new_id()
            opts = dict(options or {})
            bridge = opts.get("com.docker.network.bridge.name") or (
                self.config.bridge_prefix + ident[: 15 - len(self.config.bridge_prefix)])
            if len(bridge) > 15:
                raise InvalidArgument(f"bridge name {bridge} is longer than 15 characters")
            net = Network(ident, name, "bridge", bridge=bridge, subnet=str(net4), gateway=gw,
                          subnet6=net6, gateway6=gw6, internal=internal,
                          enable_ipv6=enable_ipv6, labels=dict(labels or {}), options=opts,
                          created=time.time())
            self._ensure_kernel()
            existed = links.link_exists(bridge)   # e.g. another instance's: never deleted here
            try:
                links.ensure_bridge(bridge, self._bridge_addresses(net), self.config.mtu,
                                    self._owner, exclusive=subnet is None)
                self._save(net)
                self._apply_firewall()
            except BaseException:
                self._drop(net)
                if not existed:
                    links.delete_link(bridge)
                with contextlib.suppress(DockyardError):
                    self._apply_firewall()
                raise
            return net

    @staticmethod
    def _gateway(subnet: ipam.IPNet, gateway: str | None) -> str:
        if gateway is None:
            return str(subnet.network_address + 1)
        try:
            gw = ipaddress.ip_address(gateway)
        except ValueError as exc:
            raise InvalidArgument(f"invalid gateway address {gateway}") from exc
        if gw not in subnet:
            raise InvalidArgument(f"gateway {gateway} is not in subnet {subnet}")
        return str(gw)

    def remove_network(self, id_or_name: str) -> None:
        with self._lock:
            net = self.get(id_or_name)
            if net.predefined:
                raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
            if net.endpoints:
                raise Forbidden(
                    f"error while removing network: network {net.name} id {net.id} has active endpoints")
            self._drop(net)
            self._apply_firewall()
            links.delete_link(net.bridge)

    def prune(self, labels: Mapping[str, str | None] | None = None) -> builtins.list[str]:
        """Remove unused user-defined networks (matching all ``labels``); their names."""
        removed = []
        with self._lock:
            for net in self.list():
                if net.predefined or net.endpoints:
                    continue
                if labels and not all(
                    k in net.labels and (v is None or net.labels[k] == v) for k, v in labels.items()
                ):
                    continue
                self.remove_network(net.id)
                removed.append(net.name)
        return removed

    # ---------------------------------------------------------------- endpoints
    def attach(self, container_id: str, netns_path: str, network: str, *, name: str = "",
               aliases: Sequence[str] = (), mac: str | None = None,
               ip: str | None = None) -> Endpoint:
        """Give the container at ``netns_path`` an interface on ``network``.

        Returns the endpoint (``ip``, ``mac``, ``gateway``, ``prefixlen``, ``iface``). Nothing
        is left behind if this raises.
        """
        with self._lock:
            net = self.get(network)
            if net.driver != "bridge":
                raise InvalidArgument(f"container cannot be connected to network {net.name}")
            if not os.path.exists(netns_path):
                raise NotFound(f"network namespace {netns_path} does not exist")
            if mac:
                _check_mac(mac)
            self._ensure_kernel()
            if container_id in net.endpoints:
                raise Forbidden(
                    f"endpoint with name {name or container_id[:12]} already exists in network {net.name}")
            if ip is not None and net.predefined:
                raise InvalidArgument("user specified IP address is supported on user defined networks only")
            subnet = ipaddress.ip_network(net.subnet)
            taken = [net.gateway, *(e.ip for e in net.endpoints.values())]
            addr = ipam.allocate_address(subnet, taken, ip)
            addr6 = None
            if net.subnet6:
                taken6 = [net.gateway6 or "", *(e.ip6 or "" for e in net.endpoints.values())]
                addr6 = ipam.allocate_address(ipaddress.ip_network(net.subnet6), taken6)
            suffix = os.urandom(4).hex()[: 15 - len(self.config.veth_prefix)]
            ep = Endpoint(
                container_id=container_id, network_id=net.id, name=name,
                aliases=tuple(aliases), ip=addr, prefixlen=subnet.prefixlen,
                gateway=net.gateway, mac=_check_mac(mac) if mac else links.mac_for_ip(addr),
                veth_host=self.config.veth_prefix + suffix,
                veth_peer=f"eth{len(self.endpoints_of(container_id))}",
                netns_path=netns_path, ip6=addr6,
                prefixlen6=ipaddress.ip_network(net.subnet6).prefixlen if net.subnet6 else None,
                gateway6=net.gateway6)
            # A reused address brings back its MAC (02:42:<ip>). If the last holder's veth is
            # still on the bridge (its netns not torn down yet: slow on a busy host), the bridge
            # keeps sending that MAC to the old port, where the dead container answers RST
            # (or nothing) until its netns goes: delete it now, paying the RCU wait only here.
            lingering = self._lingering.pop(ep.mac, None)
            if lingering is not None:
                links.delete_link(lingering)
            # intent first: a crash from here on leaves a "creating" record cleanup_stale undoes
            net = replace(net, endpoints={**net.endpoints, container_id: ep})
            self._save(net, durable=False)
            try:
                peer = links.create_veth(ep.veth_host, ep.veth_peer, net.bridge, netns_path,
                                         mtu=self.config.mtu, mac=ep.mac)
                iface = links.configure_container_iface(netns_path, links.ContainerIface(
                    peer=peer, address=f"{ep.ip}/{ep.prefixlen}",
                    gateway=ep.gateway, address6=f"{addr6}/{ep.prefixlen6}" if addr6 else None,
                    gateway6=ep.gateway6))
            except BaseException:
                links.delete_link(ep.veth_host)
                rest = {k: v for k, v in net.endpoints.items() if k != container_id}
                self._save(replace(net, endpoints=rest), durable=False)
                raise
            ep = replace(ep, state="ready", iface=iface)
            self._save(replace(net, endpoints={**net.endpoints, container_id: ep}), durable=False)
            return ep

    def detach(self, container_id: str, network: str) -> None:
        """Remove the container's endpoint (and its published ports) from ``network``."""
        with self._lock:
            net = self.get(network)
            ep = net.endpoints.get(container_id)
            if ep is None:
                raise NotFound(f"container {container_id[:12]} is not connected to network {net.name}")
            rest = {k: v for k, v in net.endpoints.items() if k != container_id}
            self._save(replace(net, endpoints=rest), durable=False)
            for binding in ep.ports:
                self._ports.release(binding)
            if ep.ports:
                self._apply_firewall()
            if not os.path.exists(ep.netns_path):
                # The container is gone: the kernel deletes the pair when its netns is torn
                # down (asynchronously, in cleanup_net). Deleting it here would make us wait
                # out an RCU grace period (~25 ms) for nothing; a restart's orphan scan
                # catches it should the namespace linger. Until then the pair stays on the
                # bridge with this address's MAC: attach deletes it if its MAC comes back.
                self._lingering[ep.mac] = ep.veth_host
                if len(self._lingering) > 256:       # MACs never reused (--mac-address)
                    self._lingering = {m: v for m, v in self._lingering.items()
                                       if links.link_exists(v)}
                return
            if not links.delete_link(ep.veth_host) and ep.iface:
                with contextlib.suppress(DockyardError, OSError):
                    links.remove_container_iface(ep.netns_path, ep.iface)

    def detach_all(self, container_id: str) -> None:
        for net, _ in self.endpoints_of(container_id):
            with contextlib.suppress(NotFound):
                self.detach(container_id, net.id)

    # ---------------------------------------------------------------- ports
    def publish(self, container_id: str, network: str, specs: Sequence[PortSpec]) -> builtins.list[PortBinding]:
        """Publish ``specs`` to the container's address on ``network``: all or nothing."""
        with self._lock:
            net = self.get(network)
            ep = net.endpoints.get(container_id)
            if ep is None:
                raise NotFound(f"container {container_id[:12]} is not connected to network {net.name}")
            if net.internal and specs:
                return []
            got: builtins.list[PortBinding] = []
            try:
                for spec in specs:
                    got.append(self._ports.reserve(spec))
                new = replace(ep, ports=ep.ports + tuple(got))
                self._save(replace(net, endpoints={**net.endpoints, container_id: new}),
                           durable=False)
                self._apply_firewall()
            except BaseException:
                for binding in got:
                    self._ports.release(binding)
                self._save(replace(net, endpoints={**net.endpoints, container_id: ep}),
                           durable=False)
                raise
            return got

    def unpublish(self, container_id: str, network: str | None = None) -> None:
        with self._lock:
            for net, ep in self.endpoints_of(container_id):
                if network is not None and net.id != self.get(network).id:
                    continue
                for binding in ep.ports:
                    self._ports.release(binding)
                if ep.ports:
                    self._save(replace(net, endpoints={**net.endpoints,
                                                      container_id: replace(ep, ports=())}),
                               durable=False)
            self._apply_firewall()

    def listeners(self, container_id: str
                  ) -> builtins.list[tuple[PortBinding, socket.socket, tuple[str, int]]]:
        """(binding, reserved host socket, container address) for the userland proxy."""
        out = []
        for _, ep in self.endpoints_of(container_id):
            for binding in ep.ports:
                sock = self._ports.socket_for(binding)
                if sock is not None:
                    out.append((binding, sock, (ep.ip, binding.container_port)))
        return out

    def ports(self, container_id: str) -> builtins.list[PortBinding]:
        return [p for _, ep in self.endpoints_of(container_id) for p in ep.ports]

    def _rereserve(self, binding: PortBinding) -> None:
        try:
            self._ports.reserve(PortSpec(binding.container_port, binding.proto,
                                         binding.host_ip, str(binding.host_port)))
        except DockyardError as exc:  # someone took it while we were down: NAT still wins
            log.warning("could not re-reserve %s:%s: %s", binding.host_ip, binding.host_port, exc)

    # ---------------------------------------------------------------- /etc files
    def etc_files(self, container_id: str, hostname: str, *, mode: str = "bridge",
                  domainname: str = "", extra_hosts: Sequence[str] = (),
                  dns: Sequence[str] = (), dns_search: Sequence[str] = (),
                  dns_options: Sequence[str] = (),
                  host_resolv: etcfiles.ResolvConf | None = None,
                  host_hosts: str = "/etc/hosts") -> dict[str, str]:
        """Contents of ``hosts``, ``hostname``, ``resolv.conf`` for the container.

        Call after :meth:`attach` (the addresses go into /etc/hosts). ``mode`` is the
        ``--network`` value; for ``container:<id>`` the daemon reuses the other container's
        files instead, as Docker does.
        """
        host_conf = host_resolv or etcfiles.read_host_resolv_conf()
        kind = parse_network_mode(mode).kind
        if kind == "host":
            try:
                with open(host_hosts) as f:
                    hosts = f.read()
            except FileNotFoundError:
                hosts = etcfiles.hosts_file(hostname, extra_hosts=extra_hosts)
            else:
                hosts += "".join(etcfiles.hosts_file("", extra_hosts=extra_hosts)
                                 .splitlines(keepends=True)[6:])
            resolv = etcfiles.resolv_conf_file(host_conf, dns=dns, dns_search=dns_search,
                                               dns_options=dns_options)
            if not (dns or dns_search or dns_options):
                resolv = _read_or("/etc/resolv.conf", resolv)
            return {"hosts": hosts, "hostname": etcfiles.hostname_file(hostname),
                    "resolv.conf": resolv}
        eps = self.endpoints_of(container_id)
        addresses = [ep.ip for _, ep in eps[:1]] + [ep.ip6 for _, ep in eps[:1] if ep.ip6]
        return {
            "hosts": etcfiles.hosts_file(hostname, addresses, domainname=domainname,
                                         extra_hosts=extra_hosts),
            "hostname": etcfiles.hostname_file(hostname),
            "resolv.conf": etcfiles.resolv_conf_file(
                host_conf, dns=dns, dns_search=dns_search, dns_options=dns_options,
                embedded=self.dns_enabled(container_id),
                ipv6=any(ep.ip6 for _, ep in eps)),
        }

    def write_etc_files(self, directory: str, files: Mapping[str, str], *,
                        in_place: bool = False) -> None:
        """Write what :meth:`etc_files` returned into the container's directory.

        Atomically (a new inode) before the container starts; ``in_place`` for a running
        container, whose bind mounts still point at the old inodes (as Docker rewrites them).
        """
        for name, text in files.items():
            path = os.path.join(directory, name)
            if in_place and os.path.exists(path):
                with open(path, "r+") as f:
                    f.write(text)
                    f.truncate()
            else:
                atomic_write(path, text.encode(), durable=False)

    def upstreams(self, container_id: str, dns: Sequence[str] = (),
                  host_resolv: etcfiles.ResolvConf | None = None) -> builtins.list[tuple[str, int]]:
        """Where the embedded DNS forwards for this container (none on --internal only)."""
        if self.internal_only(container_id):
            return []
        servers = tuple(dns) or (host_resolv or etcfiles.read_host_resolv_conf(
            resolved_path="/nonexistent")).nameservers
        return [(s, 53) for s in servers]

    # ---------------------------------------------------------------- DNS
    def resolve(self, container_id: str, name: str, qtype: int) -> builtins.list[str] | None:
        """Embedded DNS lookup for ``container_id``: names on its user-defined networks."""
        name = name.rstrip(".").lower()
        nets = [n for n in self._networks.values()
                if n.user_defined and container_id in n.endpoints]
        if qtype == QTYPE_PTR:
            return self._reverse(nets, name)
        found: builtins.list[str] | None = None
        for net in nets:
            for ep in net.endpoints.values():
                if ep.state != "ready":
                    continue
                names = {ep.name.lower(), ep.container_id[:12], *(a.lower() for a in ep.aliases)}
                if name not in names and not (name.endswith("." + net.name.lower())
                                              and name[: -len(net.name) - 1] in names):
                    continue
                found = found or []
                if qtype == QTYPE_A:
                    found.append(ep.ip)
                elif qtype == QTYPE_AAAA and ep.ip6:
                    found.append(ep.ip6)
        return found

    @staticmethod
    def _reverse(nets: Iterable[Network], name: str) -> builtins.list[str] | None:
        """``2.0.18.172.in-addr.arpa`` -> ``["web.mynet"]`` for a container on our networks."""
        if not name.endswith(".in-addr.arpa"):
            return None
        ip = ".".join(reversed(name[: -len(".in-addr.arpa")].split(".")))
        found = [f"{ep.name}.{net.name}" for net in nets for ep in net.endpoints.values()
                 if ep.ip == ip and ep.name and ep.state == "ready"]
        return found or None

    def dns_enabled(self, container_id: str) -> bool:
        return any(n.user_defined for n, _ in self.endpoints_of(container_id))

    def internal_only(self, container_id: str) -> bool:
        eps = self.endpoints_of(container_id)
        return bool(eps) and all(n.internal for n, _ in eps)


def _read_or(path: str, default: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def _new_id() -> str:
    return os.urandom(32).hex()


def _check_mac(mac: str) -> str:
    parts = mac.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                   for p in parts):
        raise InvalidArgument(f"{mac} is not a valid mac address")
    return mac.lower()


def _host_networks(exclude: Iterable[str] = ()) -> builtins.list[ipam.IPNet]:
    del exclude  # our own bridge is not up yet when the default subnet is chosen
    return links.host_routes()
