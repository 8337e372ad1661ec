"""What every command gets: streams, environment, a lazily connected client, a flag parser.

``Context`` is built once in :func:`dockyard.cli.main.main` and passed down; commands never
read ``sys.*`` or ``os.environ`` themselves, which is what makes in-process tests possible.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import IO, Any, NoReturn

    from dockyard.client.api import Client

__all__ = ["Context", "Parser", "StatusError", "UsageError"]


class UsageError(Exception):
    """Bad flags or arguments. Docker prints, for a flag error (exit 125)::

        unknown flag: --bogus

        Usage:  docker ps [OPTIONS]

        Run 'docker ps --help' for more information

    and for a wrong number of arguments (exit 1) ``docker: 'docker rm' requires at least 1
    argument``, the usage, and ``See 'docker rm --help' for more information``.
    """

    def __init__(self, message: str, command: str = "", *, usage: str = "",
                 status: int = 125, hint: str = "Run") -> None:
        super().__init__(message)
        self.command = command
        self.usage = usage
        self.status = status
        self.hint = hint

    def render(self) -> str:
        text = f"{self}\n"
        if self.usage:
            text += f"\nUsage:  {self.usage}\n"
        if self.command:
            text += f"\n{self.hint} 'dockyard {self.command} --help' for more information\n"
        return text


class StatusError(Exception):
    """End the command with this exit status (after printing ``message`` if any)."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Context:
    def __init__(self, *, stdin: Any, stdout: Any, stderr: Any,
                 env: Mapping[str, str]) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.env = env
        self.host_flag: str | None = None
        self.config_dir: str | None = None
        self.debug = False
        self._client: Client | None = None

    # -- output -----------------------------------------------------------------------------

    def out(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def err(self, text: str) -> None:
        self.stderr.write(text)
        self.stderr.flush()

    def out_bytes(self, data: bytes) -> None:
        _binary(self.stdout).write(data)
        _binary(self.stdout).flush()

    def err_bytes(self, data: bytes) -> None:
        _binary(self.stderr).write(data)
        _binary(self.stderr).flush()

    def stdin_binary(self) -> IO[bytes]:
        stream: IO[bytes] = _binary(self.stdin)
        return stream

    def is_tty(self, stream: Any) -> bool:
        try:
            return bool(stream.isatty())
        except (AttributeError, ValueError):
            return False

    # -- daemon -----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        from dockyard.client.transport import resolve_host
        return resolve_host(self.host_flag, self.env)

    @property
    def client(self) -> Client:
        """The connected client; the first use pings the daemon (version negotiation)."""
        if self._client is None:
            from dockyard.client.api import Client
            client = Client(self.host)
            client.ping()
            self._client = client
        return self._client

    def docker_config_dir(self) -> str:
        if self.config_dir:
            return self.config_dir
        return self.env.get("DOCKER_CONFIG") or os.path.join(
            self.env.get("HOME") or os.path.expanduser("~"), ".docker")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _binary(stream: Any) -> Any:
    return getattr(stream, "buffer", stream)


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


class Parser(argparse.ArgumentParser):
    """argparse with docker's manners: usage errors exit 125, help goes to our stdout."""

    def __init__(self, ctx: Context, command: str, usage: str, description: str = "", *,
                 short_help: bool = True) -> None:
        super().__init__(prog=f"dockyard {command}", usage=f"dockyard {command} {usage}",
                         description=description, add_help=False, allow_abbrev=False,
                         formatter_class=_Formatter)
        self.ctx = ctx
        self.command = command
        flags = ("-h", "--help") if short_help else ("--help",)  # run: -h is --hostname
        self.add_argument(*flags, action="store_true", help="Print usage")

    def parse(self, args: list[str]) -> argparse.Namespace:
        ns = self.parse_args(args)
        if ns.help:
            self.ctx.out(self.format_help())
            raise StatusError(0)
        return ns

    def error(self, message: str) -> NoReturn:
        """Translate argparse's complaints into docker's words."""
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
            self.requires(sum(1 for a in positionals
                              if a.nargs not in ("?", "*", argparse.REMAINDER)), at_least)
        if message.startswith("argument ") and "expected one argument" in message:
            flag = message.split()[1].rstrip(":").split("/")[-1]
            raise UsageError(f"flag needs an argument: {flag}", self.command, usage=usage)
        raise UsageError(message, self.command, usage=usage)

    def requires(self, count: int, at_least: bool = True) -> NoReturn:
        """``docker: 'docker rm' requires at least 1 argument`` (exit 1)."""
        what = f"at least {count}" if at_least else str(count)
        noun = "argument" if count == 1 else "arguments"
        raise UsageError(f"dockyard: 'dockyard {self.command}' requires {what} {noun}",
                         self.command, usage=self.usage or "", status=1,
                         hint="See" if at_least else "Run")  # docker's own inconsistency

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise StatusError(status, (message or "").rstrip())
