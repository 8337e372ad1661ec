"""Manifests: push/pull, negotiation, tags, deletes and every bad manifest the spec names."""

from __future__ import annotations

import json
import os
import threading

from dockyard.oci import mediatypes
from tests.unit.registry.harness import (
    RunningRegistry,
    make_image,
    make_index,
    sha256,
    small_layer,
)


def test_manifest_roundtrip_serves_exact_bytes_with_digest(registry: RunningRegistry) -> None:
    image = make_image(docker=True)
    digest = registry.push_image("library/busybox", "latest", image)
    assert digest == image.digest
    for ref in ("latest", digest):
        r = registry.request("GET", f"/v2/library/busybox/manifests/{ref}",
                             headers={"Accept": mediatypes.DOCKER_MANIFEST})
        assert r.status == 200
        assert r.body == image.manifest
        assert r.headers["Docker-Content-Digest"] == digest
        assert r.headers["Content-Type"] == mediatypes.DOCKER_MANIFEST
    head = registry.request("HEAD", "/v2/library/busybox/manifests/latest")
    assert head.status == 200
    assert int(head.headers["Content-Length"]) == len(image.manifest)
    assert head.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_put_answers_location_and_digest(registry: RunningRegistry) -> None:
    image = make_image()
    for blob in image.blobs.values():
        registry.push_blob("r", blob)
    r = registry.push_manifest("r", "v1", image.manifest)
    assert r.status == 201
    assert r.headers["Location"] == f"/v2/r/manifests/{image.digest}"


def test_manifest_referencing_missing_blob_is_rejected(registry: RunningRegistry) -> None:
    image = make_image()
    config = next(iter(image.blobs))
    registry.push_blob("r", image.blobs[config])  # config only, no layer
    r = registry.push_manifest("r", "v1", image.manifest)
    assert r.status == 400
    assert r.code == "MANIFEST_BLOB_UNKNOWN"
    assert registry.request("GET", "/v2/r/manifests/v1").status == 404


def test_blob_of_another_repository_does_not_count(registry: RunningRegistry) -> None:
    image = make_image()
    for blob in image.blobs.values():
        registry.push_blob("other", blob)
    r = registry.push_manifest("mine", "v1", image.manifest)
    assert r.code == "MANIFEST_BLOB_UNKNOWN"


def test_malformed_manifests_are_manifest_invalid(registry: RunningRegistry) -> None:
    bad = [b"{not json", b"[1, 2]", json.dumps({"schemaVersion": 1}).encode(),
           json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST}).encode(),
           json.dumps({"schemaVersion": 2, "mediaType": "text/plain", "layers": []}).encode(),
           json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:../../etc/passwd",
                                                      "size": 1}, "layers": []}).encode()]
    for body in bad:
        r = registry.push_manifest("r", "v1", body)
        assert (r.status, r.code) == (400, "MANIFEST_INVALID"), body
    assert not os.path.exists(os.path.join(registry.root, "repositories", "r", "_manifests"))


def test_media_type_must_match_content_type(registry: RunningRegistry) -> None:
    image = make_image(layers=[])
    for blob in image.blobs.values():
        registry.push_blob("r", blob)
    r = registry.push_manifest("r", "v1", image.manifest, mediatypes.DOCKER_MANIFEST)
    assert r.code == "MANIFEST_INVALID"


def test_huge_manifest_is_413(registry: RunningRegistry) -> None:
    body = b'{"schemaVersion": 2, "pad": "' + b"x" * (4 * 1024 * 1024 + 10) + b'"}'
    r = registry.push_manifest("r", "v1", body)
    assert r.status == 413
    assert r.code == "MANIFEST_INVALID"


def test_digest_reference_must_match_content(registry: RunningRegistry) -> None:
    image = make_image(layers=[])
    for blob in image.blobs.values():
        registry.push_blob("r", blob)
    wrong = sha256(b"something else")
    r = registry.push_manifest("r", wrong, image.manifest)
    assert (r.status, r.code) == (400, "DIGEST_INVALID")
    assert registry.push_manifest("r", image.digest, image.manifest).status == 201


