"""Images and names: add, tag, resolve, list filters, history, Docker's removal rules, prune."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence

import pytest

from dockyard.errors import Conflict, ImageNotFound, InvalidArgument, NotFound
from dockyard.images import ImageStore
from dockyard.images.refs import familiar_match
from dockyard.oci.reference import parse_reference
from tests.unit.images.tars import F, config_for, digest, entry, make_tar


@pytest.fixture
def store(tmp_path: os.PathLike[str]) -> ImageStore:
    return ImageStore(str(tmp_path), driver="copy")


def image(store: ImageStore, *files: str, parent_diffs: Sequence[str] = (), **extra: object) -> str:
    """An image whose top layer holds ``files`` on top of layers ``parent_diffs``."""
    data = make_tar(*(entry(f, F, f.encode()) for f in files))
    parent = store.chain_id(parent_diffs) if parent_diffs else None
    chain, diff_id = store.apply_layer(parent, io.BytesIO(data))
    image_id = store.add_image(config_for([*parent_diffs, diff_id], **extra))
    CHAINS[image_id] = chain
    return image_id


CHAINS: dict[str, str] = {}


def test_image_id_is_the_config_digest(store: ImageStore) -> None:
    data = make_tar(entry("a", F, b"a"))
    _, diff_id = store.apply_layer(None, io.BytesIO(data))
    config = config_for([diff_id])
    image_id = store.add_image(config, tags=["x:1"])
    assert image_id == digest(config)
    img = store.resolve("x:1")
    assert img.id == image_id
    assert img.layers == (diff_id,)
    assert img.chain_ids == (diff_id,)
    assert img.size == 1
    assert img.repo_tags == ("x:1",)
    assert store.config_bytes(image_id) == config


def test_add_image_refuses_missing_layers(store: ImageStore) -> None:
    with pytest.raises(NotFound):
        store.add_image(config_for([digest(b"not here")]))
    with pytest.raises(InvalidArgument):
        store.add_image(b"{not json")
    assert store.list() == []


def test_resolve_by_name_id_and_prefix(store: ImageStore) -> None:
    image_id = image(store, "a")
    store.tag(image_id, "docker.io/library/busybox")
    hexd = image_id[7:]
    for text in ("busybox", "busybox:latest", "docker.io/library/busybox:latest", image_id, hexd, hexd[:12], "sha256:" + hexd[:5]):
        assert store.resolve(text).id == image_id, text
    with pytest.raises(ImageNotFound, match="No such image: nosuch"):
        store.resolve("nosuch")


def test_repo_digest_is_recorded_and_resolvable(store: ImageStore) -> None:
    data = make_tar(entry("a", F, b"a"))
    _, diff_id = store.apply_layer(None, io.BytesIO(data))
    manifest = b'{"schemaVersion":2}'
    mdigest = digest(manifest)
    image_id = store.add_image(config_for([diff_id]), manifest=manifest, repo_digest=f"localhost:5000/x@{mdigest}")
    img = store.resolve(f"localhost:5000/x@{mdigest}")
    assert img.id == image_id
    assert img.repo_digests == (f"localhost:5000/x@{mdigest}",)
    assert img.manifests == (mdigest,)
    assert store.has_blob(mdigest)


def test_tag_moves_and_untag(store: ImageStore) -> None:
    a, b = image(store, "a"), image(store, "b")
    store.tag(a, "x")
    store.tag(b, "x")
    assert store.resolve("x").id == b
    assert store.get(a).repo_tags == ()
    assert store.untag("x") == b
    with pytest.raises(ImageNotFound):
        store.untag("x")
    with pytest.raises(InvalidArgument):
        store.tag(a, f"x@{digest(b'm')}")


def test_last_tag_time_is_kept(store: ImageStore) -> None:
    a = image(store, "a")
    assert store.get(a).last_tag_time == ""
    store.tag(a, "t")
    stamp = store.get(a).last_tag_time
    assert stamp.endswith("Z") and stamp[:2] == "20"
    assert ImageStore(store.root, driver="copy").get(a).last_tag_time == stamp


def test_tags_survive_reopening(store: ImageStore) -> None:
    a = image(store, "a")
    store.tag(a, "keep:me")
    again = ImageStore(store.root, driver="copy")
    assert again.resolve("keep:me").id == a


def test_list_filters(store: ImageStore) -> None:
    a = image(store, "a", config={"Labels": {"team": "red"}}, created="2020-01-01T00:00:00Z")
    b = image(store, "b", created="2021-01-01T00:00:00Z")
    c = image(store, "c", created="2022-01-01T00:00:00Z")
    store.tag(a, "busybox:1")
    store.tag(a, "localhost:5000/tools/busybox:2")
    store.tag(b, "alpine")
    ids = [i.id for i in store.list()]
    assert ids == [c, b, a]  # newest first
    assert [i.id for i in store.list(dangling=True)] == [c]
    assert [i.id for i in store.list(dangling=False)] == [b, a]
    found = store.list(reference=["busybox"])
    assert [(i.id, i.repo_tags) for i in found] == [(a, ("busybox:1",))]
    assert [i.id for i in store.list(reference=["*/*/busybox"])] == [a]
    assert [i.id for i in store.list(reference=["alp*:latest"])] == [b]
    assert [i.id for i in store.list(label=["team"])] == [a]
    assert [i.id for i in store.list(label=["team=blue"])] == []
    assert [i.id for i in store.list(before="alpine")] == [a]
    assert [i.id for i in store.list(since="busybox:1")] == [c, b]


def test_familiar_match_is_go_path_match() -> None:
    ref = parse_reference("localhost:5000/a/b:tag")
    assert familiar_match("localhost:5000/a/b", ref)
    assert familiar_match("localhost:5000/*/b", ref)
    assert not familiar_match("*", ref)  # * never crosses a slash
    assert familiar_match("busy[a-z]ox", parse_reference("busybox"))


def test_history_newest_first_with_sizes(store: ImageStore) -> None:
    image_id = image(store, "abc")
    rows = store.history(image_id)
    assert len(rows) == 1
    assert rows[0]["id"] == image_id
    assert rows[0]["size"] == 3
    assert rows[0]["created_by"] == "layer 0"
    assert rows[0]["created"] == 1704164645


def users_of(mapping: dict[str, list[tuple[str, bool]]]):  # type: ignore[no-untyped-def]
    return lambda image_id: mapping.get(image_id, [])


def test_remove_by_tag_with_other_tags_only_untags(store: ImageStore) -> None:
    a = image(store, "a")
    store.tag(a, "one")
    store.tag(a, "two")
    assert store.remove("one") == [{"Untagged": "one:latest"}]
    assert store.get(a).repo_tags == ("two:latest",)


def test_remove_last_tag_deletes_image_and_layers(store: ImageStore) -> None:
    a = image(store, "a")
    store.tag(a, "one")
    chain = store.get(a).chain_ids[0]
    records = store.remove("one")
    assert records == [{"Untagged": "one:latest"}, {"Deleted": a}, {"Deleted": chain}]
    assert not store.has_layer(chain)
    assert not store.has_blob(a)
    with pytest.raises(ImageNotFound):
        store.get(a)


def test_remove_keeps_layers_shared_with_other_images(store: ImageStore) -> None:
    base = image(store, "base")
    base_diff = store.get(base).layers[0]
    child = image(store, "child", parent_diffs=[base_diff])
    store.remove(child)
    assert store.has_layer(base_diff)
    assert store.get(base).id == base


def test_remove_by_id_with_tags_in_several_repos_must_be_forced(store: ImageStore) -> None:
    a = image(store, "a")
    store.tag(a, "one")
    store.tag(a, "two")
    short = a[7:19]
    with pytest.raises(Conflict, match=f"conflict: unable to delete {short} \\(must be forced\\) - image is referenced in multiple repositories"):
        store.remove(a)
    records = store.remove(a, force=True)
    assert {"Untagged": "one:latest"} in records and {"Untagged": "two:latest"} in records
    assert records[-2:][0] == {"Deleted": a} or {"Deleted": a} in records


def test_remove_image_used_by_running_container_cannot_be_forced(store: ImageStore) -> None:
    a = image(store, "a")
    users = users_of({a: [("c0ffee" * 10, True)]})
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running container c0ffeec0ffee"):
        store.remove(a, users=users)
    with pytest.raises(Conflict, match="cannot be forced"):
        store.remove(a, force=True, users=users)


def test_remove_image_used_by_stopped_container_needs_force(store: ImageStore) -> None:
    a = image(store, "a")
    users = users_of({a: [("deadbeef" * 8, False)]})
    with pytest.raises(Conflict, match=r"must be forced.*stopped container deadbeefdead"):
        store.remove(a, users=users)
    assert {"Deleted": a} in store.remove(a, force=True, users=users)


def test_remove_only_tag_of_image_in_use_must_force(store: ImageStore) -> None:
    a = image(store, "a")
    store.tag(a, "busy")
    users = users_of({a: [("abc123" * 10, False)]})
    with pytest.raises(Conflict, match='unable to remove repository reference "busy" \\(must force\\) - container abc123abc123'):
        store.remove("busy", users=users)
    # forced: a stopped container is only a soft conflict, so the image goes too (as Docker)
    assert store.remove("busy", force=True, users=users) == [{"Untagged": "busy:latest"}, {"Deleted": a}, {"Deleted": store_chain(a)}]


def test_force_untag_of_image_used_by_running_container_keeps_image(store: ImageStore) -> None:
    a = image(store, "a")
    store.tag(a, "busy")
    users = users_of({a: [("abc123" * 10, True)]})
    assert store.remove("busy", force=True, users=users) == [{"Untagged": "busy:latest"}]
    assert store.get(a).repo_tags == ()


def store_chain(image_id: str) -> str:
    return CHAINS[image_id]


def test_remove_untags_digest_refs_of_the_same_repo(store: ImageStore) -> None:
    data = make_tar(entry("a", F, b"a"))
    _, diff_id = store.apply_layer(None, io.BytesIO(data))
    m = digest(b"manifest")
    a = store.add_image(config_for([diff_id]), repo_digest=f"busybox@{m}", tags=["busybox"])
    records = store.remove("busybox")
    assert records[:2] == [{"Untagged": "busybox:latest"}, {"Untagged": f"busybox@{m}"}]
    assert {"Deleted": a} in records


def test_remove_parent_pruned_unless_noprune(store: ImageStore) -> None:
    parent = image(store, "p")
    pdiff = store.get(parent).layers[0]
    data = make_tar(entry("c", F, b"c"))
    _, diff_id = store.apply_layer(pdiff, io.BytesIO(data))
    child = store.add_image(config_for([pdiff, diff_id]), parent=parent, tags=["child"])
    with pytest.raises(Conflict, match="image has dependent child images"):
        store.remove(parent)
    records = store.remove("child", noprune=True)
    assert {"Deleted": child} in records and store.get(parent)
    store.apply_layer(pdiff, io.BytesIO(data))
    child = store.add_image(config_for([pdiff, diff_id]), parent=parent, tags=["child"])
    records = store.remove("child")
    assert {"Deleted": parent} in records


def test_prune_dangling_and_all(store: ImageStore) -> None:
    tagged = image(store, "t")
    store.tag(tagged, "keep")
    dangling = image(store, "d")
    used = image(store, "u")
    users = users_of({used: [("c" * 64, False)]})
    records, reclaimed = store.prune(users=users)
    assert {"Deleted": dangling} in records
    assert reclaimed == 1
    assert store.get(used) and store.get(tagged)
    records, _ = store.prune(all=True, users=users)
    assert {"Deleted": tagged} in records
    assert [i.id for i in store.list()] == [used]


def test_remember_compressed(store: ImageStore) -> None:
    diff_id, blob = digest(b"layer"), digest(b"gz")
    store.remember_compressed(diff_id, blob, "application/vnd.docker.image.rootfs.diff.tar.gzip", "docker.io/library/x")
    store.remember_compressed(diff_id, blob, "application/vnd.docker.image.rootfs.diff.tar.gzip", "docker.io/library/x")
    known = store.compressed_for(diff_id)
    assert known == [{"digest": blob, "media_type": "application/vnd.docker.image.rootfs.diff.tar.gzip", "source": "docker.io/library/x"}]
    assert store.compressed_for(digest(b"other")) == []


def test_records_are_plain_json(store: ImageStore) -> None:
    a = image(store, "a")
    store.tag(a, "x")
    with open(os.path.join(store.root, "repositories.json")) as f:
        assert json.load(f) == {"Repositories": {"x": {"x:latest": a}}}


def test_gc_removes_only_unreferenced_layers_and_blobs(store: ImageStore) -> None:
    kept = image(store, "kept")
    kept_diff = store.get(kept).layers[0]
    orphan_chain, _ = store.apply_layer(None, io.BytesIO(make_tar(entry("orphan", F, b"12345"))))
    gz = store.write_blob(b"compressed form of kept")
    store.remember_compressed(kept_diff, gz, "application/vnd.docker.image.rootfs.diff.tar.gzip")
    stray = store.write_blob(b"nobody needs me")
    half = os.path.join(store.layers.dir, "ab" * 32)
    os.makedirs(os.path.join(half, "diff"))
    # fresh things survive the default grace period (a pull may be about to use them)
    assert store.gc() == 0
    assert store.has_layer(orphan_chain) and store.has_blob(stray)
    freed = store.gc(grace=-1)
    assert freed == 5 + len(b"nobody needs me")
    assert not store.has_layer(orphan_chain) and not store.has_blob(stray)
    assert not os.path.exists(half)
    assert store.has_blob(kept) and store.has_blob(gz) and store.has_layer(kept_diff)


def test_disk_usage_counts_shared_layers_once(store: ImageStore) -> None:
    base = image(store, "base")
    base_diff = store.get(base).layers[0]
    child = image(store, "child", parent_diffs=[base_diff])
    total, shared = store.disk_usage()
    assert total == len("base") + len("child")
    assert shared == {base: 4, child: 4}


def test_check_finds_corruption(store: ImageStore) -> None:
    a = image(store, "abc")
    store.tag(a, "x")
    assert store.check(deep=True) == []
    chain = store.get(a).chain_ids[0]
    with open(os.path.join(store.layer(chain).path, "abc"), "wb") as f:
        f.write(b"xyz")  # same size, other bytes
    assert store.check() == []  # a shallow check does not read layer contents
    assert store.check(deep=True) == [f"layer {chain}: contents do not match its diff id"]
    store.layers.delete(chain)
    assert store.check() == [f"image {a}: layer {chain} missing"]


def test_a_broken_image_does_not_break_listing_or_removal(store: ImageStore) -> None:
    good, bad = image(store, "good"), image(store, "bad")
    store.tag(good, "good")
    os.unlink(store.blob_path(bad))  # its config is lost
    assert [i.id for i in store.list()] == [good]
    assert store.check() == [f"image {bad}: config blob missing"]
    assert {"Deleted": good} in store.remove("good")
