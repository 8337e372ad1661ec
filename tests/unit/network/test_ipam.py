"""Subnet choice and address allocation."""

from __future__ import annotations

import ipaddress

import pytest

from dockyard.errors import Conflict, InvalidArgument, Unavailable
from dockyard.network.ipam import (
    DEFAULT_POOLS,
    AddressPool,
    allocate_address,
    check_requested_subnet,
    choose_subnet,
    parse_pools,
)

net = ipaddress.ip_network


def test_default_pools_skip_docker0_and_host_routes() -> None:
    assert choose_subnet(DEFAULT_POOLS, [], []) == net("172.18.0.0/16")
    assert choose_subnet(DEFAULT_POOLS, [net("172.18.0.0/16")], [net("172.19.5.0/24")]) == net("172.20.0.0/16")


def test_configured_pools_are_split_by_size() -> None:
    pools = parse_pools([{"base": "10.10.0.0/16", "size": 24}])
    assert choose_subnet(pools, [net("10.10.0.0/24")], []) == net("10.10.1.0/24")
    with pytest.raises(Unavailable):
        choose_subnet(parse_pools([{"base": "10.9.0.0/24", "size": 24}]), [net("10.9.0.0/16")], [])
    with pytest.raises(InvalidArgument):
        parse_pools([{"base": "nope", "size": 24}])


def test_requested_subnet_overlap_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="Pool overlaps with other one on this address space"):
        check_requested_subnet("10.1.0.0/16", [net("10.1.2.0/24")])
    assert check_requested_subnet("10.2.0.0/16", [net("10.1.2.0/24")]) == net("10.2.0.0/16")
    with pytest.raises(InvalidArgument, match="invalid CIDR address"):
        check_requested_subnet("10.2.0.0/33", [])


def test_addresses_skip_gateway_and_taken_and_honour_requests() -> None:
    subnet = net("10.0.0.0/29")
    assert allocate_address(subnet, ["10.0.0.1"]) == "10.0.0.2"
    assert allocate_address(subnet, ["10.0.0.1", "10.0.0.2", "10.0.0.4"]) == "10.0.0.3"
    assert allocate_address(subnet, ["10.0.0.1"], "10.0.0.6") == "10.0.0.6"
    with pytest.raises(Conflict, match="Address already in use"):
        allocate_address(subnet, ["10.0.0.1"], "10.0.0.1")
    with pytest.raises(InvalidArgument, match="no configured subnet"):
        allocate_address(subnet, [], "10.0.1.5")
    with pytest.raises(Unavailable):
        allocate_address(subnet, [f"10.0.0.{i}" for i in range(1, 7)])


def test_pool_size_larger_than_base_is_invalid() -> None:
    with pytest.raises(InvalidArgument):
        list(AddressPool(net("10.0.0.0/24"), 16).subnets())
