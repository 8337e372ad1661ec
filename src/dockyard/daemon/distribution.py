"""The daemon's registry service: pull, push, login and search on the engine's image store.

Registry settings come from daemon.json (``registry-mirrors``, ``insecure-registries``,
``max-concurrent-downloads``, ``max-concurrent-uploads``), re-read when the file changes, so
a reload needs no restart. Image events (``pull``, ``push``) go on the engine's event bus.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dockyard.distribution import (
    AuthConfig,
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


class DistributionService:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._settings: RegistrySettings | None = None
        self._settings_key: tuple[str, float] | None = None

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
        result = await pull(
            self._store(),
            ref,
            auth=auth,
            platform=platform or None,
            progress=progress,
            settings=self.settings(),
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
        )
        for result in results:
            self.engine.events.publish("image", "pull", result.reference.familiar())
        return results

    async def push(
        self, ref: str, *, auth: AuthConfig | None, progress: ProgressCallback | None
    ) -> list[PushResult]:
        results = await push(self._store(), ref, auth=auth, progress=progress, settings=self.settings())
        self.engine.events.publish("image", "push", ref)
        return results

    async def login(self, auth: AuthConfig) -> LoginResult:
        return await login(auth.server_address, auth, settings=self.settings())

    async def search(
        self, term: str, *, limit: int, auth: AuthConfig | None
    ) -> list[dict[str, Any]]:
        return await search(term, limit=limit, auth=auth, settings=self.settings())
