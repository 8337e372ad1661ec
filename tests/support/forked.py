"""Run code in a child: a function in a fork with its result back, or a script inside a cgroup.

Installing a seccomp filter or dropping capabilities cannot be undone, so such tests do it in
a child process. The child sends ``repr``-free JSON through a pipe; an exception in the child
comes back as ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from typing import Any, Protocol


class _Joinable(Protocol):
    def apply(self, pid: int) -> None: ...


def run_forked(fn: Callable[[], Any]) -> Any:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        os.close(r)
        try:
            try:
                out: Any = {"result": fn()}
            except BaseException as exc:  # report everything, the child must not escape
                out = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        raise AssertionError(f"child died without answering (wait status {status})")
    answer = json.loads(b"".join(chunks))
    if "error" in answer:
        raise AssertionError(f"child failed: {answer['error']}\n{answer['trace']}")
    return answer["result"]


def spawn(cg: _Joinable, code: str) -> subprocess.Popen[bytes]:
    """Start ``python -c code`` inside ``cg``: the child waits on a pipe until it has joined."""
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", f"import os\nos.read({r}, 1)\n{code}"],
                            pass_fds=(r,), stdout=subprocess.PIPE)
    os.close(r)
    try:
        cg.apply(proc.pid)
    finally:
        os.write(w, b"go")
        os.close(w)
    return proc
