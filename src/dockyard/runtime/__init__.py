"""The runc role: OCI bundles -> isolated, limited processes (synchronous; no asyncio, no HTTP).

::

    from dockyard.runtime import Runtime
    rt = Runtime("/run/dockyard/runtime")
    pid = rt.create("c1", "/path/to/bundle")   # init waits on the exec fifo
    rt.start("c1"); rt.state("c1").status; rt.kill("c1", 15); rt.delete("c1")

``dockyard-runtime`` (``runtime.cli``) is a thin layer with runc's command-line contract.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.runtime.runtime import DEFAULT_ROOT, Runtime
    from dockyard.runtime.state import ContainerState

__all__ = ["DEFAULT_ROOT", "ContainerState", "Runtime"]


def __getattr__(name: str) -> object:
    """The package's names, imported on first use: ``dockyard-runtime`` imports
    ``dockyard.runtime.cli`` through this package and must not pay for what a verb skips."""
    if name in ("DEFAULT_ROOT", "Runtime"):
        from dockyard.runtime import runtime

        return getattr(runtime, name)
    if name == "ContainerState":
        from dockyard.runtime.state import ContainerState

        return ContainerState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
