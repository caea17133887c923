"""A circuit breaker over the trade API's health, shared by every fetch of a process (design rule 13).

One wallet's failures are that wallet's: its task is retried and, in the end, dead-lettered. But when
requests for `threshold` different wallets fail in a row — connection refused, timeouts, 5xx, bodies
that are not JSON — with no success in between, the fault is not any wallet's: the breaker opens, and
every caller gets a `SourceDown` (systemic) instead of spending its retries, so the run halts with the
cause (the embedded runner) or the fetcher answers 503 at once without calling the API (the services).
After `cooldown` seconds one call is let through as a probe; its success closes the breaker.

Rate limiting (429) never counts: the limiter handles it, and it is the API being healthy but busy.
"""

from __future__ import annotations

import threading

from shared.core.errors import SourceDown
from shared.ports.clock import Clock
from shared.ports.source import BreakerState


class Breaker:
    def __init__(self, clock: Clock, threshold: int = 5, cooldown: float = 30.0) -> None:
        self.clock = clock
        self.threshold = threshold
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._failures = 0
        self._wallets: set[str] = set()
        self._cause: str | None = None
        self._opened_at: float | None = None
        self._probing = False

    def check(self) -> None:
        """Before a request: raise SourceDown while open (one probe may pass after the cooldown)."""
        with self._lock:
            if self._opened_at is None:
                return
            waited = self.clock.monotonic() - self._opened_at
            if waited >= self.cooldown and not self._probing:
                self._probing = True
                return
            raise self._error()

    def success(self) -> None:
        with self._lock:
            self._failures, self._wallets, self._cause = 0, set(), None
            self._opened_at, self._probing = None, False

    def failure(self, wallet: str | None, cause: str) -> SourceDown | None:
        """Count a failed request; the SourceDown to raise when this failure opens (or keeps open) it."""
        with self._lock:
            self._failures += 1
            self._wallets.add(wallet or "")
            self._cause = cause
            if self._opened_at is not None:  # a failed probe: open again for another cooldown
                self._opened_at, self._probing = self.clock.monotonic(), False
                return self._error()
            if self._failures >= self.threshold and len(self._wallets) >= self.threshold:
                self._opened_at = self.clock.monotonic()
                return self._error()
            return None

    def state(self) -> BreakerState:
        with self._lock:
            return BreakerState(
                self._opened_at is not None, self._failures, len(self._wallets), self._cause, self._opened_at
            )

    def _error(self) -> SourceDown:
        return SourceDown(
            f"the trade API is failing for every wallet ({self._failures} requests for {len(self._wallets)} "
            f"wallets in a row failed; last: {self._cause})"
        )
