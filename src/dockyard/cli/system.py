"""version, info, events, system df/prune."""

from __future__ import annotations

import os
import sys

from dockyard.cli.context import Context, Parser, UsageError
from dockyard.cli.format import human_size, parse_filters, parse_time, render_list, tabulate
from dockyard.errors import DockyardError

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any


def version(ctx: Context, args: list[str]) -> int:
    from dockyard import __version__
    from dockyard.client.api import MAX_API_VERSION

    p = Parser(ctx, "version", "[OPTIONS]", "Show the Dockyard version information")
    p.add_argument("-f", "--format", help="Format output using a Go template")
    ns = p.parse(args)
    client_info = {"Platform": {"Name": "Dockyard"}, "Version": __version__,
                   "ApiVersion": MAX_API_VERSION, "DefaultAPIVersion": MAX_API_VERSION,
                   "GoVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
                   "Os": sys.platform, "Arch": _arch(), "Context": "default"}
    server: dict[str, Any] | None = None
    server_error = None
    try:
        server = ctx.client.server_version()
    except DockyardError as exc:
        server_error = exc
    if ns.format:
        from dockyard.cli.template import Template, TemplateError
        try:
            ctx.out(Template(ns.format).execute({"Client": client_info, "Server": server}) + "\n")
        except TemplateError as exc:
            raise UsageError(str(exc)) from None
    else:
        ctx.out("Client:\n"
                f" Version:           {__version__}\n"
                f" API version:       {ctx.client.version if server else MAX_API_VERSION}\n"
                f" Python version:    {sys.version.split()[0]}\n"
                f" OS/Arch:           {sys.platform}/{_arch()}\n"
                " Context:           default\n")
        if server:
            platform_name = (server.get("Platform") or {}).get("Name", "")
            ctx.out(f"\nServer:{' ' + platform_name if platform_name else ''}\n"
                    " Engine:\n"
                    f"  Version:          {server.get('Version', '')}\n"
                    f"  API version:      {server.get('ApiVersion', '')} (minimum version "
                    f"{server.get('MinAPIVersion', '')})\n"
                    f"  Go version:       {server.get('GoVersion', '')}\n"
                    f"  Git commit:       {server.get('GitCommit', '')}\n"
                    f"  Built:            {_go_ansic(server.get('BuildTime', ''))}\n"
                    f"  OS/Arch:          {server.get('Os', '')}/{server.get('Arch', '')}\n"
                    f"  Experimental:     {str(server.get('Experimental', False)).lower()}\n")
            for comp in server.get("Components") or []:
                if comp.get("Name") == "Engine":
                    continue
                ctx.out(f" {comp.get('Name')}:\n  Version:          {comp.get('Version')}\n")
                for key, value in (comp.get("Details") or {}).items():
                    ctx.out(f"  {key + ':':<18}{value}\n")
    if server_error is not None:
        raise server_error
    return 0


def _go_ansic(text: str) -> str:
    """An RFC 3339 build time as docker prints it (Go's ANSIC layout, local time)."""
    if not text:
        return ""
    try:
        from datetime import datetime

        from dockyard.cli.format import parse_rfc3339
        dt = datetime.fromtimestamp(parse_rfc3339(text)).astimezone()
    except (ValueError, OverflowError):
        return text
    return f"{dt:%a %b} {dt.day:>2} {dt:%H:%M:%S %Y}"


