"""Pure parts of the engine: config, framing, json-file log, spec, signals, mounts, changes."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable

import pytest

from dockyard.api.framing import frame, split_frames
from dockyard.daemon.config import parse_args, reload
from dockyard.daemon.containers import parse_signal
from dockyard.daemon.dockerfile_changes import apply_changes
from dockyard.daemon.logs import follow, read_lines
from dockyard.daemon.spec import SpecInputs, build_spec, resolve_user
from dockyard.errors import InvalidArgument
from dockyard.shim.logfile import JsonLog, parse_size


def test_frames_round_trip_with_docker_header() -> None:
    data = frame(1, b"hi\n") + frame(2, b"err")
    assert data[:8] == b"\x01\x00\x00\x00\x00\x00\x00\x03"
    assert split_frames(data) == [(1, b"hi\n"), (2, b"err")]


def test_config_flags_and_file_conflict(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "daemon.json")
    with open(path, "w") as f:
        json.dump({"data-root": "/x", "debug": True}, f)
    with pytest.raises(InvalidArgument, match="specified both as a flag and in the configuration file: data-root"):
        parse_args(["--config-file", path, "--data-root", "/y"])
    cfg = parse_args(["--config-file", path, "-H", "unix:///tmp/a.sock"])
    assert cfg.data_root == "/x" and cfg.debug and cfg.log_level == "debug"
    assert cfg.hosts == ("unix:///tmp/a.sock",)


def test_explicit_missing_config_file_is_an_error(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(InvalidArgument, match="no such file"):
        parse_args(["--config-file", os.path.join(tmp_path, "nope.json")])


def test_runtimes_from_file_and_reload(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "daemon.json")
    with open(path, "w") as f:
        json.dump({"runtimes": {"mine": {"path": "/usr/bin/true"}}, "default-runtime": "mine"}, f)
    cfg = parse_args(["--config-file", path])
    assert cfg.default_runtime == "mine"
    assert cfg.runtime(None).path == "/usr/bin/true"
    with open(path, "w") as f:
        json.dump({"log-opts": {"max-size": "1m"}}, f)
    fresh = reload(cfg)
    assert fresh.log_opts["max-size"] == "1m"
    assert fresh.default_runtime == "dockyard"


def test_unknown_runtime_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="unknown or invalid runtime name: nope"):
        parse_args([]).runtime("nope")


def test_json_log_lines_and_rotation(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "c-json.log")
    log = JsonLog(path, max_size=200, max_file=3)
    for i in range(20):
        log.write("stdout", f"line {i}\n".encode())
    log.write("stderr", b"partial")
    log.close()
    assert os.path.exists(path + ".1") and os.path.exists(path + ".2") and not os.path.exists(path + ".3")
    lines, _ = read_lines(path, tail=2, since=0, until=0)
    assert [(x.stream, x.data) for x in lines] == [("stdout", b"line 19\n"), ("stderr", b"partial")]
    with open(path) as f:
        entry = json.loads(f.readline())
    assert set(entry) == {"log", "stream", "time"} and entry["time"].endswith("Z")


def _follow_all(path: str, step: Callable[[int], None]) -> list[bytes]:
    """Run follow() on ``path``; ``step(n)`` acts on the file (and the stop flag) before poll n."""
    state = {"polls": 0, "stopped": False}

    def stopped() -> bool:
        step(state["polls"])
        state["polls"] += 1
        return state["polls"] > 2

    async def collect() -> list[bytes]:
        return [line.data async for line in follow(path, 0, 0, stopped)]

    return asyncio.run(collect())


def test_follow_reads_the_last_lines_of_a_log_removed_once_stopped(
        tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "c-json.log")
    log = JsonLog(path, max_size=0, max_file=1)

    def step(n: int) -> None:
        if n == 1:  # the container writes, exits, and is removed before the next poll reads
            log.write("stdout", b"kept\n")
            log.close()
            os.unlink(path)

    assert _follow_all(path, step) == [b"kept\n"]


def test_follow_reads_a_rotated_file_to_its_end_then_the_new_one(
        tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "c-json.log")
    log = JsonLog(path, max_size=0, max_file=1)

    def step(n: int) -> None:
        if n == 1:
            log.write("stdout", b"old\n")
            log.close()
            os.rename(path, path + ".1")
            fresh = JsonLog(path, max_size=0, max_file=1)
            fresh.write("stdout", b"new\n")
            fresh.close()

    assert _follow_all(path, step) == [b"old\n", b"new\n"]


def test_parse_size() -> None:
    assert parse_size("10m", 0) == 10 * 1024 * 1024
    assert parse_size("1k", 0) == 1024
    assert parse_size(None, 7) == 7


def test_signals() -> None:
    assert parse_signal("SIGTERM") == 15 and parse_signal("KILL") == 9 and parse_signal("1") == 1
    with pytest.raises(InvalidArgument):
        parse_signal("NOPE")


def test_spec_has_dockers_defaults(tmp_path: os.PathLike[str]) -> None:
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    spec = build_spec(SpecInputs(cid="a" * 64, config={"Cmd": ["sh"], "User": "nobody", "Env": ["A=1"]},
                                 host_config={"Memory": 64 << 20, "CapDrop": ["NET_RAW"]}, rootfs=root,
                                 container_dir="/c"))
    assert spec["process"]["user"] == {"uid": 65534, "gid": 65534}
    assert "A=1" in spec["process"]["env"]
    assert "CAP_NET_RAW" not in spec["process"]["capabilities"]["bounding"]
    assert "CAP_CHOWN" in spec["process"]["capabilities"]["bounding"]
    assert spec["linux"]["resources"]["memory"]["limit"] == 64 << 20
    assert spec["linux"]["cgroupsPath"] == "/dockyard/" + "a" * 64
    assert {n["type"] for n in spec["linux"]["namespaces"]} == {"mount", "network", "uts", "pid", "ipc"}
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]
    with pytest.raises(InvalidArgument, match="unable to find user ghost"):
        resolve_user(root, "ghost")


def test_commit_changes() -> None:
    cfg = apply_changes({"Env": ["A=1"]}, ['CMD ["sh","-c","x"]', "ENV A=2", "WORKDIR /w", "EXPOSE 80"])
    assert cfg["Cmd"] == ["sh", "-c", "x"]
    assert cfg["Env"] == ["A=2"]
    assert cfg["WorkingDir"] == "/w"
    assert cfg["ExposedPorts"] == {"80/tcp": {}}
    with pytest.raises(InvalidArgument):
        apply_changes({}, ["RUN x"])


def test_detach_keys_parse_and_scan_across_reads() -> None:
    from dockyard.api.routes.containers import DetachScanner, parse_detach_keys

    assert parse_detach_keys(None) == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    with pytest.raises(InvalidArgument, match="Invalid detach keys"):
        parse_detach_keys("ctrl-ab")
    scan = DetachScanner(b"\x10\x11")
    assert scan.feed(b"ls\x10") == (b"ls", False)
    assert scan.feed(b"x") == (b"\x10x", False)  # a lone ctrl-p is passed on
    assert scan.feed(b"a\x10") == (b"a", False)
    assert scan.feed(b"\x11rest") == (b"", True)
