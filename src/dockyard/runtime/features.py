"""``dockyard-runtime features`` (features.md), generated from the tables the code uses."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any



__all__ = ["features"]


def features() -> dict[str, Any]:
    from dockyard.linux import capabilities, mountflags
    from dockyard.linux import seccomp as sc
    from dockyard.oci import runtime_spec
    from dockyard.runtime.namespaces import NAMESPACES

    seccomp = {"enabled": True, "actions": sorted(sc.ACTIONS), "operators": sorted(sc.OPERATORS),
               "archs": sorted(sc.ARCHITECTURES), "knownFlags": sorted(sc.FLAGS),
               "supportedFlags": sorted(sc.FLAGS)}
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": runtime_spec.OCI_VERSION,
        "hooks": list(runtime_spec.HOOK_NAMES),
        "mountOptions": mountflags.all_options(),
        "linux": {
            "namespaces": sorted(NAMESPACES),
            "capabilities": list(capabilities.CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": seccomp,
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"io.github.dockyard.runtime": "dockyard-runtime"},
    }
