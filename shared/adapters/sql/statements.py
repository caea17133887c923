"""Every statement of the warehouses, written once for both dialects (shared/adapters/sql/dialect.py).

Values travel as parameters; only identifiers from the table spec and validated table names are
formatted in. Forms chosen so that real BigQuery, bqemulator and DuckDB all run the same text:
explicit column lists in every INSERT (bqemulator rejects `INSERT ROW`), `WHERE TRUE` before `QUALIFY`
(BigQuery requires a WHERE, GROUP BY or HAVING next to it), struct fields read by name (bqemulator
does not expand `SELECT *` of a struct), `MERGE INTO` (DuckDB requires the INTO, BigQuery allows it).

The load path's statements are in loadpath.py, the dead-letter table's in letters.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.adapters.sql.dialect import Dialect, Sql, Struct
from shared.core.tables import CHECKPOINT_PARTS, Column


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


def candidates(n: Names, *, now: datetime, limit: int, source: str | None, sync_before: datetime | None) -> Sql:
    """New and unfinished wallets first, then (given `sync_before`) complete ones whose last walk
    finished before it, the longest unsynced first."""
    d = n.d
    last_walk = "COALESCE(c.synced_at, c.completed_at, c.updated_at)"
    return Sql(
        f"""SELECT t.wallet_address, c.run_id, c.status, {d.epoch("c.newest_trade_at")} AS newest_trade_epoch,
       c.source
FROM {n.traders()} AS t
LEFT JOIN {n.t("checkpoints")} AS c ON c.wallet_address = t.wallet_address
WHERE (COALESCE(c.status, '') <> 'complete'
       OR ({d.p("sync_before", "TIMESTAMP")} IS NOT NULL AND {last_walk} < {d.p("sync_before", "TIMESTAMP")}))
  AND ({d.p("source", "STRING")} IS NULL OR c.source IS NULL OR c.source = {d.p("source", "STRING")})
  AND NOT EXISTS (SELECT 1 FROM {n.t("leases")} AS l
                  WHERE LOWER(TRIM(l.wallet_address)) = t.wallet_address AND l.lease_until > {d.p("now")}
                    -- a lease ends when its run completes the wallet
                    AND NOT COALESCE(c.status = 'complete' AND c.run_id = l.run_id, FALSE))
  AND NOT EXISTS ({_parked(n, "t.wallet_address")})
ORDER BY CASE WHEN COALESCE(c.status, '') <> 'complete' THEN 0 ELSE 1 END, {last_walk}, t.wallet_address
LIMIT {d.p("limit")}""",
        {
            "now": ("TIMESTAMP", now),
            "limit": ("INT64", limit),
            "source": ("STRING", source),
            "sync_before": ("TIMESTAMP", sync_before),
        },
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
  run_id = s.run_id, reason = s.reason, leased_at = s.leased_at, lease_until = s.lease_until, token = NULL
WHEN NOT MATCHED THEN INSERT (wallet_address, run_id, reason, leased_at, lease_until)
VALUES (s.wallet_address, s.run_id, s.reason, s.leased_at, s.lease_until)""",
        {
            "leases": (_LEASE, rows),
            "reason": ("STRING", reason),
            "now": ("TIMESTAMP", now),
            "until": ("TIMESTAMP", until),
        },
    )


def claim(n: Names, leases: list[tuple[str, str]], now: datetime, until: datetime, token: str) -> Sql:
    """Take the leases of wallets nobody holds: no lease, an expired one, or one whose run completed the
    wallet. A MERGE is atomic per row, so of concurrent dispatches only one writes a wallet's lease with
    its token (BigQuery retries a conflicting MERGE against the new snapshot; DuckDB serialises them);
    each caller then publishes only the wallets `claimed` returns for its token."""
    d = n.d
    rows = [{"wallet_address": w, "run_id": r, "idx": i} for i, (w, r) in enumerate(leases)]
    free = f"t.lease_until <= {d.p('now')} OR COALESCE(s.ck_status = 'complete' AND s.ck_run = t.run_id, FALSE)"
    return Sql(
        f"""MERGE INTO {n.t("leases")} AS t
USING (
  SELECT x.wallet_address, x.run_id, c.status AS ck_status, c.run_id AS ck_run
  FROM {d.unnest("leases", "x", _LEASE)}
  LEFT JOIN {n.t("checkpoints")} AS c ON c.wallet_address = x.wallet_address
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY x.wallet_address ORDER BY x.idx DESC) = 1
) AS s
ON t.wallet_address = s.wallet_address
WHEN MATCHED AND ({free}) THEN UPDATE SET
  run_id = s.run_id, reason = 'in_flight', leased_at = {d.p("now")}, lease_until = {d.p("until")},
  token = {d.p("token", "STRING")}
WHEN NOT MATCHED THEN INSERT (wallet_address, run_id, reason, leased_at, lease_until, token)
VALUES (s.wallet_address, s.run_id, 'in_flight', {d.p("now")}, {d.p("until")}, {d.p("token", "STRING")})""",
        {
            "leases": (_LEASE, rows),
            "now": ("TIMESTAMP", now),
            "until": ("TIMESTAMP", until),
            "token": ("STRING", token),
        },
    )


def claimed(n: Names, token: str) -> Sql:
    return Sql(
        f"SELECT wallet_address FROM {n.t('leases')} WHERE token = {n.d.p('token', 'STRING')}",
        {"token": ("STRING", token)},
    )


def unclaim(n: Names, token: str, wallets: list[str]) -> Sql:
    d = n.d
    return Sql(
        f"DELETE FROM {n.t('leases')} "
        f"WHERE token = {d.p('token', 'STRING')} AND {d.in_array('wallet_address', 'wallets')}",
        {"token": ("STRING", token), "wallets": ("ARRAY<STRING>", wallets)},
    )


def release_leases(n: Names, reason: str) -> Sql:
    return Sql(f"DELETE FROM {n.t('leases')} WHERE reason = {n.d.p('reason')}", {"reason": ("STRING", reason)})


def segments(n: Names, wallets: list[str]) -> Sql:
    d = n.d
    cols = d.columns(tuple(c.name for c in CHECKPOINT_PARTS.columns if c.name != "loaded_at"))
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


def sync_status(n: Names, due_before: datetime | None, overdue_before: datetime | None) -> Sql:
    """The oldest last walk of a complete wallet, and how many wait for their sync (or missed a day)."""
    d = n.d
    last_walk = "COALESCE(c.synced_at, c.completed_at, c.updated_at)"
    return Sql(
        f"""SELECT MIN({last_walk}) AS oldest_sync,
       COALESCE(SUM(CASE WHEN {last_walk} < {d.p("due_before", "TIMESTAMP")} THEN 1 ELSE 0 END), 0) AS due,
       COALESCE(SUM(CASE WHEN {last_walk} < {d.p("overdue_before", "TIMESTAMP")} THEN 1 ELSE 0 END), 0) AS overdue
FROM {n.traders()} AS t
JOIN {n.t("checkpoints")} AS c ON c.wallet_address = t.wallet_address
WHERE c.status = 'complete'""",
        {"due_before": ("TIMESTAMP", due_before), "overdue_before": ("TIMESTAMP", overdue_before)},
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
