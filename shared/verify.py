"""Check a warehouse against the simulator's ground truth, row for row, without trusting our own keys.

Rows are compared on every source field (multiset difference, so a row present twice counts), for the
wallets the warehouse was asked to fill. The ground truth file is JSONL: {"wallet": w, **api_row}.
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


def verify_dome(con: Any, ground_truth_path: str, wallets: list[str] | None = None) -> Verification:
    """`con`: a DuckDB connection holding `trades` (and `traders` when `wallets` is None)."""
    cur = con.cursor()
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in _TRUTH_COLUMNS.items()) + "}"
    cur.execute("CREATE OR REPLACE TEMP TABLE _scope (wallet VARCHAR)")
    if wallets is None:
        cur.execute("INSERT INTO _scope SELECT wallet_address FROM traders")
    else:
        cur.executemany("INSERT INTO _scope VALUES (?)", [[w] for w in wallets])
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE _truth AS
            SELECT wallet AS wallet_address, {", ".join(f'"{f}"' for f in _FIELDS)}, "timestamp" AS ts
            FROM read_json(?, format = 'newline_delimited', columns = {cols})
            WHERE wallet IN (SELECT wallet FROM _scope)""",
        [ground_truth_path],
    )
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE _have AS
            SELECT wallet_address, {", ".join(f'"{f}"' for f in _FIELDS)}, epoch("timestamp")::BIGINT AS ts
            FROM trades WHERE wallet_address IN (SELECT wallet FROM _scope)"""
    )
    out = Verification()
    out.wallets = cur.execute("SELECT count(*) FROM _scope").fetchone()[0]
    out.truth_rows = cur.execute("SELECT count(*) FROM _truth").fetchone()[0]
    out.warehouse_rows = cur.execute("SELECT count(*) FROM _have").fetchone()[0]
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
