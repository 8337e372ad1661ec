"""Removing images as ``docker rmi`` and ``docker image prune`` do, and garbage collection.

The rules are dockerd's (daemon/images/image_delete.go): a name is untagged first, and the
image goes only when no reference is left; conflicts are *hard* (a running container, child
images: never forced) or *soft* (a stopped container, references in several repositories:
``force`` overrides them). Callers say which containers use an image through ``users``.
Layers are deleted only when no remaining image and no container root filesystem uses them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dockyard.errors import Conflict, ImageNotFound
from dockyard.images._util import remove_tree
from dockyard.images.store import GC_GRACE, labels_match
from dockyard.oci.reference import Reference, parse_reference

if TYPE_CHECKING:
    from dockyard.images.store import ContainerUse, Image, ImageStore

__all__ = ["gc", "prune", "remove"]


def remove(
    store: ImageStore,
    name_or_id: str,
    *,
    force: bool = False,
    noprune: bool = False,
    users: ContainerUse,
) -> list[dict[str, str]]:
    """``docker rmi``, with Docker's conflict rules (daemon/images/image_delete.go).

    ``users(image_id)`` lists the containers using an image as (id, running) pairs.
    Returns ``[{"Untagged": ref}, ..., {"Deleted": id}, ...]`` as the API answers.
    Raises Conflict with Docker's wording.
    """
    with store.lock:
        img = store.resolve(name_or_id)
        image_id = img.id
        records: list[dict[str, str]] = []
        refs = store.refs.refs_of(image_id)
        by_id = _is_id_prefix(image_id, name_or_id)
        removed_ref = False
        if not by_id:
            ref = parse_reference(name_or_id)
            if ref.digest is None:
                ref = ref.with_default_tag()
            if not force and _single_reference(refs):
                using = list(users(image_id))
                if using:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{name_or_id}" '
                        f"(must force) - container {using[0][0][:12]} is using its "
                        f"referenced image {img.short_id}"
                    )
            store.untag(ref)
            records.append({"Untagged": ref.familiar()})
            refs = store.refs.refs_of(image_id)
            if ref.digest is None and not any(
                r.digest is None and r.name == ref.name for r in refs
            ):
                remaining = []
                for r in refs:
                    if r.digest is not None and r.name == ref.name:
                        store.refs.remove(r)
                        records.append({"Untagged": r.familiar()})
                    else:
                        remaining.append(r)
                refs = remaining
            if refs:
                return records
            removed_ref = True
        elif _single_reference(refs):
            _check_conflict(store, img, users, hard=True, soft=not force, references=False)
            for r in refs:
                store.refs.remove(r)
                records.append({"Untagged": r.familiar()})
        _delete_helper(store, image_id, records, force, not noprune, removed_ref, users)
        return records

def _check_conflict(
    store: ImageStore, img: Image, users: ContainerUse, *, hard: bool, soft: bool, references: bool
) -> tuple[str, bool] | None:
    """Returns None or raises; (message, used) is only for the quiet prune path."""
    using = list(users(img.id))
    msg: str | None = None
    is_hard = False
    if hard and store.children(img.id):
        msg, is_hard = "image has dependent child images", True
    elif hard and any(running for _, running in using):
        cid = next(c for c, running in using if running)
        msg, is_hard = f"image is being used by running container {cid[:12]}", True
    elif soft and references and store.refs.refs_of(img.id):
        msg = "image is referenced in multiple repositories"
    elif soft and using:
        msg = f"image is being used by stopped container {using[0][0][:12]}"
    if msg is None:
        return None
    how = "cannot be forced" if is_hard else "must be forced"
    raise Conflict(f"conflict: unable to delete {img.short_id} ({how}) - {msg}")

def _delete_helper(
    store: ImageStore,
    image_id: str,
    records: list[dict[str, str]],
    force: bool,
    prune: bool,
    quiet: bool,
    users: ContainerUse,
) -> None:
    img = store.get(image_id)
    try:
        _check_conflict(store, img, users, hard=True, soft=not force, references=True)
    except Conflict:
        if quiet and (store.refs.refs_of(image_id) or store.children(image_id) or users(image_id)):
            return
        raise
    for r in store.refs.refs_of(image_id):
        store.refs.remove(r)
        records.append({"Untagged": r.familiar()})
    removed_layers = _delete_image(store, img)
    records.append({"Deleted": image_id})
    records.extend({"Deleted": c} for c in removed_layers)
    if prune and img.parent:
        try:
            store.get(img.parent)
        except ImageNotFound:
            return
        _delete_helper(store, img.parent, records, False, True, True, users)

def _delete_image(store: ImageStore, img: Image) -> list[str]:
    """Drop the record, then every layer of it no other image or container uses."""
    os.unlink(store._record_path(img.id))
    store._cache.pop(img.id, None)
    store.blobs.delete_blob(img.id)
    still_used = store.layers_in_use()
    removed = []
    for chain in reversed(img.chain_ids):
        if chain not in still_used and store.layers.has(chain):
            store.layers.delete(chain)
            removed.append(chain)
    for m in img.manifests:
        if not any(m in rec.manifests for rec in store.records().values()):
            store.blobs.delete_blob(m)
    return removed

def prune(
    store: ImageStore,
    *,
    all: bool = False,
    users: ContainerUse,
    label: Sequence[str] = (),
    until: float | None = None,
) -> tuple[list[dict[str, str]], int]:
    """``docker image prune``: dangling images (every unused image with ``all``) that no
    container uses. Returns (records, bytes reclaimed)."""
    records: list[dict[str, str]] = []
    reclaimed = 0
    with store.lock:
        before = {c: store.layers.get(c).size for c in store.layers.list() if store.layers.has(c)}
        for img in store.list():
            if store.children(img.id) or users(img.id):
                continue
            if not all and (img.repo_tags or img.repo_digests):
                continue
            if label and not labels_match(img.labels, label):
                continue
            if until is not None and img.created_unix >= until:
                continue
            try:
                store.get(img.id)
            except ImageNotFound:
                continue
            try:
                records.extend(remove(store, img.id, force=True, users=users))
            except Conflict:
                continue
        after = set(store.layers.list())
        reclaimed = sum(size for c, size in before.items() if c not in after)
        reclaimed += gc(store)
    return records, reclaimed

def gc(store: ImageStore, grace: float = GC_GRACE) -> int:
    """Delete what nothing references and that is older than ``grace`` seconds (so a
    pull or push in flight keeps its fresh layers and blobs): layers no image or container
    uses, blobs that are no image's config or manifest nor a kept layer's compressed form,
    and half-deleted layer directories. Returns the bytes of blobs and layers freed."""
    cutoff = time.time() - grace
    freed = 0
    with store.lock:
        used = store.layers_in_use()
        keep_diffs: set[str] = set()
        for chain in store.layers.list():
            d = store.layers.dir_of(chain)
            meta = os.path.join(d, "meta.json")
            try:
                old = os.lstat(meta).st_mtime < cutoff
            except FileNotFoundError:  # killed while deleting it: finish the job
                if os.lstat(d).st_mtime < cutoff:
                    remove_tree(d)
                continue
            layer = store.layers.get(chain)
            if chain not in used and old:
                freed += layer.size
                store.layers.delete(chain)
            else:
                keep_diffs.add(layer.diff_id)
        referenced: set[str] = set()
        for image_id, rec in store.records().items():
            referenced.add(image_id)
            referenced.update(rec.manifests)
        for name in os.listdir(store.compressed_dir):
            diff_id = "sha256:" + name.removesuffix(".json")
            if diff_id in keep_diffs:
                referenced.update(k["digest"] for k in store.compressed_for(diff_id))
            elif os.lstat(os.path.join(store.compressed_dir, name)).st_mtime < cutoff:
                os.unlink(os.path.join(store.compressed_dir, name))
        for digest in store.blobs.list_blobs():
            path = store.blobs.blob_path(digest)
            st = os.lstat(path)
            if digest not in referenced and st.st_mtime < cutoff:
                freed += st.st_size
                store.blobs.delete_blob(digest)
    return freed


def _is_id_prefix(image_id: str, text: str) -> bool:
    """Docker's isImageIDPrefix."""
    return bool(text) and (image_id.startswith(text) or image_id[7:].startswith(text))


def _single_reference(refs: Sequence[Reference]) -> bool:
    """Docker's isSingleReference: at most one tag, and digests only of that repository."""
    if len(refs) <= 1:
        return len(refs) == 1
    single: Reference | None = None
    canonical: set[str] = set()
    for r in refs:
        if r.digest is not None:
            canonical.add(r.name)
        elif single is None:
            single = r
        else:
            return False
    if single is None:
        single = refs[0]
    return len(canonical) == 1 and single.name in canonical
