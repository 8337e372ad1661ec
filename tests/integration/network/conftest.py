"""Real-kernel fixtures: a NetworkManager with names unique to the test, stand-in containers.

Every kernel object a test makes carries a per-test prefix (``dyt<hex>``), so tests run in
parallel and the finalizers remove exactly their own: bridges, veths, the nft table, netns.
Traffic goes only to 127.0.0.0/8 and to namespaces created here.
"""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from dockyard.network import NetworkConfig, NetworkManager
from dockyard.network.ipam import AddressPool


def _have_nft() -> bool:
    return subprocess.run(["nft", "list", "tables"], capture_output=True).returncode == 0


def random_subnet() -> str:
    """A /24 in 10.128.0.0/9, unlikely to collide with a parallel test's."""
    base = int(ipaddress.ip_address("10.128.0.0")) + (random.randrange(1 << 15) << 8)
    return f"{ipaddress.ip_address(base)}/24"


@dataclass
class NetEnv:
    tag: str
    state_dir: str
    config: NetworkConfig
    nm: NetworkManager
    namespaces: list[str] = field(default_factory=list)

    def netns(self) -> str:
        """A fresh named netns (a stand-in container); returns its path."""
        from pyroute2 import netns

        name = f"dyt-{self.tag}-{len(self.namespaces)}"
        netns.create(name)
        self.namespaces.append(name)
        return f"/run/netns/{name}"

    def manager(self) -> NetworkManager:
        """A second manager on the same state (a restarted daemon)."""
        return NetworkManager(self.state_dir, self.config)

    def run(self, ns_path: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        name = os.path.basename(ns_path)
        return subprocess.run(["ip", "netns", "exec", name, *argv], capture_output=True,
                              text=True, timeout=timeout)


def make_config(tag: str) -> NetworkConfig:
    bip_net = ipaddress.ip_network(random_subnet())
    return NetworkConfig(
        bip=f"{bip_net.network_address + 1}/{bip_net.prefixlen}",
        default_address_pools=(AddressPool(ipaddress.ip_network(random_subnet()).supernet(4), 28),),
        bridge_name=f"dyt{tag}b0", bridge_prefix=f"dyt{tag}n", veth_prefix=f"dyt{tag}v",
        fw_table=f"dyt_{tag}",
    )


def all_links() -> list[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return [str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]


def our_links(env: NetEnv) -> set[str]:
    """Host links this test's manager named (parallel tests make their own)."""
    return {name for name in all_links() if name.startswith(f"dyt{env.tag}")}


@pytest.fixture
def netenv(tmp_path: object) -> Iterator[NetEnv]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not _have_nft():
        pytest.skip("nftables is not usable here")
    from pyroute2 import netns

    tag = uuid.uuid4().hex[:6]
    state_dir = os.path.join(str(tmp_path), "net")
    config = make_config(tag)
    nm = NetworkManager(state_dir, config)
    env = NetEnv(tag, state_dir, config, nm)
    try:
        nm.start()
        nm.prepare()        # the default bridge exists from here on, as in a daemon in use
        yield env
    finally:
        try:
            NetworkManager(state_dir, config).destroy_all()
        finally:
            nm.shutdown()
            for name in env.namespaces:
                try:
                    netns.remove(name)
                except OSError:
                    pass
            for name in all_links():
                if name.startswith(f"dyt{tag}"):
                    subprocess.run(["ip", "link", "del", name], capture_output=True)
            subprocess.run(["nft", "delete", "table", "inet", config.fw_table], capture_output=True)
