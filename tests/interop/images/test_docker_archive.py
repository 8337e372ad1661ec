"""Images move both ways between our store and the reference dockerd (docker save/load), and
``docker diff``/``commit`` layouts match ours for the same changes."""

from __future__ import annotations

import io
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from dockyard.images import ImageStore
from dockyard.images.bootstrap import build_busybox_image
from tests.unit.images.tars import LNK, D, F, config_for, entry, make_tar

pytestmark = [pytest.mark.interop, pytest.mark.root, pytest.mark.slow]

SCRIPT = (
    "echo added > /tmp/new; rm /bin/ls; echo more >> /etc/passwd; rm -r /home; mkdir /home; "
    "touch /home/fresh; rm -r /var; mkdir -p /new/a/b; touch /usr; chmod 711 /root; touch /etc/group"
)


@dataclass
class Docker:
    sock: str

    def run(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        out = subprocess.run(["docker", "-H", f"unix://{self.sock}", *args], input=input,
                             capture_output=True, timeout=120)
        if check and out.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {out.stderr.decode()}")
        return out


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        pytest.skip("dockerd or the docker CLI is not installed")
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    base = tempfile.mkdtemp(prefix="dy-img-dockerd-", dir="/var/tmp")
    sock = f"{base}/d.sock"
    with open(f"{base}/dockerd.log", "wb") as log:
        proc = subprocess.Popen(
            ["dockerd", "--data-root", f"{base}/data", "--exec-root", f"{base}/exec",
             "--pidfile", f"{base}/d.pid", "-H", f"unix://{sock}", "--bridge=none",
             "--iptables=false", "--ip-masq=false"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    d = Docker(sock)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(sock) and d.run("version", check=False).returncode == 0:
                break
            time.sleep(0.2)
        else:
            with open(f"{base}/dockerd.log") as f:
                pytest.skip(f"dockerd did not start: {f.read()[-800:]}")
        yield d
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(base + "/")]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def store(tmp_path: os.PathLike[str]) -> Iterator[ImageStore]:
    s = ImageStore(os.path.join(str(tmp_path), "store"))
    yield s
    for cid in s.rootfs.list():
        s.remove_rootfs(cid)


def special_image(store: ImageStore, tag: str) -> str:
    base = store.get(build_busybox_image(store))
    lower = make_tar(
        entry("data/", D), entry("data/keep", F, b"keep"), entry("data/gone", F, b"gone"),
        entry("opq/", D), entry("opq/old", F, b"old"),
        entry("perm/", D, mode=0o2775, uid=1000, gid=1000),
        entry("perm/suid", F, b"x", mode=0o4755, uid=1000, gid=50),
        entry("perm/hard", LNK, link="perm/suid", mode=0o4755, uid=1000, gid=50),
    )
    upper = make_tar(entry("data/", D), entry("data/.wh.gone", F), entry("opq/", D),
                     entry("opq/.wh..wh..opq", F), entry("opq/new", F, b"new"))
    c1, d1 = store.apply_layer(base.top_layer, io.BytesIO(lower))
    _, d2 = store.apply_layer(c1, io.BytesIO(upper))
    return store.add_image(config_for([*base.layers, d1, d2], config={"Cmd": ["sh"]}), tags=[tag])


def test_our_save_loads_into_dockerd(docker: Docker, store: ImageStore) -> None:
    tag = f"dy-special-{uuid.uuid4().hex[:8]}:1"
    image_id = special_image(store, tag)
    buf = io.BytesIO()
    store.save([tag], buf)
    out = docker.run("load", input=buf.getvalue())
    assert f"Loaded image: {tag}" in out.stdout.decode()
    assert docker.run("image", "inspect", "-f", "{{.Id}}", tag).stdout.decode().strip() == image_id
    script = "ls /data /opq; stat -c '%a %u %g' /perm/suid /perm; stat -c %i /perm/suid /perm/hard"
    out = docker.run("run", "--rm", "--network", "none", tag, "sh", "-c", script).stdout.decode().split("\n")
    assert out[:4] == ["/data:", "keep", "", "/opq:"]
    assert out[4] == "new"
    assert out[5:7] == ["4755 1000 50", "2775 1000 1000"]
    assert out[7] == out[8]  # still one inode


def test_dockerd_commit_and_save_load_into_our_store(docker: Docker, store: ImageStore) -> None:
    tag = f"dy-bb-{uuid.uuid4().hex[:8]}:latest"
    build_busybox_image(store, tag)
    buf = io.BytesIO()
    store.save([tag], buf)
    docker.run("load", input=buf.getvalue())
    name = f"dy-{uuid.uuid4().hex[:10]}"
    docker.run("run", "--name", name, "--network", "none", tag, "sh", "-c", SCRIPT)
    try:
        docker_diff = sorted(docker.run("diff", name).stdout.decode().split("\n")[:-1])
        committed = f"dy-committed-{uuid.uuid4().hex[:8]}:1"
        docker.run("commit", name, committed)
    finally:
        docker.run("rm", "-f", name, check=False)
    saved = docker.run("save", committed).stdout
    assert store.load(io.BytesIO(saved)) == [committed]
    img = store.resolve(committed)
    assert img.id == docker.run("image", "inspect", "-f", "{{.Id}}", committed).stdout.decode().strip()
    # dockerd's diff layer unpacked by us: whiteout for /bin/ls, opaque /home
    top = store.layer(img.chain_ids[-1]).path
    st = os.lstat(os.path.join(top, "bin/ls"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(top, "home"), "trusted.overlay.opaque") == b"y"
    # the same changes in our own container give the same `docker diff`
    cid = "t" + uuid.uuid4().hex
    store.prepare_rootfs(cid, store.resolve(tag).id)
    root = store.mount_rootfs(cid)
    subprocess.run(["chroot", root, "/bin/sh", "-c", SCRIPT], check=True)
    ours = sorted(f"{kind} {path}" for kind, path in store.changes(cid))
    assert ours == docker_diff, (ours, docker_diff)
    # and our commit of it carries the same layout back to dockerd
    ours_committed = store.commit(cid, {"Cmd": ["sh"]}, ref=f"dy-ours-{uuid.uuid4().hex[:8]}:1")
    ref = store.get(ours_committed).repo_tags[0]
    buf = io.BytesIO()
    store.save([ref], buf)
    docker.run("load", input=buf.getvalue())
    out = docker.run("run", "--rm", "--network", "none", ref, "sh", "-c",
                     "ls /home; test ! -e /bin/ls && cat /tmp/new").stdout.decode()
    assert out == "fresh\nadded\n"
