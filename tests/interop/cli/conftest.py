"""Daemons for the CLI interop tests: the reference dockerd (and, once it runs, ours).

The reference dockerd runs with private --data-root/--exec-root/--pidfile/socket and without
bridge or iptables, so it cannot clash with anything else on the machine. It gets a busybox
image from a docker-archive built here (manifest.json + config + layer.tar). All tests that use
it share one group so ``--dist loadgroup`` keeps them on one worker with one daemon.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support import busybox

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
DOCKYARD = [sys.executable, "-m", "dockyard.cli.main"]


def busybox_archive(tag: str = "busybox:latest") -> bytes:
    """A docker-archive (``docker save`` layout) of a one-layer busybox image."""
    root = busybox.make_rootfs(tempfile.mkdtemp(prefix="dyi-bb-") + "/rootfs")
    try:
        layer = busybox.layer_tar_bytes(root)
    finally:
        shutil.rmtree(os.path.dirname(root))
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "busybox-static"}],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag],
                            "Layers": ["layer/layer.tar"]}]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("manifest.json", manifest), (config_name, config),
                           ("layer/layer.tar", layer)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1704067200
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass
class Engine:
    name: str
    host: str
    workdir: str

    def dy(self, *args: str, stdin: bytes | None = None, timeout: float = 60,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run our CLI (as a process, the real entry point) against this daemon."""
        environ = {**os.environ, "DOCKYARD_HOST": self.host, "HOME": self.workdir,
                   "PYTHONPATH": os.path.join(REPO, "src")} | (env or {})
        return subprocess.run([*DOCKYARD, *args], input=stdin if stdin is not None else b"",
                              capture_output=True, timeout=timeout, env=environ, check=False)

    def ok(self, *args: str, stdin: bytes | None = None) -> str:
        proc = self.dy(*args, stdin=stdin)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout.decode()

    def docker(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """The real docker CLI against the same daemon (to compare outputs)."""
        return subprocess.run(["docker", "-H", self.host, *args], input=stdin or b"",
                              capture_output=True, timeout=60, check=False,
                              env={**os.environ, "HOME": self.workdir})


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted((p for p in points if p.startswith(path + "/")), key=len, reverse=True)


def _wait_for_socket(sock: str, proc: subprocess.Popen[bytes], log: str) -> None:
    import socket
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log) as f:
                pytest.skip(f"reference dockerd exited: {f.read()[-500:]}")
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
            s.connect(sock)
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            if b"200 OK" in s.recv(1024):
                return
        time.sleep(0.1)
    pytest.skip("reference dockerd did not answer within 60 s")


@contextlib.contextmanager
def _running(name: str, cmd: list[str], work: str, sock: str, load: str) -> Iterator[Engine]:
    """Start a daemon, wait for its socket, load busybox with ``load`` (CLI name); stop it and
    remove everything it left (mounts included) afterwards."""
    log = os.path.join(work, "daemon.log")
    with open(log, "wb") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                # TMPDIR: where containerd dumps stacks if dockerd restarts it
                                env={**os.environ, "PYTHONPATH": os.path.join(REPO, "src"),
                                     "TMPDIR": work})
    try:
        _wait_for_socket(sock, proc, log)
        engine = Engine(name, f"unix://{sock}", work)
        loader = engine.docker if load == "docker" else engine.dy
        loaded = loader("load", stdin=busybox_archive())
        assert loaded.returncode == 0, loaded.stderr
        yield engine
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for point in _mounts_under(work):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def reference_dockerd() -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.skip("the reference dockerd needs root")
    if not shutil.which("dockerd") or not busybox.have_busybox():
        pytest.skip("dockerd (docker.io) or busybox-static is not installed")
    work = tempfile.mkdtemp(prefix="dyi-")
    sock = os.path.join(work, "docker.sock")
    cmd = ["dockerd", "--data-root", os.path.join(work, "data"), "--exec-root",
           os.path.join(work, "x"), "--pidfile", os.path.join(work, "dockerd.pid"),
           "-H", f"unix://{sock}", "--bridge=none", "--iptables=false", "--ip6tables=false",
           "--ip-masq=false", "--userland-proxy=false", "--log-level=warn"]
    with _running("reference", cmd, work, sock, load="docker") as engine:
        yield engine


@pytest.fixture(scope="session")
def dockyard_daemon() -> Iterator[Engine]:
    """Our daemon, started and torn down by the engine's own helper (private paths, a private
    default-bridge subnet, monitors/cgroups/mounts cleaned up whatever happens)."""
    # ours: a broken import must fail, not skip
    from tests.support.engine_daemon import EngineDaemon

    if os.geteuid() != 0 or not busybox.have_busybox():
        pytest.skip("our daemon needs root and busybox-static")
    daemon = EngineDaemon()
    try:
        daemon.start(timeout=60)
        engine = Engine("dockyard", daemon.host, daemon.root)
        loaded = engine.dy("load", stdin=busybox_archive())
        assert loaded.returncode == 0, loaded.stderr
        yield engine
    finally:
        daemon.cleanup()


@pytest.fixture(params=["reference", "dockyard"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each CLI interop test runs against the reference dockerd and against our daemon."""
    name = "reference_dockerd" if request.param == "reference" else "dockyard_daemon"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


class Terminal:
    """``dockyard ARGS`` in a detached tmux pane of a fixed size, followed by ``echo EXIT=$?``
    (then a pause, so the pane stays to be read). Use as a context manager."""

    def __init__(self, engine: Engine, args: str, *, width: int = 80, height: int = 24,
                 env: str = "") -> None:
        self.session = f"dy-tty-{os.urandom(4).hex()}"
        self.command = (f"DOCKYARD_HOST={engine.host} PYTHONPATH={os.path.join(REPO, 'src')} "
                        f"{env} {' '.join(DOCKYARD)} {args}; echo EXIT=$?; sleep 60")
        self.size = (str(width), str(height))

    @staticmethod
    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True,
                              check=False).stdout

    def __enter__(self) -> Terminal:
        if not shutil.which("tmux"):
            pytest.skip("tmux is not installed")
        self.tmux("new-session", "-d", "-s", self.session, "-x", self.size[0], "-y",
                  self.size[1], self.command)
        return self

    def __exit__(self, *exc: object) -> None:
        self.tmux("kill-session", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", self.session, "-x", str(width), "-y", str(height))

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        pane = ""
        while time.monotonic() < deadline:
            pane = self.tmux("capture-pane", "-p", "-t", self.session)
            if text in pane:
                return pane
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared in the pane:\n{pane}")


def uniq(prefix: str) -> str:
    return f"dy-{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def names(engine: Engine) -> Iterator[list[str]]:
    """Containers a test names here are removed afterwards, whatever happens."""
    created: list[str] = []
    yield created
    for name in created:
        engine.dy("rm", "-f", name)
