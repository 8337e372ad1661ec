"""The runtime's use of ``dockyard.cgroups`` (owned by the cgroups engineer), in one place."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any



__all__ = ["cgroup_path", "open_cg"]

DEFAULT_PARENT = "/dockyard"


def cgroup_path(spec: dict[str, Any], container_id: str) -> str:
    path = (spec.get("linux") or {}).get("cgroupsPath") or f"{DEFAULT_PARENT}/{container_id}"
    if ":" in path:  # systemd form "slice:prefix:name": we drive cgroupfs directly
        slice_, prefix, name = [*path.split(":"), "", ""][:3]
        path = f"/{slice_ or 'dockyard'}/{prefix + '-' if prefix else ''}{name}"
    return path if path.startswith("/") else f"{DEFAULT_PARENT}/{path}"


def open_cg(path: str) -> Any:
    """The ``Cgroup`` for ``path``, or None where ``dockyard.cgroups`` is not available."""
    try:
        from dockyard.cgroups import open_cgroup
    except ImportError:
        return None
    return open_cgroup(path)
