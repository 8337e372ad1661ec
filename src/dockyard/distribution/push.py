"""Push an image: layers (skipped, mounted or uploaded), config, then the manifest.

Per layer, cheapest first (Docker's order, with one more step)::

    1. a compressed form we know of (store.compressed_for) that the target repository has
       (HEAD blobs/<digest>)                                  -> "Layer already exists"
    2. one that another repository on the same registry has
       (POST uploads/?mount=<digest>&from=<repo>, answered 201) -> "Mounted from <repo>"
    3. a compressed blob kept in the store                    -> uploaded as is
    4. otherwise the layer tar, gzip-compressed once (igzip level 1 when installed) while it
       uploads; the compressed blob is kept in the store and remembered, so the next push of
       this layer (anywhere) costs no compression

Uploads: ``POST uploads/`` then one streamed ``PATCH`` (or ``settings.chunk_size`` chunks with
Content-Range) and ``PUT ?digest=``; blobs of known size and small enough go monolithically
(POST + PUT with the body). Up to ``max_concurrent_uploads`` layers at a time.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import aiohttp

from dockyard.distribution import progress as prog
from dockyard.distribution.compression import compressor
from dockyard.distribution.credentials import AuthConfig
from dockyard.distribution.settings import RegistrySettings
from dockyard.distribution.transport import (
    RegistryClient,
    endpoints_for,
    registry_error,
    session_scope,
    status_error,
)
from dockyard.errors import InvalidArgument, NotFound, Unauthorized, Unavailable
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest, Digester
from dockyard.oci.reference import Reference, parse_reference

if TYPE_CHECKING:
    from dockyard.images import ImageStore

__all__ = ["PushResult", "push"]

_CHUNK = 1 << 20
_MONOLITHIC_MAX = 8 << 20


@dataclass(frozen=True)
class PushResult:
    tag: str
    digest: str
    size: int


@dataclass(frozen=True)
class _Pushed:
    digest: str
    size: int
    media_type: str


async def push(
    store: ImageStore,
    ref: str | Reference,
    *,
    auth: AuthConfig | None = None,
    progress: prog.ProgressCallback | None = None,
    settings: RegistrySettings | None = None,
    session: aiohttp.ClientSession | None = None,
    slots: asyncio.Semaphore | None = None,
) -> list[PushResult]:
    """Push ``ref`` (every local tag of the repository when it has no tag).

    Returns one result per tag pushed: the manifest digest and size. ``slots`` bounds layer
    uploads across pushes (the daemon's max-concurrent-uploads); default: per push.
    """
    settings = settings or RegistrySettings()
    reference = parse_reference(ref) if isinstance(ref, str) else ref
    if reference.digest:
        raise InvalidArgument("cannot push a digest reference")
    events = prog.Progress(progress)
    tags = await asyncio.to_thread(_tags_to_push, store, reference)
    events.status(f"The push refers to repository [{reference.name}]")
    results: list[PushResult] = []
    async with session_scope(settings, session) as sess:
        endpoints = await endpoints_for(reference.domain, settings, pull=False)
        client = await RegistryClient.connect(sess, settings, endpoints, auth)
        done: dict[str, _Pushed] = {}  # diff_id -> pushed blob, shared by the tags
        slots = slots or asyncio.Semaphore(settings.max_concurrent_uploads)
        for tagged in tags:
            results.append(await _push_one(store, client, tagged, settings, events, done, slots))
    return results


def _tags_to_push(store: ImageStore, ref: Reference) -> list[Reference]:
    if ref.tag:
        store.resolve(str(ref))  # raises ImageNotFound
        return [ref]
    tags = []
    for image in store.list():
        for name in image.repo_tags:
            candidate = parse_reference(name)
            if candidate.name == ref.name and candidate.tag:
                tags.append(candidate)
    if not tags:
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}")
    return sorted(tags, key=lambda r: r.tag or "")


async def _push_one(
    store: ImageStore,
    client: RegistryClient,
    ref: Reference,
    settings: RegistrySettings,
    events: prog.Progress,
    done: dict[str, _Pushed],
    semaphore: asyncio.Semaphore,
) -> PushResult:
    image = await asyncio.to_thread(store.resolve, str(ref))
    config_raw: bytes = await asyncio.to_thread(store.config_bytes, image.id)
    diff_ids: list[str] = list(image.layers)
    chain_ids: list[str] = list(image.chain_ids)
    for diff_id in reversed(diff_ids):
        events.layer(Digest.parse(diff_id).short, "Preparing")

    async def one(i: int) -> _Pushed:
        diff_id = diff_ids[i]
        if diff_id in done:
            return done[diff_id]
        async with semaphore:
            pushed = await _push_layer(store, client, ref, diff_id, chain_ids[i], settings, events)
        done[diff_id] = pushed
        return pushed

    tasks = [asyncio.create_task(one(i)) for i in range(len(diff_ids))]
    try:
        layers = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    config_digest = image.id
    if not await _exists(client, ref, config_digest):
        await _upload_bytes(client, ref, config_raw, config_digest)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": {"mediaType": mt.DOCKER_CONFIG, "size": len(config_raw), "digest": config_digest},
        "layers": [{"mediaType": p.media_type, "size": p.size, "digest": p.digest} for p in layers],
    }
    raw = json.dumps(manifest, indent=3).encode()
    digest = str(Digest.of(raw))
    tag = ref.tag or "latest"
    resp = await client.request(
        "PUT",
        f"/v2/{ref.path}/manifests/{tag}",
        scopes=[push_scope(ref)],
        headers={"Content-Type": mt.DOCKER_MANIFEST},
        data=raw,
    )
    try:
        if resp.status not in (200, 201, 202):
            raise status_error(resp, await registry_error(resp), f"error pushing manifest for {ref.familiar()}")
    finally:
        resp.release()
    await asyncio.to_thread(store.add_image, config_raw, manifest=raw, repo_digest=f"{ref.name}@{digest}")
    events.status(f"{tag}: digest: {digest} size: {len(raw)}")
    events.aux({"Tag": tag, "Digest": digest, "Size": len(raw)})
    return PushResult(tag, digest, len(raw))


def push_scope(ref: Reference) -> str:
    return f"repository:{ref.path}:pull,push"


async def _exists(client: RegistryClient, ref: Reference, digest: str) -> bool:
    resp = await client.request("HEAD", f"/v2/{ref.path}/blobs/{digest}", scopes=[push_scope(ref)])
    resp.release()
    if resp.status in (401, 403):
        raise Unauthorized(f"denied: requested access to the resource is denied ({ref.familiar_name()})")
    return resp.status == 200


async def _push_layer(
    store: ImageStore,
    client: RegistryClient,
    ref: Reference,
    diff_id: str,
    chain_id: str,
    settings: RegistrySettings,
    events: prog.Progress,
) -> _Pushed:
    """Get one layer into the repository, cheapest way first; remember where it now is."""
    pushed = await _place_layer(store, client, ref, diff_id, chain_id, settings, events)
    await asyncio.to_thread(
        store.remember_compressed, diff_id, pushed.digest, pushed.media_type, ref.name
    )
    return pushed


async def _place_layer(
    store: ImageStore,
    client: RegistryClient,
    ref: Reference,
    diff_id: str,
    chain_id: str,
    settings: RegistrySettings,
    events: prog.Progress,
) -> _Pushed:
    ident = Digest.parse(diff_id).short
    known = await asyncio.to_thread(store.compressed_for, diff_id)
    candidates = [k for k in known if k.get("media_type") in mt.LAYER_TYPES and Digest.is_valid(k.get("digest", ""))]
    for k in candidates:
        size = await _blob_size(client, ref, k["digest"])
        if size is not None:
            events.layer(ident, "Layer already exists")
            return _Pushed(k["digest"], size, _docker_type(k["media_type"]))
    for k in candidates:
        source = k.get("source") or ""
        try:
            src = parse_reference(source) if source else None
        except InvalidArgument:
            src = None
        if src is None or src.domain != ref.domain or src.path == ref.path:
            continue
        if await _mount(client, ref, k["digest"], src):
            size = await _blob_size(client, ref, k["digest"])
            if size is not None:
                events.layer(ident, f"Mounted from {src.path}")
                return _Pushed(k["digest"], size, _docker_type(k["media_type"]))
    for k in candidates:
        gzipped = k.get("media_type") in (mt.DOCKER_LAYER, mt.OCI_LAYER_GZIP)
        if gzipped and await asyncio.to_thread(store.has_blob, k["digest"]):
            size = await _upload_stored(client, ref, store, k["digest"], ident, events)
            events.layer(ident, "Pushed")
            return _Pushed(k["digest"], size, mt.DOCKER_LAYER)
    pushed = await _upload_layer(store, client, ref, diff_id, chain_id, settings, ident, events)
    events.layer(ident, "Pushed")
    return pushed


def _docker_type(media_type: str) -> str:
    # what the schema 2 manifest we write may list
    return {mt.OCI_LAYER_GZIP: mt.DOCKER_LAYER}.get(media_type, media_type)


async def _blob_size(client: RegistryClient, ref: Reference, digest: str) -> int | None:
    resp = await client.request("HEAD", f"/v2/{ref.path}/blobs/{digest}", scopes=[push_scope(ref)])
    resp.release()
    if resp.status != 200:
        return None
    return resp.content_length if resp.content_length is not None else None


async def _mount(client: RegistryClient, ref: Reference, digest: str, src: Reference) -> bool:
    scopes = [push_scope(ref), f"repository:{src.path}:pull"]
    resp = await client.request(
        "POST",
        f"/v2/{ref.path}/blobs/uploads/",
        scopes=scopes,
        params={"mount": digest, "from": src.path},
        data=b"",
    )
    try:
        if resp.status == 201:
            return True
        if resp.status == 202 and "Location" in resp.headers:
            await _cancel(client, ref, resp.headers["Location"])
        return False
    finally:
        resp.release()


async def _cancel(client: RegistryClient, ref: Reference, location: str) -> None:
    try:
        resp = await client.request("DELETE", _absolute(client, location), scopes=[push_scope(ref)])
        resp.release()
    except Unavailable:
        pass


def _absolute(client: RegistryClient, location: str) -> str:
    if location.startswith(("http://", "https://")):
        return location
    return location if location.startswith("/") else "/" + location


async def _start_upload(client: RegistryClient, ref: Reference) -> str:
    resp = await client.request(
        "POST", f"/v2/{ref.path}/blobs/uploads/", scopes=[push_scope(ref)], data=b""
    )
    try:
        if resp.status != 202 or "Location" not in resp.headers:
            raise status_error(resp, await registry_error(resp), f"error starting upload to {ref.name}")
        return _absolute(client, resp.headers["Location"])
    finally:
        resp.release()


def _with_digest(location: str, digest: str) -> str:
    sep = "&" if "?" in location else "?"
    return f"{location}{sep}digest={digest}"


async def _upload_bytes(client: RegistryClient, ref: Reference, data: bytes, digest: str) -> None:
    location = await _start_upload(client, ref)
    resp = await client.request(
        "PUT",
        _with_digest(location, digest),
        scopes=[push_scope(ref)],
        headers={"Content-Type": "application/octet-stream"},
        data=data,
    )
    try:
        if resp.status not in (201, 204):
            raise status_error(resp, await registry_error(resp), f"error uploading blob {digest}")
    finally:
        resp.release()


async def _upload_stored(
    client: RegistryClient,
    ref: Reference,
    store: ImageStore,
    digest: str,
    ident: str,
    events: prog.Progress,
) -> int:
    """A blob kept in the store: POST, then one PUT carrying the file (size known)."""
    f: BinaryIO = await asyncio.to_thread(store.open_blob, digest)
    try:
        size = os.fstat(f.fileno()).st_size
        location = await _start_upload(client, ref)
        await client.authorization([push_scope(ref)])
        events.transfer(ident, "Pushing", 0, size)
        resp = await client.request(
            "PUT",
            _with_digest(location, digest),
            scopes=[push_scope(ref)],
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            data=f,
        )
        try:
            if resp.status not in (201, 204):
                raise status_error(resp, await registry_error(resp), f"error uploading blob {digest}")
        finally:
            resp.release()
        events.transfer(ident, "Pushing", size, size)
        return size
    finally:
        f.close()


class _Produced:
    def __init__(self) -> None:
        self.size = 0


async def _upload_layer(
    store: ImageStore,
    client: RegistryClient,
    ref: Reference,
    diff_id: str,
    chain_id: str,
    settings: RegistrySettings,
    ident: str,
    events: prog.Progress,
) -> _Pushed:
    blob_hash = Digester()
    tar_hash = Digester()
    compress = compressor(settings.compression_level)
    produced = _Produced()
    writer = await asyncio.to_thread(store.blob_writer)
    committed = False

    def chunks() -> Iterator[bytes]:
        for out in compress(_layer_tar_chunks(store, chain_id, tar_hash)):
            if out:
                blob_hash.update(out)
                writer.write(out)
                yield out

    def final_digest() -> str:
        if str(tar_hash.digest()) != diff_id:
            raise InvalidArgument(
                f"layer {diff_id} cannot be reproduced from the store (got {tar_hash.digest()})"
            )
        return str(blob_hash.digest())

    try:
        await _upload_stream(
            client,
            ref,
            _thread_source(chunks, produced),
            final_digest,
            ident,
            events,
            produced,
            settings.chunk_size,
        )
        digest = str(blob_hash.digest())
        await asyncio.to_thread(writer.commit)
        committed = True
        return _Pushed(digest, blob_hash.size, mt.DOCKER_LAYER)
    finally:
        if not committed:
            await asyncio.to_thread(writer.abort)


def _layer_tar_chunks(store: ImageStore, chain_id: str, tar_hash: Digester) -> Iterator[bytes]:
    """The layer's exact uncompressed tar as the store rebuilds it (hashed on the way)."""
    for chunk in store.layer_tar(chain_id):
        tar_hash.update(chunk)
        yield chunk


def _thread_source(make: Callable[[], Iterator[bytes]], produced: _Produced) -> AsyncIterator[bytes]:
    """Run a blocking chunk generator in a worker thread; yield its chunks here."""

    async def gen() -> AsyncIterator[bytes]:
        it = make()
        sentinel = object()
        while True:
            chunk = await asyncio.to_thread(next, it, sentinel)
            if chunk is sentinel:
                return
            assert isinstance(chunk, bytes)
            produced.size += len(chunk)
            yield chunk

    return gen()


async def _upload_stream(
    client: RegistryClient,
    ref: Reference,
    source: AsyncIterator[bytes],
    final_digest: Callable[[], str],
    ident: str,
    events: prog.Progress,
    produced: _Produced,
    chunk_size: int = 0,
) -> None:
    """POST, PATCH(es), PUT ?digest= (the digest is known only at the end).

    ``chunk_size`` 0: one streamed PATCH (what dockerd sends); otherwise PATCHes of that
    many bytes with ``Content-Range: <start>-<end>``, for registries that want chunks.
    """
    location = await _start_upload(client, ref)
    # the token must be fresh before a body that cannot be resent
    await client.authorization([push_scope(ref)])

    async def patch(data: Any, headers: dict[str, str]) -> str:
        resp = await client.request(
            "PATCH",
            location,
            scopes=[push_scope(ref)],
            headers={"Content-Type": "application/octet-stream", **headers},
            data=data,
        )
        try:
            if resp.status != 202:
                raise status_error(resp, await registry_error(resp), f"error uploading to {ref.name}")
            return _absolute(client, resp.headers.get("Location", location))
        finally:
            resp.release()

    async def body() -> AsyncIterator[bytes]:
        async for chunk in source:
            yield chunk
            events.transfer(ident, "Pushing", produced.size, 0)

    try:
        if chunk_size <= 0:
            location = await patch(body(), {})
        else:
            sent = 0
            pending = bytearray()
            async for chunk in body():
                pending += chunk
                while len(pending) >= chunk_size:
                    piece = bytes(pending[:chunk_size])
                    del pending[:chunk_size]
                    location = await patch(piece, {"Content-Range": f"{sent}-{sent + len(piece) - 1}"})
                    sent += len(piece)
            if pending:
                location = await patch(bytes(pending), {"Content-Range": f"{sent}-{sent + len(pending) - 1}"})
        digest = final_digest()
        resp = await client.request("PUT", _with_digest(location, digest), scopes=[push_scope(ref)], data=b"")
        try:
            if resp.status not in (201, 204):
                raise status_error(resp, await registry_error(resp), f"error committing blob {digest}")
        finally:
            resp.release()
    except BaseException:
        await _cancel(client, ref, location)
        raise
