"""The markets and events lookups' statements, once for both dialects.

What to look up is read from small tables — `market_refs` (the condition ids trades name, kept by the
loader), `markets`, `events`, `lookup_misses` — never by scanning `trades`. A key is due when it has
no row, or its row is unresolved (status <> 'closed') and older than the refresh interval; a key the
API did not know is asked again only after `miss_before`; a key whose lookup is in flight (a live
`lookups` lease) is not sent twice. The loader MERGEs the rows (a newer fetch replaces an older one)
and records the misses in one transaction.
"""

from __future__ import annotations

from datetime import datetime

from shared.adapters.sql.dialect import Sql
from shared.adapters.sql.statements import Names
from shared.core.tables import EVENTS, MARKETS, Table

TARGET = {"markets": MARKETS, "events": EVENTS}


def _due(n: Names, kind: str, key: str, row: str) -> str:
    """The conditions every due key meets, whatever its kind (`key`: its expression, `row`: its row's alias)."""
    d = n.d
    return f"""({row}.fetched_at IS NULL OR ({row}.status <> 'closed' AND {row}.fetched_at < {d.p("stale_before")}))
  AND NOT EXISTS (SELECT 1 FROM {n.t("lookup_misses")} AS x
                  WHERE x.kind = '{kind}' AND x.key = {key} AND x.checked_at >= {d.p("miss_before")})
  AND NOT EXISTS (SELECT 1 FROM {n.t("lookups")} AS l
                  WHERE l.kind = '{kind}' AND l.key = {key} AND l.lease_until > {d.p("now")}
                    -- a lookup's lease ends once it is answered: a row, or a miss, newer than the lease
                    AND ({row}.fetched_at IS NULL OR {row}.fetched_at < l.leased_at)
                    AND NOT EXISTS (SELECT 1 FROM {n.t("lookup_misses")} AS y
                                    WHERE y.kind = '{kind}' AND y.key = {key} AND y.checked_at >= l.leased_at))"""


def _params(now: datetime, stale_before: datetime, miss_before: datetime, limit: int) -> dict:
    return {
        "now": ("TIMESTAMP", now),
        "stale_before": ("TIMESTAMP", stale_before),
        "miss_before": ("TIMESTAMP", miss_before),
        "limit": ("INT64", limit),
    }


def market_candidates(n: Names, now: datetime, stale_before: datetime, miss_before: datetime, limit: int) -> Sql:
    return Sql(
        f"""SELECT r.condition_id AS key
FROM {n.t("market_refs")} AS r
LEFT JOIN {n.t("markets")} AS m ON m.condition_id = r.condition_id
WHERE {_due(n, "markets", "r.condition_id", "m")}
ORDER BY r.condition_id
LIMIT {n.d.p("limit")}""",
        _params(now, stale_before, miss_before, limit),
    )


def event_candidates(n: Names, now: datetime, stale_before: datetime, miss_before: datetime, limit: int) -> Sql:
    return Sql(
        f"""SELECT s.event_slug AS key
FROM (SELECT DISTINCT event_slug FROM {n.t("markets")} WHERE event_slug IS NOT NULL) AS s
LEFT JOIN {n.t("events")} AS e ON e.event_slug = s.event_slug
WHERE {_due(n, "events", "s.event_slug", "e")}
ORDER BY s.event_slug
LIMIT {n.d.p("limit")}""",
        _params(now, stale_before, miss_before, limit),
    )


