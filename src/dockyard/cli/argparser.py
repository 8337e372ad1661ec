"""argparse for :class:`dockyard.cli.context.Parser`'s slow path: help, usage errors and the
command lines :func:`dockyard.cli.flags.fast_parse` hands over. argparse's complaints are
translated into docker's words here.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import NoReturn

    from dockyard.cli.context import Parser

__all__ = ["ArgParser"]


def _import_argparse():  # type: ignore[no-untyped-def]
    """argparse without gettext (~0.7 ms; the CLI speaks English only, see below): a stand-in
    answers argparse's ``from gettext import ...`` and is taken away again at once, so that
    anything imported later gets the real module."""
    if "gettext" in sys.modules or "argparse" in sys.modules:
        import argparse
        return argparse
    stub = type(sys)("gettext")
    stub.gettext = lambda message: message  # type: ignore[attr-defined]
    stub.ngettext = lambda singular, plural, n: singular if n == 1 else plural  # type: ignore[attr-defined]
    sys.modules["gettext"] = stub
    try:
        import argparse
    finally:
        if sys.modules.get("gettext") is stub:
            del sys.modules["gettext"]
    return argparse


if TYPE_CHECKING:
    import argparse
else:
    argparse = _import_argparse()

# argparse wraps every message in gettext, and each gettext call searches the disk for a
# catalogue (and imports locale): ~30 calls per command line. The CLI speaks English only.
argparse._ = lambda message: message  # type: ignore[attr-defined]
argparse.ngettext = (  # type: ignore[attr-defined]
    lambda singular, plural, n: singular if n == 1 else plural)


class _Formatter(argparse.HelpFormatter):
    """A fixed width: argparse would import shutil (and with it bz2, lzma, ...) to ask the
    terminal, once per add_argument."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=100, max_help_position=30)


class ArgParser(argparse.ArgumentParser):
    """The argparse twin of a :class:`~dockyard.cli.context.Parser` (same flags)."""

    def __init__(self, parser: Parser) -> None:
        super().__init__(prog=f"dockyard {parser.command}", usage=parser.usage,
                         description=parser.description, add_help=False, allow_abbrev=False,
                         formatter_class=_Formatter)
        self.parser = parser
        self.command = parser.command
        for names, kwargs in parser.specs:
            self.add_argument(*names, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Translate argparse's complaints into docker's words."""
        from dockyard.cli.context import UsageError

        usage = self.usage or ""
        quoted = f"'dockyard {self.command}'"
        if message.startswith("unrecognized arguments: "):
            token = message.split(": ", 1)[1].split()[0]
            if token.startswith("--"):
                raise UsageError(f"unknown flag: {token.split('=')[0]}", self.command, usage=usage)
            if token.startswith("-") and len(token) > 1:
                raise UsageError(f"unknown shorthand flag: '{token[1]}' in {token}",
                                 self.command, usage=usage)
            allowed = [a for a in self._actions if not a.option_strings]
            what = (f"requires at most {len(allowed)} argument{'s' * (len(allowed) > 1)}"
                    if allowed else "accepts no arguments")
            raise UsageError(f"dockyard: {quoted} {what}", self.command, usage=usage, status=1)
        if message.startswith("the following arguments are required"):
            positionals = [a for a in self._actions if not a.option_strings]
            at_least = any(a.nargs in ("+", "*", argparse.REMAINDER) for a in positionals)
            self.parser.requires(sum(1 for a in positionals
                                     if a.nargs not in ("?", "*", argparse.REMAINDER)), at_least)
        if message.startswith("argument ") and "expected one argument" in message:
            flag = message.split()[1].rstrip(":").split("/")[-1]
            raise UsageError(f"flag needs an argument: {flag}", self.command, usage=usage)
        raise UsageError(message, self.command, usage=usage)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        from dockyard.cli.context import StatusError

        raise StatusError(status, (message or "").rstrip())
