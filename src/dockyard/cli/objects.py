"""``volume`` and ``network`` subcommands."""

from __future__ import annotations

from dockyard.cli import prune
from dockyard.cli.containers import for_each
from dockyard.cli.context import Context, Parser, UsageError
from dockyard.cli.format import go_time_string, parse_filters, render_list, short_id
from dockyard.client.wire import quote

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any


def _sub(ctx: Context, group: str, args: list[str], table: dict[str, Any]) -> int:
    if not args or args[0] in ("-h", "--help"):
        ctx.out(f"Usage:  dockyard {group} COMMAND\n\nCommands:\n"
                + "".join(f"  {name}\n" for name in sorted(table)))
        return 0
    name = args[0]
    aliases = {"list": "ls", "remove": "rm"}
    name = aliases.get(name, name)
    if name not in table:
        raise UsageError(f"unknown command \"{args[0]}\" for \"dockyard {group}\"", group)
    return int(table[name](ctx, args[1:]) or 0)


def _kv(values: list[str] | None) -> dict[str, str]:
    out = {}
    for value in values or []:
        key, _, val = value.partition("=")
        out[key] = val
    return out


# -- volumes ----------------------------------------------------------------------------------

def volume_create(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "volume create", "[OPTIONS] [VOLUME]", "Create a volume")
    p.add_argument("-d", "--driver", default="local", help="Specify volume driver name")
    p.add_argument("--label", action="append", help="Set metadata for a volume")
    p.add_argument("-o", "--opt", action="append", help="Set driver specific options")
    p.add_argument("--name", dest="name_flag", help="Specify volume name")
    p.add_argument("name", nargs="?")
    ns = p.parse(args)
    if ns.name and ns.name_flag and ns.name != ns.name_flag:
        raise UsageError("conflicting options: either specify --name or provide positional "
                         "arg, not both", "volume create")
    reply = ctx.client.post("/volumes/create", {
        "Name": ns.name or ns.name_flag or "", "Driver": ns.driver,
        "DriverOpts": _kv(ns.opt), "Labels": _kv(ns.label)})
    ctx.out(f"{reply['Name']}\n")
    return 0


def volume_ls(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "volume ls", "[OPTIONS]", "List volumes")
    p.add_argument("-f", "--filter", action="append", help="Provide filter values")
    p.add_argument("--format", help="Format output using a Go template")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display volume names")
    ns = p.parse(args)
    reply = ctx.client.get("/volumes", filters=parse_filters(ns.filter) or None) or {}
    vols = sorted(reply.get("Volumes") or [], key=lambda v: v.get("Name", ""))
    rows = [{"Driver": v.get("Driver", ""), "Name": v.get("Name", ""),
             "Mountpoint": v.get("Mountpoint", ""), "Scope": v.get("Scope", ""),
             "Labels": ",".join(f"{k}={val}" for k, val in sorted((v.get("Labels") or {}).items())),
             "Size": "N/A", "Links": "N/A", "CreatedAt": v.get("CreatedAt", "")} for v in vols]
    fmt = "{{.Name}}" if ns.quiet else ns.format
    render_list(ctx, rows, fmt, "table {{.Driver}}\t{{.Name}}",
                {"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT",
                 "Scope": "SCOPE", "Labels": "LABELS", "Size": "SIZE", "Links": "LINKS",
                 "CreatedAt": "CREATED"}, vols)
    return 0


