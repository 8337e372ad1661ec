"""Signal numbers and dispositions without the ``signal`` module.

``signal`` wraps its C half (``_signal``) in ``enum`` classes, and importing ``enum`` costs
~2 ms: more than a ``dockyard-runtime`` call may spend on imports. The runtime's hot path
(create, run, delete, the container init) needs only numbers and ``signal()``, which is all
this module gives. Values are those of ``_signal`` itself, so they are right on every
architecture; the daemon and anything off that path use ``signal`` as usual.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no typeshed stub: the C half of `signal`

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import FrameType

__all__ = ["SIGCHLD", "SIGHUP", "SIGINT", "SIGKILL", "SIGPIPE", "SIGQUIT", "SIGTERM", "SIGUSR1",
           "SIGUSR2", "SIGWINCH", "SIGXFSZ", "handle", "reset"]

SIGHUP: int = _signal.SIGHUP
SIGINT: int = _signal.SIGINT
SIGQUIT: int = _signal.SIGQUIT
SIGKILL: int = _signal.SIGKILL
SIGUSR1: int = _signal.SIGUSR1
SIGUSR2: int = _signal.SIGUSR2
SIGPIPE: int = _signal.SIGPIPE
SIGTERM: int = _signal.SIGTERM
SIGCHLD: int = _signal.SIGCHLD
SIGXFSZ: int = _signal.SIGXFSZ
SIGWINCH: int = _signal.SIGWINCH


def handle(sig: int, handler: Callable[[int, FrameType | None], object]) -> None:
    """Run ``handler(sig, frame)`` in the main thread when ``sig`` arrives."""
    _signal.signal(sig, handler)


def reset(signals: Iterable[int]) -> None:
    """Default disposition for ``signals`` and an empty signal mask: what a new program should
    inherit across execve(2) (Python ignores SIGPIPE and SIGXFSZ, and ignoring survives exec)."""
    for sig in signals:
        _signal.signal(sig, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
