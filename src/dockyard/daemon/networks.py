"""The daemon's network service: sandboxes, endpoints, ports, DNS for containers.

The container service calls four hooks (``ContainerService.network``):

- ``on_create(c, networking_config)`` -- check ``--network`` names a network, remember the
  ``NetworkingConfig`` (aliases, ``--ip``) the container record does not keep;
- ``sandbox_for(c)`` -- before the runtime creates the container: make its network namespace
  (a bind-mounted file under ``<exec-root>/netns/<id>``), attach it to its network, publish its
  ports, start its embedded DNS, write hosts/hostname/resolv.conf; returns the path the OCI spec
  joins (``None`` for ``host``). Nothing is left behind if it fails.
- ``release(c)`` -- after the container exited: the reverse. Unmounting the namespace file lets
  the kernel tear the veth down asynchronously, so this costs ~1 ms.

- ``adopt(c)`` -- hang a :class:`ContainerNetView` on the new container record, so that
  inspect shows the networks it is configured on (``attachments``) before it ever starts and
  after it stopped, as dockerd does (records restored at daemon start are adopted by ``start``).

The API's /networks routes call the rest. Blocking library calls run in threads
(``asyncio.to_thread``); the DNS server and the userland proxy live on the loop. Per-container
settings are records in ``<data-root>/network/containers/<id>.json``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dockyard.atomic import atomic_write_json
from dockyard.errors import (
    Conflict,
    DockyardError,
    Forbidden,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from dockyard.network import NetworkConfig, NetworkManager, parse_network_mode
from dockyard.network.dns import EmbeddedDns, open_dns_sockets
from dockyard.network.manager import Endpoint, Network
from dockyard.network.netns import create_netns_file, remove_netns_file
from dockyard.network.ports import PortBinding, PortSpec, bindings_from_api, publish_all_bindings
from dockyard.network.proxy import PortProxy

__all__ = ["Attachment", "ContainerNetConfig", "ContainerNetView", "NetworkService"]

log = logging.getLogger(__name__)


@dataclass
class ContainerNetConfig:
    """What ``NetworkingConfig.EndpointsConfig`` asked for, per network name."""

    aliases: dict[str, list[str]] = field(default_factory=dict)
    ips: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)      # networks added by `network connect`
    joined: dict[str, str] = field(default_factory=dict)  # name -> id, as of the last run
    # the --network one: "" as created, "left" (disconnected while stopped: not attached at
    # start), "connected" (connected again after that)
    primary: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"aliases": self.aliases, "ips": self.ips, "extra": self.extra,
                "joined": self.joined, "primary": self.primary}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ContainerNetConfig:
        return cls(dict(raw.get("aliases") or {}), dict(raw.get("ips") or {}),
                   list(raw.get("extra") or []), dict(raw.get("joined") or {}),
                   str(raw.get("primary") or ""))


@dataclass(frozen=True)
class Attachment:
    """A network a container is configured on, whether or not it is attached right now."""

    name: str                        # the network's name (as configured, if it is gone)
    network: Network | None          # None: no such network (any more)
    aliases: tuple[str, ...] = ()
    ip: str = ""                     # --ip
    joined_id: str = ""              # the network's id when the container last ran on it
    connected: bool = False          # added by `network connect`, not by create's --network


class NetworkService:
    def __init__(self, data_root: str, exec_root: str, network_cfg: Mapping[str, Any],
                 containers: Any, events: Any) -> None:
        self.nm = NetworkManager(os.path.join(data_root, "network"),
                                 _instance_config(data_root, network_cfg))
        self.records_dir = os.path.join(data_root, "network", "containers")
        self.netns_dir = os.path.join(exec_root, "netns")
        os.makedirs(self.records_dir, exist_ok=True)
        os.makedirs(self.netns_dir, exist_ok=True)
        self.containers = containers
        self.events = events
        self.dns = EmbeddedDns(self.nm.resolve, self._upstreams)
        self.proxy = PortProxy()
        self._dns_flags: dict[str, list[str]] = {}
        self._confs: dict[str, ContainerNetConfig] = {}   # the records, read once (inspect, ps)
        self.error = ""                        # why networking is unavailable, if it is
        self._watch: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Call after the container service restored its records (it knows who still runs)."""
        if hasattr(self.events, "subscribe"):
            self._watch = asyncio.ensure_future(self._forget_destroyed(self.events.subscribe()))
        known = dict(getattr(self.containers, "containers", {}))
        for c in known.values():
            self.adopt(c)
        try:
            await asyncio.to_thread(self.nm.start, None)
        except (DockyardError, OSError) as exc:   # not root, no nftables ...: degrade
            self.error = str(exc)
            log.warning("bridge networking is unavailable: %s", exc)
            return
        for c in known.values():
            self._dns_flags[c.id] = [str(x) for x in c.host_config.get("Dns") or []]
        for cid in {cid for net in self.nm.list() for cid in net.endpoints}:
            c = known.get(cid)
            if c is None or not c.state.running:      # exited or removed while we were down
                await self.release(c if c is not None else _Gone(cid))
                continue
            await self._serve(cid, self._netns_path(cid), restore=True)
        for entry in os.listdir(self.records_dir):   # records of containers removed meanwhile
            if entry.endswith(".json") and entry[:-5] not in known:
                self.forget(entry[:-5])

    async def _forget_destroyed(self, queue: asyncio.Queue[Any]) -> None:
        """Drop a container's network record when the container is removed."""
        try:
            while True:
                ev = await queue.get()
                if getattr(ev, "type", "") == "container" and getattr(ev, "action", "") == "destroy":
                    self.forget(str(getattr(ev, "actor_id", "")))
        finally:
            self.events.unsubscribe(queue)

    async def shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await self.dns.close()
        await self.proxy.close()
        running = any(n.endpoints for n in self.nm.list())
        # with containers left running (live restore) the NAT rules stay, as Docker's do
        await asyncio.to_thread(self.nm.shutdown, remove_rules=not running)

    # ------------------------------------------------------------------ container hooks
    def _record(self, cid: str) -> str:
        return os.path.join(self.records_dir, f"{cid}.json")

    def _load(self, cid: str) -> ContainerNetConfig:
        """A fresh copy of the container's record (callers change it, then :meth:`_store`)."""
        conf = self._confs.get(cid)
        if conf is None:
            try:
                with open(self._record(cid)) as f:
                    conf = ContainerNetConfig.from_json(json.load(f))
            except (OSError, ValueError, AttributeError):
                return ContainerNetConfig()
            self._confs[cid] = conf
        return copy.deepcopy(conf)

    def _store(self, cid: str, conf: ContainerNetConfig) -> None:
        atomic_write_json(self._record(cid), conf.to_json(), durable=False)
        self._confs[cid] = copy.deepcopy(conf)

    async def on_create(self, cid: str, host_config: Mapping[str, Any],
                        networking_config: Mapping[str, Any] | None) -> None:
        """Validate ``--network`` and keep the endpoint settings; before anything is created."""
        mode = parse_network_mode(host_config.get("NetworkMode"))
        # Not 404: the docker CLI answers a 404 on create by pulling the image (dockerd too
        # reports these without a not-found status)
        try:
            if mode.attaches:
                self.nm.get(mode.network)
            elif mode.kind == "container":
                self.containers.get(mode.target)
        except NotFound as exc:
            raise InvalidArgument(exc.message) from exc

        conf = ContainerNetConfig()
        for name, ep in ((networking_config or {}).get("EndpointsConfig") or {}).items():
            ep = ep or {}
            if ep.get("Aliases"):
                conf.aliases[name] = [str(a) for a in ep["Aliases"]]
            ipam = ep.get("IPAMConfig") or {}
            if ipam.get("IPv4Address"):
                if mode.kind != "user":
                    raise InvalidArgument(
                        "user specified IP address is supported on user defined networks only")
                conf.ips[name] = str(ipam["IPv4Address"])
        self._store(cid, conf)

    def forget(self, cid: str) -> None:
        self._confs.pop(cid, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._record(cid))

    def adopt(self, c: Any) -> None:
        """Hang the live network view on a container record (at create, and at daemon start)."""
        c.network = ContainerNetView(self, c.id)

    def attachments(self, cid: str, network_mode: str | None) -> builtins.list[Attachment]:
        """The networks the container is on by its settings: ``--network`` first, then those
        added by ``network connect``; none for ``container:<id>`` (it has no network of its
        own). What inspect shows for a container that is not attached right now."""
        mode = parse_network_mode(network_mode)
        if mode.kind == "container":
            return []
        conf = self._load(cid)
        primary = mode.network if mode.attaches else mode.kind
        configured = [] if conf.primary == "left" else [(primary, conf.primary == "connected")]
        out = []
        for ref, connected in [*configured, *((name, True) for name in conf.extra)]:
            try:
                net: Network | None = self.nm.get(ref)
            except (NotFound, InvalidArgument):
                net = None
            name = net.name if net is not None else ref
            out.append(Attachment(
                name, net, tuple(conf.aliases.get(name) or conf.aliases.get(ref) or ()),
                conf.ips.get(name) or conf.ips.get(ref) or "", conf.joined.get(name, ""),
                connected))
        return out

    def _netns_path(self, cid: str) -> str:
        return os.path.join(self.netns_dir, cid)

    async def sandbox_for(self, c: Any) -> str | None:
        mode = parse_network_mode(c.host_config.get("NetworkMode"))
        if mode.kind == "host":
            return None
        if mode.kind == "container":
            other = self.containers.get(mode.target)
            if not other.state.running:
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            await asyncio.to_thread(self._write_etc, c, str(mode))
            return f"/proc/{other.state.pid}/ns/net"
        c.network = ContainerNetView(self, c.id)
        if self.error:
            if mode.attaches:
                raise Unavailable(f"bridge networking is unavailable: {self.error}")
            return None                      # "none": the runtime makes a fresh namespace
        path = self._netns_path(c.id)
        await asyncio.to_thread(self._reset_netns, c.id, path)
        try:
            if mode.attaches:
                conf = self._load(c.id)
                if conf.primary != "left":         # dockerd: disconnected while stopped
                    await self._attach(c, mode.network, path)
                    await self._publish(c, mode.network)
                for extra in conf.extra:
                    with contextlib.suppress(NotFound):     # removed while we were stopped
                        await self._attach(c, extra, path)
            await asyncio.to_thread(self._write_etc, c, str(mode))
            await self._serve(c.id, path)
        except BaseException:
            await self.release(c)
            raise
        return path

    def _reset_netns(self, cid: str, path: str) -> None:
        # a restart after a crash may find the previous run's namespace and endpoints
        self.nm.detach_all(cid)
        remove_netns_file(path)
        create_netns_file(path)

    async def _attach(self, c: Any, network: str, path: str, aliases: Sequence[str] = (),
                      ip: str | None = None) -> Endpoint:
        net = self.nm.get(network)
        conf = self._load(c.id)
        # the record keys a network by the name or id it was given: each alias once
        names = list(dict.fromkeys([*aliases, *conf.aliases.get(net.name, []),
                                    *conf.aliases.get(network, [])]))
        ep = await asyncio.to_thread(
            self.nm.attach, c.id, path, net.id, name=c.name, aliases=names,
            mac=c.config.get("MacAddress") or None,
            ip=ip or conf.ips.get(net.name) or conf.ips.get(network))
        self.events.publish("network", "connect", net.id, container=c.id, name=net.name,
                            type="bridge")
        return ep

    async def _publish(self, c: Any, network: str) -> None:
        hc = c.host_config
        specs: list[PortSpec] = bindings_from_api(hc.get("PortBindings") or {})
        if hc.get("PublishAllPorts"):
            have = {s.key for s in specs}
            specs += [s for s in publish_all_bindings(c.config.get("ExposedPorts") or {})
                      if s.key not in have]
        if specs:
            await asyncio.to_thread(self.nm.publish, c.id, network, specs)

    async def _serve(self, cid: str, path: str, *, restore: bool = False) -> None:
        """Start the container's embedded DNS and proxy listeners."""
        for binding, sock, target in self.nm.listeners(cid):
            await self.proxy.add(binding.proto, sock, target)
        if self.nm.dns_enabled(cid) and cid not in self.dns.serving():
            try:
                udp, tcp = await asyncio.to_thread(open_dns_sockets, path)
            except (OSError, DockyardError) as exc:
                if not restore:
                    raise
                log.warning("cannot restore DNS for %s: %s", cid[:12], exc)
                return
            await self.dns.add(cid, udp, tcp)

    def _upstreams(self, cid: str) -> list[tuple[str, int]]:
        return self.nm.upstreams(cid, self._dns_flags.get(cid, ()))

    def _host_gateway(self, entry: str) -> str:
        """``--add-host name:host-gateway``: the default bridge's address, as dockerd does."""
        name, sep, value = entry.partition(":")
        if sep and value == "host-gateway":
            try:
                return f"{name}:{self.nm.get('bridge').gateway}"
            except NotFound as exc:
                raise InvalidArgument(
                    "unable to derive the IP value for host-gateway (no default bridge)") from exc
        return entry

    def _write_etc(self, c: Any, mode: str, *, in_place: bool = False) -> None:
        if mode.startswith("container:"):
            # Docker shares the other container's hosts, hostname and resolv.conf
            other = self.containers.get(mode.split(":", 1)[1])
            src, dst = self.containers.records.dir(other.id), self.containers.records.dir(c.id)
            files = {}
            for name in ("hosts", "hostname", "resolv.conf"):
                with contextlib.suppress(FileNotFoundError), open(os.path.join(src, name)) as f:
                    files[name] = f.read()
            self.nm.write_etc_files(dst, files, in_place=in_place)
            return
        hc = c.host_config
        dns = [str(x) for x in hc.get("Dns") or []]
        self._dns_flags[c.id] = dns
        hostname = str(c.config.get("Hostname") or c.id[:12])
        if mode == "host":
            import socket

            hostname = socket.gethostname()
        files = self.nm.etc_files(
            c.id, hostname, mode=mode, domainname=str(c.config.get("Domainname") or ""),
            extra_hosts=[self._host_gateway(str(h)) for h in hc.get("ExtraHosts") or []], dns=dns,
            dns_search=[str(x) for x in hc.get("DnsSearch") or []],
            dns_options=[str(x) for x in hc.get("DnsOptions") or []])
        self.nm.write_etc_files(self.containers.records.dir(c.id), files, in_place=in_place)

    async def release(self, c: Any) -> None:
        """Undo :meth:`sandbox_for` (safe to call more than once, and after a crash)."""
        await self.dns.remove(c.id)
        for binding in self.nm.ports(c.id):
            await self.proxy.remove(binding.proto, binding.host_ip, binding.host_port)
        joined = {}
        for net, _ in self.nm.endpoints_of(c.id):
            joined[net.name] = net.id
            self.events.publish("network", "disconnect", net.id, container=c.id, name=net.name,
                                type="bridge")
        if joined and os.path.exists(self._record(c.id)):
            # a stopped container's inspect keeps the ids of the networks it was on (dockerd)
            conf = self._load(c.id)
            conf.joined = joined
            self._store(c.id, conf)
        path = self._netns_path(c.id)

        def undo() -> None:
            self.nm.unpublish(c.id)
            remove_netns_file(path)           # the kernel deletes the veth with the namespace
            self.nm.detach_all(c.id)

        await asyncio.to_thread(undo)
        self._dns_flags.pop(c.id, None)

    # ------------------------------------------------------------------ API operations
    def list(self) -> builtins.list[Network]:
        return self.nm.list()

    def get(self, ref: str) -> Network:
        return self.nm.get(ref)

    async def create(self, name: str, *, driver: str = "bridge", internal: bool = False,
                     labels: Mapping[str, str] | None = None,
                     options: Mapping[str, str] | None = None, enable_ipv6: bool = False,
                     ipam: Sequence[Mapping[str, str]] = ()) -> Network:
        subnet = gateway = subnet6 = gateway6 = None
        for entry in ipam:
            s = entry.get("Subnet")
            if s and ":" in s:
                subnet6, gateway6 = s, entry.get("Gateway") or None
            elif s:
                if subnet is not None:
                    raise InvalidArgument("only one IPv4 subnet per network is supported")
                subnet, gateway = s, entry.get("Gateway") or None
            elif entry.get("Gateway"):
                raise InvalidArgument("a gateway needs a subnet")
        net = await asyncio.to_thread(
            self.nm.create_network, name, driver, subnet, gateway, internal, labels, options,
            enable_ipv6, subnet6, gateway6)
        self.events.publish("network", "create", net.id, name=net.name, type=net.driver)
        return net

    async def remove(self, ref: str) -> None:
        net = self.nm.get(ref)
        await asyncio.to_thread(self.nm.remove_network, net.id)
        self.events.publish("network", "destroy", net.id, name=net.name, type=net.driver)

    async def prune(self, labels: Mapping[str, str | None] | None = None) -> builtins.list[str]:
        gone = {n.name: n.id for n in self.nm.list()}
        removed = await asyncio.to_thread(self.nm.prune, labels)
        for name in removed:
            self.events.publish("network", "destroy", gone[name], name=name, type="bridge")
        return removed

    async def connect(self, c: Any, ref: str, aliases: Sequence[str] = (),
                      ip: str | None = None) -> None:
        """``network connect``: running containers get an interface now, others at start."""
        net = self.nm.get(ref)
        mode = parse_network_mode(c.host_config.get("NetworkMode"))
        if mode.kind in ("host", "none", "container"):
            raise Forbidden(f"container sharing network namespace with another container or host "
                            f"cannot be connected to any other network ({mode})")
        conf = self._load(c.id)
        primary = self.nm.get(mode.network).name
        if not c.state.running and (net.name in conf.extra or net.name == primary):
            # like dockerd, connecting a stopped container to a network it is already on only
            # updates its endpoint settings (docker-compose 1.x sets a service's aliases so)
            if net.name == primary and conf.primary == "left":
                conf.primary = "connected"
            if aliases:
                conf.aliases[net.name] = list(aliases)
            if ip:
                conf.ips[net.name] = ip
            self._store(c.id, conf)
            return
        if c.id in net.endpoints or net.name in conf.extra or net.name == primary:
            raise Forbidden(f"endpoint with name {c.name} already exists in network {net.name}")
        if aliases:
            conf.aliases[net.name] = list(aliases)
        if ip:
            conf.ips[net.name] = ip
        conf.extra.append(net.name)
        self._store(c.id, conf)
        if not c.state.running:
            return
        path = self._netns_path(c.id)
        if not os.path.exists(path):
            raise NotFound(f"network namespace of container {c.id[:12]} is gone")
        await self._attach(c, net.id, path)
        await asyncio.to_thread(lambda: self._write_etc(c, str(mode), in_place=True))
        await self._serve(c.id, path)

    async def disconnect(self, c: Any, ref: str, force: bool = False) -> None:
        net = self.nm.get(ref)
        if c.id not in net.endpoints and not c.state.running and self._leave(c, net.name):
            return
        if c.id not in net.endpoints:
            if force:
                return
            raise NotFound(f"container {c.id[:12]} is not connected to network {net.name}")
        for binding in [b for b in self.nm.ports(c.id)]:
            await self.proxy.remove(binding.proto, binding.host_ip, binding.host_port)
        await asyncio.to_thread(self.nm.detach, c.id, net.id)
        conf = self._load(c.id)
        if net.name in conf.extra:
            conf.extra.remove(net.name)
            self._store(c.id, conf)
        if not self.nm.dns_enabled(c.id):
            await self.dns.remove(c.id)
        self.events.publish("network", "disconnect", net.id, container=c.id, name=net.name,
                            type="bridge")

    def _leave(self, c: Any, name: str) -> bool:
        """Disconnect a container that is not running: only its settings change (dockerd allows
        it, and docker-compose 1.x disconnects a created container before connecting it with
        the service's aliases). False if the container is not on that network."""
        conf = self._load(c.id)
        mode = parse_network_mode(c.host_config.get("NetworkMode"))
        if name in conf.extra:
            conf.extra.remove(name)
        elif mode.attaches and conf.primary != "left" and self._name_of(mode.network) == name:
            conf.primary = "left"
        else:
            return False
        conf.aliases.pop(name, None)
        conf.ips.pop(name, None)
        self._store(c.id, conf)
        return True

    def _name_of(self, ref: str) -> str:
        try:
            return self.nm.get(ref).name
        except (NotFound, InvalidArgument):
            return ref

    def ports(self, cid: str) -> builtins.list[PortBinding]:
        return self.nm.ports(cid)

    def endpoints(self, cid: str) -> builtins.list[tuple[Network, Endpoint]]:
        return self.nm.endpoints_of(cid)


