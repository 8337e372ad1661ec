"""A container's record on disk and its status, re-derived from the kernel.

Layout under the runtime root (``--root``, default ``/run/dockyard/runtime``)::

    <root>/<id>/state.json    the record (atomic_write): pid, its start time, bundle, config ...
    <root>/<id>/exec.fifo     exists from create until start (the init blocks opening it)

The record never decides the status on its own (runc's rule): ``stopped`` if the init pid is
gone, a zombie, or has another start time (PID reuse); ``paused`` if the cgroup is frozen;
``created`` while exec.fifo exists; ``running`` otherwise.
"""

from __future__ import annotations

import os

from dockyard import fastjson
from dockyard.atomic import atomic_write_json
from dockyard.errors import ContainerNotFound, InvalidArgument
from dockyard.linux import proc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = ["ContainerState", "Record", "derive_status", "load_record", "save_record",
           "validate_id"]

OCI_VERSION = "1.0.2"
STATUSES = ("creating", "created", "running", "paused", "stopped")


def validate_id(container_id: str) -> None:
    ok = container_id and container_id[0].isalnum() and len(container_id) <= 1024 and all(
        c.isalnum() or c in "_.-" for c in container_id)
    if not ok:
        raise InvalidArgument(f"invalid container id {container_id!r}: use [A-Za-z0-9_.-], "
                              "starting with a letter or digit")


class Record:
    """What state.json holds."""

    FIELDS = ("id", "pid", "start_time", "bundle", "rootfs", "created", "cgroup_path", "config",
              "annotations", "owner")

    def __init__(self, id: str, pid: int, start_time: int, bundle: str, rootfs: str,
                 created: str, cgroup_path: str, config: dict[str, Any],
                 annotations: dict[str, str] | None = None, owner: str = "") -> None:
        self.id, self.pid, self.start_time, self.bundle = id, pid, start_time, bundle
        self.rootfs, self.created, self.cgroup_path, self.config = rootfs, created, cgroup_path, config
        self.annotations = annotations or {}
        self.owner = owner

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]


class ContainerState:
    """A container as the OCI state (state-schema.json) describes it; status re-derived."""

    __slots__ = ("annotations", "bundle", "created", "id", "owner", "pid", "rootfs", "status")

    def __init__(self, id: str, pid: int, status: str, bundle: str, rootfs: str, created: str,
                 annotations: dict[str, str], owner: str = "") -> None:
        self.id, self.pid, self.status, self.bundle = id, pid, status, bundle
        self.rootfs, self.created, self.annotations, self.owner = rootfs, created, annotations, owner

    def __repr__(self) -> str:
        return f"ContainerState(id={self.id!r}, pid={self.pid}, status={self.status!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ContainerState) and self.to_oci() == other.to_oci()

    __hash__ = None  # type: ignore[assignment]

    def to_oci(self) -> dict[str, Any]:
        """The runtime-spec state (state-schema.json) plus runc's extra fields."""
        return {"ociVersion": OCI_VERSION, "id": self.id,
                "pid": self.pid if self.status != "stopped" else 0, "status": self.status,
                "bundle": self.bundle, "rootfs": self.rootfs, "created": self.created,
                "owner": self.owner, "annotations": self.annotations}


def state_dir(root: str, container_id: str) -> str:
    return os.path.join(root, container_id)


def load_record(root: str, container_id: str) -> Record:
    validate_id(container_id)
    try:
        with open(os.path.join(root, container_id, "state.json"), "rb") as f:
            data = fastjson.loads(f.read())
    except FileNotFoundError:
        raise ContainerNotFound(container_id) from None
    return Record(**data)


def remove_state_dir(root: str, container_id: str) -> None:
    """Remove ``<root>/<id>`` (flat: state.json, exec.fifo, temp files); shutil is not needed."""
    path = os.path.join(root, container_id)
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
    os.rmdir(path)


def save_record(root: str, record: Record) -> None:
    # tmpfs under /run and re-derived from the kernel: atomic, no fsync needed
    atomic_write_json(os.path.join(root, record.id, "state.json"), record.to_json(),
                      mode=0o600, durable=False)


def init_alive(record: Record) -> bool:
    if record.pid <= 0 or proc.start_time(record.pid) != record.start_time:
        return False
    return proc.process_state(record.pid) not in (None, "Z", "X")


def derive_status(root: str, record: Record, frozen: bool) -> str:
    if not init_alive(record):
        return "stopped"
    if frozen:
        return "paused"
    if os.path.exists(os.path.join(root, record.id, "exec.fifo")):
        return "created"
    return "running"
