"""Webhook notifications: distribution's event envelope POSTed to each configured endpoint.

Delivery is best effort and asynchronous: up to three attempts per event (on connection
errors and 5xx answers, 0.2 s then 0.8 s apart), then it is dropped; a slow or dead endpoint
never delays a push. There is no queue that survives a restart. Body (media type below)::

    {"events": [{"id": uuid, "timestamp": iso8601, "action": "push" | "delete",
                 "target": {"mediaType", "digest", "size", "length", "repository", "url", "tag"},
                 "request": {"id", "addr", "host", "method", "useragent"},
                 "actor": {}, "source": {"addr", "instanceID"}}]}
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from dockyard.oci.digest import Digest
from dockyard.registry.config import Endpoint

__all__ = ["EVENTS_MEDIA_TYPE", "Notifier"]

EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
ATTEMPTS = 3
BACKOFF = 0.2  # seconds before the 2nd attempt; x4 before each later one


class Notifier:
    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self.endpoints = endpoints
        self.instance = str(uuid.uuid4())
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def emit(self, action: str, repo: str, tag: str | None, digest: Digest | None, size: int,
             request: web.Request, *, media_type: str = "") -> None:
        if not self.endpoints:
            return
        target: dict[str, Any] = {"mediaType": media_type, "size": size, "length": size,
                                  "repository": repo}
        if digest is not None:
            target["digest"] = str(digest)
            target["url"] = f"{request.scheme}://{request.host}/v2/{repo}/manifests/{digest}"
        if tag and ":" not in tag:
            target["tag"] = tag
        elif tag:
            target["digest"] = tag
        event = {
            "id": str(uuid.uuid4()),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "action": action,
            "target": target,
            "request": {"id": str(uuid.uuid4()), "addr": request.remote or "",
                        "host": request.host, "method": request.method,
                        "useragent": request.headers.get("User-Agent", "")},
            "actor": {},
            "source": {"addr": request.host, "instanceID": self.instance},
        }
        body = json.dumps({"events": [event]}).encode()
        for endpoint in self.endpoints:
            task = asyncio.ensure_future(self._post(endpoint, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, endpoint: Endpoint, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": EVENTS_MEDIA_TYPE, **endpoint.headers}
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(BACKOFF * 4 ** (attempt - 1))
            try:
                async with self._session.post(
                        endpoint.url, data=body, headers=headers,
                        timeout=aiohttp.ClientTimeout(total=endpoint.timeout)) as resp:
                    if resp.status < 500:
                        return  # delivered (a 4xx will not get better by repeating it)
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass  # try again, then give up: best effort by design

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