def claim(n: Names, kind: str, keys: list[str], now: datetime, until: datetime, token: str) -> Sql:
    """Take the lookups of keys nobody is looking up (as `statements.claim` does for wallets)."""
    d = n.d
    table = TARGET[kind]
    return Sql(
        f"""MERGE INTO {n.t("lookups")} AS t
USING (
  SELECT k AS key, MAX(r.fetched_at) AS fetched_at, MAX(x.checked_at) AS checked_at
  FROM {d.unnest("keys", "k", "STRING")}
  LEFT JOIN {n.t(table.name)} AS r ON r.{table.key[0]} = k
  LEFT JOIN {n.t("lookup_misses")} AS x ON x.kind = {d.p("kind", "STRING")} AND x.key = k
  GROUP BY k
) AS s
ON t.kind = {d.p("kind", "STRING")} AND t.key = s.key
-- free: its lease ran out, or the lookup it was taken for has been answered (a row or a miss since)
WHEN MATCHED AND (t.lease_until <= {d.p("now")} OR s.fetched_at >= t.leased_at OR s.checked_at >= t.leased_at)
THEN UPDATE SET
  leased_at = {d.p("now")}, lease_until = {d.p("until")}, token = {d.p("token", "STRING")}
WHEN NOT MATCHED THEN INSERT (kind, key, leased_at, lease_until, token)
VALUES ({d.p("kind", "STRING")}, s.key, {d.p("now")}, {d.p("until")}, {d.p("token", "STRING")})""",
        {
            "keys": ("ARRAY<STRING>", keys),
            "kind": ("STRING", kind),
            "now": ("TIMESTAMP", now),
            "until": ("TIMESTAMP", until),
            "token": ("STRING", token),
        },
    )


def claimed(n: Names, kind: str, token: str) -> Sql:
    d = n.d
    return Sql(
        f"SELECT key FROM {n.t('lookups')} WHERE kind = {d.p('kind', 'STRING')} AND token = {d.p('token', 'STRING')}",
        {"kind": ("STRING", kind), "token": ("STRING", token)},
    )


def merge_rows(n: Names, table: Table, rows: str) -> str:
    """The fetched rows into their table: one per key (the newest fetch), never replacing a newer one."""
    d = n.d
    key = table.key[0]
    cols = table.names
    updates = ", ".join(f"{d.q(c)} = s.{d.q(c)}" for c in cols if c != key)
    return f"""MERGE INTO {n.t(table.name)} AS t
USING (
  SELECT {d.columns(cols, "r")}
  FROM {rows}
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY r.{key} ORDER BY r.fetched_at DESC) = 1
) AS s
ON t.{key} = s.{key}
WHEN MATCHED AND s.fetched_at >= t.fetched_at THEN UPDATE SET {updates}
WHEN NOT MATCHED THEN INSERT ({d.columns(cols)}) VALUES ({d.columns(cols, "s")});"""


def merge_misses(n: Names, kind: str) -> str:
    """The keys the API did not know (parameter `missing`), with when they were asked."""
    d = n.d
    return f"""MERGE INTO {n.t("lookup_misses")} AS t
USING (SELECT k AS key FROM {d.unnest("missing", "k", "STRING")} GROUP BY k) AS s
ON t.kind = '{kind}' AND t.key = s.key
WHEN MATCHED THEN UPDATE SET checked_at = {d.p("now")}, source = {d.p("source", "STRING")}
WHEN NOT MATCHED THEN INSERT (kind, key, source, checked_at)
VALUES ('{kind}', s.key, {d.p("source", "STRING")}, {d.p("now")});"""


def forget_misses(n: Names, kind: str) -> str:
    """Keys found now (parameter `found`) are no longer misses."""
    return f"DELETE FROM {n.t('lookup_misses')} WHERE kind = '{kind}' AND {n.d.in_array('key', 'found')};"


def status(n: Names) -> Sql:
    return Sql(
        f"""SELECT (SELECT COUNT(*) FROM {n.t("markets")}) AS markets,
       (SELECT COUNT(*) FROM {n.t("markets")} WHERE status <> 'closed') AS unresolved,
       (SELECT MIN(fetched_at) FROM {n.t("markets")} WHERE status <> 'closed') AS oldest_unresolved_fetch,
       (SELECT COUNT(*) FROM {n.t("events")}) AS events,
       (SELECT COUNT(*) FROM {n.t("lookup_misses")} WHERE kind = 'markets') AS markets_not_found,
       (SELECT COUNT(*) FROM {n.t("lookup_misses")} WHERE kind = 'events') AS events_not_found,
       (SELECT COUNT(*) FROM {n.t("market_refs")}) AS condition_ids"""
    )
