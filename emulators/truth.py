"""Check a warehouse against the simulator's ground truth, row for row, without trusting our own keys.

Rows are compared on every source field (multiset difference, so a row present twice counts), for the
wallets the warehouse was asked to fill. The ground truth file is JSONL: {"wallet": w, **api_row}, in
the shape of the source that filled the warehouse: `verify_dome` for Dome's /polymarket/orders rows,
`verify_polymarket` for the Data API's /v2/trades rows (mapped to the warehouse columns exactly as
shared/adapters/sources/polymarket.py maps them, including the columns it leaves NULL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_FIELDS = (
    "tx_hash",
    "log_index",
    "order_hash",
    "token_id",
    "token_label",
    "side",
    "market_slug",
    "condition_id",
    "shares",
    "shares_normalized",
    "price",
    "block_number",
    "title",
    "user",
    "taker",
)
_TRUTH_COLUMNS = {
    "wallet": "VARCHAR",
    "tx_hash": "VARCHAR",
    "log_index": "BIGINT",
    "order_hash": "VARCHAR",
    "token_id": "VARCHAR",
    "token_label": "VARCHAR",
    "side": "VARCHAR",
    "market_slug": "VARCHAR",
    "condition_id": "VARCHAR",
    "shares": "DOUBLE",
    "shares_normalized": "DOUBLE",
    "price": "DOUBLE",
    "block_number": "BIGINT",
    "title": "VARCHAR",
    "timestamp": "BIGINT",
    "user": "VARCHAR",
    "taker": "VARCHAR",
}


@dataclass
class Verification:
    wallets: int = 0
    truth_rows: int = 0
    warehouse_rows: int = 0
    duplicates: int = 0
    missing: int = 0
    extra: int = 0
    wallets_wrong: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.duplicates == 0 and self.missing == 0 and self.extra == 0


# Data API v2 rows -> warehouse columns, as PolymarketSource._row maps them.
_PM_TRUTH_COLUMNS = {
    "wallet": "VARCHAR",
    "proxy_wallet": "VARCHAR",
    "side": "VARCHAR",
    "token_id": "VARCHAR",
    "condition_id": "VARCHAR",
    "size": "DOUBLE",
    "price": "DOUBLE",
    "timestamp": "BIGINT",
    "title": "VARCHAR",
    "slug": "VARCHAR",
    "event_slug": "VARCHAR",
    "outcome": "VARCHAR",
    "outcome_index": "BIGINT",
    "transaction_hash": "VARCHAR",
}
_PM_MAPPING = (
    ("tx_hash", "NULLIF(transaction_hash, '')"),  # an empty hash is stored as NULL
    ("log_index", "NULL::BIGINT"),  # not exposed by the Data API
    ("order_hash", "NULL::VARCHAR"),
    ("token_id", "token_id"),
    ("token_label", "NULL::VARCHAR"),
    ("side", "side"),
    ("market_slug", "slug"),
    ("condition_id", "condition_id"),
    ("shares", "NULL::DOUBLE"),  # the API gives shares (size), not raw units
    ("shares_normalized", "size"),
    ("price", "price"),
    ("block_number", "NULL::BIGINT"),
    ("title", "title"),
    ("user", "lower(proxy_wallet)"),
    ("taker", "NULL::VARCHAR"),
    ("event_slug", "event_slug"),
    ("outcome", "outcome"),
    ("outcome_index", "outcome_index"),
    ("is_combo", "regexp_full_match(condition_id, '0x[0-9a-fA-F]{62}')"),  # combo condition ids: 62 hex digits
)


def verify_dome(con: Any, ground_truth_path: str, wallets: list[str] | None = None) -> Verification:
    """`con`: a DuckDB connection holding `trades` (and `traders` when `wallets` is None)."""
    truth = ", ".join(f'"{f}"' for f in _FIELDS)
    return _verify(con, ground_truth_path, wallets, _TRUTH_COLUMNS, truth, truth, repeats=False)


def verify_polymarket(con: Any, ground_truth_path: str, wallets: list[str] | None = None) -> Verification:
    """As `verify_dome`, for a ground truth of Data API v2 rows (`/v2/trades?taker_only=false&start=1`).

    The Data API serves identical rows for identical fills of one transaction (no log index, no order
    hash), so here `duplicates` counts only copies beyond the ones the ground truth itself holds.
    """
    truth = ", ".join(f'{expr} AS "{column}"' for column, expr in _PM_MAPPING)
    have = ", ".join(f'"{column}"' for column, _ in _PM_MAPPING)
    return _verify(con, ground_truth_path, wallets, _PM_TRUTH_COLUMNS, truth, have, repeats=True)


def _verify(
    con: Any,
    ground_truth_path: str,
    wallets: list[str] | None,
    columns: dict[str, str],
    truth: str,
    have: str,
    *,
    repeats: bool,
) -> Verification:
    """Multiset comparison of `truth` (select list over the JSONL) with `have` (select list over `trades`);
    `repeats`: identical rows are legitimate in the truth, so a duplicate is a copy beyond its count.

    The check holds the ground truth and the wallets' rows side by side: it runs without the memory limit
    the embedded warehouse sets (sized for merging batches), and puts that one back. (DuckDB 1.5's RESET
    memory_limit changes the setting but not the buffer pool's limit, hence SET '-1': no limit.)"""
    cur = con.cursor()
    limit = cur.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    cur.execute("SET memory_limit = '-1'")
    try:
        return _compare(cur, ground_truth_path, wallets, columns, truth, have, repeats=repeats)
    finally:
        cur.execute(f"SET memory_limit = '{limit}'")


def _compare(
    cur: Any,
    ground_truth_path: str,
    wallets: list[str] | None,
    columns: dict[str, str],
    truth: str,
    have: str,
    *,
    repeats: bool,
) -> Verification:
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    cur.execute("CREATE OR REPLACE TEMP TABLE _scope (wallet VARCHAR)")
    if wallets is None:
        cur.execute("INSERT INTO _scope SELECT wallet_address FROM traders")
    else:
        cur.executemany("INSERT INTO _scope VALUES (?)", [[w] for w in wallets])
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE _truth AS
            SELECT wallet AS wallet_address, {truth}, "timestamp" AS ts
            FROM read_json(?, format = 'newline_delimited', columns = {cols})
            WHERE wallet IN (SELECT wallet FROM _scope)""",
        [ground_truth_path],
    )
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE _have AS
            SELECT wallet_address, {have}, epoch("timestamp")::BIGINT AS ts
            FROM trades WHERE wallet_address IN (SELECT wallet FROM _scope)"""
    )
    out = Verification()
    out.wallets = cur.execute("SELECT count(*) FROM _scope").fetchone()[0]
    out.truth_rows = cur.execute("SELECT count(*) FROM _truth").fetchone()[0]
    out.warehouse_rows = cur.execute("SELECT count(*) FROM _have").fetchone()[0]
    if repeats:
        names = [d[0] for d in cur.execute("SELECT * FROM _have LIMIT 0").description]
        same = " AND ".join(f'h."{c}" IS NOT DISTINCT FROM t."{c}"' for c in names)
        out.duplicates = cur.execute(
            f"""SELECT coalesce(sum(h._n - t._n), 0)::BIGINT
                FROM (SELECT *, count(*) AS _n FROM _have GROUP BY ALL) h
                JOIN (SELECT *, count(*) AS _n FROM _truth GROUP BY ALL) t ON {same}
                WHERE h._n > t._n"""
        ).fetchone()[0]
    else:
        out.duplicates = (
            out.warehouse_rows - cur.execute("SELECT count(*) FROM (SELECT DISTINCT * FROM _have)").fetchone()[0]
        )
    out.missing = cur.execute("SELECT count(*) FROM (SELECT * FROM _truth EXCEPT ALL SELECT * FROM _have)").fetchone()[
        0
    ]
    out.extra = cur.execute("SELECT count(*) FROM (SELECT * FROM _have EXCEPT ALL SELECT * FROM _truth)").fetchone()[0]
    out.wallets_wrong = [
        r[0]
        for r in cur.execute(
            """SELECT DISTINCT wallet_address FROM (
               (SELECT * FROM _truth EXCEPT ALL SELECT * FROM _have)
               UNION ALL (SELECT * FROM _have EXCEPT ALL SELECT * FROM _truth)) ORDER BY 1 LIMIT 20"""
        ).fetchall()
    ]
    for t in ("_truth", "_have", "_scope"):
        cur.execute(f"DROP TABLE IF EXISTS {t}")
    return out
