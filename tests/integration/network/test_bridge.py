"""Bridge endpoints on a real kernel: addresses, routes, reachability, isolation, cleanup."""

from __future__ import annotations

import ipaddress

import pytest
from pyroute2 import IPRoute

from dockyard.errors import Conflict, Forbidden, InvalidArgument, NotFound
from dockyard.network.netns import run_in_netns
from tests.integration.network.conftest import NetEnv, all_links, our_links, random_subnet

pytestmark = pytest.mark.root

CID1, CID2, CID3 = "a1" * 32, "b2" * 32, "c3" * 32


def _inside(ns: str) -> dict[str, object]:
    def body() -> dict[str, object]:
        with IPRoute() as ipr:
            eth = ipr.link_lookup(ifname="eth0")[0]
            link = ipr.get_links(eth)[0]
            addrs = [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                     for a in ipr.get_addr(index=eth, family=2)]
            default = [r.get_attr("RTA_GATEWAY") for r in ipr.get_routes(family=2, table=254)
                       if r["dst_len"] == 0]
            return {"mac": link.get_attr("IFLA_ADDRESS"), "addrs": addrs, "gw": default,
                    "up": bool(link["flags"] & 1)}
    return run_in_netns(ns, body)


def _ping(env: NetEnv, ns: str, ip: str) -> bool:
    return env.run(ns, "busybox", "ping", "-c", "1", "-W", "1", ip).returncode == 0


def test_attach_gives_address_mac_and_default_route(netenv: NetEnv) -> None:
    ns = netenv.netns()
    ep = netenv.nm.attach(CID1, ns, "bridge", name="web")
    bridge = netenv.nm.get("bridge")
    subnet = ipaddress.ip_network(bridge.subnet)
    assert ipaddress.ip_address(ep.ip) in subnet and ep.ip != bridge.gateway
    seen = _inside(ns)
    assert seen["addrs"] == [f"{ep.ip}/{subnet.prefixlen}"]
    assert seen["gw"] == [bridge.gateway]
    assert seen["mac"] == ep.mac == "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.ip_address(ep.ip).packed)
    assert seen["up"] and ep.iface == "eth0"


def test_attach_honours_mac_and_ip_on_user_network(netenv: NetEnv) -> None:
    subnet = random_subnet()
    netenv.nm.create_network("front", subnet=subnet)
    ns = netenv.netns()
    want_ip = str(ipaddress.ip_network(subnet).network_address + 77)
    ep = netenv.nm.attach(CID1, ns, "front", mac="02:aa:bb:cc:dd:ee", ip=want_ip)
    assert (ep.ip, ep.mac) == (want_ip, "02:aa:bb:cc:dd:ee")
    assert _inside(ns)["mac"] == "02:aa:bb:cc:dd:ee"
    with pytest.raises(Conflict, match="Address already in use"):
        netenv.nm.attach(CID2, netenv.netns(), "front", ip=want_ip)


def test_two_containers_on_one_bridge_reach_each_other(netenv: NetEnv) -> None:
    ns1, ns2 = netenv.netns(), netenv.netns()
    netenv.nm.attach(CID1, ns1, "bridge")
    ep2 = netenv.nm.attach(CID2, ns2, "bridge")
    assert _ping(netenv, ns1, ep2.ip)


def test_different_networks_are_isolated(netenv: NetEnv) -> None:
    netenv.nm.create_network("red", subnet=random_subnet())
    netenv.nm.create_network("blue", subnet=random_subnet())
    ns_red, ns_red2, ns_blue = netenv.netns(), netenv.netns(), netenv.netns()
    netenv.nm.attach(CID1, ns_red, "red")
    red2 = netenv.nm.attach(CID3, ns_red2, "red")
    blue = netenv.nm.attach(CID2, ns_blue, "blue")
    assert _ping(netenv, ns_red, red2.ip)              # same network: reachable
    assert not _ping(netenv, ns_red, blue.ip)          # routed to the other bridge: dropped
    assert not _ping(netenv, ns_blue, red2.ip)


def test_internal_network_cannot_reach_the_gateway_side(netenv: NetEnv) -> None:
    netenv.nm.create_network("vault", subnet=random_subnet(), internal=True)
    netenv.nm.create_network("open", subnet=random_subnet())
    ns_in, ns_out = netenv.netns(), netenv.netns()
    inner = netenv.nm.attach(CID1, ns_in, "vault")
    outer = netenv.nm.attach(CID2, ns_out, "open")
    assert not _ping(netenv, ns_in, outer.ip)
    assert not _ping(netenv, ns_out, inner.ip)


def test_detach_removes_the_interface_and_frees_the_address(netenv: NetEnv) -> None:
    ns = netenv.netns()
    ep = netenv.nm.attach(CID1, ns, "bridge")
    netenv.nm.detach(CID1, "bridge")
    assert ep.veth_host not in all_links()
    assert not run_in_netns(ns, lambda: bool(IPRoute().link_lookup(ifname="eth0")))
    again = netenv.nm.attach(CID2, netenv.netns(), "bridge")
    assert again.ip == ep.ip


def test_attach_to_missing_netns_leaves_nothing(netenv: NetEnv) -> None:
    before = our_links(netenv)
    with pytest.raises(NotFound):
        netenv.nm.attach(CID1, f"/run/netns/dyt-{netenv.tag}-missing", "bridge")
    assert our_links(netenv) == before
    assert netenv.nm.endpoints_of(CID1) == []
    assert netenv.manager().endpoints_of(CID1) == []


def test_invalid_mac_is_refused_before_anything_is_made(netenv: NetEnv) -> None:
    before = our_links(netenv)
    with pytest.raises(InvalidArgument, match="not a valid mac address"):
        netenv.nm.attach(CID1, netenv.netns(), "bridge", mac="02:42:zz")
    assert our_links(netenv) == before


