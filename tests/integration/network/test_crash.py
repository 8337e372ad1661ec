"""A daemon killed in the middle of network setup leaves nothing a restart does not remove."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.integration.network.conftest import NetEnv, make_config, our_links, random_subnet

pytestmark = pytest.mark.root

CID = "f6" * 32


def _run_and_die(netenv: NetEnv, patch: str, action: str) -> None:
    """Run ``action`` in a child daemon whose ``patch``ed step SIGKILLs it."""
    cfg = netenv.config
    script = textwrap.dedent(f"""
        import os, signal, ipaddress
        from dockyard.network import manager, links, NetworkConfig, NetworkManager
        from dockyard.network.ipam import AddressPool
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        {patch} = die
        cfg = NetworkConfig(bip={cfg.bip!r}, bridge_name={cfg.bridge_name!r},
                            bridge_prefix={cfg.bridge_prefix!r}, veth_prefix={cfg.veth_prefix!r},
                            fw_table={cfg.fw_table!r},
                            default_address_pools=(AddressPool(ipaddress.ip_network(
                                {str(cfg.default_address_pools[0].base)!r}), 28),))
        nm = NetworkManager({netenv.state_dir!r}, cfg)
        {action}
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _ours(netenv) -> set[str]:
    return our_links(netenv)


def test_kill_during_attach_is_cleaned_by_restart(netenv: NetEnv) -> None:
    ns = netenv.netns()
    before = _ours(netenv)
    _run_and_die(netenv, "links.configure_container_iface",
                 f"nm.attach({CID!r}, {ns!r}, 'bridge')")
    leftover = _ours(netenv) - before
    assert leftover, "the kill should have left a veth behind for this test to mean anything"
    restarted = netenv.manager()
    removed = restarted.cleanup_stale()
    assert _ours(netenv) == before
    assert any(name in removed for name in leftover)
    assert restarted.endpoints_of(CID) == []
    with open(f"{netenv.state_dir}/networks/{restarted.get('bridge').id}.json") as f:
        assert json.load(f)["endpoints"] == {}
    # and the address is free again
    assert restarted.attach(CID, ns, "bridge").ip == str(
        __import__("ipaddress").ip_network(restarted.get("bridge").subnet).network_address + 2)


def test_kill_during_network_create_is_cleaned_by_restart(netenv: NetEnv) -> None:
    before = _ours(netenv)
    _run_and_die(netenv, "manager.NetworkManager._save",
                 f"nm.create_network('half', subnet={random_subnet()!r})")
    assert _ours(netenv) - before, "the kill should have left a bridge behind"
    restarted = netenv.manager()
    restarted.start()
    assert _ours(netenv) == before
    assert "half" not in {n.name for n in restarted.list()}


def test_bridges_of_a_vanished_daemon_are_swept(netenv: NetEnv, tmp_path: object) -> None:
    import dataclasses
    import os
    import shutil
    import subprocess

    from dockyard.network import NetworkManager, links

    gone_dir = os.path.join(str(tmp_path), "gone")
    # another daemon: its own bridge, table and subnet (two bridges never share a subnet)
    cfg = dataclasses.replace(netenv.config, bridge_name=f"dyt{netenv.tag}g0",
                              fw_table=f"dyt_{netenv.tag}_g", bip=make_config(netenv.tag).bip)
    other = NetworkManager(gone_dir, cfg)
    other.start()
    other.prepare()                                     # its bridge and table exist now
    assert f"dyt{netenv.tag}g0" in _ours(netenv)
    shutil.rmtree(gone_dir)                             # killed, and its state dir removed
    removed = netenv.manager().cleanup_stale()
    # sweeping is host-wide: a daemon of a parallel test starting just now may have swept first
    assert f"dyt{netenv.tag}g0" in removed or not links.link_exists(f"dyt{netenv.tag}g0")
    assert f"dyt{netenv.tag}g0" not in _ours(netenv)
    assert subprocess.run(["nft", "list", "table", "inet", cfg.fw_table],
                          capture_output=True).returncode != 0
    assert netenv.config.bridge_name in _ours(netenv)   # the living daemon's bridge stays
