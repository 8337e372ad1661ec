"""Registry client: pull, push, login and search against any v2/OCI registry.

Entry points (asyncio)::

    await pull(store, "busybox", auth=None, platform=None, progress=cb, settings=s) -> PullResult
    await push(store, "127.0.0.1:5000/x:1", auth=a, progress=cb, settings=s) -> PushResult
    await login("127.0.0.1:5000", AuthConfig(username=, password=), settings=s) -> LoginResult
    await search("busybox", limit=25, settings=s) -> list[SearchResult]

Credentials files (sync, shared with the CLI) are in :mod:`dockyard.distribution.credentials`.
"""

from __future__ import annotations

from dockyard.distribution.credentials import AuthConfig
from dockyard.distribution.login import LoginResult, login, search
from dockyard.distribution.manifest import Platform
from dockyard.distribution.progress import ProgressCallback
from dockyard.distribution.pull import LayerWork, PullResult, pull
from dockyard.distribution.push import PushResult, push
from dockyard.distribution.settings import RegistrySettings
from dockyard.distribution.tags import list_tags, pull_all_tags

__all__ = [
    "AuthConfig",
    "LayerWork",
    "LoginResult",
    "Platform",
    "ProgressCallback",
    "PullResult",
    "PushResult",
    "RegistrySettings",
    "list_tags",
    "login",
    "pull",
    "pull_all_tags",
    "push",
    "search",
]
