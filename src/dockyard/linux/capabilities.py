"""Linux capabilities: names and numbers, Docker's default set, and applying the five sets.

The five sets of a process (capabilities(7)) and the calls that set them::

    bounding     prctl(PR_CAPBSET_DROP, cap)       only ever shrinks; needs CAP_SETPCAP
    effective  \\
    permitted   > capset(2), _LINUX_CAPABILITY_VERSION_3 (two 32-bit words per set)
    inheritable/
    ambient      prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)
                 a cap must be permitted and inheritable first

Order the runtime must use when it also switches to a non-root user (runc's
``finalizeNamespace``): :func:`apply_bounding` -> ``set_keepcaps(True)`` -> setgroups/
setresgid/setresuid -> ``set_keepcaps(False)`` -> :func:`apply_sets`. Without KEEPCAPS the
uid change from 0 clears the permitted set and nothing could be restored. :func:`apply` does
exactly that sequence, with the user switch passed in as a callback.

capset(2) acts on the calling *thread* only: call these in the single-threaded container init
(after fork), never in a multi-threaded daemon.

Capabilities the host lacks (this machine's bounding set has no CAP_SYS_RESOURCE) are dropped
from every set with a warning, never an error: runc fails ``--privileged`` here, we must not.
"""

from __future__ import annotations

import errno
import sys

from dockyard.errors import Internal, InvalidArgument
from dockyard.lazylog import LazyLogger
from dockyard.linux import libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "CAPABILITIES",
    "DEFAULT_CAPS",
    "DEFAULT_MASK",
    "CapSets",
    "apply",
    "apply_bounding",
    "apply_sets",
    "current",
    "from_mask",
    "host_bounding_set",
    "last_cap",
    "parse",
    "resolve",
    "set_keepcaps",
    "to_mask",
]

log = LazyLogger(__name__)

# linux/capability.h, in number order (index == capability number).
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip
_NUMBER = {name: i for i, name in enumerate(CAPABILITIES)}

# Docker's default set (moby oci/caps/defaults.go), mask 0x00000000a80425fb.
DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip
DEFAULT_MASK = 0x00000000A80425FB

# linux/prctl.h, linux/capability.h
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


class CapSets:
    """The five capability sets of a process, as sets of names (immutable, hashable; a plain
    class because ``dataclasses`` costs ~5 ms of import in the container init)."""

    __slots__ = SETS
    bounding: frozenset[str]
    effective: frozenset[str]
    permitted: frozenset[str]
    inheritable: frozenset[str]
    ambient: frozenset[str]

    def __init__(self, bounding: frozenset[str] = frozenset(),
                 effective: frozenset[str] = frozenset(), permitted: frozenset[str] = frozenset(),
                 inheritable: frozenset[str] = frozenset(),
                 ambient: frozenset[str] = frozenset()) -> None:
        for name, value in zip(SETS, (bounding, effective, permitted, inheritable, ambient), strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def _values(self) -> tuple[frozenset[str], ...]:
        return tuple(getattr(self, s) for s in SETS)

    def __repr__(self) -> str:
        return "CapSets(" + ", ".join(f"{s}={getattr(self, s)!r}" for s in SETS) + ")"

    def __eq__(self, other: object) -> bool:
        return self._values() == other._values() if type(other) is CapSets else NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())


