"""Container commands other than the attach family: ps, logs, stop, kill, rm, restart, wait,
inspect, top, stats, cp, diff, commit, export, rename, pause, unpause, update, port."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Iterable

from dockyard.cli.context import Context, Parser, StatusError, UsageError
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
from dockyard.errors import DockyardError, NotFound

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any

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
        "Command": json.dumps(command, ensure_ascii=False),
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
            extra: Callable[[Parser], None] | None = None, echo: bool = True
            ) -> Callable[[Context, list[str]], int]:
    def run(ctx: Context, args: list[str]) -> int:
        p = Parser(ctx, command, usage, description)
        if extra:
            extra(p)
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        ns = p.parse(args)
        return for_each(ctx, ns.containers, lambda name: act(ctx, ns, name), echo)
    run.__name__ = command
    return run


def _time_flag(p: Parser) -> None:
    p.add_argument("-t", "--time", type=int, default=None,
                   help="Seconds to wait before killing the container")
    p.add_argument("-s", "--signal", help="Signal to send to the container")


stop = _simple("stop", "[OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
               lambda ctx, ns, n: ctx.client.post(f"/containers/{quote(n)}/stop", t=ns.time,
                                                  signal=ns.signal), _time_flag)
restart = _simple("restart", "[OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers",
                  lambda ctx, ns, n: ctx.client.post(f"/containers/{quote(n)}/restart", t=ns.time,
                                                     signal=ns.signal), _time_flag)
def _signal_flag(p: Parser) -> None:
    p.add_argument("-s", "--signal", help="Signal to send to the container")


kill = _simple("kill", "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers",
               lambda ctx, ns, n: ctx.client.kill(n, ns.signal),
               _signal_flag)
pause = _simple("pause", "CONTAINER [CONTAINER...]", "Pause all processes within containers",
                lambda ctx, ns, n: ctx.client.post(f"/containers/{quote(n)}/pause"))
unpause = _simple("unpause", "CONTAINER [CONTAINER...]", "Unpause all processes within containers",
                  lambda ctx, ns, n: ctx.client.post(f"/containers/{quote(n)}/unpause"))


def _rm_flags(p: Parser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a running container")
    p.add_argument("-v", "--volumes", action="store_true", help="Remove anonymous volumes")
    p.add_argument("-l", "--link", action="store_true", help="Remove the specified link")


rm = _simple("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
             lambda ctx, ns, n: ctx.client.remove(n, force=ns.force, volumes=ns.volumes,
                                                  link=ns.link), _rm_flags)


def wait(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "wait", "CONTAINER [CONTAINER...]", "Block until containers stop")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    ns = p.parse(args)

    def act(name: str) -> None:
        reply = ctx.client.wait(name)
        ctx.out(f"{reply.get('StatusCode', 0)}\n")
    return for_each(ctx, ns.containers, act, echo=False)


# -- inspect --------------------------------------------------------------------------------

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


# -- top, stats -------------------------------------------------------------------------------

def top(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "top", "CONTAINER [ps OPTIONS]", "Display the running processes of a container")
    p.add_argument("container")
    p.add_argument("ps_args", nargs=argparse.REMAINDER)  # ps's own flags pass through
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


# -- files ------------------------------------------------------------------------------------

def _split_container_path(arg: str) -> tuple[str | None, str]:
    if ":" in arg and not arg.startswith(("/", ".")):
        name, _, path = arg.partition(":")
        return name, path
    return None, arg


def _path_stat(ctx: Context, container: str, path: str) -> dict[str, Any] | None:
    import base64
    resp = ctx.client._send("HEAD", f"/containers/{quote(container)}/archive", {"path": path})
    resp.read()
    if resp.status == 404:
        return None
    if resp.status >= 400:
        from dockyard.client.api import error_for
        raise error_for(resp.status, f"Could not find the file {path} in container {container}")
    header = resp.getheader("X-Docker-Container-Path-Stat")
    if not header:
        return {}
    return json.loads(base64.b64decode(header))  # type: ignore[no-any-return]


def cp(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
               "       dockyard cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
               "Copy files/folders between a container and the local filesystem")
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Follow symbolic links")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress progress output")
    p.add_argument("src")
    p.add_argument("dest")
    ns = p.parse(args)
    src_c, src = _split_container_path(ns.src)
    dst_c, dst = _split_container_path(ns.dest)
    if (src_c is None) == (dst_c is None):
        raise UsageError("must specify at least one container source" if src_c is None else
                         "copying between containers is not supported", "cp")
    if src_c is not None:
        return _copy_from(ctx, src_c, src, dst, archive=ns.archive, follow=ns.follow_link)
    assert dst_c is not None
    return _copy_to(ctx, src, dst_c, dst, archive=ns.archive, follow=ns.follow_link)


def _copy_from(ctx: Context, container: str, src: str, dest: str, *, archive: bool,
               follow: bool) -> int:
    """Container -> host. The tar comes from the container, so it is untrusted: entries that
    would land outside ``dest`` (``..``, absolute paths, links pointing out) are refused by
    tarfile's "data" filter; ``-a`` keeps owners ("tar" filter: still no escapes)."""
    import tarfile

    if follow:
        st = _path_stat(ctx, container, src)
        if st and st.get("linkTarget"):
            src = st["linkTarget"]
    resp = ctx.client.request("GET", f"/containers/{quote(container)}/archive", {"path": src})
    if dest == "-":
        while chunk := resp.read1(65536):
            ctx.out_bytes(chunk)
        return 0
    rename_to = None
    target_dir = dest
    if not os.path.isdir(dest):
        target_dir = os.path.dirname(os.path.abspath(dest))
        rename_to = os.path.basename(dest.rstrip("/"))
        if not os.path.isdir(target_dir):
            raise StatusError(1, f"Error: destination directory {target_dir} does not exist")
    with tarfile.open(fileobj=resp, mode="r|*") as tar:  # type: ignore[call-overload]
        for member in tar:
            if rename_to is not None:  # the copied root takes the destination's name
                rest = member.name.split("/", 1)[1] if "/" in member.name else ""
                member.name = rename_to + ("/" + rest if rest else "")
            try:
                tar.extract(member, target_dir, filter=_cp_filter(archive))
            except tarfile.FilterError as exc:
                raise StatusError(1, f"Error: refusing {member.name!r}: {exc}") from None
    return 0


