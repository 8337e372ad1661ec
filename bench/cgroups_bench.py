"""Benchmark: dockyard.cgroups on the CLI path, each round in a fresh interpreter (root only).

    .venv/bin/python bench/cgroups_bench.py [--runs 30] [--mode v1|hybrid|v2] [--src DIR]

Each round starts ``python -c`` (the same interpreter), which times, in order: ``import
dockyard.cgroups``, ``open_cgroup("/dockyard-bench-<pid>")``, ``create()``, ``set()`` with the
default spec's resources (devices deny-all, as ``dockyard-runtime spec`` writes),
``apply(pid)`` of a forked sleeper, ``kill_all()`` of it (non-empty: freeze, kill, thaw),
then what ``delete`` does once the container is gone: a second ``open_cgroup``, ``exists()``,
``kill_all()`` of the now empty cgroup and ``destroy()``. Medians in ms are printed.

``apply`` includes the kernel's cgroup-migration grace period (5-15 ms for the first write
after a quiet spell; the runtime overlaps it with its imports), so it is shown apart and left
out of the total.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import os, sys, time
p = time.perf_counter
t0 = p()
import dockyard.cgroups as dc
t1 = p()
path = "/dockyard-bench-%d" % os.getpid()
mode = sys.argv[1] or None
cg = dc.open_cgroup(path, mode=mode)
t2 = p()
cg.create()
t3 = p()
cg.set({"devices": [{"allow": False, "access": "rwm"}]})
t4 = p()
pid = os.fork()
if pid == 0:
    time.sleep(60)
    os._exit(0)
t5 = p()
cg.apply(pid)
t6 = p()
cg.kill_all(9)
t7 = p()
os.waitpid(pid, 0)
t8 = p()
cg2 = dc.open_cgroup(path, mode=mode)
ex = cg2.exists()
cg2.kill_all(9)
cg2.destroy()
t9 = p()
assert ex and not cg2.exists()
ms = lambda a, b: (b - a) * 1000
print({"import": ms(t0, t1), "open_cgroup": ms(t1, t2), "create": ms(t2, t3), "set": ms(t3, t4),
       "apply": ms(t5, t6), "kill_all (1 task)": ms(t6, t7), "delete path": ms(t8, t9)})
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--mode", default="", help="force a mode (default: detect)")
    ap.add_argument("--src", default=os.path.join(REPO, "src"),
                    help="the dockyard sources to time (e.g. an older checkout's src)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("root needed")
    env = dict(os.environ, PYTHONPATH=args.src)
    samples: dict[str, list[float]] = {}
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", CHILD, args.mode], env=env, check=True,
                             capture_output=True, text=True).stdout
        for key, value in json.loads(out.replace("'", '"')).items():
            samples.setdefault(key, []).append(value)
    total = 0.0
    for key, values in samples.items():
        med = statistics.median(values)
        if key != "apply":
            total += med
        print(f"{key:20s} {med:7.3f} ms   (min {min(values):.3f})")
    print(f"{'total (w/o apply)':20s} {total:7.3f} ms")


if __name__ == "__main__":
    main()
