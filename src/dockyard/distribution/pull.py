"""Pull an image: resolve the manifest, fetch the config, stream layers into the store.

::

    GET /v2/                          ping; the challenge says how to authenticate
    GET /v2/<path>/manifests/<ref>    manifest, list or index (digest verified)
    [GET /v2/<path>/manifests/<dgst>] the platform's manifest when the first was an index
    GET /v2/<path>/blobs/<config>     config (digest verified, diff_ids counted)
    GET /v2/<path>/blobs/<layer>      up to N at a time, each into a Spool, hashed on the way;
                                      one worker thread unpacks layer i from its spool after
                                      layer i-1, decompressing as the bytes arrive

Nothing of a failed pull stays: layers it created are deleted again, the image record is
written last (by ``ImageStore.add_image``), no compressed blob is ever stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from dockyard.distribution import progress as prog
from dockyard.distribution.auth import TokenCache
from dockyard.distribution.compression import decompressing_reader
from dockyard.distribution.credentials import AuthConfig
from dockyard.distribution.manifest import (
    ACCEPT,
    MAX_MANIFEST_SIZE,
    Descriptor,
    Index,
    Manifest,
    Platform,
    parse_manifest,
    select_platform,
)
from dockyard.distribution.settings import RegistrySettings
from dockyard.distribution.spool import Spool, SpoolAborted
from dockyard.distribution.transport import (
    Endpoint,
    RegistryClient,
    endpoints_for,
    read_limited,
    registry_error,
    session_scope,
    status_error,
)
from dockyard.errors import (
    DockyardError,
    ImageNotFound,
    InvalidArgument,
    NotFound,
    Unauthorized,
    Unavailable,
    Unsupported,
)
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest, Digester
from dockyard.oci.reference import Reference, parse_reference

if TYPE_CHECKING:
    from dockyard.images import ImageStore

__all__ = ["LayerWork", "PullResult", "pull"]

log = logging.getLogger("dockyard.distribution")

MAX_CONFIG_SIZE = 8 << 20
_BACKOFF = 0.2
_PIECE = 1 << 20


@dataclass(frozen=True)
class PullResult:
    image_id: str
    digest: str  # the manifest (or index) digest: RepoDigests' part after "@"
    reference: Reference
    up_to_date: bool


async def pull(
    store: ImageStore,
    ref: str | Reference,
    *,
    auth: AuthConfig | None = None,
    platform: str | Platform | None = None,
    progress: prog.ProgressCallback | None = None,
    settings: RegistrySettings | None = None,
    session: aiohttp.ClientSession | None = None,
    spool_dir: str | None = None,
    slots: asyncio.Semaphore | None = None,
    shared: LayerWork | None = None,
) -> PullResult:
    """Pull ``ref`` into ``store``; returns the image id and manifest digest.

    ``progress`` receives Docker's JSON messages. ``slots`` bounds layer downloads across
    pulls (the daemon's max-concurrent-downloads); default: per pull. ``shared`` lets
    concurrent pulls fetch a common layer once (:class:`LayerWork`, one per daemon). Raises NotFound, Unauthorized,
    Unavailable, InvalidArgument (bad content), Unsupported; the store is left as it was.
    """
    settings = settings or RegistrySettings()
    reference = (parse_reference(ref) if isinstance(ref, str) else ref).with_default_tag()
    want = Platform.parse(platform) if isinstance(platform, str) else (platform or Platform.host())
    events = prog.Progress(progress)
    async with session_scope(settings, session) as sess:
        try:
            client, manifest, top_digest = await _resolve(sess, settings, reference, auth, want)
        except Unauthorized as exc:
            # refused credentials: a plain error (500) as dockerd answers, not a 401 that
            # would make the docker CLI prompt for a login
            raise DockyardError(str(exc)) from exc
        events.status(f"Pulling from {reference.path}", reference.tag or reference.digest)
        config_raw = await _fetch_config(client, reference, manifest.config)
        diff_ids = _diff_ids(config_raw, manifest)
        if platform is not None:
            _check_platform(config_raw, want, reference)
        before = await asyncio.to_thread(_current_id, store, reference)
        slots = slots or asyncio.Semaphore(settings.max_concurrent_downloads)
        # waiting layers spool next to the store (same disk), not to a possibly RAM-backed /tmp
        spool_dir = spool_dir or _store_tmp(store)
        await _fetch_layers(
            store, client, reference, manifest, diff_ids, settings, events, spool_dir, slots,
            shared or LayerWork(),
        )
        repo_digest = f"{reference.name}@{top_digest}"
        tags = [reference] if reference.tag and not reference.digest else []
        image_id = await asyncio.to_thread(
            store.add_image, config_raw, manifest=manifest.raw, repo_digest=repo_digest, tags=tags
        )
        await asyncio.to_thread(_remember, store, manifest, diff_ids, reference)
    events.status(f"Digest: {top_digest}")
    up_to_date = before == image_id
    word = "Image is up to date for" if up_to_date else "Downloaded newer image for"
    events.status(f"Status: {word} {reference.familiar()}")
    return PullResult(image_id, top_digest, reference, up_to_date)


def _store_tmp(store: ImageStore) -> str | None:
    tmp = getattr(store, "tmp_dir", None)
    if isinstance(tmp, str):
        os.makedirs(tmp, exist_ok=True)
        return tmp
    return None


def _current_id(store: ImageStore, ref: Reference) -> str | None:
    try:
        image_id: str = store.resolve(str(ref)).id
        return image_id
    except (ImageNotFound, NotFound):
        return None


# -- manifests ------------------------------------------------------------------------------


def _groups(endpoints: list[Endpoint]) -> list[list[Endpoint]]:
    """Each mirror alone; the registry's https/http candidates together."""
    mirrors = [[e] for e in endpoints if e.mirror]
    return [*mirrors, [e for e in endpoints if not e.mirror]]


async def _resolve(
    session: aiohttp.ClientSession,
    settings: RegistrySettings,
    ref: Reference,
    auth: AuthConfig | None,
    want: Platform,
) -> tuple[RegistryClient, Manifest, str]:
    endpoints = await endpoints_for(ref.domain, settings, pull=True)
    tokens = TokenCache()
    failures: list[str] = []
    groups = _groups(endpoints)
    for n, group in enumerate(groups):
        last = n == len(groups) - 1
        try:
            client = await RegistryClient.connect(session, settings, group, auth, tokens)
            top = await _fetch_manifest(client, ref, ref.digest or ref.tag or "latest")
            if isinstance(top, Index):
                desc = select_platform(top, want)
                child = await _fetch_manifest(client, ref, desc.digest)
                if not isinstance(child, Manifest):
                    raise InvalidArgument(f"manifest list {top.digest} points at another list")
                return client, child, top.digest
            return client, top, top.digest
        except DockyardError as exc:
            if last:
                raise
            failures.append(str(exc))
            log.info("pull %s: %s failed (%s), trying the next endpoint", ref, group[0].url, exc)
    raise Unavailable("; ".join(failures))


def pull_scope(ref: Reference) -> str:
    return f"repository:{ref.path}:pull"


async def _fetch_manifest(client: RegistryClient, ref: Reference, tag_or_digest: str) -> Manifest | Index:
    path = f"/v2/{ref.path}/manifests/{tag_or_digest}"
    resp = await client.request("GET", path, scopes=[pull_scope(ref)], headers={"Accept": ACCEPT})
    try:
        if resp.status != 200:
            message = await registry_error(resp)
            if resp.status == 404:
                raise NotFound(f"manifest for {ref.familiar()} not found: {message}")
            if resp.status in (401, 403):
                # dockerd's words and status (404: the CLI must not prompt for a login)
                raise NotFound(
                    f"pull access denied for {ref.familiar_name()}, repository does not exist "
                    "or may require 'docker login': denied: requested access to the resource "
                    "is denied"
                )
            raise status_error(resp, message, f"error pulling manifest for {ref.familiar()}")
        raw = await read_limited(resp, MAX_MANIFEST_SIZE, f"manifest for {ref.familiar()}")
        content_type = resp.headers.get("Content-Type", "")
        header_digest = resp.headers.get("Docker-Content-Digest", "")
    finally:
        resp.release()
    if Digest.is_valid(tag_or_digest):
        algorithm = Digest.parse(tag_or_digest).algorithm
        digest = str(Digest.of(raw, algorithm))
        if digest != tag_or_digest:
            raise InvalidArgument(f"manifest verification failed for digest {tag_or_digest}")
    else:
        digest = str(Digest.of(raw))
        if Digest.is_valid(header_digest) and header_digest.startswith("sha256:") and header_digest != digest:
            raise InvalidArgument(
                f"manifest verification failed for {ref.familiar()}: registry says "
                f"{header_digest}, content is {digest}"
            )
    return parse_manifest(raw, content_type, digest)


# -- config ---------------------------------------------------------------------------------


async def _fetch_config(client: RegistryClient, ref: Reference, desc: Descriptor) -> bytes:
    if desc.size > MAX_CONFIG_SIZE:
        raise InvalidArgument(f"image config {desc.digest} is too large ({desc.size} bytes)")
    path = f"/v2/{ref.path}/blobs/{desc.digest}"
    resp = await client.request("GET", path, scopes=[pull_scope(ref)])
    try:
        if resp.status != 200:
            message = await registry_error(resp)
            raise status_error(resp, message, f"error fetching image config {desc.digest}")
        raw = await read_limited(resp, desc.size, f"image config {desc.digest}")
    finally:
        resp.release()
    if str(Digest.of(raw, Digest.parse(desc.digest).algorithm)) != desc.digest:
        raise InvalidArgument(f"image config verification failed for digest {desc.digest}")
    return raw


def _diff_ids(config_raw: bytes, manifest: Manifest) -> list[str]:
    try:
        config = json.loads(config_raw)
    except ValueError as exc:
        raise InvalidArgument(f"malformed image config {manifest.config.digest}: {exc}") from exc
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" or not isinstance(diff_ids, list):
        raise InvalidArgument(f"malformed image config {manifest.config.digest}: no rootfs layers")
    if not all(isinstance(d, str) and Digest.is_valid(d) for d in diff_ids):
        raise InvalidArgument(f"malformed image config {manifest.config.digest}: invalid diff_ids")
    if len(diff_ids) != len(manifest.layers):
        raise InvalidArgument(
            f"image config {manifest.config.digest} lists {len(diff_ids)} layers, "
            f"manifest {manifest.digest} has {len(manifest.layers)}"
        )
    return list(diff_ids)


def _check_platform(config_raw: bytes, want: Platform, ref: Reference) -> None:
    """An explicit --platform must match a single-platform image (dockerd 20.10's check)."""
    config = json.loads(config_raw)
    os_name = str(config.get("os") or "linux")
    arch = str(config.get("architecture") or "")
    if (os_name, arch) != (want.os, want.architecture):
        actual = "/".join(p for p in (os_name, arch, str(config.get("variant") or "")) if p)
        raise NotFound(
            f"image with reference {ref.familiar()} was found but does not match the specified "
            f"platform: wanted {want}, actual: {actual}"
        )


# -- layers ---------------------------------------------------------------------------------


@dataclass
class _LayerJob:
    index: int
    desc: Descriptor
    diff_id: str
    chain_id: str
    spool: Spool
    downloaded: bool = False
    borrowed: asyncio.Future[None] | None = None  # another pull is applying this layer
    owned: asyncio.Future[None] | None = None  # we are, and others may wait for it


class LayerWork:
    """Layers that pulls in flight are applying, by chain id, so that concurrent pulls of
    images sharing layers fetch each layer once (one object per daemon, like its slots).

    A pull registers every layer it will fetch before any await, and only waits for layers
    registered earlier: no cycles. A waiter finding the layer missing afterwards (the owner
    failed) fetches it itself; the owner never deletes a layer somebody waited for.
    """

    def __init__(self) -> None:
        self.inflight: dict[str, asyncio.Future[None]] = {}
        self.waiters: dict[str, int] = {}

    def settle(self, job: _LayerJob) -> None:
        if job.owned is not None and not job.owned.done():
            job.owned.set_result(None)
        if job.owned is not None and self.inflight.get(job.chain_id) is job.owned:
            del self.inflight[job.chain_id]


async def _fetch_layers(
    store: ImageStore,
    client: RegistryClient,
    ref: Reference,
    manifest: Manifest,
    diff_ids: list[str],
    settings: RegistrySettings,
    events: prog.Progress,
    spool_dir: str | None,
    semaphore: asyncio.Semaphore,
    work: LayerWork,
) -> None:
    allowed: bool | None = None
    for desc in manifest.layers:
        if desc.media_type in mt.NON_DISTRIBUTABLE and allowed is None:
            allowed = await asyncio.to_thread(settings.allows_nondistributable, ref.domain)
        if desc.media_type in mt.NON_DISTRIBUTABLE and not allowed:
            raise Unsupported(
                f"refusing to pull non-distributable layer {desc.digest} ({desc.media_type}); "
                "allow it in the daemon settings"
            )
    chains = [store.chain_id(diff_ids[: i + 1]) for i in range(len(diff_ids))]
    present = -1
    for i in range(len(chains) - 1, -1, -1):
        if store.has_layer(chains[i]):
            present = i
            break
    jobs: list[_LayerJob] = []
    loop = asyncio.get_running_loop()
    for i, desc in enumerate(manifest.layers):
        if i <= present:
            events.layer(desc.short_id, "Already exists")
            continue
        job = _LayerJob(i, desc, diff_ids[i], chains[i], Spool(spool_dir))
        job.borrowed = work.inflight.get(chains[i])
        if job.borrowed is not None:
            work.waiters[chains[i]] = work.waiters.get(chains[i], 0) + 1
            events.layer(desc.short_id, "Waiting")
        else:
            job.owned = work.inflight[chains[i]] = loop.create_future()
            events.layer(desc.short_id, "Pulling fs layer")
        jobs.append(job)
    if not jobs:
        return
    own = [job for job in jobs if job.borrowed is None]
    for job in own[settings.max_concurrent_downloads :]:
        events.layer(job.desc.short_id, "Waiting")
    parent = chains[present] if present >= 0 else None
    created: list[str] = []

    def start(job: _LayerJob) -> asyncio.Task[None]:
        task = asyncio.create_task(_download(client, ref, job, settings, events, semaphore))
        downloads.append(task)
        return task

    downloads: list[asyncio.Task[None]] = []
    for job in own:
        start(job)
    applier = asyncio.create_task(
        _apply_all(store, parent, jobs, ref, events, created, work, start)
    )
    try:
        await applier
        await asyncio.gather(*downloads)
    except BaseException:
        for task in downloads:
            task.cancel()
        for job in jobs:
            job.spool.abort()
        # the worker thread stops at its next read; wait for it before undoing its work
        await asyncio.gather(applier, *downloads, return_exceptions=True)
        await asyncio.to_thread(_discard_layers, store, created, dict(work.waiters))
        raise
    finally:
        for job in jobs:
            work.settle(job)
            if job.borrowed is not None:
                work.waiters[job.chain_id] -= 1
                if not work.waiters[job.chain_id]:
                    del work.waiters[job.chain_id]
            job.spool.close()


async def _download(
    client: RegistryClient,
    ref: Reference,
    job: _LayerJob,
    settings: RegistrySettings,
    events: prog.Progress,
    semaphore: asyncio.Semaphore,
) -> None:
    desc = job.desc
    try:
        async with semaphore:
            digester = Digest.parse(desc.digest).new_hasher()
            await _stream_blob(client, ref, desc, job.spool, digester, settings, events)
            events.layer(desc.short_id, "Verifying Checksum")
            if str(digester.digest()) != desc.digest:
                raise InvalidArgument(f"filesystem layer verification failed for digest {desc.digest}")
        job.downloaded = True
        job.spool.finish()
        events.layer(desc.short_id, "Download complete")
    except SpoolAborted:
        raise
    except BaseException as exc:
        job.spool.fail(exc if isinstance(exc, DockyardError) else Unavailable(f"download of {desc.digest} failed"))
        raise


async def _stream_blob(
    client: RegistryClient,
    ref: Reference,
    desc: Descriptor,
    spool: Spool,
    digester: Digester,
    settings: RegistrySettings,
    events: prog.Progress,
) -> None:
    """Fetch a blob into ``spool``, resuming with Range after a broken connection."""
    offset = 0
    failures = 0
    urls = list(desc.urls) if desc.media_type in mt.NON_DISTRIBUTABLE else []
    path = f"/v2/{ref.path}/blobs/{desc.digest}"
    while True:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            if urls:
                resp = await client.request("GET", urls[0], headers=headers, scopes=())
            else:
                resp = await client.request("GET", path, scopes=[pull_scope(ref)], headers=headers)
        except Unavailable:
            failures += 1
            if failures >= settings.download_attempts:
                raise
            await asyncio.sleep(_BACKOFF * failures)
            continue
        try:
            skip = 0
            if resp.status == 206:
                start = _range_start(resp.headers.get("Content-Range", ""))
                if start != offset:
                    raise Unavailable(f"registry answered range {start} for {offset} of {desc.digest}")
            elif resp.status == 200:
                skip = offset  # no range support: discard what we already have
            else:
                message = await registry_error(resp)
                raise status_error(resp, message, f"error pulling blob {desc.digest}")
            # 1 MiB pieces: fewer trips through the loop than iter_any (measured: 0.11 s vs
            # 0.18 s for 100 MB on this VM)
            async for chunk in resp.content.iter_chunked(_PIECE):
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk, skip = chunk[skip:], 0
                offset += len(chunk)
                if offset > desc.size:
                    raise InvalidArgument(
                        f"filesystem layer verification failed for digest {desc.digest}: "
                        f"more than {desc.size} bytes"
                    )
                digester.update(chunk)
                spool.write(chunk)
                events.transfer(desc.short_id, "Downloading", offset, desc.size)
            if offset == desc.size:
                return
            # the body ended cleanly (a broken connection raises instead): wrong content
            raise InvalidArgument(
                f"filesystem layer verification failed for digest {desc.digest}: "
                f"{offset} of {desc.size} bytes"
            )
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError, OSError) as exc:
            truncated = exc
        finally:
            resp.release()
        failures += 1
        if failures >= settings.download_attempts:
            raise Unavailable(
                f"error pulling blob {desc.digest} after {failures} attempts: "
                f"{truncated or type(truncated).__name__}"
            ) from truncated
        log.info("pull of %s interrupted at %d of %d bytes (%s); resuming", desc.digest, offset,
                 desc.size, truncated or type(truncated).__name__)
        await asyncio.sleep(_BACKOFF * failures)