def test_overlapping_subnet_is_refused_and_leaves_nothing(netenv: NetEnv) -> None:
    subnet = random_subnet()
    netenv.nm.create_network("one", subnet=subnet)
    before = our_links(netenv)
    with pytest.raises(Conflict, match="Pool overlaps with other one on this address space"):
        netenv.nm.create_network("two", subnet=str(ipaddress.ip_network(subnet).supernet(1)))
    with pytest.raises(Conflict, match="network with name one already exists"):
        netenv.nm.create_network("one")
    assert our_links(netenv) == before
    assert [n.name for n in netenv.manager().list()] == ["none", "host", "bridge", "one"]


def test_network_with_endpoints_cannot_be_removed(netenv: NetEnv) -> None:
    net = netenv.nm.create_network("busy", subnet=random_subnet())
    netenv.nm.attach(CID1, netenv.netns(), "busy")
    with pytest.raises(Forbidden, match="has active endpoints"):
        netenv.nm.remove_network("busy")
    with pytest.raises(Forbidden, match="pre-defined network"):
        netenv.nm.remove_network("bridge")
    netenv.nm.detach(CID1, "busy")
    netenv.nm.remove_network(net.id[:8])
    assert net.bridge not in all_links()
    with pytest.raises(NotFound, match="network busy not found"):
        netenv.nm.get("busy")


def test_allocations_survive_a_restart(netenv: NetEnv) -> None:
    ep1 = netenv.nm.attach(CID1, netenv.netns(), "bridge")
    restarted = netenv.manager()
    restarted.start()
    assert restarted.endpoints_of(CID1)[0][1].ip == ep1.ip
    ep2 = restarted.attach(CID2, netenv.netns(), "bridge")
    assert ep2.ip != ep1.ip


def test_restart_drops_endpoints_of_dead_containers(netenv: NetEnv) -> None:
    from pyroute2 import netns

    ns = netenv.netns()
    netenv.nm.attach(CID1, ns, "bridge")
    netns.remove(ns.rsplit("/", 1)[1])       # the container died: its veth went with it
    netenv.namespaces.remove(ns.rsplit("/", 1)[1])
    restarted = netenv.manager()
    restarted.start()
    assert restarted.endpoints_of(CID1) == []


def test_prune_removes_only_unused_user_networks(netenv: NetEnv) -> None:
    netenv.nm.create_network("keep", subnet=random_subnet())
    netenv.nm.create_network("drop", subnet=random_subnet(), labels={"tier": "x"})
    netenv.nm.attach(CID1, netenv.netns(), "keep")
    assert netenv.nm.prune() == ["drop"]
    assert {n.name for n in netenv.nm.list()} == {"none", "host", "bridge", "keep"}


def test_default_pool_subnets_do_not_overlap(netenv: NetEnv) -> None:
    a = netenv.nm.create_network("p1")
    b = netenv.nm.create_network("p2")
    sa, sb = ipaddress.ip_network(a.subnet), ipaddress.ip_network(b.subnet)
    assert not sa.overlaps(sb)
    assert not sa.overlaps(ipaddress.ip_network(netenv.nm.get("bridge").subnet))


def test_etc_files_follow_the_network(netenv: NetEnv) -> None:
    from dockyard.network.etcfiles import ResolvConf

    host = ResolvConf(("127.0.0.53", "192.0.2.53"), ("lan",), ())
    netenv.nm.create_network("named", subnet=random_subnet())
    on_bridge = netenv.nm.attach(CID1, netenv.netns(), "bridge")
    netenv.nm.attach(CID2, netenv.netns(), "named")
    files = netenv.nm.etc_files(CID1, "box1", extra_hosts=["db:10.9.9.9"], host_resolv=host)
    assert files["hosts"].endswith(f"10.9.9.9\tdb\n{on_bridge.ip}\tbox1\n")
    assert files["resolv.conf"] == "nameserver 192.0.2.53\nsearch lan\n"
    assert files["hostname"] == "box1\n"
    named = netenv.nm.etc_files(CID2, "box2", mode="named", host_resolv=host)
    assert named["resolv.conf"] == "nameserver 127.0.0.11\nsearch lan\noptions ndots:0\n"
    assert netenv.nm.upstreams(CID2, host_resolv=host) == [("127.0.0.53", 53), ("192.0.2.53", 53)]
    netenv.nm.write_etc_files(netenv.state_dir, named)
    with open(f"{netenv.state_dir}/hostname") as f:
        assert f.read() == "box2\n"


def test_ipv6_network_gives_both_families(netenv: NetEnv) -> None:
    import random

    subnet6 = f"fd00:{random.randrange(1 << 16):x}:{random.randrange(1 << 16):x}::/64"
    netenv.nm.create_network("dual", subnet=random_subnet(), enable_ipv6=True, subnet6=subnet6)
    ns1, ns2 = netenv.netns(), netenv.netns()
    netenv.nm.attach(CID1, ns1, "dual")
    ep2 = netenv.nm.attach(CID2, ns2, "dual")
    assert ep2.ip6 is not None and ipaddress.ip_address(ep2.ip6) in ipaddress.ip_network(subnet6)
    assert _ping(netenv, ns1, ep2.ip)
    out = netenv.run(ns1, "busybox", "ping", "-6", "-c", "1", "-W", "2", ep2.ip6)
    assert out.returncode == 0, out.stdout + out.stderr
    routes = netenv.run(ns1, "ip", "-6", "route", "show", "default").stdout
    assert f"via {netenv.nm.get('dual').gateway6}" in routes
