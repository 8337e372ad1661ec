"""Fixtures for driving real clients (skopeo, the reference dockerd) against our registry.

``served_registry`` runs ``python -m dockyard.registry serve`` as a process on a free port;
``private_dockerd`` starts Debian's dockerd 20.10 with its own data root, exec root, pid file
and socket, no bridge and no iptables rules, so it never clashes with another dockerd.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.support import busybox
from tests.unit.registry.harness import Image, make_image, write_oci_layout


@dataclass
class Served:
    url: str
    host: str
    root: str
    proc: subprocess.Popen[str]


def start_registry(root: str, *extra: str) -> Served:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockyard.registry", "serve", "--listen", "127.0.0.1:0",
         "--root", root, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"registry did not start: {line}{proc.stdout.read()}")
    url = line.split()[-1]
    return Served(url, url.split("://")[1], root, proc)


def stop_registry(served: Served) -> None:
    served.proc.send_signal(signal.SIGTERM)
    try:
        served.proc.wait(10)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.proc.wait()
    if served.proc.stdout:
        served.proc.stdout.close()


@pytest.fixture
def served_registry(tmp_path: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_registry(f"{tmp_path}/root")
    yield served
    stop_registry(served)


@pytest.fixture(scope="session")
def busybox_image(busybox_rootfs: str) -> Image:
    layer = gzip.compress(busybox.layer_tar_bytes(busybox_rootfs), compresslevel=1, mtime=0)
    return make_image([layer])


@pytest.fixture(scope="session")
def busybox_layout(busybox_image: Image, tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_oci_layout(str(tmp_path_factory.mktemp("layout") / "busybox"), busybox_image)


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (make test-system-deps)")


@dataclass
class Dockerd:
    socket: str
    config_dir: str

    def run(self, *args: str, check: bool = True, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_CONFIG": self.config_dir}
        env.pop("DOCKER_HOST", None)
        return subprocess.run(["docker", "-H", f"unix://{self.socket}", *args], env=env,
                              capture_output=True, text=True, check=check, input=input,
                              timeout=120)


def _stop_dockerd(proc: subprocess.Popen[bytes], base: str) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if f" {base}/" in f" {line.split()[1]}/"]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def private_dockerd(busybox_layout: str) -> Iterator[Callable[[], Dockerd]]:
    """A factory so only the tests that need dockerd pay for starting it."""
    started: list[tuple[subprocess.Popen[bytes], str, Dockerd]] = []

    def get() -> Dockerd:
        if started:
            return started[0][2]
        need("dockerd")
        need("docker")
        need("skopeo")
        if os.geteuid() != 0:
            pytest.skip("dockerd needs root")
        base = tempfile.mkdtemp(prefix="dy-reg-dockerd-", dir="/var/tmp")
        sock = f"{base}/d.sock"
        log = open(f"{base}/dockerd.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            ["dockerd", "--data-root", f"{base}/data", "--exec-root", f"{base}/exec",
             "--pidfile", f"{base}/d.pid", "-H", f"unix://{sock}", "--bridge=none",
             "--iptables=false", "--ip-masq=false", "--storage-driver=vfs"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        daemon = Dockerd(sock, f"{base}/cli")
        os.makedirs(daemon.config_dir)
        started.append((proc, base, daemon))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(sock) and daemon.run("version", check=False).returncode == 0:
                break
            time.sleep(0.2)
        else:
            with open(f"{base}/dockerd.log") as f:
                tail = f.read()[-800:]
            pytest.skip(f"dockerd did not start here: {tail}")
        archive = f"{base}/busybox.tar"
        subprocess.run(["skopeo", "copy", f"oci:{busybox_layout}:latest",
                        f"docker-archive:{archive}:busybox:latest"], check=True,
                       capture_output=True)
        daemon.run("load", "-i", archive)
        return daemon

    yield get
    for proc, base, _ in started:
        _stop_dockerd(proc, base)
