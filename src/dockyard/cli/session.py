"""An attached session: stdin into a hijacked stream, its output to ours, the terminal in raw
mode with SIGWINCH -> resize, signals forwarded, detach keys, and the wait registered before
start. Used by run, start -a, attach and exec (run.py).

With a tty, ctrl-p ctrl-q (or ``--detach-keys``) detaches: the client watches its own stdin for
the sequence, so detaching works whatever the daemon does with ``detachKeys``.
"""

from __future__ import annotations

import os

from dockyard.cli.context import Context, StatusError, UsageError
from dockyard.client.streams import STDERR, SYSERR, Hijacked
from dockyard.client.wire import quote
from dockyard.errors import DockyardError

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["DEFAULT_DETACH_KEYS", "Session", "Waiter", "parse_detach_keys", "proxy_signals",
           "terminal_size", "watch_resize"]

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(text: str) -> bytes:
    """``ctrl-p,ctrl-q`` -> b"\\x10\\x11" (docker's term.ToBytes)."""
    out = bytearray()
    for key in text.split(","):
        key = key.strip()
        if key.lower().startswith("ctrl-") and len(key) == 6:
            c = key[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[c])
            else:
                raise UsageError(f"Unknown character: '{key}'")
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise UsageError(f"Unknown character: '{key}'")
    return bytes(out)


class Session:
    """Copies stdin into a hijacked stream and its output to our stdout/stderr."""

    def __init__(self, ctx: Context, conn: Hijacked, *, tty: bool, stdin: bool,
                 detach_keys: bytes | None) -> None:
        self.ctx = ctx
        self.conn = conn
        self.tty = tty
        self.stdin = stdin
        self.detach_keys = detach_keys if tty and stdin else None
        self.detached = False
        self._raw: Any = None

    def start_input(self) -> None:
        """Feed stdin in a thread (or half-close at once when there is no stdin)."""
        if not self.stdin:
            self.conn.close_write()
            return
        import _thread  # not threading: its import costs ~3.5 ms (functools, collections)

        _thread.start_new_thread(self._copy_input, ())

    def _read_stdin(self) -> Callable[[], bytes]:
        stream = self.ctx.stdin
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        if fd is not None:
            return lambda: os.read(fd, 32768)
        binary = self.ctx.stdin_binary()
        reader = getattr(binary, "read1", None) or binary.read
        return lambda: bytes(reader(32768))

    def _copy_input(self) -> None:
        read = self._read_stdin()
        keys = self.detach_keys
        matched = b""
        try:
            while True:
                data = read()
                if not data:
                    break
                if keys:
                    out = bytearray()
                    for byte in data:
                        b = bytes([byte])
                        if not keys.startswith(matched + b):
                            out += matched  # a false start: pass it on, and look at b afresh
                            matched = b""
                        if keys.startswith(matched + b):
                            matched += b
                            if matched == keys:
                                self.detached = True
                                self.conn.write(bytes(out))
                                self._stop()
                                return
                        else:
                            out += b
                    data = bytes(out)
                if data:
                    self.conn.write(data)
            if matched:
                self.conn.write(matched)
        except OSError:
            return
        self.conn.close_write()

    def _stop(self) -> None:
        import socket
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def copy_output(self) -> None:
        for stream, data in self.conn.frames(self.tty):
            if stream in (STDERR, SYSERR):
                self.ctx.err_bytes(data)
            else:
                self.ctx.out_bytes(data)
        self.conn.close()

    # -- terminal ------------------------------------------------------------------------------

    def raw_terminal(self) -> None:
        if not (self.tty and self.stdin and self.ctx.is_tty(self.ctx.stdin)):
            return
        import termios
        import tty as ttymod
        fd = self.ctx.stdin.fileno()
        self._raw = (fd, termios.tcgetattr(fd))
        ttymod.setraw(fd)

    def restore_terminal(self) -> None:
        if self._raw is not None:
            import termios
            fd, attrs = self._raw
            termios.tcsetattr(fd, termios.TCSADRAIN, attrs)
            self._raw = None


