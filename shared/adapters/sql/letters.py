"""The dead-letter table's statements, once for both dialects (shared/adapters/sql/deadletters.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from shared.adapters.sql.dialect import Sql
from shared.adapters.sql.statements import Names
from shared.core.tables import DEAD_LETTERS

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
