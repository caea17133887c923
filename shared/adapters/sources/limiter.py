"""Client-side throttle for an API key with several sliding windows (Dome: per second AND per 10 s).

Every fetcher thread of a process shares one limiter. Its windows are the key's: one instance never
exceeds the key by itself. Across Cloud Run instances, an optional `FleetShare` (share.py) paces the
instance at its part of the key, learnt from the API's answers (`observe`), so the fleet as a whole
uses the whole key whatever the number of instances running. A 429 pauses every caller until the
server's reset time (`pause_until`), not just the one that saw it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from shared.adapters.clock import SystemClock
from shared.ports.clock import Clock


class Pacer(Protocol):
    """What the limiter asks of a fleet share (share.py's `FleetShare`): how long to wait before the
    next request, that one was sent, what the API answered, and the pace it allows now."""

    rate: float

    def wait(self, now: float) -> float: ...

    def sent(self, now: float) -> None: ...

    def observe(self, status: int, headers: Mapping[str, str] | None, now: float) -> None: ...


@dataclass(frozen=True)
class Window:
    limit: int
    seconds: float


# Dome's published tiers (docs/design.md, "Facts"): both windows apply.
TIERS: dict[str, tuple[Window, ...]] = {
    "free": (Window(10, 1.0), Window(100, 10.0)),
    "dev": (Window(100, 1.0), Window(500, 10.0)),
    "pro": (Window(300, 1.0), Window(3000, 10.0)),
}


class RateLimiter:
    """Blocks in `acquire()` until a request fits every window; thread-safe.

    `margin` lengthens each window slightly: the server counts arrival times, we count send times,
    and jitter in between must not turn a request at the edge into a 429. `share`: this instance's
    adaptive part of a key a fleet shares (None: the windows alone, the whole key).
    """

    def __init__(
        self,
        windows: tuple[Window, ...],
        clock: Clock | None = None,
        margin: float = 0.02,
        share: Pacer | None = None,
    ) -> None:
        self.windows = tuple(w for w in windows if w.limit > 0)
        self.clock = clock or SystemClock()
        self.margin = margin
        self.share = share
        self._sent: list[deque[float]] = [deque() for _ in self.windows]
        self._paused_until = 0.0
        self._lock = threading.Lock()

    @property
    def sustained_per_second(self) -> float:
        return min((w.limit / w.seconds for w in self.windows), default=float("inf"))

    def _wait_needed(self, now: float) -> float:
        wait = max(0.0, self._paused_until - now)
        for window, sent in zip(self.windows, self._sent, strict=True):
            span = window.seconds * (1 + self.margin)
            while sent and sent[0] <= now - span:
                sent.popleft()
            if len(sent) >= window.limit:
                wait = max(wait, sent[0] + span - now)
        return wait

    @property
    def rate_per_second(self) -> float:
        """The pace this instance keeps now: its share's rate, or the key's sustained rate."""
        return self.share.rate if self.share is not None else self.sustained_per_second

    def try_acquire(self) -> float:
        """Take one slot if every window and the share allow it now (returns 0.0); else take nothing
        and return the seconds to wait."""
        with self._lock:
            now = self.clock.monotonic()
            wait = self._wait_needed(now)
            if self.share is not None:
                wait = max(wait, self.share.wait(now))
            if wait > 0:
                return wait
            for sent in self._sent:
                sent.append(now)
            if self.share is not None:
                self.share.sent(now)
            return 0.0

    def acquire(self) -> float:
        """Take one slot, sleeping as long as needed; returns the seconds waited."""
        waited = 0.0
        while (wait := self.try_acquire()) > 0:
            self.clock.sleep(wait)
            waited += wait
        return waited

    def observe(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        """An answer of the API (its status and rate-limit headers), for the share to learn from."""
        if self.share is not None:
            self.share.observe(status, headers, self.clock.monotonic())

    def pause_until(self, monotonic_deadline: float) -> None:
        """Hold every caller until the given time (a 429's Retry-After or x-ratelimit-reset)."""
        with self._lock:
            self._paused_until = max(self._paused_until, monotonic_deadline)
