"""A logger that imports :mod:`logging` on first use, not at import time.

``logging`` (with threading, traceback, string, weakref) costs ~5 ms at interpreter start-up;
``dockyard-runtime`` starts once per container operation and logs only on rare paths.
``LazyLogger("dockyard.cgroups").warning(...)`` is ``logging.getLogger("dockyard.cgroups")
.warning(...)`` (same logger, same handlers, so ``caplog`` and the daemon's set-up see it).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

__all__ = ["LazyLogger"]


class LazyLogger:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def logger(self) -> logging.Logger:
        import logging

        return logging.getLogger(self.name)

    def debug(self, msg: str, *args: object) -> None:
        self.logger().debug(msg, *args, stacklevel=2)

    def info(self, msg: str, *args: object) -> None:
        self.logger().info(msg, *args, stacklevel=2)

    def warning(self, msg: str, *args: object) -> None:
        self.logger().warning(msg, *args, stacklevel=2)

    def error(self, msg: str, *args: object) -> None:
        self.logger().error(msg, *args, stacklevel=2)
