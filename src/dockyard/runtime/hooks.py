"""OCI hooks (config.md "POSIX-platform Hooks"): each runs with the container state as JSON on
stdin; a failing prestart/createRuntime/createContainer/startContainer hook fails the
operation, a failing poststart/poststop hook only warns."""

from __future__ import annotations

import json
from collections.abc import Callable

from dockyard.errors import Internal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = ["run_hooks"]

_FATAL = ("prestart", "createRuntime", "createContainer", "startContainer")


def run_hooks(spec: dict[str, Any], name: str, state: dict[str, Any],
              warn: Callable[[str], None] | None = None) -> None:
    hooks = (spec.get("hooks") or {}).get(name) or []
    if not hooks:
        return
    import subprocess

    payload = json.dumps(state).encode()
    for hook in hooks:
        argv = hook.get("args") or [hook["path"]]
        env = dict(e.split("=", 1) for e in hook.get("env") or [])
        try:
            res = subprocess.run(argv, executable=hook["path"], input=payload, env=env,
                                 capture_output=True, timeout=hook.get("timeout"), check=False)
            problem = (f"exit status {res.returncode}: "
                       f"{res.stderr.decode(errors='replace').strip()}"
                       if res.returncode else "")
        except (OSError, subprocess.TimeoutExpired) as exc:
            problem = str(exc)
        if problem:
            msg = f"{name} hook {hook['path']} failed: {problem}"
            if name in _FATAL:
                raise Internal(msg)
            if warn:
                warn(msg)
