"""The real docker CLI (28.x) against our daemon, through the sequences the CLI really sends."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import time

import pytest

from tests.support.engine_daemon import DOCKER, EngineDaemon
from tests.support.shared import shared_path

pytestmark = [pytest.mark.interop, pytest.mark.root]


def test_run_rm_prints_and_leaves_nothing(daemon: EngineDaemon, docker_cli: str) -> None:
    p = daemon.docker("run", "--rm", "busybox", "echo", "Hello World!")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"Hello World!\n"
    assert daemon.docker("ps", "-aq").stdout.strip() == b""


def test_exit_codes_follow_dockers(daemon: EngineDaemon, docker_cli: str) -> None:
    assert daemon.docker("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    p = daemon.docker("run", "--rm", "busybox", "nosuchcommand")
    assert p.returncode == 127, p.stderr
    assert b"executable file not found" in p.stderr


def test_run_i_delivers_stdin_and_eof(daemon: EngineDaemon, docker_cli: str) -> None:
    p = daemon.docker("run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done", input=b"a\nb\n")
    assert p.stdout == b"a\nb\ndone\n", p.stderr


def test_stdout_and_stderr_are_kept_apart(daemon: EngineDaemon, docker_cli: str) -> None:
    p = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert p.stdout == b"out\n" and p.stderr == b"err\n"


def test_detached_lifecycle_logs_exec_inspect_stop_rm(daemon: EngineDaemon, docker_cli: str) -> None:
    name = f"life-{os.getpid()}"
    cid = daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                        "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
                        check=True).stdout.decode().strip()
    try:
        assert name in daemon.docker("ps", "--format", "{{.Names}}").stdout.decode()
        assert daemon.docker("exec", name, "cat", "/etc/hostname").stdout.decode().strip() == cid[:12]
        assert daemon.docker("exec", name, "sh", "-c", "exit 4").returncode == 4
        fmt = daemon.docker("inspect", "-f", "{{.State.Running}} {{.Config.Image}} {{.Name}}", name)
        assert fmt.stdout.decode().split() == ["true", "busybox", f"/{name}"]
        assert daemon.docker("stop", "-t", "5", name).returncode == 0
        state = json.loads(daemon.docker("inspect", name).stdout)[0]["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 0
        assert daemon.docker("logs", name).stdout == b"started\nbye\n"
        logs_t = daemon.docker("logs", "-t", "--tail", "1", name).stdout.decode()
        assert logs_t.endswith(" bye\n") and logs_t[:4].isdigit()
    finally:
        daemon.docker("rm", "-f", name)
    assert daemon.docker("inspect", name).returncode == 1


def test_logs_follow_ends_with_the_container(daemon: EngineDaemon, docker_cli: str) -> None:
    name = f"follow-{os.getpid()}"
    daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                  "for i in 1 2 3; do echo $i; sleep 0.2; done", check=True)
    try:
        p = daemon.docker("logs", "-f", name, timeout=30)
        assert p.stdout == b"1\n2\n3\n"
    finally:
        daemon.docker("rm", "-f", name)


def test_cp_diff_commit(daemon: EngineDaemon, docker_cli: str, tmp_path: os.PathLike[str]) -> None:
    name = f"cp-{os.getpid()}"
    daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    try:
        src = os.path.join(tmp_path, "in.txt")
        with open(src, "w") as f:
            f.write("payload\n")
        daemon.docker("cp", src, f"{name}:/tmp/", check=True)
        assert daemon.docker("exec", name, "cat", "/tmp/in.txt").stdout == b"payload\n"
        daemon.docker("cp", f"{name}:/etc/passwd", os.path.join(tmp_path, "passwd"), check=True)
        with open(os.path.join(tmp_path, "passwd")) as f:
            assert f.readline().startswith("root:x:0:0")
        diff = daemon.docker("diff", name).stdout.decode().splitlines()
        assert "A /tmp/in.txt" in diff
        tag = f"committed-{os.getpid()}:v1"
        daemon.docker("commit", name, tag, check=True)
        assert daemon.docker("run", "--rm", tag, "cat", "/tmp/in.txt").stdout == b"payload\n"
        daemon.docker("rmi", tag, check=True)
    finally:
        daemon.docker("rm", "-f", name)


def test_images_save_load_round_trip(daemon: EngineDaemon, docker_cli: str, tmp_path: os.PathLike[str]) -> None:
    tag = f"saved-{os.getpid()}:v1"
    daemon.docker("tag", "busybox", tag, check=True)
    out = os.path.join(tmp_path, "img.tar")
    daemon.docker("save", "-o", out, tag, check=True)
    daemon.docker("rmi", tag, check=True)
    p = daemon.docker("load", "-i", out, check=True)
    assert f"Loaded image: {tag}" in p.stdout.decode()
    assert tag in daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode()
    daemon.docker("rmi", tag, check=True)


def _pty_run(argv: list[str], keys: list[tuple[float, bytes]], timeout: float = 20) -> tuple[bytes, int]:
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    out = b""
    deadline = time.monotonic() + timeout
    pending = list(keys)
    start = time.monotonic()
    while time.monotonic() < deadline:
        if pending and time.monotonic() - start >= pending[0][0]:
            os.write(fd, pending.pop(0)[1])
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out, os.waitstatus_to_exitcode(status)


def test_run_it_in_a_terminal(daemon: EngineDaemon, docker_cli: str) -> None:
    out, code = _pty_run([DOCKER, "-H", daemon.host, "run", "-it", "--rm", "busybox", "sh"],
                         [(1.5, b"echo tty-$((6*7)); [ -t 0 ] && echo is-a-tty\r"), (2.5, b"exit 5\r")])
    assert b"tty-42" in out and b"is-a-tty" in out, out
    assert code == 5


def test_exec_it_in_a_terminal(daemon: EngineDaemon, docker_cli: str) -> None:
    name = f"execit-{os.getpid()}"
    daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    try:
        out, code = _pty_run([DOCKER, "-H", daemon.host, "exec", "-it", name, "sh"],
                             [(1.0, b"[ -t 0 ] && echo exec-tty-$((2+3))\r"), (2.0, b"exit 2\r")])
        assert b"exec-tty-5" in out, out
        assert code == 2
    finally:
        daemon.docker("rm", "-f", name)


@pytest.mark.slow
def test_run_it_in_tmux(daemon: EngineDaemon, docker_cli: str) -> None:
    if subprocess.run(["which", "tmux"], capture_output=True).returncode != 0:
        pytest.skip("tmux is not installed")
    session = f"dyit{os.getpid()}"
    marker = os.path.join(daemon.root, "tmux-exit")
    cmd = f"{DOCKER} -H {daemon.host} run -it --rm busybox sh; echo $? > {marker}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True)
    try:
        def screen() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                  text=True).stdout

        deadline = time.monotonic() + 15
        while "/ #" not in screen() and time.monotonic() < deadline:
            time.sleep(0.1)
        subprocess.run(["tmux", "send-keys", "-t", session, "stty size; echo in-tmux", "Enter"], check=True)
        while "in-tmux\n" not in screen() + "\n" and time.monotonic() < deadline:
            time.sleep(0.1)
        text = screen()
        assert "24 80" in text, text
        subprocess.run(["tmux", "send-keys", "-t", session, "exit 3", "Enter"], check=True)
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        with open(marker) as f:
            assert f.read().strip() == "3"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.slow
def test_save_load_both_ways_with_the_reference_dockerd(daemon: EngineDaemon, docker_cli: str,
                                                        tmp_path: os.PathLike[str]) -> None:
    from tests.support.engine_daemon import ReferenceDockerd

    if not shutil.which("dockerd"):
        pytest.skip("dockerd (docker.io) is not installed")
    ref = ReferenceDockerd()
    try:
        ref.start()
        ours_tar = os.path.join(tmp_path, "ours.tar")
        daemon.docker("save", "-o", ours_tar, "busybox", check=True)
        assert ref.docker("load", "-i", ours_tar).returncode == 0
        assert ref.docker("run", "--rm", "busybox", "echo", "made-by-dockyard").stdout == b"made-by-dockyard\n"
        ours_id = json.loads(daemon.docker("image", "inspect", "busybox").stdout)[0]["Id"]
        assert json.loads(ref.docker("image", "inspect", "busybox").stdout)[0]["Id"] == ours_id
        ref.docker("tag", "busybox", "from-dockerd:1")
        theirs_tar = os.path.join(tmp_path, "theirs.tar")
        assert ref.docker("save", "-o", theirs_tar, "from-dockerd:1").returncode == 0
        daemon.docker("load", "-i", theirs_tar, check=True)
        assert daemon.docker("run", "--rm", "from-dockerd:1", "echo", "made-by-dockerd").stdout == b"made-by-dockerd\n"
        daemon.docker("rmi", "from-dockerd:1", check=True)
    finally:
        ref.stop()


def test_management_commands(daemon: EngineDaemon, docker_cli: str) -> None:
    name = f"mgmt-{os.getpid()}"
    daemon.docker("run", "-d", "--name", name, "--label", "team=blue", "busybox", "sleep", "60", check=True)
    try:
        assert b"sleep 60" in daemon.docker("top", name).stdout
        stats = daemon.docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", name).stdout.decode()
        assert stats.split() == [name, "1"]
        daemon.docker("pause", name, check=True)
        assert daemon.docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == b"paused"
        daemon.docker("unpause", name, check=True)
        daemon.docker("update", "--memory", "64m", "--memory-swap", "128m", name, check=True)
        assert daemon.docker("inspect", "-f", "{{.HostConfig.Memory}}", name).stdout.strip() == b"67108864"
        labelled = daemon.docker("ps", "-q", "--filter", "label=team=blue").stdout.decode().split()
        assert len(labelled) == 1
        assert daemon.docker("ps", "-q", "--filter", "label=team=red").stdout.strip() == b""
        daemon.docker("rename", name, name + "-2", check=True)
        export = subprocess.run(f"{DOCKER} -H {daemon.host} export {name}-2 | tar -t", shell=True,
                                capture_output=True, check=True).stdout.decode().split()
        assert "bin/busybox" in export or "./bin/busybox" in export
        daemon.docker("kill", "-s", "KILL", name + "-2", check=True)
        assert daemon.docker("wait", name + "-2").stdout.strip() == b"137"
        assert b"Images" in daemon.docker("system", "df").stdout
    finally:
        daemon.docker("rm", "-f", name, name + "-2")


def test_start_attach_and_runc_runtime(daemon: EngineDaemon, docker_cli: str) -> None:
    name = f"sa-{os.getpid()}"
    daemon.docker("create", "--name", name, "busybox", "echo", "attached", check=True)
    try:
        p = daemon.docker("start", "-a", name)
        assert p.returncode == 0 and p.stdout == b"attached\n"
    finally:
        daemon.docker("rm", "-f", name)
    if shutil.which("runc"):
        p = daemon.docker("run", "--rm", "--runtime", "runc", "busybox", "sh", "-c", "echo via-runc; exit 6")
        assert (p.returncode, p.stdout) == (6, b"via-runc\n")


def test_detach_keys_leave_the_container_running(daemon: EngineDaemon, docker_cli: str) -> None:
    name = f"detach-{os.getpid()}"
    try:
        out, code = _pty_run([DOCKER, "-H", daemon.host, "run", "-it", "--name", name, "busybox", "sh"],
                             [(1.5, b"echo before-detach\r"), (2.0, b"\x10\x11")], timeout=10)
        assert b"before-detach" in out
        assert code == 0, out
        assert daemon.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == b"true"
    finally:
        daemon.docker("rm", "-f", name)


def test_image_commands(daemon: EngineDaemon, docker_cli: str, tmp_path: os.PathLike[str]) -> None:
    tag = f"imgs-{os.getpid()}:1"
    daemon.docker("tag", "busybox", tag, check=True)
    name = f"user-{os.getpid()}"
    daemon.docker("create", "--name", name, tag, "true", check=True)
    try:
        p = daemon.docker("rmi", "-f", tag)  # only a tag goes: the image is in use and has 2 names
        assert p.returncode == 0 and b"Untagged" in p.stdout
        daemon.docker("tag", "busybox", tag, check=True)
        rows = daemon.docker("history", "--format", "{{.CreatedBy}}", "busybox").stdout.decode().splitlines()
        assert rows, "history is empty"
        ids = daemon.docker("images", "-q", "--filter", f"reference={tag.split(':')[0]}").stdout.split()
        assert len(ids) == 1
        assert daemon.docker("images", "-q", "--filter", "dangling=true").returncode == 0
        layer = os.path.join(daemon.root, "busybox-layer.tar")
        p = daemon.docker("import", "--message", "imported", "--change", "ENV FOO=bar", layer, f"imp-{os.getpid()}",
                          check=True)
        doc = json.loads(daemon.docker("image", "inspect", f"imp-{os.getpid()}").stdout)[0]
        assert "FOO=bar" in doc["Config"]["Env"] and doc["Comment"] == "imported"
        daemon.docker("rmi", f"imp-{os.getpid()}", check=True)
        assert daemon.docker("image", "prune", "-f").returncode == 0
    finally:
        daemon.docker("rm", "-f", name)
        daemon.docker("rmi", tag)


def test_inspect_has_every_key_dockerd_shows(daemon: EngineDaemon, docker_cli: str) -> None:
    ref_path = shared_path("reference/dockerd-container-inspect.json")
    if not os.path.exists(ref_path):
        pytest.skip("reference inspect document not available")
    with open(ref_path) as f:
        ref = json.load(f)[0]
    name = f"shape-{os.getpid()}"
    daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    try:
        ours = json.loads(daemon.docker("inspect", name).stdout)[0]
    finally:
        daemon.docker("rm", "-f", name)

    def missing(a: dict, b: dict, path: str = "") -> list[str]:
        out = []
        for k, v in a.items():
            if k not in b:
                out.append(path + k)
            elif isinstance(v, dict) and isinstance(b[k], dict) and k not in ("Labels", "Networks", "Config"):
                out += missing(v, b[k], path + k + ".")
        return out

    assert missing(ref, ours) == []
    assert set(ref["Config"]) <= set(ours["Config"])


def test_sizes_in_ps_inspect_and_df(daemon: EngineDaemon, docker_cli: str) -> None:
    name = f"size-{os.getpid()}"
    daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c", "head -c 3000000 /dev/zero > /big; sleep 60",
                  check=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rw = daemon.docker("inspect", "-s", "-f", "{{.SizeRw}}", name).stdout.strip()
            if rw == b"3000000":
                break
            time.sleep(0.1)
        assert rw == b"3000000"
        assert b"3MB" in daemon.docker("ps", "-s", "--filter", f"name={name}", "--format", "{{.Size}}").stdout
    finally:
        daemon.docker("rm", "-f", name)
