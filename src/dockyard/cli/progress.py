"""Render a JSON progress stream (pull, push, load) like docker's jsonmessage package.

On a terminal every layer id owns a line that is rewritten in place (cursor up ``ESC[nA``,
erase line ``ESC[2K``)::

    a307d6ecc620: Downloading [=======================>                           ]  1.05MB/2.2MB

Elsewhere progress updates are dropped and only status changes are printed, one per line.
An ``error`` message ends the stream with that message. Plain ANSI: a terminal library
would cost more start-up than the twenty lines below.
"""

from __future__ import annotations

from collections.abc import Iterable

from dockyard.cli.format import human_size
from dockyard.errors import DockyardError

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any, TextIO

__all__ = ["StreamError", "display", "progress_bar"]

BAR_WIDTH = 50


class StreamError(DockyardError):
    """The daemon reported an error inside a progress stream."""


def progress_bar(current: int, total: int, width: int = 110) -> str:
    """docker's JSONProgress.String: ``[=====>      ]  1.049MB/2.097MB``; the bar is left out
    on terminals narrower than 110 columns, and a total of 0 shows the count alone."""
    if total <= 0:
        return f"{human_size(current, 4):>8}" if current else ""
    numbers = (f"{human_size(current, 4):>8}/{human_size(total, 4)}" if current <= total
               else f"{human_size(current, 4):>8}")
    if width < 110:
        return numbers
    filled = min(BAR_WIDTH, int(current / total * 100) // 2)
    return f"[{'=' * filled}>{' ' * (BAR_WIDTH - filled)}] {numbers}"


def _line(msg: dict[str, Any], tty: bool, width: int = 110) -> str:
    text = ""
    if msg.get("id"):
        text += f"{msg['id']}: "
    text += msg.get("status") or msg.get("stream") or ""
    if tty:
        detail = msg.get("progressDetail") or {}
        if detail.get("total") or detail.get("current"):
            text += " " + progress_bar(int(detail.get("current") or 0),
                                       int(detail.get("total") or 0), width)
        elif msg.get("progress"):
            text += " " + msg["progress"]
    return text


def _width(out: TextIO) -> int:
    import os
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 110


def display(messages: Iterable[dict[str, Any]], out: TextIO, tty: bool,
            quiet: bool = False) -> list[dict[str, Any]]:
    """Show a progress stream; returns the ``aux`` payloads; raises StreamError on error."""
    lines: dict[str, int] = {}  # layer id -> line index, counted from the top
    width = _width(out) if tty else 0
    total = 0
    aux: list[dict[str, Any]] = []
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            raise StreamError(detail.get("message") or msg.get("error") or "unknown error")
        if "aux" in msg:
            aux.append(msg["aux"])
            continue
        if quiet:
            continue
        has_progress = bool(msg.get("progressDetail") or msg.get("progress"))
        ident = msg.get("id")
        if not tty:
            if has_progress:
                continue
            if "stream" in msg and not ident:
                out.write(msg["stream"])
            else:
                out.write(_line(msg, False) + "\n")
            continue
        text = _line(msg, True, width)
        if ident and ident in lines:
            up = total - lines[ident]
            out.write(f"\x1b[{up}A\x1b[2K\r{text}\x1b[{up}B\r")
        else:
            if ident:
                lines[ident] = total
            if "stream" in msg and not ident:
                out.write(msg["stream"])
                total += msg["stream"].count("\n")
                continue
            out.write(f"\x1b[2K\r{text}\n")
            total += 1
        out.flush()
    out.flush()
    return aux
