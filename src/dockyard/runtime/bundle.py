"""Load and check a bundle (bundle.md) before anything is created.

``load_bundle`` reads ``config.json``, validates it (``dockyard.oci.runtime_spec``) and checks
it against the disk: the rootfs exists, namespace paths exist, and no mount destination
escapes the rootfs through a symlink. Errors are ``InvalidArgument`` naming the field.
"""

from __future__ import annotations

import os

from dockyard import fastjson
from dockyard.errors import InvalidArgument
from dockyard.oci import runtime_spec
from dockyard.runtime.paths import resolve_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = ["Bundle", "load_bundle"]


class Bundle:
    __slots__ = ("path", "rootfs", "spec")

    def __init__(self, path: str, rootfs: str, spec: dict[str, Any]) -> None:
        self.path = path      # absolute bundle directory
        self.rootfs = rootfs  # absolute, symlinks resolved
        self.spec = spec


def load_bundle(path: str) -> Bundle:
    bundle = os.path.abspath(path)
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise InvalidArgument(f"bundle {bundle}: config.json not found") from None
    except OSError as exc:
        raise InvalidArgument(f"bundle {bundle}: cannot read config.json: {exc}") from exc
    try:
        config = fastjson.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"config.json: invalid JSON: {exc}") from exc
    spec = runtime_spec.validate(config)
    rootfs = os.path.realpath(os.path.join(bundle, spec["root"]["path"]))
    if not os.path.isdir(rootfs):
        raise InvalidArgument(f"root.path: rootfs {rootfs} does not exist or is not a directory")
    linux = spec.get("linux") or {}
    types = {ns["type"] for ns in linux.get("namespaces") or []}
    if "mount" not in types:
        raise InvalidArgument("linux.namespaces: a mount namespace is required")
    for i, ns in enumerate(linux.get("namespaces") or []):
        if ns.get("path") and not os.path.exists(ns["path"]):
            raise InvalidArgument(f"linux.namespaces[{i}].path: {ns['path']} does not exist")
    for i, m in enumerate(spec.get("mounts") or []):
        resolve_in_root(rootfs, m["destination"], field=f"mounts[{i}].destination")
    return Bundle(bundle, rootfs, spec)