def _arch() -> str:
    machine = os.uname().machine  # platform.machine(), without importing platform (~6 ms)
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def info(ctx: Context, args: list[str]) -> int:
    from dockyard import __version__

    p = Parser(ctx, "info", "[OPTIONS]", "Display system-wide information")
    p.add_argument("-f", "--format", help="Format output using a Go template")
    ns = p.parse(args)
    data = ctx.client.info()
    if ns.format:
        from dockyard.cli.template import Template, TemplateError
        try:
            ctx.out(Template(ns.format).execute(data) + "\n")
        except TemplateError as exc:
            raise UsageError(str(exc)) from None
        return 0
    lines = [
        "Client:", f" Version:    {__version__}", " Context:    default",
        " Debug Mode: false", "",
        "Server:",
        f" Containers: {data.get('Containers', 0)}",
        f"  Running: {data.get('ContainersRunning', 0)}",
        f"  Paused: {data.get('ContainersPaused', 0)}",
        f"  Stopped: {data.get('ContainersStopped', 0)}",
        f" Images: {data.get('Images', 0)}",
        f" Server Version: {data.get('ServerVersion', '')}",
        f" Storage Driver: {data.get('Driver', '')}",
    ]
    for key, value in data.get("DriverStatus") or []:
        lines.append(f"  {key}: {value}")
    lines += [
        f" Logging Driver: {data.get('LoggingDriver', '')}",
        f" Cgroup Driver: {data.get('CgroupDriver', '')}",
        f" Cgroup Version: {data.get('CgroupVersion', '')}",
        " Plugins:",
        f"  Volume: {' '.join((data.get('Plugins') or {}).get('Volume') or [])}",
        f"  Network: {' '.join((data.get('Plugins') or {}).get('Network') or [])}",
        f"  Log: {' '.join((data.get('Plugins') or {}).get('Log') or [])}",
        f" Swarm: {(data.get('Swarm') or {}).get('LocalNodeState') or 'inactive'}",
        f" Runtimes: {' '.join(data.get('Runtimes') or {})}",
        f" Default Runtime: {data.get('DefaultRuntime', '')}",
        f" Init Binary: {data.get('InitBinary', '')}",
        f" containerd version: {(data.get('ContainerdCommit') or {}).get('ID', '')}",
        f" runc version: {(data.get('RuncCommit') or {}).get('ID', '')}",
        f" init version: {(data.get('InitCommit') or {}).get('ID', '')}",
        " Security Options:",
        *_security_options(data.get("SecurityOptions") or []),
        f" Kernel Version: {data.get('KernelVersion', '')}",
        f" Operating System: {data.get('OperatingSystem', '')}",
        f" OSType: {data.get('OSType', '')}",
        f" Architecture: {data.get('Architecture', '')}",
        f" CPUs: {data.get('NCPU', 0)}",
        f" Total Memory: {_gib(data.get('MemTotal') or 0)}",
        f" Name: {data.get('Name', '')}",
        f" ID: {data.get('ID', '')}",
        f" Docker Root Dir: {data.get('DockerRootDir', '')}",
        f" Debug Mode: {str(bool(data.get('Debug'))).lower()}",
        f" Experimental: {str(bool(data.get('ExperimentalBuild'))).lower()}",
        " Insecure Registries:",
        *[f"  {r}" for r in ((data.get("RegistryConfig") or {}).get("InsecureRegistryCIDRs")
                             or [])],
        f" Live Restore Enabled: {str(bool(data.get('LiveRestoreEnabled'))).lower()}",
    ]
    ctx.out("\n".join(lines) + "\n\n")
    for warning in data.get("Warnings") or []:
        ctx.err(f"{warning}\n")
    return 0


def _security_options(options: list[str]) -> list[str]:
    """``name=seccomp,profile=default`` -> ``  seccomp`` / ``   Profile: default``."""
    lines = []
    for opt in options:
        fields = dict(kv.partition("=")[::2] for kv in opt.split(","))
        lines.append(f"  {fields.pop('name', opt)}")
        lines += [f"   {key.capitalize()}: {value}" for key, value in fields.items()]
    return lines


def _gib(n: float) -> str:
    from dockyard.cli.format import human_binary_size
    return human_binary_size(n)


