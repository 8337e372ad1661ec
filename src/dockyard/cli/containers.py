"""Container commands other than the attach family (run.py), files (files.py) and inspect
(inspect.py): ps, logs, stop, kill, rm, restart, wait, top, stats, rename, pause, unpause,
update, port."""

from __future__ import annotations

import time

from dockyard.cli.context import Context, Parser, StatusError
from dockyard.cli.format import (
    ago,
    format_local_time,
    human_binary_size,
    human_size,
    parse_filters,
    parse_time,
    render_list,
    short_id,
    tabulate,
    truncate,
)
from dockyard.client.wire import quote
from dockyard.errors import DockyardError

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

__all__ = ["container_row", "copy_output", "for_each", "format_ports", "kill", "logs", "pause",
           "port", "ps", "rename", "restart", "rm", "stats", "stats_row", "stop", "top",
           "unpause", "update", "wait"]

PS_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
    "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
    "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES",
}
PS_DEFAULT = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
              "{{.Ports}}\t{{.Names}}")


def for_each(ctx: Context, names: Iterable[str], action: Callable[[str], Any],
             echo: bool = True) -> int:
    """Apply ``action`` to each name; print the name on success, the daemon's error else."""
    failed = False
    for name in names:
        try:
            action(name)
        except DockyardError as exc:
            prefix = "Error response from daemon: " if hasattr(exc, "status") else ""
            ctx.err(f"{prefix}{exc.message}\n")
            failed = True
            continue
        if echo:
            ctx.out(f"{name}\n")
    return 1 if failed else 0


def for_each_parallel(ctx: Context, names: Iterable[str],
                      action: Callable[[Context, str], Any], echo: bool = True,
                      limit: int = 50) -> int:
    """:func:`for_each`, with the actions run at once (``limit`` at a time, each thread on its
    own connection) as the docker CLI's parallelOperation does for rm, stop, kill, pause and
    unpause; results are reported in the order given, as they come in."""
    import threading

    names = list(names)
    results: list[BaseException | None] = [None] * len(names)
    done = [threading.Event() for _ in names]
    lock = threading.Lock()
    queue = iter(range(len(names)))

    def worker(sub: Context) -> None:
        try:
            while True:
                with lock:
                    i = next(queue, None)
                if i is None:
                    return
                try:
                    action(sub, names[i])
                except BaseException as exc:  # reported (or re-raised) by the main thread
                    results[i] = exc
                finally:
                    done[i].set()
        finally:
            sub.close()

    for _ in range(min(limit, len(names))):
        threading.Thread(target=worker, args=(ctx.fork(),), daemon=True).start()

    def report(i: int) -> None:
        done[i].wait()
        exc = results[i]
        if exc is not None:
            raise exc

    order = iter(range(len(names)))
    return for_each(ctx, names, lambda _name: report(next(order)), echo)


def format_ports(ports: list[dict[str, Any]] | None) -> str:
    out = []
    for p in sorted(ports or [], key=lambda p: (p.get("PrivatePort", 0), p.get("IP", ""))):
        kind = p.get("Type", "tcp")
        if p.get("PublicPort"):
            ip = p.get("IP") or "0.0.0.0"
            ip = f"[{ip}]" if ":" in ip else ip
            out.append(f"{ip}:{p['PublicPort']}->{p['PrivatePort']}/{kind}")
        else:
            out.append(f"{p.get('PrivatePort')}/{kind}")
    seen: list[str] = []
    for item in out:
        if item not in seen:
            seen.append(item)
    return ", ".join(seen)


def container_row(c: dict[str, Any], *, trunc: bool = True,
                  now: float | None = None) -> dict[str, Any]:
    """The fields ``ps --format`` templates see, formatted like docker's."""
    command = c.get("Command") or ""
    image = c.get("Image") or ""
    if trunc:
        command = truncate(command, 20)
        if image.startswith("sha256:"):
            image = short_id(image)
    names = [n.lstrip("/") for n in c.get("Names") or []]
    if trunc:
        names = [n for n in names if "/" not in n][:1] or names[:1]
    labels = c.get("Labels") or {}
    size = human_size(c.get("SizeRw") or 0)
    if (c.get("SizeRootFs") or 0) > 0:
        size = f"{size} (virtual {human_size(c['SizeRootFs'])})"
    mounts = []
    for m in c.get("Mounts") or []:
        name = m.get("Name") or m.get("Source") or ""
        mounts.append(truncate(name, 15) if trunc else name)
    networks = sorted((c.get("NetworkSettings") or {}).get("Networks") or {})
    created = float(c.get("Created") or 0)
    return {
        "ID": short_id(c["Id"]) if trunc else c["Id"],
        "Image": image,
        "Command": _json_text(command),
        "CreatedAt": format_local_time(created),
        "RunningFor": ago(created, now),
        "Ports": format_ports(c.get("Ports")),
        "State": c.get("State", ""),
        "Status": c.get("Status", ""),
        "Size": size,
        "Names": ",".join(names),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Mounts": ",".join(mounts),
        "Networks": ",".join(networks),
        "Platform": c.get("ImageManifestDescriptor", {}).get("platform") if isinstance(
            c.get("ImageManifestDescriptor"), dict) else None,
        "LocalVolumes": str(sum(1 for m in c.get("Mounts") or [] if m.get("Type") == "volume")),
    }


