"""Benchmark: the same busybox bundle run by dockyard-runtime, runc and crun, in turn.

    .venv/bin/python bench/runtime_bench.py [--runs 20] [--gap MS]

Each round runs ``<runtime> --root <tmp> run --bundle <bundle> <id>`` (command ``true``) once
per runtime, round-robin so machine noise hits all three alike; medians and ratios to runc
are printed, then where dockyard-runtime's time goes (interpreter start, imports, create,
start, wait, delete — measured in-process with the same bundle).

The whole benchmark runs in a private mount namespace where the cgroup2 hierarchy at
/sys/fs/cgroup/unified is unmounted: crun 1.8 refuses this machine's hybrid layout otherwise
(FIELD-NOTES.md). All three runtimes see the same namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "src"))

from tests.support import busybox  # noqa: E402

from dockyard.linux import capabilities, libc  # noqa: E402
from dockyard.oci.runtime_spec import default_spec  # noqa: E402

DOCKYARD = os.environ.get("DOCKYARD_RUNTIME") or os.path.join(os.path.dirname(sys.executable), "dockyard-runtime")


def make_bundle(base: str) -> str:
    bundle = os.path.join(base, "bundle")
    busybox.make_rootfs(os.path.join(bundle, "rootfs"))
    spec = default_spec()
    proc = spec["process"]
    proc.update(terminal=False, args=["true"])
    del proc["rlimits"]
    caps = sorted(capabilities.DEFAULT_CAPS)
    proc["capabilities"] = {s: caps for s in ("bounding", "effective", "permitted")}
    spec["root"]["readonly"] = False
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    return bundle


def private_mount_ns() -> None:
    libc.unshare(libc.CLONE_NEWNS)
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE, None)
    if os.path.ismount("/sys/fs/cgroup/unified"):
        libc.umount2("/sys/fs/cgroup/unified", libc.MNT_DETACH)


def time_run(cmd: list[str]) -> float:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, check=False)
    elapsed = time.perf_counter() - t
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {res.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def breakdown(bundle: str, state: str, runs: int) -> dict[str, float]:
    """dockyard-runtime's phases (ms, medians over ``runs``)."""
    py = sys.executable
    phases: dict[str, list[float]] = {k: [] for k in (
        "interpreter start", "CLI imports", "create", "start", "wait for exit", "delete")}
    probe = ("import time,os,sys;t=time.perf_counter();"
             "import dockyard.runtime.cli, dockyard.runtime.runtime, dockyard.runtime.create,"
             "dockyard.runtime.start, dockyard.runtime.delete, dockyard.cgroups;"
             "print(time.perf_counter()-t)")
    for _ in range(runs):
        phases["interpreter start"].append(time_run([py, "-c", "pass"]) * 1000)
        out = subprocess.run([py, "-c", probe], capture_output=True, text=True, check=True)
        phases["CLI imports"].append(float(out.stdout) * 1000)
    from dockyard.runtime import Runtime

    libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
    rt = Runtime(state)
    for i in range(runs):
        cid = f"bd{i}"
        t0 = time.perf_counter()
        pid = rt.create(cid, bundle)
        t1 = time.perf_counter()
        rt.start(cid)
        t2 = time.perf_counter()
        os.waitpid(pid, 0)
        t3 = time.perf_counter()
        rt.delete(cid)
        t4 = time.perf_counter()
        for name, a, b in (("create", t0, t1), ("start", t1, t2), ("wait for exit", t2, t3),
                           ("delete", t3, t4)):
            phases[name].append((b - a) * 1000)
    return {k: statistics.median(v) for k, v in phases.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--gap", type=float, default=0.0, metavar="MS",
                    help="pause before each run, so none starts while the cgroup lock is still "
                         "warm from the previous one (docs/runtime.md, Performance)")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    # an installed package has its bytecode compiled (pip does it); PYTHONDONTWRITEBYTECODE
    # in this environment would otherwise make every run recompile every module
    import compileall

    compileall.compile_dir(os.path.join(REPO, "src", "dockyard"), quiet=1)
    base = tempfile.mkdtemp(prefix="dockyard-bench-")
    try:
        bundle = make_bundle(base)
        private_mount_ns()
        runtimes = {"dockyard-runtime": DOCKYARD}
        for name in ("runc", "crun"):
            if shutil.which(name):
                runtimes[name] = shutil.which(name) or name
            else:
                print(f"{name}: not installed, skipped")
        times: dict[str, list[float]] = {n: [] for n in runtimes}
        for i in range(opts.runs):
            for name, binary in runtimes.items():
                time.sleep(opts.gap / 1000)
                root = os.path.join(base, f"state-{name}")
                times[name].append(time_run([binary, "--root", root, "run", "--bundle", bundle,
                                             f"b{i}"]))
        ref = statistics.median(times["runc"]) if "runc" in times else None
        print(f"`run` of a busybox bundle (command: true), {opts.runs} runs each, round-robin")
        print(f"{'runtime':<18} {'median ms':>10} {'min ms':>8} {'vs runc':>8}")
        for name, values in times.items():
            med = statistics.median(values)
            ratio = f"{med / ref:.2f}x" if ref else "-"
            print(f"{name:<18} {med * 1000:>10.1f} {min(values) * 1000:>8.1f} {ratio:>8}")
        print("\nwhere dockyard-runtime's time goes (medians, ms):")
        for phase, ms in breakdown(bundle, os.path.join(base, "state-lib"),
                                   max(5, opts.runs // 2)).items():
            print(f"  {phase:<18} {ms:7.1f}")
        print("  (create = validate + fork + cgroup + namespaces + mounts + caps, until the init"
              " waits on exec.fifo)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
