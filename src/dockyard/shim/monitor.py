"""The per-container monitor: a single-threaded select loop around one container.

Life of a monitor (forked by the daemon's spawner, already in its own session)::

    subreaper on ─ bind <state_dir>/monitor.sock ─ pipes or pty ─ driver.create (init waits)
        ─ event "created" ─ ... op "start" ─ driver.start ─ copy output to log + attachers
        ─ init exits ─ drain output ─ read OOM ─ driver.delete ─ exit.json (atomic)
        ─ event "exit" / END frames ─ flush ─ exit

The daemon talks to it over the control connection it handed over at spawn time, and after a
daemon restart over a new connection to ``monitor.sock`` (see :mod:`dockyard.shim.protocol`).
The container's init is the monitor's child until it is reaped, so signalling it by pid is
free of pid-reuse races.

Memory: a monitor owns, for good, every page it writes after the fork (reference counts and
3.11's inline caches of each function it runs). So the runtime's verbs run in a throwaway child
(:meth:`Monitor._offload`), the spawner forks without CPython's at-fork hooks (:func:`raw_fork`),
and the monitor's own steady path stays small: ~2 MB private per monitor.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from dockyard.atomic import atomic_write_json
from dockyard.shim import protocol
from dockyard.shim.drivers import Driver, make_driver
from dockyard.shim.logfile import JsonLog, rfc3339nano

PR_SET_CHILD_SUBREAPER = 36
DRAIN_GRACE = 2.0
MAX_CLIENT_BUFFER = 32 * 1024 * 1024
READ_SIZE = 65536


# bound at import time, in the spawner: every monitor then shares these ctypes objects
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl
_FORK = ctypes.PyDLL(None, use_errno=True).fork  # PyDLL: the GIL stays held across fork(2)


def raw_fork() -> int:
    """fork(2) without CPython's after-fork work in the child.

    ``os.fork`` runs the interpreter's at-fork hooks in the child (threading's re-init, logging's
    lock reset, random's reseed): ~0.5 MB of pages written, which the child then owns for good.
    The spawner and the monitor are single-threaded, so those hooks have nothing to repair.
    Only for children that never start threads (or exec soon).
    """
    pid = int(_FORK())
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return pid


def _helper_main(sock: socket.socket, fn: Callable[[Callable[[int], None] | None], Any],
                 console: bool) -> None:
    """In the throwaway child: run ``fn``, hand back console fds and the result; never returns."""
    def send_console(fd: int) -> None:
        socket.send_fds(sock, [b"C"], [fd])

    try:
        try:
            reply: dict[str, Any] = {"ok": fn(send_console if console else None)}
        except Exception as exc:
            traceback.print_exc()  # into monitor.log
            reply = {"error": str(exc) or type(exc).__name__}
        sock.send(b"R" + json.dumps(reply).encode())
    finally:
        os._exit(0)


def _set_subreaper() -> None:
    if _PRCTL(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _nonblock(fd: int) -> None:
    os.set_blocking(fd, False)


def exit_code_of(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Conn:
    """A daemon connection: control (JSON lines) or a stream (attach / exec)."""

    def __init__(self, sock: socket.socket, kind: str = "pending") -> None:
        self.sock = sock
        self.kind = kind
        self.inbuf = b""
        self.out = bytearray()
        self.closing = False
        self.stdin = False
        self.streams: set[int] = {protocol.STDOUT, protocol.STDERR}
        self.exec_id: str | None = None
        self.read_closed = False
        self.registered = False
        sock.setblocking(False)


class Session:
    """A process whose stdio the monitor owns: the container's init or one exec."""

    def __init__(self, key: str, tty: bool) -> None:
        self.key = key
        self.tty = tty
        self.pid = 0
        self.status: int | None = None
        self.code: int | None = None
        self.exited_at = 0.0
        self.master: int | None = None
        self.stdin_w: int | None = None
        self.outputs: dict[int, int] = {}  # fd -> stream
        self.stdin_buf = bytearray()
        self.stdin_eof = False
        self.conn: Conn | None = None  # exec sessions: their one stream connection
        self.stdin_registered = False