def ps(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "ps", "[OPTIONS]", "List containers")
    p.add_argument("-a", "--all", action="store_true", help="Show all containers")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("-n", "--last", type=int, default=-1, help="Show n last created containers")
    p.add_argument("-l", "--latest", action="store_true", help="Show the latest created container")
    p.add_argument("-f", "--filter", action="append", help="Filter output based on conditions")
    p.add_argument("--format", help="Format output using a Go template, 'table' or 'json'")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    ns = p.parse(args)
    limit = 1 if ns.latest else ns.last
    containers = ctx.client.containers(all=ns.all or limit > 0, limit=limit, size=ns.size,
                                       filters=parse_filters(ns.filter))
    rows = [container_row(c, trunc=not ns.no_trunc) for c in containers]
    fmt = ns.format
    if ns.quiet:
        fmt = "{{.ID}}"
    elif not fmt or fmt == "table":
        fmt = PS_DEFAULT + ("\t{{.Size}}" if ns.size else "")
    render_list(ctx, rows, fmt, PS_DEFAULT, PS_HEADERS, containers)
    return 0


def logs(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "logs", "[OPTIONS] CONTAINER", "Fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("-n", "--tail", default="all", help="Number of lines to show from the end")
    p.add_argument("--since", help="Show logs since timestamp or relative (e.g. 42m)")
    p.add_argument("--until", help="Show logs before a timestamp or relative (e.g. 42m)")
    p.add_argument("--details", action="store_true", help="Show extra details")
    p.add_argument("container")
    ns = p.parse(args)
    info = ctx.client.inspect_container(ns.container)
    params = {"stdout": True, "stderr": True, "follow": ns.follow or None,
              "timestamps": ns.timestamps or None, "tail": ns.tail,
              "since": parse_time(ns.since) if ns.since else None,
              "until": parse_time(ns.until) if ns.until else None,
              "details": ns.details or None}
    resp = ctx.client.logs(info["Id"], **params)
    copy_output(ctx, resp.read1, bool((info.get("Config") or {}).get("Tty")))
    return 0


def copy_output(ctx: Context, read: Callable[[int], bytes], tty: bool) -> None:
    """Copy a log/attach stream to our stdout/stderr (demultiplexed unless it is a tty)."""
    from dockyard.client.streams import STDERR, SYSERR, demux, raw

    for stream, data in (raw(read) if tty else demux(read)):
        if stream in (STDERR, SYSERR):
            ctx.err_bytes(data)
        else:
            ctx.out_bytes(data)


def _simple(command: str, usage: str, description: str,
            act: Callable[[Context, Any, str], Any],
            extra: Callable[[Parser], None] | None = None, echo: bool = True,
            parallel: bool = False) -> Callable[[Context, list[str]], int]:
    def run(ctx: Context, args: list[str]) -> int:
        p = Parser(ctx, command, usage, description)
        if extra:
            extra(p)
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        ns = p.parse(args)
        if parallel and len(ns.containers) > 1:
            return for_each_parallel(ctx, ns.containers, lambda sub, name: act(sub, ns, name),
                                     echo)
        return for_each(ctx, ns.containers, lambda name: act(ctx, ns, name), echo)
    run.__name__ = command
    return run


def _time_flag(p: Parser) -> None:
    p.add_argument("-t", "--time", type=int, default=None,
                   help="Seconds to wait before killing the container")
    p.add_argument("-s", "--signal", help="Signal to send to the container")


stop = _simple("stop", "[OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
               lambda ctx, ns, n: ctx.client.post(f"/containers/{quote(n)}/stop", t=ns.time,
                                                  signal=ns.signal), _time_flag,
               parallel=True)
restart = _simple("restart", "[OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers",
                  lambda ctx, ns, n: ctx.client.post(f"/containers/{quote(n)}/restart", t=ns.time,
                                                     signal=ns.signal), _time_flag)
def _signal_flag(p: Parser) -> None:
    p.add_argument("-s", "--signal", help="Signal to send to the container")


kill = _simple("kill", "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers",
               lambda ctx, ns, n: ctx.client.kill(n, ns.signal),
               _signal_flag, parallel=True)
pause = _simple("pause", "CONTAINER [CONTAINER...]", "Pause all processes within containers",
                lambda ctx, ns, n: ctx.client.post(f"/containers/{quote(n)}/pause"),
                parallel=True)
unpause = _simple("unpause", "CONTAINER [CONTAINER...]", "Unpause all processes within containers",
                  lambda ctx, ns, n: ctx.client.post(f"/containers/{quote(n)}/unpause"),
                  parallel=True)


def _rm_flags(p: Parser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a running container")
    p.add_argument("-v", "--volumes", action="store_true", help="Remove anonymous volumes")
    p.add_argument("-l", "--link", action="store_true", help="Remove the specified link")


rm = _simple("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
             lambda ctx, ns, n: ctx.client.remove(n, force=ns.force, volumes=ns.volumes,
                                                  link=ns.link), _rm_flags, parallel=True)


def wait(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "wait", "CONTAINER [CONTAINER...]", "Block until containers stop")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    ns = p.parse(args)

    def act(name: str) -> None:
        reply = ctx.client.wait(name)
        ctx.out(f"{reply.get('StatusCode', 0)}\n")
    return for_each(ctx, ns.containers, act, echo=False)


# -- top, stats -------------------------------------------------------------------------------

def top(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "top", "CONTAINER [ps OPTIONS]", "Display the running processes of a container")
    p.add_argument("container")
    p.add_argument("ps_args", nargs="...")  # REMAINDER: ps's own flags pass through
    ns = p.parse(args)
    reply = ctx.client.get(f"/containers/{quote(ns.container)}/top",
                           ps_args=" ".join(ns.ps_args) or None)
    lines = [reply.get("Titles") or []] + (reply.get("Processes") or [])
    ctx.out(tabulate(lines, min_width=20))
    return 0


STATS_HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME",
                 "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                 "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
STATS_DEFAULT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                 "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")


def stats_row(name: str, s: dict[str, Any]) -> dict[str, str]:
    """One ``docker stats`` line from a stats object (docker's cgroup v1/v2 arithmetic)."""
    cpu = s.get("cpu_stats") or {}
    pre = s.get("precpu_stats") or {}
    cpu_delta = ((cpu.get("cpu_usage") or {}).get("total_usage", 0)
                 - (pre.get("cpu_usage") or {}).get("total_usage", 0))
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    ncpu = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_perc = cpu_delta / sys_delta * ncpu * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = s.get("memory_stats") or {}
    mstats = mem.get("stats") or {}
    usage = mem.get("usage", 0)
    cache = mstats.get("total_inactive_file", mstats.get("inactive_file", 0))
    usage = max(0, usage - cache) if usage >= cache else usage
    limit = mem.get("limit", 0)
    mem_perc = usage / limit * 100.0 if limit else 0.0
    rx = sum(n.get("rx_bytes", 0) for n in (s.get("networks") or {}).values())
    tx = sum(n.get("tx_bytes", 0) for n in (s.get("networks") or {}).values())
    blk_r = blk_w = 0
    for entry in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = (entry.get("op") or "").lower()
        if op == "read":
            blk_r += entry.get("value", 0)
        elif op == "write":
            blk_w += entry.get("value", 0)
    ident = s.get("id", "")
    return {
        "Container": name, "ID": ident[:12], "Name": (s.get("name") or name).lstrip("/"),
        "CPUPerc": f"{cpu_perc:.2f}%",
        "MemUsage": f"{human_binary_size(usage)} / {human_binary_size(limit)}",
        "MemPerc": f"{mem_perc:.2f}%",
        "NetIO": f"{human_size(rx)} / {human_size(tx)}",
        "BlockIO": f"{human_size(blk_r)} / {human_size(blk_w)}",
        "PIDs": str((s.get("pids_stats") or {}).get("current", 0)),
    }


def stats(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "stats", "[OPTIONS] [CONTAINER...]", "Display container resource usage")
    p.add_argument("-a", "--all", action="store_true", help="Show all containers")
    p.add_argument("--no-stream", action="store_true", help="Disable streaming stats")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate output")
    p.add_argument("--format", help="Format output using a Go template")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")
    ns = p.parse(args)
    names = ns.containers or [c["Id"] for c in ctx.client.containers(all=ns.all)]
    latest: dict[str, dict[str, str]] = {}
    errors_seen: list[DockyardError] = []

    def follow(name: str) -> None:
        # one connection per container, like docker: the daemon samples and sends each second
        client = ctx.client.clone()
        try:
            stream = client.stream("GET", f"/containers/{quote(name)}/stats",
                                   {"stream": not ns.no_stream})
            for sample in stream:
                latest[name] = stats_row(name, sample)
                if ns.no_stream:
                    break
        except DockyardError as exc:
            errors_seen.append(exc)
        finally:
            client.close()

    import threading
    threads = [threading.Thread(target=follow, args=(n,), daemon=True) for n in names]
    for t in threads:
        t.start()
    if ns.no_stream:
        for t in threads:
            t.join()
        if errors_seen and ns.containers:
            raise errors_seen[0]
        render_list(ctx, [latest[n] for n in names if n in latest], ns.format, STATS_DEFAULT,
                    STATS_HEADERS)
        return 0
    while any(t.is_alive() for t in threads) or not threads:
        time.sleep(1)
        ctx.out("\x1b[2J\x1b[H")  # clear and home, as docker redraws
        render_list(ctx, [latest[n] for n in names if n in latest], ns.format, STATS_DEFAULT,
                    STATS_HEADERS)
    return 0


def rename(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "rename", "CONTAINER NEW_NAME", "Rename a container")
    p.add_argument("container")
    p.add_argument("new_name")
    ns = p.parse(args)
    try:
        ctx.client.post(f"/containers/{quote(ns.container)}/rename", name=ns.new_name)
    except DockyardError as exc:
        prefix = "Error response from daemon: " if hasattr(exc, "status") else ""
        raise StatusError(1, f"{prefix}{exc.message}\n"
                             f"Error: failed to rename container named {ns.container}") from None
    return 0


def update(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.options import parse_bytes, parse_cpus

    p = Parser(ctx, "update", "[OPTIONS] CONTAINER [CONTAINER...]",
               "Update configuration of one or more containers")
    p.add_argument("--cpus", help="Number of CPUs")
    p.add_argument("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
    p.add_argument("--cpuset-cpus", help="CPUs in which to allow execution")
    p.add_argument("-m", "--memory", help="Memory limit")
    p.add_argument("--memory-swap", help="Swap limit equal to memory plus swap")
    p.add_argument("--memory-reservation", help="Memory soft limit")
    p.add_argument("--pids-limit", type=int, help="Tune container pids limit")
    p.add_argument("--restart", help="Restart policy to apply when a container exits")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    ns = p.parse(args)
    body: dict[str, Any] = {}
    if ns.cpus:
        body["NanoCpus"] = parse_cpus(ns.cpus)
    if ns.cpu_shares is not None:
        body["CpuShares"] = ns.cpu_shares
    if ns.cpuset_cpus:
        body["CpusetCpus"] = ns.cpuset_cpus
    if ns.memory:
        body["Memory"] = parse_bytes(ns.memory)
    if ns.memory_swap:
        body["MemorySwap"] = -1 if ns.memory_swap == "-1" else parse_bytes(ns.memory_swap)
    if ns.memory_reservation:
        body["MemoryReservation"] = parse_bytes(ns.memory_reservation)
    if ns.pids_limit is not None:
        body["PidsLimit"] = ns.pids_limit
    if ns.restart:
        from dockyard.cli.options import parse_restart
        body["RestartPolicy"] = parse_restart(ns.restart)

    def act(name: str) -> None:
        reply = ctx.client.post(f"/containers/{quote(name)}/update", body)
        for warning in (reply or {}).get("Warnings") or []:
            ctx.err(f"{warning}\n")
    return for_each(ctx, ns.containers, act)


def port(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "port", "CONTAINER [PRIVATE_PORT[/PROTO]]",
               "List port mappings or a specific mapping for the container")
    p.add_argument("container")
    p.add_argument("private", nargs="?")
    ns = p.parse(args)
    info = ctx.client.inspect_container(ns.container)
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if ns.private:
        key = ns.private if "/" in ns.private else f"{ns.private}/tcp"
        bindings = ports.get(key)
        if not bindings:
            raise StatusError(1, f"Error: No public port '{key}' published for {ns.container}")
        for b in bindings:
            ctx.out(f"{_host_port(b)}\n")
        return 0
    def sort_key(k: str) -> tuple[int, str]:
        num, _, proto = k.partition("/")
        return (int(num) if num.isdigit() else 0, proto)
    for key in sorted(ports, key=sort_key):
        for b in ports[key] or []:
            ctx.out(f"{key} -> {_host_port(b)}\n")
    return 0


def _host_port(binding: dict[str, str]) -> str:
    ip = binding.get("HostIp") or "0.0.0.0"
    ip = f"[{ip}]" if ":" in ip else ip
    return f"{ip}:{binding.get('HostPort', '')}"


def _json_text(value: Any) -> str:
    import json  # here, not at the top: rm and run -d never need it

    return json.dumps(value, ensure_ascii=False)
