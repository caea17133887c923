"""The embedded loader alone: a kept run's part files merged again, as the runner merges them.

`python -m bench.throughput --keep DIR` (or `bench.memory --keep DIR`) leaves each case's DuckDB file and
its part files in DIR. This replays one case: the FileReady of every part its `checkpoint_parts` records,
in the order they were loaded, through the real `load()` into a fresh DuckDB file, in the runner's groups
(50 messages, transactions of at most `batch_rows` rows). No fetching, no simulator: the loader's own
speed and memory, which is what bounds the embedded run on Dome (docs/benchmarks.md).

    python -m bench.loader DIR [--case dome-whale-last]

Printed: transactions, rows, rows/s, out-of-memory retries, peak RSS, and whether the replay holds
exactly the rows and complete wallets of the original file.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from bench.memory import peak_rss_mb
from shared.adapters.clock import SystemClock
from shared.adapters.local.duckdb import DuckDBWarehouse
from shared.adapters.local.files import LocalObjectStore
from shared.core.messages import FileReady
from shared.embedded.runner import by_rows
from shared.handlers.load import load

PART_COLUMNS = (
    "wallet_address, run_id, part, uri, rows, final, cursor_in, cursor_after, span_since, span_until,"
    " window_lo, window_hi, split_at, split_children"
)
FINGERPRINT = (
    "SELECT COUNT(*), COUNT(DISTINCT (wallet_address, trade_key)),"
    " (SELECT COUNT(*) FROM checkpoints WHERE status = 'complete') FROM trades"
)


class Retries(logging.Handler):
    """Counts the warehouse's out-of-memory retries (it logs a warning for each)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "out of memory" in record.getMessage()


def messages(original: DuckDBWarehouse, source: str) -> list[FileReady]:
    """The FileReady each recorded part was loaded from (a window equal to the walk's span was no window)."""
    out = []
    sql = f"SELECT {PART_COLUMNS} FROM checkpoint_parts ORDER BY loaded_at, uri"
    for row in original.cursor().execute(sql).fetchall():
        (wallet, run_id, part, uri, rows, final, c_in, c_after, since, until, lo, hi, split_at, children) = row
        out.append(
            FileReady(
                run_id=run_id, wallet=wallet, part=part, uri=uri, rows=rows, final=final, cursor_in=c_in,
                cursor_after=c_after, since=since, until=until, window=None if (lo, hi) == (since, until) else (lo, hi),
                split_at=split_at, children=tuple(tuple(c) for c in json.loads(children)) if children else (),
                source=source,
            )
        )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loader", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="a --keep DIR of bench.throughput or bench.memory")
    parser.add_argument("--case", default="dome-whale-last", help="the case's name (its DIR/<case>.duckdb)")
    args = parser.parse_args(argv)
    kept = Path(args.dir)
    original = DuckDBWarehouse(kept / f"{args.case}.duckdb", read_only=True)
    source = "polymarket" if args.case.startswith("polymarket") else "dome"
    batch, expected = messages(original, source), original.cursor().execute(FINGERPRINT).fetchone()
    original.close()
    if not batch:
        raise SystemExit(f"no parts recorded in {kept / args.case}.duckdb")
    retries = Retries()
    logging.getLogger("shared.adapters.local.duckdb").addHandler(retries)
    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        warehouse = DuckDBWarehouse(Path(tmp) / "replay.duckdb")
        warehouse.create_schema()
        store, clock = LocalObjectStore(kept / f"{args.case}-parts"), SystemClock()
        transactions, started = 0, time.monotonic()
        for i in range(0, len(batch), 50):
            for group in by_rows([(m, None) for m in batch[i : i + 50]], warehouse.batch_rows):  # type: ignore[misc]
                result = load([m for m, _ in group], warehouse=warehouse, store=store, clock=clock)
                if result.failed or result.untrusted:
                    raise SystemExit(f"the replay did not load: {result.failed or result.untrusted}")
                transactions += 1
        got = warehouse.cursor().execute(FINGERPRINT).fetchone()
        warehouse.close()  # its last checkpoint is the loader's work too
        elapsed = time.monotonic() - started
    rows = got[0]
    print(f"{args.case}: {len(batch)} parts in {transactions} transactions, {rows:,} rows in {elapsed:.1f} s")
    print(f"  loader      {rows / elapsed:,.0f} rows/s; {retries.count} out-of-memory retries")
    print(f"  peak RSS    {peak_rss_mb():.0f} MB")
    exact = got == expected
    print(f"  same as the original: {'yes' if exact else 'NO'} (rows, keys, complete wallets: {got}; {expected})")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
