"""The embedded warehouse: one DuckDB file with the same tables as BigQuery.

One process writes it (DuckDB locks the file); inside the process every write takes one lock, and
`commit_batch` is a single transaction: MERGE the part files' rows (deduplicated on the natural key)
into trades, record the parts, MERGE the checkpoints — all or nothing, even under SIGKILL (WAL).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb

from shared.errors import PermanentError, SystemicError, TransientError, WarehouseUnavailable
from shared.messages import FileReady
from shared.trades import COLUMN_NAMES, COLUMNS, INGESTED_AT
from shared.warehouse import Candidate, CheckpointUpdate, Segment, Status

_COLS = ", ".join(f'"{c}"' for c in COLUMN_NAMES)
_READ_COLUMNS = "{" + ", ".join(f"'{c.name}': '{c.duckdb}'" for c in COLUMNS) + "}"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS traders (wallet_address VARCHAR PRIMARY KEY, added_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS trades (
    {", ".join(f'"{c.name}" {c.duckdb}' for c in (*COLUMNS, INGESTED_AT))},
    PRIMARY KEY (wallet_address, trade_key)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    wallet_address VARCHAR PRIMARY KEY, run_id VARCHAR, source VARCHAR, status VARCHAR,
    parts_loaded BIGINT, final_part BIGINT, trades_loaded BIGINT, newest_trade_at TIMESTAMPTZ,
    last_error VARCHAR, started_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, completed_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS checkpoint_parts (
    wallet_address VARCHAR, run_id VARCHAR, part BIGINT, uri VARCHAR PRIMARY KEY, "rows" BIGINT,
    final BOOLEAN, cursor_in VARCHAR, cursor_after VARCHAR, loaded_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS leases (
    wallet_address VARCHAR PRIMARY KEY, run_id VARCHAR, reason VARCHAR, leased_at TIMESTAMPTZ,
    lease_until TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id VARCHAR PRIMARY KEY, topic VARCHAR, data VARCHAR, attributes VARCHAR, error_class VARCHAR,
    error VARCHAR, wallet VARCHAR, attempts BIGINT, failed_at TIMESTAMPTZ, replayed_at TIMESTAMPTZ
);
"""

MERGE_TRADES = f"""
MERGE INTO trades AS t
USING (
    SELECT {_COLS}, ?::TIMESTAMPTZ AS ingested_at
    FROM read_json(?, format = 'newline_delimited', columns = {_READ_COLUMNS})
    QUALIFY row_number() OVER (PARTITION BY wallet_address, trade_key ORDER BY run_id) = 1
) AS s
ON t.wallet_address = s.wallet_address AND t.trade_key = s.trade_key
WHEN NOT MATCHED THEN INSERT ({_COLS}, ingested_at)
VALUES ({", ".join(f's."{c}"' for c in COLUMN_NAMES)}, s.ingested_at)
"""

# One statement for a batch's checkpoints (each wallet at most once: see _rounds), with the wallets'
# trade counts and newest trade from one grouped scan. Parameters: now, then one list per column.
MERGE_CHECKPOINTS = """
MERGE INTO checkpoints AS t
USING (
    SELECT u.*, coalesce(a.trades_loaded, 0) AS trades_loaded, a.newest_trade_at, ?::TIMESTAMPTZ AS now
    FROM (SELECT unnest(?::VARCHAR[]) AS wallet_address, unnest(?::VARCHAR[]) AS run_id,
                 unnest(?::VARCHAR[]) AS source, unnest(?::VARCHAR[]) AS status,
                 unnest(?::BIGINT[]) AS parts_loaded, unnest(?::BIGINT[]) AS final_part) AS u
    LEFT JOIN (SELECT wallet_address, count(*) AS trades_loaded, max("timestamp") AS newest_trade_at
               FROM trades WHERE wallet_address IN (SELECT unnest(?::VARCHAR[])) GROUP BY wallet_address) AS a
    USING (wallet_address)
) AS s
ON t.wallet_address = s.wallet_address
WHEN MATCHED AND NOT (t.run_id = s.run_id AND t.status = 'complete') THEN UPDATE SET
    run_id = s.run_id, source = s.source, status = s.status, parts_loaded = s.parts_loaded,
    final_part = s.final_part, trades_loaded = s.trades_loaded, newest_trade_at = s.newest_trade_at,
    last_error = NULL, updated_at = s.now,
    started_at = CASE WHEN t.run_id = s.run_id THEN t.started_at ELSE s.now END,
    completed_at = CASE WHEN s.status = 'complete' THEN s.now ELSE NULL END
WHEN NOT MATCHED THEN INSERT (wallet_address, run_id, source, status, parts_loaded, final_part, trades_loaded,
    newest_trade_at, last_error, started_at, updated_at, completed_at)
VALUES (s.wallet_address, s.run_id, s.source, s.status, s.parts_loaded, s.final_part, s.trades_loaded,
    s.newest_trade_at, NULL, s.now, s.now, CASE WHEN s.status = 'complete' THEN s.now ELSE NULL END)
"""

