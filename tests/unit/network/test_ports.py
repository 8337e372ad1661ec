"""Docker's -p syntax and error messages (go-connections nat.ParsePortSpec)."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network.ports import (
    PortSpec,
    bindings_from_api,
    parse_port_spec,
    parse_port_specs,
    publish_all_bindings,
)


@pytest.mark.parametrize(("raw", "want"), [
    ("80", [PortSpec(80, "tcp", "", "")]),
    ("8080:80", [PortSpec(80, "tcp", "", "8080")]),
    ("127.0.0.1:8080:80/udp", [PortSpec(80, "udp", "127.0.0.1", "8080")]),
    ("127.0.0.1::80", [PortSpec(80, "tcp", "127.0.0.1", "")]),
    ("[::1]:8080:80", [PortSpec(80, "tcp", "::1", "8080")]),
    ("8000-8001:80-81", [PortSpec(80, "tcp", "", "8000"), PortSpec(81, "tcp", "", "8001")]),
    ("8000-8010:80", [PortSpec(80, "tcp", "", "8000-8010")]),
    ("80/SCTP", [PortSpec(80, "sctp", "", "")]),
])
def test_valid_specs(raw: str, want: list[PortSpec]) -> None:
    assert parse_port_spec(raw) == want


@pytest.mark.parametrize(("raw", "message"), [
    ("foo", "Invalid containerPort: foo"),
    ("8080:", "No port specified: 8080:<empty>"),
    ("1.2.3:8080:80", "Invalid ip address: 1.2.3"),
    ("70000:80", "Invalid hostPort: 70000"),
    ("80/icmp", "Invalid proto: icmp"),
    ("8000-8002:80-81", "Invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
    ("90-80", "Invalid containerPort: 90-80"),
])
def test_invalid_specs_use_dockers_messages(raw: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_port_spec(raw)
    assert str(info.value) == message


def test_cli_specs_become_api_fields() -> None:
    exposed, bindings = parse_port_specs(["127.0.0.1:8080:80", "9090:80", "53/udp"])
    assert exposed == {"80/tcp": {}, "53/udp": {}}
    assert bindings == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}, {"HostIp": "", "HostPort": "9090"}],
        "53/udp": [{"HostIp": "", "HostPort": ""}],
    }


def test_api_bindings_and_publish_all() -> None:
    specs = bindings_from_api({"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": None})
    assert specs == [PortSpec(80, "tcp", "", "8080"), PortSpec(53, "udp", "", "")]
    assert publish_all_bindings(["80/tcp", "7000-7001/udp"]) == [
        PortSpec(80, "tcp", "", ""), PortSpec(7000, "udp", "", ""), PortSpec(7001, "udp", "", "")]
    with pytest.raises(InvalidArgument, match="Invalid hostPort: x"):
        bindings_from_api({"80/tcp": [{"HostPort": "x"}]})
