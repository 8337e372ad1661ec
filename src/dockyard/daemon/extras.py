"""``docker cp`` and ``docker stats`` for the container service (a base class of it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from dockyard.errors import InvalidArgument


class ContainerExtras:
    """``docker cp`` and ``docker stats`` for :class:`~dockyard.daemon.containers.ContainerService`."""

    async def _root_of(self: Any, c: Any) -> tuple[str, bool]:
        if c.state.running and c.state.pid:
            return f"/proc/{c.state.pid}/root", False
        return await asyncio.to_thread(self.images.mount_rootfs, c.id), True

    async def _release_root(self: Any, c: Any, mounted: bool) -> None:
        if mounted and not c.state.running:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.images.unmount_rootfs, c.id)

    async def archive_stat(self: Any, ref: str, path: str) -> dict[str, Any]:
        from dockyard.daemon import archive

        c = self.get(ref)
        root, mounted = await self._root_of(c)
        try:
            return await asyncio.to_thread(archive.path_stat, root, path)
        finally:
            await self._release_root(c, mounted)

    def archive_write(self: Any, ref: str, path: str, out: Any) -> None:
        """Runs in a worker thread (the API streams ``out``)."""
        from dockyard.daemon import archive

        c = self.get(ref)
        if c.state.running and c.state.pid:
            archive.write_tar(f"/proc/{c.state.pid}/root", path, out)
            return
        root = self.images.mount_rootfs(c.id)
        try:
            archive.write_tar(root, path, out)
        finally:
            if not c.state.running:
                with contextlib.suppress(Exception):
                    self.images.unmount_rootfs(c.id)

    async def archive_extract(self: Any, ref: str, path: str, data: bytes, *, no_overwrite_dir_non_dir: bool) -> None:
        import io

        from dockyard.daemon import archive

        c = self.get(ref)
        if c.host_config.get("ReadonlyRootfs"):
            raise InvalidArgument("container rootfs is marked read-only")
        root, mounted = await self._root_of(c)
        try:
            await asyncio.to_thread(archive.extract_tar, root, path, io.BytesIO(data),
                                    no_overwrite_dir_non_dir=no_overwrite_dir_non_dir)
        except tarfile_error() as exc:
            raise InvalidArgument(f"invalid tar archive: {exc}") from exc
        finally:
            await self._release_root(c, mounted)

    def stats(self: Any, c: Any) -> dict[str, Any]:
        """Docker's stats document parts for one container, from its cgroup (thread)."""
        if not c.state.running:
            return {}
        try:
            from dockyard.cgroups import open_cgroup

            s = open_cgroup(self.cgroup_path(c)).stats()
        except Exception:
            return {}
        m, cpu, p = s.memory, s.cpu, s.pids
        from dockyard.daemon.engine import _mem_total

        return {
            "memory_stats": {"usage": m.usage, "max_usage": m.max_usage, "stats": dict(m.stats),
                             "limit": m.limit or _mem_total()},
            "cpu_stats": {"cpu_usage": {"total_usage": cpu.usage_total, "percpu_usage": list(cpu.usage_percpu) or None,
                                        "usage_in_kernelmode": cpu.usage_kernel, "usage_in_usermode": cpu.usage_user},
                          "system_cpu_usage": cpu.system_usage, "online_cpus": cpu.online_cpus or os.cpu_count(),
                          "throttling_data": {"periods": cpu.throttling_periods,
                                              "throttled_periods": cpu.throttled_periods,
                                              "throttled_time": cpu.throttled_time}},
            "pids_stats": {"current": p.current, **({"limit": p.limit} if p.limit else {})},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": e.major, "minor": e.minor, "op": e.op, "value": e.value} for e in s.io_service_bytes] or None,
                "io_serviced_recursive": [{"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}
                                          for e in s.io_serviced] or None,
                "io_queue_recursive": None, "io_service_time_recursive": None, "io_wait_time_recursive": None,
                "io_merged_recursive": None, "io_time_recursive": None, "sectors_recursive": None},
        }


def tarfile_error() -> type[Exception]:
    import tarfile

    return tarfile.TarError


__all__ = ["ContainerExtras"]
