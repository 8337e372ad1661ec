"""Tag listing (``GET /v2/<name>/tags/list``, paginated by ``Link``) and ``docker pull -a``.

The Engine API pulls every tag when ``POST /images/create`` gets ``fromImage`` without a tag
and an empty ``tag``; dockerd then ends with ``Status: Downloaded newer image for <name>``.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING

import aiohttp

from dockyard.distribution import progress as prog
from dockyard.distribution.credentials import AuthConfig
from dockyard.distribution.manifest import Platform
from dockyard.distribution.pull import LayerWork, PullResult, pull, pull_scope
from dockyard.distribution.settings import RegistrySettings
from dockyard.distribution.transport import (
    RegistryClient,
    endpoints_for,
    read_limited,
    registry_error,
    session_scope,
    status_error,
)
from dockyard.errors import InvalidArgument, NotFound
from dockyard.oci.reference import Reference

if TYPE_CHECKING:
    from dockyard.images import ImageStore

__all__ = ["list_tags", "pull_all_tags"]

_LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_MAX_PAGES = 100


async def list_tags(
    ref: Reference,
    *,
    auth: AuthConfig | None = None,
    settings: RegistrySettings | None = None,
    session: aiohttp.ClientSession | None = None,
) -> list[str]:
    settings = settings or RegistrySettings()
    async with session_scope(settings, session) as sess:
        endpoints = await endpoints_for(ref.domain, settings, pull=False)
        client = await RegistryClient.connect(sess, settings, endpoints, auth)
        tags: list[str] = []
        path = f"/v2/{ref.path}/tags/list?n=1000"
        for _ in range(_MAX_PAGES):
            resp = await client.request("GET", path, scopes=[pull_scope(ref)])
            try:
                if resp.status != 200:
                    message = await registry_error(resp)
                    raise status_error(resp, message, f"error listing tags of {ref.familiar_name()}")
                body = json.loads(await read_limited(resp, 16 << 20, "tag list"))
                link = resp.headers.get("Link", "")
            except ValueError as exc:
                raise InvalidArgument(f"malformed tag list from {ref.domain}") from exc
            finally:
                resp.release()
            page = body.get("tags") if isinstance(body, dict) else None
            tags += [t for t in page or [] if isinstance(t, str)]
            m = _LINK_RE.search(link)
            if m is None:
                break
            path = m.group(1)
        return sorted(set(tags))


async def pull_all_tags(
    store: ImageStore,
    ref: Reference,
    *,
    auth: AuthConfig | None = None,
    platform: str | Platform | None = None,
    progress: prog.ProgressCallback | None = None,
    settings: RegistrySettings | None = None,
    slots: asyncio.Semaphore | None = None,
    shared: LayerWork | None = None,
) -> list[PullResult]:
    settings = settings or RegistrySettings()
    slots = slots or asyncio.Semaphore(settings.max_concurrent_downloads)
    events = prog.Progress(progress)
    results = []
    async with session_scope(settings, None) as sess:
        tags = await list_tags(ref, auth=auth, settings=settings, session=sess)
        if not tags:
            raise NotFound(f"no tags found for {ref.familiar_name()}")

        def quiet(message: dict[str, object]) -> None:
            # per-tag "Status:" lines become one at the end, as dockerd prints
            if not str(message.get("status", "")).startswith("Status: "):
                events.emit(dict(message))

        for tag in tags:
            results.append(
                await pull(store, ref.with_tag(tag), auth=auth, platform=platform,
                           progress=quiet, settings=settings, session=sess, slots=slots,
                           shared=shared)
            )
    up_to_date = all(r.up_to_date for r in results)
    word = "Image is up to date for" if up_to_date else "Downloaded newer image for"
    events.status(f"Status: {word} {ref.familiar_name()}")
    return results