DEFAULT_DATA_ROOT = "/var/lib/dockyard"


def _instance_config(data_root: str, raw: Mapping[str, Any]) -> NetworkConfig:
    """daemon.json's network keys; a daemon with its own data root (tests, a second instance)
    gets its own link prefixes, nft table and default bridge name, so that two daemons never
    adopt, rewrite or clean up each other's bridges, veths and rules."""
    cfg = NetworkConfig.from_daemon_json(raw)
    if os.path.abspath(data_root) == DEFAULT_DATA_ROOT:
        return cfg
    tag = hashlib.sha256(os.path.abspath(data_root).encode()).hexdigest()[:4]
    return replace(cfg, bridge_prefix=f"dy{tag}-", veth_prefix=f"dv{tag}",
                   fw_table=f"dockyard_{tag}",
                   bridge_name=cfg.bridge_name if cfg.bridge_name != "dockyard0" else f"dy{tag}0")


@dataclass(frozen=True)
class _Gone:
    """Stands in for a container whose record is gone when its leftovers are released."""

    id: str


class ContainerNetView:
    """Live network facts of one container, hung on the container record as ``c.network`` for
    the API's shapes (endpoints and ports are read from the manager at each call)."""

    def __init__(self, service: NetworkService, cid: str) -> None:
        self._service, self._cid = service, cid

    def __bool__(self) -> bool:
        return True

    def endpoints(self) -> builtins.list[tuple[Network, Endpoint]]:
        return self._service.endpoints(self._cid)

    def ports(self) -> builtins.list[PortBinding]:
        return self._service.ports(self._cid)

    def sandbox_key(self) -> str:
        path = self._service._netns_path(self._cid)
        return path if os.path.exists(path) else ""

    def attachments(self, network_mode: str | None) -> builtins.list[Attachment]:
        return self._service.attachments(self._cid, network_mode)
