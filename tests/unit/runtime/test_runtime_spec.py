"""config.json validation: every refusal names the field, before anything is created."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dockyard.errors import InvalidArgument
from dockyard.oci.runtime_spec import default_spec, validate


def _spec() -> dict[str, Any]:
    spec = default_spec()
    spec["process"]["args"] = ["true"]
    return spec


def test_default_spec_is_valid() -> None:
    assert validate(default_spec()) is not None
    assert validate(default_spec(rootless=True)) is not None


def _set(spec: dict[str, Any], path: str, value: Any) -> None:
    node: Any = spec
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("process.args", [], "process.args"),
        ("process.args", "sh", "process.args"),
        ("process.cwd", "relative/dir", "process.cwd"),
        ("process.env", ["NOEQUALS"], "process.env[0]"),
        ("process.user.uid", -1, "process.user.uid"),
        ("process.capabilities.bounding", ["NOT_A_CAP"], "process.capabilities.bounding[0]"),
        ("process.rlimits", [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}],
         "process.rlimits[0].type"),
        ("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}],
         "process.rlimits[0]"),
        ("process.oomScoreAdj", 5000, "process.oomScoreAdj"),
        ("root.path", "", "root.path"),
        ("mounts.0.destination", "proc", "mounts[0].destination"),
        ("mounts.1.destination", "/dev/../../etc", "mounts[1].destination"),
        ("linux.namespaces", [{"type": "time-travel"}], "linux.namespaces[0].type"),
        ("linux.namespaces", [{"type": "pid"}, {"type": "pid"}], "linux.namespaces[1].type"),
        ("linux.namespaces", [{"type": "network", "path": "run/netns/x"}],
         "linux.namespaces[0].path"),
        ("linux.maskedPaths", ["proc/kcore"], "linux.maskedPaths[0]"),
        ("linux.rootfsPropagation", "sideways", "linux.rootfsPropagation"),
        ("linux.devices", [{"path": "/dev/fuse", "type": "x", "major": 10, "minor": 229}],
         "linux.devices[0].type"),
        ("linux.uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}],
         "linux.uidMappings"),
    ],
)
def test_invalid_field_is_refused_with_its_name(path: str, value: Any, field: str) -> None:
    spec = _spec()
    _set(spec, path, copy.deepcopy(value))
    with pytest.raises(InvalidArgument) as info:
        validate(spec)
    assert str(info.value).startswith(f"{field}: ")


def test_missing_process_is_refused() -> None:
    spec = _spec()
    del spec["process"]
    with pytest.raises(InvalidArgument, match=r"^process: is required"):
        validate(spec)


def test_hostname_needs_uts_namespace() -> None:
    spec = _spec()
    spec["linux"]["namespaces"] = [{"type": "mount"}]
    with pytest.raises(InvalidArgument, match=r"^hostname: needs a uts namespace"):
        validate(spec)


def test_unknown_hook_is_refused() -> None:
    spec = _spec()
    spec["hooks"] = {"preStartup": [{"path": "/bin/true"}]}
    with pytest.raises(InvalidArgument, match=r"^hooks\.preStartup: unknown hook"):
        validate(spec)


def test_non_object_config_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"^config: must be an object"):
        validate(["not", "an", "object"])