def _cp_filter(archive: bool) -> Any:
    """tarfile's "data" rules (no entry outside the destination, no hard link to a file
    outside, no device nodes, no setuid bits, our own uid) except that symlinks are kept
    whatever they point at, as docker does: a symlink is harmless to create, and writing
    *through* one is still refused because every name is resolved with realpath first.
    ``-a`` keeps the source's owners."""
    import tarfile

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        if member.issym():
            return tarfile.tar_filter(member, dest)
        filtered = tarfile.data_filter(member, dest)
        return tarfile.tar_filter(member, dest) if archive and filtered else filtered
    return check


def _copy_to(ctx: Context, src: str, container: str, dest: str, *, archive: bool,
             follow: bool) -> int:
    import io
    import tarfile

    st = _path_stat(ctx, container, dest)
    buf = io.BytesIO()
    if src == "-":
        buf.write(ctx.stdin_binary().read())
        target = dest
    else:
        if not os.path.lexists(src):
            raise StatusError(1, f"Error: lstat {os.path.abspath(src)}: no such file or directory")
        if st is not None and (st.get("mode", 0) & 0x80000000 or not st):
            # an existing directory: copy inside it under the source's own name
            target, arcname = dest, os.path.basename(os.path.normpath(src))
        else:
            target = os.path.dirname(dest.rstrip("/")) or "/"
            arcname = os.path.basename(dest.rstrip("/"))
        with tarfile.open(fileobj=buf, mode="w", dereference=follow) as tar:
            tar.add(src, arcname=arcname)
    ctx.client.call("PUT", f"/containers/{quote(container)}/archive",
                    {"path": target, "copyUIDGID": archive or None}, buf.getvalue(),
                    {"Content-Type": "application/x-tar"})
    return 0


def diff(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "diff", "CONTAINER", "Inspect changes to files on a container's filesystem")
    p.add_argument("container")
    ns = p.parse(args)
    for change in ctx.client.get(f"/containers/{quote(ns.container)}/changes") or []:
        kind = {0: "C", 1: "A", 2: "D"}.get(change.get("Kind"), "?")
        ctx.out(f"{kind} {change.get('Path')}\n")
    return 0


def commit(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "commit", "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
               "Create a new image from a container's changes")
    p.add_argument("-a", "--author", help="Author")
    p.add_argument("-c", "--change", action="append", help="Apply Dockerfile instruction")
    p.add_argument("-m", "--message", help="Commit message")
    p.add_argument("-p", "--pause", action="store_true", default=True,
                   help="Pause container during commit (default true)")
    p.add_argument("container")
    p.add_argument("repository", nargs="?")
    ns = p.parse(args)
    repo, tag = None, None
    if ns.repository:
        from dockyard.oci.reference import parse_reference
        ref = parse_reference(ns.repository)
        repo, tag = ref.familiar_name(), ref.tag or "latest"
    params: dict[str, Any] = {"container": ns.container, "repo": repo, "tag": tag,
                              "comment": ns.message, "author": ns.author, "pause": ns.pause}
    if ns.change:
        params["changes"] = "\n".join(ns.change)
    reply = ctx.client.call("POST", "/commit", params, {})
    ctx.out(f"{reply['Id']}\n")
    return 0


def export(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "export", "[OPTIONS] CONTAINER",
               "Export a container's filesystem as a tar archive")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("container")
    ns = p.parse(args)
    if not ns.output and ctx.is_tty(ctx.stdout):
        raise StatusError(1, "cowardly refusing to save to a terminal. "
                             "Use the -o flag or redirect")
    resp = ctx.client.request("GET", f"/containers/{quote(ns.container)}/export")
    write_stream(ctx, resp.read1, ns.output)
    return 0


def write_stream(ctx: Context, read: Callable[[int], bytes], path: str | None) -> None:
    """Copy a download to ``path`` (atomically) or to stdout."""
    if not path:
        while chunk := read(65536):
            ctx.out_bytes(chunk)
        return
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            while chunk := read(65536):
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
