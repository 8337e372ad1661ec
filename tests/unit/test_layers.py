"""The architecture's boundaries, checked: no package imports one it must not know.

    cli -> client ~~HTTP~~> api -> daemon -> {images, distribution, runtime, network, volumes}
    -> {oci, linux, cgroups}
"""

from __future__ import annotations

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "dockyard"

# package -> packages (under dockyard.) it must never import
FORBIDDEN: dict[str, set[str]] = {
    "oci": {"linux", "cgroups", "runtime", "images", "distribution", "registry", "network",
            "volumes", "daemon", "api", "client", "cli"},
    "linux": {"runtime", "images", "distribution", "registry", "network", "daemon", "api",
              "client", "cli"},
    "cgroups": {"runtime", "images", "distribution", "registry", "network", "daemon", "api",
                "client", "cli"},
    "runtime": {"images", "distribution", "registry", "network", "daemon", "api", "client",
                "cli"},
    "images": {"distribution", "registry", "runtime", "network", "daemon", "api", "client",
               "cli"},
    "distribution": {"registry", "runtime", "network", "daemon", "api", "client", "cli"},
    "registry": {"images", "runtime", "network", "daemon", "api", "client", "cli", "linux",
                 "cgroups", "distribution"},
    "network": {"daemon", "api", "client", "cli", "images", "distribution", "registry"},
    "daemon": {"api", "client", "cli"},
    "api": {"linux", "cgroups", "runtime", "client", "cli"},
    "client": {"daemon", "api", "runtime", "linux", "cgroups", "images", "network"},
}
# third-party or stdlib modules a package must never import
FORBIDDEN_EXTERNAL: dict[str, set[str]] = {
    "runtime": {"asyncio", "aiohttp", "http"},
    "linux": {"asyncio", "aiohttp", "http"},
    "cgroups": {"asyncio", "aiohttp", "http"},
    "oci": {"asyncio", "aiohttp"},
    "images": {"aiohttp", "http"},
}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _files() -> list[tuple[str, pathlib.Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).parts
        if len(rel) > 1:
            out.append((rel[0], path))
    return out


@pytest.mark.parametrize(("package", "path"), _files(), ids=lambda v: str(v).split("dockyard/")[-1])
def test_package_respects_layer_boundaries(package: str, path: pathlib.Path) -> None:
    for module in _imports(path):
        parts = module.split(".")
        if parts[0] == "dockyard" and len(parts) > 1:
            assert parts[1] not in FORBIDDEN.get(package, set()), f"{path}: imports {module}"
        assert parts[0] not in FORBIDDEN_EXTERNAL.get(package, set()), f"{path}: imports {module}"
