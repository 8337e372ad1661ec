"""``--change`` instructions of ``docker commit`` / ``docker import`` applied to an image config."""

from __future__ import annotations

import json
import shlex
from typing import Any

from dockyard.errors import InvalidArgument

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def _list_or_shell(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", rest]


def _pairs(rest: str) -> dict[str, str]:
    words = shlex.split(rest)
    if len(words) >= 2 and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    out = {}
    for w in words:
        k, sep, v = w.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid change: {rest}")
        out[k] = v
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    cfg = dict(config)
    for change in changes:
        change = change.strip()
        if not change:
            continue
        word, _, rest = change.partition(" ")
        word = word.upper()
        if word not in ALLOWED:
            raise InvalidArgument(f"{word} is not a valid change command")
        if word == "CMD":
            cfg["Cmd"] = _list_or_shell(rest)
        elif word == "ENTRYPOINT":
            cfg["Entrypoint"] = _list_or_shell(rest)
        elif word == "ENV":
            env = [e for e in cfg.get("Env") or []]
            for k, v in _pairs(rest).items():
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif word == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(rest))
            cfg["Labels"] = labels
        elif word == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in rest.split():
                ports[p if "/" in p else p + "/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif word == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in _list_or_shell(rest) if rest.strip().startswith("[") else rest.split():
                vols[v] = {}
            cfg["Volumes"] = vols
        elif word == "WORKDIR":
            cfg["WorkingDir"] = rest.strip()
        elif word == "USER":
            cfg["User"] = rest.strip()
        elif word == "STOPSIGNAL":
            cfg["StopSignal"] = rest.strip()
        elif word == "ONBUILD":
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), rest.strip()]
    return cfg


__all__ = ["apply_changes"]
