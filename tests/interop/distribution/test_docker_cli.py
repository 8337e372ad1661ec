"""The real docker CLI (28.x) pointed at our daemon: pull with per-layer progress from the Go
registry and from our own registry, run what it pulled, run's automatic pull, push."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.interop.cli.conftest import Engine, dockyard_daemon  # noqa: F401 - the fixture
from tests.interop.registry.conftest import Served, start_registry, stop_registry
from tests.support import busybox
from tests.support import registries as r

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.root,
              pytest.mark.xdist_group("cli-daemons")]


@pytest.fixture(scope="module")
def go_registry() -> Iterator[r.GoRegistry]:
    if not r.GoRegistry.available():
        pytest.skip("docker-registry is not installed")
    reg = r.GoRegistry(tempfile.mkdtemp(prefix="dyg-")).start()
    yield reg
    reg.cleanup()


@pytest.fixture(scope="module")
def our_registry() -> Iterator[Served]:
    root = tempfile.mkdtemp(prefix="dyo-")
    served = start_registry(os.path.join(root, "data"))
    yield served
    stop_registry(served)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> r.TestImage:
    if not busybox.have_busybox():
        pytest.skip("busybox-static is not installed")
    root = busybox.make_rootfs(str(tmp_path_factory.mktemp("bb") / "rootfs"))
    extra = r.layer_tar([r.directory("data"), r.file("data/hello", b"hello from a layer\n")])
    return r.TestImage([busybox.layer_tar_bytes(root), extra])


def _docker(engine: Engine, *args: str) -> tuple[int, str, str]:
    proc = engine.docker(*args)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


@pytest.mark.parametrize("which", ["go", "ours"])
def test_docker_cli_pulls_runs_and_pushes(dockyard_daemon: Engine, go_registry: r.GoRegistry,  # noqa: F811
                                          our_registry: Served, busybox_image: r.TestImage,
                                          which: str) -> None:
    base, host = (go_registry.url, go_registry.host) if which == "go" else (our_registry.url, our_registry.host)
    r.upload(base, "cli/bb", "1", busybox_image)
    ref = f"{host}/cli/bb:1"
    rc, out, err = _docker(dockyard_daemon, "pull", ref)
    assert rc == 0, err
    for layer in busybox_image.layers:  # the daemon is shared: the second registry finds them
        assert f"{layer.digest[7:19]}: Pull complete" in out or f"{layer.digest[7:19]}: Already exists" in out
    assert f"Digest: {busybox_image.manifest.digest}" in out
    assert f"Status: Downloaded newer image for {ref}" in out
    info = json.loads(_docker(dockyard_daemon, "image", "inspect", ref)[1])[0]
    assert info["Id"] == busybox_image.image_id
    assert f"{host}/cli/bb@{busybox_image.manifest.digest}" in info["RepoDigests"]
    rc, out, err = _docker(dockyard_daemon, "run", "--rm", "--network", "none", ref, "cat", "/data/hello")
    assert (rc, out) == (0, "hello from a layer\n"), err
    # run of an image that is not there pulls it first (through /images/create)
    r.upload(base, "cli/auto", "2", busybox_image)
    rc, out, err = _docker(dockyard_daemon, "run", "--rm", "--network", "none", f"{host}/cli/auto:2", "echo", "auto")
    assert rc == 0 and out.endswith("auto\n"), err
    assert "Unable to find image" in err
    # push a new tag back; the registry has every blob
    rc, out, err = _docker(dockyard_daemon, "tag", ref, f"{host}/cli/pushed:3")
    assert rc == 0, err
    rc, out, err = _docker(dockyard_daemon, "push", f"{host}/cli/pushed:3")
    assert rc == 0, err
    assert "3: digest: sha256:" in out
    assert ("Mounted from cli/" in out) or ("Layer already exists" in out)


def test_docker_cli_reports_a_missing_image(dockyard_daemon: Engine, go_registry: r.GoRegistry) -> None:  # noqa: F811
    rc, _, err = _docker(dockyard_daemon, "pull", f"{go_registry.host}/cli/none:1")
    assert rc != 0
    assert "not found" in err and "manifest unknown" in err
    rc, _, err = _docker(dockyard_daemon, "pull", "Bad//Ref")
    assert rc != 0 and "invalid reference format" in err




def test_docker_cli_login_push_pull_with_token_auth(dockyard_daemon: Engine,  # noqa: F811
                                                    tmp_path: os.PathLike[str]) -> None:
    """docker login/push/pull through our daemon to our registry with Bearer token auth."""
    import bcrypt

    from tests.unit.registry.test_auth import _key

    root = str(tmp_path)
    with open(f"{root}/htpasswd", "w") as f:
        f.write("tok:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    with open(f"{root}/registry.yml", "w") as f:
        f.write(f"auth: {{token: {{key: {_key(f'{root}/key.pem')}, service: cli-test, "
                f"htpasswd: {root}/htpasswd}}}}\n")
    served = start_registry(f"{root}/data", "--config", f"{root}/registry.yml")
    try:
        config_dir = f"{root}/docker-config"
        env = ["--config", config_dir]
        rc, out, err = _docker(dockyard_daemon, *env, "login", "-u", "tok", "-p", "wrong", served.host)
        assert rc != 0 and "unauthorized" in err.lower()
        rc, out, err = _docker(dockyard_daemon, *env, "login", "-u", "tok", "-p", "pw", served.host)
        assert rc == 0 and "Login Succeeded" in out, err
        ref = f"{served.host}/secure/bb:1"
        # the daemon's fixture loaded busybox:latest (docker load): a local image, never pushed,
        # so its layer is compressed and uploaded here
        rc, _, err = _docker(dockyard_daemon, "tag", "busybox:latest", ref)
        assert rc == 0, err
        rc, out, err = _docker(dockyard_daemon, *env, "push", ref)
        assert rc == 0 and "1: digest: sha256:" in out, err
        rc, _, err = _docker(dockyard_daemon, "rmi", ref)
        assert rc == 0, err
        rc, out, err = _docker(dockyard_daemon, "pull", ref)  # no credentials: refused
        assert rc != 0
        rc, out, err = _docker(dockyard_daemon, *env, "pull", ref)
        assert rc == 0 and f"Status: Downloaded newer image for {ref}" in out, err
    finally:
        stop_registry(served)
