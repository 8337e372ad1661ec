"""Management commands: ``container X``, ``image X``, ``system X`` map onto the flat ones."""

from __future__ import annotations

from dockyard.cli.context import Context, UsageError

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any

CONTAINER = {name: ("run" if name in ("run", "create", "start", "attach", "exec")
                    else "containers", name) for name in (
    "run", "create", "start", "attach", "exec", "logs", "stop", "kill", "rm", "restart", "wait",
    "inspect", "top", "stats", "cp", "diff", "commit", "export", "rename", "pause", "unpause",
    "update", "port")}
CONTAINER |= {"ls": ("containers", "ps"), "ps": ("containers", "ps"), "list": ("containers", "ps"),
              "remove": ("containers", "rm"), "prune": ("groups", "container_prune")}
IMAGE = {name: ("images", name) for name in (
    "pull", "push", "tag", "save", "load", "history", "prune")}
IMAGE |= {"ls": ("images", "images"), "list": ("images", "images"), "rm": ("images", "rmi"),
          "remove": ("images", "rmi"), "import": ("images", "import_"),
          "inspect": ("groups", "image_inspect")}
SYSTEM = {"df": ("system", "df"), "prune": ("system", "prune"), "info": ("system", "info"),
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


def image_inspect(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.containers import inspect
    return inspect(ctx, args, kind="image", command="image inspect")


def container_prune(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.context import Parser
    from dockyard.cli.format import human_size, parse_filters

    p = Parser(ctx, "container prune", "[OPTIONS]", "Remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", help="Provide filter values")
    ns = p.parse(args)
    reply = ctx.client.post("/containers/prune", filters=parse_filters(ns.filter) or None) or {}
    if reply.get("ContainersDeleted"):
        ctx.out("Deleted Containers:\n" + "".join(f"{c}\n" for c in reply["ContainersDeleted"])
                + "\n")
    ctx.out(f"Total reclaimed space: {human_size(reply.get('SpaceReclaimed') or 0)}\n")
    return 0