def test_invalid_names_tags_and_traversal(registry: RunningRegistry) -> None:
    image = make_image(layers=[])
    for path, code in [
        ("/v2/UPPER/manifests/latest", "NAME_INVALID"),
        ("/v2/a/../b/manifests/latest", "NAME_INVALID"),
        ("/v2/a/%2e%2e/b/manifests/latest", "NAME_INVALID"),
        ("/v2/_uploads/manifests/latest", "NAME_INVALID"),
        ("/v2/" + "a" * 256 + "/manifests/latest", "NAME_INVALID"),
        ("/v2/r/manifests/-bad-tag", "TAG_INVALID"),
        ("/v2/r/manifests/" + "t" * 129, "TAG_INVALID"),
        ("/v2/r/manifests/sha256:..%2f..%2fetc", "DIGEST_INVALID"),
        ("/v2/r/blobs/sha256:../../../etc/passwd", "DIGEST_INVALID"),
    ]:
        r = registry.request("PUT", path, image.manifest,
                             {"Content-Type": mediatypes.OCI_MANIFEST})
        assert r.status in (400, 404, 405), path
        if r.status == 400:
            assert r.code == code, path
    assert os.listdir(registry.root) in ([], ["uploads"], ["blobs"])


def test_content_negotiation_of_an_index(registry: RunningRegistry) -> None:
    amd, arm = make_image(docker=True), make_image([], docker=True)
    registry.push_image("r", "amd", amd)
    registry.push_image("r", "arm", arm)
    index = make_index([amd, arm])
    assert registry.push_manifest("r", "multi", index.manifest, index.media_type).status == 201
    both = registry.request("GET", "/v2/r/manifests/multi", headers={
        "Accept": f"{mediatypes.OCI_INDEX}, {mediatypes.DOCKER_MANIFEST}"})
    assert both.body == index.manifest
    old = registry.request("GET", "/v2/r/manifests/multi",
                           headers={"Accept": mediatypes.DOCKER_MANIFEST})
    assert old.status == 200
    assert old.headers["Docker-Content-Digest"] == amd.digest
    none = registry.request("GET", "/v2/r/manifests/amd", headers={"Accept": mediatypes.OCI_MANIFEST})
    assert (none.status, none.code) == (404, "MANIFEST_UNKNOWN")


def test_index_needs_its_children(registry: RunningRegistry) -> None:
    index = make_index([make_image()])
    r = registry.push_manifest("r", "multi", index.manifest, index.media_type)
    assert (r.status, r.code) == (400, "MANIFEST_BLOB_UNKNOWN")


def test_tags_list_pagination_with_link(registry: RunningRegistry) -> None:
    image = make_image(layers=[])
    for blob in image.blobs.values():
        registry.push_blob("r", blob)
    tags = ["a", "b", "c", "d", "e"]
    for tag in tags:
        assert registry.push_manifest("r", tag, image.manifest).status == 201
    assert registry.request("GET", "/v2/r/tags/list").json() == {"name": "r", "tags": tags}
    first = registry.request("GET", "/v2/r/tags/list?n=2")
    assert first.json()["tags"] == ["a", "b"]
    assert first.headers["Link"] == '</v2/r/tags/list?n=2&last=b>; rel="next"'
    rest = registry.request("GET", "/v2/r/tags/list?n=2&last=d")
    assert rest.json()["tags"] == ["e"]
    assert "Link" not in rest.headers
    zero = registry.request("GET", "/v2/r/tags/list?n=0")
    assert zero.json()["tags"] == [] and "Link" not in zero.headers
    bad = registry.request("GET", "/v2/r/tags/list?n=-1")
    assert (bad.status, bad.code) == (400, "PAGINATION_NUMBER_INVALID")
    unknown = registry.request("GET", "/v2/nope/tags/list")
    assert (unknown.status, unknown.code) == (404, "NAME_UNKNOWN")


