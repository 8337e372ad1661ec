"""Registry benchmark: Dockyard's registry against Debian's Go registry (distribution 2.8).

Same clients for both servers:

- push: ``skopeo copy oci:<layout> docker://<server>/bench/pushN:latest`` of a one-layer
  image with a 100 MB random layer (a fresh layer every run, so no client cache or
  cross-repository mount can skip the upload);
- raw upload: the layer alone with curl as dockerd sends it (POST, one PATCH, PUT ?digest=),
  which leaves out skopeo's own work;
- GET: ``curl -o /dev/null`` of that 100 MB blob, one at a time and 4 in parallel
  (aggregate MB/s).

Run: ``.venv/bin/python bench/registry_bench.py [--size-mb 100] [--runs 3]``.
Prints one line per measurement and the ratios (ours / Go; > 1 means we are faster).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

GO_REGISTRY = "/usr/bin/docker-registry"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen")


@contextmanager
def go_registry(root: str) -> Iterator[str]:
    port = _free_port()
    config = os.path.join(root, "config.yml")
    with open(config, "w") as f:
        f.write(f"version: 0.1\nlog: {{level: error, accesslog: {{disabled: true}}}}\n"
                f"storage: {{filesystem: {{rootdirectory: {root}/data}}, delete: {{enabled: true}}}}\n"
                f"http: {{addr: 127.0.0.1:{port}}}\n")
    proc = subprocess.Popen([GO_REGISTRY, "serve", config], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


@contextmanager
def dockyard_registry(root: str, workers: int = 1) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry", "serve", "--listen",
                             f"127.0.0.1:{port}", "--root", f"{root}/data",
                             "--workers", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layout(dest: str, size: int) -> str:
    """A one-layer OCI layout with ``size`` random bytes; returns the layer digest."""
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(f"{dest}/blobs/sha256")
    raw = os.urandom(size)
    # a real gzip stream (level 0: stored blocks, fast) so skopeo does not recompress it
    layer = gzip.compress(raw, compresslevel=0, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [_sha(raw)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha(layer), "size": len(layer)}]}).encode()
    for data in (layer, config, manifest):
        with open(f"{dest}/blobs/sha256/{_sha(data)[7:]}", "wb") as f:
            f.write(data)
    with open(f"{dest}/oci-layout", "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(f"{dest}/index.json", "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": _sha(manifest), "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    return _sha(layer)


def time_push(host: str, layout: str, repo: str) -> float:
    start = time.perf_counter()
    subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:latest",
                    f"docker://{host}/{repo}:latest"], check=True, capture_output=True)
    return time.perf_counter() - start


def time_raw_upload(host: str, path: str, repo: str, digest: str) -> float:
    """POST, one PATCH with the whole file, PUT ?digest= (what dockerd does), with curl."""
    base = f"http://{host}"

    def location(args: list[str]) -> str:
        out = subprocess.run(["curl", "-sf", "-D", "-", "-o", "/dev/null", *args], check=True,
                             capture_output=True, text=True).stdout
        loc = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                   if line.lower().startswith("location:"))
        return loc if loc.startswith("http") else base + loc

    start = time.perf_counter()
    loc = location(["-X", "POST", f"{base}/v2/{repo}/blobs/uploads/"])
    loc = location(["-X", "PATCH", "-H", "Content-Type: application/octet-stream",
                    "--data-binary", f"@{path}", loc])
    sep = "&" if "?" in loc else "?"
    subprocess.run(["curl", "-sf", "-o", "/dev/null", "-X", "PUT", f"{loc}{sep}digest={digest}"],
                   check=True)
    return time.perf_counter() - start


def get_throughput(host: str, repo: str, digest: str, size: int, parallel: int) -> float:
    """MB/s over ``parallel`` simultaneous plain HTTP GETs of one blob."""
    url = f"http://{host}/v2/{repo}/blobs/{digest}"
    start = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sf", "-o", "/dev/null", url]) for _ in range(parallel)]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError(f"GET {url} failed")
    return parallel * size / (time.perf_counter() - start) / 1e6


def measure(name: str, server: Callable[[str], object], work: str, size: int, runs: int
            ) -> dict[str, float]:
    root = tempfile.mkdtemp(prefix=f"{name}-", dir=work)
    pushes, uploads, single, quad = [], [], [], []
    with server(root) as host:  # type: ignore[attr-defined]
        for run in range(runs):
            layout = f"{work}/layout-{name}-{run}"
            digest = make_layout(layout, size)
            os.sync()  # no leftover writeback from making the layout skews the timing
            pushes.append(time_push(host, layout, f"bench/push{run}"))
            os.sync()
            uploads.append(time_raw_upload(host, f"{layout}/blobs/sha256/{digest[7:]}",
                                           f"bench/raw{run}", digest))
            shutil.rmtree(layout)
            get_throughput(host, f"bench/push{run}", digest, size, 1)  # warm the page cache
            single.append(get_throughput(host, f"bench/push{run}", digest, size, 1))
            quad.append(get_throughput(host, f"bench/push{run}", digest, size, 4))
    shutil.rmtree(root, ignore_errors=True)
    result = {"push_s": statistics.median(pushes), "upload_s": statistics.median(uploads),
              "get_mb_s": statistics.median(single),
              "get4_mb_s": statistics.median(quad)}
    print(f"{name:>14}: push {result['push_s']:.2f} s   raw upload {result['upload_s']:.2f} s   GET {result['get_mb_s']:.0f} MB/s   "
          f"4x GET {result['get4_mb_s']:.0f} MB/s", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    for tool in (GO_REGISTRY, "skopeo", "curl"):
        if shutil.which(tool) is None:
            print(f"registry bench: {tool} is not installed (make test-system-deps)")
            return 1
    size = args.size_mb * 1_000_000
    work = tempfile.mkdtemp(prefix="dy-registry-bench-", dir="/var/tmp")
    try:
        go = measure("go-registry", go_registry, work, size, args.runs)
        ours = measure("dockyard", dockyard_registry, work, size, args.runs)
        ours2 = measure("dockyard x2", lambda r: dockyard_registry(r, workers=2), work, size,
                        args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"ratios (dockyard / go; >1 = dockyard faster): "
          f"push {go['push_s'] / ours['push_s']:.2f}, "
          f"raw upload {go['upload_s'] / ours['upload_s']:.2f}, GET {ours['get_mb_s'] / go['get_mb_s']:.2f}, "
          f"4x GET {ours['get4_mb_s'] / go['get4_mb_s']:.2f}; with 2 workers: "
          f"push {go['push_s'] / ours2['push_s']:.2f}, "
          f"4x GET {ours2['get4_mb_s'] / go['get4_mb_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
