"""Our daemon and the reference dockerd, each in a private network namespace, driven by the
real docker CLI.

Each daemon runs under ``nsenter --net=<netns>`` (network namespace only: it shares the host's
mounts and cgroups), so its bridge, NAT rules, iptables FORWARD policy and published ports live
in that namespace and nothing reaches or changes the real host's network. Checks that need the
"host" side (a published port on 127.0.0.1) run there too. Traffic stays inside namespaces the
tests created.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.interop.cli.conftest import busybox_archive

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@dataclass
class Daemon:
    kind: str
    netns: str
    sock: str
    home: str
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        with open(os.path.join(self.home, "log"), "a") as log:
            self.proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{self.netns}", *self.argv],
                                         stdout=log, stderr=log, env=self.env,
                                         start_new_session=True)
        # the reference dockerd not coming up here is an environment matter (skip); ours is a failure
        give_up = pytest.skip if self.kind == "reference" else pytest.fail
        for _ in range(300):
            if self.docker("version").returncode == 0:
                return
            if self.proc.poll() is not None:
                with open(os.path.join(self.home, "log")) as f:
                    give_up(f"{self.kind} daemon exited: {f.read()[-800:]}")
            time.sleep(0.2)
        give_up(f"{self.kind} daemon did not answer within 60 s")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.launch()

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": f"unix://{self.sock}", "HOME": self.home}
        return subprocess.run(["docker", *args], capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)

    def ok(self, *args: str) -> str:
        proc = self.docker(*args)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout.strip()

    def on_host(self, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """Run a command in the daemon's "host" (its private network namespace)."""
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", *argv],
                              capture_output=True, text=True, timeout=timeout, check=False)


def _unmount_under(path: str) -> None:
    """Unmount what a daemon left below ``path`` (dockerd's netns/default, overlays), deepest first."""
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(path + "/")]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _start(kind: str) -> Iterator[Daemon]:
    from pyroute2 import netns

    if os.geteuid() != 0:
        pytest.skip("needs root")
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    tag = uuid.uuid4().hex[:6]
    work = tempfile.mkdtemp(prefix=f"dyn-{kind[:3]}-", dir="/tmp")
    name = f"dyt-{tag}-{kind[:3]}"
    netns.create(name)
    sock = os.path.join(work, "d.sock")
    if kind == "reference":
        if shutil.which("dockerd") is None:
            pytest.skip("dockerd is not installed")
        cmd = ["dockerd", "--data-root", f"{work}/data", "--exec-root", f"{work}/x",
               "--pidfile", f"{work}/pid", "-H", f"unix://{sock}", "--bip", "172.30.9.1/24"]
        env = {**os.environ, "TMPDIR": work}  # containerd dumps stacks into $TMPDIR when dockerd's health check restarts it
    else:
        with open(f"{work}/daemon.json", "w") as f:
            f.write('{"bip": "172.30.9.1/24"}')
        cmd = [sys.executable, "-m", "dockyard.daemon", "--data-root", f"{work}/data",
               "--exec-root", f"{work}/x", "--pidfile", f"{work}/pid", "-H", f"unix://{sock}",
               "--config-file", f"{work}/daemon.json"]
        env = {**os.environ, "PYTHONPATH": os.path.join(REPO, "src")}
    daemon = Daemon(kind, name, sock, work, cmd, env)
    try:
        subprocess.run(["nsenter", f"--net=/run/netns/{name}", "ip", "link", "set", "lo", "up"],
                       check=True)
        daemon.launch()
        with open(os.path.join(work, "bb.tar"), "wb") as f:
            f.write(busybox_archive())
        daemon.ok("load", "-i", os.path.join(work, "bb.tar"))
        yield daemon
    finally:
        ids = daemon.docker("ps", "-aq").stdout.split()
        if ids:
            daemon.docker("rm", "-f", *ids)
        daemon.docker("network", "prune", "-f")
        daemon.stop()
        _unmount_under(work)
        netns.remove(name)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module", params=["dockyard", "reference"])
def daemon(request: pytest.FixtureRequest) -> Iterator[Daemon]:
    """Every check runs against our daemon and against dockerd 20.10."""
    yield from _start(request.param)