def test_delete_by_tag_keeps_the_manifest(registry: RunningRegistry) -> None:
    image = make_image()
    digest = registry.push_image("r", "v1", image)
    registry.push_manifest("r", "v2", image.manifest)
    assert registry.request("DELETE", "/v2/r/manifests/v1").status == 202
    assert registry.request("GET", "/v2/r/manifests/v1").code == "MANIFEST_UNKNOWN"
    assert registry.request("GET", f"/v2/r/manifests/{digest}").status == 200
    assert registry.request("GET", "/v2/r/tags/list").json()["tags"] == ["v2"]


def test_delete_by_digest_removes_its_tags(registry: RunningRegistry) -> None:
    digest = registry.push_image("r", "v1", make_image())
    assert registry.request("DELETE", f"/v2/r/manifests/{digest}").status == 202
    assert registry.request("GET", f"/v2/r/manifests/{digest}").status == 404
    assert registry.request("GET", "/v2/r/manifests/v1").status == 404
    assert registry.request("DELETE", f"/v2/r/manifests/{digest}").code == "MANIFEST_UNKNOWN"


def test_concurrent_pushes_of_one_tag_leave_one_winner(registry: RunningRegistry) -> None:
    images = [make_image([small_layer(bytes([i]))]) for i in range(8)]
    for image in images:
        for blob in image.blobs.values():
            registry.push_blob("r", blob)
    results: list[int] = []
    threads = [threading.Thread(target=lambda im=im: results.append(
        registry.push_manifest("r", "hot", im.manifest).status)) for im in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * len(images)
    r = registry.request("GET", "/v2/r/manifests/hot")
    assert r.body in [im.manifest for im in images]
    for image in images:
        assert registry.request("HEAD", f"/v2/r/manifests/{image.digest}").status == 200


def test_push_by_digest_with_tag_parameters(registry: RunningRegistry) -> None:
    image = make_image()
    for blob in image.blobs.values():
        registry.push_blob("r", blob)
    r = registry.request("PUT", f"/v2/r/manifests/{image.digest}?tag=one&tag=two", image.manifest,
                         {"Content-Type": image.media_type})
    assert r.status == 201
    assert r.headers.get_all("OCI-Tag") == ["one", "two"]
    assert registry.request("GET", "/v2/r/tags/list").json()["tags"] == ["one", "two"]
    other = make_image([small_layer(b"other")])
    for blob in other.blobs.values():
        registry.push_blob("r", blob)
    bad = registry.request("PUT", f"/v2/r/manifests/{other.digest}?tag=three&tag=-bad",
                           other.manifest, {"Content-Type": other.media_type})
    assert (bad.status, bad.code) == (400, "TAG_INVALID")
    assert registry.request("HEAD", f"/v2/r/manifests/{other.digest}").status == 404


def test_referrers_api_lists_and_filters(registry: RunningRegistry) -> None:
    image = make_image()
    subject_digest = registry.push_image("r", "v1", image)
    subject = {"mediaType": image.media_type, "digest": subject_digest, "size": len(image.manifest)}
    sbom = make_image([], subject=subject, artifact_type="application/vnd.example.sbom")
    sig = make_image([small_layer(b"sig")], subject=subject, artifact_type="application/vnd.example.sig")
    for art in (sbom, sig):
        for blob in art.blobs.values():
            registry.push_blob("r", blob)
        r = registry.push_manifest("r", art.digest, art.manifest)
        assert r.headers["OCI-Subject"] == subject_digest
    listed = registry.request("GET", f"/v2/r/referrers/{subject_digest}").json()
    assert sorted(m["digest"] for m in listed["manifests"]) == sorted([sbom.digest, sig.digest])
    only = registry.request("GET", f"/v2/r/referrers/{subject_digest}?artifactType="
                                   "application/vnd.example.sbom")
    assert only.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in only.json()["manifests"]] == [sbom.digest]
    registry.request("DELETE", f"/v2/r/manifests/{sig.digest}")
    after = registry.request("GET", f"/v2/r/referrers/{subject_digest}").json()["manifests"]
    assert [m["digest"] for m in after] == [sbom.digest]
    empty = registry.request("GET", f"/v2/r/referrers/{sha256(b'none')}")
    assert empty.status == 200 and empty.json()["manifests"] == []
