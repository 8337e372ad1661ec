"""The mount sequence that turns a bundle's rootfs into the container's ``/``.

Runs in the container init, in its new mount namespace, before ``pivot_root``; every syscall
goes through a :class:`~dockyard.linux.syscalls.Syscalls` so unit tests record the sequence::

    1. mount  ""      /          MS_REC|<rootfsPropagation, default private>
    2. mount  rootfs  rootfs     MS_BIND|MS_REC                 (pivot_root needs a mount point)
    3. mounts[] in order: bind -> remount with flags, others -> mount(type, flags, data),
       then each propagation option; "cgroup" -> tmpfs + bind of each hierarchy
    4. /dev (if a tmpfs was mounted there): nodes null zero full random urandom tty (+devices),
       bind mounts of the host nodes inside a user namespace; symlinks fd, stdin..., ptmx
    5. sysctls (written by the caller), maskedPaths (tmpfs ro / bind /dev/null),
       readonlyPaths (bind + remount ro)
    6. chdir rootfs; pivot_root . . ; mount "" . MS_SLAVE|MS_REC; umount2 . MNT_DETACH; chdir /
    7. rootfs.readonly: remount / MS_BIND|MS_REMOUNT|MS_RDONLY

Everything from 3 to 5 works on paths inside the rootfs before the pivot: the mounts stay in
the namespace and so are the container's mounts after it; the result is runc's.
"""

from __future__ import annotations

import os
import stat

from dockyard.linux import mountflags as mf
from dockyard.runtime.paths import resolve_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from dockyard.linux.syscalls import Syscalls

__all__ = ["DEFAULT_DEVICES", "RootfsPlan", "pivot", "prepare_rootfs"]

# name -> (type, major, minor, mode): the nodes every container gets (runtime-linux.md)
DEFAULT_DEVICES: dict[str, tuple[str, int, int, int]] = {
    "/dev/null": ("c", 1, 3, 0o666),
    "/dev/zero": ("c", 1, 5, 0o666),
    "/dev/full": ("c", 1, 7, 0o666),
    "/dev/random": ("c", 1, 8, 0o666),
    "/dev/urandom": ("c", 1, 9, 0o666),
    "/dev/tty": ("c", 5, 0, 0o666),
}
DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
                ("pts/ptmx", "/dev/ptmx"))
_KEEP_FLAGS = mf.MS_NOSUID | mf.MS_NODEV | mf.MS_NOEXEC | mf.MS_NOATIME | mf.MS_NODIRATIME \
    | mf.MS_RELATIME
_DEV_KIND = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


_PLAN_FIELDS = ("rootfs", "bundle", "mounts", "devices", "masked_paths", "readonly_paths",
                "propagation", "in_userns", "cgroup_dirs", "sysctl")  # in __init__'s order


class RootfsPlan:
    """What :func:`prepare_rootfs` mounts (immutable; a plain class: ``dataclasses`` costs
    ~5 ms of import in the container init)."""

    __slots__ = _PLAN_FIELDS
    rootfs: str                                  # absolute, resolved
    bundle: str                                  # relative mount sources are relative to it
    mounts: tuple[dict[str, Any], ...]
    devices: tuple[dict[str, Any], ...]
    masked_paths: tuple[str, ...]
    readonly_paths: tuple[str, ...]
    propagation: str
    in_userns: bool
    cgroup_dirs: tuple[tuple[str, str], ...]     # (name under /sys/fs/cgroup, host directory)
    sysctl: tuple[tuple[str, str], ...]

    def __init__(self, rootfs: str, bundle: str, mounts: tuple[dict[str, Any], ...],
                 devices: tuple[dict[str, Any], ...] = (), masked_paths: tuple[str, ...] = (),
                 readonly_paths: tuple[str, ...] = (), propagation: str = "rprivate",
                 in_userns: bool = False, cgroup_dirs: tuple[tuple[str, str], ...] = (),
                 sysctl: tuple[tuple[str, str], ...] = ()) -> None:
        for name, value in zip(_PLAN_FIELDS, (rootfs, bundle, mounts, devices, masked_paths,
                                                readonly_paths, propagation, in_userns,
                                                cgroup_dirs, sysctl), strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in _PLAN_FIELDS)
        return f"RootfsPlan({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not RootfsPlan:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _PLAN_FIELDS)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in _PLAN_FIELDS))

    @classmethod
    def from_spec(cls, spec: dict[str, Any], rootfs: str, bundle: str, *, in_userns: bool,
                  cgroup_dirs: Iterable[tuple[str, str]] = ()) -> RootfsPlan:
        linux = spec.get("linux") or {}
        return cls(rootfs=rootfs, bundle=bundle, mounts=tuple(spec.get("mounts") or ()),
                   devices=tuple(linux.get("devices") or ()),
                   masked_paths=tuple(linux.get("maskedPaths") or ()),
                   readonly_paths=tuple(linux.get("readonlyPaths") or ()),
                   propagation=linux.get("rootfsPropagation") or "rprivate",
                   in_userns=in_userns, cgroup_dirs=tuple(cgroup_dirs),
                   sysctl=tuple((linux.get("sysctl") or {}).items()))


