"""Every statement of the warehouses, written once for both dialects (shared/adapters/sql/dialect.py).

Values travel as parameters; only identifiers from the table spec and validated table names are
formatted in. Forms chosen so that real BigQuery, bqemulator and DuckDB all run the same text:
explicit column lists in every INSERT (bqemulator rejects `INSERT ROW`), `WHERE TRUE` before `QUALIFY`
(BigQuery requires a WHERE, GROUP BY or HAVING next to it), struct fields read by name (bqemulator
does not expand `SELECT *` of a struct), `MERGE INTO` (DuckDB requires the INTO, BigQuery allows it).

The load path's three relations — the batch's rows, its part records, its checkpoint updates — come
from the adapter (`Batch`): DuckDB reads the part files and parameters directly; BigQuery reads the
staging tables its load job and one CTAS filled (a script cannot bind parameters on bqemulator).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.sql.dialect import Dialect, Sql, Struct
from shared.core.chain import Segment
from shared.core.tables import CHECKPOINT_PARTS, CHECKPOINTS, DEAD_LETTERS, Column
from shared.core.trades import COLUMN_NAMES
from shared.ports.warehouse import CheckpointUpdate


@dataclass(frozen=True)
class Names:
    """Qualified table names: `prefix` + name, quoted by the dialect; `traders` may be someone else's."""

    d: Dialect
    prefix: str = ""
    traders_table: str | None = None

    def t(self, name: str) -> str:
        return self.d.q(f"{self.prefix}{name}") if self.prefix else name

    def traders(self) -> str:
        """The traders as we store wallets (trimmed, lowercase, shared.core.wallets): the table may be an
        operator's, with checksummed mixed-case addresses, which checkpoints and leases hold lowercase;
        comparing raw values would re-dispatch those wallets forever and never count them complete."""
        table = self.d.q(self.traders_table) if self.traders_table else self.t("traders")
        return (
            f"(SELECT DISTINCT LOWER(TRIM(wallet_address)) AS wallet_address FROM {table} "
            "WHERE wallet_address IS NOT NULL)"
        )


def _parked(n: Names, wallet: str) -> str:
    """A wallet with a pending dead letter is parked until the letter is replayed (both twins)."""
    return f"SELECT 1 FROM {n.t('dead_letters')} AS d WHERE d.wallet = {wallet} AND d.replayed_at IS NULL"


def add_traders(n: Names, wallets: list[str]) -> Sql:
    d = n.d
    return Sql(
        f"""MERGE INTO {n.t("traders")} AS t
USING (SELECT w AS wallet_address FROM {d.unnest("wallets", "w", "STRING")} GROUP BY w) AS s
ON t.wallet_address = s.wallet_address
WHEN NOT MATCHED THEN INSERT (wallet_address, added_at) VALUES (s.wallet_address, CURRENT_TIMESTAMP)""",
        {"wallets": ("ARRAY<STRING>", wallets)},
    )


def candidates(n: Names, *, incremental: bool, now: datetime, limit: int, source: str | None) -> Sql:
    d = n.d
    wanted = "c.status = 'complete'" if incremental else "COALESCE(c.status, '') <> 'complete'"
    return Sql(
        f"""SELECT t.wallet_address, c.run_id, c.status, {d.epoch("c.newest_trade_at")} AS newest_trade_epoch,
       c.source
FROM {n.traders()} AS t
LEFT JOIN {n.t("checkpoints")} AS c ON c.wallet_address = t.wallet_address
WHERE {wanted}
  AND ({d.p("source", "STRING")} IS NULL OR c.source IS NULL OR c.source = {d.p("source", "STRING")})
  AND NOT EXISTS (SELECT 1 FROM {n.t("leases")} AS l
                  WHERE LOWER(TRIM(l.wallet_address)) = t.wallet_address AND l.lease_until > {d.p("now")}
                    -- a lease ends when its run completes the wallet
                    AND NOT COALESCE(c.status = 'complete' AND c.run_id = l.run_id, FALSE))
  AND NOT EXISTS ({_parked(n, "t.wallet_address")})
ORDER BY t.wallet_address
LIMIT {d.p("limit")}""",
        {"now": ("TIMESTAMP", now), "limit": ("INT64", limit), "source": ("STRING", source)},
    )


