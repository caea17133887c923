"""The Warehouse port: trades, checkpoints, leases; one transaction per load batch.

Adapters: `shared.warehouse.duckdb.DuckDBWarehouse` (embedded) and
`shared.warehouse.bigquery.BigQueryWarehouse` (Google). Both keep the same tables (shared.trades
and the checkpoint columns below) and the same guarantee: `commit_batch` merges the batch's rows,
its part records and its checkpoint rows in ONE transaction, or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.messages import FileReady


@dataclass(frozen=True)
class Segment:
    """One loaded part: the stretch of a wallet's walk from cursor_in to cursor_after."""

    wallet: str
    run_id: str
    part: int
    uri: str
    rows: int
    final: bool
    cursor_in: str | None
    cursor_after: str | None

    @classmethod
    def of(cls, f: FileReady) -> Segment:
        return cls(f.wallet, f.run_id, f.part, f.uri, f.rows, f.final, f.cursor_in, f.cursor_after)


@dataclass(frozen=True)
class CheckpointUpdate:
    wallet: str
    run_id: str
    source: str
    status: str  # in_progress | complete
    parts_loaded: int
    final_part: int | None


@dataclass(frozen=True)
class Candidate:
    """A wallet the dispatcher may send: new, or unfinished with its run (to resume)."""

    wallet: str
    run_id: str | None = None
    status: str | None = None
    newest_trade_epoch: int | None = None
    source: str | None = None  # the checkpoint's source (None: never loaded)


@dataclass
class Status:
    wallets_total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    trades: int = 0
    in_flight: int = 0
    dead_letters: int = 0
    newest_load: datetime | None = None


class Warehouse(Protocol):
    def ensure_schema(self) -> None: ...

    def add_traders(self, wallets: Iterable[str]) -> int:
        """Add wallets to the `traders` source table (the embedded runner's wallets file)."""
        ...

    def candidates(
        self, now: datetime, lease_seconds: int, mode: str, limit: int, source: str | None = None
    ) -> Iterator[Candidate]:
        """Stream wallets to dispatch: not complete (backfill) or complete (incremental), not leased,
        not recently active, not parked as a dead letter, and (given `source`) not loaded from another
        source. Never holds the whole list in memory."""
        ...

    def source_conflicts(self, source: str) -> list[tuple[str, str]]:
        """(wallet, source) of the traders whose checkpoint names another source than `source`."""
        ...

    def in_flight(self, now: datetime, lease_seconds: int) -> int: ...

    def lease(self, leases: list[tuple[str, str]], now: datetime, until: datetime, reason: str) -> None: ...

    def release_leases(self, reason: str = "in_flight") -> int: ...

    def segments(self, keys: Iterable[tuple[str, str]]) -> list[Segment]: ...

    def commit_batch(
        self, files: list[FileReady], segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> None: ...

    def status(self, now: datetime, lease_seconds: int) -> Status: ...

    def close(self) -> None: ...
