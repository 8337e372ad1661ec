"""Pull-through cache (``proxy.remoteurl``): serve a remote registry's content and keep it.

- Manifests by tag are always asked of the remote (tags move); the answer is stored, and when
  the remote cannot be reached the cached tag is served. Manifests by digest come from the
  cache when present (content addressed, so they never go stale).
- Blobs are fetched once, streamed into an upload, verified against their digest and
  published like any pushed blob; concurrent requests for one digest share one fetch, and
  each is answered while the bytes arrive (a digest mismatch aborts those answers).
- The remote's Bearer challenge is answered with its token endpoint (``proxy.username`` and
  ``proxy.password`` if given), as docker does.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from dockyard.oci import mediatypes
from dockyard.oci.digest import Digest, Digester
from dockyard.registry.apierrors import RegistryError
from dockyard.registry.config import Config
from dockyard.registry.store import Manifest, Store

__all__ = ["Proxy"]

_ACCEPT = ", ".join(sorted(mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES))
_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')


class _Fetch:
    """One blob download in progress, shared by every request for that digest."""

    def __init__(self) -> None:
        self.task: asyncio.Future[None]
        self.cond = asyncio.Condition()
        self.path: str | None = None  # the upload file receiving the bytes
        self.size: int | None = None  # the remote's Content-Length
        self.written = 0
        self.finished = False
        self.error: BaseException | None = None

    def beyond(self, offset: int) -> Callable[[], bool]:
        return lambda: self.written > offset or self.finished

    def done(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled():
            task.exception()  # readers get the error through ``self.error``


class Proxy:
    def __init__(self, config: Config, store: Store) -> None:
        assert config.proxy_url
        self.remote = config.proxy_url.rstrip("/")
        self.auth = (aiohttp.BasicAuth(config.proxy_username, config.proxy_password or "")
                     if config.proxy_username else None)
        self.store = store
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[str, str] = {}
        self._fetches: dict[str, _Fetch] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_read=60))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get(self, name: str, path: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """GET from the remote, answering one Bearer challenge; the caller releases it."""
        session = self._client()
        for _ in range(2):
            sent = dict(headers)
            if name in self._tokens:
                sent["Authorization"] = f"Bearer {self._tokens[name]}"
            resp = await session.get(f"{self.remote}{path}", headers=sent)
            challenge = resp.headers.get("WWW-Authenticate", "")
            if resp.status != 401 or not challenge.lower().startswith("bearer "):
                return resp
            resp.release()
            self._tokens[name] = await self._fetch_token(dict(_PARAM_RE.findall(challenge)), name)
        return resp

    async def _fetch_token(self, params: dict[str, str], name: str) -> str:
        query = {"service": params.get("service", ""),
                 "scope": params.get("scope", f"repository:{name}:pull")}
        async with self._client().get(params.get("realm", ""), params=query,
                                      auth=self.auth) as resp:
            if resp.status != 200:
                raise RegistryError("UNAUTHORIZED", "remote registry refused a token")
            body: dict[str, Any] = await resp.json(content_type=None)
        return str(body.get("token") or body.get("access_token") or "")

    async def manifest(self, name: str, ref: str) -> Manifest:
        if ":" in ref:
            try:
                return self.store.get_manifest(name, ref)
            except RegistryError:
                pass
        try:
            resp = await self._get(name, f"/v2/{name}/manifests/{ref}", {"Accept": _ACCEPT})
        except (TimeoutError, aiohttp.ClientError, OSError):
            return self.store.get_manifest(name, ref)  # remote away: serve what we kept
        async with resp:
            if resp.status == 404:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": ref})
            if resp.status != 200:
                return self.store.get_manifest(name, ref)
            data = await resp.read()
            content_type = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
        self.store.put_manifest(name, ref, data, content_type, check_references=False)
        return self.store.get_manifest(name, ref)

    async def ensure_blob(self, name: str, d: Digest) -> None:
        """Make the blob available locally (HEAD, or GET of a blob already cached)."""
        fetch = self._start_fetch(name, d)
        if fetch is not None:
            await asyncio.shield(fetch.task)
        if not self.store.is_linked(name, d):
            self.store.link_blob(name, d)

    def _start_fetch(self, name: str, d: Digest) -> _Fetch | None:
        """The running fetch of ``d`` (starting one if needed), or None when it is cached."""
        if self.store.is_linked(name, d):
            return None
        if self.store.blob_size(d) is not None:
            self.store.link_blob(name, d)
            return None
        key = str(d)
        fetch = self._fetches.get(key)
        if fetch is None:
            fetch = _Fetch()
            fetch.task = asyncio.ensure_future(self._fetch_blob(name, d, fetch))
            self._fetches[key] = fetch
            fetch.task.add_done_callback(lambda _: self._fetches.pop(key, None))
            fetch.task.add_done_callback(fetch.done)
        return fetch

    async def stream_blob(self, name: str, d: Digest) -> tuple[int | None, AsyncIterator[bytes]] | None:
        """Size and bytes of a blob being fetched, readable while it arrives; None if cached.

        Every reader follows the growing upload file, so one fetch feeds any number of
        clients and the first bytes go out before the last arrive (clients' read timeouts).
        """
        fetch = self._start_fetch(name, d)
        if fetch is None:
            return None
        async with fetch.cond:
            await fetch.cond.wait_for(lambda: fetch.path is not None or fetch.finished)
        if fetch.error is not None:
            raise fetch.error
        if fetch.path is None:
            return None
        return fetch.size, self._follow(fetch, d)

    async def _follow(self, fetch: _Fetch, d: Digest) -> AsyncIterator[bytes]:
        assert fetch.path is not None
        try:
            f = open(fetch.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:  # committed meanwhile: the upload became the blob
            local = self.store.driver.local_path(self.store.blob_path(d))
            try:
                f = open(local or "", "rb")  # noqa: SIM115
            except FileNotFoundError as exc:
                raise fetch.error or RegistryError("BLOB_UNKNOWN", detail={"digest": str(d)}) from exc
        with f:
            sent = 0
            while True:
                async with fetch.cond:
                    await fetch.cond.wait_for(fetch.beyond(sent + 1))
                if fetch.error is not None:
                    raise fetch.error
                # the last byte waits for the digest check: a bad blob never looks complete
                limit = fetch.written if fetch.finished else fetch.written - 1
                while sent < limit:
                    chunk = f.read(min(limit - sent, 1 << 20))
                    if not chunk:
                        break
                    sent += len(chunk)
                    yield chunk
                if fetch.finished and sent >= fetch.written:
                    return

    async def _fetch_blob(self, name: str, d: Digest, fetch: _Fetch) -> None:
        try:
            await self._download(name, d, fetch)
        except BaseException as exc:
            # whatever went wrong upstream (gone, refused, wrong bytes), we do not have it
            fetch.error = RegistryError("BLOB_UNKNOWN", f"fetching from the remote failed: {exc}",
                                        detail={"digest": str(d)})
            raise fetch.error from exc
        finally:
            async with fetch.cond:
                fetch.finished = True
                fetch.cond.notify_all()

    async def _download(self, name: str, d: Digest, fetch: _Fetch) -> None:
        try:
            resp = await self._get(name, f"/v2/{name}/blobs/{d}", {})
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RegistryError("BLOB_UNKNOWN", f"remote unavailable: {exc}",
                                detail={"digest": str(d)}) from exc
        async with resp:
            if resp.status != 200:
                raise RegistryError("BLOB_UNKNOWN", detail={"digest": str(d)})
            up = self.store.start_upload(name)
            data_path = self.store.upload_data_path(up.uuid)
            writer = self.store.driver.append_writer(data_path)
            hasher = Digester(d.algorithm)
            try:
                async with fetch.cond:
                    fetch.size = resp.content_length
                    fetch.path = self.store.driver.local_path(data_path)
                    fetch.cond.notify_all()
                async for chunk in resp.content.iter_chunked(1 << 20):
                    writer.write(chunk)
                    hasher.update(chunk)
                    async with fetch.cond:
                        fetch.written += len(chunk)
                        fetch.cond.notify_all()
            except BaseException:
                writer.close()
                self.store.cancel_upload(up.uuid)
                raise
            writer.close()
        await asyncio.to_thread(self.store.commit_upload, self.store.upload(name, up.uuid), d,
                                hasher.digest())

    async def tags(self, name: str, query: dict[str, str]) -> dict[str, Any]:
        path = f"/v2/{name}/tags/list"
        if query:
            path += "?" + "&".join(f"{k}={v}" for k, v in query.items() if k in ("n", "last"))
        resp = await self._get(name, path, {})
        async with resp:
            if resp.status != 200:
                raise RegistryError("NAME_UNKNOWN", detail={"name": name})
            body: dict[str, Any] = await resp.json(content_type=None)
        return body
