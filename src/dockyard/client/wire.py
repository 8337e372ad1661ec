"""A minimal HTTP/1.1 client: just what the Engine API needs, nothing more.

Why not :mod:`http.client`: importing it pulls in the ``email`` package and ``ssl`` — about
28 ms, more than half of the CLI's start-up on this machine (``python -X importtime``). The
Engine API needs little: one request at a time per connection, ``Content-Length`` or chunked
bodies (both ways), keep-alive, and the ``101 UPGRADED`` hijack whose socket then carries raw
streams. Replies are read through one buffered reader, so bytes that arrive right after the
headers of a hijacked reply are never lost.

::

    request   METHOD SP target SP HTTP/1.1 CRLF *(header CRLF) CRLF [body]
    reply     HTTP/1.1 SP status SP reason CRLF *(header CRLF) CRLF [body]
    chunked   *(hex-size CRLF data CRLF) "0" CRLF *(trailer CRLF) CRLF
"""

from __future__ import annotations

import io

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = ["Connection", "ProtocolError", "Response", "quote", "urlencode"]

MAX_HEADER_BYTES = 65536
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str, safe: str = "/") -> str:
    """Percent-encode like urllib.parse.quote (which costs ~3 ms of start-up to import)."""
    keep = _UNRESERVED | frozenset(safe.encode())
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode())


def urlencode(pairs: list[tuple[str, str]]) -> str:
    """``k=v&k2=v2`` with quote_plus-style escaping, like urllib.parse.urlencode."""
    return "&".join(f"{quote(k, '').replace('%20', '+')}={quote(v, '').replace('%20', '+')}"
                    for k, v in pairs)


class ProtocolError(ConnectionError):
    """The daemon's reply is not HTTP/1.1 as we know it."""


class Response:
    """A reply; its body is read with :meth:`read` (all) or :meth:`read1` (what is there)."""

    def __init__(self, conn: Connection, method: str) -> None:
        self.conn = conn
        rfile = conn.rfile
        line = rfile.readline(MAX_HEADER_BYTES)
        if not line:
            raise ConnectionResetError("daemon closed the connection without replying")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ProtocolError(f"malformed status line from daemon: {line[:80]!r}")
        try:
            self.status = int(parts[1])
        except ValueError:
            raise ProtocolError(f"malformed status line from daemon: {line[:80]!r}") from None
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        total = 0
        while True:
            hline = rfile.readline(MAX_HEADER_BYTES)
            total += len(hline)
            if not hline or total > MAX_HEADER_BYTES:
                raise ProtocolError("truncated or oversized reply headers")
            if hline in (b"\r\n", b"\n"):
                break
            key, _, value = hline.decode("latin-1").partition(":")
            self.headers[key.strip().lower()] = value.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self._remaining: int | None = None  # None: until close (or chunked)
        self._chunk_left = 0
        self.done = False
        if method == "HEAD" or self.status in (101, 204, 304) or 100 <= self.status < 200:
            self._remaining = 0
        elif not self.chunked and length is not None:
            try:
                self._remaining = int(length)
            except ValueError:
                raise ProtocolError(f"bad Content-Length {length!r}") from None
        if self._remaining == 0 and not self.chunked:
            self._finish()

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            keep = self.headers.get("connection", "").lower() != "close" and (
                self.chunked or self._remaining is not None)
            self.conn._response_done(keep)

    def read1(self, n: int = 65536) -> bytes:
        """Up to ``n`` body bytes, as soon as any are available; b"" at the end."""
        if self.done:
            return b""
        rfile = self.conn.rfile
        if self.chunked:
            if self._chunk_left == 0:
                size_line = rfile.readline(1024)
                if not size_line:
                    self._abort()
                    return b""
                try:
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    self._abort()
                    raise ProtocolError(f"bad chunk size {size_line[:40]!r}") from None
                if size == 0:
                    while True:  # trailers, then the empty line
                        trailer = rfile.readline(MAX_HEADER_BYTES)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    self._finish()
                    return b""
                self._chunk_left = size
            data = rfile.read1(min(n, self._chunk_left))
            if not data:
                self._abort()
                return b""
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                rfile.readline(16)  # the CRLF after the chunk's data
            return data
        if self._remaining is None:
            data = rfile.read1(n)
            if not data:
                self._abort()
            return data
        data = rfile.read1(min(n, self._remaining))
        if not data:
            self._abort()
            return b""
        self._remaining -= len(data)
        if self._remaining == 0:
            self._finish()
        return data

    def read(self, n: int = -1) -> bytes:
        """The whole body (or ``n`` bytes of it)."""
        out = bytearray()
        while n < 0 or len(out) < n:
            data = self.read1(65536 if n < 0 else n - len(out))
            if not data:
                break
            out += data
        return bytes(out)

    def _abort(self) -> None:
        self.done = True
        self.conn._response_done(False)

    def close(self) -> None:
        if not self.done:
            self._abort()


class Connection:
    """One socket, one request at a time; reused while replies say keep-alive."""

    def __init__(self, sock: socket, host_header: str) -> None:
        self.sock = sock
        self.rfile = io.BufferedReader(_SocketReader(sock))
        self.host_header = host_header
        self.reusable = False
        self.closed = False

    def request(self, method: str, target: str, body: bytes | Iterable[bytes] | Any = None,
                headers: Mapping[str, str] | None = None) -> Response:
        head = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        hdrs = dict(headers or {})
        chunks: Iterable[bytes] | None = None
        if isinstance(body, (bytes, bytearray)):
            hdrs["Content-Length"] = str(len(body))
        elif body is not None:
            hdrs["Transfer-Encoding"] = "chunked"
            chunks = _iter_body(body)
        elif method in ("POST", "PUT"):
            hdrs["Content-Length"] = "0"
        head += [f"{k}: {v}" for k, v in hdrs.items()]
        self.reusable = False
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, (bytes, bytearray)):
            self.sock.sendall(data + bytes(body))
        else:
            self.sock.sendall(data)
            if chunks is not None:
                for chunk in chunks:
                    if chunk:
                        self.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.sock.sendall(b"0\r\n\r\n")
        return Response(self, method)

    def _response_done(self, keep: bool) -> None:
        self.reusable = keep
        if not keep:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.rfile.close()
            finally:
                self.sock.close()


class _SocketReader(io.RawIOBase):
    """What ``socket.makefile("rb")`` wraps in a BufferedReader, for a plain ``_socket``
    object too (the ``socket`` module costs start-up: it builds enums of every constant).
    Closing it leaves the socket open; :meth:`Connection.close` closes both."""

    def __init__(self, sock: socket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return int(self._sock.recv_into(buffer))

    def fileno(self) -> int:
        return int(self._sock.fileno())


def _iter_body(body: Any) -> Iterable[bytes]:
    if hasattr(body, "read"):
        while True:
            chunk = body.read(65536)
            if not chunk:
                return
            yield chunk
    else:
        yield from body
