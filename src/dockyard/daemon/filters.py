"""Container list filters, as ``GET /containers/json?filters=`` applies them."""

from __future__ import annotations

import re
from typing import Any

from dockyard.daemon.records import Container
from dockyard.errors import DockyardError, InvalidArgument


def matches(svc: Any, c: Container, key: str, values: list[str]) -> bool:
    """One ``filters`` key of ``GET /containers/json`` (all values of a key must hold for label)."""
    if key == "status":
        return c.state.status in values
    if key == "name":
        try:
            return any(re.search(v.lstrip("/"), c.name) for v in values)
        except re.error as exc:
            raise InvalidArgument(f"invalid name filter: {exc}") from exc
    if key == "id":
        return any(c.id.startswith(v) for v in values)
    if key == "label":
        labels = c.config.get("Labels") or {}
        for v in values:
            k, sep, val = v.partition("=")
            if k not in labels or (sep and labels[k] != val):
                return False
        return True
    if key == "exited":
        return c.state.status == "exited" and str(c.state.exit_code) in values
    if key == "ancestor":
        for v in values:
            if c.config.get("Image") == v or c.image_id == v or c.image_id.removeprefix("sha256:").startswith(v):
                return True
            if svc.images is not None:
                try:
                    if svc.images.resolve(v).id == c.image_id:
                        return True
                except DockyardError:
                    continue
        return False
    if key == "volume":
        return any(mp.get("Name") in values or mp.get("Destination") in values for mp in c.mount_points)
    if key == "health":
        return (c.health or {}).get("Status", "none") in values
    if key in ("before", "since"):
        ref = svc.find(values[0])
        if ref is None:
            return False
        return bool(c.created < ref.created if key == "before" else c.created > ref.created)
    if key == "is-task":
        return "false" in values
    if key == "network":
        return True
    raise InvalidArgument(f"invalid filter '{key}'")


__all__ = ["matches"]
