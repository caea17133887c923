"""The BigQuery SQL of the warehouse, one function per statement. Values always travel as query
parameters or through staging tables; only validated identifiers are formatted in.

Every statement here runs on real BigQuery and on bqemulator (tests/contract). Forms chosen for that:
explicit column lists in `INSERT` (the emulator rejects `INSERT ROW`); `WHERE TRUE` before `QUALIFY`
(BigQuery requires a WHERE, GROUP BY or HAVING next to QUALIFY); struct fields read by name
(`FROM UNNEST(@p) AS x` then `x.field`, since the emulator does not expand `SELECT *` of a struct).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.cloud.bigquery import ArrayQueryParameter, ScalarQueryParameter, StructQueryParameter

from shared.trades import COLUMN_NAMES
from shared.warehouse import CheckpointUpdate, Segment

_COLS = ", ".join(f"`{c}`" for c in COLUMN_NAMES)
_PART_COLS = "wallet_address, run_id, part, uri, `rows`, final, cursor_in, cursor_after"
_CHECKPOINT_COLS = (
    "wallet_address, run_id, source, status, parts_loaded, final_part, trades_loaded, newest_trade_at, "
    "last_error, started_at, updated_at, completed_at"
)


@dataclass(frozen=True)
class Names:
    project: str
    dataset: str
    staging_dataset: str
    traders_table: str

    def table(self, name: str) -> str:
        return f"`{self.project}.{self.dataset}.{name}`"

    def staging(self, name: str) -> str:
        return f"`{self.project}.{self.staging_dataset}.{name}`"

    @property
    def traders(self) -> str:
        return f"`{self.traders_table}`"


def add_traders(n: Names) -> str:
    return f"""
MERGE {n.traders} AS t
USING (SELECT w AS wallet_address FROM UNNEST(@wallets) AS w GROUP BY w) AS s
ON t.wallet_address = s.wallet_address
WHEN NOT MATCHED THEN INSERT (wallet_address, added_at) VALUES (s.wallet_address, CURRENT_TIMESTAMP())"""


def _traders(n: Names) -> str:
    """The wallets of the traders table as we store them (trimmed, lowercase; shared.wallets): the table may
    be someone else's, with checksummed mixed-case addresses, and checkpoints and leases hold the lowercase
    form, so comparing raw values would re-dispatch those wallets forever and never count them complete.
    (A lease is compared the same way, whatever spelling it was taken under.)"""
    return (
        f"(SELECT DISTINCT LOWER(TRIM(wallet_address)) AS wallet_address FROM {n.traders} "
        "WHERE wallet_address IS NOT NULL)"
    )


def candidates(n: Names, incremental: bool) -> str:
    wanted = "c.status = 'complete'" if incremental else "COALESCE(c.status, '') <> 'complete'"
    return f"""
SELECT t.wallet_address, c.run_id, c.status, UNIX_SECONDS(c.newest_trade_at) AS newest_trade_epoch, c.source
FROM {_traders(n)} AS t
LEFT JOIN {n.table("checkpoints")} AS c ON c.wallet_address = t.wallet_address
WHERE {wanted}
  AND (@source IS NULL OR c.source IS NULL OR c.source = @source)
  AND NOT EXISTS (SELECT 1 FROM {n.table("leases")} AS l
                  WHERE LOWER(TRIM(l.wallet_address)) = t.wallet_address AND l.lease_until > @now
                    -- a lease ends when its run completes the wallet
                    AND NOT COALESCE(c.status = 'complete' AND c.run_id = l.run_id, FALSE))
ORDER BY t.wallet_address
LIMIT @limit"""


def source_conflicts(n: Names) -> str:
    return f"""
SELECT c.wallet_address, c.source
FROM {_traders(n)} AS t
JOIN {n.table("checkpoints")} AS c ON c.wallet_address = t.wallet_address
WHERE c.source IS NOT NULL AND c.source <> @source
ORDER BY c.wallet_address
LIMIT @limit"""


def in_flight(n: Names) -> str:
    return f"""
SELECT COUNT(*) AS n FROM {n.table("leases")} AS l
WHERE l.reason = 'in_flight' AND l.lease_until > @now
  AND NOT EXISTS (SELECT 1 FROM {n.table("checkpoints")} AS c
                  WHERE c.wallet_address = l.wallet_address AND c.run_id = l.run_id AND c.status = 'complete')"""


def lease(n: Names) -> str:
    # The last lease of a wallet in the list wins, as with the DuckDB twin's INSERT ... ON CONFLICT.
    return f"""
MERGE {n.table("leases")} AS t
USING (
  SELECT x.wallet_address, x.run_id, @reason AS reason, @now AS leased_at, @until AS lease_until
  FROM UNNEST(@leases) AS x
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY x.wallet_address ORDER BY x.idx DESC) = 1
) AS s
ON t.wallet_address = s.wallet_address
WHEN MATCHED THEN UPDATE SET
  run_id = s.run_id, reason = s.reason, leased_at = s.leased_at, lease_until = s.lease_until
