"""What cgroup v1 and v2 share: the :class:`Cgroup` interface, stats values, file helpers.

Kernel files are written with one ``write(2)`` each (cgroupfs parses per write). Three
outcomes when a resource cannot be applied, decided per field in v1.py / v2.py:

- the field is best-effort and the kernel lacks its file (blkio weight without CFQ/BFQ, swap
  accounting off, deprecated kernel memory, net_cls, hugetlb on another hierarchy): skipped
  with a warning naming the field, as Docker does;
- the controller the field needs is absent (a memory limit without the memory controller):
  :class:`~dockyard.errors.Unsupported` naming the field;
- the kernel refuses the value (EINVAL, EBUSY, ...): :class:`~dockyard.errors.InvalidArgument`
  naming the field, the file and the value.
"""

from __future__ import annotations

import errno
import os
import time

# abc and _collections_abc are loaded at interpreter start (io and os import them);
# collections.abc would add the collections package (~1 ms on the CLI path).
from _collections_abc import Mapping
from abc import ABC, abstractmethod

from dockyard.errors import Conflict, Internal, InvalidArgument, Unsupported
from dockyard.lazylog import LazyLogger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.cgroups.stats import CgroupStats

__all__ = ["Cgroup"]

log = LazyLogger("dockyard.cgroups")

# Limits at or above this are "unlimited" (v1 reports PAGE_COUNTER_MAX * PAGE_SIZE).
UNLIMITED = 1 << 62

# signal.SIGKILL, without importing ``signal`` (its enum wrappers cost ~3 ms at start-up).
SIGKILL = 9


# ---------------------------------------------------------------- file helpers


def write_file(path: str, value: str, what: str) -> None:
    """Write ``value`` with a single write(2); errors name ``what`` (the OCI field)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise Unsupported(f"{what}: this kernel has no {os.path.basename(path)} ({path})") from exc
    except OSError as exc:
        raise InvalidArgument(f"{what}: cannot open {path}: {exc.strerror}") from exc
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        raise InvalidArgument(f"{what}: cannot write {value!r} to {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def write_optional(path: str, value: str, what: str) -> bool:
    """Like :func:`write_file`, but a missing file is skipped with a warning (best-effort fields)."""
    try:
        write_file(path, value, what)
    except Unsupported:  # write_file's word for a missing file
        log.warning("%s: ignored, this kernel has no %s", what, path)
        return False
    return True


def make_dirs(directory: str) -> bool:
    """``os.makedirs`` that survives a concurrent rmdir of an (empty, shared) parent.

    True if ``directory`` itself was made by this call (False: it was there already). One
    mkdir(2) when the parent exists, the usual case.
    """
    try:
        os.mkdir(directory)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:
        pass
    for attempt in range(5):
        try:
            os.makedirs(os.path.dirname(directory), exist_ok=True)
            os.mkdir(directory)
            return True
        except FileExistsError:
            return False
        except FileNotFoundError:
            if attempt == 4:
                raise
    return False  # not reached


def read_text(path: str) -> str | None:
    """The file's content, stripped; None if it is missing or the kernel will not show it.

    open/read/close on the fd (4 syscalls) rather than a text file object (8, and ~10 us of
    Python for the wrapper): cgroup files are read a dozen times per container operation.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, 65536)
            if data:
                chunks = [data]
                while chunk := os.read(fd, 65536):
                    chunks.append(chunk)
                data = b"".join(chunks)
        finally:
            os.close(fd)
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise
    return data.decode().strip()


def read_int(path: str) -> int | None:
    """An integer file; ``max`` and missing files read as None."""
    text = read_text(path)
    if not text or text == "max":
        return None
    try:
        return int(text.split()[0])
    except ValueError:
        return None


def read_kv(path: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, memory.events, ...)."""
    out: dict[str, int] = {}
    for line in (read_text(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def limit_or_none(value: int | None) -> int | None:
    return None if value is None or value >= UNLIMITED else value


def host_cpu_usage_ns() -> int:
    """Total host CPU time (first line of /proc/stat) in nanoseconds, like Docker computes it."""
    text = read_text("/proc/stat") or ""
    first = text.splitlines()[0].split() if text else []
    if not first or first[0] != "cpu":
        return 0
    ticks = sum(int(v) for v in first[1:8])
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def read_procs(directory: str, recursive: bool = True) -> list[int]:
    """The pids in ``directory``'s cgroup.procs (and its sub-cgroups', top-down); [] if absent."""
    return find_procs(directory, recursive) or []


def find_procs(directory: str, recursive: bool = True) -> list[int] | None:
    """Like :func:`read_procs`, but None when ``directory`` has no cgroup.procs (no stat first)."""
    text = read_text(os.path.join(directory, "cgroup.procs"))
    if text is None:
        return None
    pids = [int(word) for word in text.split()]
    if recursive:
        try:
            # A directory links to itself, its parent entry and each sub-directory's "..":
            # 2 means no sub-cgroup (cgroupfs, tmpfs, ext4), saving the listing. Filesystems
            # that do not count (btrfs: 1) are listed.
            if os.stat(directory).st_nlink == 2:
                return pids
            with os.scandir(directory) as entries:
                subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError:  # removed meanwhile: as os.walk, which ignored it
            subdirs = []
        for sub in sorted(subdirs):
            pids += read_procs(sub)
    return pids


def remove_tree(directory: str, timeout: float) -> None:
    """rmdir ``directory`` and its sub-cgroups, bottom-up, retrying while tasks drain.

    A missing ``directory`` (or a non-directory) is left alone. One rmdir(2) in the usual case
    (a leaf cgroup without tasks: cgroupfs removes a directory with its control files).
    """
    try:
        os.rmdir(directory)
        return
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError:
        pass  # sub-cgroups, tasks draining, a fake tree with files: the walk below
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            for current, subdirs, _files in os.walk(directory, topdown=False):
                for sub in subdirs:
                    _rmdir(os.path.join(current, sub))
            _rmdir(directory)
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                remaining = read_procs(directory) if os.path.isdir(directory) else []
                raise Conflict(f"cannot remove cgroup {directory}: {exc.strerror}"
                               f" (processes left: {remaining[:10]})") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.ENOTEMPTY:
            raise
        # A fake tree (plain directory with files) in tests: remove the files first.
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if not os.path.isdir(full):
                os.unlink(full)
        os.rmdir(path)


def join_self(files: list[str]) -> None:
    """Move the calling (single-threaded) process into the cgroup whose
    :meth:`Cgroup.join_files` these are."""
    for path in files:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError as exc:
            raise Internal(f"cannot join cgroup {os.path.dirname(path)}: {exc.strerror}") from exc


def check_path(path: str) -> str:
    """OCI ``cgroupsPath`` -> a path relative to each hierarchy's root, refused if it escapes."""
    if ":" in path:
        raise Unsupported(f"linux.cgroupsPath {path!r}: systemd slice paths are not supported")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise InvalidArgument(f"linux.cgroupsPath {path!r} must name a cgroup below the root")
    return "/".join(parts)


