"""What every command gets: streams, environment, a lazily connected client, a flag parser.

``Context`` is built once in :func:`dockyard.cli.main.main` and passed down; commands never
read ``sys.*`` or ``os.environ`` themselves, which is what makes in-process tests possible.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from argparse import Namespace
    from collections.abc import Mapping
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

    def fork(self) -> Context:
        """A copy with a client of its own (a second connection): for another thread."""
        other = object.__new__(Context)
        other.__dict__.update(self.__dict__)
        other._client = self.client.clone()
        return other

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


class Parser:
    """A command's flags, declared with argparse's ``add_argument`` and parsed with docker's
    manners: usage errors exit 125, help goes to our stdout.

    A well-formed command line is parsed by :func:`dockyard.cli.flags.fast_parse` (argparse's
    results, without importing argparse and with it ``re`` and ``enum``: ~5 ms of start-up);
    anything else — help, a usage error, a construct the fast path does not take — is handed
    to argparse itself (:mod:`dockyard.cli.argparser`), so messages stay argparse's.
    """

    def __init__(self, ctx: Context, command: str, usage: str, description: str = "", *,
                 short_help: bool = True) -> None:
        self.ctx = ctx
        self.command = command
        self.usage = f"dockyard {command} {usage}"
        self.description = description
        self.specs: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        flags = ("-h", "--help") if short_help else ("--help",)  # run: -h is --hostname
        self.add_argument(*flags, action="store_true", help="Print usage")

    def add_argument(self, *names: str, **kwargs: Any) -> None:
        self.specs.append((names, kwargs))

    def parse(self, args: list[str]) -> Namespace:
        from dockyard.cli.flags import fast_parse

        ns = fast_parse(self.specs, args)
        if ns is not None and not ns.help:  # type: ignore[attr-defined]
            return ns  # type: ignore[return-value]  # the same attributes
        from dockyard.cli.argparser import ArgParser

        parser = ArgParser(self)
        parsed: Namespace = parser.parse_args(args)
        if getattr(parsed, "help", False):
            self.ctx.out(parser.format_help())
            raise StatusError(0)
        return parsed

    def requires(self, count: int, at_least: bool = True) -> NoReturn:
        """``docker: 'docker rm' requires at least 1 argument`` (exit 1)."""
        what = f"at least {count}" if at_least else str(count)
        noun = "argument" if count == 1 else "arguments"
        raise UsageError(f"dockyard: 'dockyard {self.command}' requires {what} {noun}",
                         self.command, usage=self.usage, status=1,
                         hint="See" if at_least else "Run")  # docker's own inconsistency
