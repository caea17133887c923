"""The Clock port: time as a collaborator, so handlers and the limiter can be tested without waiting.
Adapter: `SystemClock` (shared/adapters/clock.py); tests use `tests.fakes.FakeClock`."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def now(self) -> datetime: ...
