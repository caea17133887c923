"""The reconciliation's statements, once for both dialects: which wallets are complete, and what the
warehouse holds for them (`backfill verify`, the dispatcher's POST /verify).

They only read. Complete checkpoints are walked by key (wallet address) in chunks, so a verification
of any number of wallets holds one chunk at a time; each chunk's counts are then read with the chunk's
wallets as an array parameter — a constant filter, which is what lets BigQuery prune `trades`' blocks
by its clustering on wallet_address (a join condition would not).
"""

from __future__ import annotations

from shared.adapters.sql.dialect import Sql
from shared.adapters.sql.statements import Names


def complete_checkpoints(n: Names, after: str | None, limit: int, wallets: list[str] | None) -> Sql:
    """Up to `limit` complete checkpoints with a wallet after `after` (None: from the first), in
    wallet order; only `wallets`' when given."""
    d = n.d
    only = f"AND ({d.p('all', 'BOOL')} OR {d.in_array('c.wallet_address', 'wallets')})"
    return Sql(
        f"""SELECT c.wallet_address, c.run_id, c.source, c.trades_loaded
FROM {n.t("checkpoints")} AS c
WHERE c.status = 'complete'
  AND ({d.p("after", "STRING")} IS NULL OR c.wallet_address > {d.p("after", "STRING")})
  {only}
ORDER BY c.wallet_address
LIMIT {d.p("limit")}""",
        {
            "after": ("STRING", after),
            "limit": ("INT64", limit),
            "all": ("BOOL", wallets is None),
            "wallets": ("ARRAY<STRING>", wallets or []),
        },
    )


def stored_rows(n: Names, wallets: list[str]) -> Sql:
    """The rows `trades` holds per wallet (a wallet without rows is absent)."""
    d = n.d
    return Sql(
        f"""SELECT wallet_address, COUNT(*) AS n
FROM {n.t("trades")}
WHERE {d.in_array("wallet_address", "wallets")}
GROUP BY wallet_address""",
        {"wallets": ("ARRAY<STRING>", wallets)},
    )


def final_parts(n: Names, wallets: list[str]) -> Sql:
    """Per wallet and run, how many final parts are loaded: a complete checkpoint whose run has none was
    not completed by the loader (design rule 3) — someone wrote it."""
    d = n.d
    return Sql(
        f"""SELECT wallet_address, run_id, COUNT(*) AS n
FROM {n.t("checkpoint_parts")}
WHERE {d.q("final")} AND {d.in_array("wallet_address", "wallets")}
GROUP BY wallet_address, run_id""",
        {"wallets": ("ARRAY<STRING>", wallets)},
    )
