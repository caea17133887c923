"""The embedded warehouse under its memory limit: a transaction that does not fit is tried again with a
little more room first (1.25x), then twice the room, then fails as systemic with nothing committed; the
limit is back where it was after each. The room of a retry is the run's peak memory (docs/benchmarks.md:
doubling at once put +40 MB on the whale-last list's peak RSS)."""

from __future__ import annotations

import logging

import pytest

from shared.adapters.local.duckdb import MEMORY_LIMIT_MB, MORE_ROOM, DuckDBWarehouse, OutOfMemory
from shared.adapters.sql.dialect import Sql

# One list DuckDB cannot spill to disk. Measured under DuckDB's pinned version with one thread: 2,000,000
# items fit in 56 MB, 3,000,000 need more than 56 and fit in 70 (1.25x), 4,000,000 need more than 70 and fit
# in 112 (2x), 5,000,000 fit in none of them.
NEEDS = "SELECT length(list(i)) FROM range({n}) AS t(i)"
MARKER = "INSERT INTO traders (wallet_address) VALUES ('0x' || repeat('a', 40))"


@pytest.fixture
def warehouse(tmp_path):
    assert (MEMORY_LIMIT_MB, MORE_ROOM) == (56, (1.25, 2.0)), "the sizes below are calibrated for these"
    w = DuckDBWarehouse(tmp_path / "w.duckdb")
    w.create_schema()
    yield w
    w.close()


def limit(w: DuckDBWarehouse) -> str:
    return str(w.cursor().execute("SELECT current_setting('memory_limit')").fetchone()[0])


def traders(w: DuckDBWarehouse) -> int:
    return int(w.cursor().execute("SELECT COUNT(*) FROM traders").fetchone()[0])


def retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum("ran out of memory" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("items", "expected_retries"), [(2_000_000, 0), (3_000_000, 1), (4_000_000, 2)])
def test_a_transaction_that_does_not_fit_gets_a_little_more_room_first(warehouse, caplog, items, expected_retries):
    before = limit(warehouse)
    with caplog.at_level(logging.WARNING, logger="shared.adapters.local.duckdb"):
        warehouse.transaction([MARKER, NEEDS.format(n=items)], Sql("", {}))
    assert retries(caplog) == expected_retries  # 4,000,000 items: 70 MB first, then 112 (not 112 at once)
    assert limit(warehouse) == before
    assert traders(warehouse) == 1  # committed once, whatever the number of tries


def test_a_transaction_that_never_fits_fails_as_systemic_and_commits_nothing(warehouse, caplog):
    before = limit(warehouse)
    with caplog.at_level(logging.WARNING, logger="shared.adapters.local.duckdb"), pytest.raises(OutOfMemory):
        warehouse.transaction([MARKER, NEEDS.format(n=5_000_000)], Sql("", {}))
    assert retries(caplog) == len(MORE_ROOM)
    assert limit(warehouse) == before
    assert traders(warehouse) == 0
