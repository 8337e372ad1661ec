"""``delete``: remove a stopped (or, with ``force``, any) container and everything it held."""

from __future__ import annotations

import os
import time

from dockyard.errors import Conflict, ContainerNotFound
from dockyard.linux.signals import SIGKILL
from dockyard.runtime import state as st
from dockyard.runtime.trace import mark

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.runtime.runtime import Runtime

__all__ = ["delete"]


def delete(rt: Runtime, container_id: str, force: bool = False) -> None:
    mark("delete: begin")
    try:
        record, status = rt.load(container_id)
    except ContainerNotFound:
        # a create killed before it wrote state.json leaves only its directory behind
        if force and os.path.isdir(os.path.join(rt.root, container_id)):
            st.remove_state_dir(rt.root, container_id)
        raise
    if status in ("running", "paused") and not force:
        raise Conflict(f"cannot delete container {container_id} that is not stopped: {status}")
    cg = rt.cgroup(record)
    if status != "stopped":
        # a created container is deleted like runc does: its init never ran user code
        if cg is not None and cg.exists():
            cg.kill_all(SIGKILL)
            if status == "paused":
                cg.thaw()
        if st.init_alive(record):
            try:
                os.kill(record.pid, SIGKILL)
            except ProcessLookupError:
                pass
        _wait_stopped(record)
    if cg is not None and cg.exists():
        cg.kill_all(SIGKILL)  # leftovers of `exec` or of a shared pid namespace
        cg.destroy()
    mark("delete: cgroup removed")
    if (record.config.get("hooks") or {}).get("poststop"):
        from dockyard.runtime.hooks import run_hooks

        oci = st.ContainerState(record.id, record.pid, "stopped", record.bundle, record.rootfs,
                                record.created, record.annotations, record.owner).to_oci()
        run_hooks(record.config, "poststop", oci, rt.warn)
    st.remove_state_dir(rt.root, container_id)
    mark("delete: done")


def _wait_stopped(record: st.Record, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while st.init_alive(record):
        if time.monotonic() > deadline:
            raise Conflict(f"container {record.id} init (pid {record.pid}) did not exit")
        time.sleep(0.005)

