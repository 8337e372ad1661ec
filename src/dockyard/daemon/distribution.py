"""The daemon's registry service: pull, push, login and search on the engine's image store.

Registry settings come from daemon.json (``registry-mirrors``, ``insecure-registries``,
``max-concurrent-downloads``, ``max-concurrent-uploads``), re-read when the file changes, so
a reload needs no restart. Image events (``pull``, ``push``) go on the engine's event bus.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from dockyard.distribution import (
    AuthConfig,
    LayerWork,
    LoginResult,
    ProgressCallback,
    PullResult,
    PushResult,
    RegistrySettings,
    login,
    pull,
    pull_all_tags,
    push,
    search,
)
from dockyard.errors import InvalidArgument, Unavailable

__all__ = ["DistributionService"]


class _SharedPull:
    """One pull that several requests wait for: each gets every message, from the start."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.listeners: list[ProgressCallback] = []
        self.task: asyncio.Task[PullResult] | None = None
        self.joined = 0

    def emit(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        for listener in list(self.listeners):
            listener(message)

    async def join(self, progress: ProgressCallback | None) -> PullResult:
        """Wait for the pull; the last request to go away (client gone) cancels it."""
        if progress is not None:
            for message in self.messages:
                progress(message)
            self.listeners.append(progress)
        assert self.task is not None
        self.joined += 1
        try:
            return await asyncio.shield(self.task)
        except asyncio.CancelledError:
            if self.joined == 1:
                self.task.cancel()
            raise
        finally:
            self.joined -= 1
            if progress is not None:
                self.listeners.remove(progress)


class DistributionService:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._settings: RegistrySettings | None = None
        self._settings_key: tuple[str, float] | None = None
        self._pulls: dict[tuple[str, str, str], _SharedPull] = {}
        # daemon-wide limits, as dockerd's download/upload managers: (size, semaphore)
        self._download_slots: tuple[int, asyncio.Semaphore] | None = None
        self._upload_slots: tuple[int, asyncio.Semaphore] | None = None
        self._layers = LayerWork()  # concurrent pulls of different images share layers

    def _slots(self, upload: bool) -> asyncio.Semaphore:
        settings = self.settings()
        size = settings.max_concurrent_uploads if upload else settings.max_concurrent_downloads
        current = self._upload_slots if upload else self._download_slots
        if current is None or current[0] != size:  # a reload changed the limit
            current = (size, asyncio.Semaphore(size))
            if upload:
                self._upload_slots = current
            else:
                self._download_slots = current
        return current[1]

    def settings(self) -> RegistrySettings:
        path = str(getattr(self.engine.cfg, "config_file", "") or "")
        try:
            mtime = os.stat(path).st_mtime if path else 0.0
        except OSError:
            mtime = 0.0
        key = (path, mtime)
        if self._settings is None or key != self._settings_key:
            data: dict[str, Any] = {}
            if path and mtime:
                try:
                    with open(path) as f:
                        loaded = json.load(f)
                    data = loaded if isinstance(loaded, dict) else {}
                except (OSError, ValueError) as exc:
                    raise InvalidArgument(f"unable to read registry settings from {path}: {exc}") from exc
            self._settings = RegistrySettings.from_daemon_config(data)
            self._settings_key = key
        return self._settings

    def _store(self) -> Any:
        store = self.engine.images
        if store is None:
            raise Unavailable(f"image store unavailable: {getattr(self.engine, 'image_error', '')}")
        return store

    async def pull(
        self,
        ref: str,
        *,
        auth: AuthConfig | None,
        platform: str | None,
        progress: ProgressCallback | None,
    ) -> PullResult:
        """Pull; a second request for the same image while it runs joins the first."""
        key = (ref, platform or "", auth.username if auth else "")
        shared = self._pulls.get(key)
        if shared is None:
            shared = _SharedPull()
            self._pulls[key] = shared
            shared.task = asyncio.create_task(self._pull(ref, auth, platform, shared.emit))
            shared.task.add_done_callback(lambda _t: self._pulls.pop(key, None))
        return await shared.join(progress)

    async def _pull(
        self, ref: str, auth: AuthConfig | None, platform: str | None, progress: ProgressCallback
    ) -> PullResult:
        result = await pull(
            self._store(),
            ref,
            auth=auth,
            platform=platform or None,
            progress=progress,
            settings=self.settings(),
            slots=self._slots(upload=False),
            shared=self._layers,
        )
        self.engine.events.publish("image", "pull", result.reference.familiar())
        return result

    async def pull_all_tags(
        self,
        ref: str,
        *,
        auth: AuthConfig | None,
        platform: str | None,
        progress: ProgressCallback | None,
    ) -> list[PullResult]:
        """``docker pull -a``: every tag of the repository."""
        from dockyard.oci.reference import parse_reference

        results = await pull_all_tags(
            self._store(),
            parse_reference(ref),
            auth=auth,
            platform=platform or None,
            progress=progress,
            settings=self.settings(),
            slots=self._slots(upload=False),
            shared=self._layers,
        )
        for result in results:
            self.engine.events.publish("image", "pull", result.reference.familiar())
        return results

    async def push(
        self, ref: str, *, auth: AuthConfig | None, progress: ProgressCallback | None
    ) -> list[PushResult]:
        results = await push(
            self._store(),
            ref,
            auth=auth,
            progress=progress,
            settings=self.settings(),
            slots=self._slots(upload=True),
        )
        self.engine.events.publish("image", "push", ref)
        return results

    async def login(self, auth: AuthConfig) -> LoginResult:
        return await login(auth.server_address, auth, settings=self.settings())

    async def search(
        self, term: str, *, limit: int, auth: AuthConfig | None
    ) -> list[dict[str, Any]]:
        return await search(term, limit=limit, auth=auth, settings=self.settings())
