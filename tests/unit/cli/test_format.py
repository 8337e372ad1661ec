"""Docker's output conventions and the run/create flag translation."""

from __future__ import annotations

import os

import pytest

from dockyard.cli.containers import container_row, format_ports, stats_row
from dockyard.cli.context import Context, UsageError
from dockyard.cli.format import human_duration, human_size, parse_filters, tabulate, truncate
from dockyard.cli.images import image_rows
from dockyard.cli.options import (
    add_create_flags,
    build_create,
    parse_bytes,
    parse_duration,
    parse_restart,
)
from dockyard.cli.progress import StreamError, display, progress_bar
from dockyard.cli.run import start_error_status
from dockyard.cli.session import parse_detach_keys


def test_tabulate_matches_tabwriter_min_width_and_padding() -> None:
    out = tabulate([["CONTAINER ID", "IMAGE", "NAMES"], ["abc", "busybox", "x"]])
    assert out == "CONTAINER ID   IMAGE     NAMES\nabc            busybox   x\n"


@pytest.mark.parametrize(("n", "text"), [(0, "0B"), (999, "999B"), (1234, "1.23kB"),
                                         (4261000, "4.26MB"), (1.5e9, "1.5GB")])
def test_human_size_is_decimal_three_digits(n: float, text: str) -> None:
    assert human_size(n) == text


@pytest.mark.parametrize(("s", "text"), [(0.5, "Less than a second"), (1, "1 second"),
                                         (59, "59 seconds"), (60, "About a minute"),
                                         (600, "10 minutes"), (3600, "About an hour"),
                                         (7200, "2 hours"), (3 * 86400, "3 days"),
                                         (20 * 86400, "2 weeks"), (90 * 86400, "3 months"),
                                         (800 * 86400, "2 years")])
def test_human_duration_matches_go_units(s: float, text: str) -> None:
    assert human_duration(s) == text


def test_truncate_uses_an_ellipsis_within_the_width() -> None:
    assert truncate("sh -c 'while true; do sleep 1; done'", 20) == "sh -c 'while true; …"
    assert truncate("short", 20) == "short"


def test_ps_row_formats_like_docker() -> None:
    c = {"Id": "a" * 64, "Names": ["/web"], "Image": "sha256:" + "b" * 64,
         "Command": "sh -c 'while true; do sleep 1; done'", "Created": 1000.0,
         "State": "running", "Status": "Up 2 minutes",
         "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                   {"PrivatePort": 443, "Type": "tcp"}]}
    row = container_row(c, now=1000.0 + 120)
    assert row["ID"] == "a" * 12
    assert row["Image"] == "b" * 12
    assert row["Command"] == '"sh -c \'while true; …"'
    assert row["RunningFor"] == "2 minutes ago"
    assert row["Ports"] == "0.0.0.0:8080->80/tcp, 443/tcp"
    assert row["Names"] == "web"
    assert container_row(c, trunc=False)["ID"] == "a" * 64


def test_ipv6_port_bindings_are_bracketed() -> None:
    assert format_ports([{"IP": "::", "PrivatePort": 80, "PublicPort": 81, "Type": "tcp"}]) == \
        "[::]:81->80/tcp"


def test_image_rows_list_each_tag_and_dangling_images() -> None:
    imgs = [{"Id": "sha256:" + "c" * 64, "RepoTags": ["busybox:latest", "bb:1"], "Size": 1980000,
             "Created": 0},
            {"Id": "sha256:" + "d" * 64, "RepoTags": None, "RepoDigests": None, "Size": 0,
             "Created": 0}]
    rows = image_rows(imgs)
    assert [(r["Repository"], r["Tag"], r["Size"]) for r in rows] == [
        ("busybox", "latest", "1.98MB"), ("bb", "1", "1.98MB"), ("<none>", "<none>", "0B")]


def test_stats_row_computes_cpu_and_memory_like_docker() -> None:
    s = {"id": "e" * 64, "name": "/web",
         "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000}, "system_cpu_usage": 20_000_000,
                       "online_cpus": 2},
         "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000}, "system_cpu_usage": 10_000_000},
         "memory_stats": {"usage": 2 * 1024 * 1024, "limit": 8 * 1024 * 1024,
                          "stats": {"total_inactive_file": 1024 * 1024}},
         "pids_stats": {"current": 3}}
    row = stats_row("web", s)
    assert row["CPUPerc"] == "20.00%"
    assert row["MemUsage"] == "1MiB / 8MiB"
    assert row["MemPerc"] == "12.50%"
    assert row["PIDs"] == "3"


