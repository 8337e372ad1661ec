"""``dockyard-runtime``: runc's command-line contract over :class:`dockyard.runtime.Runtime`.

Global options: ``--root DIR`` (state, default /run/dockyard/runtime), ``--log FILE``,
``--log-format text|json`` (errors and warnings go there as JSON lines, as containerd's shim
expects: ``{"level":"error","msg":...,"time":...}``), and runc's ``--debug``,
``--systemd-cgroup``, ``--criu``, ``--rootless`` (accepted, ignored). Exit status 1 on error.

Start-up matters (one process per container operation): options are parsed by a small
table-driven parser (Go-flag style like runc: ``-x``, ``--long``, ``--long=value``; argparse
alone costs more than a millisecond budget allows), only os, sys and time are imported up
front, and each verb imports what it needs.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = ["main"]


class _Log:
    def __init__(self, path: str | None, fmt: str) -> None:
        self.path, self.fmt = path, fmt

    def write(self, level: str, msg: str) -> None:
        import json

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


# verb -> (positionals, {flag: (kind, short)}); kinds: bool, str, int, list.
# A "*" positional takes the rest of the line (exec's command, ps's ps(1) arguments).
_CREATE_FLAGS = {"bundle": ("str", "b"), "pid-file": ("str", ""), "console-socket": ("str", ""),
                 "no-pivot": ("bool", ""), "no-new-keyring": ("bool", ""),
                 "preserve-fds": ("int", "")}
VERBS: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, str]], str]] = {
    "create": (("id",), _CREATE_FLAGS, "create a container; its init waits for start"),
    "start": (("id",), {}, "start the user process of a created container"),
    "state": (("id",), {}, "print the state of a container as JSON"),
    "kill": (("id", "signal?"), {"all": ("bool", "a")},
             "send a signal (default SIGTERM) to the init, or to every process with --all"),
    "delete": (("id",), {"force": ("bool", "f")}, "delete a stopped container (--force: any)"),
    "run": (("id",), {**_CREATE_FLAGS, "detach": ("bool", "d"), "keep": ("bool", "")},
            "create and start a container, wait for it, delete it"),
    "exec": (("id", "*command"),
             {"process": ("str", "p"), "console-socket": ("str", ""), "detach": ("bool", "d"),
              "pid-file": ("str", ""), "tty": ("bool", "t"), "cwd": ("str", ""),
              "env": ("list", "e"), "user": ("str", "u"), "no-new-privs": ("bool", ""),
              "preserve-fds": ("int", "")},
             "run one more process in a running container"),
    "pause": (("id",), {}, "freeze every process of a container"),
    "resume": (("id",), {}, "thaw a paused container"),
    "ps": (("id", "*ps_args"), {"format": ("str", "f")}, "list a container's processes"),
    "list": ((), {"format": ("str", "f"), "quiet": ("bool", "q")}, "list containers"),
    "features": ((), {}, "print the features this runtime supports (JSON)"),
    "spec": ((), {"bundle": ("str", "b"), "rootless": ("bool", "")},
             "write a default config.json into the bundle"),
    "update": (("id",), {"resources": ("str", "r"), "memory": ("int", ""),
                         "memory-swap": ("int", ""), "pids-limit": ("int", ""),
                         "cpu-shares": ("int", ""), "cpu-quota": ("int", ""),
                         "cpu-period": ("int", ""), "cpuset-cpus": ("str", ""),
                         "cpuset-mems": ("str", "")},
               "update a container's resource limits (--resources FILE or - for stdin)"),
}
_GLOBAL_FLAGS = {"root": ("str", ""), "log": ("str", ""), "log-format": ("str", ""),
                 "debug": ("bool", ""), "systemd-cgroup": ("bool", ""), "criu": ("str", ""),
                 "rootless": ("str", ""), "help": ("bool", "h"), "version": ("bool", "v")}
_DEFAULTS = {"bundle": ".", "format": "table", "root": "/run/dockyard/runtime",
             "log-format": "text", "preserve-fds": 0}


class UsageError(Exception):
    pass


class Args:
    """Parsed options: flag names with ``-`` as ``_`` (``args.pid_file``)."""

    def __init__(self, flags: dict[str, Any]) -> None:
        self.__dict__.update({k.replace("-", "_"): v for k, v in flags.items()})

    def __getattr__(self, name: str) -> Any:  # only reached for flags the verb lacks
        raise AttributeError(f"no option {name!r}")


def _init_flags(table: dict[str, tuple[str, str]], into: dict[str, Any]) -> None:
    for name, (kind, _) in table.items():
        into[name] = _DEFAULTS.get(name, {"bool": False, "list": []}.get(kind))
        if kind == "list":
            into[name] = []


def _take_flag(argv: list[str], i: int, table: dict[str, tuple[str, str]],
               out: dict[str, Any]) -> int:
    """Parse the flag at argv[i] (Go style: -x, --x, -long, --long=value); return next i."""
    arg = argv[i]
    name, eq, value = arg.lstrip("-").partition("=")
    if len(name) == 1:
        name = next((n for n, (_, short) in table.items() if short == name), name)
    if name not in table:
        raise UsageError(f"flag provided but not defined: {arg}")
    kind = table[name][0]
    if kind == "bool":
        out[name] = value.lower() not in ("false", "0") if eq else True
        return i + 1
    if not eq:
        if i + 1 >= len(argv):
            raise UsageError(f"flag needs an argument: {arg}")
        value, i = argv[i + 1], i + 1
    if kind == "int":
        try:
            out[name] = int(value)
        except ValueError:
            raise UsageError(f"invalid value {value!r} for flag {arg}") from None
    elif kind == "list":
        out[name].append(value)
    else:
        out[name] = value
    return i + 1


def parse_args(argv: list[str]) -> tuple[str, Args]:
    flags: dict[str, Any] = {}
    _init_flags(_GLOBAL_FLAGS, flags)
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        i = _take_flag(argv, i, _GLOBAL_FLAGS, flags)
    if flags["version"]:
        return "version", Args(flags)
    if flags["help"] or i >= len(argv):
        raise UsageError("")
    verb = argv[i]
    if verb not in VERBS:
        raise UsageError(f"no such command: {verb}")
    positionals, table, _ = VERBS[verb]
    _init_flags(table, flags)
    rest: list[str] = []
    i += 1
    while i < len(argv):
        arg = argv[i]
        if positionals and positionals[-1].startswith("*") and len(rest) == len(positionals) - 1:
            rest.append(argv[i:])  # type: ignore[arg-type]
            break
        if arg == "--":
            rest.extend(argv[i + 1 :])
            break
        if arg.startswith("-") and arg != "-":
            i = _take_flag(argv, i, table, flags)
        else:
            rest.append(arg)
            i += 1
    for j, pos in enumerate(positionals):
        name = pos.strip("*?")
        if j < len(rest):
            flags[name] = rest[j]
        elif pos.startswith("*"):
            flags[name] = []
        elif pos.endswith("?"):
            flags[name] = None
        else:
            raise UsageError(f'"{verb}" requires a container {name}')
    if len(rest) > len(positionals):
        raise UsageError(f"unexpected argument: {rest[len(positionals)]}")
    return verb, Args(flags)


def usage() -> str:
    lines = ["usage: dockyard-runtime [--root DIR] [--log FILE] [--log-format text|json] "
             "COMMAND [OPTIONS] [ID]", "       dockyard-runtime --version", "", "An OCI runtime with runc's command-line contract.",
             "", "commands:"]
    for verb, (positionals, table, help_) in VERBS.items():
        opts = " ".join(f"[--{n}{'' if k == 'bool' else ' ' + k.upper()}]"
                        for n, (k, _) in table.items())
        args = " ".join(p.strip("*?").upper() for p in positionals)
        lines.append(f"  {verb:<9} {help_}")
        lines.append(f"            {verb} {opts} {args}".rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point; with ``argv`` None (the console script) it ends the process itself."""
    if argv is None:
        code = main(sys.argv[1:])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # skip interpreter teardown: a CLI run per container operation
    try:
        verb, args = parse_args(argv)
    except UsageError as exc:
        if str(exc):
            print(f"dockyard-runtime: {exc}", file=sys.stderr)
            return 2
        print(usage())
        return 0
    if verb in ("create", "run"):
        from dockyard.runtime.cgroup import warm_migration_lock
        from dockyard.runtime.trace import mark

        mark("cli: main")

        warm_migration_lock()  # overlap the kernel's wait with the imports below
    log = _Log(args.log, args.log_format)
    try:
        from dockyard.runtime.runtime import Runtime

        rt = Runtime(args.root, warn=lambda m: log.write("warning", m))
        code = _COMMANDS[verb](rt, args)
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


