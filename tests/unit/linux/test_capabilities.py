"""Capability names, masks and the resolution of OCI process.capabilities against the host."""

from __future__ import annotations

import logging

import pytest

from dockyard.errors import InvalidArgument
from dockyard.linux import capabilities as caps


def test_docker_default_set_is_mask_a80425fb() -> None:
    assert caps.to_mask(caps.DEFAULT_CAPS) == caps.DEFAULT_MASK == 0xA80425FB
    assert caps.from_mask(0xA80425FB) == frozenset(caps.DEFAULT_CAPS)


def test_numbers_follow_the_kernel_header() -> None:
    assert caps.to_mask(["CAP_CHOWN"]) == 1
    assert caps.to_mask(["CAP_SYS_ADMIN"]) == 1 << 21
    assert caps.to_mask(["CAP_CHECKPOINT_RESTORE"]) == 1 << 40
    assert len(caps.CAPABILITIES) == 41


def test_parse_normalises_names_and_refuses_unknown_ones() -> None:
    assert caps.parse(["net_admin", "CAP_KILL", "Sys_Time"]) == {"CAP_NET_ADMIN", "CAP_KILL", "CAP_SYS_TIME"}
    with pytest.raises(InvalidArgument, match="CAP_FLY"):
        caps.parse(["CAP_FLY"])


def test_capabilities_newer_than_our_table_round_trip_by_number() -> None:
    assert caps.from_mask(1 << 45) == {"CAP_45"}
    assert caps.to_mask(["CAP_45"]) == 1 << 45


def test_resolve_drops_caps_the_host_lacks_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    host = frozenset(caps.CAPABILITIES) - {"CAP_SYS_RESOURCE"}
    everything = list(caps.CAPABILITIES)
    with caplog.at_level(logging.WARNING, "dockyard.linux.capabilities"):
        sets = caps.resolve({"bounding": everything, "effective": everything, "ambient": ["CAP_SYS_RESOURCE"]},
                            host=host)
    assert "CAP_SYS_RESOURCE" not in sets.bounding | sets.effective | sets.ambient
    assert sets.bounding == host and sets.permitted == frozenset()
    assert "CAP_SYS_RESOURCE" in caplog.text


def test_resolve_refuses_an_unknown_set() -> None:
    with pytest.raises(InvalidArgument, match="bogus"):
        caps.resolve({"bogus": []}, host=frozenset())


def test_host_bounding_set_and_current_read_proc() -> None:
    bounding = caps.host_bounding_set()
    assert caps.current().bounding == bounding
    assert caps.last_cap() >= 36
