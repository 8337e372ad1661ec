"""The engine: every daemon service, built once from the config and handed to the API."""

from __future__ import annotations

import os
import platform
import socket
import time
from dataclasses import dataclass
from typing import Any

from dockyard.daemon import hostinfo
from dockyard.daemon.config import DaemonConfig
from dockyard.daemon.containers import ContainerService
from dockyard.daemon.events import EventBus
from dockyard.daemon.networks import NetworkService
from dockyard.daemon.spawner import Spawner
from dockyard.volumes import VolumeStore


@dataclass
class HostFacts:
    kernel: str
    os_name: str
    arch: str
    ncpu: int
    mem_total: int
    hostname: str
    cgroup_version: str
    cgroup_driver: str
    storage_driver: str
    backing_fs: str
    swap_limit: bool


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


class Engine:
    def __init__(self, cfg: DaemonConfig, spawner: Spawner) -> None:
        self.cfg = cfg
        self.started = time.time()
        self.events = EventBus()
        self.images: Any = None
        self.image_error = ""
        try:
            from dockyard.images import ImageStore

            self.images = ImageStore(os.path.join(cfg.data_root, "images"))
        except Exception as exc:  # the daemon still serves containers' records and volumes
            self.image_error = str(exc)
        self.volumes = VolumeStore(os.path.join(cfg.data_root, "volumes"))
        self.containers = ContainerService(cfg, spawner, self.images, self.volumes, self.events)
        # networking (owner: network engineer): the container service's sandbox/release hooks
        self.networks = NetworkService(cfg.data_root, cfg.exec_root, cfg.network, self.containers,
                                       self.events)
        self.containers.network = self.networks
        self.id = self._daemon_id()
        self.facts = HostFacts(
            kernel=platform.release(), os_name=_os_name(), arch=platform.machine(),
            ncpu=os.cpu_count() or 1, mem_total=_mem_total(), hostname=socket.gethostname(),
            cgroup_version=_cgroup_version(), cgroup_driver="cgroupfs",
            storage_driver=str(getattr(getattr(self.images, "rootfs", None), "driver", "") or "overlay2"),
            backing_fs=hostinfo.backing_fs(cfg.data_root), swap_limit=hostinfo.swap_limit(_cgroup_version()))

    def _daemon_id(self) -> str:
        path = os.path.join(self.cfg.data_root, "engine-id")
        try:
            with open(path) as f:
                return f.read().strip()
        except FileNotFoundError:
            from dockyard.atomic import atomic_write

            value = os.urandom(16).hex()
            atomic_write(path, value.encode())
            return value

    def reload(self, cfg: DaemonConfig) -> None:
        self.cfg = cfg
        self.containers.cfg = cfg

    async def start(self) -> None:
        await self.containers.restore()
        await self.networks.start()   # after restore: it releases what exited meanwhile

    async def shutdown(self) -> None:
        await self.containers.shutdown()
        await self.networks.shutdown()


__all__ = ["Engine", "HostFacts"]
