"""Engine benchmark: `run --rm busybox true` end to end, memory per container, 20 parallel starts.

Three set-ups, measured in turn (interleaved, so drift hits all alike):

    ours       dockyard CLI  -> Dockyard daemon
    docker+dy  docker CLI    -> Dockyard daemon
    reference  docker CLI    -> dockerd + containerd + runc   (when dockerd is installed)

Each on a private socket and data root; the busybox image is made from /bin/busybox and, for
dockerd, moved over with save | load. Prints medians and ratios, then RSS/PSS of each daemon
and of each per-container monitor (ours) vs containerd-shim-runc-v2 with N running containers.

    sudo .venv/bin/python bench/engine_bench.py [--runs 15] [--containers 10]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "src"))

from tests.support.engine_daemon import DOCKER, EngineDaemon, ReferenceDockerd  # noqa: E402

DOCKYARD = os.path.join(REPO, ".venv", "bin", "dockyard")


def mem(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB from /proc/<pid>/smaps_rollup."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def children_named(name: str) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().strip() == name:
                        out.append(int(p))
            except OSError:
                continue
    return out


def _cmdline_has(pid: int, text: str) -> bool:
    """Only the reference's shims: their -address lies under its private root."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return text.encode() in f.read()
    except OSError:
        return False


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _median(values: list[tuple[int, int]]) -> tuple[int, int]:
    return int(statistics.median(v[0] for v in values)), int(statistics.median(v[1] for v in values))


def _line(what: str, rp: tuple[int, int]) -> str:
    return f"    {what:36s} RSS {rp[0]:7d}  PSS {rp[1]:7d}"


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, env=env, check=False)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {p.stderr.decode()}")
    return dt


def parallel(cli: list[str], n: int, env: dict[str, str]) -> float:
    def one(_: int) -> str:
        return subprocess.run([*cli, "run", "-d", "--network", "none", "busybox", "sleep", "60"],
                              capture_output=True, check=True, env=env).stdout.decode().strip()

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        ids = list(pool.map(one, range(n)))
    subprocess.run([*cli, "rm", "-f", *ids], capture_output=True, check=True, env=env)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--containers", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    ours = EngineDaemon()
    ref: ReferenceDockerd | None = None
    ref_name = "reference (docker CLI -> dockerd)"
    results: dict[str, dict[str, list[float]]] = {}
    par: dict[str, float] = {}
    memory: list[str] = []
    try:
        ours.start()
        ours.load_busybox()
        env = dict(os.environ, DOCKYARD_HOST=ours.host)
        setups: dict[str, list[str]] = {}
        if shutil.which("dockerd"):
            # the reference runs first, in a block: our `--network none` containers were seen to
            # take the host's docker0 away (a network-service bug under investigation)
            ref = ReferenceDockerd(bridge=True)
            ref.start()
            ref.docker("load", input=ours.docker("save", "busybox").stdout)
            setups[ref_name] = [DOCKER, "-H", ref.host]
        setups["ours (dockyard CLI -> dockyard)"] = [DOCKYARD]
        setups["docker CLI -> dockyard"] = [DOCKER, "-H", ours.host]
        for name, cli in setups.items():
            try:
                timed([*cli, "run", "--rm", "busybox", "true"], env)  # warm-up
                runs: dict[str, list[float]] = {"default": [], "none": []}
                for _ in range(args.runs):
                    runs["default"].append(timed([*cli, "run", "--rm", "busybox", "true"], env))
                    runs["none"].append(timed([*cli, "run", "--rm", "--network", "none", "busybox", "true"], env))
                results[name] = runs
                par[name] = parallel(cli, 20, env)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                print(f"{name}: failed, left out: {str(exc).strip()[:300]}", file=sys.stderr)
            if name == ref_name and ref is not None and ref.proc is not None:
                for _ in range(args.containers):
                    ref.docker("run", "-d", "busybox", "sleep", "300")
                time.sleep(1)
                memory.append(_line("dockerd", mem(ref.proc.pid)))
                for cpid in children_named("containerd"):
                    if _ppid(cpid) == ref.proc.pid:
                        memory.append(_line("containerd", mem(cpid)))
                shims = [m for m in (mem(p) for p in children_named("containerd-shim") if _cmdline_has(p, ref.root))
                         if m[0] > 0]
                if shims:
                    memory.append(_line(f"containerd-shim (median of {len(shims)})", _median(shims)))
                ref.stop()
                ref = None
        for _ in range(args.containers):
            ours.docker("run", "-d", "--network", "none", "busybox", "sleep", "300")
        time.sleep(1)
        assert ours.proc is not None
        memory.append(_line("dockyard daemon", mem(ours.proc.pid)))
        mons = []
        cdir = os.path.join(ours.exec_root, "containers")
        for cid in os.listdir(cdir):
            with contextlib.suppress(OSError, ValueError), open(os.path.join(cdir, cid, "monitor.json")) as f:
                mons.append(mem(int(json.load(f)["monitor_pid"])))
        if mons:
            memory.append(_line(f"dockyard monitor (median of {len(mons)})", _median(mons)))
    finally:
        ours.cleanup()
        if ref is not None:
            ref.stop()
    print(f"\n`run --rm busybox true`, median of {args.runs} (seconds)")
    for mode in ("default", "none"):
        print(f"  network {mode}:")
        for name, res in results.items():
            med = statistics.median(res[mode])
            ratio = ""
            if ref_name in results and name != ref_name:
                ratio = f"   {med / statistics.median(results[ref_name][mode]):.2f}x the reference"
            print(f"    {name:40s} {med:.3f}{ratio}")
    print("\nstart + remove 20 containers in parallel (seconds)")
    for name, t in par.items():
        ratio = f"   {t / par[ref_name]:.2f}x the reference" if ref_name in par and name != ref_name else ""
        print(f"    {name:40s} {t:.3f}{ratio}")
    print(f"\nmemory with {args.containers} running containers (KiB)")
    for line in memory:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
