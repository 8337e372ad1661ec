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
as Docker does. Hosts without a usable nft get the same rules through iptables
(:mod:`dockyard.network.iptables`).

Living next to dockerd: a packet must be accepted by every base chain on its hook, and dockerd
sets the iptables FORWARD policy to DROP, which would drop our containers' forwarded traffic
whatever our table says. When (and only when) that policy is DROP, :class:`ForwardCompat` adds
two ACCEPT rules per bridge to iptables' FORWARD chain, tagged with a comment so they can be
found and removed. They never weaken our isolation: a ``drop`` in our table is final.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.errors import Internal, Unsupported

__all__ = ["ForwardCompat", "FwNetwork", "FwPort", "NftFirewall", "detect_firewall", "render"]


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


class ForwardCompat:
    """ACCEPT rules for our bridges in iptables' FORWARD chain when its policy is DROP."""

    def __init__(self, tag: str, iptables: str | None = None) -> None:
        self.comment = f"dockyard:{tag}"
        self.iptables = iptables or shutil.which("iptables") or shutil.which(
            "iptables", path="/usr/sbin:/sbin")

    def _forward_rules(self) -> list[str] | None:
        if self.iptables is None:
            return None
        proc = subprocess.run([self.iptables, "-w", "-S", "FORWARD"], capture_output=True,
                              text=True, check=False)
        return proc.stdout.splitlines() if proc.returncode == 0 else None

    def sync(self, bridges: Sequence[str]) -> None:
        rules = self._forward_rules()
        if rules is None:
            return
        self._delete(rules)
        if "-P FORWARD DROP" not in rules:
            return
        assert self.iptables is not None
        for bridge in bridges:
            for direction in ("-i", "-o"):
                subprocess.run([self.iptables, "-w", "-I", "FORWARD", direction, bridge, "-m",
                                "comment", "--comment", self.comment, "-j", "ACCEPT"],
                               capture_output=True, check=True)

    def remove(self) -> None:
        rules = self._forward_rules()
        if rules is not None:
            self._delete(rules)

    def _delete(self, rules: list[str]) -> None:
        assert self.iptables is not None
        for rule in rules:
            if rule.startswith("-A FORWARD") and self.comment in rule:
                args = rule.split()[2:]
                subprocess.run([self.iptables, "-w", "-D", "FORWARD",
                                *[a.strip('"') for a in args]], capture_output=True, check=False)


class NftFirewall:
    """Applies rendered rulesets with ``nft -f -`` (and the iptables FORWARD compat rules)."""

    def __init__(self, table: str = "dockyard", nft: str = "nft") -> None:
        self.table = table
        self.nft = nft
        self.compat = ForwardCompat(table)

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
        self.compat.sync([n.bridge for n in networks])

    def remove(self) -> None:
        self.compat.remove()
        self._run(f"table inet {self.table} {{}}\ndelete table inet {self.table}\n")

    def exists(self) -> bool:
        proc = subprocess.run([self.nft, "list", "table", "inet", self.table],
                              capture_output=True, check=False)
        return proc.returncode == 0


def detect_firewall(table: str = "dockyard", backend: str = "auto") -> Any:
    """nftables where ``nft`` works, else iptables (``backend`` forces one: "nft"/"iptables").

    Returns an object with ``apply(networks, ports)``, ``remove()`` and ``exists()``.
    """
    if backend == "iptables":
        from dockyard.network.iptables import IptablesFirewall, find_iptables

        return IptablesFirewall(table, find_iptables())
    nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    probe = subprocess.run([nft, "list", "tables"], capture_output=True, check=False) if nft else None
    if nft and probe is not None and probe.returncode == 0:
        return NftFirewall(table, nft)
    if backend == "nft":
        detail = probe.stderr.decode(errors="replace").strip() if probe else "nft is not installed"
        raise Unsupported(f"nftables is not usable: {detail}")
    return detect_firewall(table, "iptables")
