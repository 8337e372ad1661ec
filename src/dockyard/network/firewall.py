"""NAT and forwarding rules, kept in one nftables table of Dockyard's own.

Everything Dockyard adds to the firewall lives in ``table inet <name>`` (default
``dockyard``). The whole table is rendered from the networks and published ports the manager
knows and replaced in ONE nft transaction (``nft -f -`` with "declare; delete; define"), so the
kernel never sees a half-applied set of rules, and removing everything is one ``delete table``.

Rendered for a network on ``dockyard0`` (172.18.0.0/16), an internal one on ``dy-abc``, and
``-p 127.0.0.1:8080:80`` to 172.18.0.2::

    table inet dockyard {
      chain forward { type filter hook forward priority filter; policy accept;
        iifname "dockyard0" oifname { "dy-abc" } drop          # networks are isolated
        iifname "dy-abc" oifname != "dy-abc" drop             # --internal: no way out
        oifname "dy-abc" iifname != "dy-abc" drop }
      chain prerouting { type nat hook prerouting priority dstnat; policy accept;
        ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 172.18.0.2:80 }
      chain output { type nat hook output priority -100; policy accept;     # local clients
        ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 172.18.0.2:80 }
      chain postrouting { type nat hook postrouting priority srcnat; policy accept;
        oifname != "dockyard0" ip saddr 172.18.0.0/16 masquerade                 # outbound NAT
        oifname "dockyard0" ip saddr 127.0.0.0/8 masquerade       # 127.0.0.1 -> container
        oifname "dockyard0" ip saddr 172.18.0.0/16 ct status dnat masquerade }  # hairpin
    }

Why the ``nft`` binary and not a Python library: pyroute2's nftables module can list tables
and build single expressions but has no ruleset parser or atomic batch loader, and the official
libnftables binding (python3-nftables) is not on PyPI. One ``nft -f -`` per change is atomic and
costs ~5 ms; it runs only on network create/remove and port publish/unpublish, never per attach.

Loopback DNAT needs ``route_localnet=1`` on the bridge (set by :func:`links.ensure_bridge`),
as Docker does. Hosts without nft (iptables-legacy only) are refused with Unsupported.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.errors import Internal, Unsupported

__all__ = ["FwNetwork", "FwPort", "NftFirewall", "detect_firewall", "render"]


@dataclass(frozen=True)
class FwNetwork:
    bridge: str
    subnet: str
    internal: bool = False
    subnet6: str | None = None
    masquerade: bool = True


@dataclass(frozen=True)
class FwPort:
    proto: str
    host_ip: str          # "0.0.0.0" = every local address
    host_port: int
    container_ip: str
    container_port: int
    bridge: str


def _q(name: str) -> str:
    return '"' + name.replace('"', "") + '"'


def _dnat(port: FwPort) -> str:
    match = f"{port.proto} dport {port.host_port}"
    where = "fib daddr type local" if port.host_ip == "0.0.0.0" else f"ip daddr {port.host_ip}"
    return f"{where} {match} dnat ip to {port.container_ip}:{port.container_port}"


def render(table: str, networks: Sequence[FwNetwork], ports: Sequence[FwPort]) -> str:
    """The nft script that replaces ``table inet <table>`` atomically."""
    fwd: list[str] = []
    bridges = [n.bridge for n in networks]
    for net in networks:
        others = [b for b in bridges if b != net.bridge]
        if others:
            fwd.append(f"iifname {_q(net.bridge)} oifname {{ {', '.join(map(_q, others))} }} drop")
        if net.internal:
            fwd.append(f"iifname {_q(net.bridge)} oifname != {_q(net.bridge)} drop")
            fwd.append(f"oifname {_q(net.bridge)} iifname != {_q(net.bridge)} drop")
    pre = [_dnat(p) for p in ports]
    post: list[str] = []
    for net in networks:
        br = _q(net.bridge)
        if not net.internal and net.masquerade:
            post.append(f"oifname != {br} ip saddr {net.subnet} masquerade")
            if net.subnet6:
                post.append(f"oifname != {br} ip6 saddr {net.subnet6} masquerade")
        post.append(f"oifname {br} ip saddr 127.0.0.0/8 masquerade")
        post.append(f"oifname {br} ip saddr {net.subnet} ct status dnat masquerade")

    def chain(name: str, hook: str, rules: list[str]) -> str:
        body = "".join(f"\n    {r}" for r in rules)
        return f"  chain {name} {{\n    {hook}{body}\n  }}\n"

    return (
        f"table inet {table} {{}}\ndelete table inet {table}\ntable inet {table} {{\n"
        + chain("forward", "type filter hook forward priority filter; policy accept;", fwd)
        + chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;", pre)
        + chain("output", "type nat hook output priority -100; policy accept;", pre)
        + chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;", post)
        + "}\n"
    )


class NftFirewall:
    """Applies rendered rulesets with ``nft -f -``."""

    def __init__(self, table: str = "dockyard", nft: str = "nft") -> None:
        self.table = table
        self.nft = nft

    def _run(self, script: str) -> None:
        try:
            proc = subprocess.run(
                [self.nft, "-f", "-"], input=script.encode(), capture_output=True, check=False
            )
        except OSError as exc:
            raise Unsupported(f"cannot run {self.nft}: {exc}") from exc
        if proc.returncode != 0:
            raise Internal(
                f"nft refused the ruleset for table {self.table}: "
                + proc.stderr.decode(errors="replace").strip()
            )

    def apply(self, networks: Sequence[FwNetwork], ports: Sequence[FwPort]) -> None:
        self._run(render(self.table, networks, ports))

    def remove(self) -> None:
        self._run(f"table inet {self.table} {{}}\ndelete table inet {self.table}\n")

    def exists(self) -> bool:
        proc = subprocess.run([self.nft, "list", "table", "inet", self.table],
                              capture_output=True, check=False)
        return proc.returncode == 0


def detect_firewall(table: str = "dockyard") -> NftFirewall:
    """nftables if the host has a working ``nft``; otherwise Unsupported (no iptables backend)."""
    nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    if nft is None:
        raise Unsupported("nftables (the nft command) is required for bridge networking")
    probe = subprocess.run([nft, "list", "tables"], capture_output=True, check=False)
    if probe.returncode != 0:
        raise Unsupported("nftables is not usable: " + probe.stderr.decode(errors="replace").strip())
    return NftFirewall(table, nft)
