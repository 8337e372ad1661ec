"""The attach family: run, create, start, attach, exec.

``run`` follows the docker CLI's choreography (docker-cli-api-sequences.txt)::

    c1  POST /containers/create            404 "No such image" -> POST /images/create (pull)
                                           -> POST /containers/create again
    c2  POST /containers/{id}/attach       Upgrade: tcp -> 101; before start, so no output is lost
    c3  POST /containers/{id}/wait?condition=next-exit|removed   (its reply comes at exit)
    c1  POST /containers/{id}/start        then resize for a tty, SIGWINCH -> resize
        stdin -> attach socket, half-closed at EOF; output demultiplexed until EOF
        exit status = the wait reply's StatusCode

With a tty the terminal is put in raw mode, and ctrl-p ctrl-q (or ``--detach-keys``) detaches:
the client watches its own stdin for the sequence, so detaching works whatever the daemon does
with ``detachKeys``.
"""

from __future__ import annotations

import os

from dockyard.cli.context import Context, Parser, StatusError, UsageError
from dockyard.cli.session import (
    DEFAULT_DETACH_KEYS,
    Session,
    Waiter,
    parse_detach_keys,
    proxy_signals,
    watch_resize,
)
from dockyard.client.wire import quote
from dockyard.errors import DockyardError, ImageNotFound

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

__all__ = ["attach", "create", "exec", "run", "start"]

def start_error_status(message: str) -> int:
    """docker run's exit status for a container that could not start."""
    if any(s in message for s in ("executable file not found", "no such file or directory",
                                  "system cannot find the file specified")):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


# -- pulling ----------------------------------------------------------------------------------

def pull_image(ctx: Context, image: str, *, platform: str | None = None, to_stderr: bool = False,
               quiet: bool = False, all_tags: bool = False) -> None:
    from dockyard.cli import auth
    from dockyard.cli.progress import display
    from dockyard.oci.reference import parse_reference

    ref = parse_reference(image)
    creds = auth.get(ctx.docker_config_dir(), auth.registry_for(image))
    header = auth.encode_auth(creds) if creds else "e30="
    out = ctx.stderr if to_stderr else ctx.stdout
    tag = None if all_tags else ref.digest or ref.tag or "latest"
    stream = ctx.client.pull(ref.familiar_name(), tag, auth=header, platform=platform)
    display(stream, out, ctx.is_tty(out), quiet=quiet)


def create_container(ctx: Context, config: dict[str, Any], *, name: str | None,
                     platform: str | None, pull: str, quiet: bool) -> str:
    image = config["Image"]
    if pull == "always":
        pull_image(ctx, image, platform=platform, to_stderr=True, quiet=quiet)
    try:
        reply = ctx.client.create_container(config, name, platform)
    except ImageNotFound:
        if pull == "never":
            raise
        from dockyard.oci.reference import parse_reference
        familiar = parse_reference(image).with_default_tag().familiar()
        if not quiet:
            ctx.err(f"Unable to find image '{familiar}' locally\n")
        pull_image(ctx, image, platform=platform, to_stderr=True, quiet=quiet)
        reply = ctx.client.create_container(config, name, platform)
    for warning in reply.get("Warnings") or []:
        ctx.err(f"WARNING: {warning}\n")
    return str(reply["Id"])


# -- commands ---------------------------------------------------------------------------------

def _run_parser(ctx: Context, command: str) -> Parser:
    from dockyard.cli.options import add_create_flags

    p = Parser(ctx, command, "[OPTIONS] IMAGE [COMMAND] [ARG...]",
               "Create and run a new container from an image" if command == "run" else
               "Create a new container", short_help=False)
    if command == "run":
        p.add_argument("-d", "--detach", action="store_true",
                       help="Run container in background and print container ID")
        p.add_argument("--sig-proxy", default="true", choices=["true", "false"],
                       help="Proxy received signals to the process")
    add_create_flags(p)
    return p


def _daemon_error(command: str, exc: DockyardError, status: int = 125) -> StatusError:
    prefix = "Error response from daemon: " if hasattr(exc, "status") else ""
    return StatusError(status, f"dockyard: {prefix}{exc.message}\n"
                               f"\nRun 'dockyard {command} --help' for more information")


