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
from dockyard.daemon.networks import Attachment
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

    def attachments(self, network_mode: str | None) -> list[Attachment]:
        assert network_mode == "app"
        return [Attachment("app", NET, ("front",), joined_id=NET.id)]

    def ports(self) -> list[PortBinding]:
        return list(EP.ports)

    def sandbox_key(self) -> str:
        return "/run/dockyard/netns/c"


def container(status: str = "running", mode: str = "app") -> Any:
    return SimpleNamespace(id="c" * 64, host_config={"NetworkMode": mode},
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


# -- a container that is not attached now: dockerd 20.10's answers, checked against the real one
# (tests/interop/cli/test_cli_against_daemons.py::test_inspect_networks_of_created_and_stopped_containers)

BRIDGE = Network(id="b" * 64, name="bridge", driver="bridge", bridge="dy0", subnet="10.2.0.0/24",
                 gateway="10.2.0.1")
NONE = Network(id="0" * 64, name="none", driver="null")
OTHER = Network(id="o" * 64, name="other", driver="bridge", bridge="dy-o", subnet="10.3.0.0/24",
                gateway="10.3.0.1")
EMPTY = {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
         "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
         "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}


class Detached:
    """A container with no endpoint now, configured on ``attached``."""

    def __init__(self, *attached: Attachment) -> None:
        self.attached = list(attached)
        self.modes: list[str | None] = []

    def endpoints(self) -> list[tuple[Network, Endpoint]]:
        return []

    def attachments(self, network_mode: str | None) -> list[Attachment]:
        self.modes.append(network_mode)
        return self.attached

    def ports(self) -> list[PortBinding]:
        return []

    def sandbox_key(self) -> str:
        return ""


def test_created_container_lists_its_network_with_what_create_asked_for() -> None:
    view = Detached(Attachment("app", NET, ("web",), "10.1.0.9"))
    out = container_network_settings(container("created"), view)
    assert view.modes == ["app"]
    assert out["Networks"] == {"app": EMPTY | {"IPAMConfig": {"IPv4Address": "10.1.0.9"},
                                               "Aliases": ["web"]}}
    assert out["Ports"] == {} and out["SandboxKey"] == "" and out["IPAddress"] == ""


def test_created_container_connect_adds_the_short_id_alias_on_user_networks() -> None:
    view = Detached(Attachment("bridge", BRIDGE),
                    Attachment("app", NET, ("zz",), connected=True))
    out = container_network_settings(container("created", "default"), view)
    assert out["Networks"] == {"app": EMPTY | {"Aliases": ["zz", "c" * 12]}, "bridge": EMPTY}
    assert list(out["Networks"]) == ["app", "bridge"]      # sorted, as Go writes a map


def test_stopped_container_keeps_network_ids_and_aliases_without_addresses() -> None:
    view = Detached(Attachment("bridge", BRIDGE, joined_id=BRIDGE.id),
                    Attachment("app", NET, joined_id=NET.id),
                    Attachment("other", OTHER, connected=True))   # connected after it stopped
    out = container_network_settings(container("exited", "default"), view)
    assert out["Networks"] == {
        "app": EMPTY | {"NetworkID": NET.id, "Aliases": ["c" * 12]},
        "bridge": EMPTY | {"NetworkID": BRIDGE.id},
        "other": EMPTY | {"Aliases": ["c" * 12]}}


def test_none_and_host_have_the_network_id_once_run_and_an_endpoint_while_running() -> None:
    view = Detached(Attachment("none", NONE))
    assert container_network_settings(container("created", "none"), view)["Networks"] == {
        "none": EMPTY}
    running = container_network_settings(container("running", "none"), view)["Networks"]
    assert running == {"none": EMPTY | {"NetworkID": NONE.id,
                                        "EndpointID": endpoint_id(NONE.id, "c" * 64)}}
    assert container_network_settings(container("exited", "none"), view)["Networks"] == {
        "none": EMPTY | {"NetworkID": NONE.id}}


def test_running_container_lists_only_networks_it_is_attached_to() -> None:
    class Partly(View):
        def attachments(self, network_mode: str | None) -> list[Attachment]:
            return [Attachment("bridge", BRIDGE, joined_id=BRIDGE.id),
                    Attachment("app", NET, ("front",), "10.1.0.2")]

    out = container_network_settings(container("running", "default"), Partly())
    assert list(out["Networks"]) == ["app"]
    assert out["Networks"]["app"]["IPAMConfig"] == {"IPv4Address": "10.1.0.2"}
    assert out["Networks"]["app"]["EndpointID"] == endpoint_id(NET.id, EP.container_id)


def test_container_sharing_another_containers_network_lists_none() -> None:
    out = container_network_settings(container("created", "container:x"), Detached())
    assert out["Networks"] == {}
