"""Binds, named and anonymous volumes, tmpfs and --volumes-from -> mount points and OCI mounts.

A mount point (as ``inspect`` shows it under ``Mounts``)::

    {"Type": "bind"|"volume"|"tmpfs", "Name": vol, "Source": host path, "Destination": path,
     "Driver": "local", "Mode": "ro"|"", "RW": bool, "Propagation": "rprivate", "Options": str}
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.volumes import VolumeStore


def _bind_point(src: str, dest: str, mode: str) -> dict[str, Any]:
    opts = [o for o in mode.split(",") if o]
    ro = "ro" in opts
    prop = next((o for o in opts if o.endswith("private") or o.endswith("shared") or o.endswith("slave")),
                "rprivate")
    return {"Type": "bind", "Source": src, "Destination": dest, "Mode": mode, "RW": not ro,
            "Propagation": prop}


def resolve(host_config: dict[str, Any], config: dict[str, Any], volumes: VolumeStore,
            lookup: Callable[[str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Mount points for a new container; creates named/anonymous volumes as Docker does."""
    points: dict[str, dict[str, Any]] = {}
    for spec in host_config.get("VolumesFrom") or []:
        ref, _, mode = str(spec).partition(":")
        for mp in lookup(ref):
            mp = dict(mp)
            if mode == "ro":
                mp["RW"] = False
                mp["Mode"] = "ro"
            points[mp["Destination"]] = mp
    for bind in host_config.get("Binds") or []:
        parts = str(bind).split(":")
        if len(parts) == 1:
            src, dest, mode = "", parts[0], ""
        elif len(parts) == 2:
            src, dest, mode = parts[0], parts[1], ""
        elif len(parts) == 3:
            src, dest, mode = parts
        else:
            raise InvalidArgument(f"invalid volume specification: '{bind}'")
        if not dest.startswith("/"):
            raise InvalidArgument(f"invalid volume specification: '{bind}': invalid mount config for type \"volume\": invalid mount path: '{dest}' mount path must be absolute")
        if src.startswith("/"):
            os.makedirs(src, exist_ok=True)  # -v creates a missing host directory, like Docker
            points[dest] = _bind_point(src, dest, mode)
        else:
            vol = volumes.create(src or None)
            points[dest] = {"Type": "volume", "Name": vol.name, "Source": vol.mountpoint, "Destination": dest,
                            "Driver": "local", "Mode": mode or "z", "RW": "ro" not in mode.split(","),
                            "Propagation": ""}
    for m in host_config.get("Mounts") or []:
        typ = m.get("Type") or "volume"
        dest = m.get("Target") or m.get("Destination") or ""
        if not dest.startswith("/"):
            raise InvalidArgument(f"invalid mount config for type \"{typ}\": invalid mount path: '{dest}' mount path must be absolute")
        ro = bool(m.get("ReadOnly"))
        if typ == "bind":
            src = m.get("Source") or ""
            if not src.startswith("/") or not os.path.exists(src):
                raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not exist: {src}")
            prop = (m.get("BindOptions") or {}).get("Propagation") or "rprivate"
            points[dest] = {"Type": "bind", "Source": src, "Destination": dest, "Mode": "", "RW": not ro,
                            "Propagation": prop}
        elif typ == "volume":
            opts = m.get("VolumeOptions") or {}
            vol = volumes.create(m.get("Source") or None, labels=opts.get("Labels"))
            points[dest] = {"Type": "volume", "Name": vol.name, "Source": vol.mountpoint, "Destination": dest,
                            "Driver": "local", "Mode": "z", "RW": not ro, "Propagation": "",
                            "NoCopy": bool(opts.get("NoCopy"))}
        elif typ == "tmpfs":
            t = m.get("TmpfsOptions") or {}
            opt = []
            if t.get("SizeBytes"):
                opt.append(f"size={int(t['SizeBytes'])}")
            if t.get("Mode"):
                opt.append(f"mode={int(t['Mode']):o}")
            points[dest] = {"Type": "tmpfs", "Source": "", "Destination": dest, "Mode": "", "RW": not ro,
                            "Propagation": "", "Options": ",".join(opt)}
        else:
            raise InvalidArgument(f"mount type {typ!r} is not supported")
    for dest, opts in (host_config.get("Tmpfs") or {}).items():
        points[dest] = {"Type": "tmpfs", "Source": "", "Destination": dest, "Mode": "", "RW": True,
                        "Propagation": "", "Options": str(opts or "")}
    for dest in (config.get("Volumes") or {}):
        if dest not in points:
            vol = volumes.create(None)
            points[dest] = {"Type": "volume", "Name": vol.name, "Source": vol.mountpoint, "Destination": dest,
                            "Driver": "local", "Mode": "", "RW": True, "Propagation": ""}
    return sorted(points.values(), key=lambda p: p["Destination"])


def oci_mounts(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for mp in points:
        if mp["Type"] == "tmpfs":
            opts = ["nosuid", "nodev", "noexec"]
            extra = [o for o in str(mp.get("Options") or "").split(",") if o]
            if not any(o.startswith("size=") for o in extra):
                extra.append("size=65536k")
            if not mp["RW"]:
                opts.append("ro")
            out.append({"destination": mp["Destination"], "type": "tmpfs", "source": "tmpfs",
                        "options": opts + [o for o in extra if o not in ("rw",)]})
        else:
            opts = ["rbind", mp.get("Propagation") or "rprivate"]
            if not mp["RW"]:
                opts.append("ro")
            out.append({"destination": mp["Destination"], "type": "bind", "source": mp["Source"], "options": opts})
    return out


def copy_up(points: list[dict[str, Any]], rootfs: str) -> None:
    """Fill empty volumes with what the image has at their destination (Docker's copy-up)."""
    for mp in points:
        if mp["Type"] != "volume" or mp.get("NoCopy"):
            continue
        src = os.path.join(rootfs, mp["Destination"].lstrip("/"))
        dst = mp["Source"]
        if not os.path.isdir(src) or os.path.islink(src) or os.listdir(dst):
            continue
        for name in os.listdir(src):
            s, d = os.path.join(src, name), os.path.join(dst, name)
            if os.path.isdir(s) and not os.path.islink(s):
                shutil.copytree(s, d, symlinks=True)
            else:
                shutil.copy2(s, d, follow_symlinks=False)
        st = os.stat(src)
        os.chmod(dst, st.st_mode & 0o7777)
        os.chown(dst, st.st_uid, st.st_gid)


__all__ = ["copy_up", "oci_mounts", "resolve"]