class Monitor:
    def __init__(self, cfg: dict[str, Any], control_fd: int) -> None:
        self.cfg = cfg
        self.id: str = cfg["id"]
        self.bundle: str = cfg["bundle"]
        self.state_dir: str = cfg["state_dir"]
        self.record_dir: str = cfg["record_dir"]
        self.sel = selectors.DefaultSelector()
        self.conns: dict[int, Conn] = {}
        self.fd_owner: dict[int, Session] = {}
        self.sessions: dict[str, Session] = {}
        self.pids: dict[int, Session] = {}
        self.exec_results: dict[str, dict[str, Any]] = {}
        self.driver: Driver = make_driver(cfg["runtime"])
        log_cfg = cfg.get("log") or {}
        self.log = (JsonLog(log_cfg["path"], int(log_cfg.get("max_size", 0)), int(log_cfg.get("max_file", 1)))
                    if log_cfg.get("path") else None)
        self.started_at = ""
        self.finished = False
        self.exit_record: dict[str, Any] | None = None
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.control = Conn(socket.socket(fileno=control_fd), "control") if control_fd >= 0 else None

    # ---- plumbing -------------------------------------------------------------------
    def _register_conn(self, conn: Conn) -> None:
        self.conns[conn.sock.fileno()] = conn
        self._update_events(conn)

    def _send(self, conn: Conn, data: bytes) -> None:
        if conn.sock.fileno() < 0:
            return
        if len(conn.out) > MAX_CLIENT_BUFFER:
            self._close_conn(conn)
            return
        if not conn.out:
            try:
                n = conn.sock.send(data)
            except BlockingIOError:
                n = 0
            except OSError:
                self._close_conn(conn)
                return
            data = data[n:]
        if data:
            conn.out += data
            self._update_events(conn)

    def _update_events(self, conn: Conn) -> None:
        """Select on what the connection still needs; half-closed peers keep receiving."""
        if conn.sock.fileno() < 0:
            return
        events = 0 if (conn.closing or conn.read_closed) else selectors.EVENT_READ
        if conn.out:
            events |= selectors.EVENT_WRITE
        if events == 0:
            if conn.closing:
                self._close_conn(conn)
                return
            if conn.registered:
                self.sel.unregister(conn.sock)
                conn.registered = False
        elif conn.registered:
            self.sel.modify(conn.sock, events, ("conn", conn))
        else:
            self.sel.register(conn.sock, events, ("conn", conn))
            conn.registered = True

    def _close_conn(self, conn: Conn) -> None:
        fd = conn.sock.fileno()
        if fd < 0:
            return
        if conn.registered:
            self.sel.unregister(conn.sock)
            conn.registered = False
        self.conns.pop(fd, None)
        conn.sock.close()
        if conn is self.control:
            self.control = None

    def _finish_conn(self, conn: Conn) -> None:
        """Close once everything queued has been sent."""
        conn.closing = True
        if not conn.out:
            self._close_conn(conn)
        else:
            self._update_events(conn)

    def event(self, msg: dict[str, Any]) -> None:
        data = protocol.encode(msg)
        for conn in list(self.conns.values()):
            if conn.kind == "control":
                self._send(conn, data)

    def _offload(self, fn: Callable[[Callable[[int], None] | None], Any],
                 console: Callable[[int], None] | None = None) -> Any:
        """Run a driver verb in a throwaway child of the monitor and return its result.

        Memory: every Python function that runs in a forked process writes the pages it lives
        on (reference counts, 3.11's inline caches), and they stay private to that process for
        good. The runtime's create/start/exec run many functions once; run in a child that
        exits, they cost the long-lived monitor nothing (~1-2 MB private per monitor otherwise).
        The child is no subreaper: what it forks (the container's init, an exec'd process) is
        re-parented to the monitor when it exits, as with ``runc create``. Errors come back as
        RuntimeError(message); a tty's master fd comes back over SCM_RIGHTS to ``console``.
        """
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = raw_fork()
        except OSError:
            mine.close()
            theirs.close()
            raise
        if pid == 0:
            mine.close()
            _helper_main(theirs, fn, console is not None)
        theirs.close()
        reply: dict[str, Any] | None = None
        try:
            while reply is None:
                msg, fds, _, _ = socket.recv_fds(mine, 1 << 20, 1)
                if msg == b"C" and fds and console is not None:
                    console(fds[0])
                    continue
                for fd in fds:
                    os.close(fd)
                if not msg.startswith(b"R"):
                    raise RuntimeError("the runtime helper died")
                reply = json.loads(msg[1:])
        finally:
            mine.close()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply.get("ok")

    # ---- stdio ----------------------------------------------------------------------
    def _add_output(self, sess: Session, fd: int, stream: int) -> None:
        _nonblock(fd)
        sess.outputs[fd] = stream
        self.fd_owner[fd] = sess
        self.sel.register(fd, selectors.EVENT_READ, ("out", sess))

    def _setup_stdio(self, sess: Session, want_stdin: bool) -> tuple[tuple[int, int, int] | None, list[int]]:
        """Pipes for a non-tty session; returns (child stdio, fds to close after spawn)."""
        if sess.tty:
            return None, []
        if want_stdin:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            _nonblock(in_w)
            sess.stdin_w = in_w
        else:
            in_r = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self._add_output(sess, out_r, protocol.STDOUT)
        self._add_output(sess, err_r, protocol.STDERR)
        return (in_r, out_w, err_w), [in_r, out_w, err_w]

    def _console(self, sess: Session) -> Any:
        def got(fd: int) -> None:
            sess.master = fd
            os.set_inheritable(fd, False)
            size = self.cfg.get("console_size") or [0, 0]
            if sess.key == "init" and size[0] and size[1]:
                self._resize(fd, int(size[0]), int(size[1]))
            self._add_output(sess, fd, protocol.STDOUT)
        return got

    @staticmethod
    def _resize(fd: int, h: int, w: int) -> None:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", h, w, 0, 0))

    def _read_output(self, sess: Session, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: the pty's last slave closed
            if exc.errno != errno.EIO:
                raise
            data = b""
        stream = sess.outputs.get(fd, protocol.STDOUT)
        if not data:
            self._close_output(sess, fd)
            return
        if sess.key == "init":
            if self.log is not None:
                self.log.write("stdout" if stream == protocol.STDOUT else "stderr", data)
            frame = protocol.frame(stream, data)
            for conn in list(self.conns.values()):
                if conn.kind == "attach" and stream in conn.streams:
                    self._send(conn, frame)
        elif sess.conn is not None and stream in sess.conn.streams:
            self._send(sess.conn, protocol.frame(stream, data))

    def _close_output(self, sess: Session, fd: int) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(fd)
        sess.outputs.pop(fd, None)
        self.fd_owner.pop(fd, None)
        if fd == sess.master:
            # keep the master for stdin writes until the session ends
            return
        os.close(fd)
        self._maybe_done(sess)

    def _write_stdin(self, sess: Session, data: bytes) -> None:
        sess.stdin_buf += data
        self._flush_stdin(sess)

    def _flush_stdin(self, sess: Session) -> None:
        target = sess.master if sess.tty else sess.stdin_w
        if target is None:
            sess.stdin_buf.clear()
            return
        while sess.stdin_buf:
            try:
                n = os.write(target, sess.stdin_buf)
            except BlockingIOError:
                break
            except OSError:
                sess.stdin_buf.clear()
                break
            del sess.stdin_buf[:n]
        if sess.tty or sess.stdin_w is None:
            return  # a tty's master is retried from the main loop
        if sess.stdin_buf and not sess.stdin_registered:
            self.sel.register(sess.stdin_w, selectors.EVENT_WRITE, ("stdin", sess))
            sess.stdin_registered = True
        elif not sess.stdin_buf and sess.stdin_registered:
            self.sel.unregister(sess.stdin_w)
            sess.stdin_registered = False
        if not sess.stdin_buf and sess.stdin_eof:
            os.close(sess.stdin_w)
            sess.stdin_w = None

    def _stdin_eof(self, sess: Session) -> None:
        sess.stdin_eof = True
        self._flush_stdin(sess)

    # ---- processes ------------------------------------------------------------------
    def create(self) -> None:
        sess = Session("init", bool(self.cfg.get("tty")))
        stdio, close_after = self._setup_stdio(sess, bool(self.cfg.get("open_stdin")))
        try:
            pid = int(self._offload(lambda console: self.driver.create(self.id, self.bundle, stdio, console),
                                    self._console(sess) if sess.tty else None))
        finally:
            for fd in close_after:
                os.close(fd)
        sess.pid = pid
        self.sessions["init"] = sess
        self.pids[pid] = sess

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            sess = self.pids.pop(pid, None)
            if sess is None:
                continue
            sess.status = status
            sess.code = exit_code_of(status)
            sess.exited_at = time.monotonic()
            if sess.key == "init":
                self.finished_at = rfc3339nano(time.time_ns())
                self.oom = self._oom_killed()
            self._maybe_done(sess)

    def _oom_killed(self) -> bool:
        try:
            with open(os.path.join(self.bundle, "config.json")) as f:
                path = json.load(f).get("linux", {}).get("cgroupsPath", "")
        except (OSError, ValueError):
            return False
        for candidate in (f"/sys/fs/cgroup/memory{path}/memory.oom_control", f"/sys/fs/cgroup{path}/memory.events"):
            try:
                with open(candidate) as f:
                    for line in f:
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value) > 0:
                            return True
            except (OSError, ValueError):
                continue
        return False

    def _maybe_done(self, sess: Session, force: bool = False) -> None:
        if sess.code is None or (sess.outputs and not force):
            return
        for fd in list(sess.outputs):
            self._close_output(sess, fd)
        if sess.master is not None:
            os.close(sess.master)
            sess.master = None
        if sess.stdin_w is not None:
            if sess.stdin_registered:
                self.sel.unregister(sess.stdin_w)
            os.close(sess.stdin_w)
            sess.stdin_w = None
        self.sessions.pop(sess.key, None)
        if sess.key == "init":
            self._container_done(sess)
        else:
            result = {"code": sess.code, "exec_id": sess.key}
            self.exec_results[sess.key] = result
            self.event({"event": "exec-exit", **result})
            if sess.conn is not None:
                self._send(sess.conn, protocol.frame(protocol.END, json.dumps(result).encode()))
                self._finish_conn(sess.conn)

    def _container_done(self, sess: Session) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None
        with contextlib.suppress(Exception):
            self.driver.delete(self.id, force=True)
        record = {"code": sess.code, "oom": getattr(self, "oom", False),
                  "finished_at": getattr(self, "finished_at", rfc3339nano(time.time_ns())),
                  "pid": sess.pid}
        atomic_write_json(os.path.join(self.record_dir, "exit.json"), record)
        self.exit_record = record
        self.finished = True
        self.event({"event": "exit", **record})
        end = protocol.frame(protocol.END, json.dumps(record).encode())
        for conn in list(self.conns.values()):
            if conn.kind == "attach":
                self._send(conn, end)
                self._finish_conn(conn)

    # ---- requests -------------------------------------------------------------------
    def handle_control(self, conn: Conn, msg: dict[str, Any]) -> None:
        seq = msg.get("seq")
        try:
            reply = self._op(msg) or {}
            self._send(conn, protocol.encode({"seq": seq, "ok": True, **reply}))
        except Exception as exc:
            self._send(conn, protocol.encode({"seq": seq, "error": str(exc) or type(exc).__name__}))

    def _op(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        op = msg.get("op")
        init = self.sessions.get("init")
        if op == "state":
            return {"pid": init.pid if init else 0, "running": init is not None and init.code is None,
                    "started_at": self.started_at, "exit": self.exit_record}
        if op == "exec-status":
            return {"result": self.exec_results.get(str(msg.get("exec_id")))}
        if init is None or init.code is not None:
            raise RuntimeError(f"container {self.id} is not running")
        if op == "start":
            self._offload(lambda _: self.driver.start(self.id))
            self.started_at = rfc3339nano(time.time_ns())
            return {"pid": init.pid, "started_at": self.started_at}
        if op == "kill":
            sig = int(msg.get("signal", signal.SIGTERM))
            if msg.get("all"):
                self._offload(lambda _: self.driver.kill(self.id, sig, True))
            else:
                os.kill(init.pid, sig)
            return None
        if op == "resize":
            key = msg.get("exec_id") or "init"
            sess = self.sessions.get(key)
            if sess is None or sess.master is None:
                raise RuntimeError("no tty to resize")
            self._resize(sess.master, int(msg["h"]), int(msg["w"]))
            return None
        if op == "pause":
            self._offload(lambda _: self.driver.pause(self.id))
            return None
        if op == "resume":
            self._offload(lambda _: self.driver.resume(self.id))
            return None
        if op == "update":
            resources = msg.get("resources") or {}
            self._offload(lambda _: self.driver.update(self.id, resources))
            return None
        if op == "ps":
            return {"pids": [int(p) for p in self._offload(lambda _: self.driver.ps(self.id))]}
        raise RuntimeError(f"unknown op {op!r}")

    def handle_header(self, conn: Conn, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "control":
            conn.kind = "control"
            return
        conn.stdin = bool(msg.get("stdin"))
        conn.streams = {s for s, want in ((protocol.STDOUT, msg.get("stdout", True)),
                                          (protocol.STDERR, msg.get("stderr", True))) if want}
        if op == "attach":
            conn.kind = "attach"
            if self.finished and self.exit_record is not None:
                self._send(conn, protocol.frame(protocol.END, json.dumps(self.exit_record).encode()))
                self._finish_conn(conn)
        elif op == "exec":
            conn.kind = "exec"
            self._start_exec(conn, msg)
        else:
            self._finish_conn(conn)

    def _start_exec(self, conn: Conn, msg: dict[str, Any]) -> None:
        exec_id = str(msg["exec_id"])
        conn.exec_id = exec_id
        sess = Session(exec_id, bool(msg.get("tty")))
        sess.conn = conn
        init = self.sessions.get("init")
        stdio, close_after = self._setup_stdio(sess, conn.stdin)
        try:
            if init is None or init.code is not None:
                raise RuntimeError(f"container {self.id} is not running")
            process = msg["process"]
            sess.pid = int(self._offload(lambda console: self.driver.exec(self.id, process, stdio, console),
                                         self._console(sess) if sess.tty else None))
        except Exception as exc:
            for fd in list(sess.outputs):
                self._close_output(sess, fd)
            if sess.stdin_w is not None:
                os.close(sess.stdin_w)
            text = str(exc)
            code = 127 if ("no such file" in text.lower() or "not found" in text.lower()) else 126
            result = {"code": code, "exec_id": exec_id, "error": text}
            self.exec_results[exec_id] = result
            self._send(conn, protocol.frame(protocol.END, json.dumps(result).encode()))
            self._finish_conn(conn)
            return
        finally:
            for fd in close_after:
                os.close(fd)
        self.sessions[exec_id] = sess
        self.pids[sess.pid] = sess
        self.event({"event": "exec-started", "exec_id": exec_id, "pid": sess.pid})
        self.reap()  # it may already have exited

    def _conn_readable(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if conn.kind in ("attach", "exec"):
            sess = self.sessions.get("init" if conn.kind == "attach" else conn.exec_id or "")
            if data:
                if sess is not None and conn.stdin:
                    self._write_stdin(sess, data)
                return
            # the peer half-closed: stop reading, keep sending it output
            conn.read_closed = True
            self._update_events(conn)
            if sess is not None and conn.stdin and (conn.kind == "exec" or self.cfg.get("stdin_once")):
                self._stdin_eof(sess)
            return
        if not data:
            self._close_conn(conn)
            return
        conn.inbuf += data
        while b"\n" in conn.inbuf and conn.kind in ("control", "pending"):
            line, _, conn.inbuf = conn.inbuf.partition(b"\n")
            try:
                msg = protocol.decode(line)
            except ValueError:
                self._close_conn(conn)
                return
            if conn.kind == "pending":
                self.handle_header(conn, msg)
                rest, conn.inbuf = conn.inbuf, b""
                if rest and conn.kind in ("attach", "exec"):
                    target = self.sessions.get("init" if conn.kind == "attach" else conn.exec_id or "")
                    if target is not None and conn.stdin:
                        self._write_stdin(target, rest)
                elif rest:
                    conn.inbuf = rest
            else:
                self.handle_control(conn, msg)

    def _conn_writable(self, conn: Conn) -> None:
        try:
            n = conn.sock.send(conn.out)
        except BlockingIOError:
            return
        except OSError:
            self._close_conn(conn)
            return
        del conn.out[:n]
        if not conn.out:
            if conn.closing:
                self._close_conn(conn)
            else:
                self._update_events(conn)

    # ---- main loop ------------------------------------------------------------------
    def serve(self) -> None:
        sock_path = os.path.join(self.state_dir, "monitor.sock")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        os.chdir(self.state_dir)  # bind by a relative name: sun_path holds only 108 bytes
        listener.bind("monitor.sock")
        listener.listen(64)
        listener.setblocking(False)
        self.sel.register(listener, selectors.EVENT_READ, ("listen", None))
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        if self.control is not None:
            self._register_conn(self.control)
        try:
            self.create()
        except Exception as exc:
            atomic_write_json(os.path.join(self.state_dir, "create-error.json"), {"error": str(exc)})
            self.event({"event": "error", "error": str(exc)})
            self._flush_all(2.0)
            return
        init = self.sessions["init"]
        atomic_write_json(os.path.join(self.state_dir, "monitor.json"),
                          {"monitor_pid": os.getpid(), "pid": init.pid}, durable=False)
        self.event({"event": "created", "pid": init.pid})
        self.reap()
        while True:
            if self.finished and not any(c.out for c in self.conns.values()):
                break
            timeout = None
            init_sess = self.sessions.get("init")
            if init_sess is not None and init_sess.code is not None:
                left = init_sess.exited_at + DRAIN_GRACE - time.monotonic()
                if left <= 0:
                    self._maybe_done(init_sess, force=True)
                    continue
                timeout = left
            if self.finished:
                timeout = 5.0
            if any(x.tty and x.stdin_buf for x in self.sessions.values()):
                timeout = 0.02
                for x in list(self.sessions.values()):
                    self._flush_stdin(x)
            events = self.sel.select(timeout)
            if not events and self.finished:
                break
            for key, mask in events:
                kind, obj = key.data
                if kind == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                    self.reap()
                elif kind == "listen":
                    with contextlib.suppress(BlockingIOError):
                        sock, _ = listener.accept()
                        self._register_conn(Conn(sock))
                elif kind == "conn":
                    if obj.sock.fileno() < 0:
                        continue
                    if mask & selectors.EVENT_WRITE:
                        self._conn_writable(obj)
                    if mask & selectors.EVENT_READ and obj.sock.fileno() >= 0:
                        self._conn_readable(obj)
                elif kind == "out":
                    self._read_output(obj, key.fd)
                elif kind == "stdin":
                    self._flush_stdin(obj)
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock_path)

    def _flush_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for conn in list(self.conns.values()):
            conn.sock.setblocking(True)
            conn.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            with contextlib.suppress(OSError):
                conn.sock.sendall(bytes(conn.out))


def warm_up(rounds: int = 16) -> None:
    """Run a monitor's set-up and request path a few times in the spawner, before any fork.

    CPython 3.11 rewrites a function's bytecode in place during its first runs (warm-up
    counters, then specialised instructions). Done once in the spawner, those writes land on
    pages every monitor then shares, instead of on private copies in each (~0.1 MB each).
    Touches no files; every fd it opens is closed again.
    """
    cfg = {"id": "warm-up", "bundle": "/nonexistent", "state_dir": "/nonexistent",
           "record_dir": "/nonexistent", "runtime": {"root": "/nonexistent"},
           "log": {"path": os.devnull}}
    for _ in range(rounds):
        ours, peer = socket.socketpair()
        mon = Monitor(cfg, ours.detach())
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        try:
            assert mon.control is not None
            mon._register_conn(mon.control)
            peer.sendall(protocol.encode({"op": "state", "seq": 1}))
            mon._conn_readable(mon.control)
            mon.event({"event": "warm-up"})
            protocol.decode(peer.recv(READ_SIZE).split(b"\n")[0])
            sess = Session("init", False)
            mon._add_output(sess, out_r, protocol.STDOUT)
            os.write(out_w, b"warm-up\n")
            mon._read_output(sess, out_r)  # one json-file log line, to /dev/null
        finally:
            for conn in list(mon.conns.values()):
                mon._close_conn(conn)
            mon.sel.close()
            if mon.log is not None:
                mon.log.close()
            for fd in (mon.wake_r, mon.wake_w, out_r, out_w):
                os.close(fd)
            peer.close()


def run_monitor(cfg: dict[str, Any], control_fd: int) -> None:
    """Entry point in the freshly forked monitor; never returns."""
    code = 0
    try:
        try:  # the daemon made it: os.makedirs' Python code would cost pages
            os.mkdir(cfg["state_dir"])
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(cfg["state_dir"], exist_ok=True)
        log_fd = os.open(os.path.join(cfg["state_dir"], "monitor.log"),
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null)
        os.close(log_fd)
        keep = {0, 1, 2, control_fd}
        for fd in _open_fds():
            if fd not in keep:
                with contextlib.suppress(OSError):
                    os.close(fd)
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_IGN)
        _set_subreaper()
        mon = Monitor(cfg, control_fd)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(mon.wake_w, warn_on_full_buffer=False)
        mon.serve()
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def _open_fds() -> list[int]:
    try:
        return [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 1024))


__all__ = ["Monitor", "exit_code_of", "raw_fork", "run_monitor", "warm_up"]