WHEN NOT MATCHED THEN INSERT (wallet_address, run_id, reason, leased_at, lease_until)
VALUES (s.wallet_address, s.run_id, s.reason, s.leased_at, s.lease_until)"""


def release_leases(n: Names) -> str:
    return f"DELETE FROM {n.table('leases')} WHERE reason = @reason"


def segments(n: Names) -> str:
    return f"SELECT {_PART_COLS} FROM {n.table('checkpoint_parts')} WHERE wallet_address IN UNNEST(@wallets)"


def status_counts(n: Names) -> str:
    return f"""
SELECT COALESCE(c.status, 'pending') AS status, COUNT(*) AS n
FROM {_traders(n)} AS t
LEFT JOIN {n.table("checkpoints")} AS c ON c.wallet_address = t.wallet_address
GROUP BY 1 ORDER BY 1"""


def status_totals(n: Names) -> str:
    return f"""
SELECT (SELECT COUNT(*) FROM {n.table("trades")}) AS trades,
       (SELECT MAX(loaded_at) FROM {n.table("checkpoint_parts")}) AS newest_load"""


def create_meta(table: str, parts: bool, checkpoints: bool) -> str:
    """One row: the batch's clock, part records and checkpoint updates (arrays of structs)."""
    columns = ["@now AS now"] + ["@parts AS parts"] * parts + ["@checkpoints AS checkpoints"] * checkpoints
    return f"CREATE OR REPLACE TABLE {table} AS SELECT {', '.join(columns)}"


# (struct field, type, attribute): the batch's part records and checkpoint updates as parameters.
_PART_FIELDS = (
    ("wallet_address", "STRING", "wallet"), ("run_id", "STRING", "run_id"), ("part", "INT64", "part"),
    ("uri", "STRING", "uri"), ("rows", "INT64", "rows"), ("final", "BOOL", "final"),
    ("cursor_in", "STRING", "cursor_in"), ("cursor_after", "STRING", "cursor_after"),
)  # fmt: skip
_CHECKPOINT_FIELDS = (
    ("wallet_address", "STRING", "wallet"), ("run_id", "STRING", "run_id"), ("source", "STRING", "source"),
    ("status", "STRING", "status"), ("parts_loaded", "INT64", "parts_loaded"),
    ("final_part", "INT64", "final_part"),
)  # fmt: skip


def _struct(fields: tuple[tuple[str, str, str], ...], item: Any, **extra: int) -> StructQueryParameter:
    values = [ScalarQueryParameter(name, type_, getattr(item, attr)) for name, type_, attr in fields]
    values += [ScalarQueryParameter(name, "INT64", value) for name, value in extra.items()]
    return StructQueryParameter(None, *values)


def numbered(checkpoints: list[CheckpointUpdate]) -> list[tuple[CheckpointUpdate, int]]:
    """Number each wallet's updates 1, 2, … in list order: a MERGE takes one source row per target
    row, so the k-th update of a wallet goes in the k-th MERGE (the DuckDB twin applies them in order)."""
    seen: dict[str, int] = {}
    out = []
    for c in checkpoints:
        seen[c.wallet] = seen.get(c.wallet, 0) + 1
        out.append((c, seen[c.wallet]))
    return out


def rounds(checkpoints: list[CheckpointUpdate]) -> int:
    return max((k for _, k in numbered(checkpoints)), default=0)


def meta_params(now: datetime, segments: list[Segment], checkpoints: list[CheckpointUpdate]) -> list[Any]:
    """The parameters of `create_meta` (empty arrays are left out: their element type would be lost)."""
    params: list[Any] = [ScalarQueryParameter("now", "TIMESTAMP", now)]
    if segments:
        params.append(ArrayQueryParameter("parts", "STRUCT", [_struct(_PART_FIELDS, g) for g in segments]))
    if checkpoints:
        structs = [_struct(_CHECKPOINT_FIELDS, c, round=k) for c, k in numbered(checkpoints)]
        params.append(ArrayQueryParameter("checkpoints", "STRUCT", structs))
    return params


def commit_script(n: Names, rows_table: str | None, meta: str, parts: bool, rounds: int) -> str:
    """The one transaction of a batch; statements for what the batch does not have are left out."""
    statements = [_prune_bounds(rows_table)] if rows_table else []  # DECLAREs go before anything else
    statements.append("BEGIN TRANSACTION;")
    if rows_table:
        statements.append(_merge_trades(n, rows_table, meta))
    if parts:
        statements.append(_merge_parts(n, meta))
    statements += [_merge_checkpoints(n, meta, k) for k in range(1, rounds + 1)]
    statements.append("COMMIT TRANSACTION;")
    return "\n".join(statements)


# How far a fill's timestamp may move between two reads of the same key and still be matched. Keys with
# a timestamp in them (Dome fingerprints, Polymarket) cannot move at all; a Dome (tx_hash, log_index) is
# one on-chain log, whose block time moves only if a reorg re-mines the transaction (seconds or minutes).
PRUNE_MARGIN_DAYS = 7


