"""The runc role: OCI bundles -> isolated, limited processes (synchronous; no asyncio, no HTTP).

::

    from dockyard.runtime import Runtime
    rt = Runtime("/run/dockyard/runtime")
    pid = rt.create("c1", "/path/to/bundle")   # init waits on the exec fifo
    rt.start("c1"); rt.state("c1").status; rt.kill("c1", 15); rt.delete("c1")

``dockyard-runtime`` (``runtime.cli``) is a thin layer with runc's command-line contract.
"""

from __future__ import annotations

from dockyard.runtime.runtime import DEFAULT_ROOT, Runtime
from dockyard.runtime.state import ContainerState

__all__ = ["DEFAULT_ROOT", "ContainerState", "Runtime"]
