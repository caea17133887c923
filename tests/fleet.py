"""A fleet of instances against one API key, in fake time: each instance's real `RateLimiter` (and
`FleetShare`) sends through one fake server that counts the key's sliding windows the way the Dome
simulator does (`emulators.dome.ratelimit`), answering 429 with Retry-After when a window is full and,
unless told not to, the x-ratelimit-* headers on every answer.

A discrete-event loop, no threads and no sleeping: an instance tries to send whenever it has a free
slot (`concurrency` requests in flight at most, each answered `latency` seconds later); when its
limiter says wait, it tries again then. Instances may join and leave at given times.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field

from emulators.dome.ratelimit import SlidingWindows
from shared.adapters.sources.limiter import RateLimiter, Window
from shared.adapters.sources.share import FleetShare
from tests.fakes import FakeClock

KEY = "fleet-key"


@dataclass
class Instance:
    limiter: RateLimiter
    start: float
    stop: float
    concurrency: int
    in_flight: int = 0
    generation: int = 0
    sent: list[float] = field(default_factory=list)
    admitted: list[float] = field(default_factory=list)
    refused: int = 0
    rates: list[tuple[float, float]] = field(default_factory=list)
    """(time, the limiter's pace) after each answer."""

    def admitted_between(self, a: float, b: float) -> int:
        return sum(1 for t in self.admitted if a <= t < b)


class Fleet:
    def __init__(
        self,
        windows: tuple[Window, ...],
        most_instances: int,
        *,
        headers: bool = True,
        latency: float = 0.08,
        concurrency: int = 16,
    ) -> None:
        self.windows, self.most_instances = windows, most_instances
        self.headers, self.latency, self.concurrency = headers, latency, concurrency
        self.clock = FakeClock(start=0.0)
        self.server = SlidingWindows([(w.limit, w.seconds) for w in windows], self.clock.monotonic)
        self.instances: list[Instance] = []
        self.admitted: list[float] = []
        self.refused: list[float] = []
        self._events: list[tuple[float, int, str, int, int]] = []
        self._seq = itertools.count()
        self._answers: dict[int, tuple[int, dict[str, str]]] = {}

    @property
    def sustained(self) -> float:
        return min(w.limit / w.seconds for w in self.windows)

    def add(self, start: float = 0.0, stop: float = math.inf, *, windows: tuple[Window, ...] | None = None) -> Instance:
        """An instance of the fleet: its limiter holds the key's windows and a FleetShare. With
        `windows`: a user of the same key outside the fleet, throttled by those windows alone."""
        pace = FleetShare(self.windows, self.most_instances) if windows is None else None
        limiter = RateLimiter(windows or self.windows, clock=self.clock, share=pace)
        instance = Instance(limiter, start, stop, self.concurrency)
        self.instances.append(instance)
        self._try(len(self.instances) - 1, start)
        return instance

    def run(self, until: float) -> None:
        while self._events and self._events[0][0] < until:
            at, _, kind, index, tag = heapq.heappop(self._events)  # tag: a try's generation, an answer's key
            self.clock.t = max(self.clock.t, at)
            instance = self.instances[index]
            if kind == "answer":
                self._answer(index, instance, tag)
            elif tag == instance.generation and at < instance.stop:
                self._send(index, instance)
        self.clock.t = max(self.clock.t, until)

    def _try(self, index: int, at: float) -> None:
        instance = self.instances[index]
        instance.generation += 1  # an earlier try still queued is void
        heapq.heappush(self._events, (at, next(self._seq), "try", index, instance.generation))

    def _send(self, index: int, instance: Instance) -> None:
        if instance.in_flight >= instance.concurrency:
            return  # the next answer tries again
        wait = instance.limiter.try_acquire()
        if wait > 0:
            self._try(index, self.clock.t + wait)
            return
        now = self.clock.t
        instance.sent.append(now)
        verdict = self.server.admit(KEY)
        assert verdict is not None
        status = 200 if verdict.allowed else 429
        headers = verdict.headers(wall_now=1_800_000_000.0 + now)
        if not self.headers:
            headers = {k: v for k, v in headers.items() if not k.startswith("x-ratelimit")}
        if verdict.allowed:
            self.admitted.append(now)
            instance.admitted.append(now)
        else:
            self.refused.append(now)
            instance.refused += 1
        instance.in_flight += 1
        seq = next(self._seq)
        self._answers[seq] = (status, headers)
        heapq.heappush(self._events, (now + self.latency, seq, "answer", index, seq))
        self._try(index, now)

    def _answer(self, index: int, instance: Instance, key: int) -> None:
        status, headers = self._answers.pop(key)
        instance.in_flight -= 1
        instance.limiter.observe(status, headers)
        if status == 429:  # what HttpTradeClient does: hold every caller of the instance
            instance.limiter.pause_until(self.clock.t + float(headers.get("Retry-After", "1")))
        instance.rates.append((self.clock.t, instance.limiter.rate_per_second))
        if self.clock.t < instance.stop:
            self._try(index, self.clock.t)

    # -- what the server saw ---------------------------------------------------------------------------

    def used(self, a: float, b: float) -> float:
        """Admitted requests in [a, b) over what the key's sustained rate allows in that time."""
        return sum(1 for t in self.admitted if a <= t < b) / (self.sustained * (b - a))

    def refused_share(self) -> float:
        total = len(self.admitted) + len(self.refused)
        return len(self.refused) / total if total else 0.0


def most_in_window(times: list[float], seconds: float) -> int:
    """The most of `times` (sorted) in any window of `seconds`."""
    j, best = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - seconds:
            j += 1
        best = max(best, i - j + 1)
    return best