def in_flight(n: Names, now: datetime) -> Sql:
    return Sql(
        f"""SELECT COUNT(*) AS n FROM {n.t("leases")} AS l
WHERE l.reason = 'in_flight' AND l.lease_until > {n.d.p("now")}
  AND NOT EXISTS (SELECT 1 FROM {n.t("checkpoints")} AS c
                  WHERE c.wallet_address = l.wallet_address AND c.run_id = l.run_id AND c.status = 'complete')
  AND NOT EXISTS ({_parked(n, "l.wallet_address")})""",
        {"now": ("TIMESTAMP", now)},
    )


def source_conflicts(n: Names, source: str, limit: int) -> Sql:
    d = n.d
    return Sql(
        f"""SELECT c.wallet_address, c.source
FROM {n.traders()} AS t
JOIN {n.t("checkpoints")} AS c ON c.wallet_address = t.wallet_address
WHERE c.source IS NOT NULL AND c.source <> {d.p("source")}
ORDER BY c.wallet_address
LIMIT {d.p("limit")}""",
        {"source": ("STRING", source), "limit": ("INT64", limit)},
    )


_LEASE = Struct((Column("wallet_address", "STRING"), Column("run_id", "STRING"), Column("idx", "INT64")))


def lease(n: Names, leases: list[tuple[str, str]], reason: str, now: datetime, until: datetime) -> Sql:
    """The last lease of a wallet in the list wins."""
    d = n.d
    rows = [{"wallet_address": w, "run_id": r, "idx": i} for i, (w, r) in enumerate(leases)]
    return Sql(
        f"""MERGE INTO {n.t("leases")} AS t
USING (
  SELECT x.wallet_address, x.run_id, {d.p("reason", "STRING")} AS reason, {d.p("now")} AS leased_at,
         {d.p("until")} AS lease_until
  FROM {d.unnest("leases", "x", _LEASE)}
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY x.wallet_address ORDER BY x.idx DESC) = 1
) AS s
ON t.wallet_address = s.wallet_address
WHEN MATCHED THEN UPDATE SET
  run_id = s.run_id, reason = s.reason, leased_at = s.leased_at, lease_until = s.lease_until
WHEN NOT MATCHED THEN INSERT (wallet_address, run_id, reason, leased_at, lease_until)
VALUES (s.wallet_address, s.run_id, s.reason, s.leased_at, s.lease_until)""",
        {
            "leases": (_LEASE, rows),
            "reason": ("STRING", reason),
            "now": ("TIMESTAMP", now),
            "until": ("TIMESTAMP", until),
        },
    )


def release_leases(n: Names, reason: str) -> Sql:
    return Sql(f"DELETE FROM {n.t('leases')} WHERE reason = {n.d.p('reason')}", {"reason": ("STRING", reason)})


def segments(n: Names, wallets: list[str]) -> Sql:
    d = n.d
    cols = d.columns(("wallet_address", "run_id", "part", "uri", "rows", "final", "cursor_in", "cursor_after"))
    return Sql(
        f"SELECT {cols} FROM {n.t('checkpoint_parts')} WHERE {d.in_array('wallet_address', 'wallets')}",
        {"wallets": ("ARRAY<STRING>", wallets)},
    )


def status_counts(n: Names) -> Sql:
    return Sql(
        f"""SELECT COALESCE(c.status, 'pending') AS status, COUNT(*) AS n
FROM {n.traders()} AS t
LEFT JOIN {n.t("checkpoints")} AS c ON c.wallet_address = t.wallet_address
GROUP BY 1 ORDER BY 1"""
    )


