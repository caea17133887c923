"""The Warehouse port: traders, trades, checkpoints, part records, leases; one transaction per batch.

Adapters: `DuckDBWarehouse` (shared/adapters/local/duckdb.py, embedded) and `BigQueryWarehouse`
(shared/adapters/gcp/bigquery.py). Both are thin dialects of one SQL base (shared/adapters/sql/), read
the same table spec (shared/core/tables.py), and are held equal by one contract suite
(tests/contract/test_warehouse.py). `commit_batch` merges the batch's rows, its part records and its
checkpoint rows in ONE transaction, or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from shared.core.chain import Segment

if TYPE_CHECKING:  # the warehouse process reads these types' objects without pydantic's 17 MB
    from shared.core.messages import FileReady, LookupReady

__all__ = ["Candidate", "CheckpointUpdate", "Segment", "Status", "Stored", "Warehouse"]


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


@dataclass(frozen=True)
class Stored:
    """What the warehouse holds for one complete wallet: the checkpoint's count (the loader's COUNT(*) of
    the wallet's trades when it committed), the rows `trades` holds now, and the final parts of the
    checkpoint's run that are loaded (none: no loader completed that run)."""

    wallet: str
    run_id: str
    source: str | None
    trades_loaded: int
    rows: int
    final_parts: int


@dataclass
class Status:
    wallets_total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    trades: int = 0
    in_flight: int = 0
    dead_letters: int = 0  # letters not yet replayed (wallets, files, invalid lines of a wallets file)
    parked: int = 0  # wallets of the traders table with a pending dead letter
    condition_ids: int = 0  # distinct condition ids the trades name
    markets: int = 0
    unresolved_markets: int = 0
    oldest_unresolved_fetch: datetime | None = None  # the stalest row of a market not yet resolved
    events: int = 0
    markets_not_found: int = 0  # condition ids the markets API does not know (asked again after a day)
    events_not_found: int = 0
    newest_load: datetime | None = None
    oldest_sync: datetime | None = None  # the complete wallet whose last walk is the oldest
    sync_due: int = 0  # complete wallets last walked before the given sync time
    sync_overdue: int = 0  # ... and before the day before it (a missed daily sync)


class Warehouse(Protocol):
    def create_schema(self) -> None:
        """Create what is missing from the table spec (the embedded file, the emulators, a first run)."""
        ...

    def check_schema(self) -> None:
        """Raise SchemaMismatch (systemic) unless every table has the spec's columns and types."""
        ...

    def add_traders(self, wallets: Iterable[str]) -> int:
        """Add wallets to the `traders` table; returns how many were new."""
        ...

    def candidates(
        self, now: datetime, limit: int, source: str | None = None, sync_before: datetime | None = None
    ) -> Iterator[Candidate]:
        """Stream wallets to dispatch: not complete, and (given `sync_before`) complete but last walked
        before it; not leased, not parked by a pending dead letter, and (given `source`) not loaded
        from another source. Never holds the whole list in memory."""
        ...

    def source_conflicts(self, source: str) -> list[tuple[str, str]]:
        """(wallet, source) of the traders whose checkpoint names another source than `source`."""
        ...

    def forget_wallets(self, wallets: list[str]) -> int:
        """Drop the wallets' rows, checkpoints, parts and leases in one transaction; returns rows dropped."""
        ...

    def in_flight(self, now: datetime) -> int:
        """Wallets leased for work, not finished by their run, not parked by a pending dead letter."""
        ...

    def lease(self, leases: list[tuple[str, str]], now: datetime, until: datetime, reason: str) -> None:
        """Take the leases whoever holds them (a replay)."""
        ...

    def claim(self, leases: list[tuple[str, str]], now: datetime, until: datetime, token: str) -> set[str]:
        """Take the leases no one holds, atomically; the wallets this call (`token`) now holds."""
        ...

    def unclaim(self, token: str, wallets: list[str]) -> None:
        """Give back leases this call took and will not use (its publish failed)."""
        ...

    def release_leases(self, reason: str = "in_flight") -> int: ...

    def segments(self, keys: Iterable[tuple[str, str]]) -> list[Segment]: ...

    def commit_batch(
        self, files: list[FileReady], segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> None: ...

    def lookup_candidates(
        self, kind: str, now: datetime, stale_before: datetime, miss_before: datetime, limit: int
    ) -> list[str]:
        """Condition ids (kind markets) or event slugs (events) due for a lookup: no row, or an unresolved
        row fetched before `stale_before`; not a miss since `miss_before`; not being looked up now."""
        ...

    def claim_lookups(self, kind: str, keys: list[str], now: datetime, until: datetime, token: str) -> set[str]:
        """Take the lookups of keys no one is looking up, atomically; the keys this call holds."""
        ...

    def commit_lookups(self, kind: str, files: list[LookupReady], now: datetime) -> None:
        """Merge lookup part files and record their misses, in one transaction."""
        ...

    def status(self, now: datetime, sync_before: datetime | None = None) -> Status:
        """Counts for an operator; with `sync_before`, how many complete wallets wait for their sync."""
        ...

    def complete_wallets(self, after: str | None, limit: int, wallets: list[str] | None = None) -> list[Stored]:
        """Up to `limit` complete wallets after `after` in wallet order (only `wallets`' when given), each
        with what the warehouse holds for it: a chunk of a verification that walks every one by key.
        Reads only."""
        ...

    def close(self) -> None: ...
