"""Blobs and uploads: monolithic, chunked, resumable, cancel, mount, ranges, bad input."""

from __future__ import annotations

import os
import socket
import time

from tests.unit.registry.harness import RunningRegistry, sha256


def _blob_files(root: str) -> list[str]:
    found = []
    for dirpath, _, files in os.walk(os.path.join(root, "blobs")):
        found += [os.path.join(dirpath, f) for f in files]
    return found


def _start(registry: RunningRegistry, repo: str = "r") -> str:
    r = registry.request("POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status == 202
    assert r.headers["Range"] == "0-0"
    assert r.headers["Docker-Upload-UUID"] in r.headers["Location"]
    return str(r.headers["Location"])


def test_monolithic_upload_then_get_head_and_range(registry: RunningRegistry) -> None:
    data = os.urandom(100_000)
    digest = registry.push_blob("r", data)
    head = registry.request("HEAD", f"/v2/r/blobs/{digest}")
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(data)
    assert head.headers["Docker-Content-Digest"] == digest
    got = registry.request("GET", f"/v2/r/blobs/{digest}")
    assert got.body == data
    part = registry.request("GET", f"/v2/r/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert part.status == 206
    assert part.body == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"


def test_chunked_upload_with_status_and_final_chunk(registry: RunningRegistry) -> None:
    data = os.urandom(3000)
    location = _start(registry)
    r = registry.request("PATCH", location, data[:1000],
                         {"Content-Range": "0-999", "Content-Type": "application/octet-stream"})
    assert r.status == 202 and r.headers["Range"] == "0-999"
    r = registry.request("PATCH", r.headers["Location"], data[1000:2000], {"Content-Range": "1000-1999"})
    assert r.headers["Range"] == "0-1999"
    status = registry.request("GET", location)
    assert status.status == 204 and status.headers["Range"] == "0-1999"
    done = registry.request("PUT", f"{location}?digest={sha256(data)}", data[2000:],
                            {"Content-Range": "2000-2999"})
    assert done.status == 201
    assert registry.request("GET", f"/v2/r/blobs/{sha256(data)}").body == data
    assert registry.request("GET", location).code == "BLOB_UPLOAD_UNKNOWN"
    assert os.listdir(os.path.join(registry.root, "uploads")) == []


def test_streamed_patch_without_range(registry: RunningRegistry) -> None:
    data = os.urandom(3 << 20)
    location = _start(registry)
    r = registry.request("PATCH", location, data)
    assert r.headers["Range"] == f"0-{len(data) - 1}"
    assert registry.request("PUT", f"{location}?digest={sha256(data)}").status == 201
    assert registry.request("GET", f"/v2/r/blobs/{sha256(data)}").body == data


def test_out_of_order_chunk_is_416_and_changes_nothing(registry: RunningRegistry) -> None:
    location = _start(registry)
    registry.request("PATCH", location, b"a" * 10, {"Content-Range": "0-9"})
    r = registry.request("PATCH", location, b"b" * 10, {"Content-Range": "20-29"})
    assert (r.status, r.code) == (416, "RANGE_INVALID")
    assert r.headers["Range"] == "0-9"
    r = registry.request("PUT", f"{location}?digest={sha256(b'a' * 20)}", b"a" * 10,
                         {"Content-Range": "5-14"})
    assert r.status == 416
    assert registry.request("GET", location).headers["Range"] == "0-9"


def test_digest_mismatch_is_rejected_and_leaves_no_blob(registry: RunningRegistry) -> None:
    r = registry.request("POST", f"/v2/r/blobs/uploads/?digest={sha256(b'other')}", b"content")
    assert (r.status, r.code) == (400, "DIGEST_INVALID")
    location = _start(registry)
    registry.request("PATCH", location, b"content")
    r = registry.request("PUT", f"{location}?digest={sha256(b'other')}")
    assert r.code == "DIGEST_INVALID"
    assert _blob_files(registry.root) == []
    assert os.listdir(os.path.join(registry.root, "uploads")) == []
    assert registry.request("HEAD", f"/v2/r/blobs/{sha256(b'content')}").status == 404


def test_malformed_digests_are_digest_invalid(registry: RunningRegistry) -> None:
    for bad in ("sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64, "../../etc/passwd"):
        r = registry.request("POST", f"/v2/r/blobs/uploads/?digest={bad}", b"x")
        assert (r.status, r.code) == (400, "DIGEST_INVALID"), bad
    location = _start(registry)
    assert registry.request("PUT", location).code == "DIGEST_INVALID"


def test_cancel_upload(registry: RunningRegistry) -> None:
    location = _start(registry)
    registry.request("PATCH", location, b"abc")
    assert registry.request("DELETE", location).status == 204
    assert registry.request("PATCH", location, b"abc").code == "BLOB_UPLOAD_UNKNOWN"


def test_unknown_or_foreign_upload_ids(registry: RunningRegistry) -> None:
    location = _start(registry, "owner")
    ident = location.rsplit("/", 1)[1]
    assert registry.request("GET", f"/v2/thief/blobs/uploads/{ident}").code == "BLOB_UPLOAD_UNKNOWN"
    for bad in ("nope", "..%2f..%2finfo", "00000000-0000-0000-0000-000000000000"):
        r = registry.request("PATCH", f"/v2/r/blobs/uploads/{bad}", b"x")
        assert (r.status, r.code) == (404, "BLOB_UPLOAD_UNKNOWN"), bad


def test_upload_that_stops_half_way_can_resume(registry: RunningRegistry) -> None:
    data = os.urandom(200_000)
    location = _start(registry)
    with socket.create_connection(("127.0.0.1", registry.port)) as sock:
        sock.sendall(f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n"
                     .encode() + data[:50_000])
    # the server keeps what arrived; the client asks where to go on (spec: resumable upload)
    deadline = time.monotonic() + 20  # wait for the server to notice the disconnect
    while True:
        status = registry.request("GET", location)
        if status.headers["Range"] != "0-0" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    end = int(status.headers["Range"].split("-")[1]) + 1
    assert 1 < end <= 50_000
    r = registry.request("PATCH", location, data[end:], {"Content-Range": f"{end}-{len(data) - 1}"})
    assert r.status == 202
    assert registry.request("PUT", f"{location}?digest={sha256(data)}").status == 201
    assert registry.request("GET", f"/v2/r/blobs/{sha256(data)}").body == data


def test_cross_repository_mount(registry: RunningRegistry) -> None:
    digest = registry.push_blob("src", b"shared layer")
    r = registry.request("POST", f"/v2/dst/blobs/uploads/?mount={digest}&from=src")
    assert r.status == 201
    assert r.headers["Location"] == f"/v2/dst/blobs/{digest}"
    assert registry.request("GET", f"/v2/dst/blobs/{digest}").body == b"shared layer"
    missing = registry.request("POST", f"/v2/dst/blobs/uploads/?mount={sha256(b'x')}&from=src")
    assert missing.status == 202  # falls back to a normal upload session
    assert len(_blob_files(registry.root)) == 1


def test_blob_unknown_and_delete(registry: RunningRegistry) -> None:
    assert registry.request("GET", f"/v2/r/blobs/{sha256(b'x')}").code == "BLOB_UNKNOWN"
    digest = registry.push_blob("r", b"x")
    registry.push_blob("keep", b"x")
    assert registry.request("DELETE", f"/v2/r/blobs/{digest}").status == 202
    assert registry.request("HEAD", f"/v2/r/blobs/{digest}").status == 404
    assert registry.request("GET", f"/v2/keep/blobs/{digest}").body == b"x"
    assert registry.request("DELETE", f"/v2/r/blobs/{digest}").code == "BLOB_UNKNOWN"


def test_catalog_pagination(registry: RunningRegistry) -> None:
    for repo in ("a", "b/c", "b/c/d", "e"):
        registry.push_blob(repo, b"x")
    assert registry.request("GET", "/v2/_catalog").json() == {
        "repositories": ["a", "b/c", "b/c/d", "e"]}
    page = registry.request("GET", "/v2/_catalog?n=2")
    assert page.json()["repositories"] == ["a", "b/c"]
    assert page.headers["Link"] == '</v2/_catalog?n=2&last=b%2Fc>; rel="next"'
    assert registry.request("GET", "/v2/_catalog?n=2&last=b/c").json()["repositories"] == [
        "b/c/d", "e"]
