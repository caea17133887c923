"""The dead-letter store as a table of the warehouse (DuckDB or BigQuery), through the SQL base.

A replayed letter keeps its row, marked with `replayed_at`; the same failure again (same message, same
reason: same id) makes it pending again. Candidates and in-flight counts leave out a wallet with a
pending letter, in the same statement text on both warehouses (shared/adapters/sql/statements.py).
"""

from __future__ import annotations

import json

from shared.adapters.sql import letters as lt
from shared.adapters.sql.warehouse import SqlWarehouse
from shared.core.messages import DeadLetter
from shared.ports.clock import Clock
from shared.ports.deadletters import StoredLetter

ALL = 1_000_000


class SqlDeadLetters:
    def __init__(self, warehouse: SqlWarehouse, clock: Clock) -> None:
        self.warehouse = warehouse
        self.clock = clock

    def put(self, letter: DeadLetter) -> None:
        row = {
            "id": letter.id,
            "topic": letter.topic,
            "data": letter.data,
            "attributes": json.dumps(letter.attributes, sort_keys=True),
            "error_class": letter.error_class,
            "error": letter.error,
            "wallet": letter.wallet,
            "attempts": letter.attempts,
            "failed_at": self.clock.now(),
            "replayed_at": None,
        }
        self.warehouse.execute(lt.put_dead_letter(self.warehouse.names, row))

    def pending(self, limit: int, error_class: str | None = None, wallet: str | None = None) -> list[DeadLetter]:
        return [s.letter for s in self._read(True, limit, error_class, wallet)]

    def mark_replayed(self, letters: list[DeadLetter]) -> None:
        if letters:
            self.warehouse.execute(lt.mark_replayed(self.warehouse.names, [x.id for x in letters], self.clock.now()))

    def depth(self) -> int:
        return int(next(iter(self.warehouse.query(lt.letter_depth(self.warehouse.names))))["n"])

    def all(self) -> list[StoredLetter]:
        return self._read(False, ALL, None, None)

    def _read(self, pending: bool, limit: int, error_class: str | None, wallet: str | None) -> list[StoredLetter]:
        sql = lt.letters(
            self.warehouse.names, pending_only=pending, limit=limit, error_class=error_class, wallet=wallet
        )
        return [
            StoredLetter(
                DeadLetter(
                    topic=r["topic"],
                    data=r["data"],
                    attributes=json.loads(r["attributes"] or "{}"),
                    error_class=r["error_class"],
                    error=r["error"],
                    wallet=r["wallet"],
                    attempts=r["attempts"],
                ),
                r["failed_at"],
                r["replayed_at"],
            )
            for r in self.warehouse.query(sql)
        ]
