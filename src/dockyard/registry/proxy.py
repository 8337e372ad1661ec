"""Pull-through cache (``proxy.remoteurl``): serve a remote registry's content and keep it.

- Manifests by tag are always asked of the remote (tags move); the answer is stored, and when
  the remote cannot be reached the cached tag is served. Manifests by digest come from the
  cache when present (content addressed, so they never go stale).
- Blobs are fetched once, streamed into an upload, verified against their digest and
  published like any pushed blob; concurrent requests for one digest share one fetch.
- The remote's Bearer challenge is answered with its token endpoint (``proxy.username`` and
  ``proxy.password`` if given), as docker does.
"""

from __future__ import annotations

import asyncio
import re
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


class Proxy:
    def __init__(self, config: Config, store: Store) -> None:
        assert config.proxy_url
        self.remote = config.proxy_url.rstrip("/")
        self.auth = (aiohttp.BasicAuth(config.proxy_username, config.proxy_password or "")
                     if config.proxy_username else None)
        self.store = store
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[str, str] = {}
        self._fetches: dict[str, asyncio.Future[None]] = {}

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
        if self.store.is_linked(name, d):
            return
        if self.store.blob_size(d) is not None:
            self.store.link_blob(name, d)
            return
        key = str(d)
        pending = self._fetches.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch_blob(name, d))
            self._fetches[key] = pending
            pending.add_done_callback(lambda _: self._fetches.pop(key, None))
        await asyncio.shield(pending)
        if not self.store.is_linked(name, d):
            self.store.link_blob(name, d)

    async def _fetch_blob(self, name: str, d: Digest) -> None:
        try:
            resp = await self._get(name, f"/v2/{name}/blobs/{d}", {})
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RegistryError("BLOB_UNKNOWN", f"remote unavailable: {exc}",
                                detail={"digest": str(d)}) from exc
        async with resp:
            if resp.status != 200:
                raise RegistryError("BLOB_UNKNOWN", detail={"digest": str(d)})
            up = self.store.start_upload(name)
            writer = self.store.driver.append_writer(self.store.upload_data_path(up.uuid))
            hasher = Digester(d.algorithm)
            try:
                async for chunk in resp.content.iter_chunked(1 << 20):
                    writer.write(chunk)
                    hasher.update(chunk)
            except BaseException:
                writer.close()
                self.store.cancel_upload(up.uuid)
                raise
            writer.close()
        self.store.commit_upload(self.store.upload(name, up.uuid), d, hasher.digest())

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
