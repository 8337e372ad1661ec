"""Pull and push benchmark: a 100 MB (random data) image from a local registry.

Pull: Dockyard's client into a fresh store, against ``skopeo copy`` to a directory and the
reference dockerd 20.10 (a private instance, if it starts); every tool pulls the same image
from the same Go registry (``docker-registry``) on 127.0.0.1. Push: Dockyard (compress with
igzip level 1 + upload, then again with the compressed blob remembered) against dockerd.

Run as root: ``.venv/bin/python bench/pull_bench.py [--mb 100] [--runs 3] [--no-docker]``.
Prints the best of ``--runs`` for each and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tests.support import registries as r

from dockyard.distribution import RegistrySettings, pull, push
from dockyard.images.store import ImageStore


def best(times: list[float]) -> float:
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-docker", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dypb-", dir="/tmp")
    reg = r.GoRegistry(os.path.join(work, "reg")).start()
    settings = RegistrySettings()
    try:
        tar = r.layer_tar([r.file("big", os.urandom(args.mb << 20))])
        img = r.TestImage([tar])
        r.upload(reg.url, "bench/big", "1", img)
        ref = f"{reg.host}/bench/big:1"
        print(f"image: {args.mb} MB random data, one layer ({len(img.layers[0].data) / 1e6:.1f} MB gzip)")

        ours: list[float] = []
        for i in range(args.runs):
            store = ImageStore(os.path.join(work, f"store{i}"))
            t = time.perf_counter()
            asyncio.run(pull(store, ref, settings=settings))
            ours.append(time.perf_counter() - t)
        print(f"dockyard pull            {best(ours):6.2f} s")

        sk: list[float] = []
        if shutil.which("skopeo"):
            for i in range(args.runs):
                dest = os.path.join(work, f"skopeo{i}")
                t = time.perf_counter()
                subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{dest}"],
                               check=True, capture_output=True)
                sk.append(time.perf_counter() - t)
            print(f"skopeo copy to dir       {best(sk):6.2f} s   (dockyard/skopeo {best(ours) / best(sk):.2f}x)")

        # push to a registry that has nothing: first from a store that never compressed the
        # layer (compress + upload), then again to another empty registry (the stored blob)
        first: list[float] = []
        again: list[float] = []
        for i in range(args.runs):
            store = ImageStore(os.path.join(work, f"store{i}"))
            for bucket in (first, again):
                target_reg = r.GoRegistry(os.path.join(work, f"push{i}-{len(bucket)}")).start()
                try:
                    target = f"{target_reg.host}/bench/big:1"
                    store.tag(img.image_id, target)
                    t = time.perf_counter()
                    asyncio.run(push(store, target, settings=settings))
                    bucket.append(time.perf_counter() - t)
                finally:
                    target_reg.cleanup()
        print(f"dockyard push            {best(first):6.2f} s   (compressing; the remembered blob: {best(again):.2f} s)")
        pushes = first

        if not args.no_docker:
            bench_docker(work, ref, args.runs, best(ours), best(pushes))
    finally:
        reg.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def bench_docker(work: str, ref: str, runs: int, ours: float, our_push: float) -> None:
    import pytest
    from tests.support.dockerd import private_dockerd

    try:
        with private_dockerd("dypd-") as d:
            times = []
            for _ in range(runs):
                d.run("rmi", "-f", ref, check=False)
                d.run("image", "prune", "-af", check=False)
                t = time.perf_counter()
                d.run("pull", ref)
                times.append(time.perf_counter() - t)
            print(f"dockerd 20.10 pull       {best(times):6.2f} s   (dockyard/dockerd {ours / best(times):.2f}x)")
            pushes = []
            for i in range(runs):
                # an empty registry each time: nothing to mount, nothing already there
                target_reg = r.GoRegistry(os.path.join(work, f"dpush{i}")).start()
                try:
                    tag = f"{target_reg.host}/bench/big:1"
                    d.run("tag", ref, tag)
                    t = time.perf_counter()
                    d.run("push", tag)
                    pushes.append(time.perf_counter() - t)
                finally:
                    target_reg.cleanup()
            print(f"dockerd 20.10 push       {best(pushes):6.2f} s   (dockyard/dockerd {our_push / best(pushes):.2f}x)")
    except pytest.skip.Exception as exc:  # the helper skips when dockerd cannot run here
        print(f"dockerd not measured: {exc}")


if __name__ == "__main__":
    main()