def section(resources: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = resources.get(key) or {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"linux.resources.{key} must be an object")
    return value


# ---------------------------------------------------------------- the interface


class Cgroup(ABC):
    """One container's cgroup, v1 (a directory per hierarchy) or v2 (one directory).

    Life: ``create()`` -> ``apply(pid)`` -> ``set(resources)`` (any time again for updates) ->
    ``freeze()``/``thaw()``, ``stats()``, ``oom_kill_count()`` -> ``kill_all()`` -> ``destroy()``.
    """

    mode: str
    path: str  # relative to each hierarchy's root, no leading slash

    @abstractmethod
    def create(self) -> None:
        """Make the cgroup directories (idempotent), delegating controllers as needed."""

    @abstractmethod
    def apply(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the cgroup."""

    @abstractmethod
    def join_files(self) -> list[str]:
        """The files a *single-threaded* process writes "0" to (:func:`join_self`) to move
        itself in: the fast way into a cgroup for a freshly forked child.

        A move by pid (:meth:`apply`) takes the kernel's global cgroup_threadgroup_rwsem for
        writing, and the first writer after a quiet spell waits for an RCU grace period (5-20
        ms on our VM). Since Linux 6.0 ("cgroup: Optimize single thread migration") a thread
        moving *itself* alone skips that lock: "0" into a v1 hierarchy's ``tasks``, ~0.1 ms.
        On v2 threads cannot leave their domain, so it is ``cgroup.procs`` and the wait.
        """

    @abstractmethod
    def set(self, resources: Mapping[str, Any]) -> None:
        """Apply OCI ``linux.resources`` (camelCase dict); absent fields are left alone."""

    @abstractmethod
    def freeze(self, timeout: float = 10.0) -> None:
        """Freeze every process and wait until the kernel reports the cgroup frozen."""

    @abstractmethod
    def thaw(self) -> None: ...

    @abstractmethod
    def frozen(self) -> bool: ...

    @abstractmethod
    def stats(self) -> CgroupStats: ...

    @abstractmethod
    def oom_kill_count(self) -> int:
        """Processes the OOM killer killed in this cgroup (kernel >= 4.13 on v1)."""

    @abstractmethod
    def oom_notifier(self) -> int:
        """A new fd (the caller closes it) that turns readable when the OOM killer may have acted.

        For a monitor's poll loop: on readability, ``os.read(fd, 4096)`` to re-arm, then
        compare :meth:`oom_kill_count` with the last value. v1: an eventfd registered on
        memory.oom_control through cgroup.event_control (it also fires when the cgroup is
        removed); v2: inotify on memory.events (any memory event).
        """

    @abstractmethod
    def pids(self, recursive: bool = True) -> list[int]: ...

    @abstractmethod
    def exists(self) -> bool: ...

    @abstractmethod
    def directories(self) -> list[str]:
        """Every directory this cgroup occupies (one per v1 hierarchy)."""

    def kill_all(self, sig: int = SIGKILL) -> None:
        """Signal every process, frozen first so none can fork away (runc does the same).

        An empty cgroup is left alone (no process inside can fork into it, so there is no
        race to freeze against). A cgroup that was frozen before stays frozen (thaw it to let
        a SIGKILL take effect on v1, where frozen tasks die only once thawed).
        """
        if not self.pids():
            return
        can_freeze = self._needs_freeze()
        if can_freeze:
            self.freeze()
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if can_freeze:
                self.thaw()

    def destroy(self, timeout: float = 5.0) -> None:
        """Remove the cgroup (and sub-cgroups), retrying while exiting tasks drain."""
        for directory in self.directories():
            remove_tree(directory, timeout)

    @abstractmethod
    def _can_freeze(self) -> bool: ...

    def _needs_freeze(self) -> bool:
        """The freezer is there and the cgroup is not frozen already (kill_all's question)."""
        return self._can_freeze() and not self.frozen()
