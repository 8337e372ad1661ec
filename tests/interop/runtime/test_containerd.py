"""containerd drives dockyard-runtime through its runc shim (io.containerd.runc.v2).

A private containerd (own root, state, socket in a tmp dir) imports a busybox image we build
ourselves (docker-archive tar), then ``ctr run --runc-binary <dockyard-runtime>`` runs it: the
shim calls our create/start/state/kill/delete/exec/pause/resume/ps exactly as it calls runc.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import busybox

pytestmark = [pytest.mark.interop, pytest.mark.root, pytest.mark.slow]

IMAGE = "docker.io/dockyard-test/busybox:latest"


def _runtime_binary() -> str:
    path = os.path.join(os.path.dirname(sys.executable), "dockyard-runtime")
    if not os.path.exists(path):
        pytest.skip("dockyard-runtime is not installed in the venv (pip install -e .)")
    return path


def _docker_archive(rootfs: str) -> bytes:
    layer = busybox.layer_tar_bytes(rootfs)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin:/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "dockyard test"}],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [IMAGE.split("/", 1)[1]],
                            "Layers": ["layer/layer.tar"]}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in ((config_name, config), ("layer/layer.tar", layer),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Containerd:
    def __init__(self, base: str) -> None:
        self.base = base
        self.address = os.path.join(base, "containerd.sock")
        self.proc: subprocess.Popen[bytes] | None = None
        self.namespace = f"dy{uuid.uuid4().hex[:8]}"

    def start(self) -> None:
        config = os.path.join(self.base, "config.toml")
        with open(config, "w") as f:
            f.write('version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n')
        log = open(os.path.join(self.base, "containerd.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["containerd", "--config", config, "--root", os.path.join(self.base, "root"),
             "--state", os.path.join(self.base, "state"), "--address", self.address],
            stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, "TMPDIR": self.base})  # its SIGUSR1 stack dumps go there
        deadline = time.monotonic() + 20
        while self.ctr("version", check=False).returncode != 0:
            assert time.monotonic() < deadline, "containerd did not come up"
            assert self.proc.poll() is None, "containerd exited: see containerd.log"
            time.sleep(0.1)

    def ctr(self, *args: str, check: bool = True, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "--address", self.address, "-n", self.namespace, *args],
                              capture_output=True, text=True, check=check, timeout=timeout,
                              input=input)

    def stop(self) -> None:
        for task in self.ctr("tasks", "ls", "-q", check=False).stdout.split():
            self.ctr("tasks", "kill", "-s", "SIGKILL", task, check=False)
            time.sleep(0.2)
            self.ctr("tasks", "delete", "-f", task, check=False)
        for c in self.ctr("containers", "ls", "-q", check=False).stdout.split():
            self.ctr("containers", "delete", c, check=False)
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["umount", "-R", "-l", self.base], capture_output=True, check=False)
        # the runc shim keeps per-namespace state and cgroup parents: remove ours
        shutil.rmtree(f"/run/containerd/runc/{self.namespace}", ignore_errors=True)
        for ctrl in os.listdir("/sys/fs/cgroup"):
            parent = os.path.join("/sys/fs/cgroup", ctrl, self.namespace)
            if os.path.isdir(parent) and not os.path.islink(parent):
                for sub, _, _ in sorted(os.walk(parent), key=lambda e: -len(e[0])):
                    os.rmdir(sub)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: str) -> Iterator[Containerd]:
    if shutil.which("containerd") is None or shutil.which("ctr") is None:
        pytest.skip("containerd/ctr are not installed (apt-get install containerd)")
    base = str(tmp_path_factory.mktemp("containerd"))
    cd = Containerd(base)
    cd.start()
    try:
        archive = os.path.join(base, "busybox.tar")
        with open(archive, "wb") as f:
            f.write(_docker_archive(busybox_rootfs))
        cd.ctr("images", "import", archive)
        yield cd
    finally:
        cd.stop()


def _run(cd: Containerd, cid: str, *cmd: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return cd.ctr("run", "--rm", "--runc-binary", _runtime_binary(), IMAGE, cid, *cmd, **kw)


def test_ctr_run_uses_dockyard_runtime_and_passes_exit_code(containerd: Containerd) -> None:
    res = _run(containerd, f"c{uuid.uuid4().hex[:8]}", "sh", "-c",
               "echo hello from $(hostname); echo $$; exit 3", check=False)
    assert res.stdout.splitlines()[1:] == ["1"], res.stderr
    assert res.stdout.startswith("hello from")
    assert res.returncode == 3


def test_ctr_task_exec_pause_resume_kill(containerd: Containerd) -> None:
    cid = f"c{uuid.uuid4().hex[:8]}"
    rt = _runtime_binary()
    containerd.ctr("run", "-d", "--runc-binary", rt, IMAGE, cid, "sleep", "300")
    try:
        out = containerd.ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c",
                             "echo exec-ok; readlink /proc/1/exe").stdout
        assert out.split() == ["exec-ok", "/bin/busybox"]
        containerd.ctr("tasks", "pause", cid)
        status = containerd.ctr("tasks", "ls").stdout
        assert "PAUSED" in status, status
        containerd.ctr("tasks", "resume", cid)
        assert "RUNNING" in containerd.ctr("tasks", "ls").stdout
        pids = containerd.ctr("tasks", "ps", cid).stdout
        assert len(pids.splitlines()) >= 2, pids
        containerd.ctr("tasks", "kill", "-s", "SIGKILL", cid)
        deadline = time.monotonic() + 20
        while "STOPPED" not in containerd.ctr("tasks", "ls").stdout:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        containerd.ctr("tasks", "delete", "-f", cid, check=False)
        containerd.ctr("containers", "delete", cid, check=False)
    assert cid not in containerd.ctr("tasks", "ls", "-q").stdout.split()


def test_ctr_run_with_a_tty(containerd: Containerd) -> None:
    # `ctr run -t` needs a terminal on our side: give it one with script(1)-like pty pairs
    import pty as stdpty

    cid = f"c{uuid.uuid4().hex[:8]}"
    master, slave = stdpty.openpty()
    try:
        proc = subprocess.Popen(
            ["ctr", "--address", containerd.address, "-n", containerd.namespace, "run", "--rm",
             "-t", "--runc-binary", _runtime_binary(), IMAGE, cid, "sh", "-c",
             "tty; echo tty-done"], stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        out = b""
        deadline = time.monotonic() + 30
        while b"tty-done" not in out and time.monotonic() < deadline:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
        assert proc.wait(timeout=30) == 0
        assert b"/dev/pts/0" in out, out
    finally:
        os.close(master)