def terminal_size(ctx: Context) -> tuple[int, int] | None:
    for stream in (ctx.stdout, ctx.stdin):
        try:
            size = os.get_terminal_size(stream.fileno())
            return size.lines, size.columns
        except (AttributeError, OSError, ValueError):
            continue
    return None


def watch_resize(ctx: Context, resize: Callable[[int, int], None]) -> Callable[[], None]:
    """Resize now and on every SIGWINCH; returns a function that stops watching.

    The first resize can come before the process is running (an exec's pty appears a little
    after its start): like the docker CLI, retry it ten times with a growing pause (10 ms,
    20 ms, ...) in the background."""
    def do_resize(*_: Any) -> bool:
        size = terminal_size(ctx)
        if not size:
            return True
        try:
            resize(*size)
        except DockyardError:
            return False  # "is not running" before start or after exit: ignored
        return True

    def first_resize() -> None:
        import time
        for attempt in range(11):
            if do_resize():
                return
            time.sleep((attempt + 1) * 0.01)

    import _signal  # not signal/threading: ~5 ms of imports (enum, functools, collections)
    import _thread

    if not do_resize():
        _thread.start_new_thread(first_resize, ())
    try:
        previous = _signal.signal(_signal.SIGWINCH, do_resize)
    except ValueError:  # not the main thread (in-process callers): no handler
        return lambda: None

    def stop() -> None:
        _signal.signal(_signal.SIGWINCH, previous)
    return stop


def proxy_signals(ctx: Context, container: str) -> Callable[[], None]:
    """Forward SIGINT/SIGTERM/SIGHUP... to the container (docker's --sig-proxy)."""
    import _signal  # not signal/threading: ~5 ms of imports (enum, functools, collections)

    names = {getattr(_signal, name): name for name in (
        "SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")}
    clients: list[Any] = []

    def forward(signum: int, _frame: Any) -> None:
        if not clients:
            clients.append(ctx.client.clone())
        try:
            clients[0].kill(container, names[signum])
        except DockyardError:
            pass

    previous: dict[int, Any] = {}
    try:
        for signum in names:
            previous[signum] = _signal.signal(signum, forward)
    except ValueError:  # not the main thread (in-process callers): no forwarding
        return lambda: None

    def restore() -> None:
        for signum, handler in previous.items():
            _signal.signal(signum, handler)
    return restore


class Waiter:
    """``POST /wait`` on its own connection, registered before start.

    The daemon answers a wait's headers at once and its body at exit (dockerd does); we
    hold start until the headers are in, so a container that exits at once cannot be missed.
    A daemon that holds the headers back only costs ``REGISTER_TIMEOUT`` seconds.
    """

    REGISTER_TIMEOUT = 2.0

    def __init__(self, ctx: Context, container: str, condition: str) -> None:
        self.result: dict[str, Any] | None = None
        self.error: DockyardError | None = None
        import _thread  # not threading: its import costs ~3.5 ms (functools, collections)

        self._client = ctx.client.clone()
        # two locks held until the thread lets go: "the wait is registered", "the reply is in"
        self._registered = _thread.allocate_lock()
        self._registered.acquire()
        self._done = _thread.allocate_lock()
        self._done.acquire()
        _thread.start_new_thread(self._run, (container, condition))
        self._registered.acquire(timeout=self.REGISTER_TIMEOUT)

    def _run(self, container: str, condition: str) -> None:
        from dockyard import fastjson

        registered = False
        try:
            resp = self._client.request("POST", f"/containers/{quote(container)}/wait",
                                        {"condition": condition})
            registered = True
            self._registered.release()
            self.result = fastjson.loads(resp.read() or b"{}")
        except DockyardError as exc:
            self.error = exc
        except ValueError as exc:
            self.error = DockyardError(f"bad reply to wait: {exc}")
        finally:
            if not registered:
                self._registered.release()
            self._client.close()
            self._done.release()

    def status(self) -> int:
        self._done.acquire()
        self._done.release()
        if self.error is not None:
            raise self.error
        result = self.result or {}
        error = result.get("Error") or {}
        if error.get("Message"):
            raise StatusError(125, f"Error waiting for container: {error['Message']}")
        return int(result.get("StatusCode", 0))


