"""The BigQuery tables, column for column the DuckDB twin's (shared/warehouse/duckdb.py SCHEMA).

A `!` marks a REQUIRED column: the twin's primary-key columns, which DuckDB keeps NOT NULL. There is
no dead_letters table: in the cloud, dead letters are messages on the dead-letter topics.
"""

from __future__ import annotations

from google.cloud.bigquery import SchemaField

from shared.trades import COLUMNS, INGESTED_AT, KEY_COLUMNS


def _field(name: str, type_: str, required: bool = False) -> SchemaField:
    return SchemaField(name, type_, mode="REQUIRED" if required else "NULLABLE")


def _fields(spec: str) -> list[SchemaField]:
    out = []
    for item in spec.split(","):
        name, type_ = item.split()
        out.append(_field(name, type_.rstrip("!"), type_.endswith("!")))
    return out


ROW_SCHEMA = [_field(c.name, c.bigquery, c.name in KEY_COLUMNS) for c in COLUMNS]  # a part file's line
TABLES: dict[str, list[SchemaField]] = {
    "trades": [*ROW_SCHEMA, _field(INGESTED_AT.name, INGESTED_AT.bigquery)],
    "checkpoints": _fields(
        "wallet_address STRING!, run_id STRING, source STRING, status STRING, parts_loaded INT64, final_part INT64,"
        " trades_loaded INT64, newest_trade_at TIMESTAMP, last_error STRING, started_at TIMESTAMP,"
        " updated_at TIMESTAMP, completed_at TIMESTAMP"
    ),
    "checkpoint_parts": _fields(
        "wallet_address STRING, run_id STRING, part INT64, uri STRING!, rows INT64, final BOOL, cursor_in STRING,"
        " cursor_after STRING, loaded_at TIMESTAMP"
    ),
    "leases": _fields(
        "wallet_address STRING!, run_id STRING, reason STRING, leased_at TIMESTAMP, lease_until TIMESTAMP"
    ),
    "traders": _fields("wallet_address STRING!, added_at TIMESTAMP"),
}
# Trades: MONTH partitions on the fill time (a batch touches few, far under 4,000 per job), clustered
# for the MERGE's key lookups and per-market reads.
TRADES_PARTITION_FIELD = "timestamp"
TRADES_CLUSTERING = ["wallet_address", "condition_id"]
