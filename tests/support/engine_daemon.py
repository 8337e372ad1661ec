"""Start a real Dockyard daemon on private paths, and tear everything down afterwards.

Used by the engine's integration and interop tests and by bench/engine_bench.py. Teardown
never trusts the daemon: it kills what the exec root says is running (monitors and containers'
inits), unmounts whatever is mounted under the private root and removes the containers' cgroups.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


class EngineDaemon:
    def __init__(self, root: str | None = None, extra_args: list[str] | None = None,
                 daemon_json: dict[str, Any] | None = None) -> None:
        self.root = root or tempfile.mkdtemp(prefix="dy-engine-")
        self.sock = os.path.join(self.root, "d.sock")
        self.host = "unix://" + self.sock
        self.data_root = os.path.join(self.root, "data")
        self.exec_root = os.path.join(self.root, "exec")
        self.pidfile = os.path.join(self.root, "d.pid")
        self.log_path = os.path.join(self.root, "daemon.log")
        self.extra_args = list(extra_args or [])
        self.config_file = os.path.join(self.root, "daemon.json")
        conf = dict(daemon_json or {})
        self.bip_claim = ""
        if "bip" not in conf:
            conf["bip"], self.bip_claim = _claim_bip()
        with open(self.config_file, "w") as f:
            json.dump(conf, f)
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> None:
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dockyard.daemon", "-H", self.host, "--data-root", self.data_root,
                 "--exec-root", self.exec_root, "--pidfile", self.pidfile, "--config-file", self.config_file,
                 *self.extra_args],
                stdout=log, stderr=log, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited early:\n{self.log()}")
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not answer in {timeout}s:\n{self.log()}")

    def ping(self) -> bool:
        try:
            return self.request("GET", "/_ping")[0] == 200
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        self.proc = None
        return code

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Stop the daemon and remove every trace, whatever state things are in."""
        self.stop(signal.SIGKILL)
        ids: list[str] = []
        containers = os.path.join(self.exec_root, "containers")
        for cid in os.listdir(containers) if os.path.isdir(containers) else []:
            ids.append(cid)
            try:
                with open(os.path.join(containers, cid, "monitor.json")) as f:
                    info = json.load(f)
            except (OSError, ValueError):
                continue
            for key in ("pid", "monitor_pid"):
                pid = int(info.get(key) or 0)
                if pid > 0:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        data_containers = os.path.join(self.data_root, "containers")
        ids += [c for c in (os.listdir(data_containers) if os.path.isdir(data_containers) else []) if c not in ids]
        time.sleep(0.2)
        for cid in ids:
            _kill_cgroup(cid)
        _kill_holders(self.root)
        _unmount_under(self.root)
        for cid in ids:
            _remove_cgroup(cid)
        _remove_network_leftovers(self.data_root)
        shutil.rmtree(self.root, ignore_errors=True)
        if self.bip_claim:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.bip_claim)

    # -- clients -----------------------------------------------------------------------------
    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60,
               check: bool = False) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([DOCKER, "-H", self.host, *args], input=input, capture_output=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} -> {proc.returncode}: {proc.stderr.decode()}")
        return proc

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One raw HTTP/1.1 request over the unix socket (Connection: close)."""
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        head = [f"{method} {path} HTTP/1.1", "Host: docker", "Connection: close", f"Content-Length: {len(data)}"]
        if body is not None and not isinstance(body, bytes):
            head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(self.sock)
            s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)
            raw = b""
            while chunk := s.recv(65536):
                raw += chunk
        header, _, payload = raw.partition(b"\r\n\r\n")
        lines = header.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        if hdrs.get("transfer-encoding") == "chunked":
            payload = _dechunk(payload)
        return status, hdrs, payload

    def load_busybox(self, tag: str = "busybox:latest") -> str:
        """Import a busybox image through the API (``POST /images/create?fromSrc=-``)."""
        import urllib.parse

        from dockyard.images.bootstrap import busybox_layer

        path = os.path.join(self.root, "busybox-layer.tar")
        with open(path, "wb") as f:
            busybox_layer(f)
        repo, _, t = tag.partition(":")
        query = urllib.parse.urlencode({"fromSrc": "-", "repo": repo, "tag": t or "latest",
                                        "changes": 'CMD ["sh"]'})
        with open(path, "rb") as f:
            status, _, out = self.request("POST", f"/v1.41/images/create?{query}", f.read(),
                                          headers={"Content-Type": "application/x-tar"})
        if status != 200:
            raise RuntimeError(f"import of busybox failed: {status} {out!r}")
        return str(json.loads(out.split(b"\r\n")[0])["status"])


class ReferenceDockerd:
    """The reference: dockerd (with its own containerd) on private paths.

    ``bridge=False`` runs it with ``--bridge none``; ``bridge=True`` gives it its default
    bridge (docker0, a private ``--bip``, no iptables rules), removed again by :meth:`stop`."""

    def __init__(self, bridge: bool = False) -> None:
        self.root = tempfile.mkdtemp(prefix="dy-ref-")
        self.sock = os.path.join(self.root, "docker.sock")
        self.host = "unix://" + self.sock
        self.bridge = bridge
        self.made_docker0 = False
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        net = ["--bridge", "none", "--iptables=false"]
        if self.bridge:
            self.made_docker0 = not os.path.exists("/sys/class/net/docker0")
            rnd = int.from_bytes(os.urandom(1), "big")
            net = ["--bip", f"10.222.{rnd}.1/24", "--iptables=false", "--ip-masq=false"]
        with open(os.path.join(self.root, "dockerd.log"), "wb") as log:
            self.proc = subprocess.Popen(
                ["dockerd", "-H", self.host, "--data-root", os.path.join(self.root, "data"),
                 "--exec-root", os.path.join(self.root, "exec"), "--pidfile", os.path.join(self.root, "d.pid"),
                 *net],
                stdout=log, stderr=log, start_new_session=True,
                env={**os.environ, "TMPDIR": self.root})  # containerd dumps stacks into $TMPDIR when dockerd's health check restarts it
        for _ in range(300):
            if subprocess.run([DOCKER, "-H", self.host, "version"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("dockerd did not start")

    def docker(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([DOCKER, "-H", self.host, *args], input=input, capture_output=True, check=False)

    def stop(self) -> None:
        if self.proc is not None:
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", *[i.decode() for i in ids])
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)
        subprocess.run(["umount", "-R", os.path.join(self.root, "data")], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        if self.made_docker0:
            subprocess.run(["ip", "link", "del", "docker0"], capture_output=True, check=False)



BIP_CLAIMS = "/tmp/dy-engine-bips"
BIP_BASE = 96 << 8         # 10.96.0.0/11: 8192 /24s, apart from the network tests' 10.128.0.0/9


def _claim_bip() -> tuple[str, str]:
    """A default-bridge subnet (``10.x.y.1/24``) for one test daemon, and the file that claims
    it: no two daemons of parallel tests (or sessions) ever get the same subnet (two bridges on
    one subnet break one of them: its published ports end on the other bridge, EHOSTUNREACH),
    and none that a route on the host already uses."""
    os.makedirs(BIP_CLAIMS, exist_ok=True)
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True,
                            check=False).stdout
    for _ in range(1000):
        n = BIP_BASE + int.from_bytes(os.urandom(2), "big") % 8192
        net = f"10.{n >> 8}.{n & 255}"
        if f"{net}.0/" in routes:
            continue
        claim = os.path.join(BIP_CLAIMS, net)
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        return f"{net}.1/24", claim
    raise RuntimeError(f"no free test subnet in 10.96.0.0/11 (stale claims in {BIP_CLAIMS}?)")


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out


def _cgroup_dirs(cid: str) -> list[str]:
    out = []
    base = "/sys/fs/cgroup"
    for ctrl in os.listdir(base) if os.path.isdir(base) else []:
        d = os.path.join(base, ctrl, "dockyard", cid)
        if os.path.isdir(d):
            out.append(d)
    d = os.path.join(base, "dockyard", cid)
    if os.path.isdir(d):
        out.append(d)
    return out


def _kill_cgroup(cid: str) -> None:
    for d in _cgroup_dirs(cid):
        for name in ("cgroup.procs", "tasks"):
            try:
                with open(os.path.join(d, name)) as f:
                    for pid in f.read().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
            except OSError:
                continue
        with contextlib.suppress(OSError), open(os.path.join(d, "freezer.state"), "w") as f:
            f.write("THAWED")


def _remove_cgroup(cid: str) -> None:
    for _ in range(20):
        dirs = _cgroup_dirs(cid)
        if not dirs:
            return
        for d in dirs:
            with contextlib.suppress(OSError):
                os.rmdir(d)
        time.sleep(0.05)


def _remove_network_leftovers(data_root: str) -> None:
    """The network service names a private daemon's links and nft table after a hash of its
    data root (dockyard.daemon.networks._instance_config): remove them all."""
    import hashlib

    tag = hashlib.sha256(os.path.abspath(data_root).encode()).hexdigest()[:4]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name in (f"dy{tag}0",) or name.startswith((f"dy{tag}-", f"dv{tag}")):
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
    for family in ("inet", "ip", "ip6"):
        subprocess.run(["nft", "delete", "table", family, f"dockyard_{tag}"], capture_output=True, check=False)


def _kill_holders(root: str) -> None:
    """SIGKILL whatever still holds a file under ``root``: e.g. the init of a container the daemon
    already removed (its ids are gone from both roots) left blocked on its exec.fifo."""
    real = os.path.realpath(root) + "/"
    spared = {os.getpid(), os.getppid()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in spared:
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        held = False
        for fd in fds:
            with contextlib.suppress(OSError):
                held = held or os.readlink(f"/proc/{entry}/fd/{fd}").startswith(real)
        if held:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGKILL)


def _unmount_under(root: str) -> None:
    real = os.path.realpath(root)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for mp in sorted((p for p in points if p.startswith(real + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True, check=False)


__all__ = ["DOCKER", "EngineDaemon", "ReferenceDockerd"]
