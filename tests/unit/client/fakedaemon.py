"""An in-process fake Engine API on a UNIX socket, for client and CLI unit tests.

Routes are ``(METHOD, regex) -> handler(req)``; a handler returns ``(status, body, headers)``
(body: bytes, a JSON-able value, or an iterable of byte chunks sent chunked) or calls
``req.hijack()`` to take the raw connection after ``101 UPGRADED``. Every request is recorded
in ``daemon.requests`` as ``(method, path, query, headers, body)``.
"""

from __future__ import annotations

import json
import os
import re
import socketserver
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

Handler = Callable[["Request"], Any]


class Request:
    def __init__(self, handler: _Handler, method: str) -> None:
        self.h = handler
        self.method = method
        parts = urlsplit(handler.path)
        self.raw_path = parts.path
        self.path = re.sub(r"^/v1\.\d+", "", parts.path)
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.query_all = parse_qs(parts.query)
        self.headers = {k.lower(): v for k, v in handler.headers.items()}
        self.body = b""
        self.match: re.Match[str] | None = None
        if self.headers.get("transfer-encoding") == "chunked":
            while True:
                size = int(handler.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    handler.rfile.readline()
                    break
                self.body += handler.rfile.read(size)
                handler.rfile.readline()
        elif int(self.headers.get("content-length", 0)):
            self.body = handler.rfile.read(int(self.headers["content-length"]))
        self.hijacked = False

    def json(self) -> Any:
        return json.loads(self.body)

    def hijack(self, status_line: str = "101 UPGRADED") -> tuple[Any, Any]:
        """Answer 101 and return (rfile, wfile) of the raw connection."""
        self.hijacked = True
        self.h.wfile.write(f"HTTP/1.1 {status_line}\r\nContent-Type: application/vnd.docker"
                           ".raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
        self.h.wfile.flush()
        self.h.close_connection = True
        return self.h.rfile, self.h.wfile


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _dispatch(self, method: str) -> None:
        req = Request(self, method)
        daemon = self.server.daemon
        daemon.requests.append((method, req.path, req.query, req.headers, req.body))
        if method == "HEAD" and req.raw_path == "/_ping":
            self.send_response(200)
            self.send_header("Api-Version", daemon.api_version)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        for (m, pattern), fn in daemon.routes.items():
            match = re.fullmatch(pattern, req.path)
            if m == method and match:
                req.match = match
                result = fn(req)
                if req.hijacked:
                    return
                self._reply(*result) if isinstance(result, tuple) else self._reply(200, result)
                return
        self._reply(404, {"message": f"page not found: {method} {req.path}"})

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is None:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if isinstance(body, (bytes, str)) or not isinstance(body, Iterable) or isinstance(
                body, (dict, list)):
            data = body if isinstance(body, bytes) else (
                body.encode() if isinstance(body, str) else json.dumps(body).encode())
            if not isinstance(body, (bytes, str)):
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in body:
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    daemon: FakeDaemon


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    daemon: FakeDaemon


class FakeDaemon:
    """``path`` is a UNIX socket path, or ``tcp`` to listen on 127.0.0.1:<free port>."""

    def __init__(self, path: str, api_version: str = "1.41") -> None:
        self.path = path
        self.api_version = api_version
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str], bytes]] = []
        self.server: Any = (_TCPServer(("127.0.0.1", 0), _Handler) if path == "tcp"
                            else _Server(path, _Handler))
        self.server.daemon = self
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def host(self) -> str:
        if self.path == "tcp":
            return f"tcp://127.0.0.1:{self.server.server_address[1]}"
        return f"unix://{self.path}"

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.routes[(method, pattern)] = fn
            return fn
        return deco

    def __enter__(self) -> FakeDaemon:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.path != "tcp" and os.path.exists(self.path):
            os.unlink(self.path)

    def paths(self) -> list[str]:
        return [f"{m} {p}" for m, p, *_ in self.requests]
