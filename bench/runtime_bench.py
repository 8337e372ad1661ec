"""Benchmark: the same busybox bundle run by dockyard-runtime, runc and crun, in turn.

    .venv/bin/python bench/runtime_bench.py [--runs 20] [--gap MS]

Each round runs ``<runtime> --root <tmp> run --bundle <bundle> <id>`` (command ``true``) once
per runtime, round-robin so machine noise hits all three alike, twice: back to back, and with
a pause before each run (``--gap``, default 50 ms). The pause matters on cgroup v1: the first
write of a pid into a ``cgroup.procs`` after a quiet spell waits for an RCU grace period
(~12 ms here), which runc and crun pay and dockyard-runtime does not (Cgroup.join_files);
back to back, a runtime often finds the lock still warm from the one before it. Medians and
ratios to runc are printed for both, then where dockyard-runtime's time goes: timestamps its
own processes log with ``DOCKYARD_RUNTIME_TRACE`` (runtime/trace.py), medians from the
moment the CLI process was spawned.

The whole benchmark runs in a private mount namespace where the cgroup2 hierarchy at
/sys/fs/cgroup/unified is unmounted: crun 1.8 refuses this machine's hybrid layout otherwise
(FIELD-NOTES.md). All three runtimes see the same namespace.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "src"))

from tests.support import busybox  # noqa: E402

from dockyard.linux import capabilities, libc, mountflags  # noqa: E402
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
    libc.mount(None, "/", None, mountflags.MS_REC | mountflags.MS_PRIVATE, None)
    if os.path.ismount("/sys/fs/cgroup/unified"):
        libc.umount2("/sys/fs/cgroup/unified", libc.MNT_DETACH)


def time_run(cmd: list[str]) -> float:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, check=False)
    elapsed = time.perf_counter() - t
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {res.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def breakdown(bundle: str, state: str, runs: int) -> list[tuple[str, float]]:
    """(event, median ms since the CLI was spawned) for dockyard-runtime's traced events."""
    offsets: dict[str, list[float]] = {}
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for i in range(runs):
        trace = os.path.join(state, f"trace-{i}")
        env["DOCKYARD_RUNTIME_TRACE"] = trace
        t0 = time.monotonic_ns()
        subprocess.run([DOCKYARD, "--root", state, "run", "--bundle", bundle, f"t{i}"],
                       env=env, capture_output=True, check=True)
        t1 = time.monotonic_ns()
        seen = set()
        with open(trace) as f:
            for line in f:
                _, ns, event = line.rstrip("\n").split(" ", 2)
                if event not in seen:
                    seen.add(event)
                    offsets.setdefault(event, []).append((int(ns) - t0) / 1e6)
        offsets.setdefault("(CLI exited)", []).append((t1 - t0) / 1e6)
    medians = [(event, statistics.median(v)) for event, v in offsets.items()]
    return sorted(medians, key=lambda em: em[1])


@contextlib.contextmanager
def busy_host() -> Iterator[None]:
    """A process that moves itself between two cgroups every 3 ms, as a host starting and
    stopping containers all the time does: the migration lock never goes cold, so nobody
    waits for its grace period (the case where runc and crun are at their fastest)."""
    code = ("import os, sys, time\n"
            "a, b = sys.argv[1:3]\n"
            "for d in (a, b): os.makedirs(d, exist_ok=True)\n"
            "print(flush=True)\n"
            "while True:\n"
            "    for d in (a, b):\n"
            "        with open(d + '/cgroup.procs', 'w') as f: f.write(str(os.getpid()))\n"
            "        time.sleep(0.003)\n")
    base = f"/sys/fs/cgroup/pids/dockyard-bench-{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-c", code, f"{base}/a", f"{base}/b"],
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        yield
    finally:
        proc.kill()
        proc.wait()
        for d in (f"{base}/a", f"{base}/b", base):
            with contextlib.suppress(OSError):
                os.rmdir(d)


def round_robin(runtimes: dict[str, str], bundle: str, base: str, runs: int,
                gap_ms: float, tag: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {n: [] for n in runtimes}
    for i in range(runs):
        for name, binary in runtimes.items():
            time.sleep(gap_ms / 1000)
            root = os.path.join(base, f"state-{name}")
            times[name].append(time_run([binary, "--root", root, "run", "--bundle", bundle,
                                         f"{tag}{i}"]))
    return times


def report(title: str, times: dict[str, list[float]]) -> None:
    ref = statistics.median(times["runc"]) if "runc" in times else None
    print(title)
    print(f"  {'runtime':<18} {'median ms':>10} {'min ms':>8} {'vs runc':>8}")
    for name, values in times.items():
        med = statistics.median(values)
        ratio = f"{med / ref:.2f}x" if ref else "-"
        print(f"  {name:<18} {med * 1000:>10.1f} {min(values) * 1000:>8.1f} {ratio:>8}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--gap", type=float, default=50.0, metavar="MS",
                    help="pause before each run of the second round (default 50)")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    # an installed package has its bytecode compiled (pip does it); PYTHONDONTWRITEBYTECODE
    # in this environment would otherwise make every run recompile every module
    import compileall

    compileall.compile_dir(os.path.join(REPO, "src", "dockyard"), quiet=1)
    base = tempfile.mkdtemp(prefix="dockyard-bench-")
    parents = [os.path.join(d, "dockyard") for d in glob.glob("/sys/fs/cgroup/*/")]
    made_parents = [p for p in parents if not os.path.isdir(p)]  # /dockyard: our default parent
    try:
        bundle = make_bundle(base)
        private_mount_ns()
        runtimes = {"dockyard-runtime": DOCKYARD}
        for name in ("runc", "crun"):
            if shutil.which(name):
                runtimes[name] = shutil.which(name) or name
            else:
                print(f"{name}: not installed, skipped")
        print(f"`run` of a busybox bundle (command: true), {opts.runs} runs each, round-robin")
        report("back to back:", round_robin(runtimes, bundle, base, opts.runs, 0, "b"))
        report(f"{opts.gap:g} ms apart:", round_robin(runtimes, bundle, base, opts.runs,
                                                     opts.gap, "g"))
        with busy_host():
            report(f"{opts.gap:g} ms apart, the lock kept warm by another process (a busy host):",
                   round_robin(runtimes, bundle, base, opts.runs, opts.gap, "w"))
        print("\nwhere dockyard-runtime's time goes (medians, ms since the CLI was spawned;"
              " `python -c pass` alone: "
              f"{statistics.median(time_run([sys.executable, '-c', 'pass']) for _ in range(9)) * 1000:.1f})")
        state = os.path.join(base, "state-trace")
        os.makedirs(state)
        previous = 0.0
        for event, ms in breakdown(bundle, state, max(9, opts.runs)):
            print(f"  {ms:7.2f}  +{ms - previous:5.2f}  {event}")
            previous = ms
    finally:
        shutil.rmtree(base, ignore_errors=True)
        for parent in made_parents:
            with contextlib.suppress(OSError):
                os.rmdir(parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
