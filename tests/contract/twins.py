"""The two warehouse twins side by side, each with the object store its loads read from and a way to
look at its tables, so one contract suite can drive both."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from shared.adapters.gcp.bigquery import BigQueryWarehouse
from shared.adapters.gcp.storage import GcsObjectStore
from shared.adapters.local.duckdb import DuckDBWarehouse
from shared.adapters.local.files import LocalObjectStore
from shared.adapters.local.warehouse_process import WarehouseProcess
from shared.adapters.sql.dialect import Sql
from shared.core.messages import FileReady
from shared.core.trades import COLUMN_NAMES, part_line
from shared.handlers.fetch import announced_part_name
from shared.ports.objectstore import ObjectStore


class StrictJobIdClient(bigquery.Client):
    """bqemulator runs a second load job with an id it has seen; real BigQuery answers 409 Already
    Exists. This client restores the real behaviour, so the attach-to-the-earlier-job path runs."""

    def load_table_from_uri(self, source_uris: Any, destination: Any, job_id: str | None = None, **kwargs: Any) -> Any:
        if job_id:
            try:
                self.get_job(job_id, location=kwargs.get("location"))
            except gexc.NotFound:
                pass
            else:
                raise gexc.Conflict(f"Already Exists: Job {self.project}:{job_id}")
        return super().load_table_from_uri(source_uris, destination, job_id=job_id, **kwargs)


@dataclass
class Twin:
    kind: str
    warehouse: Any
    store: ObjectStore

    def write_part(self, name: str, rows: list[dict[str, Any]]) -> str:
        with self.store.open_writer(name) as out:
            for row in rows:
                out.write(part_line(row))
        return self.store.uri(name)

    def part(
        self,
        wallet: str,
        run_id: str,
        part: int,
        rows: list[dict[str, Any]],
        *,
        final: bool,
        cursor_in: str | None = None,
        cursor_after: str | None = None,
        name: str | None = None,
    ) -> FileReady:
        ready = FileReady(
            run_id=run_id,
            wallet=wallet,
            part=part,
            uri="-",
            rows=len(rows),
            final=final,
            cursor_in=cursor_in,
            cursor_after=None if final else cursor_after,
        )
        # The name the fetcher gives such a part: the load handler loads nothing else.
        return ready.model_copy(update={"uri": self.write_part(name or announced_part_name(ready), rows)})

    def table(self, name: str) -> str:
        if self.kind == "duckdb":
            return name
        return f"`{self.warehouse.project}.{self.warehouse.dataset}.{name}`"

    def query(self, sql: str) -> list[dict[str, Any]]:
        return list(self.warehouse.query(Sql(sql)))

    def trades(self) -> list[dict[str, Any]]:
        cols = ", ".join(f'"{c}"' if self.kind == "duckdb" else f"`{c}`" for c in COLUMN_NAMES)
        rows = self.query(f"SELECT {cols} FROM {self.table('trades')} ORDER BY wallet_address, trade_key")
        return [_plain(r) for r in rows]

    def checkpoints(self) -> dict[str, dict[str, Any]]:
        return {r["wallet_address"]: r for r in self.query(f"SELECT * FROM {self.table('checkpoints')}")}

    def part_records(self) -> list[dict[str, Any]]:
        return self.query(f"SELECT * FROM {self.table('checkpoint_parts')} ORDER BY uri")


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    ts = row["timestamp"]
    return {**row, "timestamp": ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None}


def duckdb_twin(tmp_path: Any) -> Twin:
    return Twin("duckdb", DuckDBWarehouse(tmp_path / "w.duckdb"), LocalObjectStore(tmp_path / "parts"))


def duckdb_process_twin(tmp_path: Any) -> Twin:
    """The DuckDB file served by a process of its own, as `backfill run` opens it (WarehouseProcess)."""
    return Twin("duckdb", WarehouseProcess(tmp_path / "w.duckdb"), LocalObjectStore(tmp_path / "parts"))


TWINS = ["duckdb", "duckdb-process", pytest.param("bigquery", marks=pytest.mark.emulators)]


def make_twin(request: Any, tmp_path: Any) -> Twin:
    """The twin a contract fixture's parameter names (TWINS), its schema created."""
    if request.param == "bigquery":
        made = bigquery_twin(request.getfixturevalue("emulator_stack"))
    else:
        made = (duckdb_twin if request.param == "duckdb" else duckdb_process_twin)(tmp_path)
    made.warehouse.create_schema()
    return made


def bigquery_twin(stack: Any, page_size: int = 500) -> Twin:
    bucket = f"b-{uuid.uuid4().hex[:16]}"
    storage_client = stack.storage_client()
    storage_client.create_bucket(bucket)
    client = StrictJobIdClient(
        project=stack.project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=stack.bigquery_endpoint),
    )
    suffix = uuid.uuid4().hex[:10]
    warehouse = BigQueryWarehouse(
        client,
        stack.project,
        f"wh_{suffix}",
        f"stg_{suffix}",
        page_size=page_size,
        request_timeout=10,
        job_timeout=60,
        retry_deadline=5,
    )
    return Twin("bigquery", warehouse, GcsObjectStore(storage_client, bucket, timeout=10, retry_deadline=5))


def now() -> datetime:
    return datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
