"""daemon.json network keys."""

from __future__ import annotations

import ipaddress

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network import NetworkConfig
from dockyard.network.ipam import AddressPool


def test_daemon_json_keys_map_to_the_config() -> None:
    cfg = NetworkConfig.from_daemon_json({
        "bip": "10.50.0.1/24", "bridge": "br-test", "iptables": False, "mtu": 1400,
        "default-address-pools": [{"base": "10.60.0.0/16", "size": 24}],
    })
    assert (cfg.bip, cfg.bridge_name, cfg.manage_firewall, cfg.mtu) == ("10.50.0.1/24", "br-test", False, 1400)
    assert cfg.default_address_pools == (AddressPool(ipaddress.ip_network("10.60.0.0/16"), 24),)
    assert NetworkConfig.from_daemon_json({}) == NetworkConfig()


def test_bad_bip_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="invalid bip"):
        NetworkConfig.from_daemon_json({"bip": "nope"})


def test_bridge_none_disables_the_default_bridge() -> None:
    cfg = NetworkConfig.from_daemon_json({"bridge": "none"})
    assert cfg.default_bridge is False and cfg.bridge_name == "dockyard0"