def _prune_bounds(rows_table: str) -> str:
    """Script variables for the trades MERGE: the batch's timestamp range (widened by the margin) and its
    wallets. BigQuery prunes partitions only on constant filters of the partitioning column
    (cloud.google.com/bigquery/docs/querying-partitioned-tables); a join condition such as
    `t.timestamp = s.timestamp` is not one, a script variable set before the MERGE is. A batch with a NULL
    timestamp (no source writes one: both require an integer) prunes no partition."""
    unbounded = "COUNTIF(r.`timestamp` IS NULL) > 0"
    return f"""
DECLARE prune_from TIMESTAMP;
DECLARE prune_to TIMESTAMP;
DECLARE batch_wallets ARRAY<STRING>;
SET prune_from = (
  SELECT IF({unbounded}, TIMESTAMP '0001-01-01 00:00:00+00',
            TIMESTAMP_SUB(MIN(r.`timestamp`), INTERVAL {PRUNE_MARGIN_DAYS} DAY))
  FROM {rows_table} AS r);
SET prune_to = (
  SELECT IF({unbounded}, TIMESTAMP '9999-12-31 23:59:59.999999+00',
            TIMESTAMP_ADD(MAX(r.`timestamp`), INTERVAL {PRUNE_MARGIN_DAYS} DAY))
  FROM {rows_table} AS r);
SET batch_wallets = (SELECT ARRAY_AGG(DISTINCT r.wallet_address) FROM {rows_table} AS r);"""


def _merge_trades(n: Names, rows_table: str, meta: str) -> str:
    """Insert the batch's new rows. The ON clause repeats the key equality with constant filters (see
    `_prune_bounds`) so the target scan reads the batch's months and wallets, not the whole table; rows
    with a NULL timestamp stay matchable (their partition is read too)."""
    return f"""
MERGE {n.table("trades")} AS t
USING (
  SELECT {", ".join(f"r.`{c}`" for c in COLUMN_NAMES)}, m.now AS ingested_at
  FROM {rows_table} AS r CROSS JOIN {meta} AS m
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY r.wallet_address, r.trade_key ORDER BY r.run_id) = 1
) AS s
ON t.wallet_address = s.wallet_address AND t.trade_key = s.trade_key
  AND t.wallet_address IN UNNEST(batch_wallets)
  AND (t.`timestamp` BETWEEN prune_from AND prune_to OR t.`timestamp` IS NULL)
WHEN NOT MATCHED THEN INSERT ({_COLS}, ingested_at)
VALUES ({", ".join(f"s.`{c}`" for c in COLUMN_NAMES)}, s.ingested_at);"""


def _merge_parts(n: Names, meta: str) -> str:
    return f"""
MERGE {n.table("checkpoint_parts")} AS t
USING (
  SELECT {", ".join(f"p.{c}" for c in _PART_COLS.split(", "))}, m.now AS loaded_at
  FROM {meta} AS m CROSS JOIN UNNEST(m.parts) AS p
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY p.uri) = 1
) AS s
ON t.uri = s.uri
WHEN NOT MATCHED THEN INSERT ({_PART_COLS}, loaded_at)
VALUES ({", ".join(f"s.{c}" for c in _PART_COLS.split(", "))}, s.loaded_at);"""


def _merge_checkpoints(n: Names, meta: str, round_: int) -> str:
    """DuckDB's MERGE_CHECKPOINT: trades_loaded and newest_trade_at read from trades (this
    transaction's rows included); a complete checkpoint of the same run is never regressed."""
    return f"""
MERGE {n.table("checkpoints")} AS t
USING (
  SELECT c.wallet_address, c.run_id, c.source, c.status, c.parts_loaded, c.final_part, m.now,
         COALESCE(agg.trades_loaded, 0) AS trades_loaded, agg.newest_trade_at
  FROM {meta} AS m CROSS JOIN UNNEST(m.checkpoints) AS c
  LEFT JOIN (
    SELECT wallet_address, COUNT(*) AS trades_loaded, MAX(`timestamp`) AS newest_trade_at
    FROM {n.table("trades")}
    WHERE wallet_address IN (SELECT x.wallet_address FROM {meta} AS m2 CROSS JOIN UNNEST(m2.checkpoints) AS x)
    GROUP BY wallet_address
  ) AS agg ON agg.wallet_address = c.wallet_address
  WHERE c.round = {int(round_)}
) AS s
ON t.wallet_address = s.wallet_address
WHEN MATCHED AND NOT (t.run_id = s.run_id AND t.status = 'complete') THEN UPDATE SET
  run_id = s.run_id, source = s.source, status = s.status, parts_loaded = s.parts_loaded,
  final_part = s.final_part, trades_loaded = s.trades_loaded, newest_trade_at = s.newest_trade_at,
  last_error = NULL, updated_at = s.now,
  started_at = CASE WHEN t.run_id = s.run_id THEN t.started_at ELSE s.now END,
  completed_at = CASE WHEN s.status = 'complete' THEN s.now ELSE NULL END
WHEN NOT MATCHED THEN INSERT ({_CHECKPOINT_COLS})
VALUES (s.wallet_address, s.run_id, s.source, s.status, s.parts_loaded, s.final_part, s.trades_loaded,
  s.newest_trade_at, NULL, s.now, s.now, CASE WHEN s.status = 'complete' THEN s.now ELSE NULL END);"""
