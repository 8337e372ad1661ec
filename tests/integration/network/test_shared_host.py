"""Several Dockyard instances on one host never share a subnet or a bridge (root).

Two bridges carrying the same subnet break one of them silently: the kernel routes the subnet
through the older route, so a published port's DNAT lands on the other bridge, nothing answers
ARP there and ``connect`` to 127.0.0.1:<port> fails with EHOSTUNREACH after ~3 s. This is
what a full parallel test run hit once (test daemons with randomly chosen, colliding subnets).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from dockyard.errors import Conflict
from dockyard.network import NetworkManager
from dockyard.network.ipam import AddressPool
from dockyard.network.ports import parse_port_spec
from tests.integration.network.conftest import NetEnv, make_config, our_links, random_subnet

pytestmark = pytest.mark.root

CID = "f6" * 32


@pytest.fixture
def foreign(netenv: NetEnv) -> Iterator[list[NetworkManager]]:
    """Managers of other instances made by a test (their own state dir and table)."""
    made: list[NetworkManager] = []
    yield made
    for nm in made:
        nm.destroy_all()
        subprocess.run(["nft", "delete", "table", "inet", nm.config.fw_table],
                       capture_output=True)


def _other(netenv: NetEnv, made: list[NetworkManager], suffix: str,
           **changes: object) -> NetworkManager:
    cfg = dataclasses.replace(netenv.config, bridge_name=f"dyt{netenv.tag}{suffix}0",
                              bridge_prefix=f"dyt{netenv.tag}{suffix}n",
                              veth_prefix=f"dyt{netenv.tag}{suffix}v",
                              fw_table=f"dyt_{netenv.tag}_{suffix}", **changes)
    nm = NetworkManager(os.path.join(netenv.state_dir, f"other-{suffix}"), cfg)
    made.append(nm)
    return nm


def _plain_bridge(name: str, cidr: str) -> None:
    """A bridge some other software made (no Dockyard owner), with route_localnet like ours."""
    iface = ipaddress.ip_interface(cidr)
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="bridge")
        idx = ipr.link_lookup(ifname=name)[0]
        ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        ipr.link("set", index=idx, state="up")
    with open(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "w") as f:
        f.write("1")


def _table_exists(table: str) -> bool:
    return subprocess.run(["nft", "list", "table", "inet", table],
                          capture_output=True).returncode == 0


def test_default_bridge_on_a_subnet_another_link_routes_is_refused(
        netenv: NetEnv, foreign: list[NetworkManager]) -> None:
    nm = _other(netenv, foreign, "o")      # same bip as netenv's bridge, its own bridge name
    nm.start()
    with pytest.raises(Conflict, match=rf"dyt{netenv.tag}b0 already routes"):
        nm.prepare()
    assert f"dyt{netenv.tag}o0" not in our_links(netenv)
    assert not _table_exists(nm.config.fw_table)
    # and the instance that had the subnet first still reaches its containers
    ns = netenv.netns()
    ep = netenv.nm.attach(CID, ns, "bridge")
    assert netenv.run(ns, "busybox", "ping", "-c", "1", "-W", "2", ep.gateway).returncode == 0


def test_subnet_of_a_bridge_made_first_by_other_software_is_refused(
        netenv: NetEnv, foreign: list[NetworkManager]) -> None:
    subnet = ipaddress.ip_network(random_subnet())
    gateway = f"{subnet.network_address + 1}/{subnet.prefixlen}"
    _plain_bridge(f"dyt{netenv.tag}x", gateway)
    # without the check, traffic for the subnet (a published port's DNAT) would go there
    with IPRoute() as ipr:
        route = ipr.route("get", dst=str(subnet.network_address + 2))[0]
        assert ipr.get_links(route.get_attr("RTA_OIF"))[0].get_attr("IFLA_IFNAME") == \
            f"dyt{netenv.tag}x"
    nm = _other(netenv, foreign, "q", bip=gateway)
    nm.start()
    with pytest.raises(Conflict, match=rf"dyt{netenv.tag}x already routes {subnet}"):
        nm.prepare()
    assert f"dyt{netenv.tag}q0" not in our_links(netenv)


def test_auto_chosen_default_subnet_taken_meanwhile_is_chosen_again(
        netenv: NetEnv, foreign: list[NetworkManager], tmp_path: object) -> None:
    base = ipaddress.ip_network(random_subnet()).supernet(new_prefix=20)
    nm = _other(netenv, foreign, "r", bip=None, default_address_pools=(AddressPool(base, 28),))
    nm.start()                                   # chooses a subnet; its bridge comes later
    chosen = ipaddress.ip_network(nm.get("bridge").subnet)
    _plain_bridge(f"dyt{netenv.tag}y", f"{chosen.network_address + 1}/28")  # someone took it
    nm.prepare()
    now = ipaddress.ip_network(nm.get("bridge").subnet)
    assert now != chosen and now.subnet_of(base)  # type: ignore[arg-type]
    assert NetworkManager(nm.state_dir, nm.config).get("bridge").subnet == str(now)
    # and its containers are reachable through a published port
    www = os.path.join(str(tmp_path), "www")
    os.makedirs(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello-r")
    ns = netenv.netns()
    proc = subprocess.Popen(["ip", "netns", "exec", os.path.basename(ns), "busybox", "httpd",
                             "-f", "-p", "80", "-h", www])
    try:
        nm.attach(CID, ns, "bridge")
        (binding,) = nm.publish(CID, "bridge", parse_port_spec("127.0.0.1::80"))
        page = b""
        for _ in range(50):          # until httpd listens
            try:
                with socket.create_connection(("127.0.0.1", binding.host_port), timeout=5) as c:
                    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    while chunk := c.recv(4096):
                        page += chunk
                    break
            except ConnectionRefusedError:
                time.sleep(0.1)
        assert b"hello-r" in page
    finally:
        proc.kill()
        proc.wait()


def test_bridge_of_another_instance_is_not_adopted(netenv: NetEnv,
                                                   foreign: list[NetworkManager]) -> None:
    mine = netenv.config.bridge_name
    # not in `foreign`: its finalizer would delete the bridge it names, which is not its own
    nm = NetworkManager(os.path.join(netenv.state_dir, "other-s"), dataclasses.replace(
        netenv.config, bridge_name=mine, fw_table=f"dyt_{netenv.tag}_s",
        bip=make_config(netenv.tag).bip))
    try:
        nm.start()
        with pytest.raises(Conflict, match=rf"bridge {mine} belongs to another Dockyard instance"):
            nm.prepare()
    finally:
        subprocess.run(["nft", "delete", "table", "inet", nm.config.fw_table], capture_output=True)
    other = _other(netenv, foreign, "t", bip=make_config(netenv.tag).bip)
    with pytest.raises(Conflict, match=rf"bridge {mine} belongs to another Dockyard instance"):
        other.create_network("taken", options={"com.docker.network.bridge.name": mine})
    assert mine in our_links(netenv)
    ns = netenv.netns()                      # and the owner's bridge still works
    ep = netenv.nm.attach(CID, ns, "bridge")
    assert netenv.run(ns, "busybox", "ping", "-c", "1", "-W", "2", ep.gateway).returncode == 0


def test_user_network_subnets_never_overlap_another_links_unless_asked(
        netenv: NetEnv, foreign: list[NetworkManager], caplog: pytest.LogCaptureFixture) -> None:
    taken = ipaddress.ip_network(netenv.nm.get("bridge").subnet)
    nm = _other(netenv, foreign, "u", bip=make_config(netenv.tag).bip,
                default_address_pools=(AddressPool(taken.supernet(new_prefix=22), 24),))
    auto = nm.create_network("auto")             # chosen: never a subnet the host routes
    assert not ipaddress.ip_network(auto.subnet).overlaps(taken)
    # an explicit --subnet is the user's choice (Docker accepts it): created, and logged
    with caplog.at_level("WARNING", logger="dockyard.network.links"):
        dup = nm.create_network("dup", subnet=str(taken))
    assert dup.subnet == str(taken) and dup.bridge in our_links(netenv)
    assert f"dyt{netenv.tag}b0 already routes {taken}" in caplog.text


def test_address_reused_while_the_last_holders_veth_lingers_reaches_the_new_container(
        netenv: NetEnv, tmp_path: object) -> None:
    """A removed container's veth lives until the kernel tears its netns down (asynchronous,
    slow on a busy host). Its successor gets the same address and so the same MAC: the bridge
    must not keep sending that MAC to the old port (ECONNREFUSED from the dead container)."""
    from pyroute2 import netns as pnetns

    old_ns = netenv.netns()
    ep = netenv.nm.attach("a7" * 32, old_ns, "bridge")
    # the host talks to the old container: the host resolves its address (REACHABLE) and the
    # bridge learns its MAC on its port
    assert subprocess.run(["busybox", "ping", "-c", "1", "-W", "2", ep.ip],
                          capture_output=True).returncode == 0
    held = os.open(old_ns, os.O_RDONLY)      # its namespace outlives the file, as in a slow teardown
    try:
        name = os.path.basename(old_ns)
        pnetns.remove(name)                  # (the finalizer's second remove is harmless)
        netenv.nm.detach("a7" * 32, "bridge")
        www = os.path.join(str(tmp_path), "www")
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("hello-new")
        new_ns = netenv.netns()
        # a quiet successor (no IPv6 chatter: as a container with IPv6 off), already serving
        assert netenv.run(new_ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                          "net.ipv6.conf.default.disable_ipv6=1").returncode == 0
        assert netenv.run(new_ns, "ip", "link", "set", "lo", "up").returncode == 0
        proc = subprocess.Popen(["ip", "netns", "exec", os.path.basename(new_ns), "busybox",
                                 "httpd", "-f", "-p", "80", "-h", www])
        try:
            assert netenv.run(new_ns, "sh", "-c", "for i in $(seq 50); do busybox wget -q "
                              "-O /dev/null http://127.0.0.1/ && exit 0; sleep 0.1; done; "
                              "exit 1").returncode == 0        # httpd listens
            new = netenv.nm.attach(CID, new_ns, "bridge")
            assert (new.ip, new.mac) == (ep.ip, ep.mac)
            (binding,) = netenv.nm.publish(CID, "bridge", parse_port_spec("127.0.0.1::80"))
            # the host still knows the address (as it would moments after the last holder's
            # traffic): frames go straight to the MAC, wherever the bridge last saw it
            assert subprocess.run(["ip", "neigh", "replace", ep.ip, "lladdr", ep.mac, "dev",
                                   netenv.config.bridge_name, "nud", "reachable"]).returncode == 0
            with socket.create_connection(("127.0.0.1", binding.host_port), timeout=5) as c:
                c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                page = b""
                while chunk := c.recv(4096):
                    page += chunk
            assert b"hello-new" in page
        finally:
            proc.kill()
            proc.wait()
    finally:
        os.close(held)
