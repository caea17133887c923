"""The canonical trade row (one fill of one wallet) and its natural key (DESIGN rule 1).

Every source maps its rows to this shape; the part files hold exactly these columns (one JSON object
per line), and both warehouses declare them from COLUMNS, so there is one list to change.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, NamedTuple


class Column(NamedTuple):
    name: str
    duckdb: str
    bigquery: str


COLUMNS: tuple[Column, ...] = (
    Column("wallet_address", "VARCHAR", "STRING"),  # the queried wallet, lowercase
    Column("source", "VARCHAR", "STRING"),  # dome | polymarket
    Column("trade_key", "VARCHAR", "STRING"),  # the natural key as one string
    Column("tx_hash", "VARCHAR", "STRING"),
    Column("log_index", "BIGINT", "INT64"),
    Column("order_hash", "VARCHAR", "STRING"),
    Column("token_id", "VARCHAR", "STRING"),  # a 77-digit integer: never a number type
    Column("token_label", "VARCHAR", "STRING"),
    Column("side", "VARCHAR", "STRING"),
    Column("market_slug", "VARCHAR", "STRING"),
    Column("condition_id", "VARCHAR", "STRING"),
    Column("shares", "DOUBLE", "FLOAT64"),  # raw units (6 decimals) as the source sends them
    Column("shares_normalized", "DOUBLE", "FLOAT64"),
    Column("price", "DOUBLE", "FLOAT64"),
    Column("block_number", "BIGINT", "INT64"),
    Column("title", "VARCHAR", "STRING"),
    Column("timestamp", "TIMESTAMPTZ", "TIMESTAMP"),  # block time of the fill
    Column("user", "VARCHAR", "STRING"),  # Dome: the order's maker
    Column("taker", "VARCHAR", "STRING"),
    Column("event_slug", "VARCHAR", "STRING"),  # Polymarket Data API only
    Column("outcome", "VARCHAR", "STRING"),
    Column("outcome_index", "BIGINT", "INT64"),
    Column("is_combo", "BOOLEAN", "BOOL"),
    Column("run_id", "VARCHAR", "STRING"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
# Set by the warehouse when the row is merged, not by the fetcher.
INGESTED_AT = Column("ingested_at", "TIMESTAMPTZ", "TIMESTAMP")
KEY_COLUMNS = ("wallet_address", "trade_key")


def iso_timestamp(epoch_seconds: int) -> str:
    """The form both warehouses parse into a TIMESTAMP from JSON."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: Any) -> str:
    return repr(float(value)) if value is not None else ""


def fingerprint(*parts: Any) -> str:
    """A stable hash of identifying fields: numbers through float repr so 5 and 5.0 agree."""
    text = "\x1f".join(
        _num(p) if isinstance(p, int | float) and not isinstance(p, bool) else str(p or "") for p in parts
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Occurrences:
    """Occurrence numbers of identical fingerprints inside one group (a transaction), for sources whose
    rows carry no id: feed rows in API order; a new group starts the counts again."""

    def __init__(self) -> None:
        self.group: str | None = None
        self.counts: dict[str, int] = {}

    def next(self, group: str, key: str) -> int:
        if group != self.group:
            self.group, self.counts = group, {}
        n = self.counts.get(key, 0)
        self.counts[key] = n + 1
        return n


def dome_trade_key(wallet: str, row: dict[str, Any]) -> str:
    """(wallet, tx_hash, log_index); without a log_index, a fingerprint of the identifying fields.

    Never order_hash alone (repeats across partial fills) nor tx_hash alone (one transaction holds
    several fills of one wallet): both would drop real trades.
    """
    if row.get("log_index") is not None:
        return f"dome:{wallet}:{row['tx_hash']}:{int(row['log_index'])}"
    fp = fingerprint(
        row["tx_hash"],
        row["order_hash"],
        row["user"],
        row["token_id"],
        row["side"],
        row["shares"],
        row["price"],
        row["timestamp"],
    )
    return f"dome:{wallet}:fp:{fp}"


def part_line(row: dict[str, Any]) -> str:
    """One canonical row as a JSONL line, columns in table order, nothing else."""
    return json.dumps({name: row.get(name) for name in COLUMN_NAMES}, separators=(",", ":")) + "\n"
