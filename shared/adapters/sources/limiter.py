"""Client-side throttle for an API key with several sliding windows (Dome: per second AND per 10 s).

Every fetcher thread shares one limiter; across Cloud Run instances each instance gets its share of
the key (terraform divides the tier by the fetcher's max instances), so the fleet stays under it.
A 429 pauses every caller until the server's reset time (`pause_until`), not just the one that saw it.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from shared.adapters.clock import SystemClock
from shared.ports.clock import Clock


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
    and jitter in between must not turn a request at the edge into a 429.
    """

    def __init__(self, windows: tuple[Window, ...], clock: Clock | None = None, margin: float = 0.02) -> None:
        self.windows = tuple(w for w in windows if w.limit > 0)
        self.clock = clock or SystemClock()
        self.margin = margin
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

    def acquire(self) -> float:
        """Take one slot, sleeping as long as needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock.monotonic()
                wait = self._wait_needed(now)
                if wait <= 0:
                    for sent in self._sent:
                        sent.append(now)
                    return waited
            self.clock.sleep(wait)
            waited += wait

    def pause_until(self, monotonic_deadline: float) -> None:
        """Hold every caller until the given time (a 429's Retry-After or x-ratelimit-reset)."""
        with self._lock:
            self._paused_until = max(self._paused_until, monotonic_deadline)