def test_parse_filters_groups_values_by_key() -> None:
    assert parse_filters(["status=exited", "label=a", "status=created"]) == {
        "status": ["exited", "created"], "label": ["a"]}
    with pytest.raises(UsageError):
        parse_filters(["novalue"])


def test_units() -> None:
    assert parse_bytes("512m") == 512 * 1024 * 1024
    assert parse_bytes("1g") == 1 << 30
    assert parse_duration("1m30s") == 90 * 10**9
    assert parse_restart("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert parse_restart("no") == {"Name": "", "MaximumRetryCount": 0}
    with pytest.raises(UsageError):
        parse_restart("always:3")


def _create(args: list[str], detach: bool = False) -> dict:
    import io

    from dockyard.cli.context import Parser
    ctx = Context(stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO(), env={})
    p = Parser(ctx, "run", "", short_help=False)
    p.add_argument("-d", "--detach", action="store_true")
    add_create_flags(p)
    ns = p.parse(args)
    return build_create(ns, {"FROM_HOST": "yes"}, detach=detach or ns.detach)


def test_run_flags_become_docker_create_body() -> None:
    body = _create(["-it", "--rm", "--name", "x", "-e", "A=1", "-e", "FROM_HOST", "-e", "UNSET",
                    "-v", "/h:/c:ro", "-v", "/anon", "-p", "127.0.0.1:8080:80", "-p", "53/udp",
                    "-w", "/tmp", "-u", "1:2", "--entrypoint", "/bin/sh", "--restart", "always",
                    "--init", "--memory", "64m", "--cpus", "1.5", "--pids-limit", "10",
                    "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--read-only",
                    "--tmpfs", "/run:size=1m", "-h", "box", "--add-host", "a:1.2.3.4",
                    "--dns", "1.1.1.1", "-l", "k=v", "--health-cmd", "true",
                    "--health-interval", "2s", "--mount", "type=volume,src=v,dst=/v,readonly",
                    "busybox", "sh", "-c", "echo hi"])
    hc = body["HostConfig"]
    assert body["Cmd"] == ["sh", "-c", "echo hi"]
    assert body["Image"] == "busybox"
    assert (body["Tty"], body["OpenStdin"], body["StdinOnce"], body["AttachStdin"]) == (
        True, True, True, True)
    assert body["Env"] == ["A=1", "FROM_HOST=yes"]
    assert hc["Binds"] == ["/h:/c:ro"] and body["Volumes"] == {"/anon": {}}
    assert hc["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                  "53/udp": [{"HostIp": "", "HostPort": ""}]}
    assert body["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert (body["WorkingDir"], body["User"], body["Entrypoint"]) == ("/tmp", "1:2", ["/bin/sh"])
    assert hc["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    assert hc["AutoRemove"] and hc["Init"] and hc["ReadonlyRootfs"]
    assert (hc["Memory"], hc["NanoCpus"], hc["PidsLimit"]) == (64 << 20, 1_500_000_000, 10)
    assert (hc["CapAdd"], hc["CapDrop"]) == (["NET_ADMIN"], ["ALL"])
    assert hc["Tmpfs"] == {"/run": "size=1m"}
    assert body["Hostname"] == "box" and hc["ExtraHosts"] == ["a:1.2.3.4"]
    assert hc["Dns"] == ["1.1.1.1"] and body["Labels"] == {"k": "v"}
    assert body["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 2 * 10**9}
    assert hc["Mounts"] == [{"Type": "volume", "Source": "v", "Target": "/v", "ReadOnly": True}]
    assert hc["NetworkMode"] == "default"


def test_detached_run_attaches_nothing() -> None:
    body = _create(["-d", "busybox"], detach=True)
    assert not (body["AttachStdin"] or body["AttachStdout"] or body["AttachStderr"])
    assert body["Cmd"] is None


def test_detach_keys_and_start_error_statuses() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    assert start_error_status('exec: "nope": executable file not found in $PATH') == 127
    assert start_error_status("open /x: permission denied") == 126
    assert start_error_status("cgroup trouble") == 125


def test_progress_on_a_terminal_rewrites_each_layer_line() -> None:
    import io
    out = io.StringIO()
    display([{"status": "Pulling from library/busybox", "id": "latest"},
             {"status": "Pulling fs layer", "id": "aaa"},
             {"status": "Pulling fs layer", "id": "bbb"},
             {"status": "Downloading", "id": "aaa", "progressDetail": {"current": 500,
                                                                        "total": 1000}},
             {"status": "Pull complete", "id": "aaa"},
             {"status": "Digest: sha256:1"}], out, tty=True)
    text = out.getvalue()
    assert "\x1b[2A" in text  # aaa is two lines up when bbb has been printed
    assert progress_bar(500, 1000) in text
    assert progress_bar(500, 1000) == "[" + "=" * 25 + ">" + " " * 25 + "]     500B/1kB"
    assert progress_bar(1048576, 2097152) == \
        "[" + "=" * 25 + ">" + " " * 25 + "]  1.049MB/2.097MB"
    assert progress_bar(5, 5).startswith("[" + "=" * 50 + ">]")
    assert progress_bar(1048576, 2097152, width=80) == " 1.049MB/2.097MB"
    assert progress_bar(7, 0) == "      7B"


def test_progress_off_a_terminal_prints_status_changes_only() -> None:
    import io
    out = io.StringIO()
    display([{"status": "Pulling fs layer", "id": "aaa"},
             {"status": "Downloading", "id": "aaa", "progressDetail": {"current": 1, "total": 2}},
             {"status": "Pull complete", "id": "aaa"}], out, tty=False)
    assert out.getvalue() == "aaa: Pulling fs layer\naaa: Pull complete\n"


def test_progress_stream_errors_are_raised() -> None:
    import io
    with pytest.raises(StreamError, match="manifest unknown"):
        display([{"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"}],
                io.StringIO(), tty=False)


def test_rfc3339_parsing_keeps_nanoseconds_and_offsets() -> None:
    from dockyard.cli.format import go_time_string, parse_rfc3339, parse_time
    assert parse_rfc3339("2024-01-02T03:04:05Z") == 1704164645.0
    assert parse_rfc3339("2024-01-02T03:04:05+01:00") == 1704164645.0 - 3600
    assert abs(parse_rfc3339("2024-01-02T03:04:05.123456789Z") - 1704164645.123456789) < 1e-6
    assert parse_rfc3339("0001-01-01T00:00:00Z") == 0.0
    text = go_time_string("2026-11-27T21:48:06.059227010Z")
    assert ".05922701 " in text  # the written digits, trailing zeros trimmed, as Go prints
    assert parse_time("1700000000") == "1700000000"
    assert parse_time("10m", now=1000.0) == "400"
    with pytest.raises(UsageError):
        parse_time("yesterday")


class _FakeConn:
    def __init__(self) -> None:
        self.sent = b""
        self.half_closed = False

        class _Sock:
            def shutdown(self, how: int) -> None:
                pass
        self.sock = _Sock()

    def write(self, data: bytes) -> None:
        self.sent += data

    def close_write(self) -> None:
        self.half_closed = True


@pytest.mark.parametrize(("typed", "sent", "detached"), [
    (b"ab\x10\x10\x11cd", b"ab\x10", True),   # a false start, then the real sequence
    (b"a\x10b", b"a\x10b", False),            # ctrl-p alone passes through
    (b"x\x10", b"x\x10", False),              # held prefix flushed at EOF
    (b"\x10\x11", b"", True),
])
def test_detach_keys_are_caught_on_our_side(typed: bytes, sent: bytes, detached: bool) -> None:
    import io

    from dockyard.cli.session import Session
    ctx = Context(stdin=io.BytesIO(typed), stdout=io.StringIO(), stderr=io.StringIO(), env={})
    conn = _FakeConn()
    session = Session(ctx, conn, tty=True, stdin=True, detach_keys=b"\x10\x11")  # type: ignore[arg-type]
    session._copy_input()
    assert (conn.sent, session.detached, conn.half_closed) == (sent, detached, not detached)


def test_relative_bind_sources_become_absolute_like_docker(
        monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    monkeypatch.chdir(tmp_path)
    body = _create(["-v", "./data:/d:ro", "-v", "named:/n", "--mount",
                    "type=bind,src=rel,dst=/r", "busybox"])
    assert body["HostConfig"]["Binds"] == [f"{tmp_path}/data:/d:ro", "named:/n"]
    assert body["HostConfig"]["Mounts"][0]["Source"] == f"{tmp_path}/rel"
