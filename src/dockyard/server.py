"""The engine's composition root: the daemon's services under the Engine API, served.

``dockyard daemon`` (:func:`dockyard.daemon.main.main`) lands here. Order matters: parse the
config, start the spawner (a fresh single-threaded interpreter), bind the listeners, then run
the event loop. SIGTERM/SIGINT shut down cleanly (containers keep running: live restore is
always on); SIGHUP reloads daemon.json's reloadable keys.

This module sits above both ``daemon`` and ``api`` (tests/unit/test_layers.py): it is the only
place that knows both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
from typing import Any

from dockyard.daemon.config import DaemonConfig, parse_args, reload
from dockyard.daemon.main import bind_listeners, setup_logging, write_pidfile
from dockyard.errors import DockyardError

log = logging.getLogger("dockyard.daemon")
SHUTDOWN_GRACE = 10.0


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
        write_pidfile(cfg.pidfile)
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


__all__ = ["main", "serve"]
