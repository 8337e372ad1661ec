"""``Runtime(root)``: the runc role as a library. One module per verb; this class ties them.

Every verb has the same shape: load the record and re-derive the status from the kernel
(``state.derive_status``) -> check the status allows the verb -> do it -> save.

Reaping contract: the library never waits for a container's init or exec'd processes. They
are reparented to the nearest subreaper: a caller that wants exit codes sets
``prctl(PR_SET_CHILD_SUBREAPER)`` first (as the shim and ``dockyard-runtime run`` do).
No threads, no asyncio: safe to call from a single-threaded monitor process.
"""

from __future__ import annotations

import os

from dockyard.errors import Unsupported
from dockyard.runtime import state as st

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


__all__ = ["DEFAULT_ROOT", "Runtime"]

DEFAULT_ROOT = "/run/dockyard/runtime"


class Runtime:
    def __init__(self, root: str = DEFAULT_ROOT, *,
                 warn: Callable[[str], None] | None = None) -> None:
        self.root = os.path.abspath(root)
        self._warn = warn
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self._warn is not None:
            self._warn(message)

    # -- helpers shared by the verbs
    def cgroup(self, record: st.Record) -> Any:
        from dockyard.runtime.cgroup import open_cg

        return open_cg(record.cgroup_path)

    def load(self, container_id: str) -> tuple[st.Record, str]:
        record = st.load_record(self.root, container_id)
        frozen = False
        if st.init_alive(record):
            cg = self.cgroup(record)
            frozen = bool(cg is not None and cg.exists() and cg.frozen())
        return record, st.derive_status(self.root, record, frozen)

    # -- verbs
    def create(self, container_id: str, bundle: str, *,
               stdio: tuple[int, int, int] | None = None,
               console: Callable[[int], None] | None = None, pid_file: str | None = None) -> int:
        from dockyard.runtime.create import create

        return create(self, container_id, bundle, stdio=stdio, console=console,
                      pid_file=pid_file)

    def start(self, container_id: str) -> None:
        from dockyard.runtime.start import start

        start(self, container_id)

    def state(self, container_id: str) -> st.ContainerState:
        record, status = self.load(container_id)
        return st.ContainerState(record.id, record.pid, status, record.bundle, record.rootfs,
                                 record.created, record.annotations, record.owner)

    def kill(self, container_id: str, sig: int, all: bool = False) -> None:
        from dockyard.runtime.kill import kill

        kill(self, container_id, sig, all)

    def delete(self, container_id: str, force: bool = False) -> None:
        from dockyard.runtime.delete import delete

        delete(self, container_id, force)

    def exec(self, container_id: str, process: dict[str, Any], *,
             stdio: tuple[int, int, int] | None = None,
             console: Callable[[int], None] | None = None, pid_file: str | None = None) -> int:
        from dockyard.runtime.exec import exec_process

        return exec_process(self, container_id, process, stdio=stdio, console=console,
                            pid_file=pid_file)

    def pause(self, container_id: str) -> None:
        from dockyard.errors import Conflict

        record, status = self.load(container_id)
        if status not in ("running", "created"):
            raise Conflict(f"cannot pause a container that is {status}: {container_id}")
        self._require_cgroup(record).freeze()

    def resume(self, container_id: str) -> None:
        from dockyard.errors import Conflict

        record, status = self.load(container_id)
        if status != "paused":
            raise Conflict(f"cannot resume a container that is {status}: {container_id}")
        self._require_cgroup(record).thaw()

    def ps(self, container_id: str) -> list[int]:
        record, _ = self.load(container_id)
        cg = self.cgroup(record)
        return sorted(cg.pids()) if cg is not None and cg.exists() else []

    def list(self) -> list[st.ContainerState]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if not name.startswith(".") and os.path.exists(
                    os.path.join(self.root, name, "state.json")):
                out.append(self.state(name))
        return out

    def stats(self, container_id: str) -> Any:
        record, _ = self.load(container_id)
        return self._require_cgroup(record).stats()

    def update(self, container_id: str, resources: dict[str, Any]) -> None:

        record, _ = self.load(container_id)
        self._require_cgroup(record).set(resources)
        linux = record.config.setdefault("linux", {})
        merged = dict(linux.get("resources") or {})
        merged.update(resources)
        linux["resources"] = merged
        st.save_record(self.root, record)

    def _require_cgroup(self, record: st.Record) -> Any:
        cg = self.cgroup(record)
        if cg is None or not cg.exists():
            raise Unsupported(f"container {record.id} has no cgroup")
        return cg
