"""The dead-letter port: failed wallets (and part files) kept with the reason, until replayed.

Adapters: `DuckDBDeadLetters` (a table next to the embedded warehouse) here; the Pub/Sub one (a
dead-letter topic and its pull subscription) in shared/gcp/pubsub.py. `pull` hands out letters with
a handle; a letter is gone only after `ack(handle)`, which replay calls once its republish is confirmed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.messages import DeadLetter


@dataclass(frozen=True)
class HeldLetter:
    handle: str
    letter: DeadLetter


class DeadLetterQueue(Protocol):
    def put(self, letter: DeadLetter) -> None: ...

    def pull(self, max_letters: int) -> list[HeldLetter]: ...

    def ack(self, handles: list[str]) -> None: ...

    def depth(self) -> int: ...


def letter_id(letter: DeadLetter) -> str:
    """Same message, same reason: same id, so a re-run does not pile up copies of one failure."""
    text = f"{letter.topic}\x1f{letter.data}\x1f{letter.error_class}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class DuckDBDeadLetters:
    """Dead letters in the embedded DuckDB file; a replayed letter keeps its row, marked replayed."""

    def __init__(self, connection: Any, lock: Any, clock_now: Any) -> None:
        self._con = connection
        self._lock = lock
        self._now = clock_now

    def put(self, letter: DeadLetter) -> None:
        with self._lock:
            self._con.cursor().execute(
                """INSERT INTO dead_letters (id, topic, data, attributes, error_class, error, wallet, attempts,
                                             failed_at, replayed_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
                   ON CONFLICT (id) DO UPDATE SET error = excluded.error, attempts = excluded.attempts,
                       failed_at = excluded.failed_at, replayed_at = NULL""",
                [
                    letter_id(letter),
                    letter.topic,
                    letter.data,
                    json.dumps(letter.attributes),
                    letter.error_class,
                    letter.error,
                    letter.wallet,
                    letter.attempts,
                    self._now(),
                ],
            )

    def pull(self, max_letters: int) -> list[HeldLetter]:
        return list(self._pending(max_letters))

    def _pending(self, limit: int) -> Iterator[HeldLetter]:
        rows = (
            self._con.cursor()
            .execute(
                """SELECT id, topic, data, attributes, error_class, error, wallet, attempts FROM dead_letters
               WHERE replayed_at IS NULL ORDER BY failed_at, id LIMIT ?""",
                [limit],
            )
            .fetchall()
        )
        for id_, topic, data, attrs, error_class, error, wallet, attempts in rows:
            yield HeldLetter(
                id_,
                DeadLetter(
                    topic=topic,
                    data=data,
                    attributes=json.loads(attrs or "{}"),
                    error_class=error_class,
                    error=error,
                    wallet=wallet,
                    attempts=attempts,
                ),
            )

    def ack(self, handles: list[str]) -> None:
        if not handles:
            return
        with self._lock:
            self._con.cursor().execute(
                "UPDATE dead_letters SET replayed_at = ? WHERE id IN (SELECT unnest(?))", [self._now(), handles]
            )

    def depth(self) -> int:
        return int(
            self._con.cursor().execute("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL").fetchone()[0]
        )

    def all(self) -> list[tuple[DeadLetter, datetime | None]]:
        rows = (
            self._con.cursor()
            .execute(
                """SELECT topic, data, attributes, error_class, error, wallet, attempts, replayed_at
               FROM dead_letters ORDER BY failed_at, id"""
            )
            .fetchall()
        )
        return [
            (
                DeadLetter(
                    topic=t, data=d, attributes=json.loads(a or "{}"), error_class=c, error=e, wallet=w, attempts=n
                ),
                r,
            )
            for t, d, a, c, e, w, n, r in rows
        ]
