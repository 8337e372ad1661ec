"""Container and exec records: what the daemon knows, persisted atomically.

Layout under the data root (exec root holds only what a reboot may lose)::

    <data-root>/containers/<id>/
        config.v2.json     the record (atomic rename; survives SIGKILL of the daemon)
        hostname hosts resolv.conf
        <id>-json.log      written by the monitor (rotated .1 .2 ...)
        exit.json          written by the monitor when the container exits
    <exec-root>/containers/<id>/
        config.json        the OCI bundle (root.path points at the mounted rootfs)
        monitor.sock monitor.json monitor.log

Field names are snake_case; ``config`` and ``host_config`` keep the documents the API
received (Docker's own keys) because they round-trip to ``inspect`` unchanged.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.atomic import atomic_write_json

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


@dataclass
class State:
    status: str = "created"  # created running paused restarting removing exited dead
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    oom_killed: bool = False

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")


@dataclass
class Container:
    id: str
    name: str
    created: str
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    path: str = ""
    args: list[str] = field(default_factory=list)
    state: State = field(default_factory=State)
    restart_count: int = 0
    runtime: str = ""
    driver: str = ""
    mount_points: list[dict[str, Any]] = field(default_factory=list)
    manually_stopped: bool = False
    has_been_started: bool = False
    health: dict[str, Any] | None = None
    graph_driver: dict[str, Any] = field(default_factory=dict)
    exec_ids: list[str] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Container:
        data = dict(data)
        data["state"] = State(**data.get("state", {}))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class ExecRecord:
    id: str
    container_id: str
    config: dict[str, Any]
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False


class RecordStore:
    """Containers' records on disk (one JSON file each, replaced atomically)."""

    def __init__(self, data_root: str, exec_root: str) -> None:
        self.root = os.path.join(data_root, "containers")
        self.exec_root = os.path.join(exec_root, "containers")
        os.makedirs(self.root, mode=0o710, exist_ok=True)
        os.makedirs(self.exec_root, mode=0o700, exist_ok=True)

    def dir(self, cid: str) -> str:
        return os.path.join(self.root, cid)

    def exec_dir(self, cid: str) -> str:
        return os.path.join(self.exec_root, cid)

    def log_path(self, cid: str) -> str:
        return os.path.join(self.dir(cid), f"{cid}-json.log")

    def save(self, c: Container, *, durable: bool = False) -> None:
        # durable=False still survives a SIGKILL of the daemon (rename is atomic and the data is
        # in the page cache); only power loss could lose the last state change.
        atomic_write_json(os.path.join(self.dir(c.id), "config.v2.json"), c.to_json(), 0o600, durable=durable)

    def load_all(self) -> list[Container]:
        out = []
        for cid in os.listdir(self.root):
            path = os.path.join(self.root, cid, "config.v2.json")
            try:
                with open(path) as f:
                    out.append(Container.from_json(json.load(f)))
            except (OSError, ValueError, TypeError):
                continue  # a directory whose record never got written: create was interrupted
        return out

    def read_exit(self, cid: str) -> dict[str, Any] | None:
        try:
            with open(os.path.join(self.dir(cid), "exit.json")) as f:
                value = json.load(f)
                return value if isinstance(value, dict) else None
        except (OSError, ValueError):
            return None

    def clear_exit(self, cid: str) -> None:
        try:
            os.unlink(os.path.join(self.dir(cid), "exit.json"))
        except FileNotFoundError:
            pass


__all__ = ["ZERO_TIME", "Container", "ExecRecord", "RecordStore", "State", "now_rfc3339"]
