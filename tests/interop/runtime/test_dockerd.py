"""dockerd (the reference Docker 20.10) uses dockyard-runtime as an OCI runtime.

A private dockerd (own data-root, exec-root, socket; no bridge, no iptables) is configured with
``"runtimes": {"dockyard": {"path": <dockyard-runtime>}}``; the real docker CLI then runs,
execs, pauses, stops and removes containers with ``--runtime dockyard``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.interop.runtime.test_containerd import _docker_archive, _runtime_binary

pytestmark = [pytest.mark.interop, pytest.mark.root, pytest.mark.slow]

IMAGE = "dockyard-test/busybox:latest"


class Dockerd:
    def __init__(self, base: str) -> None:
        self.base = base
        self.sock = os.path.join(base, "docker.sock")
        self.pidfile = os.path.join(base, "docker.pid")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = os.path.join(self.base, "daemon.json")
        with open(config, "w") as f:
            json.dump({"runtimes": {"dockyard": {"path": _runtime_binary()}}}, f)
        log = open(os.path.join(self.base, "dockerd.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["dockerd", "--config-file", config, "--data-root", os.path.join(self.base, "data"),
             "--exec-root", os.path.join(self.base, "exec"), "--pidfile", self.pidfile,
             "-H", f"unix://{self.sock}", "--bridge=none", "--iptables=false",
             "--ip-masq=false"], stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while self.docker("version", check=False).returncode != 0:
            assert self.proc.poll() is None, "dockerd exited: see dockerd.log"
            assert time.monotonic() < deadline, "dockerd did not come up"
            time.sleep(0.2)

    def docker(self, *args: str, check: bool = True,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "-H", f"unix://{self.sock}", *args],
                              capture_output=True, text=True, check=check, timeout=timeout)

    def stop(self) -> None:
        ids = self.docker("ps", "-aq", check=False).stdout.split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        mounts = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = line.split()[4]
                if point.startswith(self.base):
                    mounts.append(point)
        for point in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: str) -> Iterator[Dockerd]:
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        pytest.skip("dockerd / docker CLI are not installed")
    d = Dockerd(str(tmp_path_factory.mktemp("dockerd")))
    d.start()
    try:
        archive = os.path.join(d.base, "busybox.tar")
        with open(archive, "wb") as f:
            f.write(_docker_archive(busybox_rootfs))
        d.docker("load", "-i", archive)
        yield d
    finally:
        d.stop()


def _name() -> str:
    return f"dy-{uuid.uuid4().hex[:10]}"


def _run(d: Dockerd, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return d.docker("run", "--rm", "--runtime", "dockyard", "--network", "none", *args, **kw)


def test_docker_run_with_dockyard_runtime(dockerd: Dockerd) -> None:
    res = _run(dockerd, IMAGE, "sh", "-c", "echo $$; grep CapEff /proc/self/status")
    assert res.stdout.split() == ["1", "CapEff:", "00000000a80425fb"], res.stderr
    assert _run(dockerd, IMAGE, "sh", "-c", "exit 42", check=False).returncode == 42


def test_docker_exec_pause_limits_stop(dockerd: Dockerd) -> None:
    name = _name()
    dockerd.docker("run", "-d", "--name", name, "--runtime", "dockyard", "--network", "none",
                   "--memory", "64m", "--pids-limit", "50", IMAGE, "sleep", "300")
    try:
        out = dockerd.docker("exec", name, "sh", "-c",
                             "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                             "/sys/fs/cgroup/pids/pids.max").stdout.split()
        assert out == [str(64 * 1024 * 1024), "50"]
        dockerd.docker("pause", name)
        assert "Paused" in dockerd.docker("ps", "--filter", f"name={name}",
                                          "--format", "{{.Status}}").stdout
        dockerd.docker("unpause", name)
        assert "sleep 300" in dockerd.docker("top", name).stdout
        dockerd.docker("stop", "-t", "1", name)
        code = dockerd.docker("inspect", name, "--format", "{{.State.ExitCode}}").stdout
        assert code.strip() == "137"  # pid 1 ignores SIGTERM without a handler, as under runc
    finally:
        dockerd.docker("rm", "-f", name, check=False)
