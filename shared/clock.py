"""Time as a collaborator: handlers and the limiter take a Clock so tests never wait on the wall."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def now(self) -> datetime: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when something sleeps on it or a test advances it."""

    def __init__(self, start: float = 1_000.0, wall: datetime | None = None) -> None:
        self.t = start
        self.wall = wall or datetime(2026, 1, 1, tzinfo=UTC)
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(seconds, 0.0))

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def now(self) -> datetime:
        from datetime import timedelta

        return self.wall + timedelta(seconds=self.t)
