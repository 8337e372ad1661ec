"""``--network`` modes: what the daemon must do for each before starting the container.

=================  =============================================================
``none``           new netns with only ``lo`` (the runtime creates it)
``host``           no netns: the OCI spec omits the network namespace
``container:<x>``  join ``/proc/<pid of x>/ns/net`` (the OCI spec's namespace path)
``bridge``         new netns, then :meth:`NetworkManager.attach` to the default bridge
``<name or id>``   new netns, attach to that user-defined network (embedded DNS)
=================  =============================================================

``default`` (sent by the docker CLI) means ``bridge``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dockyard.errors import InvalidArgument

__all__ = ["NetworkMode", "parse_network_mode"]

Kind = Literal["none", "host", "container", "bridge", "user"]


@dataclass(frozen=True)
class NetworkMode:
    kind: Kind
    target: str = ""        # container name/id for "container", network name for "user"

    @property
    def new_netns(self) -> bool:
        """Whether the runtime must create a fresh network namespace."""
        return self.kind in ("none", "bridge", "user")

    @property
    def attaches(self) -> bool:
        """Whether the container gets an endpoint (veth) on a network."""
        return self.kind in ("bridge", "user")

    @property
    def network(self) -> str:
        return "bridge" if self.kind == "bridge" else self.target

    def __str__(self) -> str:
        if self.kind == "container":
            return f"container:{self.target}"
        return self.network if self.attaches else self.kind


def parse_network_mode(raw: str | None) -> NetworkMode:
    value = (raw or "default").strip()
    if value in ("", "default", "bridge"):
        return NetworkMode("bridge")
    if value in ("none", "host"):
        return NetworkMode(value)  # type: ignore[arg-type]
    if value.startswith("container:"):
        target = value.split(":", 1)[1]
        if not target:
            raise InvalidArgument("invalid container format container:<name|id>")
        return NetworkMode("container", target)
    if value.startswith("container"):
        raise InvalidArgument("invalid container format container:<name|id>")
    return NetworkMode("user", value)
