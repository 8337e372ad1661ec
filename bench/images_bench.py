"""Image store benchmark: unpacking layers (``apply_layer``) against GNU tar, rebuilding the
exact layer tar, and preparing + mounting a container's root filesystem.

Two layer shapes: 100 MB in ten files of random data, and 20,000 files of 1 KiB in 100
directories. GNU ``tar -x`` is the floor (C, no hashing, no checks, no tar-split record).
Runs alternate between the tools so load from other processes hits both alike.

Run as root: ``.venv/bin/python bench/images_bench.py [--runs 3]``. Prints the best of
``--runs`` for each and the ratio to tar.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from dockyard.images import ImageStore
from dockyard.images.bootstrap import build_busybox_image


def make_big(path: str) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for i in range(10):
            data = os.urandom(10 << 20)
            info = tarfile.TarInfo(f"big/f{i}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def make_small(path: str) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for d in range(100):
            info = tarfile.TarInfo(f"d{d}")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)
            for i in range(200):
                data = os.urandom(1024)
                info = tarfile.TarInfo(f"d{d}/f{i}")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))


def time_ours(work: str, tar_path: str) -> tuple[float, float]:
    root = os.path.join(work, "store")
    shutil.rmtree(root, ignore_errors=True)
    store = ImageStore(root, driver="copy")
    t0 = time.perf_counter()
    with open(tar_path, "rb") as f:
        chain, _ = store.apply_layer(None, f)
    t1 = time.perf_counter()
    with open(os.devnull, "wb") as out:
        store.write_layer_tar(chain, out)  # type: ignore[arg-type]
    return t1 - t0, time.perf_counter() - t1


def time_tar(work: str, tar_path: str) -> float:
    dest = os.path.join(work, "tar")
    shutil.rmtree(dest, ignore_errors=True)
    os.mkdir(dest)
    t0 = time.perf_counter()
    subprocess.run(["tar", "-xf", tar_path, "-C", dest], check=True)
    return time.perf_counter() - t0


def time_rootfs(work: str) -> float:
    store = ImageStore(os.path.join(work, "rootfs-store"))
    image_id = build_busybox_image(store)
    t0 = time.perf_counter()
    store.prepare_rootfs("bench", image_id)
    store.mount_rootfs("bench")
    store.unmount_rootfs("bench")
    store.remove_rootfs("bench")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dy-images-bench-", dir="/var/tmp")
    try:
        for name, make in (("100MB/10 files", make_big), ("20k files of 1KiB", make_small)):
            path = os.path.join(work, "layer.tar")
            make(path)
            ours, rebuild, tar = [], [], []
            for _ in range(args.runs):
                a, r = time_ours(work, path)
                ours.append(a)
                rebuild.append(r)
                tar.append(time_tar(work, path))
            print(f"{name:>20}: apply_layer {min(ours):.3f}s  tar -x {min(tar):.3f}s  "
                  f"ratio {min(ours) / min(tar):.2f}x  exact tar rebuild {min(rebuild):.3f}s")
        rootfs = [time_rootfs(work) for _ in range(args.runs)]
        print(f"{'busybox rootfs':>20}: prepare+mount+unmount+remove {min(rootfs) * 1000:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
