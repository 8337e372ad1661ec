"""Small pieces of HTTP shared by the handlers: paging, Accept, bodies in and out."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from dockyard.registry.apierrors import RegistryError
from dockyard.registry.storage import StorageDriver

__all__ = [
    "accepted_types",
    "default_platform",
    "int_param",
    "paginated",
    "read_limited",
    "stream_body",
    "stream_from_driver",
]

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def stream_body(request: web.Request, headers: dict[str, str], size: int | None,
                      chunks: AsyncIterator[bytes]) -> web.StreamResponse:
    """Answer with bytes still arriving (pull-through cache miss); no Range on this path."""
    resp = web.StreamResponse(headers={k: v for k, v in headers.items() if k != "Accept-Ranges"})
    if size is not None:
        resp.content_length = size
    await resp.prepare(request)
    try:
        async for chunk in chunks:
            await resp.write(chunk)
    except RegistryError:
        # the status line is gone: cut the connection so the client sees a short body
        if request.transport is not None:
            request.transport.close()
        return resp
    await resp.write_eof()
    return resp


def accepted_types(request: web.Request) -> set[str]:
    out = set()
    for value in request.headers.getall("Accept", []):
        for part in value.split(","):
            media = part.split(";")[0].strip()
            if media:
                out.add(media)
    return out


def default_platform(data: bytes, accepted: set[str]) -> str | None:
    """For a client that cannot take an index: linux/amd64's manifest, as distribution does."""
    try:
        entries = json.loads(data).get("manifests") or []
    except (ValueError, AttributeError):
        return None
    for entry in entries:
        platform = entry.get("platform") or {}
        if (platform.get("os"), platform.get("architecture")) == ("linux", "amd64") and \
                entry.get("mediaType") in accepted:
            return str(entry.get("digest"))
    return None


def int_param(request: web.Request, key: str, default: int, low: int, high: int) -> int:
    text = request.query.get(key)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise RegistryError("PAGINATION_NUMBER_INVALID", detail={key: text[:20]})
    if value < low:
        raise RegistryError("PAGINATION_NUMBER_INVALID", detail={key: value})
    return min(value, high)


def paginated(request: web.Request, path: str, key: str, items: list[str],
              head: dict[str, Any] | None = None) -> web.Response:
    """``{**head, key: items}`` after ``last``, at most ``n``, with a ``Link`` to the rest."""
    last = request.query.get("last")
    if last:
        items = [i for i in items if i > last]
    headers = {}
    if "n" in request.query:
        n = int_param(request, "n", 100, 0, 10000)
        if len(items) > n > 0:
            query = urlencode({"n": n, "last": items[n - 1]}, quote_via=quote)
            headers["Link"] = f'<{path}?{query}>; rel="next"'
        items = items[:n]
    return web.json_response({**(head or {}), key: items}, headers=headers)


async def read_limited(request: web.Request, limit: int, what: str = "manifest") -> bytes:
    """The whole body, refused with 413 past ``limit`` bytes (never buffered beyond it)."""
    too_large = RegistryError("MANIFEST_INVALID" if what == "manifest" else "UNSUPPORTED",
                              f"{what} too large", status=413)
    if (request.content_length or 0) > limit:
        raise too_large
    buf = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        buf += chunk
        if len(buf) > limit:
            raise too_large
    return bytes(buf)


async def stream_from_driver(request: web.Request, headers: dict[str, str],
                             driver: StorageDriver, path: str, size: int) -> web.StreamResponse:
    """Serve a blob a driver cannot hand over as a local file (object stores), with Range."""
    start, end = 0, size - 1
    status = 200
    wanted = _RANGE_RE.match(request.headers.get("Range", "").strip())
    if wanted and (wanted.group(1) or wanted.group(2)):
        if wanted.group(1):
            start = int(wanted.group(1))
            end = min(int(wanted.group(2)), size - 1) if wanted.group(2) else size - 1
        else:  # "bytes=-N": the last N bytes
            start = max(size - int(wanted.group(2)), 0)
        if start > end or start >= size:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
        headers = {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = end - start + 1
    await resp.prepare(request)
    f = await asyncio.to_thread(driver.open_read, path, start)
    try:
        left = end - start + 1
        while left > 0:
            chunk = await asyncio.to_thread(f.read, min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
            await resp.write(chunk)
    finally:
        f.close()
    await resp.write_eof()
    return resp
