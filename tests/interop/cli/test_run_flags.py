"""``run`` flags take effect inside the container; streams and signals behave like docker's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.interop.cli.conftest import DOCKYARD, REPO, Engine, Terminal, uniq

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.xdist_group("cli-daemons")]


def test_run_flags_reach_the_container(engine: Engine) -> None:
    script = ("hostname; id -u; pwd; echo $FOO; grep -c myhost /etc/hosts; "
              "touch /ro 2>/dev/null && echo writable || echo read-only; "
              "touch /scratch/f && echo tmpfs-ok; grep CapEff /proc/self/status")
    out = engine.ok("run", "--rm", "-h", "box1", "-u", "1:1", "-w", "/tmp", "-e", "FOO=bar",
                    "--add-host", "myhost:10.9.8.7", "--read-only", "--tmpfs",
                    "/scratch:mode=1777", "--cap-drop", "ALL", "busybox", "sh", "-c", script)
    lines = out.splitlines()
    assert lines[:7] == ["box1", "1", "/tmp", "bar", "1", "read-only", "tmpfs-ok"]
    assert lines[7].split() == ["CapEff:", "0000000000000000"]


def test_entrypoint_labels_limits_and_restart_policy(engine: Engine,
                                                     names: list[str]) -> None:
    assert engine.ok("run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint") == \
        "from entrypoint\n"
    name = uniq("limits")
    names.append(name)
    engine.ok("create", "--name", name, "-l", "a=1", "--memory", "32m", "--cpus", "0.5",
              "--pids-limit", "20", "--restart", "on-failure:2", "--init", "--stop-signal",
              "SIGINT", "busybox", "true")
    info = json.loads(engine.ok("inspect", name))[0]
    hc = info["HostConfig"]
    assert (hc["Memory"], hc["NanoCpus"], hc["PidsLimit"]) == (32 << 20, 500_000_000, 20)
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert hc["Init"] is True
    assert info["Config"]["Labels"] == {"a": "1"} and info["Config"]["StopSignal"] == "SIGINT"


def test_healthcheck_flags_make_the_container_healthy(engine: Engine,
                                                      names: list[str]) -> None:
    name = uniq("health")
    names.append(name)
    engine.ok("run", "-d", "--name", name, "--health-cmd", "true", "--health-interval", "1s",
              "--health-retries", "1", "busybox", "sleep", "300")
    deadline = time.monotonic() + 20
    status = ""
    while time.monotonic() < deadline:
        status = engine.ok("inspect", "-f", "{{.State.Health.Status}}", name).strip()
        if status == "healthy":
            break
        time.sleep(0.3)
    assert status == "healthy"


def test_logs_follow_streams_until_the_container_exits(engine: Engine,
                                                      names: list[str]) -> None:
    name = uniq("follow")
    names.append(name)
    engine.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
              "for i in 1 2 3; do echo line$i; sleep 0.3; done")
    proc = engine.dy("logs", "-f", name, timeout=30)
    assert proc.returncode == 0
    assert proc.stdout == b"line1\nline2\nline3\n"


def test_start_a_and_attach_return_the_exit_status(engine: Engine,
                                                   names: list[str]) -> None:
    name = uniq("starta")
    names.append(name)
    engine.ok("create", "--name", name, "-i", "busybox", "sh", "-c", "read x; echo got $x; exit 4")
    proc = engine.dy("start", "-a", "-i", name, stdin=b"hello\n")
    assert (proc.returncode, proc.stdout) == (4, b"got hello\n")

    other = uniq("attach")
    names.append(other)
    engine.ok("run", "-d", "--name", other, "busybox", "sh", "-c",
              "sleep 1; echo late; exit 6")
    proc = engine.dy("attach", other)
    assert (proc.returncode, proc.stdout) == (6, b"late\n")
    proc = engine.dy("attach", other)
    assert proc.returncode == 1 and b"You cannot attach to a stopped container" in proc.stderr


def test_signals_are_forwarded_to_the_container(engine: Engine) -> None:
    env = {**os.environ, "DOCKYARD_HOST": engine.host, "PYTHONPATH": os.path.join(REPO, "src")}
    proc = subprocess.Popen([*DOCKYARD, "run", "--rm", "busybox", "sh", "-c",
                             "trap 'echo caught; exit 7' TERM; echo ready; "
                             "while true; do sleep 0.1; done"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out == b"caught\n"
    assert proc.returncode == 7


def test_events_and_prunes(engine: Engine) -> None:
    since = str(int(time.time()) - 1)
    name = uniq("ev")
    engine.ok("run", "--name", name, "busybox", "true")
    until = str(int(time.time()) + 1)
    events = engine.ok("events", "--since", since, "--until", until, "--filter",
                       f"container={name}", "--format", "{{.Action}}").split()
    assert events[:3] == ["create", "attach", "start"] or events[:2] == ["create", "start"]
    assert "die" in events
    # the default line format is docker's, byte for byte
    ours = engine.ok("events", "--since", since, "--until", until, "--filter",
                     f"container={name}")
    assert ours == engine.docker("events", "--since", since, "--until", until, "--filter",
                                 f"container={name}").stdout.decode()
    out = engine.ok("container", "prune", "-f", "--filter", f"until={until}")
    assert out.endswith("\n") and "Total reclaimed space:" in out
    assert name not in engine.ok("ps", "-a", "--format", "{{.Names}}").split()


def test_volume_prune_removes_unused_named_volumes_as_api_1_41_does(engine: Engine) -> None:
    vol = uniq("prunevol")
    engine.ok("volume", "create", vol)
    try:
        out = engine.ok("volume", "prune", "-f", "-a")
        assert out.startswith("Deleted Volumes:\n") and vol in out.splitlines()
    finally:
        engine.dy("volume", "rm", vol)


def test_exec_it_in_a_real_terminal(engine: Engine, names: list[str]) -> None:
    name = uniq("execit")
    names.append(name)
    engine.ok("run", "-d", "--name", name, "busybox", "sleep", "300")
    with Terminal(engine, f"exec -it {name} sh", width=90, height=25) as term:
        term.wait_for("#")
        term.keys("tty; stty size; exit 3", "Enter")
        pane = term.wait_for("EXIT=3")
    assert "/dev/pts/" in pane and "25 90" in pane


def test_published_ports_show_like_dockers(engine: Engine, names: list[str]) -> None:
    if engine.name == "reference":
        pytest.skip("the reference dockerd runs here without a bridge (--bridge=none)")
    name = uniq("ports")
    names.append(name)
    engine.ok("run", "-d", "--name", name, "-p", "127.0.0.1::80", "-p", "127.0.0.1::53/udp",
              "busybox", "httpd", "-f", "-p", "80")
    port = engine.ok("port", name)
    assert port == engine.docker("port", name).stdout.decode()
    tcp = engine.ok("port", name, "80").strip()
    assert tcp.startswith("127.0.0.1:")
    fmt = "{{.Names}} {{.Ports}}"
    assert engine.ok("ps", "--filter", f"name={name}", "--format", fmt) == engine.docker(
        "ps", "--filter", f"name={name}", "--format", fmt).stdout.decode()
    import socket
    host, _, number = tcp.rpartition(":")
    deadline = time.monotonic() + 10
    while True:  # `run -d` returns once httpd is started, not once it listens
        try:
            conn = socket.create_connection((host, int(number)), timeout=5)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert conn.recv(64).startswith(b"HTTP/1.")


def test_attach_to_a_tty_container_and_detach_with_custom_keys(
        engine: Engine, names: list[str]) -> None:
    name = uniq("attachit")
    names.append(name)
    engine.ok("run", "-dit", "--name", name, "busybox", "sh")
    with Terminal(engine, f"attach --detach-keys ctrl-x,x {name}", width=100,
                  height=30) as term:
        time.sleep(1)
        term.keys("echo attached-$((40+2))", "Enter")
        term.wait_for("attached-42")
        term.keys("C-x", "x")
        term.wait_for("EXIT=0")
    assert engine.ok("inspect", "-f", "{{.State.Running}}", name) == "true\n"
