"""A private reference dockerd for interop tests, started by hand and removed afterwards.

Own data root, exec root, pid file and socket under a temp dir; no bridge, no iptables rules,
so it never clashes with another dockerd (a user's, or another test's). Skips with the reason
when dockerd is missing, we are not root, or it does not come up.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


@dataclass
class PrivateDockerd:
    base: str
    socket: str
    config_dir: str  # DOCKER_CONFIG for the CLI: logins never touch ~/.docker

    def run(self, *args: str, check: bool = True, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_CONFIG": self.config_dir}
        env.pop("DOCKER_HOST", None)
        out = subprocess.run(["docker", "-H", f"unix://{self.socket}", *args], env=env,
                             capture_output=True, text=True, input=input, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {out.stderr}")
        return out


@contextmanager
def private_dockerd(prefix: str, *extra: str) -> Iterator[PrivateDockerd]:
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        pytest.skip("dockerd or the docker CLI is not installed (make test-system-deps)")
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    base = tempfile.mkdtemp(prefix=prefix, dir="/var/tmp")
    daemon = PrivateDockerd(base, f"{base}/d.sock", f"{base}/cli")
    os.makedirs(daemon.config_dir)
    with open(f"{base}/dockerd.log", "wb") as log:
        proc = subprocess.Popen(
            ["dockerd", "--data-root", f"{base}/data", "--exec-root", f"{base}/exec",
             "--pidfile", f"{base}/d.pid", "-H", f"unix://{daemon.socket}", "--bridge=none",
             "--iptables=false", "--ip-masq=false", *extra],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "TMPDIR": base})  # containerd dumps stacks into $TMPDIR when dockerd's health check restarts it
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(daemon.socket) and daemon.run("version", check=False).returncode == 0:
                break
            time.sleep(0.2)
        else:
            with open(f"{base}/dockerd.log") as f:
                pytest.skip(f"dockerd did not start here: {f.read()[-800:]}")
        yield daemon
    finally:
        _stop(proc, base)


def _stop(proc: subprocess.Popen[bytes], base: str) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[1].startswith(base + "/")]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)
