"""The container service: create, start, stop, wait, remove ... over monitors and the stores.

Every state change follows the same four steps: refresh -> check -> act -> save + event.
A container's process state lives in its monitor (the kernel's source of truth for us);
the record here is what we last learned, reconciled on restart (:meth:`restore`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import os
import re
import shutil
import signal as signals
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from dockyard.daemon import mounts as mountlib
from dockyard.daemon.config import DaemonConfig
from dockyard.daemon.events import EventBus
from dockyard.daemon.extras import ContainerExtras
from dockyard.daemon.filters import matches
from dockyard.daemon.health import HealthChecker
from dockyard.daemon.logs import LogLine, follow, parse_time, read_lines
from dockyard.daemon.monitor_client import MonitorClient
from dockyard.daemon.names import generate_name
from dockyard.daemon.records import ZERO_TIME, Container, ExecRecord, RecordStore, now_rfc3339
from dockyard.daemon.spawner import Spawner
from dockyard.daemon.spec import SpecInputs, build_spec, exec_process
from dockyard.daemon.streams import MonitorStream
from dockyard.errors import (
    Conflict,
    ContainerNotFound,
    DockyardError,
    Internal,
    InvalidArgument,
    NotFound,
    NotModified,
    Unavailable,
)
from dockyard.shim.logfile import parse_size
from dockyard.volumes import VolumeStore

log = logging.getLogger("dockyard.daemon")
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
# Debian's tini (package `tini`, installed by the Makefile) is the reaper Docker itself ships as
# docker-init; the static build works in any image.
INIT_CANDIDATES = ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/libexec/docker/docker-init")


def parse_signal(value: str | int | None, default: int = signals.SIGKILL) -> int:
    if value is None or value == "":
        return default
    text = str(value).upper()
    if text.isdigit():
        num = int(text)
        if num <= 0 or num > 64:
            raise InvalidArgument(f"Invalid signal: {value}")
        return num
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signals.Signals[text])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {value}") from None


class ContainerService(ContainerExtras):
    def __init__(self, cfg: DaemonConfig, spawner: Spawner, images: Any, volumes: VolumeStore,
                 events: EventBus) -> None:
        self.cfg = cfg
        self.spawner = spawner
        self.images = images
        self.volumes = volumes
        self.events = events
        self.records = RecordStore(cfg.data_root, cfg.exec_root)
        self.containers: dict[str, Container] = {}
        self.names: dict[str, str] = {}
        self.monitors: dict[str, MonitorClient] = {}
        self.execs: dict[str, ExecRecord] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.pending_attach: dict[str, list[MonitorStream]] = {}
        self.exit_waiters: dict[str, list[asyncio.Future[Container]]] = {}
        self.remove_waiters: dict[str, list[asyncio.Future[Container]]] = {}
        self.created_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        # id -> force, while a remove is in progress; an in-flight start of a container being
        # force-removed gives up at its next step (see _start_inner) instead of racing it
        self.removing: dict[str, bool] = {}
        self.exiting: dict[str, asyncio.Event] = {}     # set once an exit is fully recorded
        self.tasks: set[asyncio.Task[Any]] = set()
        self.health = HealthChecker(self)
        self.network: Any = None

    # ---- lookup ---------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        c = self.find(ref)
        if c is None:
            raise ContainerNotFound(ref)
        return c

    def find(self, ref: str) -> Container | None:
        if ref in self.containers:
            return self.containers[ref]
        cid = self.names.get(ref.lstrip("/"))
        if cid is not None:
            return self.containers[cid]
        if ref and re.fullmatch(r"[0-9a-f]+", ref):
            matches = [c for cid, c in self.containers.items() if cid.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        return None

    def _lock(self, cid: str) -> asyncio.Lock:
        return self.locks.setdefault(cid, asyncio.Lock())

    def _spawn_task(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _event(self, c: Container, action: str, **attrs: str) -> None:
        self.events.publish("container", action, c.id, image=c.config.get("Image", ""), name=c.name, **attrs)

    def _save(self, c: Container, durable: bool = False) -> None:
        self.records.save(c, durable=durable)

    # ---- create ---------------------------------------------------------------------
    async def create(self, name: str | None, body: dict[str, Any], platform: str = "") -> tuple[Container, list[str]]:
        if self.images is None:
            raise Internal("the image store is not available")
        config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        host_config = dict(body.get("HostConfig") or {})
        image_ref = config.get("Image")
        if not image_ref or not isinstance(image_ref, str):
            raise InvalidArgument("No command specified" if not image_ref else "invalid image reference")
        if name is not None and name != "":
            if not NAME_RE.match(name):
                raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            name = name.lstrip("/")
            if name in self.names:
                other = self.names[name]
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                               f'"{other}". You have to remove (or rename) that container to be able to reuse that name.')
        else:
            name = generate_name(set(self.names))
        img = await asyncio.to_thread(self.images.resolve, image_ref)
        merged = self._merge_image_config(config, img.config.get("config") or {})
        if not (merged.get("Entrypoint") or merged.get("Cmd")):
            raise InvalidArgument("No command specified")
        self._check_host_config(host_config)
        runtime = host_config.get("Runtime") or self.cfg.default_runtime
        self.cfg.runtime(runtime)
        host_config["Runtime"] = runtime
        log_cfg = host_config.get("LogConfig") or {}
        if not log_cfg.get("Type"):
            host_config["LogConfig"] = {"Type": self.cfg.log_driver, "Config": dict(log_cfg.get("Config") or {})}
        elif log_cfg["Type"] not in ("json-file", "none"):
            raise InvalidArgument(f"logging driver {log_cfg['Type']!r} is not supported (json-file, none)")
        host_config.setdefault("NetworkMode", "default")
        host_config.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
        if not host_config.get("ShmSize"):
            host_config["ShmSize"] = self.cfg.default_shm_size
        cid = os.urandom(32).hex()
        if self.network is not None:  # network engineer's hook: --network exists, keep aliases/--ip
            await self.network.on_create(cid, host_config, body.get("NetworkingConfig"))
        if not merged.get("Hostname"):
            merged["Hostname"] = cid[:12]
        warnings: list[str] = []
        os.makedirs(self.records.dir(cid), mode=0o710)
        try:
            points = await asyncio.to_thread(mountlib.resolve, host_config, merged, self.volumes, self._mounts_of)
            rootfs = await asyncio.to_thread(self.images.prepare_rootfs, cid, img.id)
        except BaseException:
            shutil.rmtree(self.records.dir(cid), ignore_errors=True)
            raise
        entry = list(merged.get("Entrypoint") or []) + list(merged.get("Cmd") or [])
        c = Container(id=cid, name=name, created=now_rfc3339(), image_id=img.id, config=merged,
                      host_config=host_config, path=entry[0], args=entry[1:], runtime=runtime,
                      driver=str(getattr(rootfs, "driver", "overlay2") or "overlay2"), mount_points=points,
                      graph_driver=_graph_data(rootfs))
        if self.network is not None and hasattr(self.network, "adopt"):
            self.network.adopt(c)  # inspect lists its networks from now on
        self._save(c, durable=True)
        self.containers[cid] = c
        self.names[name] = cid
        self._event(c, "create")
        return c, warnings

    @staticmethod
    def _merge_image_config(config: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
        merged = dict(config)
        if not merged.get("Entrypoint") and merged.get("Entrypoint") != [""]:
            merged["Entrypoint"] = image.get("Entrypoint")
            if not merged.get("Cmd"):
                merged["Cmd"] = image.get("Cmd")
        elif merged.get("Entrypoint") == [""]:
            merged["Entrypoint"] = None
        env = list(image.get("Env") or [])
        for item in merged.get("Env") or []:
            key = str(item).split("=", 1)[0]
            env = [e for e in env if e.split("=", 1)[0] != key]
            env.append(str(item))
        merged["Env"] = env or None
        for key in ("WorkingDir", "User", "StopSignal", "Healthcheck", "Shell"):
            if not merged.get(key) and image.get(key):
                merged[key] = image[key]
        vols = dict(image.get("Volumes") or {})
        vols.update(merged.get("Volumes") or {})
        merged["Volumes"] = vols or None
        labels = dict(image.get("Labels") or {})
        labels.update(merged.get("Labels") or {})
        merged["Labels"] = labels
        if image.get("ExposedPorts") or merged.get("ExposedPorts"):
            ports = dict(image.get("ExposedPorts") or {})
            ports.update(merged.get("ExposedPorts") or {})
            merged["ExposedPorts"] = ports
        return merged

    @staticmethod
    def _check_host_config(hc: dict[str, Any]) -> None:
        policy = hc.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if name not in ("no", "always", "unless-stopped", "on-failure"):
            raise InvalidArgument(f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")
        if name != "on-failure" and policy.get("MaximumRetryCount"):
            raise InvalidArgument("invalid restart policy: maximum retry count can only be used with 'on-failure'")
        if hc.get("AutoRemove") and name not in ("no", ""):
            raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
        for key in ("Memory", "MemorySwap", "CpuShares", "NanoCpus", "CpuQuota", "CpuPeriod", "ShmSize"):
            value = hc.get(key)
            if value is not None and not isinstance(value, int):
                raise InvalidArgument(f"json: cannot unmarshal {type(value).__name__} into Go struct field HostConfig.{key} of type int64")
        if hc.get("Memory") and 0 < hc["Memory"] < 6 * 1024 * 1024:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        # --network container:<id> is served by the network service (network engineer)

    def _mounts_of(self, ref: str) -> list[dict[str, Any]]:
        return [dict(mp) for mp in self.get(ref).mount_points]

    # ---- start ----------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        c = self.get(ref)
        async with self._lock(c.id):
            if c.state.status == "paused":
                raise Conflict("cannot start a paused container, try unpause instead")
            if c.state.running:
                raise NotModified("container already started")
            if c.state.status in ("removing", "dead"):
                raise Conflict("container is marked for removal and cannot be started")
            c.manually_stopped = False
            await self._start(c)

    def _runtime_spec(self, c: Container) -> dict[str, Any]:
        rt = self.cfg.runtime(c.runtime)
        return {"name": rt.name, "path": rt.path, "args": list(rt.args),
                "root": os.path.join(self.cfg.exec_root, "runtime", rt.name)}

    async def _start(self, c: Container) -> None:
        try:
            await self._start_inner(c)
        except Exception as exc:
            message = exc.message if isinstance(exc, DockyardError) else str(exc) or type(exc).__name__
            # a monitor spawned by this attempt may hold a created init waiting on its exec
            # fifo: kill it and let the monitor delete it (cgroup, runtime state) before going on
            await self._abandon_monitor(c.id)
            c.state.error = message
            c.state.exit_code = 127 if "not found" in message or "no such file" in message else 126 \
                if "permission denied" in message else 128
            c.state.status = "exited" if c.has_been_started else "created"
            self._save(c)
            for stream in self.pending_attach.pop(c.id, []):
                stream.fail(message)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.images.unmount_rootfs, c.id)
            if self.network is not None:  # network engineer's hook: undo sandbox_for
                with contextlib.suppress(Exception):
                    await self.network.release(c)
            for fut in self.exit_waiters.pop(c.id, []):
                if not fut.done():
                    fut.set_result(c)
            if c.host_config.get("AutoRemove"):
                self._spawn_task(self._remove_quietly(c.id))
            raise

    async def _abandon_monitor(self, cid: str) -> None:
        """Kill the init of a start that failed or was cancelled (it may still wait on its exec
        fifo) and wait for its monitor to delete the container and exit. Its exit event is not
        handled as a container exit: the caller undoes the start itself."""
        self.created_waiters.pop(cid, None)
        client = self.monitors.pop(cid, None)
        if client is None:
            return
        client.on_event = lambda ev: None
        with contextlib.suppress(DockyardError, TimeoutError):
            await asyncio.wait_for(client.request("kill", signal=signals.SIGKILL), 5)
        try:
            await asyncio.wait_for(client.closed.wait(), 15)
        except TimeoutError:
            log.warning("the monitor of %s did not exit after its start was abandoned", cid[:12])
        client.close()
        self.records.clear_exit(cid)

    def _check_not_removed(self, c: Container) -> None:
        """A step of a start: give up if a forced remove is waiting for this container."""
        if self.removing.get(c.id):
            raise Conflict("container is marked for removal and cannot be started")

    async def _remove_quietly(self, cid: str) -> None:
        with contextlib.suppress(DockyardError):
            await self.remove(cid, force=True, volumes=True)

    async def _start_inner(self, c: Container) -> None:
        exec_dir = self.records.exec_dir(c.id)
        await self._exit_handled(c.id)   # the last run's rootfs unmount and network release
        os.makedirs(exec_dir, mode=0o700, exist_ok=True)
        self.records.clear_exit(c.id)
        self._check_not_removed(c)
        rootfs = await asyncio.to_thread(self.images.mount_rootfs, c.id)
        await asyncio.to_thread(self._write_etc, c)
        await asyncio.to_thread(mountlib.copy_up, c.mount_points, rootfs)
        netns = None
        if self.network is not None and hasattr(self.network, "sandbox_for"):
            netns = await self.network.sandbox_for(c)
        self._check_not_removed(c)
        spec = build_spec(SpecInputs(
            cid=c.id, config=c.config, host_config=c.host_config, rootfs=rootfs,
            container_dir=self.records.dir(c.id), mounts=mountlib.oci_mounts(c.mount_points), netns=netns,
            host_caps=_host_caps(), seccomp=self._seccomp(c), shm_size=int(c.host_config.get("ShmSize") or 0)
            or self.cfg.default_shm_size, init_path=self._init_path(c)))
        with open(os.path.join(exec_dir, "config.json"), "w") as f:
            json.dump(spec, f)
        opts = (c.host_config.get("LogConfig") or {}).get("Config") or {}
        log_cfg: dict[str, Any] = {}
        if (c.host_config.get("LogConfig") or {}).get("Type", "json-file") == "json-file":
            log_cfg = {"path": self.records.log_path(c.id),
                       "max_size": parse_size(opts.get("max-size") or self.cfg.log_opts.get("max-size"), 0),
                       "max_file": int(opts.get("max-file") or self.cfg.log_opts.get("max-file") or 1)}
        mon_cfg = {"id": c.id, "bundle": exec_dir, "state_dir": exec_dir, "record_dir": self.records.dir(c.id),
                   "runtime": self._runtime_spec(c), "tty": bool(c.config.get("Tty")),
                   "open_stdin": bool(c.config.get("OpenStdin")), "stdin_once": bool(c.config.get("StdinOnce")),
                   "log": log_cfg, "console_size": c.host_config.get("ConsoleSize") or [0, 0]}
        created: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.created_waiters[c.id] = created
        sock = self.spawner.spawn(mon_cfg)
        client = await MonitorClient.from_socket(sock, self._event_handler(c.id))
        self.monitors[c.id] = client
        waiter: asyncio.Future[Any] = asyncio.ensure_future(client.closed.wait())
        done, _ = await asyncio.wait([created, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if created not in done:
            self.monitors.pop(c.id, None)
            raise Internal("the container's monitor exited before creating it")
        ev = created.result()
        if ev.get("event") == "error":
            self.monitors.pop(c.id, None)
            client.close()
            message = str(ev.get("error"))
            exc_type = InvalidArgument if ("not found" in message or "no such file" in message.lower()) else Internal
            raise exc_type(f"OCI runtime create failed: {message}: unknown")
        self._check_not_removed(c)
        sock_path = os.path.join(exec_dir, "monitor.sock")
        pending = self.pending_attach.pop(c.id, [])
        await asyncio.gather(*(s.connect(sock_path) for s in pending))
        reply = await client.request("start")
        c.state.status = "running"
        c.state.pid = int(reply.get("pid") or ev.get("pid") or 0)
        c.state.started_at = str(reply.get("started_at") or now_rfc3339())
        c.state.finished_at = ZERO_TIME if not c.has_been_started else c.state.finished_at
        c.state.error = ""
        c.state.exit_code = 0
        c.state.oom_killed = False
        c.has_been_started = True
        self._save(c)
        self._event(c, "start")
        if (c.config.get("Healthcheck") or {}).get("Test") not in (None, [], ["NONE"]):
            self.health.start(c)

    def _init_path(self, c: Container) -> str | None:
        if not c.host_config.get("Init"):
            return None
        for path in INIT_CANDIDATES:
            if os.path.exists(path):
                return os.path.realpath(path)
        raise InvalidArgument("--init: no docker-init (tini) binary found on this host")

    def _seccomp(self, c: Container) -> dict[str, Any] | None:
        opts = [str(o) for o in c.host_config.get("SecurityOpt") or []]
        if self.cfg.seccomp_profile == "unconfined" or any(o.replace("=", ":") == "seccomp:unconfined" for o in opts):
            return None
        try:
            from dockyard.linux import seccomp

            caps = _host_caps()
            return seccomp.default_profile(caps)
        except Exception:
            return None

    def _write_etc(self, c: Container) -> None:
        d = self.records.dir(c.id)
        host_mode = c.host_config.get("NetworkMode") == "host"
        hostname = str(c.config.get("Hostname") or c.id[:12])
        with open(os.path.join(d, "hostname"), "w") as f:
            f.write((socket.gethostname() if host_mode else hostname) + "\n")
        if host_mode:
            shutil.copyfile("/etc/hosts", os.path.join(d, "hosts"))
        else:
            lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                     "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
                     "ff02::2\tip6-allrouters"]
            for extra in c.host_config.get("ExtraHosts") or []:
                host, _, ip = str(extra).partition(":")
                lines.append(f"{ip}\t{host}")
            with open(os.path.join(d, "hosts"), "w") as f:
                f.write("\n".join(lines) + "\n")
        dns = c.host_config.get("Dns") or []
        try:
            with open("/etc/resolv.conf") as f:
                host_resolv = f.read()
        except OSError:
            host_resolv = ""
        if dns or c.host_config.get("DnsSearch") or c.host_config.get("DnsOptions"):
            out = [f"nameserver {n}" for n in dns]
            if c.host_config.get("DnsSearch"):
                out.append("search " + " ".join(c.host_config["DnsSearch"]))
            if c.host_config.get("DnsOptions"):
                out.append("options " + " ".join(c.host_config["DnsOptions"]))
            host_resolv = "\n".join(out) + "\n"
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write(host_resolv)

    # ---- monitor events -------------------------------------------------------------
    def _event_handler(self, cid: str) -> Callable[[dict[str, Any]], None]:
        return lambda ev: self._on_monitor_event(cid, ev)

    def _on_monitor_event(self, cid: str, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind in ("created", "error"):
            fut = self.created_waiters.pop(cid, None)
            if fut is not None and not fut.done():
                fut.set_result(ev)
        elif kind == "exit":
            self._spawn_task(self._handle_exit(cid, ev))
        elif kind == "exec-started":
            started = self.execs.get(str(ev.get("exec_id")))
            if started is not None:
                started.pid = int(ev.get("pid") or 0)
        elif kind == "exec-exit":
            rec = self.execs.get(str(ev.get("exec_id")))
            if rec is not None:
                rec.running = False
                rec.exit_code = int(ev.get("code") or 0)
                c = self.containers.get(rec.container_id)
                if c is not None:
                    self.events.publish("container", "exec_die", c.id, execID=rec.id, exitCode=str(rec.exit_code),
                                        image=c.config.get("Image", ""), name=c.name)

    async def _handle_exit(self, cid: str, ev: dict[str, Any]) -> None:
        c = self.containers.get(cid)
        if c is None:
            return
        client = self.monitors.pop(cid, None)
        if client is not None:
            client.close()
        # wait(not-running) answers from here on; remove and start wait for `handled` first, so
        # that neither removes the records nor mounts the rootfs while this still works on them
        handled = self.exiting[cid] = asyncio.Event()
        try:
            restart = await self._record_exit(c, ev)
        finally:
            handled.set()
            if self.exiting.get(cid) is handled:
                del self.exiting[cid]
        if c.host_config.get("AutoRemove"):
            with contextlib.suppress(DockyardError):
                await self.remove(cid, force=True, volumes=True)
        elif restart:
            self._spawn_task(self._restart_later(c))

    async def _record_exit(self, c: Container, ev: dict[str, Any]) -> bool:
        """The container's exit: state, rootfs unmounted, network released, "die" published,
        waiters answered. Returns whether its restart policy restarts it."""
        self.health.stop(c.id)
        c.state.status = "exited"
        c.state.pid = 0
        c.state.exit_code = int(ev.get("code") or 0)
        c.state.oom_killed = bool(ev.get("oom"))
        c.state.finished_at = str(ev.get("finished_at") or now_rfc3339())
        for rec in self.execs.values():
            if rec.container_id == c.id and rec.running:
                rec.running = False
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.images.unmount_rootfs, c.id)
        if self.network is not None and hasattr(self.network, "release"):
            with contextlib.suppress(Exception):
                await self.network.release(c)
        if c.state.oom_killed:
            self._event(c, "oom")
        restart = self._should_restart(c)
        if restart:
            c.state.status = "restarting"
        self._save(c)
        self._event(c, "die", exitCode=str(c.state.exit_code))
        for fut in self.exit_waiters.pop(c.id, []):
            if not fut.done():
                fut.set_result(c)
        return restart

    async def _exit_handled(self, cid: str) -> None:
        """Wait until an exit being recorded (:meth:`_record_exit`) is done."""
        handled = self.exiting.get(cid)
        if handled is not None:
            await handled.wait()

    def _should_restart(self, c: Container) -> bool:
        policy = c.host_config.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if c.manually_stopped or name == "no":
            return False
        if name == "on-failure":
            limit = int(policy.get("MaximumRetryCount") or 0)
            return c.state.exit_code != 0 and (limit == 0 or c.restart_count < limit)
        return name in ("always", "unless-stopped")

    async def _restart_later(self, c: Container) -> None:
        delay = min(0.1 * (2 ** min(c.restart_count, 10)), 60.0)
        await asyncio.sleep(delay)
        if c.id not in self.containers or c.manually_stopped or c.state.status != "restarting":
            return
        c.restart_count += 1
        async with self._lock(c.id):
            try:
                await self._start(c)
            except DockyardError as exc:
                log.warning("restart of %s failed: %s", c.id[:12], exc)
                if self._should_restart(c) and c.restart_count < 100:
                    c.state.status = "restarting"
                    self._save(c)
                    self._spawn_task(self._restart_later(c))
                else:
                    c.state.status = "exited"
                    self._save(c)

    # ---- wait / stop / kill ---------------------------------------------------------
    async def wait(self, ref: str, condition: str = "not-running") -> Container:
        c = self.get(ref)
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        loop = asyncio.get_running_loop()
        if condition == "removed":
            fut: asyncio.Future[Container] = loop.create_future()
            self.remove_waiters.setdefault(c.id, []).append(fut)
            return await fut
        if condition in ("not-running", "") and not c.state.running and c.state.status != "restarting":
            return c
        fut = loop.create_future()
        self.exit_waiters.setdefault(c.id, []).append(fut)
        return await fut

    async def kill(self, ref: str, sig: str | int | None = None) -> None:
        c = self.get(ref)
        signum = parse_signal(sig)
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        if signum in (signals.SIGKILL, signals.SIGTERM):
            c.manually_stopped = True
            self._save(c)
        client = self.monitors.get(c.id)
        if client is None:
            raise Conflict(f"Container {c.id} is not running")
        try:
            await client.request("kill", signal=signum)
        except Unavailable:
            raise Conflict(f"Container {c.id} is not running") from None
        if c.state.status == "paused" and signum == signals.SIGKILL:
            with contextlib.suppress(DockyardError):
                await client.request("resume")
        self._event(c, "kill", signal=str(signum))

    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        if c.state.status == "restarting":
            c.manually_stopped = True
            c.state.status = "exited"
            self._save(c)
            return
        if not c.state.running:
            raise NotModified("container already stopped")
        c.manually_stopped = True
        self._save(c)
        signum = parse_signal(sig or c.config.get("StopSignal"), signals.SIGTERM)
        if timeout is None:
            timeout = int(c.config.get("StopTimeout") or 10)
        waiter = asyncio.ensure_future(self.wait(c.id, "next-exit"))
        try:
            client = self.monitors.get(c.id)
            if client is None:
                raise Conflict(f"Container {c.id} is not running")
            # Conflict/Unavailable here mean it is already exiting: the exit event still comes
            if c.state.status == "paused":
                with contextlib.suppress(Conflict, Unavailable):
                    await client.request("resume")
            with contextlib.suppress(Conflict, Unavailable):
                await client.request("kill", signal=signum)
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout if timeout >= 0 else None)
            except TimeoutError:
                with contextlib.suppress(Conflict, Unavailable):
                    await client.request("kill", signal=signals.SIGKILL, all=False)
                await waiter
        finally:
            waiter.cancel()
        self._event(c, "stop")

    async def restart(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        if c.state.running:
            await self.stop(c.id, timeout, sig)
        async with self._lock(c.id):
            c.manually_stopped = False
            if not c.state.running:
                await self._start(c)
        self._event(c, "restart")

    # ---- remove ---------------------------------------------------------------------
    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        """Remove a container; ``force`` kills it first. Holds the container's lock: a start in
        flight (monitor spawned, init waiting on its exec fifo) finishes or, for a forced
        remove, gives up and deletes what it made before anything is removed here."""
        c = self.get(ref)
        # in memory only: a record saved as "removing" is a removal a daemon restart cut short
        if c.id in self.removing:
            raise Conflict(f"removal of container {c.id} is already in progress")
        self.removing[c.id] = force
        try:
            async with self._lock(c.id):
                if self.containers.get(c.id) is not c:
                    raise ContainerNotFound(ref)
                await self._remove_locked(c, force=force, volumes=volumes)
        finally:
            self.removing.pop(c.id, None)

    async def _remove_locked(self, c: Container, *, force: bool, volumes: bool) -> None:
        if c.state.running or c.state.status == "restarting":
            if not force:
                raise Conflict(f"You cannot remove a {'paused' if c.state.status == 'paused' else 'running'} "
                               f"container {c.id}. Stop the container before attempting removal or force remove")
            c.manually_stopped = True
            if c.state.running and c.id in self.monitors:
                waiter = asyncio.ensure_future(self.wait(c.id, "next-exit"))
                with contextlib.suppress(DockyardError):
                    await self.kill(c.id, signals.SIGKILL)
                try:
                    await asyncio.wait_for(waiter, 10)
                except TimeoutError:
                    raise Internal(f"could not kill running container {c.id}, cannot remove") from None
        await self._exit_handled(c.id)   # its "die" comes before "destroy", its records stay till then
        c.state.status = "removing"
        self._save(c)
        try:
            await asyncio.to_thread(self.images.remove_rootfs, c.id)
        except NotFound:
            pass
        if volumes:
            for mp in c.mount_points:
                if (mp["Type"] == "volume" and mp.get("Name") and _is_anonymous(mp["Name"])
                        and not self.volume_users(mp["Name"], exclude=c.id)):
                    with contextlib.suppress(DockyardError):
                        self.volumes.remove(mp["Name"])
        shutil.rmtree(self.records.dir(c.id), ignore_errors=True)
        shutil.rmtree(self.records.exec_dir(c.id), ignore_errors=True)
        self.containers.pop(c.id, None)
        if self.names.get(c.name) == c.id:
            del self.names[c.name]
        self.locks.pop(c.id, None)
        for eid in c.exec_ids:
            self.execs.pop(eid, None)
        self._event(c, "destroy")
        for fut in self.remove_waiters.pop(c.id, []) + self.exit_waiters.pop(c.id, []):
            if not fut.done():
                fut.set_result(c)

    def volume_users(self, name: str, exclude: str = "") -> list[str]:
        return [c.id for c in self.containers.values() if c.id != exclude
                and any(mp.get("Name") == name for mp in c.mount_points)]

    # ---- attach / logs --------------------------------------------------------------
    async def attach(self, ref: str, *, stdin: bool, stdout: bool, stderr: bool) -> tuple[Container, MonitorStream]:
        c = self.get(ref)
        if c.state.status == "paused":
            raise Conflict("You cannot attach to a paused container, unpause it first")
        stdin = stdin and bool(c.config.get("OpenStdin"))
        stream = MonitorStream({"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr},
                               bool(c.config.get("Tty")))
        if c.state.status == "running" and c.id in self.monitors:
            await stream.connect(os.path.join(self.records.exec_dir(c.id), "monitor.sock"))
        elif c.state.status in ("created", "exited", "restarting"):
            self.pending_attach.setdefault(c.id, []).append(stream)
        else:
            raise Conflict("You cannot attach to a stopped container, start it first")
        return c, stream

    async def resize(self, ref: str, h: int, w: int) -> None:
        c = self.get(ref)
        client = self.monitors.get(c.id)
        if not c.state.running or client is None:
            raise Conflict(f"Container {c.id} is not running")
        await client.request("resize", h=h, w=w)

    async def logs(self, ref: str, *, follow_: bool, stdout: bool, stderr: bool, since: float, until: float,
                   tail: int | None) -> tuple[Container, AsyncIterator[LogLine]]:
        c = self.get(ref)
        if (c.host_config.get("LogConfig") or {}).get("Type") == "none":
            raise InvalidArgument('configured logging driver does not support reading')
        path = self.records.log_path(c.id)
        # decided before the first read: a container that exits right after it (docker-py's
        # run: logs(follow) then wait) still has its last lines read by follow()
        following = follow_ and (c.state.running or c.state.status == "restarting")
        lines, offset = await asyncio.to_thread(read_lines, path, tail=tail, since=since, until=until)
        want = {s for s, ok in (("stdout", stdout), ("stderr", stderr)) if ok}

        async def gen() -> AsyncIterator[LogLine]:
            for line in lines:
                if line.stream in want:
                    yield line
            if following:
                async for line in follow(path, offset, until, lambda: not (c.state.running or c.state.status == "restarting")
                                         or c.id not in self.containers):
                    if line.stream in want and (not since or line.ts >= since):
                        yield line
        return c, gen()

    # ---- pause / update / rename / top ----------------------------------------------
    async def _client(self, c: Container) -> MonitorClient:
        client = self.monitors.get(c.id)
        if not c.state.running or client is None:
            raise Conflict(f"Container {c.id} is not running")
        return client

    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        if c.state.status == "paused":
            raise Conflict(f"Container {c.id} is already paused")
        await (await self._client(c)).request("pause")
        c.state.status = "paused"
        self._save(c)
        self._event(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        if c.state.status != "paused":
            raise Conflict(f"Container {c.id} is not paused")
        await (await self._client(c)).request("resume")
        c.state.status = "running"
        self._save(c)
        self._event(c, "unpause")

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        c = self.get(ref)
        allowed = ("CpuShares", "Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuQuota", "CpuPeriod",
                   "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight", "RestartPolicy", "KernelMemory")
        changes = {k: v for k, v in body.items() if k in allowed and v not in (None, "")}
        hc = dict(c.host_config)
        hc.update(changes)
        self._check_host_config(hc)
        if c.state.running and any(k != "RestartPolicy" for k in changes):
            from dockyard.daemon.spec import _resources

            res = _resources(hc)
            res.pop("devices", None)
            await (await self._client(c)).request("update", resources=res)
        c.host_config = hc
        self._save(c)
        self._event(c, "update")
        return []

    async def rename(self, ref: str, new: str) -> None:
        c = self.get(ref)
        if not new or not NAME_RE.match(new):
            raise InvalidArgument(f"Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        new = new.lstrip("/")
        if new == c.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        if new in self.names:
            raise Conflict(f'Conflict. The container name "/{new}" is already in use by container "{self.names[new]}". '
                           "You have to remove (or rename) that container to be able to reuse that name.")
        old = c.name
        del self.names[old]
        c.name = new
        self.names[new] = c.id
        self._save(c)
        self._event(c, "rename", oldName="/" + old)

    async def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        c = self.get(ref)
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        pids = set((await (await self._client(c)).request("ps")).get("pids") or [])
        argv = ["ps", *(ps_args.split() if ps_args else ["-ef"])]
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise InvalidArgument(f"ps: {err.decode(errors='replace').strip()}")
        lines = out.decode(errors="replace").splitlines()
        titles = lines[0].split()
        try:
            pid_col = titles.index("PID")
        except ValueError:
            raise InvalidArgument("Couldn't find PID field in ps output") from None
        procs = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in pids:
                procs.append(fields)
        return {"Titles": titles, "Processes": procs}

    def cgroup_path(self, c: Container) -> str:
        return f"{c.host_config.get('CgroupParent') or '/dockyard'}/{c.id}"

    # ---- exec -----------------------------------------------------------------------
    def exec_create(self, ref: str, body: dict[str, Any]) -> ExecRecord:
        c = self.get(ref)
        if c.state.status == "paused":
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        if not body.get("Cmd"):
            raise InvalidArgument("No exec command specified")
        rec = ExecRecord(os.urandom(32).hex(), c.id, dict(body))
        self.execs[rec.id] = rec
        c.exec_ids.append(rec.id)
        self.events.publish("container", "exec_create: " + " ".join(map(str, body["Cmd"])), c.id,
                            execID=rec.id, image=c.config.get("Image", ""), name=c.name)
        return rec

    def forget_exec(self, exec_id: str) -> None:
        rec = self.execs.pop(exec_id, None)
        if rec is not None:
            c = self.containers.get(rec.container_id)
            if c is not None and exec_id in c.exec_ids:
                c.exec_ids.remove(exec_id)

    def exec_get(self, exec_id: str) -> ExecRecord:
        rec = self.execs.get(exec_id)
        if rec is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return rec

    async def exec_start(self, exec_id: str, *, tty: bool | None = None, detach: bool = False) -> MonitorStream:
        rec = self.exec_get(exec_id)
        if rec.started:
            raise Conflict(f"Error: Exec command {exec_id} has already run")
        c = self.get(rec.container_id)
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        rec.started = True
        rec.running = True
        use_tty = bool(rec.config.get("Tty") if tty is None else tty)
        exec_dir = self.records.exec_dir(c.id)
        with open(os.path.join(exec_dir, "config.json")) as f:
            base = json.load(f)
        process = exec_process(base["process"], rec.config, base["root"]["path"])
        process["terminal"] = use_tty
        header = {"op": "exec", "exec_id": rec.id, "process": process, "tty": use_tty,
                  "stdin": bool(rec.config.get("AttachStdin")) and not detach,
                  "stdout": bool(rec.config.get("AttachStdout", True)) or detach,
                  "stderr": bool(rec.config.get("AttachStderr", True)) or detach}
        stream = MonitorStream(header, use_tty)
        await stream.connect(os.path.join(exec_dir, "monitor.sock"))
        if stream.failed:
            rec.running = False
            raise Conflict(f"Container {c.id} is not running")
        self.events.publish("container", "exec_start: " + " ".join(map(str, rec.config.get("Cmd") or [])), c.id,
                            execID=rec.id, image=c.config.get("Image", ""), name=c.name)
        if detach:
            self._spawn_task(self._drain_exec(rec, stream))
        return stream

    async def _drain_exec(self, rec: ExecRecord, stream: MonitorStream) -> None:
        async for kind, payload in stream.frames():
            if kind == 3:
                self.exec_finished(rec, payload)
        stream.close()

    def exec_finished(self, rec: ExecRecord, result: dict[str, Any]) -> None:
        rec.running = False
        rec.exit_code = int(result.get("code") or 0)

    async def exec_resize(self, exec_id: str, h: int, w: int) -> None:
        rec = self.exec_get(exec_id)
        client = self.monitors.get(rec.container_id)
        if client is None or not rec.running:
            raise Conflict(f"Exec {exec_id} is not running")
        await client.request("resize", h=h, w=w, exec_id=exec_id)

    # ---- restore after a daemon restart ----------------------------------------------
    async def restore(self) -> None:
        for c in self.records.load_all():
            self.containers[c.id] = c
            self.names[c.name] = c.id
        to_restart: list[Container] = []
        for c in list(self.containers.values()):
            if c.state.status == "removing":
                with contextlib.suppress(DockyardError):
                    await self.remove(c.id, force=True)
                continue
            if c.state.status == "created":
                await self._abandon_half_started(c)
                continue
            if c.state.status not in ("running", "paused", "restarting"):
                continue
            sock_path = os.path.join(self.records.exec_dir(c.id), "monitor.sock")
            state: dict[str, Any] | None = None
            if os.path.exists(sock_path):
                try:
                    client = await MonitorClient.connect(sock_path, self._event_handler(c.id))
                    state = await asyncio.wait_for(client.request("state"), 5)
                    if state.get("running"):
                        self.monitors[c.id] = client
                        c.state.pid = int(state.get("pid") or c.state.pid)
                        log.info("restored running container %s", c.id[:12])
                        if c.health is not None:
                            self.health.start(c)
                        continue
                    client.close()
                except (OSError, DockyardError, TimeoutError):
                    state = None
            record = (state or {}).get("exit") or self.records.read_exit(c.id)
            if record is None:
                record = {"code": 255, "finished_at": now_rfc3339()}
                c.state.error = "the container's monitor disappeared while the daemon was down"
            await self._handle_exit_restored(c, record, to_restart)
        for c in self.containers.values():
            policy = (c.host_config.get("RestartPolicy") or {}).get("Name")
            if c.state.status == "exited" and not c.manually_stopped and policy in ("always", "unless-stopped") \
                    and c not in to_restart and c.has_been_started:
                to_restart.append(c)
        for c in to_restart:
            c.state.status = "restarting"
            self._spawn_task(self._restart_later(c))

    async def _abandon_half_started(self, c: Container) -> None:
        """The daemon died between spawning a monitor and sending it "start": the container's
        init is still waiting to be started. Kill it (the container stays "created", as the
        record says) and let its monitor clean up and go."""
        sock_path = os.path.join(self.records.exec_dir(c.id), "monitor.sock")
        if not os.path.exists(sock_path):
            return
        try:
            client = await MonitorClient.connect(sock_path, lambda ev: None)
            with contextlib.suppress(DockyardError):
                await asyncio.wait_for(client.request("kill", signal=signals.SIGKILL), 5)
            await asyncio.wait_for(client.closed.wait(), 5)
            client.close()
        except (OSError, TimeoutError):
            pass
        self.records.clear_exit(c.id)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.images.unmount_rootfs, c.id)

    async def _handle_exit_restored(self, c: Container, record: dict[str, Any], to_restart: list[Container]) -> None:
        c.state.status = "exited"
        c.state.pid = 0
        c.state.exit_code = int(record.get("code") or 0)
        c.state.oom_killed = bool(record.get("oom"))
        c.state.finished_at = str(record.get("finished_at") or now_rfc3339())
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.images.unmount_rootfs, c.id)
        if self.network is not None and hasattr(self.network, "release"):
            with contextlib.suppress(Exception):
                await self.network.release(c)
        self._save(c)
        if c.host_config.get("AutoRemove"):
            with contextlib.suppress(DockyardError):
                await self.remove(c.id, force=True, volumes=True)
        elif self._should_restart(c):
            to_restart.append(c)

    async def shutdown(self) -> None:
        """Leave containers running (live restore); just drop our connections."""
        for client in self.monitors.values():
            client.close()
        for task in list(self.tasks):
            task.cancel()

    # ---- queries ----------------------------------------------------------------------
    def list(self, *, all_: bool, limit: int, filters: dict[str, builtins.list[str]], images_resolve: Any = None) -> builtins.list[Container]:
        out = sorted(self.containers.values(), key=lambda c: c.created, reverse=True)
        if not all_ and not filters.get("status") and not filters.get("exited"):
            out = [c for c in out if c.state.running or c.state.status == "restarting"]
        for key, values in filters.items():
            out = [c for c in out if matches(self, c, key, values)]
        if limit and limit > 0:
            out = out[:limit]
        return out

    async def prune(self, filters: dict[str, builtins.list[str]]) -> tuple[builtins.list[str], int]:
        deleted = []
        until = parse_time(filters["until"][0]) if filters.get("until") and "T" in filters["until"][0] else \
            (float(filters["until"][0]) if filters.get("until") else 0.0)
        for c in list(self.containers.values()):
            if c.state.running or c.state.status in ("restarting", "removing"):
                continue
            if filters.get("label") and not matches(self, c, "label", filters["label"]):
                continue
            if until and parse_time(c.created) > until:
                continue
            with contextlib.suppress(DockyardError):
                await self.remove(c.id)
                deleted.append(c.id)
        self.events.publish("container", "prune", "", reclaimed="0")
        return deleted, 0


def _is_anonymous(name: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{64}", name))


def _graph_data(rootfs: Any) -> dict[str, Any]:
    data = {}
    for attr, key in (("lowerdirs", "LowerDir"), ("path", "MergedDir"), ("upper", "UpperDir"), ("work", "WorkDir")):
        value = getattr(rootfs, attr, None)
        if value:
            data[key] = ":".join(value) if isinstance(value, (list, tuple)) else str(value)
    return data


_HOST_CAPS: builtins.list[frozenset[str]] = []


def _host_caps() -> frozenset[str] | None:
    if not _HOST_CAPS:
        try:
            from dockyard.linux import capabilities

            _HOST_CAPS.append(frozenset(capabilities.host_bounding_set()))
        except Exception:
            return None
    return _HOST_CAPS[0]


__all__ = ["ContainerService", "parse_signal"]