def _cmd_create(rt: Any, a: Args) -> int:
    console = _send_console(a.console_socket) if a.console_socket else None
    rt.create(a.id, a.bundle, console=console, pid_file=a.pid_file)
    return 0


def _cmd_start(rt: Any, a: Args) -> int:
    rt.start(a.id)
    return 0


def _cmd_state(rt: Any, a: Args) -> int:
    import json

    print(json.dumps(rt.state(a.id).to_oci(), indent=2))
    return 0


def _cmd_kill(rt: Any, a: Args) -> int:
    from dockyard.runtime.kill import parse_signal

    rt.kill(a.id, parse_signal(a.signal or "SIGTERM"), all=a.all)
    return 0


def _cmd_delete(rt: Any, a: Args) -> int:
    from dockyard.errors import ContainerNotFound

    try:
        rt.delete(a.id, force=a.force)
    except ContainerNotFound:
        if not a.force:  # runc: delete --force of a missing container succeeds
            raise
    return 0


def _cmd_pause(rt: Any, a: Args) -> int:
    rt.pause(a.id)
    return 0


def _cmd_resume(rt: Any, a: Args) -> int:
    rt.resume(a.id)
    return 0


def _cmd_ps(rt: Any, a: Args) -> int:
    import json

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


def _cmd_list(rt: Any, a: Args) -> int:
    import json

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


