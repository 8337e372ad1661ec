"""``inspect`` in all its forms: docker's lookup order, its JSON layout and its errors."""

from __future__ import annotations

import json

from dockyard.cli.context import Context, Parser, UsageError
from dockyard.client.wire import quote
from dockyard.errors import DockyardError, NotFound

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any

__all__ = ["inspect", "inspect_many", "inspect_object", "print_inspect"]


_INSPECT_PATHS = {
    "container": "/containers/{}/json", "image": "/images/{}/json",
    "volume": "/volumes/{}", "network": "/networks/{}", "exec": "/exec/{}/json",
}


def inspect_object(ctx: Context, name: str, kind: str | None, size: bool = False) -> Any:
    if kind:  # a typed inspect shows the daemon's own error, as docker does
        params = {"size": True} if size and kind == "container" else {}
        return ctx.client.get(_INSPECT_PATHS[kind].format(quote(name, safe="/:@")), **params)
    for k in ("container", "image", "volume", "network"):
        params = {"size": True} if size and k == "container" else {}
        try:
            return ctx.client.get(_INSPECT_PATHS[k].format(quote(name, safe="/:@")), **params)
        except NotFound:
            continue
    raise DockyardError(f"Error: No such object: {name}")


def print_inspect(ctx: Context, objects: list[Any], fmt: str | None) -> None:
    if fmt:
        from dockyard.cli.template import Template, TemplateError

        try:
            template = Template(fmt.replace("\\n", "\n").replace("\\t", "\t"))
            for obj in objects:
                ctx.out(template.execute(obj) + "\n")
        except TemplateError as exc:
            raise UsageError(str(exc)) from None
    else:
        ctx.out(json.dumps(objects, indent=4, ensure_ascii=False) + "\n")


def inspect_many(ctx: Context, names: list[str], kind: str | None, fmt: str | None,
                 size: bool = False) -> int:
    objects = []
    failed = False
    for name in names:
        try:
            objects.append(inspect_object(ctx, name, kind, size))
        except DockyardError as exc:
            prefix = "Error response from daemon: " if hasattr(exc, "status") else ""
            ctx.err(f"{prefix}{exc.message}\n")
            failed = True
    if objects or not fmt:
        print_inspect(ctx, objects, fmt)
    else:
        ctx.out("\n")  # docker's template writer still ends its (empty) output
    return 1 if failed else 0


def inspect(ctx: Context, args: list[str], kind: str | None = None,
            command: str = "inspect") -> int:
    p = Parser(ctx, command, "[OPTIONS] NAME|ID [NAME|ID...]",
               "Return low-level information on Docker objects")
    p.add_argument("-f", "--format", help="Format output using a Go template")
    if kind is None:
        p.add_argument("--type", choices=sorted(_INSPECT_PATHS), help="Only inspect this type")
    if kind in (None, "container"):
        p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    p.add_argument("names", nargs="+", metavar="NAME")
    ns = p.parse(args)
    return inspect_many(ctx, ns.names, kind or ns.type, ns.format, getattr(ns, "size", False))


