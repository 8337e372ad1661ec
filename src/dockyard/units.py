"""Docker's human units (go-units), shared by the API (container Status) and the CLI.

    human_size(4261000) == "4.26MB"        HumanSizeWithPrecision(n, 3): decimal, 3 digits
    binary_size(1572864) == "1.5MiB"       BytesSize: binary, 4 digits
    human_duration(75) == "About a minute" HumanDuration
"""

from __future__ import annotations

__all__ = ["binary_size", "human_duration", "human_size"]

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _scaled(size: float, base: float, units: tuple[str, ...], digits: int) -> str:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{digits}g}{units[i]}"


def human_size(size: float, precision: int = 3) -> str:
    """``HumanSizeWithPrecision``; docker's tables use 3 digits, ``units.HumanSize`` 4."""
    return _scaled(size, 1000.0, _DECIMAL, precision)


def binary_size(size: float) -> str:
    return _scaled(size, 1024.0, _BINARY, 4)


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds // 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"
