"""The ``dockyard`` CLI against a real daemon (the reference dockerd, and ours when it runs).

Each test drives the real entry point as a process; where docker's CLI has the same command,
the outputs are compared with what ``docker`` prints against the same daemon.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time

import pytest

from tests.interop.cli.conftest import Engine, Terminal, uniq

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.xdist_group("cli-daemons")]


def test_run_returns_the_exit_code_and_keeps_stdout_and_stderr_apart(engine: Engine) -> None:
    proc = engine.dy("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert proc.returncode == 3
    assert proc.stdout == b"out\n"
    assert proc.stderr == b"err\n"


def test_run_i_feeds_stdin_and_delivers_eof(engine: Engine) -> None:
    proc = engine.dy("run", "-i", "--rm", "busybox", "sh", "-c", "wc -l; echo done",
                     stdin=b"a\nb\nc\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [b"3", b"done"]


@pytest.mark.parametrize(("command", "status"), [
    (["nosuchcommand"], 127),
    (["/etc"], 126),
])
def test_run_exit_codes_for_commands_that_cannot_run(engine: Engine, command: list[str],
                                                     status: int) -> None:
    proc = engine.dy("run", "--rm", "busybox", *command)
    assert proc.returncode == status, proc.stderr
    assert b"Error response from daemon" in proc.stderr


def test_run_daemon_errors_exit_125(engine: Engine, names: list[str]) -> None:
    name = uniq("dup")
    names.append(name)
    engine.ok("create", "--name", name, "busybox", "true")
    proc = engine.dy("run", "--name", name, "busybox", "true")
    assert proc.returncode == 125
    assert b"already in use" in proc.stderr
    proc = engine.dy("run", "--pull", "never", "busybox:nosuchtag", "true")
    assert proc.returncode == 125
    assert b"No such image" in proc.stderr


def test_detached_container_lifecycle(engine: Engine, names: list[str]) -> None:
    name = uniq("life")
    names.append(name)
    cid = engine.ok("run", "-d", "--name", name, "-e", "GREETING=hi", "busybox", "sh", "-c",
                    "echo started $GREETING; echo oops >&2; sleep 300").strip()
    assert len(cid) == 64
    deadline = time.monotonic() + 10
    while b"started" not in engine.dy("logs", name).stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    logs = engine.dy("logs", name)
    assert (logs.stdout, logs.stderr) == (b"started hi\n", b"oops\n")
    stamped = engine.ok("logs", "-t", "--tail", "2", name)  # stdout and stderr lines
    assert stamped.endswith(" started hi\n") and "T" in stamped.split()[0]
    assert engine.ok("inspect", "-f", "{{.State.Running}} {{.Name}} {{json .Config.Cmd}}",
                     name) == f'true /{name} ["sh","-c","echo started $GREETING; echo oops \\u003e\\u0026' \
                              f'2; sleep 300"]\n'
    assert engine.dy("exec", name, "sh", "-c", "exit 5").returncode == 5
    assert engine.ok("exec", "-e", "X=1", "-w", "/tmp", name, "sh", "-c",
                     "echo $X $(pwd)") == "1 /tmp\n"
    assert engine.ok("exec", "-i", name, "cat", stdin=b"through exec\n") == "through exec\n"
    assert engine.ok("exec", "-u", "65534", name, "id", "-u") == "65534\n"
    assert engine.ok("exec", "-d", name, "touch", "/tmp/detached") == ""
    deadline = time.monotonic() + 10
    while engine.dy("exec", name, "test", "-e", "/tmp/detached").returncode != 0:
        assert time.monotonic() < deadline, "exec -d never ran"
        time.sleep(0.1)
    started = engine.ok("inspect", "-f", "{{.State.StartedAt}}", name)
    assert engine.ok("restart", "-t", "1", name) == f"{name}\n"
    assert engine.ok("inspect", "-f", "{{.State.Running}}", name) == "true\n"
    assert engine.ok("inspect", "-f", "{{.State.StartedAt}}", name) != started
    ps = engine.ok("ps", "--filter", f"name={name}", "--format", "{{.Names}} {{.State}}")
    assert ps == f"{name} running\n"
    assert "sleep 300" in engine.ok("top", name)
    engine.ok("pause", name)
    assert engine.ok("inspect", "-f", "{{.State.Paused}}", name) == "true\n"
    engine.ok("unpause", name)
    assert engine.ok("stop", "-t", "1", name) == f"{name}\n"
    assert engine.ok("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", name) in (
        "false 137\n", "false 143\n")
    engine.ok("start", name)
    engine.ok("kill", "-s", "KILL", name)
    assert engine.ok("wait", name) == "137\n"
    assert engine.ok("rm", name) == f"{name}\n"
    assert name not in engine.ok("ps", "-a", "--format", "{{.Names}}")
    names.remove(name)


def test_outputs_match_the_docker_cli(engine: Engine, names: list[str]) -> None:
    name = uniq("cmp")
    names.append(name)
    engine.ok("run", "-d", "--name", name, "-l", "app=x", "busybox", "sleep", "300")
    fmt = "{{.ID}} {{.Names}} {{.Image}} {{.Command}} {{.Labels}} {{.State}}"
    ours = engine.ok("ps", "-a", "--filter", f"name={name}", "--format", fmt)
    theirs = engine.docker("ps", "-a", "--filter", f"name={name}", "--format", fmt)
    assert ours == theirs.stdout.decode()
    # the default table, minus the time columns which move while we look
    ours_table = engine.ok("ps", "-a", "--filter", f"name={name}", "--format",
                           "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.Names}}")
    theirs_table = engine.docker("ps", "-a", "--filter", f"name={name}", "--format",
                                 "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.Names}}")
    assert ours_table == theirs_table.stdout.decode()
    assert json.loads(engine.ok("inspect", name))[0]["Id"] == json.loads(
        engine.docker("inspect", name).stdout)[0]["Id"]
    assert engine.ok("images", "busybox") == engine.docker("images", "busybox").stdout.decode()
    for template in ("{{.State.Running}}", "{{json .Config.Labels}}", "{{.HostConfig.NetworkMode}}",
                     "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{end}}",
                     "{{index .Config.Cmd 0}}", "{{.Config.Cmd}}"):
        assert engine.ok("inspect", "-f", template, name) == \
            engine.docker("inspect", "-f", template, name).stdout.decode(), template
    assert engine.ok("image", "inspect", "-f", "{{index .RepoTags 0}} {{.Os}}", "busybox") == \
        "busybox:latest linux\n"
    # listings whose fields do not move with the clock, in table and json forms
    for command in (["images", "busybox"], ["images", "--format", "json", "busybox"],
                    ["history", "busybox"], ["history", "--format", "json", "busybox"],
                    ["network", "ls"], ["network", "ls", "--format", "json"],
                    ["volume", "ls"], ["volume", "ls", "--format", "json"],
                    ["image", "inspect", "busybox"], ["inspect", name], ["top", name, "-o", "pid,args"],
                    ["system", "df"],
                    ["ps", "-a", "-s", "--filter", f"name={name}", "--format",
                     "{{.Names}} {{.Size}} {{.Mounts}} {{.Networks}} {{.LocalVolumes}}"]):
        assert engine.ok(*command) == engine.docker(*command).stdout.decode(), command


def test_cp_copies_both_ways(engine: Engine, names: list[str], tmp_path: os.PathLike[str]) -> None:
    name = uniq("cp")
    names.append(name)
    engine.ok("run", "-d", "--name", name, "busybox", "sleep", "300")
    src = os.path.join(tmp_path, "hello.txt")
    with open(src, "w") as f:
        f.write("hello from the host\n")
    engine.ok("cp", src, f"{name}:/tmp/")
    assert engine.ok("exec", name, "cat", "/tmp/hello.txt") == "hello from the host\n"
    engine.ok("cp", src, f"{name}:/tmp/renamed.txt")
    assert engine.ok("exec", name, "cat", "/tmp/renamed.txt") == "hello from the host\n"
    engine.ok("exec", name, "sh", "-c", "mkdir -p /data/sub && echo deep > /data/sub/f")
    out_dir = os.path.join(tmp_path, "out")
    os.mkdir(out_dir)
    engine.ok("cp", f"{name}:/data", out_dir)
    with open(os.path.join(out_dir, "data", "sub", "f")) as f:
        assert f.read() == "deep\n"
    engine.ok("cp", f"{name}:/tmp/hello.txt", os.path.join(tmp_path, "back.txt"))
    with open(os.path.join(tmp_path, "back.txt")) as f:
        assert f.read() == "hello from the host\n"
    tar_bytes = engine.dy("cp", f"{name}:/tmp/hello.txt", "-").stdout
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        assert tar.getnames() == ["hello.txt"]
    assert "A /data" in engine.ok("diff", name)


def test_commit_tag_history_and_rmi(engine: Engine, names: list[str]) -> None:
    name = uniq("commit")
    names.append(name)
    repo = uniq("img")
    engine.ok("run", "--name", name, "busybox", "sh", "-c", "echo committed > /marker")
    image_id = engine.ok("commit", "-m", "a marker", name, f"{repo}:v1").strip()
    assert image_id.startswith("sha256:")
    assert engine.ok("run", "--rm", f"{repo}:v1", "cat", "/marker") == "committed\n"
    engine.ok("tag", f"{repo}:v1", f"{repo}:v2")
    listed = engine.ok("images", "--format", "{{.Repository}}:{{.Tag}}", repo).split()
    assert sorted(listed) == [f"{repo}:v1", f"{repo}:v2"]
    assert "a marker" in engine.ok("history", "--no-trunc", f"{repo}:v1")
    out = engine.ok("rmi", f"{repo}:v2")
    assert out == f"Untagged: {repo}:v2\n"
    engine.ok("rm", name)
    names.remove(name)
    out = engine.ok("rmi", f"{repo}:v1")
    assert f"Untagged: {repo}:v1" in out and f"Deleted: {image_id}" in out


def test_save_load_and_export_import(engine: Engine, names: list[str],
                                     tmp_path: os.PathLike[str]) -> None:
    repo = uniq("saved")
    engine.ok("tag", "busybox", f"{repo}:1")
    archive = os.path.join(tmp_path, "img.tar")
    engine.ok("save", "-o", archive, f"{repo}:1")
    with tarfile.open(archive) as tar:
        assert "manifest.json" in tar.getnames()
    engine.ok("rmi", f"{repo}:1")
    assert f"Loaded image: {repo}:1" in engine.ok("load", "-i", archive)
    engine.ok("rmi", f"{repo}:1")
    with open(archive, "rb") as f:
        assert f"Loaded image: {repo}:1" in engine.ok("load", stdin=f.read())
    piped = engine.dy("save", f"{repo}:1")
    assert piped.returncode == 0 and piped.stdout[:512].strip(b"\0")
    engine.ok("rmi", f"{repo}:1")

    name = uniq("export")
    names.append(name)
    engine.ok("run", "--name", name, "busybox", "sh", "-c", "echo exported > /proof")
    rootfs = os.path.join(tmp_path, "rootfs.tar")
    engine.ok("export", "-o", rootfs, name)
    imported = uniq("imported")
    engine.ok("import", rootfs, f"{imported}:1")
    assert engine.ok("run", "--rm", f"{imported}:1", "cat", "/proof") == "exported\n"
    engine.ok("rmi", f"{imported}:1")


def test_volumes_and_networks(engine: Engine, names: list[str]) -> None:
    vol = uniq("vol")
    assert engine.ok("volume", "create", "--label", "k=v", vol) == f"{vol}\n"
    assert vol in engine.ok("volume", "ls", "-q").split()
    assert engine.ok("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels.k}}", vol) == \
        f"{vol} local v\n"
    assert engine.ok("run", "--rm", "-v", f"{vol}:/v", "busybox", "sh", "-c",
                     "echo kept > /v/f") == ""
    assert engine.ok("run", "--rm", "--mount", f"type=volume,src={vol},dst=/v,readonly",
                     "busybox", "cat", "/v/f") == "kept\n"
    assert engine.ok("volume", "rm", vol) == f"{vol}\n"
    assert vol not in engine.ok("volume", "ls", "-q").split()

    net = uniq("net")
    net_id = engine.ok("network", "create", "--internal", "--subnet", "10.211.7.0/24",
                       net).strip()
    assert len(net_id) == 64
    assert engine.ok("network", "inspect", "-f", "{{.Name}} {{.Internal}}", net) == \
        f"{net} true\n"
    assert net in engine.ok("network", "ls", "--format", "{{.Name}}").split()
    name = uniq("netc")
    names.append(name)
    engine.ok("run", "-d", "--name", name, "--network", net, "--ip", "10.211.7.9", "busybox",
              "sleep", "300")
    assert engine.ok("inspect", "-f",
                     f"{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}",
                     name) == "10.211.7.9\n"
    other = uniq("net2")
    engine.ok("network", "create", "--internal", "--subnet", "10.211.8.0/24", other)
    try:
        engine.ok("network", "connect", "--ip", "10.211.8.5", other, name)
        nets = engine.ok("inspect", "-f", "{{range $n, $v := .NetworkSettings.Networks}}"
                         "{{$n}}={{$v.IPAddress}} {{end}}", name).split()
        assert sorted(nets) == sorted([f"{net}=10.211.7.9", f"{other}=10.211.8.5"])
        engine.ok("network", "disconnect", other, name)
        assert other not in engine.ok("inspect", "-f", "{{json .NetworkSettings.Networks}}",
                                      name)
    finally:
        engine.dy("network", "rm", other)
    engine.ok("rm", "-f", name)
    names.remove(name)
    assert engine.ok("network", "rm", net) == f"{net}\n"


def test_update_rename_and_stats(engine: Engine, names: list[str]) -> None:
    name = uniq("upd")
    names.append(name)
    engine.ok("run", "-d", "--name", name, "--memory", "64m", "busybox", "sleep", "300")
    engine.ok("update", "--memory", "96m", "--memory-swap", "-1", name)
    assert engine.ok("inspect", "-f", "{{.HostConfig.Memory}}", name) == f"{96 << 20}\n"
    new = uniq("renamed")
    names.append(new)
    engine.ok("rename", name, new)
    assert engine.ok("inspect", "-f", "{{.Name}}", new) == f"/{new}\n"
    stats = engine.ok("stats", "--no-stream", new).splitlines()
    assert stats[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert new in stats[1] and "96MiB" in stats[1]


def test_info_version_and_system_df(engine: Engine) -> None:
    def steady(text: str) -> list[str]:  # the client's own version, and a map Go prints unsorted
        return [line for line in text.splitlines()
                if not line.startswith((" Version:", " Runtimes:"))]
    assert "Server Version:" in engine.ok("info")
    assert steady(engine.ok("info")) == steady(engine.docker("info").stdout.decode())
    assert engine.ok("version", "-f", "{{.Server.ApiVersion}}") == "1.41\n"
    ours, theirs = engine.ok("version"), engine.docker("version").stdout.decode()
    assert ours[ours.index("\nServer"):] == theirs[theirs.index("\nServer"):]
    df = engine.ok("system", "df").splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]


def test_run_it_in_a_real_terminal(engine: Engine, names: list[str]) -> None:
    name = uniq("it")
    names.append(name)
    with Terminal(engine, f"run -it --name {name} busybox sh", width=120, height=40) as term:
        term.wait_for("#")
        term.keys("stty size; tty; echo $((6*7))", "Enter")
        pane = term.wait_for("42")
        assert "40 120" in pane  # the terminal size reached the container
        assert "/dev/pts/" in pane
        term.resize(100, 30)
        time.sleep(0.3)
        term.keys("stty size", "Enter")
        term.wait_for("30 100")  # SIGWINCH -> resize
        # detach with ctrl-p ctrl-q: the CLI returns, the container keeps running
        term.keys("C-p", "C-q")
        term.wait_for("EXIT=0")
    assert engine.ok("inspect", "-f", "{{.State.Running}}", name) == "true\n"


def test_run_it_exit_status_in_a_real_terminal(engine: Engine) -> None:
    with Terminal(engine, "run -i -t --rm busybox sh -c 'read x; exit $x'") as term:
        time.sleep(1)
        term.keys("7", "Enter")
        term.wait_for("EXIT=7")


def test_the_seed_command_in_a_real_terminal(engine: Engine) -> None:
    """`run -i -t --rm busybox echo Hello World!` — the project's verification step."""
    name = uniq("seed")
    with Terminal(engine, f"run -i -t --rm --name {name} busybox echo 'Hello World!'") as term:
        pane = term.wait_for("EXIT=")
    assert pane.splitlines()[0] == "Hello World!"
    assert "EXIT=0" in pane
    assert name not in engine.ok("ps", "-a", "--format", "{{.Names}}").split()