def volume_inspect(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.inspect import inspect
    return inspect(ctx, args, kind="volume", command="volume inspect")


def volume_rm(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "volume rm", "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes")
    p.add_argument("-f", "--force", action="store_true", help="Force the removal")
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    ns = p.parse(args)
    return for_each(ctx, ns.volumes, lambda n: ctx.client.delete(
        f"/volumes/{quote(n)}", force=ns.force or None))


VOLUME = {"create": volume_create, "ls": volume_ls, "inspect": volume_inspect, "rm": volume_rm,
          "prune": prune.volume_prune}


def volume(ctx: Context, args: list[str]) -> int:
    return _sub(ctx, "volume", args, VOLUME)


# -- networks ---------------------------------------------------------------------------------

def network_create(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "network create", "[OPTIONS] NETWORK", "Create a network")
    p.add_argument("-d", "--driver", default="bridge", help="Driver to manage the Network")
    p.add_argument("--subnet", action="append", default=[], help="Subnet in CIDR format")
    p.add_argument("--gateway", action="append", default=[], help="IPv4 or IPv6 Gateway")
    p.add_argument("--ip-range", action="append", default=[], help="Allocate from a sub-range")
    p.add_argument("--internal", action="store_true", help="Restrict external access")
    p.add_argument("--attachable", action="store_true", help="Enable manual container attachment")
    p.add_argument("--ipv6", action="store_true", help="Enable IPv6 networking")
    p.add_argument("--label", action="append", help="Set metadata on a network")
    p.add_argument("-o", "--opt", action="append", help="Set driver specific options")
    p.add_argument("name")
    ns = p.parse(args)
    configs = []
    for i, subnet in enumerate(ns.subnet):
        cfg = {"Subnet": subnet}
        if i < len(ns.gateway):
            cfg["Gateway"] = ns.gateway[i]
        if i < len(ns.ip_range):
            cfg["IPRange"] = ns.ip_range[i]
        configs.append(cfg)
    body = {"Name": ns.name, "CheckDuplicate": True, "Driver": ns.driver,
            "Internal": ns.internal, "Attachable": ns.attachable, "EnableIPv6": ns.ipv6,
            "IPAM": {"Driver": "default", "Config": configs, "Options": {}},
            "Options": _kv(ns.opt), "Labels": _kv(ns.label)}
    reply = ctx.client.post("/networks/create", body)
    if reply.get("Warning"):
        ctx.err(f"WARNING: {reply['Warning']}\n")
    ctx.out(f"{reply['Id']}\n")
    return 0


def network_ls(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "network ls", "[OPTIONS]", "List networks")
    p.add_argument("-f", "--filter", action="append", help="Provide filter values")
    p.add_argument("--format", help="Format output using a Go template")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate the output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display network IDs")
    ns = p.parse(args)
    nets = ctx.client.get("/networks", filters=parse_filters(ns.filter) or None) or []
    nets.sort(key=lambda n: n.get("Name", ""))
    rows = [{"ID": n["Id"] if ns.no_trunc else short_id(n["Id"]), "Name": n.get("Name", ""),
             "Driver": n.get("Driver", ""), "Scope": n.get("Scope", ""),
             "IPv4": str(bool(n.get("EnableIPv4"))).lower(),
             "IPv6": str(bool(n.get("EnableIPv6"))).lower(),
             "Internal": str(bool(n.get("Internal"))).lower(),
             "Labels": ",".join(f"{k}={v}" for k, v in sorted((n.get("Labels") or {}).items())),
             "CreatedAt": go_time_string(n.get("Created", ""))} for n in nets]
    fmt = "{{.ID}}" if ns.quiet else ns.format
    render_list(ctx, rows, fmt, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
                {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                 "IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
                 "CreatedAt": "CREATED AT"}, nets)
    return 0


def network_inspect(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.inspect import inspect
    return inspect(ctx, args, kind="network", command="network inspect")


def network_rm(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "network rm", "NETWORK [NETWORK...]", "Remove one or more networks")
    p.add_argument("-f", "--force", action="store_true", help="Do not error if missing")
    p.add_argument("networks", nargs="+", metavar="NETWORK")
    ns = p.parse(args)
    return for_each(ctx, ns.networks, lambda n: ctx.client.delete(f"/networks/{quote(n)}"))


def network_connect(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "network connect", "[OPTIONS] NETWORK CONTAINER",
               "Connect a container to a network")
    p.add_argument("--alias", action="append", default=[], help="Add network-scoped alias")
    p.add_argument("--ip", help="IPv4 address")
    p.add_argument("network")
    p.add_argument("container")
    ns = p.parse(args)
    endpoint: dict[str, Any] = {"Aliases": ns.alias or None}
    if ns.ip:
        endpoint["IPAMConfig"] = {"IPv4Address": ns.ip}
    ctx.client.post(f"/networks/{quote(ns.network)}/connect",
                    {"Container": ns.container, "EndpointConfig": endpoint})
    return 0


def network_disconnect(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "network disconnect", "[OPTIONS] NETWORK CONTAINER",
               "Disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true", help="Force the disconnection")
    p.add_argument("network")
    p.add_argument("container")
    ns = p.parse(args)
    ctx.client.post(f"/networks/{quote(ns.network)}/disconnect",
                    {"Container": ns.container, "Force": ns.force})
    return 0


NETWORK = {"create": network_create, "ls": network_ls, "inspect": network_inspect,
           "rm": network_rm, "connect": network_connect, "disconnect": network_disconnect,
           "prune": prune.network_prune}


def network(ctx: Context, args: list[str]) -> int:
    return _sub(ctx, "network", args, NETWORK)


__all__ = ["network", "volume"]