def prepare_rootfs(sys: Syscalls, plan: RootfsPlan) -> None:
    """Steps 1-5 of the module docstring."""
    root = plan.rootfs
    sys.mount(None, "/", None, mf.PROPAGATION[plan.propagation] | mf.MS_REC, None)
    sys.mount(root, root, None, mf.MS_BIND | mf.MS_REC, None)
    dev_is_tmpfs = False
    for m in plan.mounts:
        target = _mount_one(sys, plan, m)
        if m["destination"].rstrip("/") == "/dev" and m.get("type") == "tmpfs":
            dev_is_tmpfs = target is not None
    if dev_is_tmpfs:
        _populate_dev(sys, plan)
    for key, value in plan.sysctl:
        path = os.path.join(root, "proc/sys", key.replace(".", "/"))
        with open(path, "w") as f:
            f.write(value)
    for path in plan.masked_paths:
        _mask(sys, resolve_in_root(root, path, field="linux.maskedPaths"))
    for path in plan.readonly_paths:
        _readonly(sys, resolve_in_root(root, path, field="linux.readonlyPaths"))


def pivot(sys: Syscalls, rootfs: str, *, readonly: bool) -> None:
    """Steps 6-7: make ``rootfs`` the root and drop the old one (pivot_root(2) "new_root and
    put_old may be the same directory")."""
    sys.chdir(rootfs)
    sys.pivot_root(".", ".")
    sys.mount(None, ".", None, mf.MS_SLAVE | mf.MS_REC, None)  # don't propagate the unmount
    sys.umount2(".", 2)  # MNT_DETACH
    sys.chdir("/")
    if readonly:
        sys.mount(None, "/", None, mf.MS_BIND | mf.MS_REMOUNT | mf.MS_RDONLY | _flags_of("/"),
                  None)


def _flags_of(path: str) -> int:
    """The per-mount flags already set on ``path``: a remount must keep them (a user namespace
    may not clear locked ones, mount(2) EPERM)."""
    try:
        return os.statvfs(path).f_flag & _KEEP_FLAGS
    except OSError:
        return 0


def _ensure(path: str, *, is_file: bool) -> None:
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if is_file:
        with open(path, "a"):
            pass
    else:
        os.makedirs(path, exist_ok=True)


def _source(plan: RootfsPlan, source: str) -> str:
    return source if source.startswith("/") else os.path.join(plan.bundle, source)


