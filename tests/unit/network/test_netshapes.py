"""Docker's JSON for networks, container NetworkSettings and ps Ports."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from dockyard.api.netshapes import (
    container_network_settings,
    endpoint_id,
    network_json,
    port_summary,
)
from dockyard.network import Endpoint, Network, PortBinding

EP = Endpoint(container_id="c" * 64, network_id="n" * 64, name="web", aliases=("front",),
              ip="10.1.0.2", prefixlen=24, gateway="10.1.0.1", mac="02:42:0a:01:00:02",
              veth_host="dyv1", veth_peer="eth0", netns_path="/x", state="ready", iface="eth0",
              ports=(PortBinding("tcp", "127.0.0.1", 8080, 80),))
NET = Network(id="n" * 64, name="app", driver="bridge", bridge="dy-n", subnet="10.1.0.0/24",
              gateway="10.1.0.1", labels={"a": "b"}, created=0.0, endpoints={EP.container_id: EP})


class View:
    def endpoints(self) -> list[tuple[Network, Endpoint]]:
        return [(NET, EP)]

    def ports(self) -> list[PortBinding]:
        return list(EP.ports)

    def sandbox_key(self) -> str:
        return "/run/dockyard/netns/c"


def container(status: str = "running") -> Any:
    return SimpleNamespace(id="c" * 64, host_config={"NetworkMode": "app"},
                           config={"ExposedPorts": {"80/tcp": {}, "443/tcp": {}}},
                           state=SimpleNamespace(status=status))


def test_network_json_has_dockers_fields() -> None:
    out = network_json(NET)
    assert out["Name"] == "app" and out["Id"] == NET.id and out["Scope"] == "local"
    assert out["IPAM"]["Config"] == [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1"}]
    assert out["Created"] == "1970-01-01T00:00:00.000000000Z"
    assert out["Containers"][EP.container_id] == {
        "Name": "web", "EndpointID": endpoint_id(NET.id, EP.container_id),
        "MacAddress": EP.mac, "IPv4Address": "10.1.0.2/24", "IPv6Address": ""}


def test_inspect_network_settings_list_endpoints_and_ports() -> None:
    out = container_network_settings(container(), View())
    assert out["Networks"]["app"]["IPAddress"] == "10.1.0.2"
    assert out["Networks"]["app"]["Aliases"] == ["front", "c" * 12]
    assert out["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "443/tcp": None}
    assert out["SandboxKey"] == "/run/dockyard/netns/c"
    assert out["IPAddress"] == ""          # top-level fields describe the default bridge only


def test_ps_ports_show_published_then_exposed() -> None:
    assert port_summary(container(), View()) == [
        {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"}]
    assert port_summary(container("exited"), View()) == [
        {"PrivatePort": 80, "Type": "tcp"}, {"PrivatePort": 443, "Type": "tcp"}]
