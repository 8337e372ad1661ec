"""Device access rules: OCI ``linux.resources.devices`` -> cgroup v1 ``devices.allow/deny`` lines.

Like runc's spec conversion, the standard nodes every container gets in ``/dev`` are allowed
after the config's own rules (:data:`DEFAULT_RULES`), so a config that starts with a deny-all
(``{"allow": false, "access": "rwm"}``, Docker's and ``dockyard-runtime spec``'s) still has
a working /dev/null (runc 1.2's list: /dev/net/tun is not in it). A rule of type ``a`` with wildcards is written as plain ``a`` (the kernel
resets the whole list: deny-all to ``devices.deny``, allow-all to ``devices.allow``).

cgroup v2 has no devices files: the same rules become an eBPF program (:mod:`.ebpf`).
"""

from __future__ import annotations

from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

__all__ = ["DEFAULT_RULES", "is_restrictive", "parse_rule", "v1_lines", "v1_transition", "with_defaults"]


def _rule(kind: str, major: int | None, minor: int | None, access: str = "rwm") -> dict[str, Any]:
    return {"allow": True, "type": kind, "major": major, "minor": minor, "access": access}


# runc libcontainer/specconv AllowedDevices: mknod of anything, and the standard /dev nodes.
DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    _rule("c", None, None, "m"),
    _rule("b", None, None, "m"),
    _rule("c", 1, 3),  # /dev/null
    _rule("c", 1, 8),  # /dev/random
    _rule("c", 1, 7),  # /dev/full
    _rule("c", 5, 0),  # /dev/tty
    _rule("c", 1, 5),  # /dev/zero
    _rule("c", 1, 9),  # /dev/urandom
    _rule("c", 5, 1),  # /dev/console
    _rule("c", 136, None),  # /dev/pts/*
    _rule("c", 5, 2),  # /dev/ptmx
)


def _num(value: Any, where: str) -> int | None:
    if value is None or value == -1:
        return None
    if not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"{where}: device number must be a non-negative integer, got {value!r}")
    return value


def parse_rule(rule: Mapping[str, Any], where: str) -> tuple[str, int | None, int | None, str, bool]:
    """-> (type a/b/c, major or None for any, minor or None, access letters, allow)."""
    kind = rule.get("type") or "a"
    if kind not in ("a", "b", "c"):
        raise InvalidArgument(f"{where}: type must be a, b or c, got {kind!r}")
    access = rule.get("access") or "rwm"
    if set(access) - set("rwm"):
        raise InvalidArgument(f"{where}: access must be letters of rwm, got {access!r}")
    major, minor = _num(rule.get("major"), where), _num(rule.get("minor"), where)
    return kind, major, minor, access, bool(rule.get("allow", False))


def with_defaults(rules: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The config's rules followed by the standard nodes, as runc's spec conversion does."""
    return [*rules, *DEFAULT_RULES]


def v1_lines(rules: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, bool]]:
    """Yield ``(line, allow)`` pairs in order; ``allow`` picks devices.allow or devices.deny."""
    for i, rule in enumerate(rules):
        kind, major, minor, access, allow = parse_rule(rule, f"linux.resources.devices[{i}]")
        if kind == "a" and major is None and minor is None and set(access) == set("rwm"):
            yield "a", allow
        else:
            star = ("*" if major is None else str(major), "*" if minor is None else str(minor))
            yield f"{kind} {star[0]}:{star[1]} {access}", allow


_Key = tuple[str, str, str]  # (type, major or "*", minor or "*")


def _simulate(lines: Iterator[tuple[str, bool]]) -> tuple[bool, dict[_Key, set[str]]]:
    """The kernel's devices state after ``lines`` from allow-all (security/device_cgroup.c).

    Behaviour ALLOW/DENY plus exceptions; an allow write adds an exception under DENY and
    removes access bits under ALLOW, a deny write the other way round.
    """
    default_allow = True
    exceptions: dict[_Key, set[str]] = {}
    for line, allow in lines:
        if line == "a":
            default_allow, exceptions = allow, {}
            continue
        kind, numbers, access = line.split()
        major, minor = numbers.split(":")
        key = (kind, major, minor)
        if allow != default_allow:  # an exception to the default
            exceptions.setdefault(key, set()).update(access)
        elif key in exceptions:
            exceptions[key] -= set(access)
            if not exceptions[key]:
                del exceptions[key]
    return default_allow, exceptions


def _parse_list(text: str) -> tuple[bool, dict[_Key, set[str]]] | None:
    """devices.list -> state; None when it cannot be known (ALLOW hides its deny exceptions)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if lines == [["a", "*:*", "rwm"]]:
        return True, {}
    exceptions: dict[_Key, set[str]] = {}
    for kind, numbers, access in lines:
        major, minor = numbers.split(":")
        exceptions[(kind, major, minor)] = set(access)
    return False, exceptions


def v1_transition(current: str, rules: Sequence[Mapping[str, Any]]) -> list[tuple[str, bool]]:
    """Writes that take a cgroup from ``current`` (its devices.list) to ``rules``.

    Between two allow-lists (the usual case of an update on a running container) only the
    differences are written, new grants first, so no device the container keeps is ever
    denied in between; otherwise the full sequence (reset with ``a``, then each rule).
    """
    full = list(v1_lines(rules))
    target_allow, target = _simulate(iter(full))
    state = _parse_list(current)
    if state is None or state[0] or target_allow:
        return full
    _, have = state
    order = "rwm"
    out: list[tuple[str, bool]] = []
    for (kind, major, minor), access in target.items():
        if not access <= have.get((kind, major, minor), set()):
            out.append((f"{kind} {major}:{minor} {''.join(c for c in order if c in access)}", True))
    for (kind, major, minor), access in have.items():
        extra = access - target.get((kind, major, minor), set())
        if extra:
            out.append((f"{kind} {major}:{minor} {''.join(c for c in order if c in extra)}", False))
    return out


def is_restrictive(rules: Sequence[Mapping[str, Any]]) -> bool:
    """True if any rule denies something (what v2 would need an eBPF program for)."""
    return any(not r.get("allow", False) for r in rules)