def last_cap() -> int:
    """The highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return len(CAPABILITIES) - 1


def _name(number: int) -> str:
    return CAPABILITIES[number] if number < len(CAPABILITIES) else f"CAP_{number}"


def _number(name: str) -> int:
    """``CAP_X`` (or ``X``, any case, or ``CAP_<n>`` for caps newer than our table) -> number."""
    key = name.strip().upper()
    if not key.startswith("CAP_"):
        key = "CAP_" + key
    if key in _NUMBER:
        return _NUMBER[key]
    tail = key[4:]
    if tail.isdigit():
        return int(tail)
    raise InvalidArgument(f"unknown capability {name!r}")


def parse(names: Iterable[str]) -> frozenset[str]:
    """Normalise capability names (``net_admin`` -> ``CAP_NET_ADMIN``); unknown names raise."""
    return frozenset(_name(_number(n)) for n in names)


def to_mask(names: Iterable[str]) -> int:
    mask = 0
    for n in names:
        mask |= 1 << _number(n)
    return mask


def from_mask(mask: int) -> frozenset[str]:
    return frozenset(_name(i) for i in range(mask.bit_length()) if mask >> i & 1)


def _status_mask(field: str, pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    raise Internal(f"no {field} in /proc/{pid}/status")


def host_bounding_set() -> frozenset[str]:
    """The capabilities this process may still hold (CapBnd of /proc/self/status)."""
    return from_mask(_status_mask("CapBnd"))


def current(pid: int | str = "self") -> CapSets:
    """The five sets of a process, read from /proc/<pid>/status."""
    fields = ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb")
    masks = [_status_mask(f, pid) for f in fields]
    return CapSets(*(from_mask(m) for m in masks))


def resolve(spec: Mapping[str, Iterable[str]] | None, host: frozenset[str] | None = None) -> CapSets:
    """OCI ``process.capabilities`` -> :class:`CapSets` the host can grant.

    Names the host bounding set lacks are dropped from every set with one warning naming them.
    """
    spec = spec or {}
    unknown = set(spec) - set(SETS)
    if unknown:
        raise InvalidArgument(f"process.capabilities: unknown set {sorted(unknown)[0]!r}")
    host = host_bounding_set() if host is None else host
    wanted = {s: parse(spec.get(s) or ()) for s in SETS}
    missing = set().union(*wanted.values()) - host
    if missing:
        log.warning("capabilities not in the host bounding set, dropped: %s", ", ".join(sorted(missing)))
    return CapSets(**{s: v & host for s, v in wanted.items()})


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    try:
        return libc.prctl(option, arg2, arg3)
    except OSError as exc:
        raise OSError(exc.errno, f"prctl({option}): {exc.strerror}") from None


def set_keepcaps(keep: bool) -> None:
    """PR_SET_KEEPCAPS: keep the permitted set across a setuid away from 0 (see module doc)."""
    _prctl(PR_SET_KEEPCAPS, int(keep))


def apply_bounding(keep: Iterable[str]) -> None:
    """Drop every capability not in ``keep`` from the bounding set (needs CAP_SETPCAP)."""
    keep_numbers = {_number(n) for n in keep}
    for number in range(last_cap() + 1):
        if number in keep_numbers:
            continue
        try:
            _prctl(PR_CAPBSET_DROP, number)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: the kernel does not know this cap
                raise Internal(f"cannot drop {_name(number)} from the bounding set: {exc}") from exc


def apply_sets(effective: Iterable[str], permitted: Iterable[str], inheritable: Iterable[str],
               ambient: Iterable[str] = ()) -> None:
    """capset(2) effective/permitted/inheritable, then raise the ambient set."""
    masks = [to_mask(s) for s in (effective, permitted, inheritable)]
    # struct __user_cap_header_struct {u32 version; int pid}, then two
    # struct __user_cap_data_struct {u32 effective, permitted, inheritable}: the low words, then
    # the high words (native byte order: the kernel reads them as C structs)
    header = _LINUX_CAPABILITY_VERSION_3.to_bytes(4, sys.byteorder) + bytes(4)
    data = b"".join((m >> (32 * word) & 0xFFFFFFFF).to_bytes(4, sys.byteorder)
                    for word in range(2) for m in masks)
    try:
        libc.capset(header, data)
    except OSError as exc:
        raise Internal(f"capset: {exc.strerror}") from None
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    for name in ambient:
        try:
            _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, _number(name))
        except OSError as exc:
            raise Internal(f"cannot raise ambient {name} (must be permitted and inheritable): {exc}") from exc


def apply(bounding: Iterable[str], effective: Iterable[str], permitted: Iterable[str],
          inheritable: Iterable[str], ambient: Iterable[str] = (), *,
          switch_user: Callable[[], None] | None = None) -> None:
    """Set all five sets, switching user in the middle if ``switch_user`` is given.

    bounding -> KEEPCAPS on -> switch_user() -> KEEPCAPS off -> capset + ambient.
    Pass names already filtered by :func:`resolve` (``sets.bounding``, ``sets.effective``, ...).
    """
    apply_bounding(bounding)
    if switch_user is not None:
        set_keepcaps(True)
        switch_user()
        set_keepcaps(False)
    apply_sets(effective, permitted, inheritable, ambient)
