"""Management commands: ``container X``, ``image X``, ``system X`` map onto the flat ones."""

from __future__ import annotations

from dockyard.cli.context import Context, UsageError

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any

__all__ = ["container", "container_inspect", "image", "image_inspect", "system"]

CONTAINER = {name: ("run" if name in ("run", "create", "start", "attach", "exec") else
                    "files" if name in ("cp", "diff", "commit", "export") else
                    "containers", name) for name in (
    "run", "create", "start", "attach", "exec", "logs", "stop", "kill", "rm", "restart", "wait",
    "top", "stats", "cp", "diff", "commit", "export", "rename", "pause", "unpause",
    "update", "port")}
CONTAINER |= {"inspect": ("groups", "container_inspect"), "ls": ("containers", "ps"), "ps": ("containers", "ps"), "list": ("containers", "ps"),
              "remove": ("containers", "rm"), "prune": ("prune", "container_prune")}
IMAGE = {name: ("images", name) for name in (
    "pull", "push", "tag", "save", "load", "history")}
IMAGE |= {"ls": ("images", "images"), "list": ("images", "images"), "rm": ("images", "rmi"),
          "remove": ("images", "rmi"), "import": ("images", "import_"),
          "inspect": ("groups", "image_inspect"), "prune": ("prune", "image_prune")}
SYSTEM = {"df": ("system", "df"), "prune": ("prune", "system_prune"), "info": ("system", "info"),
          "events": ("system", "events")}


def _dispatch(ctx: Context, group: str, args: list[str],
              table: dict[str, tuple[str, str]]) -> int:
    from importlib import import_module

    if not args or args[0] in ("-h", "--help"):
        ctx.out(f"Usage:  dockyard {group} COMMAND\n\nCommands:\n"
                + "".join(f"  {name}\n" for name in sorted(table)))
        return 0
    if args[0] not in table:
        raise UsageError(f"unknown command \"{args[0]}\" for \"dockyard {group}\"", group)
    module, func = table[args[0]]
    fn: Any = getattr(import_module(f"dockyard.cli.{module}"), func)
    return int(fn(ctx, args[1:]) or 0)


def container(ctx: Context, args: list[str]) -> int:
    return _dispatch(ctx, "container", args, CONTAINER)


def image(ctx: Context, args: list[str]) -> int:
    return _dispatch(ctx, "image", args, IMAGE)


def system(ctx: Context, args: list[str]) -> int:
    return _dispatch(ctx, "system", args, SYSTEM)


def container_inspect(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.inspect import inspect
    return inspect(ctx, args, kind="container", command="container inspect")


def image_inspect(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.inspect import inspect
    return inspect(ctx, args, kind="image", command="image inspect")