INSERT_PARTS = """
INSERT INTO checkpoint_parts
SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]), unnest(?::BIGINT[]),
       unnest(?::BOOLEAN[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), ?::TIMESTAMPTZ
ON CONFLICT (uri) DO NOTHING
"""


_PART_FIELDS = ("wallet", "run_id", "part", "uri", "rows", "final", "cursor_in", "cursor_after")
_CHECKPOINT_FIELDS = ("wallet", "run_id", "source", "status", "parts_loaded", "final_part")


def _rounds(updates: list[CheckpointUpdate]) -> list[list[CheckpointUpdate]]:
    """Split updates into rounds with each wallet at most once, keeping each wallet's updates in order:
    applied round after round, they have the effect of applying them one by one."""
    rounds: list[list[CheckpointUpdate]] = []
    seen: dict[str, int] = {}
    for update in updates:
        k = seen.get(update.wallet, 0)
        seen[update.wallet] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(update)
    return rounds


def _columns(items: list[Any], *names: str) -> list[list[Any]]:
    return [[getattr(item, name) for item in items] for name in names]


def _path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        raise PermanentError(f"the embedded warehouse reads local files, not {parsed.scheme}:// ({uri})")
    return unquote(parsed.path) if parsed.scheme else uri


class DuckDBWarehouse:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(self.path)
        except duckdb.IOException as exc:
            raise SystemicError(f"cannot open {self.path}: {exc} (is another backfill using it?)") from None
        self.con.execute("SET TimeZone = 'UTC'")
        # One writer merges small batches (10-page parts): more threads buy no speed here and cost memory
        # (about 50 MB at the peak of a whale's run, measured with bench/throughput.py).
        self.con.execute("SET threads = 1")
        self.lock = threading.RLock()

    def cursor(self) -> Any:
        try:
            return self.con.cursor()
        except duckdb.ConnectionException as exc:
            raise WarehouseUnavailable(f"the DuckDB file {self.path} is not open: {exc}") from None

    def close(self) -> None:
        self.con.close()

    def ensure_schema(self) -> None:
        with self.lock:
            self.cursor().execute(SCHEMA)

    def add_traders(self, wallets: Iterable[str]) -> int:
        unique = list(dict.fromkeys(wallets))
        if not unique:
            return 0
        with self.lock:
            cur = self.cursor()
            before = cur.execute("SELECT count(*) FROM traders").fetchone()[0]
            cur.execute("INSERT INTO traders SELECT unnest(?::VARCHAR[]), now() ON CONFLICT DO NOTHING", [unique])
            return int(cur.execute("SELECT count(*) FROM traders").fetchone()[0] - before)

    def candidates(
        self, now: datetime, lease_seconds: int, mode: str, limit: int, source: str | None = None
    ) -> Iterator[Candidate]:
        """`source`: leave out wallets loaded from another source (a switch is refused, see source_conflicts)."""
        wanted = "c.status = 'complete'" if mode == "incremental" else "coalesce(c.status, '') <> 'complete'"
        cur = self.cursor()
        cur.execute(
            f"""SELECT t.wallet_address, c.run_id, c.status, epoch(c.newest_trade_at)::BIGINT, c.source
                FROM traders t LEFT JOIN checkpoints c USING (wallet_address)
                WHERE {wanted}
                  AND (?::VARCHAR IS NULL OR c.source IS NULL OR c.source = ?)
                  AND NOT EXISTS (SELECT 1 FROM leases l
                                  WHERE l.wallet_address = t.wallet_address AND l.lease_until > ?
                                    -- a lease ends when its run completes the wallet
                                    AND NOT coalesce(c.status = 'complete' AND c.run_id = l.run_id, false))
                  AND NOT EXISTS (SELECT 1 FROM dead_letters d
                                  WHERE d.wallet = t.wallet_address AND d.replayed_at IS NULL)
                ORDER BY t.wallet_address LIMIT ?""",
            [source, source, now, limit],
        )
        while batch := cur.fetchmany(1000):
            for wallet, run_id, status, newest, loaded_from in batch:
                yield Candidate(wallet, run_id, status, newest, loaded_from)

    def source_conflicts(self, source: str) -> list[tuple[str, str]]:
        """(wallet, its checkpoint's source) for the traders already loaded from another source."""
        rows = (
            self.cursor()
            .execute(
                """SELECT c.wallet_address, c.source FROM checkpoints c JOIN traders t USING (wallet_address)
                   WHERE c.source IS NOT NULL AND c.source <> ? ORDER BY 1""",
                [source],
            )
            .fetchall()
        )
        return [(w, s) for w, s in rows]

    def forget_wallets(self, wallets: list[str]) -> int:
        """Drop the wallets' rows, checkpoints and parts in one transaction (an explicit source switch)."""
        if not wallets:
            return 0
        with self.lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                n = cur.execute("SELECT count(*) FROM trades WHERE wallet_address IN (SELECT unnest(?))", [wallets])
                deleted = int(n.fetchone()[0])
                for table in ("trades", "checkpoints", "checkpoint_parts", "leases"):
                    cur.execute(f"DELETE FROM {table} WHERE wallet_address IN (SELECT unnest(?))", [wallets])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return deleted

    def in_flight(self, now: datetime, lease_seconds: int) -> int:
        row = (
            self.cursor()
            .execute(
                """SELECT count(*) FROM leases l
               WHERE l.reason = 'in_flight' AND l.lease_until > ?
                 AND NOT EXISTS (SELECT 1 FROM checkpoints c WHERE c.wallet_address = l.wallet_address
                                 AND c.run_id = l.run_id AND c.status = 'complete')
                 AND NOT EXISTS (SELECT 1 FROM dead_letters d
                                 WHERE d.wallet = l.wallet_address AND d.replayed_at IS NULL)""",
                [now],
            )
            .fetchone()
        )
        return int(row[0])

    def lease(self, leases: list[tuple[str, str]], now: datetime, until: datetime, reason: str) -> None:
        last = dict(leases)  # one row per wallet (the last lease wins), as one statement
        if not last:
            return
        with self.lock:
            self.cursor().execute(
                """INSERT INTO leases
                   SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), ?::VARCHAR, ?::TIMESTAMPTZ, ?::TIMESTAMPTZ
                   ON CONFLICT (wallet_address) DO UPDATE SET
                   run_id = excluded.run_id, reason = excluded.reason, leased_at = excluded.leased_at,
                   lease_until = excluded.lease_until""",
                [list(last), list(last.values()), reason, now, until],
            )

    def release_leases(self, reason: str = "in_flight") -> int:
        with self.lock:
            cur = self.cursor()
            n = cur.execute("SELECT count(*) FROM leases WHERE reason = ?", [reason]).fetchone()[0]
            cur.execute("DELETE FROM leases WHERE reason = ?", [reason])
            return int(n)

    def segments(self, keys: Iterable[tuple[str, str]]) -> list[Segment]:
        keys = set(keys)
        if not keys:
            return []
        rows = (
            self.cursor()
            .execute(
                """SELECT wallet_address, run_id, part, uri, "rows", final, cursor_in, cursor_after
               FROM checkpoint_parts WHERE wallet_address IN (SELECT unnest(?))""",
                [sorted({w for w, _ in keys})],
            )
            .fetchall()
        )
        return [Segment(*r) for r in rows if (r[0], r[1]) in keys]

    def commit_batch(
        self, files: list[FileReady], segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> None:
        paths = [_path(f.uri) for f in files if f.rows > 0]
        for p in paths:
            if not Path(p).is_file():
                raise PermanentError(f"part file is missing: {p}")
        with self.lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                if paths:
                    cur.execute(MERGE_TRADES, [now, paths])
                if segments:
                    cur.execute(INSERT_PARTS, [*_columns(segments, *_PART_FIELDS), now])
                for round_ in _rounds(checkpoints):
                    wallets = [c.wallet for c in round_]
                    cur.execute(MERGE_CHECKPOINTS, [now, *_columns(round_, *_CHECKPOINT_FIELDS), wallets])
                cur.execute("COMMIT")
            except (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException) as exc:
                cur.execute("ROLLBACK")
                raise PermanentError(f"a part file could not be read: {exc}") from None
            except duckdb.TransactionException as exc:
                cur.execute("ROLLBACK")
                raise TransientError(f"transaction conflict: {exc}") from None
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def status(self, now: datetime, lease_seconds: int) -> Status:
        cur = self.cursor()
        out = Status()
        out.wallets_total = int(cur.execute("SELECT count(*) FROM traders").fetchone()[0])
        for status, n in cur.execute(
            """SELECT coalesce(c.status, 'pending'), count(*) FROM traders t
               LEFT JOIN checkpoints c USING (wallet_address) GROUP BY 1 ORDER BY 1"""
        ).fetchall():
            out.by_status[status] = int(n)
        out.trades = int(cur.execute("SELECT count(*) FROM trades").fetchone()[0])
        out.in_flight = self.in_flight(now, lease_seconds)
        out.dead_letters = int(cur.execute("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL").fetchone()[0])
        out.newest_load = cur.execute("SELECT max(loaded_at) FROM checkpoint_parts").fetchone()[0]
        return out