@pytest.mark.parametrize("command", [
    "inspect nosuch", "container inspect nosuch", "image inspect nosuch",
    "volume inspect nosuch", "inspect -f {{.Id}} nosuch", "rm nosuch", "stop nosuch",
    "start nosuch", "logs nosuch", "exec nosuch true", "rmi nosuch", "pause nosuch",
    "wait nosuch", "port nosuch", "top nosuch", "diff nosuch", "rename nosuch x", "kill nosuch",
    "restart nosuch", "volume rm nosuch", "tag nosuch x", "history nosuch", "attach nosuch",
    "export nosuch", "commit nosuch", "cp nosuch:/a /tmp/", "update --memory 10m nosuch",
])
def test_errors_for_missing_objects_read_like_dockers(engine: Engine, command: str) -> None:
    """Same daemon, same words: stdout, stderr and exit status equal the docker CLI's."""
    ours = engine.dy(*command.split())
    theirs = engine.docker(*command.split())
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        theirs.returncode, theirs.stdout, theirs.stderr)


@pytest.mark.parametrize("command", [
    "run --rm busybox nosuchcmd", "run --rm busybox /etc", "run --pull never busybox:nope",
    "run --rm --restart always busybox true", "run", "exec x", "ps --bogus", "logs --tail",
    "rename a",
])
def test_run_and_usage_errors_read_like_dockers(engine: Engine, command: str) -> None:
    """The same words and status as docker's CLI, our name in place of docker's."""
    ours = engine.dy(*command.split())
    theirs = engine.docker(*command.split())
    assert ours.returncode == theirs.returncode
    # docker's CLI also logs (logrus) when a wait reply carries an error; that is the
    # daemon's doing, not a message of the command
    theirs_lines = [line for line in theirs.stderr.splitlines(keepends=True)
                    if not line.startswith(b'time="')]
    assert ours.stderr.replace(b"dockyard", b"docker") == b"".join(theirs_lines)
