"""Links own simulated time.

Each direction of a link is a :class:`Channel` (full duplex): it serialises what it
carries at ``capacity_bps`` in FIFO order and delivers each message ``latency_s`` after
its last bit left.  Nodes never compute a delay; they hand a payload to a channel and
wait on their :class:`Mailbox`.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Hashable

import simpy

__all__ = ["Mailbox", "Channel", "transmission_time_s"]


def transmission_time_s(nbytes: int, capacity_bps: float) -> float:
    """Serialisation time of ``nbytes`` on a link of ``capacity_bps`` bits per second."""
    return 8.0 * nbytes / capacity_bps


class Mailbox:
    """FIFO of delivered payloads with a waitable ``get`` (a lean ``simpy.Store``)."""

    __slots__ = ("env", "items", "waiting")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.items: deque = deque()
        self.waiting: deque = deque()

    def put(self, payload: Any) -> None:
        if self.waiting:
            self.waiting.popleft().succeed(payload)
        else:
            self.items.append(payload)

    def get(self) -> simpy.Event:
        event = self.env.event()
        if self.items:
            event.succeed(self.items.popleft())
        else:
            self.waiting.append(event)
        return event


class Channel:
    """One direction of one link: a FIFO serialiser followed by a fixed latency."""

    __slots__ = ("env", "src", "dst", "capacity_bps", "latency_s", "mailbox", "free_at_s")

    def __init__(self, env: simpy.Environment, src: Hashable, dst: Hashable,
                 capacity_bps: float, latency_s: float) -> None:
        self.env, self.src, self.dst = env, src, dst
        self.capacity_bps, self.latency_s = capacity_bps, latency_s
        self.mailbox = Mailbox(env)
        self.free_at_s = 0.0

    def transmit(self, payload: Any, nbytes: int) -> tuple[float, float]:
        """Queue ``payload`` for delivery; return (start, arrival) times in seconds.

        The payload lands in ``self.mailbox`` at the arrival time.  The sender does not
        block: its network interface serialises while it goes on computing.
        """
        now = self.env.now
        start = max(now, self.free_at_s)
        self.free_at_s = start + transmission_time_s(nbytes, self.capacity_bps)
        arrival = self.free_at_s + self.latency_s
        delivery = self.env.timeout(arrival - now, payload)
        delivery.callbacks.append(self._deliver)
        return start, arrival

    def _deliver(self, event: simpy.Event) -> None:
        self.mailbox.put(event.value)
