"""Helpers for root tests that run real busybox containers and check from inside."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dockyard.linux import capabilities, libc
from dockyard.oci.runtime_spec import default_spec
from dockyard.runtime import Runtime

CLI = [sys.executable, "-m", "dockyard.runtime.cli"]


def docker_like_spec(args: list[str]) -> dict[str, Any]:
    """What Docker asks for by default: its capability set, no terminal, rw rootfs."""
    spec = default_spec()
    proc = spec["process"]
    proc["terminal"] = False
    proc["args"] = args
    caps = sorted(capabilities.DEFAULT_CAPS)
    proc["capabilities"] = {s: list(caps) for s in ("bounding", "effective", "permitted")}
    del proc["rlimits"]
    spec["root"]["readonly"] = False
    return spec


class Bundle:
    def __init__(self, path: str, root: str) -> None:
        self.path = path
        self.root = root
        self.id = f"it-{uuid.uuid4().hex[:12]}"
        self.spec = docker_like_spec(["true"])
        self.cleanup: list[str] = []

    def write(self) -> None:
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.spec, f)

    def run(self, args: list[str], *, timeout: float = 30,
            input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        """``dockyard-runtime run`` of ``args``; stdout/stderr captured."""
        self.spec["process"]["args"] = args
        self.write()
        return subprocess.run([*CLI, "--root", self.root, "run", "--bundle", self.path, self.id],
                              capture_output=True, text=True, timeout=timeout, check=False,
                              input=None if input is None else input.decode())

    def make_world_reachable(self) -> None:
        """Move the bundle under a 0755 directory (pytest's tmp root is 0700)."""
        import tempfile

        new = tempfile.mkdtemp(prefix="dockyard-userns-", dir="/tmp")
        os.chmod(new, 0o755)
        shutil.move(os.path.join(self.path, "rootfs"), os.path.join(new, "rootfs"))
        self.cleanup.append(new)
        self.path = new

    def cgroup_dirs(self) -> list[str]:
        rel = (self.spec.get("linux") or {}).get("cgroupsPath") or f"/dockyard/{self.id}"
        base = "/sys/fs/cgroup"
        return [os.path.join(base, c, rel.lstrip("/")) for c in os.listdir(base)
                if os.path.isdir(os.path.join(base, c)) and not os.path.islink(os.path.join(base, c))]


@pytest.fixture
def bundle(rootfs_copy: str, tmp_path: Any) -> Iterator[Bundle]:
    path = os.path.dirname(rootfs_copy)
    b = Bundle(path, str(tmp_path / "state"))
    yield b
    _force_cleanup(b)
    for path in b.cleanup:
        shutil.rmtree(path, ignore_errors=True)
    leftovers = [d for d in b.cgroup_dirs() if os.path.exists(d)]
    assert not leftovers, f"cgroups left behind: {leftovers}"


def _force_cleanup(b: Bundle) -> None:
    """Kill what a failed test left running, reap it (this worker is a subreaper: a zombie
    pins its cgroup until reaped), then delete."""
    rt = Runtime(b.root)
    try:
        rt.kill(b.id, signal.SIGKILL, all=True)
    except Exception:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            got, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if got == 0:
            try:
                if rt.state(b.id).status == "stopped" and not rt.ps(b.id):
                    break
            except Exception:
                break
            time.sleep(0.01)
    subprocess.run([*CLI, "--root", b.root, "delete", "--force", b.id], capture_output=True,
                   check=False)


@pytest.fixture(scope="session", autouse=True)
def _subreaper() -> None:
    """Library tests reap the init themselves, as the shim does."""
    libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)


@pytest.fixture
def runtime(bundle: Bundle) -> Iterator[Runtime]:
    """A Runtime on the bundle's state root: the bundle fixture's finalizer cleans up after."""
    yield Runtime(bundle.root)


def wait_exit(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def pipe_stdio() -> tuple[tuple[int, int, int], Callable[[], str]]:
    """stdio for a container (stdin /dev/null, stdout+stderr into a pipe) and a reader."""
    r, w = os.pipe()
    devnull = os.open("/dev/null", os.O_RDONLY)

    def read() -> str:
        os.close(w)
        os.close(devnull)
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        os.close(r)
        return b"".join(chunks).decode()

    return (devnull, w, w), read
