"""The event bus behind ``GET /events``: a bounded history plus live subscribers."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field

HISTORY = 1024


@dataclass(frozen=True)
class Event:
    type: str                # container, image, volume, network, daemon
    action: str              # create, start, die, destroy, tag, untag, delete, ...
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = 0


class EventBus:
    def __init__(self) -> None:
        self.history: collections.deque[Event] = collections.deque(maxlen=HISTORY)
        self.subscribers: set[asyncio.Queue[Event]] = set()

    def publish(self, type_: str, action: str, actor_id: str, **attributes: str) -> Event:
        ev = Event(type_, action, actor_id, {k: v for k, v in attributes.items() if v is not None},
                   time.time_ns())
        self.history.append(ev)
        for q in self.subscribers:
            q.put_nowait(ev)
        return ev

    def subscribe(self) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue()
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        self.subscribers.discard(q)


__all__ = ["Event", "EventBus"]
