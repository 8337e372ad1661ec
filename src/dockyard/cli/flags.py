"""A fast path for well-formed command lines: argparse's results without importing argparse.

argparse costs the CLI ~5 ms of start-up (it imports ``re``, and with it ``enum``,
``functools`` and ``collections``) plus ~1 ms building ~75 actions for ``run`` — a fifth of
what ``dockyard run -d`` spends of its own. :func:`fast_parse` takes the flag declarations
argparse would get (``(names, kwargs)`` of ``add_argument``) and returns the namespace argparse
would return, or ``None`` whenever the command line is anything but plain: an unknown or
malformed flag, a missing or extra argument, ``--``, a flag after the first positional
argument (argparse's interleaving rules are subtle), a value that fails its ``type`` or
``choices``. ``None`` sends the caller to argparse itself, which then produces the result or
the error message exactly as before. tests/unit/cli/test_flags.py checks the two agree.

Supported declarations: optionals with ``action`` store (the default), ``store_true`` or
``append``, ``dest``, ``default``, ``type``, ``choices``; positionals with ``nargs`` None,
``?``, ``*``, ``+`` or ``...`` (argparse.REMAINDER). ``help`` and ``metavar`` are ignored.
Any other declaration makes every command line of that parser go to argparse.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any

__all__ = ["Namespace", "fast_parse"]

REMAINDER = "..."  # argparse.REMAINDER
_KNOWN = frozenset(("action", "dest", "default", "type", "choices", "help", "metavar", "nargs"))
_MIN = {None: 1, "?": 0, "*": 0, "+": 1, REMAINDER: 0}


class Namespace:
    """Like ``argparse.Namespace``: attributes, equality and repr."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other) if hasattr(other, "__dict__") else NotImplemented

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__

    def __repr__(self) -> str:
        return "Namespace(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"

    __hash__ = None  # type: ignore[assignment]


class _Fallback(Exception):
    """Not for the fast path: let argparse decide."""


class _Opt:
    __slots__ = ("action", "choices", "default", "dest", "type")

    def __init__(self, names: tuple[str, ...], kw: dict[str, Any]) -> None:
        self.action = kw.get("action", "store")
        if self.action not in ("store", "store_true", "append") or "nargs" in kw:
            raise _Fallback
        long = [n for n in names if n.startswith("--")]
        self.dest = kw.get("dest") or (long or names)[0].lstrip("-").replace("-", "_")
        self.default = kw.get("default", False if self.action == "store_true" else None)
        self.type = kw.get("type")
        self.choices = kw.get("choices")

    def value(self, text: str) -> Any:
        try:
            value = self.type(text) if self.type is not None else text
        except (TypeError, ValueError):
            raise _Fallback from None
        if self.choices is not None and value not in self.choices:
            raise _Fallback
        return value


def fast_parse(specs: list[tuple[tuple[str, ...], dict[str, Any]]],
               args: list[str]) -> Namespace | None:
    """argparse's ``parse_args(args)`` for a parser declared by ``specs``, or None (above)."""
    try:
        return _parse(specs, args)
    except _Fallback:
        return None


def _parse(specs: list[tuple[tuple[str, ...], dict[str, Any]]], args: list[str]) -> Namespace:
    options: dict[str, _Opt] = {}
    ordered: list[_Opt] = []
    positionals: list[tuple[str, Any, dict[str, Any]]] = []
    for names, kw in specs:
        if not kw.keys() <= _KNOWN:
            raise _Fallback
        if names[0].startswith("-"):
            opt = _Opt(names, kw)
            ordered.append(opt)
            for name in names:
                options[name] = opt
        else:
            if kw.get("action", "store") != "store" or kw.get("nargs") not in _MIN:
                raise _Fallback
            positionals.append((kw.get("dest") or names[0], kw.get("nargs"), kw))
    seen: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            break
        i += 1
        for opt, explicit in _options(arg, options):
            if opt.action == "store_true":
                if explicit is not None:
                    raise _Fallback  # argparse: "ignored explicit argument"
                seen[opt.dest] = True
                continue
            if explicit is None:
                if i >= len(args) or (args[i].startswith("-") and args[i] != "-"):
                    raise _Fallback  # argparse: "expected one argument" (or a negative number)
                explicit = args[i]
                i += 1
            value = opt.value(explicit)
            if opt.action == "append":
                seen[opt.dest] = [*seen.get(opt.dest, opt.default or []), value]
            else:
                seen[opt.dest] = value
    rest = args[i:]
    if "--" in args:
        raise _Fallback  # argparse's "--" rules differ by nargs and version
    for j, arg in enumerate(rest):
        if arg.startswith("-") and arg != "-" and not _remainder_started(positionals, j):
            # past the first positional a flag is argparse's business, unless a REMAINDER
            # positional has begun by then and takes it as an argument
            raise _Fallback
    ns = Namespace()
    for opt in ordered:
        if opt.dest in seen:
            setattr(ns, opt.dest, seen[opt.dest])
        elif not hasattr(ns, opt.dest):
            default = opt.default
            if isinstance(default, str) and opt.type is not None:
                default = opt.value(default)
            setattr(ns, opt.dest, default)
    for dest, value in _match_positionals(positionals, rest).items():
        setattr(ns, dest, value)
    return ns


