"""The dead-letter ports: failed messages kept with their reason until an operator replays them.

    DeadLetterSink   put(letter)                      where a service sends a letter
    DeadLetterStore  + pending / mark_replayed / ...  the record: what is parked, what was replayed
    DeadLetterInbox  pull / ack                       letters in transit to the store (Pub/Sub only)

Every letter ends in one store, a `dead_letters` table next to the warehouse's other tables
(`SqlDeadLetters`, shared/adapters/sql/deadletters.py, on DuckDB or BigQuery), so both warehouses
decide the same way that a wallet with a pending letter is parked: not a candidate, not in flight.
The embedded bus puts letters into the store directly. In the cloud, the fetcher and the loader (which
may not write to BigQuery tables they do not own) and Pub/Sub itself (after the last delivery
attempt) publish to the dead-letter topics; the dispatcher moves what waits on their pull
subscriptions (`PubSubDeadLetterInbox`) into the store before it dispatches, replays or reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.core.messages import DeadLetter


@dataclass(frozen=True)
class HeldLetter:
    handle: str
    letter: DeadLetter


@dataclass(frozen=True)
class StoredLetter:
    letter: DeadLetter
    failed_at: datetime | None
    replayed_at: datetime | None


class DeadLetterSink(Protocol):
    def put(self, letter: DeadLetter) -> None: ...


class DeadLetterStore(DeadLetterSink, Protocol):
    def pending(self, limit: int, error_class: str | None = None, wallet: str | None = None) -> list[DeadLetter]:
        """Letters not yet replayed, oldest first, optionally only one error class or wallet."""
        ...

    def mark_replayed(self, letters: list[DeadLetter]) -> None: ...

    def depth(self) -> int:
        """Letters not yet replayed."""
        ...

    def all(self) -> list[StoredLetter]: ...


class DeadLetterInbox(Protocol):
    def pull(self, max_letters: int) -> list[HeldLetter]: ...

    def ack(self, handles: list[str]) -> None: ...


class EmptyInbox:
    """Where letters go straight into the store (the embedded bus), nothing is ever in transit."""

    def pull(self, max_letters: int) -> list[HeldLetter]:
        return []

    def ack(self, handles: list[str]) -> None:
        return None
