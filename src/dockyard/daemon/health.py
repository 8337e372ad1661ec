"""Health checks (``HEALTHCHECK`` / ``--health-*``): the test runs as an exec in the container.

Status goes ``starting`` -> ``healthy`` / ``unhealthy`` (after ``Retries`` consecutive failures
once ``StartPeriod`` is over); the last five results are kept, and each change of status is a
``health_status: <status>`` event, as with Docker.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dockyard.daemon.records import Container, ExecRecord, now_rfc3339
from dockyard.daemon.streams import MonitorStream
from dockyard.errors import DockyardError


class HealthChecker:
    def __init__(self, svc: Any) -> None:
        self.svc = svc
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, c: Container) -> None:
        c.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
        self.tasks[c.id] = self.svc._spawn_task(self._loop(c))

    def stop(self, cid: str) -> None:
        task = self.tasks.pop(cid, None)
        if task is not None:
            task.cancel()

    async def _loop(self, c: Container) -> None:
        hc = c.config.get("Healthcheck") or {}
        test = list(hc.get("Test") or [])
        interval = (hc.get("Interval") or 30_000_000_000) / 1e9
        timeout = (hc.get("Timeout") or 30_000_000_000) / 1e9
        start_period = (hc.get("StartPeriod") or 0) / 1e9
        retries = int(hc.get("Retries") or 3)
        if test and test[0] == "CMD-SHELL":
            cmd = ["/bin/sh", "-c", " ".join(test[1:])]
        elif test and test[0] == "CMD":
            cmd = test[1:]
        else:
            return
        loop = asyncio.get_running_loop()
        began = loop.time()
        while c.state.running:
            await asyncio.sleep(interval)
            if not c.state.running or c.health is None:
                return
            start = now_rfc3339()
            output = b""
            code = -1
            rec = None
            try:
                rec = self.svc.exec_create(c.id, {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
                stream = await self.svc.exec_start(rec.id)
                code, output = await asyncio.wait_for(self._collect(rec, stream), timeout)
                stream.close()
            except TimeoutError:
                output = f"Health check exceeded timeout ({timeout:g}s)".encode()
            except DockyardError as exc:
                output = exc.message.encode()
            if rec is not None:  # probes are not listed as the container's execs (as in Docker)
                self.svc.forget_exec(rec.id)
            health = c.health
            health["Log"] = (health["Log"] + [{"Start": start, "End": now_rfc3339(), "ExitCode": code,
                                               "Output": output.decode(errors="replace")}])[-5:]
            old = health["Status"]
            if code == 0:
                health["Status"] = "healthy"
                health["FailingStreak"] = 0
            elif loop.time() - began > start_period:
                health["FailingStreak"] += 1
                if health["FailingStreak"] >= retries:
                    health["Status"] = "unhealthy"
            if health["Status"] != old:
                self.svc._event(c, f"health_status: {health['Status']}")
            self.svc._save(c)

    async def _collect(self, rec: ExecRecord, stream: MonitorStream) -> tuple[int, bytes]:
        output = b""
        code = 0
        async for kind, payload in stream.frames():
            if kind == 3:
                code = int(payload.get("code") or 0)
                self.svc.exec_finished(rec, payload)
            elif len(output) < 4096:
                output += payload
        return code, output


__all__ = ["HealthChecker"]