def _cmd_version(rt: Any, a: Args) -> int:
    """runc's format (dockerd shows the first line in ``docker info``)."""
    from importlib.metadata import PackageNotFoundError, version

    from dockyard.oci.runtime_spec import OCI_VERSION

    try:
        ours = version("dockyard")
    except PackageNotFoundError:
        ours = "unknown"
    print(f"dockyard-runtime version {ours}\nspec: {OCI_VERSION}\n"
          f"python: {sys.version.split()[0]}")
    return 0


def _cmd_features(rt: Any, a: Args) -> int:
    import json

    from dockyard.runtime.features import features

    print(json.dumps(features(), indent=4))
    return 0


def _cmd_spec(rt: Any, a: Args) -> int:
    import json

    from dockyard.errors import Conflict
    from dockyard.oci.runtime_spec import default_spec

    path = os.path.join(a.bundle, "config.json")
    if os.path.exists(path):
        raise Conflict(f"file {path} exists, remove it first")
    with open(path, "w") as f:
        json.dump(default_spec(rootless=a.rootless), f, indent=2)
    return 0


def _cmd_update(rt: Any, a: Args) -> int:
    import json

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


def _cmd_exec(rt: Any, a: Args) -> int:
    import json

    from dockyard.runtime import run as runmod

    if a.process:
        with open(a.process) as f:
            process = json.load(f)
    else:
        process = runmod.process_from_flags(rt, a)
    return runmod.exec_and_wait(rt, a.id, process, console_socket=a.console_socket,
                                detach=a.detach, pid_file=a.pid_file)


def _cmd_run(rt: Any, a: Args) -> int:
    from dockyard.runtime import run as runmod

    return runmod.run(rt, a.id, a.bundle, console_socket=a.console_socket, detach=a.detach,
                      keep=a.keep, pid_file=a.pid_file)


_COMMANDS = {
    "create": _cmd_create, "start": _cmd_start, "state": _cmd_state, "kill": _cmd_kill,
    "delete": _cmd_delete, "pause": _cmd_pause, "resume": _cmd_resume, "ps": _cmd_ps,
    "list": _cmd_list, "features": _cmd_features, "spec": _cmd_spec, "update": _cmd_update,
    "exec": _cmd_exec, "run": _cmd_run, "version": _cmd_version,
}


if __name__ == "__main__":
    sys.exit(main())