def events(ctx: Context, args: list[str], command: str = "events") -> int:
    p = Parser(ctx, command, "[OPTIONS]", "Get real time events from the server")
    p.add_argument("-f", "--filter", action="append", help="Filter output based on conditions")
    p.add_argument("--format", help="Format output using a Go template")
    p.add_argument("--since", help="Show all events created since timestamp")
    p.add_argument("--until", help="Stream events until this timestamp")
    ns = p.parse(args)
    params = {"since": parse_time(ns.since) if ns.since else None,
              "until": parse_time(ns.until) if ns.until else None,
              "filters": parse_filters(ns.filter) or None}
    template = None
    if ns.format and ns.format != "json":
        from dockyard.cli.template import Template, TemplateError
        try:
            template = Template(ns.format)
        except TemplateError as exc:
            raise UsageError(str(exc)) from None
    import json
    from datetime import datetime
    for ev in ctx.client.stream("GET", "/events", params):
        if ns.format == "json":
            ctx.out(json.dumps(ev, separators=(",", ":")) + "\n")
            continue
        if template is not None:
            ctx.out(template.execute(ev) + "\n")
            continue
        nano = ev.get("timeNano") or int(ev.get("time", 0)) * 10**9
        stamp = datetime.fromtimestamp(nano // 10**9).astimezone().strftime("%Y-%m-%dT%H:%M:%S")
        tz = datetime.fromtimestamp(nano // 10**9).astimezone().strftime("%z")
        tz = "Z" if tz in ("+0000", "") else tz[:3] + ":" + tz[3:]  # Go's RFC3339Nano
        actor = ev.get("Actor") or {}
        attrs = ", ".join(f"{k}={v}" for k, v in sorted((actor.get("Attributes") or {}).items()))
        ctx.out(f"{stamp}.{nano % 10**9:09d}{tz} {ev.get('Type', '')} {ev.get('Action', '')} "
                f"{actor.get('ID', '')}" + (f" ({attrs})" if attrs else "") + "\n")
    return 0


def _reclaim(total: int, reclaimable: int) -> str:
    """docker's RECLAIMABLE cell: ``1.984MB (100%)``, or just the size when nothing is used."""
    if total > 0:
        return f"{human_size(reclaimable, 4)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable, 4)


def df(ctx: Context, args: list[str]) -> int:
    """``system df``: docker's disk_usage formatter (sizes with go-units' 4-digit HumanSize)."""
    p = Parser(ctx, "system df", "[OPTIONS]", "Show docker disk usage")
    p.add_argument("-v", "--verbose", action="store_true", help="Show detailed information")
    p.add_argument("--format", help="Format output using a Go template")
    ns = p.parse(args)
    data = ctx.client.get("/system/df") or {}
    imgs = data.get("Images") or []
    conts = data.get("Containers") or []
    vols = data.get("Volumes") or []
    cache = data.get("BuildCache") or []
    if ns.verbose:
        _df_verbose(ctx, imgs, conts, vols, cache)
        return 0
    layers = int(data.get("LayersSize") or 0)
    used = sum(i["Size"] - i["SharedSize"] for i in imgs if i.get("Containers")
               and i.get("Size", -1) != -1 and i.get("SharedSize", -1) != -1)
    c_total = c_used = 0
    for c in conts:
        if c.get("SizeRw", -1) == -1 or c.get("SizeRootFs", -1) == -1:
            continue
        c_total += c.get("SizeRw") or 0
        if c.get("State") in ("running", "paused", "restarting"):
            c_used += c.get("SizeRw") or 0
    v_total = v_free = 0
    for v in vols:
        usage = v.get("UsageData") or {}
        if usage.get("Size", -1) != -1:
            v_total += usage.get("Size", 0)
            if usage.get("RefCount", 0) == 0:
                v_free += usage.get("Size", 0)
    b_total = sum(c.get("Size") or 0 for c in cache)
    b_free = sum(c.get("Size") or 0 for c in cache if not c.get("InUse") and not c.get("Shared"))
    rows = [
        {"Type": "Images", "TotalCount": str(len(imgs)),
         "Active": str(sum(1 for i in imgs if i.get("Containers"))),
         "Size": human_size(layers, 4), "Reclaimable": _reclaim(layers, layers - used)},
        {"Type": "Containers", "TotalCount": str(len(conts)),
         "Active": str(sum(1 for c in conts if c.get("State") == "running")),
         "Size": human_size(c_total, 4), "Reclaimable": _reclaim(c_total, c_total - c_used)},
        {"Type": "Local Volumes", "TotalCount": str(len(vols)),
         "Active": str(sum(1 for v in vols if (v.get("UsageData") or {}).get("RefCount", 0) > 0)),
         "Size": human_size(v_total, 4), "Reclaimable": _reclaim(v_total, v_free)},
        {"Type": "Build Cache", "TotalCount": str(len(cache)),
         "Active": str(sum(1 for c in cache if c.get("InUse"))),
         "Size": human_size(b_total, 4), "Reclaimable": _reclaim(b_total, b_free)},
    ]
    render_list(ctx, rows, ns.format,
                "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                 "Reclaimable": "RECLAIMABLE"})
    return 0


def _df_verbose(ctx: Context, imgs: list[Any], conts: list[Any], vols: list[Any],
                cache: list[Any]) -> None:
    from dockyard.cli.containers import container_row
    from dockyard.cli.images import image_rows

    ctx.out("Images space usage:\n\n")
    lines = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE",
              "CONTAINERS"]]
    for img, row in ((i, r) for i in imgs for r in image_rows([i])):
        shared = img.get("SharedSize", -1)
        lines.append([row["Repository"], row["Tag"], row["ID"], row["CreatedSince"], row["Size"],
                      human_size(shared, 4) if shared != -1 else "N/A",
                      human_size(img.get("Size", 0) - shared, 4) if shared != -1 else "N/A",
                      str(img.get("Containers", 0))])
    ctx.out(tabulate(lines))
    ctx.out("\nContainers space usage:\n\n")
    lines = [["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS",
              "NAMES"]]
    for c in conts:
        r = container_row(c)
        lines.append([r["ID"], r["Image"], r["Command"], r["LocalVolumes"],
                      human_size(c.get("SizeRw") or 0), r["RunningFor"], r["Status"], r["Names"]])
    ctx.out(tabulate(lines))
    ctx.out("\nLocal Volumes space usage:\n\n")
    lines = [["VOLUME NAME", "LINKS", "SIZE"]]
    for v in vols:
        usage = v.get("UsageData") or {}
        size = usage.get("Size", -1)
        lines.append([v.get("Name", ""), str(usage.get("RefCount", 0)),
                      human_size(size, 4) if size != -1 else "N/A"])
    ctx.out(tabulate(lines))
    total = sum(c.get("Size") or 0 for c in cache)
    ctx.out(f"\nBuild cache usage: {human_size(total, 4)}\n\n")
    ctx.out(tabulate([["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE",
                       "SHARED"]]))


__all__ = ["df", "events", "info", "version"]