def create(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.options import build_create

    ns = _run_parser(ctx, "create").parse(args)
    # docker's create attaches like an attached run (AttachStdout, and StdinOnce with -i):
    # that is what makes a later `start -a -i` deliver stdin's EOF without cutting output
    cid = _create_from_flags(ctx, ns, build_create(ns, ctx.env, detach=False), "create")
    ctx.out(f"{cid}\n")
    return 0


def _create_from_flags(ctx: Context, ns: argparse.Namespace, config: dict[str, Any],
                       command: str) -> str:
    try:
        cid = create_container(ctx, config, name=ns.name, platform=ns.platform, pull=ns.pull,
                               quiet=ns.quiet)
    except DockyardError as exc:
        raise _daemon_error(command, exc) from None
    _write_cidfile(ns, cid)
    return cid


def _write_cidfile(ns: argparse.Namespace, cid: str) -> None:
    if ns.cidfile:
        if os.path.exists(ns.cidfile):
            raise StatusError(125, f"Container ID file found, make sure the other container "
                                   f"isn't running or delete {ns.cidfile}")
        with open(ns.cidfile, "w") as f:
            f.write(cid)


def run(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.options import build_create

    ns = _run_parser(ctx, "run").parse(args)
    config = build_create(ns, ctx.env, detach=ns.detach)
    if ns.tty and config["AttachStdin"] and not ctx.is_tty(ctx.stdin):
        raise StatusError(1, "the input device is not a TTY")
    if ns.rm and config["HostConfig"]["RestartPolicy"]["Name"]:
        raise StatusError(125, "dockyard: conflicting options: cannot specify both --restart "
                               "and --rm\n\nRun 'dockyard run --help' for more information")
    cid = _create_from_flags(ctx, ns, config, "run")
    client = ctx.client
    if ns.detach:
        try:
            client.start(cid)
        except DockyardError as exc:
            raise _daemon_error("run", exc, start_error_status(exc.message)) from None
        ctx.out(f"{cid}\n")
        return 0

    attach_stdin = bool(config["AttachStdin"])
    conn = client.clone().attach(cid, stdin=attach_stdin, stdout=config["AttachStdout"],
                                 stderr=config["AttachStderr"], detach_keys=ns.detach_keys)
    waiter = Waiter(ctx, cid, "removed" if ns.rm else "next-exit")
    session = Session(ctx, conn, tty=ns.tty, stdin=attach_stdin,
                      detach_keys=parse_detach_keys(ns.detach_keys or DEFAULT_DETACH_KEYS))
    return _attached(ctx, cid, session, waiter, start=lambda: client.start(cid),
                     sig_proxy=ns.sig_proxy == "true" and not ns.tty,
                     resize=(lambda h, w: client.clone().resize(cid, h, w)) if ns.tty else None,
                     command="run")


def _attached(ctx: Context, cid: str, session: Session, waiter: Waiter | None, *,
              start: Callable[[], None] | None, sig_proxy: bool,
              resize: Callable[[int, int], None] | None, command: str) -> int:
    """Start (if asked), pump the streams, and return the container's exit status."""
    restore_signals: Callable[[], None] = lambda: None  # noqa: E731
    stop_resize: Callable[[], None] = lambda: None  # noqa: E731
    session.raw_terminal()
    try:
        if start is not None:
            try:
                start()
            except DockyardError as exc:
                session.restore_terminal()
                session.conn.close()
                raise _daemon_error(command, exc, start_error_status(exc.message)) from None
        if resize is not None:
            stop_resize = watch_resize(ctx, resize)
        if sig_proxy:
            restore_signals = proxy_signals(ctx, cid)
        session.start_input()
        session.copy_output()
    finally:
        session.restore_terminal()
        stop_resize()
        restore_signals()
    if session.detached:
        return 0
    if waiter is None:
        reply = ctx.client.clone().wait(cid, "not-running")
        return int(reply.get("StatusCode", 0))
    return waiter.status()


def start(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "start", "[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers")
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    ns = p.parse(args)
    client = ctx.client
    if ns.attach or ns.interactive:
        if len(ns.containers) > 1:
            raise UsageError("you cannot start and attach multiple containers at once", "start")
        info = client.inspect_container(ns.containers[0])
        cid = info["Id"]
        cfg = info.get("Config") or {}
        tty = bool(cfg.get("Tty"))
        stdin = bool(ns.interactive and cfg.get("OpenStdin"))
        if tty and stdin and not ctx.is_tty(ctx.stdin):
            raise StatusError(1, "the input device is not a TTY")
        conn = client.clone().attach(cid, stdin=stdin, detach_keys=ns.detach_keys)
        waiter = Waiter(ctx, cid, "next-exit")
        session = Session(ctx, conn, tty=tty, stdin=stdin,
                          detach_keys=parse_detach_keys(ns.detach_keys or DEFAULT_DETACH_KEYS))
        return _attached(ctx, cid, session, waiter, start=lambda: client.start(cid),
                         sig_proxy=not tty,
                         resize=(lambda h, w: client.clone().resize(cid, h, w)) if tty else None,
                         command="start")
    from dockyard.cli.containers import for_each

    failed = for_each(ctx, ns.containers, lambda name: client.start(name, ns.detach_keys))
    if failed:
        raise StatusError(1, f"Error: failed to start containers: {', '.join(ns.containers)}")
    return 0


def attach(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "attach", "[OPTIONS] CONTAINER",
               "Attach local standard input, output, and error streams to a running container")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", default="true", choices=["true", "false"],
                   help="Proxy all received signals to the process")
    p.add_argument("container")
    ns = p.parse(args)
    info = ctx.client.inspect_container(ns.container)
    state = info.get("State") or {}
    if not state.get("Running"):
        raise StatusError(1, "You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise StatusError(1, "You cannot attach to a paused container, unpause it first")
    cid = info["Id"]
    cfg = info.get("Config") or {}
    tty = bool(cfg.get("Tty"))
    stdin = bool(cfg.get("OpenStdin")) and not ns.no_stdin
    if tty and stdin and not ctx.is_tty(ctx.stdin):
        raise StatusError(1, "the input device is not a TTY")
    conn = ctx.client.clone().attach(cid, stdin=stdin, detach_keys=ns.detach_keys)
    session = Session(ctx, conn, tty=tty, stdin=stdin,
                      detach_keys=parse_detach_keys(ns.detach_keys or DEFAULT_DETACH_KEYS))
    client = ctx.client
    return _attached(ctx, cid, session, None, start=None,
                     sig_proxy=ns.sig_proxy == "true" and not tty,
                     resize=(lambda h, w: client.clone().resize(cid, h, w)) if tty else None,
                     command="attach")


def exec(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.options import env_list

    p = Parser(ctx, "exec", "[OPTIONS] CONTAINER COMMAND [ARG...]",
               "Execute a command in a running container")
    p.add_argument("-d", "--detach", action="store_true", help="Detached mode")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("--env-file", action="append", default=[], help="Read in a file of env vars")
    p.add_argument("-u", "--user", help="Username or UID")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching")
    p.add_argument("container")
    p.add_argument("command", nargs="...")  # argparse.REMAINDER
    ns = p.parse(args)
    if not ns.command:
        p.requires(2)
    if ns.tty and ns.interactive and not ns.detach and not ctx.is_tty(ctx.stdin):
        raise StatusError(1, "the input device is not a TTY")
    client = ctx.client
    body = {"User": ns.user or "", "Privileged": ns.privileged, "Tty": ns.tty,
            "AttachStdin": ns.interactive and not ns.detach,
            "AttachStdout": not ns.detach, "AttachStderr": not ns.detach,
            "Env": env_list(ns, ctx.env), "WorkingDir": ns.workdir or "", "Cmd": ns.command}
    if ns.detach_keys:
        body["DetachKeys"] = ns.detach_keys
    exec_id = client.exec_create(ns.container, body)
    if ns.detach:
        client.exec_start(exec_id, tty=ns.tty, detach=True)
        return 0
    conn = client.clone().exec_start(exec_id, tty=ns.tty)
    assert conn is not None
    session = Session(ctx, conn, tty=ns.tty, stdin=ns.interactive,
                      detach_keys=parse_detach_keys(ns.detach_keys or DEFAULT_DETACH_KEYS))
    session.raw_terminal()
    stop_resize: Callable[[], None] = lambda: None  # noqa: E731
    try:
        if ns.tty:
            stop_resize = watch_resize(
                ctx, lambda h, w: client.clone().resize(exec_id, h, w, exec_id=True))
        session.start_input()
        session.copy_output()
    finally:
        session.restore_terminal()
        stop_resize()
    if session.detached:
        return 0
    info = client.get(f"/exec/{quote(exec_id)}/json")
    code = info.get("ExitCode")
    return int(code) if code is not None else 0
