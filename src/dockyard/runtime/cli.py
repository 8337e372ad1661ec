"""``dockyard-runtime``: runc's command-line contract over :class:`dockyard.runtime.Runtime`.

Global options: ``--root DIR`` (state, default /run/dockyard/runtime), ``--log FILE``,
``--log-format text|json`` (errors and warnings go there as JSON lines, as containerd's shim
expects: ``{"level":"error","msg":...,"time":...}``), and runc's ``--debug``,
``--systemd-cgroup``, ``--criu``, ``--rootless`` (accepted, ignored). Exit status 1 on error.

Start-up matters (one process per container operation): only argparse, json and os are
imported up front; each verb imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

__all__ = ["main"]


class _Log:
    def __init__(self, path: str | None, fmt: str) -> None:
        self.path, self.fmt = path, fmt

    def write(self, level: str, msg: str) -> None:
        if level == "error" or not self.path:
            print(f"dockyard-runtime: {msg}" if level == "error" else f"warning: {msg}",
                  file=sys.stderr)
        if not self.path:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = (json.dumps({"level": level, "msg": msg, "time": now}) if self.fmt == "json"
                else f'time="{now}" level={level} msg="{msg}"')
        try:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard-runtime",
                                description="OCI runtime with runc's command-line contract")
    p.add_argument("--root", default="/run/dockyard/runtime")
    p.add_argument("--log", default=None)
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    for flag in ("--debug", "--systemd-cgroup"):
        p.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--criu", help=argparse.SUPPRESS)
    p.add_argument("--rootless", help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    def cmd(name: str, help_: str, *, with_id: bool = True) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_)
        if with_id:
            c.add_argument("id")
        return c

    def create_opts(c: argparse.ArgumentParser) -> None:
        c.add_argument("--bundle", "-b", default=".")
        c.add_argument("--pid-file")
        c.add_argument("--console-socket")
        c.add_argument("--no-pivot", action="store_true")
        c.add_argument("--no-new-keyring", action="store_true")
        c.add_argument("--preserve-fds", type=int, default=0)

    create_opts(cmd("create", "create a container, its init waits for start"))
    cmd("start", "start the user process of a created container")
    cmd("state", "print the state of a container as JSON")
    c = cmd("kill", "send a signal to the container's init (default SIGTERM)")
    c.add_argument("signal", nargs="?", default="SIGTERM")
    c.add_argument("--all", "-a", action="store_true")
    c = cmd("delete", "delete a stopped container (--force: any)")
    c.add_argument("--force", "-f", action="store_true")
    c = cmd("run", "create and start a container, wait for it, delete it")
    create_opts(c)
    c.add_argument("--detach", "-d", action="store_true")
    c.add_argument("--keep", action="store_true")
    c = cmd("exec", "run a process in a running container")
    c.add_argument("--process", "-p")
    c.add_argument("--console-socket")
    c.add_argument("--detach", "-d", action="store_true")
    c.add_argument("--pid-file")
    c.add_argument("--tty", "-t", action="store_true")
    c.add_argument("--cwd")
    c.add_argument("--env", "-e", action="append", default=[])
    c.add_argument("--user", "-u")
    c.add_argument("--no-new-privs", action="store_true")
    c.add_argument("--preserve-fds", type=int, default=0)
    c.add_argument("command", nargs=argparse.REMAINDER)
    cmd("pause", "freeze every process of a container")
    cmd("resume", "thaw a paused container")
    c = cmd("ps", "list the processes of a container")
    c.add_argument("--format", "-f", default="table", choices=("table", "json"))
    c.add_argument("ps_args", nargs=argparse.REMAINDER)
    c = cmd("list", "list containers", with_id=False)
    c.add_argument("--format", "-f", default="table", choices=("table", "json"))
    c.add_argument("--quiet", "-q", action="store_true")
    cmd("features", "print the features this runtime supports (JSON)", with_id=False)
    c = cmd("spec", "write a default config.json", with_id=False)
    c.add_argument("--bundle", "-b", default=".")
    c.add_argument("--rootless", action="store_true")
    c = cmd("update", "update a container's resource limits")
    c.add_argument("--resources", "-r")
    c.add_argument("--memory", type=int)
    c.add_argument("--memory-swap", type=int)
    c.add_argument("--pids-limit", type=int)
    c.add_argument("--cpu-shares", type=int)
    c.add_argument("--cpu-quota", type=int)
    c.add_argument("--cpu-period", type=int)
    c.add_argument("--cpuset-cpus")
    c.add_argument("--cpuset-mems")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log = _Log(args.log, args.log_format)
    try:
        from dockyard.runtime.runtime import Runtime

        rt = Runtime(args.root, warn=lambda m: log.write("warning", m))
        code = _COMMANDS[args.verb](rt, args)
    except Exception as exc:
        from dockyard.errors import ContainerNotFound, DockyardError

        msg = str(exc) if isinstance(exc, DockyardError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ContainerNotFound):  # containerd's shim matches "does not exist"
            msg = f"container {exc.ident} does not exist"
        log.write("error", msg)
        if args.debug:
            import traceback

            traceback.print_exc()
        return 1
    return code


def _send_console(path: str) -> Any:
    def send(fd: int) -> None:
        import socket

        from dockyard.linux.pty import send_fd

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            send_fd(s, fd)
        os.close(fd)

    return send


def _cmd_create(rt: Any, a: argparse.Namespace) -> int:
    console = _send_console(a.console_socket) if a.console_socket else None
    rt.create(a.id, a.bundle, console=console, pid_file=a.pid_file)
    return 0


def _cmd_start(rt: Any, a: argparse.Namespace) -> int:
    rt.start(a.id)
    return 0


def _cmd_state(rt: Any, a: argparse.Namespace) -> int:
    print(json.dumps(rt.state(a.id).to_oci(), indent=2))
    return 0


def _cmd_kill(rt: Any, a: argparse.Namespace) -> int:
    from dockyard.runtime.kill import parse_signal

    rt.kill(a.id, parse_signal(a.signal), all=a.all)
    return 0


def _cmd_delete(rt: Any, a: argparse.Namespace) -> int:
    from dockyard.errors import ContainerNotFound

    try:
        rt.delete(a.id, force=a.force)
    except ContainerNotFound:
        if not a.force:  # runc: delete --force of a missing container succeeds
            raise
    return 0


def _cmd_pause(rt: Any, a: argparse.Namespace) -> int:
    rt.pause(a.id)
    return 0


def _cmd_resume(rt: Any, a: argparse.Namespace) -> int:
    rt.resume(a.id)
    return 0


def _cmd_ps(rt: Any, a: argparse.Namespace) -> int:
    pids = rt.ps(a.id)
    if a.format == "json":
        print(json.dumps(pids))
        return 0
    print("PID     CMD")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmdline = ""
        print(f"{pid:<7} {cmdline}")
    return 0


def _cmd_list(rt: Any, a: argparse.Namespace) -> int:
    states = rt.list()
    if a.quiet:
        for s in states:
            print(s.id)
    elif a.format == "json":
        print(json.dumps([s.to_oci() for s in states]))
    else:
        print(f"{'ID':<20} {'PID':<8} {'STATUS':<10} {'BUNDLE':<40} {'CREATED':<31} OWNER")
        for s in states:
            pid = s.pid if s.status != "stopped" else 0
            print(f"{s.id:<20} {pid:<8} {s.status:<10} {s.bundle:<40} {s.created:<31} {s.owner}")
    return 0


def _cmd_features(rt: Any, a: argparse.Namespace) -> int:
    from dockyard.runtime.features import features

    print(json.dumps(features(), indent=4))
    return 0


def _cmd_spec(rt: Any, a: argparse.Namespace) -> int:
    from dockyard.errors import Conflict
    from dockyard.oci.runtime_spec import default_spec

    path = os.path.join(a.bundle, "config.json")
    if os.path.exists(path):
        raise Conflict(f"file {path} exists, remove it first")
    with open(path, "w") as f:
        json.dump(default_spec(rootless=a.rootless), f, indent=2)
    return 0


def _cmd_update(rt: Any, a: argparse.Namespace) -> int:
    resources: dict[str, Any] = {}
    if a.resources:
        if a.resources == "-":
            resources = json.load(sys.stdin)
        else:
            with open(a.resources) as f:
                resources = json.load(f)
    mem = {k: v for k, v in (("limit", a.memory), ("swap", a.memory_swap)) if v is not None}
    cpu = {k: v for k, v in (("shares", a.cpu_shares), ("quota", a.cpu_quota),
                             ("period", a.cpu_period), ("cpus", a.cpuset_cpus),
                             ("mems", a.cpuset_mems)) if v is not None}
    if mem:
        resources.setdefault("memory", {}).update(mem)
    if cpu:
        resources.setdefault("cpu", {}).update(cpu)
    if a.pids_limit is not None:
        resources["pids"] = {"limit": a.pids_limit}
    rt.update(a.id, resources)
    return 0


def _cmd_exec(rt: Any, a: argparse.Namespace) -> int:
    from dockyard.runtime import run as runmod

    if a.process:
        with open(a.process) as f:
            process = json.load(f)
    else:
        process = runmod.process_from_flags(rt, a)
    return runmod.exec_and_wait(rt, a.id, process, console_socket=a.console_socket,
                                detach=a.detach, pid_file=a.pid_file)


def _cmd_run(rt: Any, a: argparse.Namespace) -> int:
    from dockyard.runtime import run as runmod

    return runmod.run(rt, a.id, a.bundle, console_socket=a.console_socket, detach=a.detach,
                      keep=a.keep, pid_file=a.pid_file)


_COMMANDS = {
    "create": _cmd_create, "start": _cmd_start, "state": _cmd_state, "kill": _cmd_kill,
    "delete": _cmd_delete, "pause": _cmd_pause, "resume": _cmd_resume, "ps": _cmd_ps,
    "list": _cmd_list, "features": _cmd_features, "spec": _cmd_spec, "update": _cmd_update,
    "exec": _cmd_exec, "run": _cmd_run,
}


if __name__ == "__main__":
    sys.exit(main())
