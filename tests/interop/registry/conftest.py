"""Fixtures for driving real clients (skopeo, the reference dockerd) against our registry.

``served_registry`` runs ``python -m dockyard.registry serve`` as a process on a free port;
``private_dockerd`` gives a private reference dockerd (tests/support/dockerd.py) with
busybox:latest loaded.
"""

from __future__ import annotations

import gzip
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from tests.support import busybox
from tests.support import dockerd as support_dockerd
from tests.support.dockerd import PrivateDockerd
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


@pytest.fixture(scope="session")
def private_dockerd(busybox_layout: str) -> Iterator[Callable[[], PrivateDockerd]]:
    """A factory, so only the tests that need dockerd pay for starting it (once per worker;
    the dockerd tests share an xdist group). The daemon has busybox:latest loaded."""
    with ExitStack() as stack:
        started: list[PrivateDockerd] = []

        def get() -> PrivateDockerd:
            if not started:
                need("skopeo")
                daemon = stack.enter_context(
                    support_dockerd.private_dockerd("dy-reg-dockerd-", "--storage-driver=vfs"))
                archive = f"{daemon.base}/busybox.tar"
                subprocess.run(["skopeo", "copy", f"oci:{busybox_layout}:latest",
                                f"docker-archive:{archive}:busybox:latest"], check=True,
                               capture_output=True)
                daemon.run("load", "-i", archive)
                started.append(daemon)
            return started[0]

        yield get