def _range_start(content_range: str) -> int:
    # "bytes 100-199/200"
    try:
        unit, _, rest = content_range.partition(" ")
        return int(rest.split("-", 1)[0]) if unit == "bytes" else -1
    except ValueError:
        return -1


async def _apply_all(
    store: ImageStore,
    parent: str | None,
    jobs: list[_LayerJob],
    ref: Reference,
    events: prog.Progress,
    created: list[str],
    work: LayerWork,
    start: Callable[[_LayerJob], asyncio.Task[None]],
) -> None:
    loop = asyncio.get_running_loop()
    for job in jobs:
        ident, total = job.desc.short_id, job.desc.size
        if job.borrowed is not None:
            await asyncio.shield(job.borrowed)  # another pull is applying it
            if await asyncio.to_thread(store.has_layer, job.chain_id):
                parent = job.chain_id
                events.layer(ident, "Pull complete")
                continue
            start(job)  # that pull failed: fetch it ourselves

        def on_read(n: int, job: _LayerJob = job, ident: str = ident, total: int = total) -> None:
            if job.downloaded:
                loop.call_soon_threadsafe(events.transfer, ident, "Extracting", n, total)

        parent = await asyncio.to_thread(
            _apply_one, store, parent, job.spool, job.desc.media_type, job.diff_id, on_read, created
        )
        work.settle(job)
        events.layer(ident, "Pull complete")


