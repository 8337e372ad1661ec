"""Build a busybox image from the host's static busybox (there is no Docker Hub here).

The layer looks like the official ``busybox`` image: ``/bin/busybox`` plus one hardlink per
applet in ``/bin``, a few directories, ``/etc/passwd`` and ``/etc/group``. Every mtime and
the config's ``created`` come from the busybox binary's mtime, so the same binary always
gives the same image id.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
from typing import BinaryIO

from dockyard.errors import Unavailable
from dockyard.images._util import host_arch
from dockyard.images.diff import TarWriter
from dockyard.images.store import ImageStore

__all__ = ["BUSYBOX", "build_busybox_image", "busybox_layer"]

BUSYBOX = "/bin/busybox"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"
DIRS = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755,
        "root": 0o700, "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "usr/sbin": 0o755,
        "var": 0o755, "var/spool": 0o755, "var/www": 0o755}


def _applets(busybox: str) -> list[str]:
    try:
        out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise Unavailable(f"cannot run {busybox}: {exc}") from exc
    return sorted({a for a in out.split() if a and a != "busybox" and "/" not in a})


def busybox_layer(out: BinaryIO, busybox: str = BUSYBOX) -> int:
    """Write the layer tar to ``out``; returns the busybox mtime used for every entry."""
    if not os.path.exists(busybox):
        raise Unavailable(f"{busybox} is missing (apt-get install busybox-static)")
    mtime = int(os.stat(busybox).st_mtime)
    w = TarWriter(out)

    def entry(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.mtime, info.linkname = kind, mode, size, mtime, link
        info.uname = info.gname = ""
        return info

    for name in sorted(DIRS):
        w.add(entry(name, tarfile.DIRTYPE, DIRS[name]))
    with open(busybox, "rb") as f:
        w.add(entry("bin/busybox", tarfile.REGTYPE, 0o755, os.fstat(f.fileno()).st_size), f)
    for applet in _applets(busybox):
        w.add(entry(f"bin/{applet}", tarfile.LNKTYPE, 0o755, link="bin/busybox"))
    for name, text in (("etc/group", GROUP), ("etc/passwd", PASSWD)):
        data = text.encode()
        w.add(entry(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    w.close()
    return mtime


def build_busybox_image(store: ImageStore, tag: str = "busybox:latest", busybox: str = BUSYBOX) -> str:
    """Put a busybox image in ``store`` (tagged ``tag``); returns its id. Idempotent."""
    with tempfile.TemporaryFile(dir=store.tmp_dir) as f:
        mtime = busybox_layer(f, busybox)
        f.seek(0)
        _chain, diff_id = store.apply_layer(None, f)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))
    config = {
        "architecture": host_arch(),
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "created": created,
        "history": [
            {"created": created, "created_by": f"/bin/sh -c #(nop) ADD file:{diff_id[7:]} in / "},
            {"created": created, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    raw = json.dumps(config, separators=(",", ":")).encode()
    return store.add_image(raw, tags=[tag] if tag else [])
