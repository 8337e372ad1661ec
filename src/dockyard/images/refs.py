"""The name index: which tag or digest reference points at which image.

Stored as ``repositories.json`` in the shape of Docker's reference store
(image/<driver>/repositories.json), keyed by familiar names::

    {"Repositories": {"busybox": {"busybox:latest": "sha256:<id>",
                                  "busybox@sha256:<manifest>": "sha256:<id>"}}}

Every change rewrites the file atomically; the in-memory copy is the only reader.
"""

from __future__ import annotations

import json
import re
import threading

from dockyard.atomic import atomic_write_json
from dockyard.oci.reference import Reference, parse_reference

__all__ = ["RefIndex", "familiar_match"]


class RefIndex:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._repos: dict[str, dict[str, str]] = {}
        try:
            with open(path, "rb") as f:
                self._repos = json.load(f).get("Repositories", {})
        except FileNotFoundError:
            pass

    def _save(self) -> None:
        atomic_write_json(self.path, {"Repositories": self._repos})

    def get(self, ref: Reference) -> str | None:
        with self.lock:
            return self._repos.get(ref.familiar_name(), {}).get(ref.familiar())

    def add(self, ref: Reference, image_id: str) -> None:
        with self.lock:
            repo = self._repos.setdefault(ref.familiar_name(), {})
            if repo.get(ref.familiar()) == image_id:
                return
            repo[ref.familiar()] = image_id
            self._save()

    def remove(self, ref: Reference) -> str | None:
        with self.lock:
            repo = self._repos.get(ref.familiar_name())
            if repo is None or ref.familiar() not in repo:
                return None
            image_id = repo.pop(ref.familiar())
            if not repo:
                del self._repos[ref.familiar_name()]
            self._save()
            return image_id

    def refs_of(self, image_id: str) -> list[Reference]:
        """Every reference to ``image_id``, sorted as Docker lists them."""
        with self.lock:
            out = [
                parse_reference(text)
                for repo in self._repos.values()
                for text, target in repo.items()
                if target == image_id
            ]
        return sorted(out, key=lambda r: r.familiar())

    def all(self) -> dict[str, list[Reference]]:
        with self.lock:
            out: dict[str, list[Reference]] = {}
            for repo in self._repos.values():
                for text, target in repo.items():
                    out.setdefault(target, []).append(parse_reference(text))
        for refs in out.values():
            refs.sort(key=lambda r: r.familiar())
        return out


def _glob_re(pattern: str) -> re.Pattern[str]:
    """Go's path.Match: ``*`` and ``?`` never match ``/``; ``[...]`` classes; ``\\`` escapes."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^"):
                    body = "^" + body[1:].replace("\\", "\\\\")
                else:
                    body = body.replace("\\", "\\\\")
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def familiar_match(pattern: str, ref: Reference) -> bool:
    """distribution/reference.FamiliarMatch: the pattern against ``name:tag``, then ``name``."""
    rx = _glob_re(pattern)
    return bool(rx.match(ref.familiar()) or rx.match(ref.familiar_name()))

