"""Receiving blob uploads: request bodies streamed into ``/uploads/<uuid>/data``.

The body is taken in ~1 MiB pieces; each piece is written and hashed in a worker thread while
the next one arrives. The running hash is kept between requests (PATCH, PATCH, PUT) keyed by
upload id and size, so the final PUT knows the digest without reading the data again; when the
hash is missing (another worker process got a chunk, or a restart), the commit re-hashes from
storage. A body cut off half-way keeps what arrived: the client asks for the upload's
``Range`` and resumes from there.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from aiohttp import ClientPayloadError, web

from dockyard.oci.digest import Digest, Digester
from dockyard.registry.apierrors import RegistryError
from dockyard.registry.storage import Writer
from dockyard.registry.store import Store, Upload

__all__ = ["PIECE", "UploadReceiver", "blob_created", "range_headers", "upload_status"]

PIECE = 1 << 20
_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
_MAX_HASHES = 4096


@dataclass
class _HashState:
    digester: Digester
    size: int


class UploadReceiver:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._hashes: dict[str, _HashState] = {}

    def computed(self, up: Upload) -> Digest | None:
        """The digest hashed while the upload's bytes arrived, if it covers all of them."""
        state = self._hashes.pop(up.uuid, None)
        return state.digester.digest() if state and state.size == up.size else None

    def forget(self, ident: str) -> None:
        self._hashes.pop(ident, None)

    async def receive(self, request: web.Request, up: Upload, content_range: str | None) -> None:
        """Append the request body to the upload (RANGE_INVALID if it does not continue it)."""
        if content_range:
            _check_range(content_range, up, request.content_length)
        state = self._hashes.pop(up.uuid, None)
        if state is None and up.size == 0:
            state = _HashState(Digester("sha256"), 0)
        elif state is not None and state.size != up.size:
            state = None
        writer = self.store.driver.append_writer(self.store.upload_data_path(up.uuid))
        pending: asyncio.Future[None] | None = None
        buf = bytearray()
        try:
            async for chunk in request.content.iter_chunked(PIECE):
                buf += chunk
                if len(buf) >= PIECE:
                    if pending is not None:
                        await pending
                    pending = asyncio.ensure_future(
                        asyncio.to_thread(_write_piece, writer, state, bytes(buf)))
                    buf.clear()
        except (ConnectionResetError, ClientPayloadError) as exc:
            raise RegistryError("BLOB_UPLOAD_INVALID", f"upload interrupted: {exc}") from exc
        finally:
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)
            if buf:
                _write_piece(writer, state, bytes(buf))
            writer.close()
        if state is not None:
            self._hashes[up.uuid] = state
            if len(self._hashes) > _MAX_HASHES:  # abandoned uploads: drop the oldest
                self._hashes.pop(next(iter(self._hashes)))


def _check_range(content_range: str, up: Upload, length: int | None) -> None:
    m = _RANGE_RE.match(content_range.strip())
    if m is None:
        raise RegistryError("RANGE_INVALID", detail={"Content-Range": content_range[:80]},
                            headers=range_headers(up))
    start, end = int(m.group(1)), int(m.group(2))
    if start != up.size or end < start or (length is not None and length != end - start + 1):
        raise RegistryError("RANGE_INVALID", detail={"Content-Range": content_range,
                                                     "size": up.size},
                            headers=range_headers(up))


def _write_piece(writer: Writer, state: _HashState | None, data: bytes) -> None:
    writer.write(data)
    if state is not None:
        state.digester.update(data)
        state.size += len(data)


def range_headers(up: Upload) -> dict[str, str]:
    return {"Location": f"/v2/{up.repo}/blobs/uploads/{up.uuid}",
            "Range": f"0-{max(up.size - 1, 0)}", "Docker-Upload-UUID": up.uuid}


def upload_status(up: Upload, status: int) -> web.Response:
    headers = range_headers(up)
    headers["Content-Length"] = "0"
    return web.Response(status=status, headers=headers)


def blob_created(name: str, d: Digest) -> web.Response:
    return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{d}",
                                             "Docker-Content-Digest": str(d),
                                             "Content-Length": "0"})
