"""Build a busybox root filesystem, layer tarball and image from Debian's busybox-static.

There is no Docker Hub here: every test makes its own images from these.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile

BUSYBOX = "/bin/busybox"

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"


def have_busybox() -> bool:
    return os.path.exists(BUSYBOX)


def applets() -> list[str]:
    out = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout
    return [a for a in out.split() if a and a != "busybox"]


def make_rootfs(dest: str) -> str:
    """Lay out a minimal busybox rootfs in ``dest`` (created) and return it."""
    for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "home", "var", "usr/bin"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(dest, "bin", "busybox"))
    for name in applets():
        link = os.path.join(dest, "bin", name)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(dest, "etc", "passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(dest, "etc", "group"), "w") as f:
        f.write(GROUP)
    return dest


def layer_tar_bytes(rootfs: str) -> bytes:
    """An uncompressed layer tarball of ``rootfs`` (paths relative, no leading slash)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(os.listdir(rootfs)):
            tar.add(os.path.join(rootfs, entry), arcname=entry)
    return buf.getvalue()
