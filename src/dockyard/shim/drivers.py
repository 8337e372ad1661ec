"""Execution drivers the monitor drives: our own runtime library, or a runc-compatible binary.

Both are synchronous and are only ever called from the single-threaded monitor. The monitor
is a subreaper, so the container's init ends up as its child with either driver and the
monitor reaps it itself (the library never reaps it; after ``runc create`` exits, init is
re-parented to the nearest subreaper).

The OCI command line is called as containerd calls it (see FIELD-NOTES):
``<bin> --root R --log B/log.json --log-format json create --bundle B --pid-file P
[--console-socket S] ID``, ``start ID``, ``kill ID SIG``, ``delete [--force] ID``,
``exec --process F --detach --pid-file P [--console-socket S] ID``, ``pause``, ``resume``,
``update --resources - ID``, ``ps --format json ID``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any, Protocol

from dockyard.errors import Internal, InvalidArgument

Stdio = tuple[int, int, int]
ConsoleCallback = Callable[[int], None]


class Driver(Protocol):
    def create(self, cid: str, bundle: str, stdio: Stdio | None, console: ConsoleCallback | None) -> int: ...
    def start(self, cid: str) -> None: ...
    def kill(self, cid: str, sig: int, all_procs: bool = False) -> None: ...
    def delete(self, cid: str, force: bool = False) -> None: ...
    def pause(self, cid: str) -> None: ...
    def resume(self, cid: str) -> None: ...
    def exec(self, cid: str, process: dict[str, Any], stdio: Stdio | None,
             console: ConsoleCallback | None) -> int: ...
    def update(self, cid: str, resources: dict[str, Any]) -> None: ...
    def ps(self, cid: str) -> list[int]: ...


class BuiltinDriver:
    """Our runtime library (:class:`dockyard.runtime.Runtime`), in process: no fork+exec."""

    def __init__(self, root: str) -> None:
        from dockyard.runtime import Runtime

        self.rt = Runtime(root)

    def create(self, cid: str, bundle: str, stdio: Stdio | None, console: ConsoleCallback | None) -> int:
        return int(self.rt.create(cid, bundle, stdio=stdio, console=console))

    def start(self, cid: str) -> None:
        self.rt.start(cid)

    def kill(self, cid: str, sig: int, all_procs: bool = False) -> None:
        self.rt.kill(cid, sig, all=all_procs)

    def delete(self, cid: str, force: bool = False) -> None:
        self.rt.delete(cid, force=force)

    def pause(self, cid: str) -> None:
        self.rt.pause(cid)

    def resume(self, cid: str) -> None:
        self.rt.resume(cid)

    def exec(self, cid: str, process: dict[str, Any], stdio: Stdio | None,
             console: ConsoleCallback | None) -> int:
        return int(self.rt.exec(cid, process, stdio=stdio, console=console))

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        self.rt.update(cid, resources)

    def ps(self, cid: str) -> list[int]:
        return [int(p) for p in self.rt.ps(cid)]


class OciCliDriver:
    """Any runc-compatible binary, driven through its OCI command line."""

    def __init__(self, binary: str, root: str, args: list[str] | None = None) -> None:
        self.binary = binary
        self.root = root
        self.args = list(args or [])

    def _base(self, log: str | None = None) -> list[str]:
        cmd = [self.binary, *self.args, "--root", self.root]
        if log:
            cmd += ["--log", log, "--log-format", "json"]
        return cmd

    def _run(self, argv: list[str], *, log: str | None = None, stdin: bytes | None = None) -> bytes:
        proc = subprocess.run(self._base(log) + argv, input=stdin, capture_output=True,
                              check=False, env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")})
        if proc.returncode != 0:
            raise Internal(self._error(proc.stderr, log) or f"{argv[0]} failed with {proc.returncode}")
        return proc.stdout

    @staticmethod
    def _error(stderr: bytes, log: str | None) -> str:
        msgs: list[str] = []
        if log and os.path.exists(log):
            with open(log, "rb") as f:
                for line in f.read().splitlines():
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if entry.get("level") in ("error", "fatal"):
                        msgs.append(str(entry.get("msg", "")))
        if msgs:
            return msgs[-1]
        return stderr.decode(errors="replace").strip()

    def _spawn(self, argv: list[str], stdio: Stdio | None, console: ConsoleCallback | None,
               log: str, pid_file: str) -> int:
        sock_dir = None
        listener = None
        cmd = self._base(log) + argv
        if console is not None:
            sock_dir = tempfile.mkdtemp(prefix="dy-console-")
            sock_path = os.path.join(sock_dir, "c.sock")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(sock_path)
            listener.listen(1)
            listener.settimeout(0.05)
            cmd[-1:-1] = ["--console-socket", sock_path]
        try:
            fds = stdio if stdio is not None else (None, None, None)
            proc = subprocess.Popen(cmd, stdin=fds[0], stdout=fds[1], stderr=fds[2],
                                    env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")})
            if listener is not None and console is not None:
                got = False
                while not got and proc.poll() is None:
                    try:
                        conn, _ = listener.accept()
                    except TimeoutError:
                        continue
                    with conn:
                        _, fds_in, _, _ = socket.recv_fds(conn, 4096, 1)
                    if fds_in:
                        console(fds_in[0])
                        got = True
            rc = proc.wait()
        finally:
            if listener is not None:
                listener.close()
            if sock_dir is not None:
                for name in os.listdir(sock_dir):
                    os.unlink(os.path.join(sock_dir, name))
                os.rmdir(sock_dir)
        if rc != 0:
            raise Internal(self._error(b"", log) or f"{os.path.basename(self.binary)} {argv[0]} failed")
        with open(pid_file) as f:
            return int(f.read().strip())

    def create(self, cid: str, bundle: str, stdio: Stdio | None, console: ConsoleCallback | None) -> int:
        pid_file = os.path.join(bundle, "init.pid")
        log = os.path.join(bundle, "log.json")
        return self._spawn(["create", "--bundle", bundle, "--pid-file", pid_file, cid],
                           stdio, console, log, pid_file)

    def start(self, cid: str) -> None:
        self._run(["start", cid])

    def kill(self, cid: str, sig: int, all_procs: bool = False) -> None:
        self._run(["kill", *(["--all"] if all_procs else []), cid, str(sig)])

    def delete(self, cid: str, force: bool = False) -> None:
        try:
            self._run(["delete", cid])
        except Internal:
            if not force:
                raise
            self._run(["delete", "--force", cid])

    def pause(self, cid: str) -> None:
        self._run(["pause", cid])

    def resume(self, cid: str) -> None:
        self._run(["resume", cid])

    def exec(self, cid: str, process: dict[str, Any], stdio: Stdio | None,
             console: ConsoleCallback | None) -> int:
        work = tempfile.mkdtemp(prefix="dy-exec-")
        try:
            proc_file = os.path.join(work, "process.json")
            with open(proc_file, "w") as f:
                json.dump(process, f)
            pid_file = os.path.join(work, "exec.pid")
            return self._spawn(["exec", "--process", proc_file, "--detach", "--pid-file", pid_file, cid],
                               stdio, console, os.path.join(work, "log.json"), pid_file)
        finally:
            for name in os.listdir(work):
                os.unlink(os.path.join(work, name))
            os.rmdir(work)

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        self._run(["update", "--resources", "-", cid], stdin=json.dumps(resources).encode())

    def ps(self, cid: str) -> list[int]:
        out = self._run(["ps", "--format", "json", cid])
        return [int(p) for p in json.loads(out or b"[]") or []]


def make_driver(spec: dict[str, Any]) -> Driver:
    """``spec``: {"name": ..., "path": binary or "" for the builtin, "root": state dir, "args": [...]}."""
    path = spec.get("path") or ""
    root = spec["root"]
    if not path:
        return BuiltinDriver(root)
    if not os.path.exists(path):
        raise InvalidArgument(f"runtime binary {path} not found")
    return OciCliDriver(path, root, spec.get("args"))


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.01)
    return False


__all__ = ["BuiltinDriver", "Driver", "OciCliDriver", "make_driver"]
