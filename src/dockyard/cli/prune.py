"""The prune commands: ``container|image|volume|network|system prune``."""

from __future__ import annotations

from dockyard.cli.context import Context, Parser
from dockyard.cli.format import human_size, parse_filters, print_deletions

# kind -> (reply key, heading)
__all__ = ["container_prune", "image_prune", "network_prune", "prune", "system_prune",
           "volume_prune"]

KINDS = {
    "containers": ("ContainersDeleted", "Deleted Containers"),
    "networks": ("NetworksDeleted", "Deleted Networks"),
    "volumes": ("VolumesDeleted", "Deleted Volumes"),
    "images": ("ImagesDeleted", "Deleted Images"),
}


def prune(ctx: Context, kind: str, filters: dict[str, list[str]]) -> int:
    """Prune one kind, print what went; returns the bytes reclaimed."""
    reply = ctx.client.post(f"/{kind}/prune", filters=filters or None) or {}
    key, title = KINDS[kind]
    print_deletions(ctx, title, reply.get(key))
    return int(reply.get("SpaceReclaimed") or 0)


def _parse(ctx: Context, command: str, description: str, args: list[str], *,
           all_help: str | None = None, volumes: bool = False) -> tuple[bool, bool,
                                                                      dict[str, list[str]]]:
    p = Parser(ctx, command, "[OPTIONS]", description)
    if all_help:
        p.add_argument("-a", "--all", action="store_true", help=all_help)
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", help="Provide filter values")
    if volumes:
        p.add_argument("--volumes", action="store_true", help="Prune anonymous volumes")
    ns = p.parse(args)
    return getattr(ns, "all", False), getattr(ns, "volumes", False), parse_filters(ns.filter)


def container_prune(ctx: Context, args: list[str]) -> int:
    _, _, filters = _parse(ctx, "container prune", "Remove all stopped containers", args)
    ctx.out(f"Total reclaimed space: {human_size(prune(ctx, 'containers', filters))}\n")
    return 0


def image_prune(ctx: Context, args: list[str]) -> int:
    everything, _, filters = _parse(ctx, "image prune", "Remove unused images", args,
                                    all_help="Remove all unused images, not just dangling ones")
    filters["dangling"] = ["false" if everything else "true"]
    ctx.out(f"Total reclaimed space: {human_size(prune(ctx, 'images', filters))}\n")
    return 0


def volume_prune(ctx: Context, args: list[str]) -> int:
    # -a is accepted; API 1.41 prunes unused named volumes anyway (it has no "all" filter)
    _, _, filters = _parse(ctx, "volume prune", "Remove unused local volumes", args,
                           all_help="Remove all unused volumes, not just anonymous ones")
    ctx.out(f"Total reclaimed space: {human_size(prune(ctx, 'volumes', filters))}\n")
    return 0


def network_prune(ctx: Context, args: list[str]) -> int:
    _, _, filters = _parse(ctx, "network prune", "Remove all unused networks", args)
    prune(ctx, "networks", filters)
    return 0


def system_prune(ctx: Context, args: list[str]) -> int:
    everything, volumes, filters = _parse(ctx, "system prune", "Remove unused data", args,
                                          all_help="Remove all unused images", volumes=True)
    total = prune(ctx, "containers", filters)
    prune(ctx, "networks", filters)
    if volumes:
        total += prune(ctx, "volumes", filters)
    total += prune(ctx, "images", {**filters, "dangling": ["false" if everything else "true"]})
    ctx.out(f"Total reclaimed space: {human_size(total)}\n")
    return 0