def _mount_one(sys: Syscalls, plan: RootfsPlan, m: dict[str, Any]) -> str | None:
    dest = m["destination"]
    target = resolve_in_root(plan.rootfs, dest, field=f"mounts[{dest}]")
    kind = m.get("type") or ""
    opts = mf.parse_options(m.get("options") or [])
    source = m.get("source") or kind or "none"
    if kind == "cgroup":
        _mount_cgroup(sys, plan, target, opts)
        return target
    if opts.is_bind or kind == "bind":
        src = _source(plan, source)
        _ensure(target, is_file=not os.path.isdir(src))
        sys.mount(src, target, None, mf.MS_BIND | (opts.flags & mf.MS_REC), None)
        extra = opts.flags & ~(mf.MS_BIND | mf.MS_REC | mf.MS_REMOUNT)
        if extra:
            sys.mount(None, target, None,
                      extra | mf.MS_BIND | mf.MS_REMOUNT | _flags_of(target), None)
    else:
        _ensure(target, is_file=False)
        if kind == "sysfs" and plan.in_userns:
            # sysfs needs a network namespace owned by our user namespace; bind the host's
            try:
                sys.mount(source, target, kind, opts.flags, opts.data or None)
            except OSError:
                sys.mount("/sys", target, None, mf.MS_BIND | mf.MS_REC, None)
                sys.mount(None, target, None, mf.MS_BIND | mf.MS_REMOUNT | opts.flags, None)
        else:
            sys.mount(source, target, kind, opts.flags, opts.data or None)
    for flag in opts.propagation:
        sys.mount(None, target, None, flag, None)
    return target


def _mount_cgroup(sys: Syscalls, plan: RootfsPlan, target: str, opts: mf.MountOptions) -> None:
    """A tmpfs with each host hierarchy's directory of this container bound below it."""
    _ensure(target, is_file=False)
    base = opts.flags & (mf.MS_NOSUID | mf.MS_NODEV | mf.MS_NOEXEC)
    sys.mount("tmpfs", target, "tmpfs", base, "mode=755")
    for name, host_dir in plan.cgroup_dirs:
        sub = os.path.join(target, name)
        os.makedirs(sub, exist_ok=True)
        sys.mount(host_dir, sub, None, mf.MS_BIND | mf.MS_REC, None)
        sys.mount(None, sub, None, mf.MS_BIND | mf.MS_REMOUNT | base | (opts.flags & mf.MS_RDONLY),
                  None)
        if "," in name:  # co-mounted controllers: cpu -> cpu,cpuacct, as on the host
            for alias in name.split(","):
                link = os.path.join(target, alias)
                if not os.path.lexists(link):
                    os.symlink(name, link)
    if opts.flags & mf.MS_RDONLY:
        sys.mount(None, target, None, mf.MS_REMOUNT | mf.MS_RDONLY | base, "mode=755")


def _populate_dev(sys: Syscalls, plan: RootfsPlan) -> None:
    root = plan.rootfs
    nodes = [(p, *spec) for p, spec in DEFAULT_DEVICES.items()]
    for d in plan.devices:
        nodes.append((d["path"], d["type"], d.get("major", 0), d.get("minor", 0),
                      d.get("fileMode", 0o666)))
    for path, kind, major, minor, mode in nodes:
        target = resolve_in_root(root, path, field="linux.devices")
        if plan.in_userns:  # mknod(2) needs CAP_MKNOD in the initial user namespace
            _ensure(target, is_file=True)
            sys.mount(path, target, None, mf.MS_BIND, None)
            continue
        if os.path.lexists(target):
            os.unlink(target)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        sys.mknod(target, _DEV_KIND[kind] | mode, os.makedev(major, minor))
        os.chmod(target, mode)  # mknod(2) applies the umask
        sys.chown(target, 0, 0)
    for src, dest in DEV_SYMLINKS:
        link = os.path.join(root, dest.lstrip("/"))
        if not os.path.lexists(link):
            os.symlink(src, link)


def _mask(sys: Syscalls, target: str) -> None:
    if os.path.isdir(target) and not os.path.islink(target):
        sys.mount("tmpfs", target, "tmpfs", mf.MS_RDONLY, None)
    elif os.path.lexists(target):
        sys.mount("/dev/null", target, None, mf.MS_BIND, None)


def _readonly(sys: Syscalls, target: str) -> None:
    if not os.path.lexists(target):
        return
    sys.mount(target, target, None, mf.MS_BIND | mf.MS_REC, None)
    sys.mount(None, target, None,
              mf.MS_BIND | mf.MS_REMOUNT | mf.MS_RDONLY | mf.MS_REC | _flags_of(target), None)
