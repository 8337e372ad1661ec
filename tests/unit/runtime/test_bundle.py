"""Bundle checks against the disk: rootfs, namespace paths, symlink escapes."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from dockyard.errors import InvalidArgument
from dockyard.oci.runtime_spec import default_spec
from dockyard.runtime.bundle import load_bundle
from dockyard.runtime.paths import resolve_in_root


def _bundle(tmp_path: Any, spec: dict[str, Any] | None = None, rootfs: bool = True) -> str:
    spec = spec or default_spec()
    if rootfs:
        os.makedirs(tmp_path / "rootfs" / "etc")
    (tmp_path / "config.json").write_text(json.dumps(spec))
    return str(tmp_path)


def test_valid_bundle_loads_with_absolute_rootfs(tmp_path: Any) -> None:
    b = load_bundle(_bundle(tmp_path))
    assert b.rootfs == os.path.realpath(tmp_path / "rootfs")
    assert b.spec["process"]["args"] == ["sh"]


def test_missing_rootfs_names_root_path(tmp_path: Any) -> None:
    with pytest.raises(InvalidArgument, match=r"^root.path: rootfs .* does not exist"):
        load_bundle(_bundle(tmp_path, rootfs=False))


def test_missing_config_is_refused(tmp_path: Any) -> None:
    with pytest.raises(InvalidArgument, match=r"config\.json not found"):
        load_bundle(str(tmp_path))


def test_bad_json_is_refused(tmp_path: Any) -> None:
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(InvalidArgument, match=r"^config.json: invalid JSON"):
        load_bundle(str(tmp_path))


def test_mount_destination_escaping_through_symlink_is_refused(tmp_path: Any) -> None:
    spec = default_spec()
    spec["mounts"].append({"destination": "/data/x", "type": "tmpfs", "source": "tmpfs"})
    path = _bundle(tmp_path, spec)
    os.symlink("../../../../../../etc", tmp_path / "rootfs" / "data")
    with pytest.raises(InvalidArgument, match=r"^mounts\[7\].destination: .* escapes"):
        load_bundle(path)


def test_missing_namespace_path_is_refused(tmp_path: Any) -> None:
    spec = default_spec()
    spec["linux"]["namespaces"][1] = {"type": "network", "path": str(tmp_path / "no-such-ns")}
    with pytest.raises(InvalidArgument, match=r"^linux.namespaces\[1\].path: .* does not exist"):
        load_bundle(_bundle(tmp_path, spec))


def test_mount_namespace_is_required(tmp_path: Any) -> None:
    spec = default_spec()
    spec["linux"]["namespaces"] = [{"type": "uts"}]
    with pytest.raises(InvalidArgument, match="mount namespace is required"):
        load_bundle(_bundle(tmp_path, spec))


def test_absolute_symlink_resolves_inside_the_rootfs(tmp_path: Any) -> None:
    root = tmp_path / "r"
    os.makedirs(root / "run")
    os.makedirs(root / "var")
    os.symlink("/run", root / "var" / "run")
    assert resolve_in_root(str(root), "/var/run/x") == str(root / "run" / "x")
    os.symlink("../run/../var/./run", root / "var" / "loop")
    assert resolve_in_root(str(root), "/var/loop/y") == str(root / "run" / "y")
