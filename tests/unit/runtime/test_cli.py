"""dockyard-runtime's command-line contract, in-process (no root)."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

from dockyard.errors import InvalidArgument
from dockyard.oci.runtime_spec import validate
from dockyard.runtime.cli import main
from dockyard.runtime.kill import parse_signal
from dockyard.runtime.namespaces import NAMESPACES


@pytest.mark.parametrize("value", ["9", "KILL", "SIGKILL", "kill"])
def test_signals_by_number_or_name(value: str) -> None:
    assert parse_signal(value) == signal.SIGKILL


def test_unknown_signal_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="unknown signal"):
        parse_signal("SIGNOPE")


def test_features_come_from_the_code_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["linux"]["namespaces"] == sorted(NAMESPACES)
    assert "rbind" in out["mountOptions"] and "rprivate" in out["mountOptions"]
    assert "CAP_SYS_ADMIN" in out["linux"]["capabilities"]
    assert out["hooks"][0] == "prestart"


def test_spec_writes_a_valid_config_once(tmp_path: Any) -> None:
    assert main(["spec", "--bundle", str(tmp_path)]) == 0
    validate(json.loads((tmp_path / "config.json").read_text()))
    assert main(["spec", "--bundle", str(tmp_path)]) == 1


def test_errors_go_to_the_log_as_json_lines(tmp_path: Any) -> None:
    log = tmp_path / "log.json"
    code = main(["--root", str(tmp_path / "root"), "--log", str(log), "--log-format", "json",
                 "state", "missing"])
    assert code == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "does not exist" in entry["msg"]


def test_create_with_invalid_bundle_fails_before_any_state(tmp_path: Any) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"ociVersion": "1.0.2",
                                                      "root": {"path": "rootfs"}}))
    log = tmp_path / "log.json"
    root = tmp_path / "root"
    code = main(["--root", str(root), "--log", str(log), "--log-format", "json", "create",
                 "--bundle", str(tmp_path), "c1"])
    assert code == 1
    assert json.loads(log.read_text())["msg"] == "process: is required"
    assert not (root / "c1").exists()


def test_list_of_empty_root_is_empty(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(tmp_path), "list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_parser_reads_containerd_create_line() -> None:
    from dockyard.runtime.cli import parse_args

    verb, a = parse_args(["--root", "/run/containerd/runc/default", "--log", "/b/log.json",
                          "--log-format", "json", "create", "--bundle", "/b", "--pid-file",
                          "/b/init.pid", "--console-socket", "/tmp/s.sock", "c1"])
    assert verb == "create"
    assert (a.root, a.log, a.log_format) == ("/run/containerd/runc/default", "/b/log.json",
                                             "json")
    assert (a.bundle, a.pid_file, a.console_socket, a.id) == ("/b", "/b/init.pid",
                                                              "/tmp/s.sock", "c1")


def test_parser_go_style_flags_and_exec_command() -> None:
    from dockyard.runtime.cli import parse_args

    verb, a = parse_args(["-root=/r", "exec", "-t", "--env", "A=1", "-e", "B=2", "c1", "sh",
                          "-c", "echo --not-a-flag"])
    assert verb == "exec" and a.root == "/r" and a.tty is True
    assert a.env == ["A=1", "B=2"] and a.id == "c1"
    assert a.command == ["sh", "-c", "echo --not-a-flag"]
    _, k = parse_args(["kill", "--all", "c1", "9"])
    assert (k.all, k.id, k.signal) == (True, "c1", "9")
    _, d = parse_args(["delete", "-f", "c1"])
    assert d.force is True


@pytest.mark.parametrize("argv", [["create"], ["bogus"], ["kill", "--nope", "c1"],
                                  ["state", "a", "b"], ["update", "--memory", "lots", "c1"]])
def test_parser_refuses_bad_command_lines(argv: list[str]) -> None:
    assert main(argv) == 2


def test_version_in_runcs_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("dockyard-runtime version ") and out[1] == "spec: 1.0.2"