def _options(arg: str, options: dict[str, _Opt]) -> list[tuple[_Opt, str | None]]:
    """The flags in one word and their values if attached: ``--name``, ``--name=value``,
    ``-x``, ``-x=value``, ``-xVALUE``, and runs of short flags such as ``-dit`` or ``-itv
    VALUE`` / ``-itvVALUE`` (the first flag that takes a value takes the rest)."""
    if arg in options:
        return [(options[arg], None)]
    if "=" in arg:
        name, _, value = arg.partition("=")
        if name in options:
            return [(options[name], value)]
    if arg.startswith("--") or len(arg) < 3:
        raise _Fallback  # unknown (argparse's abbreviation and error rules apply)
    out: list[tuple[_Opt, str | None]] = []
    for k in range(1, len(arg)):
        opt = options.get("-" + arg[k])
        if opt is None:
            raise _Fallback
        if opt.action != "store_true":
            out.append((opt, arg[k + 1:] or None))
            return out
        out.append((opt, None))
    return out


def _remainder_started(positionals: list[tuple[str, Any, dict[str, Any]]], index: int) -> bool:
    """Whether rest[index] falls to the REMAINDER positional: only if every positional before
    it takes exactly one argument (then its start is fixed) and index is at or past it."""
    for start, (_, nargs, _) in enumerate(positionals):
        if nargs == REMAINDER:
            return index >= start
        if nargs is not None:
            return False
    return False


def _match_positionals(positionals: list[tuple[str, Any, dict[str, Any]]],
                       rest: list[str]) -> dict[str, Any]:
    """Greedy left to right, each leaving enough for the minimums of those after it (what
    argparse's regular expression over the nargs patterns does)."""
    out: dict[str, Any] = {}
    pos = 0
    for k, (dest, nargs, kw) in enumerate(positionals):
        need_after = sum(_MIN[n] for _, n, _ in positionals[k + 1:])
        available = len(rest) - pos - need_after
        if available < _MIN[nargs]:
            raise _Fallback  # argparse: "the following arguments are required"
        take = 1 if nargs is None else min(available, 1) if nargs == "?" else available
        if nargs == REMAINDER and k != len(positionals) - 1:
            raise _Fallback
        values = rest[pos:pos + take]
        pos += take
        opt = _positional_opt(kw)
        if nargs is None:
            out[dest] = opt.value(values[0])
        elif nargs == "?":
            if values:
                out[dest] = opt.value(values[0])
            else:
                default = kw.get("default")
                out[dest] = opt.value(default) if isinstance(default, str) else default
        elif nargs == REMAINDER:
            if opt.type is not None or opt.choices is not None:
                raise _Fallback
            out[dest] = values
        elif not values:  # "*"
            if opt.choices is not None:
                raise _Fallback
            default = kw.get("default")
            out[dest] = default if default is not None else []
        else:
            out[dest] = [opt.value(v) for v in values]
    if pos != len(rest):
        raise _Fallback  # argparse: "unrecognized arguments"
    return out


def _positional_opt(kw: dict[str, Any]) -> _Opt:
    plain = {k: v for k, v in kw.items() if k in ("type", "choices")}
    return _Opt(("-",), plain)
