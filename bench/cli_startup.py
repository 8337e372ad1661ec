"""CLI start-up: ``dockyard`` vs ``docker`` for commands that barely touch the daemon.

    .venv/bin/python bench/cli_startup.py [-n 30] [--host unix:///path/to/daemon.sock]

Prints medians (ms) of: ``--version`` (no daemon), ``ps`` against an unreachable socket
(argument parsing, client import, connect failure), and with ``--host``, ``ps`` and
``version`` and ``run --rm busybox true`` (needs a busybox image) against a live daemon;
the ratio is ours / docker's. Also lists the modules
that ``dockyard ps`` imports, as ``python -X importtime`` reports them (cumulative µs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

DOCKYARD = [os.path.join(os.path.dirname(sys.executable), "dockyard")]
DOCKER = ["docker"]


def median_ms(cmd: list[str], n: int, env: dict[str, str]) -> tuple[float, float]:
    """(median wall ms, median CPU ms): CPU time is what load on the machine cannot inflate."""
    import resource

    times, cpus = [], []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                       check=False)
        times.append((time.perf_counter() - t0) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return statistics.median(times), statistics.median(cpus)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=30)
    p.add_argument("--host", help="a live daemon's socket (unix://...)")
    ns = p.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure what users get: cached bytecode
    cases = [("--version", ["--version"], None),
             ("ps (no daemon)", ["-H", "unix:///nonexistent.sock", "ps"], None)]
    if ns.host:
        cases += [("ps", ["-H", ns.host, "ps"], None), ("version", ["-H", ns.host, "version"], None),
                  ("run --rm true", ["-H", ns.host, "run", "--rm", "busybox", "true"], None)]
    print(f"{'command':<18}{'dockyard wall/cpu ms':>22}{'docker wall/cpu ms':>20}{'ratio':>7}")
    for label, args, _ in cases:
        ours = median_ms([*DOCKYARD, *args], ns.n, env)
        theirs = median_ms([*DOCKER, *args], ns.n, env)
        print(f"{label:<18}{ours[0]:>13.1f} /{ours[1]:>6.1f}{theirs[0]:>12.1f} /{theirs[1]:>6.1f}"
              f"{ours[0] / theirs[0]:>7.2f}")
    bare = median_ms([sys.executable, "-c", "pass"], ns.n, env)
    print(f"{'python -c pass':<18}{bare[0]:>13.1f} /{bare[1]:>6.1f}")
    out = subprocess.run([sys.executable, "-X", "importtime", DOCKYARD[0], "-H",
                          "unix:///nonexistent.sock", "ps"], capture_output=True, text=True,
                         check=False).stderr
    rows = []
    for line in out.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cum, name = (part.strip() for part in line[12:].split("|"))
            if (cum.isdigit() and name.split(".")[0] == "dockyard") or name.strip() in (
                    "json", "socket", "argparse", "typing"):
                rows.append((int(cum), name.strip()))
    print("\nimports of `dockyard ps` (cumulative µs):")
    for cum, name in sorted(rows, reverse=True)[:12]:
        print(f"  {cum:>7}  {name}")


if __name__ == "__main__":
    main()
