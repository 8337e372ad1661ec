"""The iptables backend, for hosts without a usable ``nft`` (iptables-legacy kernels).

Same rules as :mod:`dockyard.network.firewall`, in four chains of our own named after the
table (``DOCKYARD-FWD`` in filter; ``DOCKYARD-PRE``, ``-OUT``, ``-POST`` in nat), each reached by
one jump from the built-in chain. ``iptables-restore --noflush`` replaces the chains' contents in
one transaction (a chain declared in the input is emptied first); removal deletes the jumps and
the chains. Our FORWARD chain ends with ACCEPT for our bridges, so a FORWARD policy of DROP
(dockerd's) does not cut containers off. IPv4 only (no ip6tables rules).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from dockyard.errors import Internal, Unsupported
from dockyard.network.firewall import FwNetwork, FwPort

__all__ = ["IptablesFirewall", "render_iptables"]

JUMPS = (("filter", "FORWARD", "FWD"), ("nat", "PREROUTING", "PRE"), ("nat", "OUTPUT", "OUT"),
         ("nat", "POSTROUTING", "POST"))


def _dnat(chain: str, p: FwPort) -> str:
    where = ("-m addrtype --dst-type LOCAL" if p.host_ip == "0.0.0.0" else f"-d {p.host_ip}")
    return (f"-A {chain} -p {p.proto} {where} --dport {p.host_port} "
            f"-j DNAT --to-destination {p.container_ip}:{p.container_port}")


def render_iptables(prefix: str, networks: Sequence[FwNetwork], ports: Sequence[FwPort]) -> str:
    """``iptables-restore --noflush`` input that replaces our four chains."""
    fwd, pre, out, post = (f"{prefix}-{s}" for s in ("FWD", "PRE", "OUT", "POST"))
    bridges = [n.bridge for n in networks]
    lines = ["*filter", f":{fwd} - [0:0]"]
    for net in networks:
        for other in bridges:
            if other != net.bridge:
                lines.append(f"-A {fwd} -i {net.bridge} -o {other} -j DROP")
        if net.internal:
            lines.append(f"-A {fwd} -i {net.bridge} ! -o {net.bridge} -j DROP")
            lines.append(f"-A {fwd} -o {net.bridge} ! -i {net.bridge} -j DROP")
    for bridge in bridges:
        lines.append(f"-A {fwd} -i {bridge} -j ACCEPT")
        lines.append(f"-A {fwd} -o {bridge} -j ACCEPT")
    lines += ["COMMIT", "*nat", f":{pre} - [0:0]", f":{out} - [0:0]", f":{post} - [0:0]"]
    lines += [_dnat(pre, p) for p in ports] + [_dnat(out, p) for p in ports]
    for net in networks:
        if not net.internal and net.masquerade:
            lines.append(f"-A {post} -s {net.subnet} ! -o {net.bridge} -j MASQUERADE")
        lines.append(f"-A {post} -s 127.0.0.0/8 -o {net.bridge} -j MASQUERADE")
        lines.append(f"-A {post} -s {net.subnet} -o {net.bridge} -m conntrack --ctstate DNAT "
                     "-j MASQUERADE")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class IptablesFirewall:
    """Same interface as :class:`~dockyard.network.firewall.NftFirewall`."""

    def __init__(self, table: str = "dockyard", iptables: str = "iptables") -> None:
        self.table = table
        self.prefix = table.upper()[:23]
        self.iptables = iptables
        self.restore = iptables + "-restore"

    def _run(self, *args: str, stdin: str | None = None, check: bool = True) -> bool:
        try:
            proc = subprocess.run(list(args), input=stdin, capture_output=True, text=True,
                                  check=False)
        except OSError as exc:
            raise Unsupported(f"cannot run {args[0]}: {exc}") from exc
        if check and proc.returncode != 0:
            raise Internal(f"{args[0]} refused our rules: {proc.stderr.strip()}")
        return proc.returncode == 0

    def apply(self, networks: Sequence[FwNetwork], ports: Sequence[FwPort]) -> None:
        self._run(self.restore, "-w", "--noflush",
                  stdin=render_iptables(self.prefix, networks, ports))
        for table, builtin, suffix in JUMPS:
            jump = [builtin, "-j", f"{self.prefix}-{suffix}"]
            if not self._run(self.iptables, "-w", "-t", table, "-C", *jump, check=False):
                self._run(self.iptables, "-w", "-t", table, "-I", *jump)

    def remove(self) -> None:
        for table, builtin, suffix in JUMPS:
            chain = f"{self.prefix}-{suffix}"
            while self._run(self.iptables, "-w", "-t", table, "-D", builtin, "-j", chain,
                            check=False):
                pass
            self._run(self.iptables, "-w", "-t", table, "-F", chain, check=False)
            self._run(self.iptables, "-w", "-t", table, "-X", chain, check=False)

    def exists(self) -> bool:
        return self._run(self.iptables, "-w", "-t", "nat", "-S", f"{self.prefix}-PRE", check=False)


def find_iptables() -> str:
    for name in ("iptables",):
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if path and shutil.which(path + "-restore"):
            return path
    raise Unsupported("neither nftables (nft) nor iptables is available for bridge networking")
