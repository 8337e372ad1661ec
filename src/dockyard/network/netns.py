"""Run a function inside another network namespace, from any thread of any process.

setns(2) with ``CLONE_NEWNET`` changes the namespace of the *calling thread* only, and unlike
mount or user namespaces it is allowed in a multi-threaded process ("A multithreaded process may
not change user namespace with setns()" applies to CLONE_NEWUSER, not to CLONE_NEWNET). A socket
keeps the namespace it was created in for its whole life (socket(7), network_namespaces(7)).

So the daemon never forks into a container: :func:`run_in_netns` starts a fresh, short-lived
thread, moves that thread into the target namespace, runs ``fn`` there (open a netlink socket and
configure ``eth0``, or create the embedded DNS server's sockets) and returns its result. The
thread is never reused, so no other code can run in the wrong namespace, and it moves back to
its original namespace before exiting anyway. Cost: one thread start (~0.1 ms), not a process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

from dockyard.errors import NotFound
from dockyard.linux.libc import CLONE_NEWNET, MNT_DETACH, mount, setns, umount2, unshare
from dockyard.linux.mountflags import MS_BIND

__all__ = ["create_netns_file", "netns_path_for_pid", "remove_netns_file", "run_in_netns",
           "same_netns"]

T = TypeVar("T")


def netns_path_for_pid(pid: int) -> str:
    """The network namespace of a running process (what ``--network container:<id>`` joins)."""
    return f"/proc/{pid}/ns/net"


def same_netns(path_a: str, path_b: str) -> bool:
    a, b = os.stat(path_a), os.stat(path_b)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def run_in_netns(path: str, fn: Callable[[], T]) -> T:
    """Call ``fn()`` in a new thread that has joined the network namespace at ``path``.

    ``path`` is ``/proc/<pid>/ns/net`` or a bind-mounted namespace file (``/run/netns/x``).
    Exceptions raised by ``fn`` are re-raised in the caller.
    """
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise NotFound(f"network namespace {path} does not exist") from exc
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(target, CLONE_NEWNET)
            try:
                result.append(fn())
            finally:
                setns(home, CLONE_NEWNET)
        except BaseException as exc:  # handed to the caller below
            error.append(exc)
        finally:
            os.close(home)

    try:
        thread = threading.Thread(target=body, name=f"netns:{path}", daemon=True)
        thread.start()
        thread.join()
    finally:
        os.close(target)
    if error:
        raise error[0]
    return result[0]


def create_netns_file(path: str, *, loopback_up: bool = True) -> str:
    """A new network namespace kept alive by a bind mount at ``path`` (like ``ip netns add``).

    Made by a throwaway thread: unshare(CLONE_NEWNET) moves only that thread (namespaces are
    per task), its namespace is bind-mounted from /proc/thread-self/ns/net, and the thread goes
    back home before exiting. The daemon attaches networks to it before the container starts,
    and the runtime joins it (the OCI spec's namespace path), as Docker's sandboxes work.
    """
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    error: list[BaseException] = []

    def body() -> None:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            unshare(CLONE_NEWNET)
            try:
                mount("/proc/thread-self/ns/net", path, None, MS_BIND, None)
                if loopback_up:
                    from pyroute2 import IPRoute

                    with IPRoute() as ipr:
                        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            finally:
                setns(home, CLONE_NEWNET)
        except BaseException as exc:
            error.append(exc)
        finally:
            os.close(home)

    thread = threading.Thread(target=body, name=f"netns-create:{path}", daemon=True)
    thread.start()
    thread.join()
    if error:
        remove_netns_file(path)
        raise error[0]
    return path


def remove_netns_file(path: str) -> None:
    """Unmount and delete a namespace file; the kernel frees the namespace (and any veth in it)
    asynchronously once nothing else holds it."""
    try:
        umount2(path, MNT_DETACH)
    except OSError:
        pass
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