def status_totals(n: Names) -> Sql:
    return Sql(
        f"""SELECT (SELECT COUNT(*) FROM {n.t("trades")}) AS trades,
       (SELECT MAX(loaded_at) FROM {n.t("checkpoint_parts")}) AS newest_load,
       (SELECT COUNT(*) FROM {n.traders()} AS t WHERE EXISTS ({_parked(n, "t.wallet_address")})) AS parked"""
    )


def forget(n: Names, table: str, wallets: list[str]) -> Sql:
    d = n.d
    return Sql(
        f"DELETE FROM {n.t(table)} WHERE {d.in_array('wallet_address', 'wallets')}",
        {"wallets": ("ARRAY<STRING>", wallets)},
    )


def count_trades(n: Names, wallets: list[str]) -> Sql:
    d = n.d
    return Sql(
        f"SELECT COUNT(*) AS n FROM {n.t('trades')} WHERE {d.in_array('wallet_address', 'wallets')}",
        {"wallets": ("ARRAY<STRING>", wallets)},
    )


# -- the load path --------------------------------------------------------------------------------------

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
  completed_at = CASE WHEN s.status = 'complete' THEN s.now ELSE NULL END
WHEN NOT MATCHED THEN INSERT ({cols})
VALUES (s.wallet_address, s.run_id, s.source, s.status, s.parts_loaded, s.final_part, s.trades_loaded,
  s.newest_trade_at, NULL, s.now, s.now, CASE WHEN s.status = 'complete' THEN s.now ELSE NULL END);"""


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


# -- dead letters ---------------------------------------------------------------------------------------

_LETTER_COLS = tuple(c.name for c in DEAD_LETTERS.columns)


def put_dead_letter(n: Names, row: Mapping[str, object]) -> Sql:
    """Same id (same message, same reason): the letter is pending again, with the newest failure."""
    d = n.d
    types = {c.name: c.type for c in DEAD_LETTERS.columns}
    return Sql(
        f"""MERGE INTO {n.t("dead_letters")} AS t
USING (SELECT {", ".join(f"{d.p(c, types[c])} AS {c}" for c in _LETTER_COLS)}) AS s
ON t.id = s.id
WHEN MATCHED THEN UPDATE SET error = s.error, attempts = s.attempts, failed_at = s.failed_at, replayed_at = NULL
WHEN NOT MATCHED THEN INSERT ({", ".join(_LETTER_COLS)}) VALUES ({", ".join(f"s.{c}" for c in _LETTER_COLS)})""",
        {c: (types[c], row[c]) for c in _LETTER_COLS},
    )


def letters(n: Names, *, pending_only: bool, limit: int, error_class: str | None, wallet: str | None) -> Sql:
    d = n.d
    where = ["d.replayed_at IS NULL"] if pending_only else ["TRUE"]
    where.append(f"({d.p('error_class', 'STRING')} IS NULL OR d.error_class = {d.p('error_class', 'STRING')})")
    where.append(f"({d.p('wallet', 'STRING')} IS NULL OR d.wallet = {d.p('wallet', 'STRING')})")
    return Sql(
        f"""SELECT {", ".join(f"d.{c}" for c in _LETTER_COLS)} FROM {n.t("dead_letters")} AS d
WHERE {" AND ".join(where)}
ORDER BY d.failed_at, d.id
LIMIT {d.p("limit")}""",
        {"limit": ("INT64", limit), "error_class": ("STRING", error_class), "wallet": ("STRING", wallet)},
    )


def mark_replayed(n: Names, ids: list[str], now: datetime) -> Sql:
    d = n.d
    return Sql(
        f"UPDATE {n.t('dead_letters')} SET replayed_at = {d.p('now')} WHERE {d.in_array('id', 'ids')}",
        {"now": ("TIMESTAMP", now), "ids": ("ARRAY<STRING>", ids)},
    )


def letter_depth(n: Names) -> Sql:
    return Sql(f"SELECT COUNT(*) AS n FROM {n.t('dead_letters')} WHERE replayed_at IS NULL")
