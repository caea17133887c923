"""Every warehouse table, defined once: columns, types, key, partitioning, clustering.

From this one spec come the DuckDB DDL (shared/adapters/local/duckdb.py), the BigQuery schemas
(shared/adapters/gcp/schema.py) and Terraform's schema files (infra/terraform/schemas/*.json, written by
`python -m shared.core.tables --write`; a test fails when the checked-in files are not current).

Types are BigQuery's names; the DuckDB twin maps them in `DUCKDB_TYPES`. A key column is REQUIRED in
BigQuery, NOT NULL (primary key) in DuckDB.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # STRING | INT64 | FLOAT64 | BOOL | TIMESTAMP
    doc: str = ""

    @property
    def duckdb(self) -> str:
        return DUCKDB_TYPES[self.type]


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    partition: str | None = None  # a TIMESTAMP column, MONTH partitions
    clustering: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def required(self, column: Column) -> bool:
        return column.name in self.key


def _cols(spec: str, **docs: str) -> tuple[Column, ...]:
    """'name TYPE, name TYPE' for the bookkeeping tables; `docs` comments the columns that need one."""
    names = [item.split() for item in (part.strip() for part in spec.split(",")) if item]
    return tuple(Column(name, type_, docs.get(name, "")) for name, type_ in names)


# One fill of one wallet as a part file holds it (a JSONL line), in table order.
TRADE_ROW: tuple[Column, ...] = (
    Column("wallet_address", "STRING", "The queried wallet, lowercase."),
    Column("source", "STRING", "dome | polymarket"),
    Column("trade_key", "STRING", "The natural key as one string (unique per wallet_address)."),
    Column("tx_hash", "STRING"),
    Column("log_index", "INT64"),
    Column("order_hash", "STRING"),
    Column("token_id", "STRING", "A 77-digit integer: never a number type."),
    Column("token_label", "STRING"),
    Column("side", "STRING"),
    Column("market_slug", "STRING"),
    Column("condition_id", "STRING"),
    Column("shares", "FLOAT64", "Raw units (6 decimals) as Dome sends them; NULL from the Data API."),
    Column("shares_normalized", "FLOAT64"),
    Column("price", "FLOAT64"),
    Column("block_number", "INT64"),
    Column("title", "STRING"),
    Column("timestamp", "TIMESTAMP", "Block time of the fill (partitioning column)."),
    Column("user", "STRING", "Dome: the order's maker; the Data API: proxy_wallet."),
    Column("taker", "STRING"),
    Column("event_slug", "STRING", "Data API only."),
    Column("outcome", "STRING", "Data API only."),
    Column("outcome_index", "INT64", "Data API only."),
    Column("is_combo", "BOOL", "Data API only: a combo (parlay) market."),
    Column("run_id", "STRING", "The run whose part file first brought the row."),
)

TRADERS = Table(
    "traders",
    "The wallets to copy (the operator's table, or this one).",
    _cols("wallet_address STRING, added_at TIMESTAMP"),
    key=("wallet_address",),
)
TRADES = Table(
    "trades",
    "One row per fill per wallet; MERGEd on (wallet_address, trade_key), never inserted twice.",
    (*TRADE_ROW, Column("ingested_at", "TIMESTAMP", "When the warehouse merged the row.")),
    key=("wallet_address", "trade_key"),
    # MONTH partitions on the fill time: a batch touches few (far under 4,000 per job); clustered for the
    # MERGE's key lookups and per-market reads.
    partition="timestamp",
    clustering=("wallet_address", "condition_id"),
)
CHECKPOINTS = Table(
    "checkpoints",
    "Per wallet: its run, status and counts; complete only in the transaction that merges its last part.",
    _cols(
        "wallet_address STRING, run_id STRING, source STRING, status STRING, parts_loaded INT64, final_part INT64,"
        " trades_loaded INT64, newest_trade_at TIMESTAMP, last_error STRING, started_at TIMESTAMP,"
        " updated_at TIMESTAMP, completed_at TIMESTAMP, synced_at TIMESTAMP",
        status="in_progress | complete",
        newest_trade_at="The newest trade loaded: the watermark of incremental syncs.",
        synced_at="When a walk last completed the wallet (a backfill or a sync): the sync's age.",
    ),
    key=("wallet_address",),
)
CHECKPOINT_PARTS = Table(
    "checkpoint_parts",
    "Every loaded part file: the stretch of a wallet's walk it covers (cursor_in -> cursor_after).",
    _cols(
        "wallet_address STRING, run_id STRING, part INT64, uri STRING, rows INT64, final BOOL, cursor_in STRING,"
        " cursor_after STRING, span_since INT64, span_until INT64, window_lo INT64, window_hi INT64,"
        " split_at INT64, split_children STRING, loaded_at TIMESTAMP",
        span_since="The run's walk starts here (epoch seconds, inclusive; NULL: the wallet's first trade).",
        span_until="The run's walk ends here (inclusive; NULL: now).",
        window_lo="The stretch of the walk this part's chain covers (docs/design.md, Windows); NULL: open.",
        window_hi="The window's upper end, inclusive; NULL: open.",
        split_at="On a final part that split its window: the chain covers only (split_at, window_hi].",
        split_children="The windows [[lo, hi], ...] that cover [window_lo, split_at], one chain each.",
    ),
    key=("uri",),
)
LEASES = Table(
    "leases",
    "Wallets dispatched and not yet finished (the dispatcher's own table).",
    _cols(
        "wallet_address STRING, run_id STRING, reason STRING, leased_at TIMESTAMP, lease_until TIMESTAMP, token STRING",
        reason="in_flight: dispatched, until the run completes the wallet or the lease runs out",
        token="The dispatch call that took the lease: of concurrent calls, only the one that wrote it publishes.",
    ),
    key=("wallet_address",),
)
DEAD_LETTERS = Table(
    "dead_letters",
    "Messages that will not succeed as they are, with the reason; a wallet with a pending one is parked.",
    _cols(
        "id STRING, topic STRING, data STRING, attributes STRING, error_class STRING, error STRING, wallet STRING,"
        " attempts INT64, failed_at TIMESTAMP, replayed_at TIMESTAMP",
        id="Same message, same reason: same id (a repeated failure is one letter).",
        topic="The topic the message came from: wallets | files.",
        replayed_at="NULL while pending; a pending letter parks its wallet.",
    ),
    key=("id",),
)

# -- the context of the trades: markets and events, looked up for the condition ids the trades name -------

MARKET_ROW: tuple[Column, ...] = (
    Column("condition_id", "STRING", "The market's condition id, as trades name it."),
    Column("market_slug", "STRING"),
    Column("event_slug", "STRING", "The event the market belongs to (NULL where the API names none)."),
    Column("title", "STRING", "The market's question."),
    Column("status", "STRING", "open | closed"),
    Column("start_time", "TIMESTAMP"),
    Column("end_time", "TIMESTAMP"),
    Column("completed_time", "TIMESTAMP", "When it resolved (NULL while open)."),
    Column("close_time", "TIMESTAMP", "Dome only."),
    Column("tags", "STRING", "A JSON array of labels (BigQuery: JSON_VALUE_ARRAY(tags))."),
    Column("volume_total", "FLOAT64"),
    Column("side_a_token_id", "STRING", "The first outcome's token id (a trade's token_id)."),
    Column("side_a_label", "STRING"),
    Column("side_b_token_id", "STRING"),
    Column("side_b_label", "STRING"),
    Column("winning_side_label", "STRING", "The winning outcome's label once resolved, else NULL."),
    Column("winning_token_id", "STRING", "The winning outcome's token id once resolved, else NULL."),
    Column("source", "STRING", "dome | polymarket (Gamma)"),
    Column("fetched_at", "TIMESTAMP", "When the API was asked: a newer fetch replaces an older one."),
    Column("raw", "STRING", "The API's market object as JSON: no field is lost."),
)
EVENT_ROW: tuple[Column, ...] = (
    Column("event_slug", "STRING"),
    Column("title", "STRING"),
    Column("subtitle", "STRING"),
    Column("status", "STRING", "open | closed"),
    Column("start_time", "TIMESTAMP"),
    Column("end_time", "TIMESTAMP"),
    Column("volume", "FLOAT64"),
    Column("tags", "STRING", "A JSON array of labels."),
    Column("market_count", "INT64"),
    Column("source", "STRING", "dome | polymarket (Gamma)"),
    Column("fetched_at", "TIMESTAMP"),
    Column("raw", "STRING", "The API's event object as JSON."),
)
MARKETS = Table(
    "markets",
    "One row per condition id a trade names: the market's question, outcomes and resolution.",
    MARKET_ROW,
    key=("condition_id",),
)
EVENTS = Table("events", "One row per event the markets name.", EVENT_ROW, key=("event_slug",))
MARKET_REFS = Table(
    "market_refs",
    "Every condition id the trades name, recorded by the loader as it merges them (what to look up).",
    _cols("condition_id STRING, first_seen_at TIMESTAMP"),
    key=("condition_id",),
)
LOOKUP_MISSES = Table(
    "lookup_misses",
    "Condition ids and event slugs the API does not know, and when it was asked (asked again after a day).",
    _cols("kind STRING, key STRING, source STRING, checked_at TIMESTAMP", kind="markets | events"),
    key=("kind", "key"),
)
LOOKUPS = Table(
    "lookups",
    "Lookups dispatched and not yet loaded (the dispatcher's own table, like leases).",
    _cols("kind STRING, key STRING, leased_at TIMESTAMP, lease_until TIMESTAMP, token STRING"),
    key=("kind", "key"),
)

TABLES: tuple[Table, ...] = (
    TRADERS, TRADES, CHECKPOINTS, CHECKPOINT_PARTS, LEASES, DEAD_LETTERS,
    MARKETS, EVENTS, MARKET_REFS, LOOKUP_MISSES, LOOKUPS,
)  # fmt: skip
BY_NAME = {t.name: t for t in TABLES}

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "infra" / "terraform" / "schemas"


def terraform_schema(table: Table) -> list[dict[str, str]]:
    """The table in the JSON form of google_bigquery_table's `schema` (and `bq mk --schema`)."""
    out = []
    for c in table.columns:
        field = {"name": c.name, "type": c.type, "mode": "REQUIRED" if table.required(c) else "NULLABLE"}
        if c.doc:
            field["description"] = c.doc
        out.append(field)
    return out


def terraform_tables() -> dict[str, dict[str, object]]:
    """What Terraform needs besides the columns: partitioning and clustering, per table."""
    return {
        t.name: {"description": t.doc, "partition_field": t.partition, "clustering": list(t.clustering) or None}
        for t in TABLES
    }


def terraform_files() -> dict[str, str]:
    """File name -> content of everything under infra/terraform/schemas/."""
    files = {f"{t.name}.json": json.dumps(terraform_schema(t), indent=2) + "\n" for t in TABLES}
    files["tables.json"] = json.dumps(terraform_tables(), indent=2) + "\n"
    return files


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print("usage: python -m shared.core.tables --write   (regenerates infra/terraform/schemas/)")
        return 2
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in terraform_files().items():
        (SCHEMA_DIR / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
