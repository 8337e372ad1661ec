"""Run every benchmark in turn: `make bench` (or `python -m bench [name ...]`).

Each benchmark compares Dockyard with the reference tool side by side in one run and prints
ratios; absolute times on a shared VM mean little. Names: runtime, engine, network, pull,
registry, images, cli_startup.
"""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ["cli_startup", "runtime", "engine", "network", "pull", "registry", "images"]


def main(argv: list[str]) -> int:
    names = argv or ORDER
    failed = []
    for name in names:
        script = os.path.join(HERE, f"{name}_bench.py" if name != "cli_startup" else "cli_startup.py")
        print(f"\n===== bench: {name} =====", flush=True)
        if subprocess.run([sys.executable, script]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