def _apply_one(
    store: ImageStore,
    parent: str | None,
    spool: Spool,
    media_type: str,
    diff_id: str,
    on_read: Any,
    created: list[str],
) -> str:
    """Unpack one layer (worker thread); returns its chain id."""
    chain = store.chain_id([parent, diff_id] if parent else [diff_id])
    existed = store.has_layer(chain)
    raw = spool.reader(on_read)
    stream = decompressing_reader(raw, media_type)
    chain, _ = store.apply_layer(parent, stream, diff_id)
    assert isinstance(chain, str)
    if not existed:
        created.append(chain)
    # the end of the spool is only reported once the blob's digest matched: reach it
    while raw.read(1 << 20):
        pass
    return chain


def _remember(store: ImageStore, manifest: Manifest, diff_ids: list[str], ref: Reference) -> None:
    """Note where each layer's compressed form lives, for pushes (mounts, existence checks)."""
    for desc, diff_id in zip(manifest.layers, diff_ids, strict=True):
        store.remember_compressed(diff_id, desc.digest, desc.media_type, ref.name)


def _discard_layers(store: ImageStore, chains: list[str], waited: dict[str, int]) -> None:
    """Delete layers this pull created, top first, unless something uses them by now or
    another pull waited for them (it builds on them)."""
    if not chains:
        return
    in_use = store.layers_in_use()
    for chain in reversed(chains):
        if chain not in in_use and chain not in waited:
            store.layers.delete(chain)
