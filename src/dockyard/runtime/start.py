"""``start``: release a created container's init by reading its exec fifo."""

from __future__ import annotations

import os
import select

from dockyard.errors import Conflict, Internal
from dockyard.runtime import state as st
from dockyard.runtime.trace import mark

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.runtime.runtime import Runtime

__all__ = ["start"]


def start(rt: Runtime, container_id: str) -> None:
    record, status = rt.load(container_id)
    if status != "created":
        raise Conflict(f"cannot start a container that is {status}: {container_id}")
    fifo = os.path.join(rt.root, container_id, "exec.fifo")
    # O_NONBLOCK: never hang on a dead init; poll for its byte while checking it lives
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if poller.poll(100):
                try:
                    data = os.read(fd, 1)
                except BlockingIOError:
                    data = b""
                if data:
                    break
            if not st.init_alive(record):
                raise Internal(f"container {container_id} init exited before start")
    finally:
        os.close(fd)
    os.unlink(fifo)
    mark("start: init released")
    if (record.config.get("hooks") or {}).get("poststart"):
        from dockyard.runtime.hooks import run_hooks

        oci = st.ContainerState(record.id, record.pid, "running", record.bundle, record.rootfs,
                                record.created, record.annotations, record.owner).to_oci()
        run_hooks(record.config, "poststart", oci, rt.warn)
