"""The load path's statements, once for both dialects: MERGE a batch's rows into trades, its part
records into checkpoint_parts, its checkpoint updates into checkpoints (one round per update of a
wallet), all inside one transaction the adapter runs.

The batch's three relations — its rows, its part records, its checkpoint updates — come from the
adapter (`Batch`): DuckDB reads the part files and parameters directly; BigQuery reads the staging
tables its load job and one CTAS filled (a script cannot bind parameters on bqemulator).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.adapters.sql.statements import Names
from shared.core.chain import Segment
from shared.core.tables import CHECKPOINT_PARTS, CHECKPOINTS, Column
from shared.core.trades import COLUMN_NAMES
from shared.ports.warehouse import CheckpointUpdate

PART_FIELDS = tuple(CHECKPOINT_PARTS.column(c) for c in CHECKPOINT_PARTS.names if c != "loaded_at")
CHECKPOINT_FIELDS = (
    *(CHECKPOINTS.column(c) for c in ("wallet_address", "run_id", "source", "status", "parts_loaded", "final_part")),
    Column("round", "INT64"),
)


@dataclass(frozen=True)
class Batch:
    """The batch's relations, as FROM clauses the adapter provides. `{a}` is the alias its rows go by,
    `{m}` a name the relation may give a helper table; `now` is the batch's clock in that scope."""

    rows: str  # aliased r: one canonical row per line of the batch's part files
    parts: str  # aliased {a}: structs of PART_FIELDS
    checkpoints: str  # aliased {a}: structs of CHECKPOINT_FIELDS
    now: str
    prune: str = ""  # extra ON condition that lets BigQuery prune the target's partitions


def merge_trades(n: Names, b: Batch) -> str:
    """Insert the batch's new rows (deduplicated on the key), never a second copy of a stored one."""
    d = n.d
    return f"""MERGE INTO {n.t("trades")} AS t
USING (
  SELECT {d.columns(COLUMN_NAMES, "r")}, {b.now.format(m="m")} AS ingested_at
  FROM {b.rows}
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY r.wallet_address, r.trade_key ORDER BY r.run_id) = 1
) AS s
ON t.wallet_address = s.wallet_address AND t.trade_key = s.trade_key{b.prune}
WHEN NOT MATCHED THEN INSERT ({d.columns(COLUMN_NAMES)}, ingested_at)
VALUES ({d.columns(COLUMN_NAMES, "s")}, s.ingested_at);"""


def merge_parts(n: Names, b: Batch) -> str:
    d = n.d
    names = tuple(f.name for f in PART_FIELDS)
    return f"""MERGE INTO {n.t("checkpoint_parts")} AS t
USING (
  SELECT {d.columns(names, "p")}, {b.now.format(m="m")} AS loaded_at
  FROM {b.parts.format(a="p", m="m")}
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY p.uri) = 1
) AS s
ON t.uri = s.uri
WHEN NOT MATCHED THEN INSERT ({d.columns(names)}, loaded_at)
VALUES ({d.columns(names, "s")}, s.loaded_at);"""


def merge_checkpoints(n: Names, b: Batch, round_: int) -> str:
    """The batch's `round_`-th update of each wallet (a MERGE takes one source row per target row, so a
    wallet updated k times in a batch is merged in k rounds, in order). trades_loaded and
    newest_trade_at are read from trades, this transaction's rows included; a complete checkpoint of the
    same run is never regressed."""
    cols = ", ".join(c.name for c in CHECKPOINTS.columns)
    return f"""MERGE INTO {n.t("checkpoints")} AS t
USING (
  SELECT c.wallet_address, c.run_id, c.source, c.status, c.parts_loaded, c.final_part, {b.now.format(m="m")} AS now,
         COALESCE(agg.trades_loaded, 0) AS trades_loaded, agg.newest_trade_at
  FROM {b.checkpoints.format(a="c", m="m")}
  LEFT JOIN (
    SELECT wallet_address, COUNT(*) AS trades_loaded, MAX({n.d.q("timestamp")}) AS newest_trade_at
    FROM {n.t("trades")}
    WHERE wallet_address IN (SELECT x.wallet_address FROM {b.checkpoints.format(a="x", m="m2")})
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
  completed_at = CASE WHEN s.status = 'complete' THEN s.now ELSE NULL END,
  -- the last completed walk, kept while a sync of the wallet is under way
  synced_at = CASE WHEN s.status = 'complete' THEN s.now ELSE t.synced_at END
WHEN NOT MATCHED THEN INSERT ({cols})
VALUES (s.wallet_address, s.run_id, s.source, s.status, s.parts_loaded, s.final_part, s.trades_loaded,
  s.newest_trade_at, NULL, s.now, s.now, CASE WHEN s.status = 'complete' THEN s.now ELSE NULL END,
  CASE WHEN s.status = 'complete' THEN s.now ELSE NULL END);"""


def rounds(checkpoints: list[CheckpointUpdate]) -> list[int]:
    """The round of each update: 1 for a wallet's first in the list, 2 for its second, ..."""
    seen: dict[str, int] = {}
    out = []
    for c in checkpoints:
        seen[c.wallet] = seen.get(c.wallet, 0) + 1
        out.append(seen[c.wallet])
    return out


def _field(item: object, name: str) -> object:
    return getattr(item, "wallet" if name == "wallet_address" else name)


def part_rows(segments: list[Segment]) -> list[dict[str, object]]:
    """The batch's part records as PART_FIELDS structs."""
    return [{f.name: _field(s, f.name) for f in PART_FIELDS} for s in segments]


def checkpoint_rows(checkpoints: list[CheckpointUpdate]) -> list[dict[str, object]]:
    """The batch's checkpoint updates as CHECKPOINT_FIELDS structs, each with its round."""
    return [
        {**{f.name: _field(c, f.name) for f in CHECKPOINT_FIELDS[:-1]}, "round": k}
        for c, k in zip(checkpoints, rounds(checkpoints), strict=True)
    ]


def merge_market_refs(n: Names, b: Batch) -> str:
    """Every condition id the batch's rows name, remembered for the markets lookup (a small table the
    dispatcher reads instead of scanning trades)."""
    return f"""MERGE INTO {n.t("market_refs")} AS t
USING (
  SELECT r.condition_id, MIN({b.now.format(m="m")}) AS first_seen_at
  FROM {b.rows}
  WHERE r.condition_id IS NOT NULL
  GROUP BY r.condition_id
) AS s
ON t.condition_id = s.condition_id
WHEN NOT MATCHED THEN INSERT (condition_id, first_seen_at) VALUES (s.condition_id, s.first_seen_at);"""
