"""Listening: one asyncio process, or ``http.workers`` forked processes sharing the port.

Workers are independent (``SO_REUSEPORT``; the kernel spreads connections): the storage layout
is the only shared state, and every change to it is an atomic rename, so no locks are needed.
An upload's chunks normally arrive on one keep-alive connection, hence one worker; if they do
not, the committing worker re-hashes the data from storage instead of using its running hash.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable

from aiohttp import web

from dockyard.errors import InvalidArgument
from dockyard.registry.app import make_app
from dockyard.registry.config import Config

__all__ = ["serve", "split_listen"]


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidArgument(f"invalid listen address {listen!r} (want HOST:PORT)")
    return host.strip("[]") or "0.0.0.0", int(port)


def _ssl_context(config: Config) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    if not config.tls_key:
        raise InvalidArgument("http.tls.certificate needs http.tls.key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot load TLS certificate/key: {exc}") from exc
    return ctx


async def _serve_one(config: Config, reuse_port: bool, announce: Callable[[str], None]) -> None:
    host, port = split_listen(config.listen)
    ctx = _ssl_context(config)
    access_log = None
    if config.access_log:
        access_log = logging.getLogger("dockyard.registry.access")
        if not access_log.handlers:
            access_log.addHandler(logging.StreamHandler(sys.stderr))
            access_log.setLevel(logging.INFO)
    runner = web.AppRunner(make_app(config), access_log=access_log, handle_signals=False,
                           access_log_format='%a "%r" %s %b %Tf "%{User-Agent}i"')
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ctx, reuse_port=reuse_port, backlog=1024)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[:2] if sockets else (host, port)
    announce(f"{'https' if ctx else 'http'}://{bound[0]}:{bound[1]}")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _announce(url: str) -> None:
    print(f"dockyard registry listening on {url}", flush=True)


def serve(config: Config, announce: Callable[[str], None] = _announce) -> None:
    """Serve until SIGTERM/SIGINT."""
    _ssl_context(config)  # fail early, before forking
    if config.workers <= 1:
        asyncio.run(_serve_one(config, False, announce))
        return
    if split_listen(config.listen)[1] == 0:
        raise InvalidArgument("http.workers > 1 needs a fixed port")
    children = []
    for index in range(config.workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                asyncio.run(_serve_one(config, True, announce if index == 0 else lambda _: None))
            except BaseException as exc:  # the child must never return into the parent's code
                print(f"dockyard registry worker: {exc}", file=sys.stderr)
                code = 1
            os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        os.waitpid(child, 0)
