"""Server-side rate limits per API key: sliding windows (1 s and 10 s for Dome), all of which apply.

A request is admitted only if every window has room; only admitted requests are counted, so a
client that keeps hammering while limited does not extend its own ban.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    """The binding window's limit: the one refusing, or the one with the least room left."""
    remaining: int
    reset_after: float
    """Seconds until that window has room again."""

    @property
    def retry_after(self) -> int:
        """Whole seconds, rounded up, at least 1 (what the Retry-After header says)."""
        return max(1, math.ceil(self.reset_after))

    def headers(self, wall_now: float) -> dict[str, str]:
        headers = {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(math.ceil(wall_now + self.reset_after)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class SlidingWindows:
    def __init__(self, windows: list[tuple[int, float]], clock: Callable[[], float]) -> None:
        """`windows`: (limit, seconds) pairs; an empty list admits everything."""
        self.windows = windows
        self.clock = clock
        self._admitted: dict[str, list[deque[float]]] = {}

    def admit(self, key: str) -> Verdict | None:
        """Count the request if every window has room; None when there are no windows at all."""
        if not self.windows:
            return None
        now = self.clock()
        queues = self._admitted.setdefault(key, [deque() for _ in self.windows])
        for (_, seconds), queue in zip(self.windows, queues, strict=True):
            while queue and queue[0] <= now - seconds:
                queue.popleft()
        full = [
            (queue[0] + seconds - now, limit)
            for (limit, seconds), queue in zip(self.windows, queues, strict=True)
            if len(queue) >= limit
        ]
        if full:
            wait, limit = max(full)
            return Verdict(False, limit, 0, wait)
        for queue in queues:
            queue.append(now)
        room = [
            (limit - len(queue), queue[0] + seconds - now, limit)
            for (limit, seconds), queue in zip(self.windows, queues, strict=True)
        ]
        remaining, reset_after, limit = min(room)
        return Verdict(True, limit, remaining, reset_after)
