"""The local volume driver's store (see the package docstring for the layout)."""

from __future__ import annotations

import builtins
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from dockyard.atomic import atomic_write_json
from dockyard.errors import Conflict, InvalidArgument, NotFound

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


@dataclass(frozen=True)
class Volume:
    name: str
    driver: str
    mountpoint: str
    created_at: str
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False


class VolumeStore:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, mode=0o701, exist_ok=True)

    def _dir(self, name: str) -> str:
        if not valid_name(name):
            raise InvalidArgument(
                f'create {name}: "{name}" includes invalid characters for a local volume name, '
                "only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
                "directory, use absolute path")
        return os.path.join(self.root, name)

    def create(self, name: str | None = None, *, driver: str = "local", labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, anonymous: bool = False) -> Volume:
        if driver not in ("local", ""):
            raise NotFound(f"error looking up volume plugin {driver}: plugin \"{driver}\" not found")
        if not name:
            name = os.urandom(32).hex()
            anonymous = True
        d = self._dir(name)
        if os.path.exists(os.path.join(d, "opts.json")):
            return self.get(name)  # Docker: creating an existing volume returns it
        os.makedirs(os.path.join(d, "_data"), exist_ok=True)
        record = {"Name": name, "Driver": "local", "Labels": labels or {}, "Options": options or {},
                  "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "Anonymous": anonymous}
        atomic_write_json(os.path.join(d, "opts.json"), record)
        return self._volume(d, record)

    def _volume(self, d: str, record: dict[str, Any]) -> Volume:
        return Volume(record["Name"], record.get("Driver", "local"), os.path.join(d, "_data"),
                      record.get("CreatedAt", ""), dict(record.get("Labels") or {}),
                      dict(record.get("Options") or {}), bool(record.get("Anonymous")))

    def get(self, name: str) -> Volume:
        if not valid_name(name):
            raise NotFound(f"get {name}: no such volume")
        d = os.path.join(self.root, name)
        try:
            with open(os.path.join(d, "opts.json")) as f:
                record = json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"get {name}: no such volume") from None
        return self._volume(d, record)

    def exists(self, name: str) -> bool:
        return valid_name(name) and os.path.exists(os.path.join(self.root, name, "opts.json"))

    def list(self) -> list[Volume]:
        out = []
        for name in sorted(os.listdir(self.root)):
            try:
                out.append(self.get(name))
            except NotFound:
                continue
        return out

    def remove(self, name: str, *, in_use_by: builtins.list[str] | None = None) -> None:
        vol = self.get(name)
        if in_use_by:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(in_use_by)}]")
        d = os.path.dirname(vol.mountpoint)
        # the record goes first: a crash half-way leaves a directory without a record, ignored
        os.unlink(os.path.join(d, "opts.json"))
        shutil.rmtree(d, ignore_errors=True)

    @staticmethod
    def size(vol: Volume) -> int:
        total = 0
        for dirpath, _, files in os.walk(vol.mountpoint):
            for fn in files:
                try:
                    total += os.lstat(os.path.join(dirpath, fn)).st_size
                except OSError:
                    pass
        return total


__all__ = ["Volume", "VolumeStore", "valid_name"]
