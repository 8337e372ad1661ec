"""``dockyard``: docker's command line over the Engine API.

Start-up is kept lean: this module imports only what every command needs; each command's
module is imported when that command runs, and ``dockyard daemon ...`` / ``dockyard registry
...`` hand their arguments to ``dockyard.daemon.main:main`` / ``dockyard.registry.cli:main``
without touching the client at all.

Exit codes are docker's: 0 success, 1 a failed command, 125 a daemon or usage error for
``run``/``create`` (and usage errors everywhere), 126 the command cannot be invoked, 127 the
command was not found, otherwise the container's own exit code.
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.context import Context, StatusError, UsageError
from dockyard.errors import DockyardError

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["COMMANDS", "main"]

# command -> (module under dockyard.cli, function)
COMMANDS: dict[str, tuple[str, str]] = {
    **{name: ("run", name) for name in ("run", "create", "start", "attach", "exec")},
    **{name: ("containers", name) for name in (
        "ps", "logs", "stop", "kill", "rm", "restart", "wait", "top", "stats", "rename", "pause",
        "unpause", "update", "port")},
    **{name: ("files", name) for name in ("cp", "diff", "commit", "export")},
    "inspect": ("inspect", "inspect"),
    **{name: ("images", name) for name in (
        "images", "rmi", "pull", "push", "tag", "save", "load", "import", "history", "search",
        "login", "logout")},
    **{name: ("system", name) for name in ("version", "info", "events")},
    "container": ("groups", "container"),
    "image": ("groups", "image"),
    "volume": ("objects", "volume"),
    "network": ("objects", "network"),
    "system": ("groups", "system"),
}

USAGE = """\
Usage:  dockyard [OPTIONS] COMMAND

A Docker-compatible container engine

Options:
  -H, --host string      Daemon socket to connect to (default: $DOCKYARD_HOST, $DOCKER_HOST,
                         unix:///var/run/dockyard.sock)
  -D, --debug            Enable debug mode
  -l, --log-level string Set the logging level (accepted and ignored)
      --config string    Location of client config files (default ~/.docker)
  -v, --version          Print version information and quit

Management Commands:
  container   Manage containers
  image       Manage images
  network     Manage networks
  system      Manage Dockyard
  volume      Manage volumes

Commands:
  attach  commit  cp  create  diff  events  exec  export  history  images  import  info
  inspect  kill  load  login  logout  logs  pause  port  ps  pull  push  rename  restart  rm
  rmi  run  save  search  start  stats  stop  tag  top  unpause  update  version  wait

  daemon      Run the Dockyard daemon (dockyard daemon --help)
  registry    Run the Dockyard registry (dockyard registry --help)

Run 'dockyard COMMAND --help' for more information on a command.
"""


def _split_globals(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Global options come before the command; parse them by hand (argparse costs start-up)."""
    opts: dict[str, Any] = {"host": None, "debug": False, "config": None, "version": False,
                            "help": False}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.partition("=")
        if name in ("-H", "--host", "-l", "--log-level", "--config", "--context", "-c",
                    "--tlscacert", "--tlscert", "--tlskey"):
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: {name}")
                value = argv[i]
            if name in ("-H", "--host"):
                opts["host"] = value
            elif name == "--config":
                opts["config"] = value
        elif arg.startswith("-H") and len(arg) > 2:
            opts["host"] = arg[2:]
        elif arg in ("-D", "--debug"):
            opts["debug"] = True
        elif arg in ("-v", "--version"):
            opts["version"] = True
        elif arg in ("-h", "--help"):
            opts["help"] = True
        elif arg in ("--tls", "--tlsverify"):
            pass
        else:
            raise UsageError(f"unknown flag: {arg}")
        i += 1
    return opts, argv[i:]


def import_module(name: str) -> Any:
    """``importlib.import_module`` without importing importlib (~0.4 ms)."""
    __import__(name)
    return sys.modules[name]


def run_command(ctx: Context, command: str, args: list[str]) -> int:
    """Run one command (``command`` is a key of COMMANDS) in ``ctx``."""
    module_name, func_name = COMMANDS[command]
    module = import_module(f"dockyard.cli.{module_name}")
    func = getattr(module, func_name if func_name != "import" else "import_")
    return int(func(ctx, args) or 0)


def main(argv: Sequence[str] | None = None, *, stdin: Any = None, stdout: Any = None,
         stderr: Any = None, env: dict[str, str] | None = None) -> int:
    """The console script. In-process callers (tests) pass argv, streams and env."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "daemon":
        return int(import_module("dockyard.daemon.main").main(args[1:]) or 0)
    if args and args[0] == "registry":
        return int(import_module("dockyard.registry.cli").main(args[1:]) or 0)
    ctx = Context(stdin=stdin or sys.stdin, stdout=stdout or sys.stdout,
                  stderr=stderr or sys.stderr, env=os.environ if env is None else env)
    try:
        opts, rest = _split_globals(args)
        ctx.host_flag = opts["host"]
        ctx.config_dir = opts["config"]
        ctx.debug = opts["debug"]
        if opts["version"]:
            from dockyard import __version__
            ctx.out(f"Dockyard version {__version__}\n")
            return 0
        if opts["help"] or not rest:
            ctx.out(USAGE)
            return 0
        command, cmd_args = rest[0], rest[1:]
        if command == "help":
            ctx.out(USAGE)
            return 0
        if command not in COMMANDS:
            ctx.err(f"dockyard: '{command}' is not a dockyard command.\n"
                    "See 'dockyard --help'\n")
            return 1
        return run_command(ctx, command, cmd_args)
    except UsageError as exc:
        ctx.err(exc.render())
        return exc.status
    except StatusError as exc:
        if exc.message:
            ctx.err(f"{exc.message}\n")
        return exc.status
    except DockyardError as exc:
        status = getattr(exc, "status", None)
        if status is not None:
            ctx.err(f"Error response from daemon: {exc.message}\n")
        else:
            ctx.err(f"{exc.message}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `dockyard ps | head -1`: the reader left. Point stdout at /dev/null so that the
        # interpreter's final flush does not complain, as the Python docs recommend.
        if argv is None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
