"""``loads``/``dumps``/``raw_decode`` straight over CPython's ``_json`` accelerator.

Why not :mod:`json`: importing it compiles regular expressions (``json.decoder``,
``json.scanner``), which pulls in :mod:`re` and :mod:`enum` — together the largest single
item of the start-up of the CLI (``run``/``rm``/``ps``) and of ``dockyard-runtime``. The C scanner and encoder are
what ``json`` itself uses when they are available (they always are in CPython), so values and
bytes are the same; errors are :class:`json.JSONDecodeError` (a ``ValueError``), imported only
when one is raised.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any

__all__ = ["dumps", "loads", "raw_decode"]

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _Context:
    """What ``_json.make_scanner`` reads off a JSONDecoder: the defaults of json.loads."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_CONSTANTS.__getitem__)
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed, as in json


def _error(message: str, doc: str, pos: int) -> ValueError:
    from json import JSONDecodeError

    return JSONDecodeError(message, doc, pos)


def raw_decode(text: str, idx: int = 0) -> tuple[Any, int]:
    """Like ``json.JSONDecoder().raw_decode``: one value at ``idx`` -> (value, end)."""
    try:
        value, end = _scan(text, idx)
    except StopIteration as exc:
        raise _error("Expecting value", text, exc.value) from None
    return value, end


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads`` for UTF-8 (the Engine API's only encoding) or text."""
    text = data if isinstance(data, str) else bytes(data).decode("utf-8-sig")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    value, end = raw_decode(text, start)
    end = len(text) - len(text[end:].lstrip(_WHITESPACE))
    if end != len(text):
        raise _error("Extra data", text, end)
    return value


def _default(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(obj: Any, *, compact: bool = False) -> str:
    """``json.dumps(obj)`` (``compact``: with ``separators=(",", ":")``)."""
    key_sep, item_sep = (":", ",") if compact else (": ", ", ")
    # a new encoder per call: its first argument is the circular-reference memo
    encode = _json.make_encoder({}, _default, _json.encode_basestring_ascii, None, key_sep,
                                item_sep, False, False, True)
    return "".join(encode(obj, 0))
