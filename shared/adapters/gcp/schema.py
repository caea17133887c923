"""The BigQuery form of the one table spec (shared/core/tables.py): SchemaField lists, partitioning,
clustering. A key column is REQUIRED (the DuckDB twin keeps it NOT NULL)."""

from __future__ import annotations

from google.cloud import bigquery
from google.cloud.bigquery import SchemaField

from shared.core.tables import TRADE_ROW, TRADES, Table


def schema(table: Table) -> list[SchemaField]:
    out = []
    for c in table.columns:
        mode = "REQUIRED" if table.required(c) else "NULLABLE"
        out.append(
            SchemaField(c.name, c.type, mode=mode, description=c.doc)
            if c.doc
            else SchemaField(c.name, c.type, mode=mode)
        )
    return out


# A part file's line, as the load job reads it into a staging table.
ROW_SCHEMA = [SchemaField(c.name, c.type, mode="REQUIRED" if c.name in TRADES.key else "NULLABLE") for c in TRADE_ROW]


def bigquery_table(ref: str, table: Table) -> bigquery.Table:
    """The table resource; partitioning set through the API (bqemulator drops it given any other way)."""
    out = bigquery.Table(ref, schema=schema(table))
    if table.partition:
        out.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.MONTH, field=table.partition
        )
    if table.clustering:
        out.clustering_fields = list(table.clustering)
    return out
