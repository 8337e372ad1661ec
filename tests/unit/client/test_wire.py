"""The minimal HTTP/1.1 layer against hand-written replies (socketpair, no server)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from dockyard.client.wire import Connection, ProtocolError

# a socket left to the garbage collector warns from __del__, which pytest reports as an
# unraisable-exception warning (ignored project-wide): here it fails the test that leaked
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

Serve = Callable[[bytes], tuple[Connection, list[bytes]]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(reply)``: a connection whose peer reads one request's head and answers ``reply``
    (then half-closes). Both ends are closed and the peer joined after the test."""
    opened: list[tuple[Connection, socket.socket, threading.Thread]] = []

    def start(reply: bytes) -> tuple[Connection, list[bytes]]:
        ours, theirs = socket.socketpair()
        received: list[bytes] = []

        def run() -> None:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = theirs.recv(65536)
                if not chunk:
                    return
                data += chunk
            received.append(data)
            theirs.sendall(reply)
            theirs.shutdown(socket.SHUT_WR)

        peer = threading.Thread(target=run, daemon=True)
        peer.start()
        conn = Connection(ours, "localhost")
        opened.append((conn, theirs, peer))
        return conn, received

    yield start
    for conn, theirs, peer in opened:
        conn.close()        # a peer still waiting for a request sees EOF
        peer.join(10)
        theirs.close()


def test_content_length_body_and_keep_alive(serve: Serve) -> None:
    conn, sent = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello")
    resp = conn.request("GET", "/v1.41/info", None, {"User-Agent": "t"})
    assert (resp.status, resp.getheader("x-a"), resp.read()) == (200, "b", b"hello")
    assert conn.reusable
    assert sent[0].startswith(b"GET /v1.41/info HTTP/1.1\r\nHost: localhost\r\n")


def test_chunked_body_with_extensions_and_trailers(serve: Serve) -> None:
    conn, _ = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n")
    resp = conn.request("GET", "/x")
    assert resp.read() == b"abcde"
    assert conn.reusable


def test_body_until_close_and_connection_close(serve: Serve) -> None:
    conn, _ = serve(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nraw bytes")
    resp = conn.request("GET", "/x")
    assert resp.read() == b"raw bytes"
    assert not conn.reusable and conn.closed


def test_head_and_204_have_no_body(serve: Serve) -> None:
    conn, _ = serve(b"HTTP/1.1 204 No Content\r\n\r\n")
    resp = conn.request("POST", "/x", b"{}", {"Content-Type": "application/json"})
    assert resp.status == 204 and resp.read() == b"" and conn.reusable


def test_post_without_body_sends_content_length_zero(serve: Serve) -> None:
    conn, sent = serve(b"HTTP/1.1 204 No Content\r\n\r\n")
    conn.request("POST", "/containers/x/start")
    assert b"Content-Length: 0\r\n" in sent[0]


def test_truncated_chunked_body_ends_the_connection(serve: Serve) -> None:
    conn, _ = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nshort")
    resp = conn.request("GET", "/x")
    assert resp.read() == b"short"
    assert conn.closed


@pytest.mark.parametrize("reply", [b"garbage\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"])
def test_malformed_replies_are_protocol_errors(serve: Serve, reply: bytes) -> None:
    conn, _ = serve(reply)
    with pytest.raises(ProtocolError):
        conn.request("GET", "/x")


def test_silent_close_is_a_connection_reset(serve: Serve) -> None:
    conn, _ = serve(b"")
    with pytest.raises(ConnectionResetError):
        conn.request("GET", "/x")


@pytest.mark.parametrize("text", ["a b/c:d@e", "é%&=?+", "sha256:abc", '{"a":["b c"]}', ""])
def test_quote_and_urlencode_match_urllib(text: str) -> None:
    import urllib.parse

    from dockyard.client.wire import quote, urlencode
    assert quote(text, "/:@") == urllib.parse.quote(text, safe="/:@")
    assert urlencode([("k", text), ("names", "x y")]) == urllib.parse.urlencode(
        [("k", text), ("names", "x y")])
