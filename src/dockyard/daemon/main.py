"""``dockyard daemon``: the entry point (``main(argv) -> int``; also ``python -m dockyard.daemon``).

Order matters: parse the config, start the spawner (a fresh single-threaded interpreter),
bind the listeners, then run the event loop. SIGTERM/SIGINT shut down cleanly (containers keep
running: live restore is always on); SIGHUP reloads daemon.json's reloadable keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import ipaddress
import logging
import os
import shutil
import signal
import socket
import sys
from typing import Any

from dockyard.daemon.config import DaemonConfig, parse_args, reload
from dockyard.errors import DockyardError, InvalidArgument

log = logging.getLogger("dockyard.daemon")
SHUTDOWN_GRACE = 10.0


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        import time

        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs * 1000):06d}Z"
        level = {"WARNING": "warning", "ERROR": "error", "CRITICAL": "fatal"}.get(record.levelname,
                                                                               record.levelname.lower())
        msg = record.getMessage().replace('"', '\\"')
        out = f'time="{ts}" level={level} msg="{msg}"'
        if record.exc_info:
            out += "\n" + self.formatException(record.exc_info)
        return out


def setup_logging(cfg: DaemonConfig) -> None:
    level = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
             "fatal": logging.CRITICAL}[cfg.log_level]
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter())
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if cfg.debug else logging.WARNING)


def _group_id(name: str) -> int | None:
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_listeners(cfg: DaemonConfig) -> list[tuple[str, socket.socket]]:
    """Bind every ``-H``; returns (address, listening socket)."""
    out: list[tuple[str, socket.socket]] = []
    for host in cfg.hosts:
        if host.startswith("unix://"):
            path = host[len("unix://"):] or "/var/run/dockyard.sock"
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
            gid = _group_id(cfg.group) if cfg.group else 0
            if gid is None:
                log.warning("group %s not found: the socket %s stays root:root (create the group to let its "
                            "members use the daemon without sudo)", cfg.group, path)
                gid = 0
            os.chown(path, 0, gid)
            os.chmod(path, 0o660)
            sock.listen(1024)
            out.append((host, sock))
        elif host.startswith("tcp://"):
            addr = host[len("tcp://"):]
            h, sep, port = addr.rpartition(":")
            if not sep:
                h, port = addr, "2375"
            h = h or "0.0.0.0"
            if not _is_loopback(h):
                if not cfg.allow_insecure_tcp:
                    raise InvalidArgument(
                        f"refusing to listen on {host} without TLS: anyone who can reach it gets root on this "
                        "host; listen on 127.0.0.1, or pass --allow-insecure-tcp if you really mean it")
                log.warning("API listening on %s without TLS: anyone who can reach it is root on this host", host)
            infos = socket.getaddrinfo(h.strip("[]"), int(port), type=socket.SOCK_STREAM)
            family, _, _, _, sockaddr = infos[0]
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(1024)
            out.append((host, sock))
        elif host.startswith("fd://"):
            count = int(os.environ.get("LISTEN_FDS", "0") or 0)
            if str(os.getpid()) != os.environ.get("LISTEN_PID", str(os.getpid())) or count == 0:
                raise InvalidArgument("fd://: no sockets passed by the service manager (LISTEN_FDS)")
            wanted = host[len("fd://"):]
            fds = range(3, 3 + count) if not wanted else [int(wanted)]
            for fd in fds:
                out.append((f"fd://{fd}", socket.socket(fileno=fd)))
        else:
            raise InvalidArgument(f"invalid host {host!r}: use unix://, tcp:// or fd://")
    return out


def _pidfile(path: str) -> None:
    try:
        with open(path) as f:
            old = int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        old = 0
    if old and old != os.getpid() and os.path.exists(f"/proc/{old}"):
        try:
            with open(f"/proc/{old}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            state = "Z"
        if state != "Z":
            raise InvalidArgument(f"pid file found, ensure dockyard is not running or delete {path}")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    from dockyard.atomic import atomic_write

    atomic_write(path, f"{os.getpid()}".encode(), durable=False)


async def serve(cfg: DaemonConfig, spawner: Any, listeners: list[tuple[str, socket.socket]]) -> int:
    from aiohttp import web

    from dockyard.api.app import build_app
    from dockyard.daemon.engine import Engine

    engine = Engine(cfg, spawner)
    await engine.start()
    app = build_app(engine)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    for _, sock in listeners:
        await web.SockSite(runner, sock).start()
    log.info("Daemon has completed initialization")
    log.info("API listen on %s", ", ".join(h for h, _ in listeners))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_hup() -> None:
        try:
            fresh = reload(engine.cfg)
        except DockyardError as exc:
            log.error("reload failed: %s", exc)
            return
        engine.reload(fresh)
        setup_logging(fresh)
        log.info("Reloaded configuration: %s", fresh.config_file)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    await stop.wait()
    log.info("Processing signal 'terminated'")
    for h in list(app["hijacked"]):
        h.close()
    await engine.shutdown()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(runner.cleanup(), SHUTDOWN_GRACE)
    log.info("Daemon shutdown complete")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg = parse_args(argv)
    except DockyardError as exc:
        print(f"dockyard daemon: {exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:
        return int(exc.code or 0)
    setup_logging(cfg)
    if os.geteuid() != 0:
        log.error("dockyard daemon needs to be started with root privileges")
        return 1
    for d in (cfg.data_root, cfg.exec_root):
        os.makedirs(d, mode=0o711, exist_ok=True)
    shutil.rmtree(os.path.join(cfg.data_root, "tmp"), ignore_errors=True)  # half-received uploads
    try:
        _pidfile(cfg.pidfile)
    except DockyardError as exc:
        log.error("%s", exc)
        return 1
    from dockyard.daemon.spawner import start_spawner

    spawner = start_spawner()
    listeners: list[tuple[str, socket.socket]] = []
    code = 1
    try:
        listeners = bind_listeners(cfg)
        code = asyncio.run(serve(cfg, spawner, listeners))
    except DockyardError as exc:
        log.error("%s", exc)
    except OSError as exc:
        log.error("failed to start the daemon: %s", exc)
    finally:
        for host, sock in listeners:
            sock.close()
            if host.startswith("unix://"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(host[len("unix://"):])
        spawner.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(cfg.pidfile)
    return code


__all__ = ["main"]
