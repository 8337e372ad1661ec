"""login/push/pull/logout and run's automatic pull, through a daemon, against Debian's Go
registry (docker-registry) with htpasswd Basic auth on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from tests.interop.cli.conftest import Engine, uniq

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.xdist_group("cli-daemons")]


@pytest.fixture
def registry() -> Iterator[object]:
    bcrypt = pytest.importorskip("bcrypt")
    from tests.support.registries import GoRegistry

    if not GoRegistry.available():
        pytest.skip("docker-registry is not installed")
    root = tempfile.mkdtemp(prefix="dyreg-")
    htpasswd = os.path.join(root, "htpasswd")
    with open(htpasswd, "w") as f:
        f.write("clitest:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    reg = GoRegistry(os.path.join(root, "reg"), htpasswd=htpasswd).start()
    yield reg
    reg.cleanup()
    os.unlink(htpasswd)
    os.rmdir(root)


def test_login_push_pull_and_run_autopull(engine: Engine, registry: object,
                                          tmp_path: os.PathLike[str]) -> None:
    host = registry.host  # type: ignore[attr-defined]
    env = {"DOCKER_CONFIG": str(tmp_path)}

    proc = engine.dy("login", "-u", "clitest", "--password-stdin", host, stdin=b"wrong\n",
                     env=env)
    assert proc.returncode == 1
    assert b"Error response from daemon" in proc.stderr
    assert not os.path.exists(os.path.join(tmp_path, "config.json"))

    proc = engine.dy("login", "-u", "clitest", "--password-stdin", host, stdin=b"s3cret\n",
                     env=env)
    assert (proc.returncode, proc.stdout) == (0, b"Login Succeeded\n"), proc.stderr
    with open(os.path.join(tmp_path, "config.json")) as f:
        assert host in json.load(f)["auths"]

    repo = f"{host}/cli/{uniq('bb')}"
    engine.ok("tag", "busybox", f"{repo}:1")
    proc = engine.dy("push", f"{repo}:1", env=env)
    assert proc.returncode == 0, proc.stderr
    pushed = proc.stdout.decode()
    assert f"The push refers to repository [{repo}]" in pushed
    assert "1: digest: sha256:" in pushed
    # pushing again ("Layer already exists"): the same lines as docker push prints
    theirs = subprocess.run(["docker", "-H", engine.host, "push", f"{repo}:1"],
                            capture_output=True, env={**os.environ, **env}, check=False)
    again = engine.dy("push", f"{repo}:1", env=env)
    assert (again.returncode, again.stdout) == (theirs.returncode, theirs.stdout)
    assert b"Layer already exists" in again.stdout

    engine.ok("rmi", f"{repo}:1")
    proc = engine.dy("pull", f"{repo}:1", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == "1: Pulling from cli/" + repo.rsplit("/", 1)[1]
    assert any(line.startswith("Digest: sha256:") for line in lines)
    assert lines[-1] == f"{repo}:1"

    # the same pull through docker's CLI prints the same lines
    engine.ok("rmi", f"{repo}:1")
    theirs = subprocess.run(["docker", "-H", engine.host, "pull", f"{repo}:1"],
                            capture_output=True, env={**os.environ, **env}, check=False)
    assert theirs.returncode == 0, theirs.stderr
    assert proc.stdout == theirs.stdout

    engine.ok("rmi", f"{repo}:1")
    proc = engine.dy("run", "--rm", f"{repo}:1", "echo", "pulled and ran", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"pulled and ran\n"
    assert f"Unable to find image '{repo}:1' locally".encode() in proc.stderr
    engine.ok("rmi", f"{repo}:1")
    theirs = subprocess.run(["docker", "-H", engine.host, "run", "--rm", f"{repo}:1", "echo",
                             "pulled and ran"], capture_output=True,
                            env={**os.environ, **env}, check=False)
    assert (proc.stdout, proc.stderr) == (theirs.stdout, theirs.stderr)

    # --pull always fetches even though the image is there now
    proc = engine.dy("run", "--rm", "--pull", "always", f"{repo}:1", "true", env=env)
    assert proc.returncode == 0, proc.stderr
    assert b"Pulling from" in proc.stderr or b"Image is up to date" in proc.stderr
    assert b"Unable to find image" not in proc.stderr

    # without credentials the registry refuses the daemon
    engine.ok("rmi", f"{repo}:1")
    proc = engine.dy("logout", host, env=env)
    assert proc.stdout.decode() == f"Removing login credentials for {host}\n"
    proc = engine.dy("pull", f"{repo}:1", env=env)
    assert proc.returncode == 1
    assert b"no basic auth credentials" in proc.stderr or b"unauthorized" in proc.stderr


def test_pull_on_a_terminal_rewrites_one_line_per_layer(engine: Engine, registry: object,
                                                       tmp_path: os.PathLike[str]) -> None:
    import io
    import tarfile

    from tests.interop.cli.conftest import Terminal

    host = registry.host  # type: ignore[attr-defined]
    env = {"DOCKER_CONFIG": str(tmp_path)}
    engine.ok("login", "-u", "clitest", "--password-stdin", host, stdin=b"s3cret\n")
    engine.dy("login", "-u", "clitest", "--password-stdin", host, stdin=b"s3cret\n", env=env)
    # an image whose layer the daemon does not have yet: random bytes, so it downloads
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = os.urandom(3 << 20)
        info = tarfile.TarInfo("blob.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    repo = f"{host}/cli/{uniq('big')}"
    engine.ok("import", "-", f"{repo}:1", stdin=buf.getvalue())
    assert engine.dy("push", f"{repo}:1", env=env).returncode == 0
    engine.ok("rmi", f"{repo}:1")

    with Terminal(engine, f"pull {repo}:1", width=160, height=30,
                  env=f"DOCKER_CONFIG={tmp_path}") as term:
        pane = term.wait_for("EXIT=", timeout=60)
    lines = [line for line in pane.splitlines() if line.strip()]
    assert "EXIT=0" in pane, pane
    layer_lines = [line for line in lines if ": " in line and len(line.split(":")[0]) == 12]
    # one line per layer, rewritten in place: it ends as "Pull complete", no stale states
    assert len(layer_lines) == 1, pane
    assert layer_lines[0].endswith("Pull complete"), pane
    assert any(line.startswith("Digest: sha256:") for line in lines)
    assert lines[-2] == f"{repo}:1"


@pytest.fixture
def our_registry() -> Iterator[str]:
    import socket
    import subprocess
    import time

    from tests.interop.cli.conftest import DOCKYARD, REPO
    from tests.support.registries import free_port

    root = tempfile.mkdtemp(prefix="dyreg-")
    port = free_port()
    log = open(os.path.join(root, "registry.log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen([*DOCKYARD, "registry", "serve", "--listen", f"127.0.0.1:{port}",
                             "--root", os.path.join(root, "data")], stdout=log, stderr=log,
                            env={**os.environ, "PYTHONPATH": os.path.join(REPO, "src")})
    log.close()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                # our own registry failing to start is a failure of ours, never a skip
                if proc.poll() is not None or time.monotonic() > deadline:
                    with open(os.path.join(root, "registry.log")) as f:
                        pytest.fail(f"our registry did not start: {f.read()[-800:]}")
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        import shutil
        shutil.rmtree(root, ignore_errors=True)


def test_search_lists_what_our_registry_holds(engine: Engine, our_registry: str) -> None:
    repo = f"{our_registry}/cli/{uniq('findme')}"
    engine.ok("tag", "busybox", f"{repo}:1")
    assert engine.dy("push", f"{repo}:1").returncode == 0
    engine.ok("rmi", f"{repo}:1")
    out = engine.ok("search", f"{our_registry}/findme")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert any(repo.split("/", 1)[1] in line for line in lines[1:]), out
    assert out == engine.docker("search", f"{our_registry}/findme").stdout.decode()
    names = engine.ok("search", "--format", "{{.Name}}", f"{our_registry}/findme").split()
    assert any(n.endswith(repo.rsplit("/", 1)[1]) for n in names), names
