"""Online garbage collection: mark what manifests reference, sweep old unreferenced blobs.

Mark: every manifest revision of every repository (tagged or not, as distribution does without
``--delete-untagged``) is marked with the config, layers and child manifests it names.

Sweep: a blob is deleted only if it is unmarked *and* its ``data`` file was not modified or
touched within the grace period. That is what makes GC safe while pushes go on:

- a push uploads blobs first and the manifest last; those blobs are unreferenced for a while,
  but they were just written, so they are younger than the grace period;
- a push that *reuses* an old blob probes it first (``HEAD``), mounts it, or re-uploads it, and
  its manifest PUT references it: each of these touches the blob's mtime (``Store``), so it
  becomes "recent" before the manifest that needs it is written;
- the sweep re-reads the mtime right before deleting, so a touch that lands after marking
  still saves the blob. The remaining window (a touch between that final stat and unlink)
  needs a client to pause longer than the grace period between probe and manifest PUT.

With ``delete_untagged`` (distribution's ``--delete-untagged``), manifest revisions no tag
reaches (directly, as a child of a tagged index, or as a referrer of a kept manifest) and
older than the grace period are deleted first, so their blobs can go too.

Uploads whose data has not grown within ``upload_grace`` are abandoned and purged.
Repository ``_layers`` links to swept blobs are removed so repositories stay consistent.
"""

from __future__ import annotations

import time

from dockyard.errors import NotFound
from dockyard.oci.digest import Digest
from dockyard.registry.content import manifest_children, manifest_subject
from dockyard.registry.store import GcReport, Store

__all__ = ["GcReport", "collect_garbage"]


def collect_garbage(
    store: Store,
    *,
    dry_run: bool = False,
    grace: float = 3600.0,
    upload_grace: float = 86400.0,
    delete_untagged: bool = False,
    now: float | None = None,
) -> GcReport:
    report = GcReport()
    repos = store.catalog()
    clock = time.time() if now is None else now
    for repo in repos:
        manifests = {d: _read(store, d) for d in store.revisions(repo)}
        kept = set(manifests)
        if delete_untagged:
            kept = _reachable(store, repo, manifests, grace, clock)
            for d in sorted(set(manifests) - kept):
                report.deleted_manifests.append(f"{repo}@{d}")
                if not dry_run:
                    store.delete_manifest(repo, str(d))
        for d in kept:
            report.marked.add(str(d))
            report.marked.update(str(child) for child in manifest_children(manifests[d]))
    driver = store.driver
    for d in list(store.all_blobs()):
        if str(d) in report.marked:
            continue
        clock = time.time() if now is None else now  # re-read: a touch may have just landed
        info = driver.stat(store.blob_path(d))
        if info is not None and clock - info.mtime < grace:
            report.kept_recent.append(str(d))
            continue
        report.deleted_blobs.append((str(d), info.size if info else 0))
        if not dry_run:
            store.delete_blob(d)
    if not dry_run:
        deleted = {name for name, _ in report.deleted_blobs}
        for repo in repos:
            for d in store.layer_links(repo):
                if str(d) in deleted:
                    store.unlink_blob(repo, d)
    clock = time.time() if now is None else now
    for ident, mtime in list(store.uploads()):
        if clock - mtime >= upload_grace:
            report.deleted_uploads.append(ident)
            if not dry_run:
                store.cancel_upload(ident)
    return report


def _read(store: Store, d: Digest) -> bytes:
    try:
        return store.read_blob(d)
    except NotFound:
        return b""


def _reachable(store: Store, repo: str, manifests: dict[Digest, bytes], grace: float,
               clock: float) -> set[Digest]:
    """Revisions to keep: tagged ones, recent ones (a push in progress tags last), the
    manifests a kept index lists, and the referrers of kept manifests."""
    kept = store.tag_targets(repo) & set(manifests)
    kept |= {d for d in manifests if clock - store.revision_mtime(repo, d) < grace}
    children = {d: set(manifest_children(data)) for d, data in manifests.items()}
    subjects = {d: manifest_subject(data) for d, data in manifests.items()}
    while True:
        more = {d for d in manifests if d not in kept and (
            subjects[d] in kept or any(d in children[k] for k in kept))}
        if not more:
            return kept
        kept |= more
