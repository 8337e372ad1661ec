"""CLI commands in-process against a fake daemon: output, exit codes, request sequences."""

from __future__ import annotations

import base64
import io
import json
import os
import threading

import pytest

from dockyard.cli.main import main
from dockyard.client.streams import encode_frame
from tests.unit.client.fakedaemon import FakeDaemon, Request

CID = "c" * 64


class Out(io.StringIO):
    """A text stream with a binary side, like sys.stdout."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = io.BytesIO()

    def text(self) -> str:
        return self.getvalue() + self.buffer.getvalue().decode()


def cli(daemon: FakeDaemon | None, *args: str, stdin: bytes = b"",
        env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = Out(), Out()
    inp = io.TextIOWrapper(io.BytesIO(stdin))
    environ = {"HOME": "/nonexistent"} | (env or {})
    if daemon is not None:
        environ["DOCKYARD_HOST"] = daemon.host
    code = main(list(args), stdin=inp, stdout=out, stderr=err, env=environ)
    return code, out.text(), err.text()


def _container_routes(daemon: FakeDaemon, exit_code: int, output: bytes = b"hi\n",
                      missing_image_once: bool = False) -> threading.Event:
    started = threading.Event()
    state = {"creates": 0}

    @daemon.route("POST", "/containers/create")
    def _create(req: Request) -> object:
        state["creates"] += 1
        if missing_image_once and state["creates"] == 1:
            return (404, {"message": "No such image: busybox:latest"})
        return (201, {"Id": CID, "Warnings": []})

    @daemon.route("POST", f"/containers/{CID}/attach")
    def _attach(req: Request) -> None:
        rfile, wfile = req.hijack()
        stdin = rfile.read() if req.query.get("stdin") else b""
        started.wait(5)
        wfile.write(encode_frame(1, output) + (encode_frame(1, stdin) if stdin else b""))
        wfile.write(encode_frame(2, b"warn\n"))
        wfile.flush()

    @daemon.route("POST", f"/containers/{CID}/wait")
    def _wait(req: Request) -> object:
        def body() -> object:  # headers at once, the body at exit (as dockerd does)
            yield b" "
            started.wait(5)
            yield json.dumps({"StatusCode": exit_code, "Error": None}).encode()
        return (200, body())

    @daemon.route("POST", f"/containers/{CID}/start")
    def _start(req: Request) -> object:
        started.set()
        return (204, None)

    @daemon.route("POST", "/images/create")
    def _pull(req: Request) -> object:
        return (200, iter([b'{"status":"Pulling from library/busybox","id":"latest"}\r\n',
                           b'{"status":"Status: Downloaded newer image for busybox:latest"}\r\n']))
    return started


def test_run_follows_dockers_sequence_and_returns_the_container_exit_code(
        fake_daemon: FakeDaemon) -> None:
    _container_routes(fake_daemon, exit_code=3)
    code, out, err = cli(fake_daemon, "run", "--rm", "busybox", "sh", "-c", "exit 3")
    assert code == 3
    assert out == "hi\n" and err == "warn\n"
    paths = fake_daemon.paths()
    assert paths[0] == "HEAD /_ping"
    assert paths.index(f"POST /containers/{CID}/attach") < paths.index(
        f"POST /containers/{CID}/start")
    assert paths.index(f"POST /containers/{CID}/wait") < paths.index(
        f"POST /containers/{CID}/start")
    wait = next(r for r in fake_daemon.requests if r[1].endswith("/wait"))
    assert wait[2] == {"condition": "removed"}
    create = json.loads(next(r for r in fake_daemon.requests if r[1].endswith("/create"))[4])
    assert create["Cmd"] == ["sh", "-c", "exit 3"] and create["HostConfig"]["AutoRemove"]


def test_run_i_sends_stdin_and_half_closes(fake_daemon: FakeDaemon) -> None:
    _container_routes(fake_daemon, exit_code=0)
    code, out, _ = cli(fake_daemon, "run", "-i", "busybox", "cat", stdin=b"from stdin\n")
    assert code == 0
    assert out == "hi\nfrom stdin\n"
    wait = next(r for r in fake_daemon.requests if r[1].endswith("/wait"))
    assert wait[2] == {"condition": "next-exit"}


def test_run_pulls_a_missing_image_then_creates_again(fake_daemon: FakeDaemon) -> None:
    _container_routes(fake_daemon, exit_code=0, missing_image_once=True)
    code, _, err = cli(fake_daemon, "run", "busybox")
    assert code == 0
    assert "Unable to find image 'busybox:latest' locally" in err
    assert "Status: Downloaded newer image for busybox:latest" in err
    paths = fake_daemon.paths()
    assert paths.count("POST /containers/create") == 2
    pull = next(r for r in fake_daemon.requests if r[1] == "/images/create")
    assert pull[2] == {"fromImage": "busybox", "tag": "latest"}
    assert pull[3]["x-registry-auth"] == "e30="


def test_run_d_prints_the_id_and_does_not_attach(fake_daemon: FakeDaemon) -> None:
    _container_routes(fake_daemon, exit_code=0)
    code, out, _ = cli(fake_daemon, "run", "-d", "busybox", "sleep", "9")
    assert (code, out) == (0, CID + "\n")
    assert not any("/attach" in p for p in fake_daemon.paths())


@pytest.mark.parametrize(("message", "status"), [
    ('exec: "nope": executable file not found in $PATH', 127),
    ("exec: /etc: permission denied", 126),
    ("cgroups: cannot find cgroup mount destination", 125),
])
def test_run_start_failures_use_dockers_exit_codes(fake_daemon: FakeDaemon, message: str,
                                                   status: int) -> None:
    _container_routes(fake_daemon, exit_code=0)
    fake_daemon.route("POST", f"/containers/{CID}/start")(
        lambda r: (400, {"message": message}))
    code, _, err = cli(fake_daemon, "run", "busybox", "nope")
    assert code == status
    assert f"Error response from daemon: {message}" in err


def test_create_errors_exit_125(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/containers/create")(
        lambda r: (409, {"message": 'Conflict. The container name "/x" is already in use'}))
    code, _, err = cli(fake_daemon, "run", "--name", "x", "busybox")
    assert code == 125
    assert "is already in use" in err


def test_ps_prints_dockers_table(fake_daemon: FakeDaemon) -> None:
    import time
    fake_daemon.route("GET", "/containers/json")(lambda r: [{
        "Id": CID, "Names": ["/web"], "Image": "busybox", "Command": "sleep 100",
        "Created": int(time.time()) - 3, "State": "running", "Status": "Up 3 seconds",
        "Ports": []}])
    code, out, _ = cli(fake_daemon, "ps")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == ("CONTAINER ID   IMAGE     COMMAND       CREATED         STATUS         "
                        "PORTS     NAMES")
    assert lines[1].startswith("cccccccccccc   busybox   \"sleep 100\"   ")
    assert lines[1].endswith("Up 3 seconds             web")
    code, out, _ = cli(fake_daemon, "ps", "-q")
    assert out == "c" * 12 + "\n"
    code, out, _ = cli(fake_daemon, "ps", "--format", "{{.Names}}:{{.State}}")
    assert out == "web:running\n"
    code, out, _ = cli(fake_daemon, "ps", "--format", "table {{.Names}}\\t{{.Status}}")
    assert out == "NAMES     STATUS\nweb       Up 3 seconds\n"
    assert fake_daemon.requests[-1][2] == {}
    cli(fake_daemon, "ps", "-a", "--filter", "status=exited")
    assert fake_daemon.requests[-1][2] == {"all": "1", "filters": '{"status":["exited"]}'}


def test_inspect_with_format_and_not_found(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/web/json")(lambda r: {
        "Id": CID, "State": {"Running": True}, "Config": {"Cmd": ["sh"]}})
    for kind in ("containers/nope/json", "images/nope/json", "volumes/nope", "networks/nope"):
        fake_daemon.route("GET", "/" + kind)(lambda r: (404, {"message": "No such object"}))
    code, out, _ = cli(fake_daemon, "inspect", "-f", "{{.State.Running}} {{json .Config}}",
                       "web")
    assert (code, out) == (0, 'true {"Cmd":["sh"]}\n')
    code, out, _ = cli(fake_daemon, "inspect", "web")
    assert json.loads(out)[0]["Id"] == CID and out.startswith("[\n    {\n")
    code, out, err = cli(fake_daemon, "inspect", "nope")
    assert code == 1 and "No such object: nope" in err


def test_logs_demultiplexes_stdout_and_stderr(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/web/json")(lambda r: {"Id": CID, "Config": {"Tty": False}})
    fake_daemon.route("GET", f"/containers/{CID}/logs")(lambda r: (200, iter([
        encode_frame(1, b"one\n"), encode_frame(2, b"two\n") + encode_frame(1, b"three\n")])))
    code, out, err = cli(fake_daemon, "logs", "--tail", "5", "-t", "web")
    assert (code, out, err) == (0, "one\nthree\n", "two\n")
    assert fake_daemon.requests[-1][2] == {"stdout": "1", "stderr": "1", "timestamps": "1",
                                           "tail": "5"}


def test_exec_returns_the_exec_exit_code(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/containers/web/exec")(lambda r: (201, {"Id": "e1"}))

    @fake_daemon.route("POST", "/exec/e1/start")
    def _start(req: Request) -> None:
        assert json.loads(req.body) == {"Detach": False, "Tty": False}
        _, wfile = req.hijack()
        wfile.write(encode_frame(1, b"in exec\n"))
        wfile.flush()

    fake_daemon.route("GET", "/exec/e1/json")(lambda r: {"ExitCode": 7, "Running": False})
    code, out, _ = cli(fake_daemon, "exec", "-e", "A=1", "web", "sh", "-c", "exit 7")
    assert (code, out) == (7, "in exec\n")
    body = json.loads(next(r for r in fake_daemon.requests if r[1] == "/containers/web/exec")[4])
    assert body["Cmd"] == ["sh", "-c", "exit 7"] and body["Env"] == ["A=1"]


def test_multi_target_commands_report_each_failure(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/containers/a/stop")(lambda r: (204, None))
    fake_daemon.route("POST", "/containers/b/stop")(
        lambda r: (404, {"message": "No such container: b"}))
    code, out, err = cli(fake_daemon, "stop", "a", "b")
    assert (code, out) == (1, "a\n")
    assert err == "Error response from daemon: No such container: b\n"


def test_usage_errors_exit_125_and_unknown_commands_exit_1(fake_daemon: FakeDaemon) -> None:
    code, _, err = cli(fake_daemon, "ps", "--bogus")
    assert code == 125
    assert err == ("unknown flag: --bogus\n\nUsage:  dockyard ps [OPTIONS]\n\n"
                   "Run 'dockyard ps --help' for more information\n")
    code, _, err = cli(fake_daemon, "rm")
    assert code == 1 and err.startswith("dockyard: 'dockyard rm' requires at least 1 argument\n")
    code, _, err = cli(fake_daemon, "rename", "a")
    assert code == 1 and err.startswith("dockyard: 'dockyard rename' requires 2 arguments\n")
    code, _, err = cli(fake_daemon, "exec", "x")
    assert code == 1 and "requires at least 2 arguments" in err
    code, _, err = cli(fake_daemon, "logs", "--tail")
    assert code == 125 and err.startswith("flag needs an argument: --tail\n")
    code, _, err = cli(fake_daemon, "ps", "extra")
    assert code == 1 and err.startswith("dockyard: 'dockyard ps' accepts no arguments\n")
    code, _, err = cli(fake_daemon, "frobnicate")
    assert code == 1 and "'frobnicate' is not a dockyard command" in err
    code, out, _ = cli(fake_daemon, "ps", "--help")
    assert code == 0 and "--all" in out
    assert fake_daemon.requests == []  # none of that needed the daemon


def test_unreachable_daemon_exits_1_with_dockers_message() -> None:
    code, _, err = cli(None, "-H", "unix:///nonexistent/x.sock", "ps")
    assert code == 1
    assert "Cannot connect to the Docker daemon at unix:///nonexistent/x.sock" in err


def test_host_flag_beats_the_environment(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/json")(lambda r: [])
    code, _, _ = cli(None, "-H", fake_daemon.host, "ps",
                     env={"DOCKYARD_HOST": "unix:///nonexistent/x.sock"})
    assert code == 0
    code, _, _ = cli(None, "ps", env={"DOCKER_HOST": fake_daemon.host})
    assert code == 0


def test_login_stores_docker_compatible_credentials(fake_daemon: FakeDaemon,
                                                    tmp_path: os.PathLike[str]) -> None:
    fake_daemon.route("POST", "/auth")(lambda r: {"Status": "Login Succeeded"})
    env = {"DOCKER_CONFIG": str(tmp_path)}
    code, out, _ = cli(fake_daemon, "login", "-u", "me", "--password-stdin", "127.0.0.1:5000",
                       stdin=b"s3cret\n", env=env)
    assert (code, out) == (0, "Login Succeeded\n")
    assert json.loads(fake_daemon.requests[-1][4]) == {
        "username": "me", "password": "s3cret", "serveraddress": "127.0.0.1:5000"}
    config = json.loads((tmp_path / "config.json").read_text())  # type: ignore[operator]
    assert base64.b64decode(config["auths"]["127.0.0.1:5000"]["auth"]) == b"me:s3cret"
    # the credentials now travel with pulls from that registry
    fake_daemon.route("POST", "/images/create")(lambda r: (200, iter([b'{"status":"ok"}'])))
    code, _, _ = cli(fake_daemon, "pull", "127.0.0.1:5000/x:1", env=env)
    sent = json.loads(base64.urlsafe_b64decode(fake_daemon.requests[-1][3]["x-registry-auth"]))
    assert sent["username"] == "me" and sent["password"] == "s3cret"
    code, out, _ = cli(fake_daemon, "logout", "127.0.0.1:5000", env=env)
    assert out == "Removing login credentials for 127.0.0.1:5000\n"
    assert json.loads((tmp_path / "config.json").read_text())["auths"] == {}  # type: ignore[operator]


def test_pull_without_a_terminal_prints_plain_lines(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/images/create")(lambda r: (200, iter([
        b'{"status":"Pulling from library/busybox","id":"latest"}\r\n',
        b'{"status":"Downloading","id":"aaa","progressDetail":{"current":1,"total":2}}\r\n',
        b'{"status":"Pull complete","id":"aaa"}\r\n',
        b'{"status":"Digest: sha256:abc"}\r\n'])))
    code, out, _ = cli(fake_daemon, "pull", "busybox")
    assert code == 0
    assert out == ("Using default tag: latest\nlatest: Pulling from library/busybox\n"
                   "aaa: Pull complete\nDigest: sha256:abc\ndocker.io/library/busybox:latest\n")
    code, out, _ = cli(fake_daemon, "pull", "-q", "busybox:1")
    assert out == "docker.io/library/busybox:1\n"


def test_pull_error_in_stream_fails(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/images/create")(lambda r: (200, iter([
        b'{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}\r\n'])))
    code, _, err = cli(fake_daemon, "pull", "busybox:nope")
    assert code == 1 and "manifest unknown" in err


def test_daemon_and_registry_are_dispatched_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types
    seen = []
    for name, attr in (("dockyard.daemon.main", "main"), ("dockyard.registry.cli", "main")):
        mod = types.ModuleType(name)
        setattr(mod, attr, lambda argv, _n=name: seen.append((_n, argv)) or 0)
        monkeypatch.setitem(sys.modules, name, mod)
    assert main(["daemon", "--data-root", "/x"]) == 0
    assert main(["registry", "serve"]) == 0
    assert seen == [("dockyard.daemon.main", ["--data-root", "/x"]),
                    ("dockyard.registry.cli", ["serve"])]


def test_logs_of_a_tty_container_are_raw(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/t/json")(lambda r: {"Id": CID, "Config": {"Tty": True}})
    fake_daemon.route("GET", f"/containers/{CID}/logs")(
        lambda r: (200, iter([b"\x01\x00raw tty bytes\r\n"])))
    code, out, err = cli(fake_daemon, "logs", "t")
    assert (code, out, err) == (0, "\x01\x00raw tty bytes\r\n", "")


def test_port_version_info_and_events(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/web/json")(lambda r: {"Id": CID, "NetworkSettings": {
        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None}}})
    assert cli(fake_daemon, "port", "web")[1] == "80/tcp -> 0.0.0.0:8080\n"
    assert cli(fake_daemon, "port", "web", "80")[1] == "0.0.0.0:8080\n"
    code, _, err = cli(fake_daemon, "port", "web", "53/udp")
    assert code == 1 and "No public port '53/udp' published for web" in err
    fake_daemon.route("GET", "/version")(lambda r: {"Version": "9.9", "ApiVersion": "1.41",
                                                    "Platform": {"Name": "Fake"}})
    assert cli(fake_daemon, "version", "-f", "{{.Server.Version}} {{.Client.ApiVersion}}")[1] \
        == "9.9 1.41\n"
    fake_daemon.route("GET", "/info")(lambda r: {"Containers": 2, "ContainersRunning": 1,
                                                 "ServerVersion": "9.9", "NCPU": 2})
    out = cli(fake_daemon, "info")[1]
    assert " Containers: 2\n  Running: 1\n" in out and " CPUs: 2\n" in out
    fake_daemon.route("GET", "/events")(lambda r: (200, iter([
        b'{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":'
        b'{"name":"web","image":"busybox"}},"time":1700000000,"timeNano":1700000000000000001}\n'])))
    out = cli(fake_daemon, "events", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")[1]
    assert out == "container start web\n"
    import re
    out = cli(fake_daemon, "events")[1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000001(Z|[+-]\d\d:\d\d) "
                        r"container start abc \(image=busybox, name=web\)\n", out), out


def test_volume_and_network_listings(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/volumes")(lambda r: {"Volumes": [
        {"Name": "b", "Driver": "local"}, {"Name": "a", "Driver": "local"}], "Warnings": None})
    assert cli(fake_daemon, "volume", "ls")[1] == "DRIVER    VOLUME NAME\nlocal     a\nlocal     b\n"
    assert cli(fake_daemon, "volume", "ls", "-q")[1] == "a\nb\n"
    fake_daemon.route("GET", "/networks")(lambda r: [
        {"Id": "f" * 64, "Name": "bridge", "Driver": "bridge", "Scope": "local"}])
    assert cli(fake_daemon, "network", "ls")[1] == (
        "NETWORK ID     NAME      DRIVER    SCOPE\nffffffffffff   bridge    bridge    local\n")
    code, _, err = cli(fake_daemon, "volume", "frob")
    assert code == 125 and 'unknown command "frob" for "dockyard volume"' in err


def test_prune_reports_what_went(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/images/prune")(lambda r: {
        "ImagesDeleted": [{"Untagged": "x:1"}, {"Deleted": "sha256:ab"}],
        "SpaceReclaimed": 1234})
    code, out, _ = cli(fake_daemon, "image", "prune", "-f", "-a")
    assert code == 0
    assert out == ("Deleted Images:\nuntagged: x:1\ndeleted: sha256:ab\n\n"
                   "Total reclaimed space: 1.23kB\n")
    assert fake_daemon.requests[-1][2] == {"filters": '{"dangling":["false"]}'}


def test_ps_json_format_prints_formatted_fields(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/json")(lambda r: [{"Id": CID, "Names": ["/a"]}])
    out = cli(fake_daemon, "ps", "--format", "json")[1]
    row = json.loads(out)  # docker prints the formatted fields, keys sorted, not the API object
    assert (row["ID"], row["Names"], row["Size"]) == ("c" * 12, "a", "0B")
    assert list(row) == sorted(row)


def test_rm_and_restart_conflict_is_refused_before_create(fake_daemon: FakeDaemon) -> None:
    code, _, err = cli(fake_daemon, "run", "--rm", "--restart", "always", "busybox")
    assert code == 125 and "conflicting options: cannot specify both --restart and --rm" in err
    assert "POST /containers/create" not in fake_daemon.paths()


def test_create_attaches_like_docker_so_start_a_i_keeps_output(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/containers/create")(lambda r: (201, {"Id": CID}))
    code, out, _ = cli(fake_daemon, "create", "-i", "--name", "x", "busybox", "cat")
    assert (code, out) == (0, CID + "\n")
    _, _, query, _, body = fake_daemon.requests[-1]
    sent = json.loads(body)
    assert query == {"name": "x"}
    assert (sent["AttachStdin"], sent["AttachStdout"], sent["AttachStderr"], sent["OpenStdin"],
            sent["StdinOnce"]) == (True, True, True, True, True)


def _tar(*entries: tuple[str, str, str], mode: int = 0o644, uid: int = 0) -> bytes:
    """(kind, name, data-or-target) -> tar bytes; kind is file, sym, link, dir, chr or fifo."""
    import tarfile
    types = {"sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE,
             "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for kind, name, value in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.uname, info.gname = mode, uid, uid, "", ""
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value.encode()))
            else:
                info.type = types[kind]
                info.linkname = value
                if kind == "chr":
                    info.devmajor, info.devminor = 1, 3  # /dev/null
                tar.addfile(info)
    return buf.getvalue()


OUTSIDE = "{tmp}/secret"  # an existing file next to the destination, never inside it


@pytest.mark.parametrize("entries", [
    [("file", "d/../../escape", "x")],
    [("file", "{tmp}/escape", "x")],  # an absolute name
    [("sym", "d", "{tmp}"), ("file", "d/escape", "x")],  # writing through the tar's own link
    [("dir", "d", ""), ("sym", "d/up", "../.."), ("file", "d/up/escape", "x")],
    [("dir", "d", ""), ("sym", "d/up", "../.."), ("dir", "d/up/escape", "")],
    [("file", "d", ""), ("link", "d/hard", "/etc/passwd")],
    [("file", "d", ""), ("link", "d/hard", "../secret")],
    [("dir", "d", ""), ("sym", "d/s", OUTSIDE), ("link", "d/hard", "d/s")],  # link(2) follows
    [("dir", "d", ""), ("chr", "d/null", "")],
    [("dir", "d", ""), ("fifo", "d/pipe", "")],
])
def test_cp_from_a_container_refuses_entries_that_leave_the_destination(
        fake_daemon: FakeDaemon, tmp_path: os.PathLike[str], entries: list) -> None:
    tmp = os.fspath(tmp_path)
    with open(os.path.join(tmp, "secret"), "w") as f:
        f.write("host secret\n")
    entries = [(k, n.format(tmp=tmp), v.format(tmp=tmp)) for k, n, v in entries]
    fake_daemon.route("GET", "/containers/c/archive")(lambda r: (200, _tar(*entries)))
    dest = os.path.join(tmp, "dest")
    os.mkdir(dest)
    code, _, err = cli(fake_daemon, "cp", "c:/d", dest)
    bad = entries[-1][1]  # the last entry is the hostile one: all before it are written
    assert code == 1 and err.startswith(f"Error: refusing {bad!r}: "), err
    assert not os.path.lexists(os.path.join(tmp, "escape"))
    assert not os.path.lexists(os.path.join(dest, bad))  # nothing of the refused entry
    with open(os.path.join(tmp, "secret")) as f:
        assert f.read() == "host secret\n"


def test_cp_from_a_container_refuses_writing_through_a_link_already_on_the_host(
        fake_daemon: FakeDaemon, tmp_path: os.PathLike[str]) -> None:
    tmp = os.fspath(tmp_path)
    os.makedirs(os.path.join(tmp, "dest", "d"))
    os.mkdir(os.path.join(tmp, "elsewhere"))
    os.symlink(os.path.join(tmp, "elsewhere"), os.path.join(tmp, "dest", "d", "sub"))
    fake_daemon.route("GET", "/containers/c/archive")(lambda r: (200, _tar(
        ("dir", "d", ""), ("file", "d/sub/escape", "x"))))
    code, _, err = cli(fake_daemon, "cp", "c:/d", os.path.join(tmp, "dest"))
    assert code == 1 and err.startswith("Error: refusing 'd/sub/escape': "), err
    assert os.listdir(os.path.join(tmp, "elsewhere")) == []


@pytest.mark.parametrize("archive", [False, True])
def test_cp_from_a_container_drops_setuid_and_owners_unless_archive(
        fake_daemon: FakeDaemon, tmp_path: os.PathLike[str], archive: bool) -> None:
    fake_daemon.route("GET", "/containers/c/archive")(lambda r: (200, _tar(
        ("dir", "d", ""), ("file", "d/su", "#!/bin/sh\n"), mode=0o6777, uid=4321)))
    code, _, err = cli(fake_daemon, "cp", *(["-a"] if archive else []), "c:/d", str(tmp_path))
    assert code == 0, err
    st = os.stat(os.path.join(tmp_path, "d", "su"))
    assert st.st_mode & 0o7777 == 0o755  # no setuid/setgid, no group/other write
    # owners are kept only with -a (and only root can chown, so unprivileged runs keep ours)
    want = 4321 if archive and os.geteuid() == 0 else os.getuid()
    assert (st.st_uid, st.st_gid) == (want, want if archive and os.geteuid() == 0 else os.getgid())


def test_cp_from_a_container_into_a_new_name_renames_hard_links_too(
        fake_daemon: FakeDaemon, tmp_path: os.PathLike[str]) -> None:
    fake_daemon.route("GET", "/containers/c/archive")(lambda r: (200, _tar(
        ("dir", "d", ""), ("file", "d/f", "data"), ("link", "d/h", "d/f"))))
    code, _, err = cli(fake_daemon, "cp", "c:/d", os.path.join(tmp_path, "copy"))
    assert code == 0, err
    f, h = os.path.join(tmp_path, "copy", "f"), os.path.join(tmp_path, "copy", "h")
    assert os.path.samefile(f, h) and not os.path.exists(os.path.join(tmp_path, "d"))


def test_cp_keeps_absolute_symlinks_as_docker_does(fake_daemon: FakeDaemon,
                                                   tmp_path: os.PathLike[str]) -> None:
    fake_daemon.route("GET", "/containers/c/archive")(lambda r: (200, _tar(
        ("file", "etc/hostname", "box\n"), ("sym", "etc/localtime", "/usr/share/zoneinfo/UTC"))))
    code, _, err = cli(fake_daemon, "cp", "c:/etc", str(tmp_path))
    assert code == 0, err
    assert os.readlink(os.path.join(tmp_path, "etc", "localtime")) == "/usr/share/zoneinfo/UTC"
    with open(os.path.join(tmp_path, "etc", "hostname")) as f:
        assert f.read() == "box\n"
    assert fake_daemon.requests[-1][2] == {"path": "/etc"}


def test_stats_streams_one_connection_per_container_and_redraws(fake_daemon: FakeDaemon) -> None:
    sample = {"id": CID, "name": "/web", "cpu_stats": {}, "precpu_stats": {},
              "memory_stats": {"usage": 1024 * 1024, "limit": 4 * 1024 * 1024},
              "pids_stats": {"current": 2}}
    fake_daemon.route("GET", "/containers/web/stats")(lambda r: (200, iter([
        json.dumps(sample).encode() + b"\n", json.dumps(sample).encode() + b"\n"])))
    code, out, _ = cli(fake_daemon, "stats", "web")
    assert code == 0
    assert out.startswith("\x1b[2J\x1b[H")  # clear and home before each table
    assert "1MiB / 4MiB" in out and "25.00%" in out
    assert fake_daemon.requests[-1][2] == {"stream": "1"}
    code, out, _ = cli(fake_daemon, "stats", "--no-stream", "web")
    assert out.splitlines()[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert fake_daemon.requests[-1][2] == {"stream": "0"}


def test_pull_all_tags_sends_no_tag(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/images/create")(lambda r: (200, iter([b'{"status":"ok"}'])))
    code, out, _ = cli(fake_daemon, "pull", "-a", "127.0.0.1:5000/x")
    assert code == 0 and out.endswith("127.0.0.1:5000/x\n")
    assert fake_daemon.requests[-1][2] == {"fromImage": "127.0.0.1:5000/x"}
    code, _, err = cli(fake_daemon, "pull", "-a", "x:1")
    assert code == 125 and "tag can't be used with --all-tags/-a" in err
