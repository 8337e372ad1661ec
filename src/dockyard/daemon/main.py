"""``dockyard daemon``: the daemon side of start-up (logging, listeners, pid file) and the entry
point ``main(argv) -> int`` (also ``python -m dockyard.daemon``), which hands over to the
composition root :mod:`dockyard.server`.
"""

from __future__ import annotations

import contextlib
import grp
import ipaddress
import logging
import os
import socket
import sys

from dockyard.daemon.config import DaemonConfig
from dockyard.errors import InvalidArgument

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


def write_pidfile(path: str) -> None:
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


def main(argv: list[str] | None = None) -> int:
    """``dockyard daemon [flags]``: delegates to the composition root, :func:`dockyard.server.main`
    (the daemon package itself never imports the API that sits above it)."""
    from dockyard.server import main as run

    return run(argv)


__all__ = ["bind_listeners", "main", "setup_logging", "write_pidfile"]
