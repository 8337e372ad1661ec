"""--network modes."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network.modes import parse_network_mode


@pytest.mark.parametrize(("raw", "kind", "network", "new_netns", "attaches"), [
    (None, "bridge", "bridge", True, True),
    ("default", "bridge", "bridge", True, True),
    ("none", "none", "", True, False),
    ("host", "host", "", False, False),
    ("container:web", "container", "web", False, False),
    ("mynet", "user", "mynet", True, True),
])
def test_modes(raw: str | None, kind: str, network: str, new_netns: bool, attaches: bool) -> None:
    mode = parse_network_mode(raw)
    assert (mode.kind, mode.new_netns, mode.attaches) == (kind, new_netns, attaches)
    if attaches:
        assert mode.network == network
    elif kind == "container":
        assert mode.target == network and str(mode) == "container:web"


@pytest.mark.parametrize("raw", ["container:", "container"])
def test_container_mode_needs_a_target(raw: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid container format"):
        parse_network_mode(raw)
