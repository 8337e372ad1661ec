"""The client against a fake daemon: version negotiation, errors, streams, hijack."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from dockyard import errors
from dockyard.client import Client, parse_host, resolve_host
from dockyard.client.streams import FrameDemuxer, encode_frame, json_stream
from tests.unit.client.fakedaemon import FakeDaemon, Request

# a socket left to the garbage collector warns from __del__, which pytest reports as an
# unraisable-exception warning (ignored project-wide): here it fails the test that leaked
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


def test_host_resolution_order_is_flag_then_dockyard_then_docker_then_default() -> None:
    env = {"DOCKYARD_HOST": "unix:///a.sock", "DOCKER_HOST": "unix:///b.sock"}
    assert resolve_host("tcp://1.2.3.4:5", env) == "tcp://1.2.3.4:5"
    assert resolve_host(None, env) == "unix:///a.sock"
    assert resolve_host(None, {"DOCKER_HOST": "unix:///b.sock"}) == "unix:///b.sock"
    assert resolve_host(None, {}) == "unix:///var/run/dockyard.sock"


def test_parse_host_accepts_unix_tcp_and_refuses_others() -> None:
    assert parse_host("unix:///x/y.sock").path == "/x/y.sock"
    ep = parse_host("tcp://127.0.0.1:2375")
    assert (ep.scheme, ep.host, ep.port) == ("tcp", "127.0.0.1", 2375)
    with pytest.raises(errors.InvalidArgument):
        parse_host("ssh://host")


def test_ping_negotiates_the_lower_api_version(fake_daemon: FakeDaemon, client: Client) -> None:
    fake_daemon.api_version = "1.40"
    fake_daemon.route("GET", "/version")(lambda r: {"ApiVersion": "1.40"})
    client.get("/version")
    assert client.version == "1.40"
    assert [p for m, p, *_ in fake_daemon.requests] == ["/_ping", "/version"]


def test_requests_carry_the_negotiated_prefix(fake_daemon: FakeDaemon, client: Client) -> None:
    seen = []

    @fake_daemon.route("GET", "/containers/json")
    def _list(req: Request) -> object:
        seen.append(req.raw_path)
        return []

    client.containers(all=True)
    assert seen == ["/v1.41/containers/json"]
    assert fake_daemon.requests[-1][2] == {"all": "1"}


def test_keep_alive_connection_is_reused(fake_daemon: FakeDaemon, client: Client) -> None:
    ports = []

    @fake_daemon.route("GET", "/info")
    def _info(req: Request) -> object:
        ports.append(id(req.h.connection))
        return {"ok": True}

    for _ in range(3):
        assert client.info() == {"ok": True}
    assert len(set(ports)) == 1


@pytest.mark.parametrize(("status", "message", "cls"), [
    (404, "No such container: x", errors.ContainerNotFound),
    (404, "No such image: busybox:latest", errors.ImageNotFound),
    (404, "network foo not found", errors.NotFound),
    (409, "conflict: name in use", errors.Conflict),
    (400, "bad", errors.InvalidArgument),
    (500, "boom", errors.Internal),
])
def test_error_replies_map_to_the_error_tree_with_the_daemon_message(
        fake_daemon: FakeDaemon, client: Client, status: int, message: str, cls: type) -> None:
    fake_daemon.route("POST", "/containers/x/start")(lambda r: (status, {"message": message}))
    with pytest.raises(cls) as info:
        client.start("x")
    assert info.value.message == message
    assert info.value.status == status  # type: ignore[attr-defined]


def test_unreachable_daemon_says_so() -> None:
    with Client("unix:///nonexistent/dockyard.sock") as client, pytest.raises(
            errors.Unavailable, match=r"Cannot connect to the Docker daemon at "
            "unix:///nonexistent/dockyard.sock"):
        client.ping()


def test_chunked_json_stream_is_decoded_as_it_arrives(fake_daemon: FakeDaemon,
                                                      client: Client) -> None:
    gate = threading.Event()

    def chunks() -> object:
        yield b'{"status":"Pulling fs layer","id":"a"}\r\n{"status":"Down'
        gate.wait(5)
        yield b'loading","id":"a"}\r\n'
        yield b'{"status":"Digest: sha256:1"}'

    fake_daemon.route("POST", "/images/create")(lambda r: (200, chunks()))
    stream = client.pull("busybox", "latest")
    first = next(stream)  # arrives before the rest is even sent
    assert first == {"status": "Pulling fs layer", "id": "a"}
    gate.set()
    rest = list(stream)
    assert [m["status"] for m in rest] == ["Downloading", "Digest: sha256:1"]
    assert fake_daemon.requests[-1][3]["x-registry-auth"] == "e30="


def test_json_stream_handles_split_values_and_missing_separators() -> None:
    data = [b'{"a": 1}{"b"', b": 2}\n", b'  {"c": "\xc3', b'\xa9"}']
    it = iter(data)
    assert list(json_stream(lambda n: next(it, b""))) == [{"a": 1}, {"b": 2}, {"c": "é"}]


def test_frame_demuxer_splits_frames_across_reads() -> None:
    wire = encode_frame(1, b"out\n") + encode_frame(2, b"err\n") + encode_frame(1, b"x" * 10)
    demuxer = FrameDemuxer()
    frames = []
    for i in range(0, len(wire), 3):
        frames += demuxer.feed(wire[i:i + 3])
    assert frames == [(1, b"out\n"), (2, b"err\n"), (1, b"x" * 10)]
    assert demuxer.pending == 0


def test_hijacked_attach_keeps_reading_output_after_stdin_half_close(
        fake_daemon: FakeDaemon, client: Client) -> None:
    got_stdin = []

    @fake_daemon.route("POST", "/containers/c1/attach")
    def _attach(req: Request) -> None:
        rfile, wfile = req.hijack()
        assert req.headers["upgrade"] == "tcp"
        data = rfile.read()  # until the client's half-close
        got_stdin.append(data)
        # output after EOF on stdin must still reach the client
        wfile.write(encode_frame(1, data.upper()) + encode_frame(2, b"bye\n"))
        wfile.flush()

    with client.attach("c1", stdin=True) as conn:
        conn.write(b"hello\n")
        conn.close_write()
        frames = list(conn.frames(tty=False))
    assert got_stdin == [b"hello\n"]
    assert frames == [(1, b"HELLO\n"), (2, b"bye\n")]
    assert fake_daemon.requests[-1][2] == {"stream": "1", "stdin": "1", "stdout": "1",
                                           "stderr": "1"}


def test_hijack_error_reply_is_raised(fake_daemon: FakeDaemon, client: Client) -> None:
    fake_daemon.route("POST", "/exec/e1/start")(lambda r: (404, {"message": "No such exec instance: e1"}))
    with pytest.raises(errors.NotFound, match="No such exec instance"):
        client.exec_start("e1", tty=False)


def test_request_body_from_a_file_is_sent_chunked(fake_daemon: FakeDaemon,
                                                  client: Client) -> None:
    import io
    bodies = []

    @fake_daemon.route("POST", "/images/load")
    def _load(req: Request) -> object:
        bodies.append((req.headers.get("transfer-encoding"), req.body))
        return (200, iter([b'{"stream":"Loaded image: x:latest\\n"}\r\n']))

    out = list(client.stream("POST", "/images/load", None, io.BytesIO(b"tar" * 50000)))
    assert out == [{"stream": "Loaded image: x:latest\n"}]
    assert bodies == [("chunked", b"tar" * 50000)]


def test_daemon_closing_an_idle_connection_is_retried_once(fake_daemon: FakeDaemon,
                                                          client: Client) -> None:
    calls = []

    @fake_daemon.route("GET", "/info")
    def _info(req: Request) -> object:
        calls.append(1)
        if len(calls) == 1:
            return (200, {"n": 1})
        return (200, {"n": len(calls)})

    assert client.info() == {"n": 1}
    # the daemon drops the idle keep-alive socket
    assert client._conn is not None
    client._conn.sock.shutdown(socket.SHUT_RDWR)
    assert client.info()["n"] == 2
    assert json.dumps(calls) == "[1, 1]"


def test_tcp_hosts_work_for_requests_and_hijacks() -> None:
    with FakeDaemon("tcp") as daemon, Client(daemon.host) as client:
        daemon.route("GET", "/info")(lambda r: {"Name": "tcp-fake"})

        @daemon.route("POST", "/containers/c2/attach")
        def _attach(req: Request) -> None:
            assert req.headers["host"].startswith("127.0.0.1:")
            _, wfile = req.hijack()
            wfile.write(encode_frame(1, b"over tcp\n"))
            wfile.flush()

        assert client.info() == {"Name": "tcp-fake"}
        with client.attach("c2", stdin=False) as conn:
            conn.close_write()
            assert list(conn.frames(tty=False)) == [(1, b"over tcp\n")]
