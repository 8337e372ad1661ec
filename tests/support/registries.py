"""Images and registries for registry-client tests (no Docker Hub here).

``TestImage`` builds an image from layer tars (gzip, zstd or none; Docker or OCI media types);
``GoRegistry`` runs Debian's reference registry (``docker-registry serve``) on 127.0.0.1 with
filesystem storage in a temp dir; ``upload`` pushes a TestImage over plain HTTP with urllib
(independent of the client under test).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import zstandard

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- layer tars ------------------------------------------------------------------------------


@dataclass
class Entry:
    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    mode: int = 0o644
    linkname: str = ""
    uid: int = 0
    gid: int = 0
    devmajor: int = 0
    devminor: int = 0


def file(name: str, data: bytes = b"", mode: int = 0o644) -> Entry:
    return Entry(name, data, tarfile.REGTYPE, mode)


def directory(name: str, mode: int = 0o755) -> Entry:
    return Entry(name, b"", tarfile.DIRTYPE, mode)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, b"", tarfile.SYMTYPE, 0o777, target)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, b"", tarfile.LNKTYPE, 0o644, target)


def layer_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.kind
            info.mode = e.mode
            info.uid, info.gid = e.uid, e.gid
            info.mtime = 1_700_000_000
            info.linkname = e.linkname
            info.devmajor, info.devminor = e.devmajor, e.devminor
            if e.kind == tarfile.REGTYPE:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def compress(tar: bytes, kind: str | None) -> bytes:
    if kind == "gzip":
        return gzip.compress(tar, 1, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(tar)
    return tar


# -- images ----------------------------------------------------------------------------------


@dataclass
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass
class TestImage:
    """An image as a registry stores it: layers, config, manifest (all bytes)."""

    __test__ = False  # not a pytest class

    tars: list[bytes]
    compression: str | None = "gzip"
    oci: bool = False
    architecture: str = "amd64"
    extra_config: dict[str, Any] = field(default_factory=dict)
    layers: list[Blob] = field(init=False)
    config: Blob = field(init=False)
    manifest: Blob = field(init=False)

    def __post_init__(self) -> None:
        if self.oci:
            ltype = OCI_LAYER + {"gzip": "+gzip", "zstd": "+zstd", None: ""}[self.compression]
        else:
            ltype = DOCKER_LAYER
        self.layers = [Blob(ltype, compress(t, self.compression)) for t in self.tars]
        config = {
            "architecture": self.architecture,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "created": "2024-01-01T00:00:00Z",
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "test"} for _ in self.tars],
            "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in self.tars]},
            **self.extra_config,
        }
        self.config = Blob(OCI_CONFIG if self.oci else DOCKER_CONFIG, json.dumps(config).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST if self.oci else DOCKER_MANIFEST,
            "config": self.config.descriptor(),
            "layers": [layer.descriptor() for layer in self.layers],
        }
        self.manifest = Blob(manifest["mediaType"], json.dumps(manifest, indent=3).encode())

    @property
    def image_id(self) -> str:
        return self.config.digest

    @property
    def diff_ids(self) -> list[str]:
        return [sha256(t) for t in self.tars]

    def blobs(self) -> list[Blob]:
        return [*self.layers, self.config]


def index_of(images: list[TestImage], oci: bool = False) -> Blob:
    entries = []
    for img in images:
        d = img.manifest.descriptor()
        d["platform"] = {"architecture": img.architecture, "os": "linux"}
        if img.architecture == "arm64":
            d["platform"]["variant"] = "v8"
        entries.append(d)
    mt = OCI_INDEX if oci else DOCKER_LIST
    body = {"schemaVersion": 2, "mediaType": mt, "manifests": entries}
    return Blob(mt, json.dumps(body).encode())


# -- pushing over plain HTTP -----------------------------------------------------------------


def _request(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
             auth: tuple[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def upload_blob(base: str, repo: str, blob: Blob, auth: tuple[str, str] | None = None) -> None:
    status, headers, _ = _request("HEAD", f"{base}/v2/{repo}/blobs/{blob.digest}", auth=auth)
    if status == 200:
        return
    status, headers, body = _request("POST", f"{base}/v2/{repo}/blobs/uploads/", b"", auth=auth)
    assert status == 202, (status, body)
    location = headers["Location"]
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    status, _, body = _request(
        "PUT", f"{location}{sep}digest={blob.digest}", blob.data,
        {"Content-Type": "application/octet-stream"}, auth=auth,
    )
    assert status == 201, (status, body)


def upload_manifest(base: str, repo: str, ref: str, blob: Blob, auth: tuple[str, str] | None = None) -> None:
    status, _, body = _request(
        "PUT", f"{base}/v2/{repo}/manifests/{ref}", blob.data, {"Content-Type": blob.media_type}, auth=auth
    )
    assert status == 201, (status, body)


def upload(base: str, repo: str, tag: str, image: TestImage, auth: tuple[str, str] | None = None) -> None:
    for blob in image.blobs():
        upload_blob(base, repo, blob, auth)
    upload_manifest(base, repo, tag, image.manifest, auth)


def upload_index(base: str, repo: str, tag: str, images: list[TestImage], oci: bool = False) -> Blob:
    for img in images:
        for blob in img.blobs():
            upload_blob(base, repo, blob)
        upload_manifest(base, repo, img.manifest.digest, img.manifest)
    index = index_of(images, oci)
    upload_manifest(base, repo, tag, index)
    return index


# -- the reference registry ------------------------------------------------------------------


class GoRegistry:
    """``docker-registry serve`` on 127.0.0.1:<free port>, storage in ``root``."""

    BINARY = "/usr/bin/docker-registry"

    def __init__(self, root: str, htpasswd: str | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.htpasswd = htpasswd

    @classmethod
    def available(cls) -> bool:
        return os.path.exists(cls.BINARY)

    def start(self) -> GoRegistry:
        os.makedirs(os.path.join(self.root, "data"), exist_ok=True)
        auth = ""
        if self.htpasswd:
            auth = f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {self.htpasswd}\n"
        config = (
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root}/data\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n{auth}"
        )
        path = os.path.join(self.root, "config.yml")
        with open(path, "w") as f:
            f.write(config)
        log = open(os.path.join(self.root, "registry.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([self.BINARY, "serve", path], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        with open(os.path.join(self.root, "registry.log"), "rb") as f:
            raise RuntimeError(f"docker-registry did not start: {f.read()[-2000:]!r}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# -- comparing with the reference dockerd (tests/support/dockerd.py runs it) ------------------


def dockerd_layer_dirs(data_root: str, diff_ids: list[str]) -> list[str]:
    """dockerd's overlay2 diff directories for an image's layers (``RootFS.Layers``), bottom first."""
    out = []
    chain = ""
    for diff_id in diff_ids:
        chain = diff_id if not chain else sha256(f"{chain} {diff_id}".encode())
        with open(f"{data_root}/image/overlay2/layerdb/sha256/{chain.split(':')[1]}/cache-id") as f:
            out.append(f"{data_root}/overlay2/{f.read().strip()}/diff")
    return out


def tree(root: str) -> dict[str, tuple[Any, ...]]:
    """A comparable description of a directory: type, mode, owner, size, content hash,
    link target, device numbers, overlay xattrs; hardlinks as groups."""
    out: dict[str, tuple[Any, ...]] = {}
    inodes: dict[int, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            extra: Any = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                extra = (os.major(st.st_rdev), os.minor(st.st_rdev))
            try:
                xattrs = tuple(sorted(
                    (x, os.getxattr(path, x, follow_symlinks=False))
                    for x in os.listxattr(path, follow_symlinks=False) if "overlay" in x
                ))
            except OSError:
                xattrs = ()
            # directories change as entries land; whiteouts are made "now" by dockerd too
            mtime = int(st.st_mtime) if stat.S_ISREG(st.st_mode) else None
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                        st.st_size if stat.S_ISREG(st.st_mode) else None, extra, xattrs, mtime)
    for group in inodes.values():
        for rel in group:
            out[rel] = (*out[rel], tuple(sorted(group)))
    return out
