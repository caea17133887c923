"""The Warehouse port on BigQuery: the SQL base's statements (shared/adapters/sql/), run as query jobs.

`commit_batch` (docs/design.md, load path): the batch's part files go into an unpartitioned staging
table by a load job with a deterministic id (free; a retried batch attaches to its earlier job); the
batch's part records and checkpoints go into a one-row staging table by one parameterised CTAS; then
ONE script — BEGIN TRANSACTION; MERGE trades; MERGE checkpoint_parts; MERGE checkpoints; COMMIT — reads
only staging tables, so it needs no values in its text; then both staging tables are dropped.

Why the CTAS rather than parameters in the script: real BigQuery binds query parameters in scripts,
but bqemulator does not (its script interpreter drops them), and the one form that runs on both is a
script without parameters. Identifiers are the only thing formatted into SQL, and they are validated.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from google.api_core import exceptions as gexc
from google.cloud import bigquery
from google.cloud.bigquery import ScalarQueryParameter, SchemaField

from shared.adapters.gcp.bigquery_jobs import PRUNE, ErrorMap, load_job_id, prune_bounds, query_parameter
from shared.adapters.gcp.schema import ROW_SCHEMA, bigquery_table, schema
from shared.adapters.sql import loadpath as lp
from shared.adapters.sql import statements as st
from shared.adapters.sql.dialect import BIGQUERY, Sql, Struct
from shared.adapters.sql.warehouse import SqlWarehouse
from shared.core.chain import Segment
from shared.core.errors import PermanentError, SchemaMismatch, WarehouseUnavailable
from shared.core.tables import TABLES, Column
from shared.ports.warehouse import CheckpointUpdate

log = logging.getLogger(__name__)

STAGING_EXPIRATION_MS = 24 * 3600 * 1000  # a safety net: staging tables are dropped after each batch
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_-]{0,127}$")  # validated: identifiers are formatted into SQL
_NAME = re.compile(r"^[A-Za-z0-9_]{1,1024}$")


class BigQueryWarehouse(SqlWarehouse):
    d = BIGQUERY

    def __init__(
        self,
        client: bigquery.Client,
        project: str,
        dataset: str,
        staging_dataset: str,
        traders_table: str | None = None,
        location: str | None = None,
        *,
        page_size: int = 1000,
        request_timeout: float = 30.0,
        job_timeout: float = 300.0,
        retry_deadline: float = 60.0,
    ) -> None:
        if not _PROJECT.match(project) or not _NAME.match(dataset) or not _NAME.match(staging_dataset):
            raise ValueError(f"invalid project or dataset name: {project!r}, {dataset!r}, {staging_dataset!r}")
        traders_table = traders_table or f"{project}.{dataset}.traders"
        parts = traders_table.split(".")
        if len(parts) != 3 or not _PROJECT.match(parts[0]) or not all(_NAME.match(p) for p in parts[1:]):
            raise ValueError(f"traders_table must be project.dataset.table, not {traders_table!r}")
        self.client = client
        self.project, self.dataset, self.staging_dataset = project, dataset, staging_dataset
        self.traders_table = traders_table
        self.location = location
        self.page_size = page_size
        self.request_timeout = request_timeout
        self.job_timeout = job_timeout
        # The client's default retries run for 600 s; keep every call inside a push's ack deadline.
        self.retry = bigquery.DEFAULT_RETRY.with_timeout(retry_deadline).with_delay(initial=0.25, maximum=4.0)
        own = traders_table == f"{project}.{dataset}.traders"
        self.names = st.Names(BIGQUERY, prefix=f"{project}.{dataset}.", traders_table=None if own else traders_table)

    def close(self) -> None:
        self.client.close()

    # -- schema ---------------------------------------------------------------------------------------

    def _own_tables(self) -> list[Any]:
        """The spec's tables this warehouse keeps (an external traders table is the operator's)."""
        return [t for t in TABLES if not (t.name == "traders" and self.names.traders_table)]

    def create_schema(self) -> None:
        """Create the datasets and tables (the emulators, `backfill run --warehouse bigquery`); a deployment
        gets them from Terraform, and its services only check them."""
        with self._errors("create the datasets and tables"):
            for name, expiration in ((self.dataset, None), (self.staging_dataset, STAGING_EXPIRATION_MS)):
                ds = bigquery.Dataset(f"{self.project}.{name}")
                if self.location:  # an explicit null location is a 500 on bqemulator
                    ds.location = self.location
                if expiration:
                    ds.default_table_expiration_ms = expiration
                self.client.create_dataset(ds, exists_ok=True, retry=self.retry, timeout=self.request_timeout)
            for table in self._own_tables():
                ref = f"{self.project}.{self.dataset}.{table.name}"
                self.client.create_table(
                    bigquery_table(ref, table), exists_ok=True, retry=self.retry, timeout=self.request_timeout
                )

    def check_schema(self) -> None:
        for table in self._own_tables():
            ref = f"{self.project}.{self.dataset}.{table.name}"
            try:
                with self._errors(f"read the schema of {ref}"):
                    have = self.client.get_table(ref, retry=self.retry, timeout=self.request_timeout)
            except WarehouseUnavailable as exc:
                if isinstance(exc.__cause__, gexc.NotFound):
                    raise SchemaMismatch(f"no table {ref}: apply infra/terraform (or create the schema)") from None
                raise
            types = {f.name: f.field_type for f in have.schema}
            aliases = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}
            wrong = [
                f"{f.name}: {types.get(f.name, 'missing')}"
                for f in schema(table)
                if aliases.get(types.get(f.name, ""), types.get(f.name)) != f.field_type
            ]
            if wrong:
                raise SchemaMismatch(f"table {ref} is not the backfill's ({'; '.join(wrong)})")

    # -- running statements ----------------------------------------------------------------------------

    def _params(self, sql: Sql) -> list[Any]:
        return [
            query_parameter(name, type_, value) for name, (type_, value) in sql.params.items() if f"@{name}" in sql.text
        ]

    def query(self, sql: Sql) -> Iterator[dict[str, Any]]:
        for row in self._stream(sql.text, self._params(sql), doing="query"):
            yield dict(row.items())

    def execute(self, sql: Sql) -> int:
        return int(self._run(sql.text, self._params(sql), doing="run a statement").num_dml_affected_rows or 0)

    def transaction(self, statements: list[str], sql: Sql) -> None:
        """One script. Its parameters go into a one-row staging table first and are read from there
        (`@x` becomes `(SELECT p.x FROM staging AS p)`): bqemulator does not bind parameters in scripts."""
        used = {name: v for name, v in sql.params.items() if any(f"@{name}" in t for t in statements)}
        table = (
            self.names.d.q(f"{self.project}.{self.staging_dataset}.params_{uuid.uuid4().hex[:16]}") if used else None
        )
        try:
            if table:
                columns = ", ".join(f"@{name} AS {name}" for name in used)
                params = [query_parameter(name, type_, value) for name, (type_, value) in used.items()]
                self._run(f"CREATE OR REPLACE TABLE {table} AS SELECT {columns}", params, doing="stage parameters")
                statements = [
                    re.sub(
                        r"(?<!@)@(\w+)", lambda m: f"(SELECT p.{m[1]} FROM {table} AS p)" if m[1] in used else m[0], t
                    )
                    for t in statements
                ]
            script = "\n".join([sql.text, "BEGIN TRANSACTION;", *statements, "COMMIT TRANSACTION;"]).strip()
            self._run(script, [], doing="run a transaction", timeout=self.job_timeout)
        finally:
            if table:
                self._drop(table)

    @contextmanager
    def staged_batch(
        self, uris: list[str], segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> Iterator[tuple[lp.Batch, Sql]]:
        schemes = {urlparse(u).scheme for u in uris}
        if not schemes <= {"gs"} and schemes != {"file"}:
            raise PermanentError(
                f"BigQuery loads part files from gs:// (or local files, all of a batch): {uris[0]}", uri=uris[0]
            )
        rows_table = self._rows_table(uris) if uris else None
        meta = self.names.d.q(f"{self.project}.{self.staging_dataset}.batch_{uuid.uuid4().hex[:16]}")
        try:
            if rows_table:
                self._load_rows(uris)
            self._stage_meta(meta, segments, checkpoints, now)
            yield (
                lp.Batch(
                    rows=f"{rows_table} AS r CROSS JOIN {meta} AS m",
                    parts=f"{meta} AS {{m}} CROSS JOIN UNNEST({{m}}.parts) AS {{a}}",
                    checkpoints=f"{meta} AS {{m}} CROSS JOIN UNNEST({{m}}.checkpoints) AS {{a}}",
                    now="{m}.now",
                    prune=PRUNE,
                ),
                Sql(prune_bounds(rows_table) if rows_table else ""),
            )
        finally:
            for table in (rows_table, meta):
                if table:  # also after a failed load: bqemulator creates the destination before reading
                    self._drop(table)

    def _stage_meta(
        self, meta: str, segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> None:
        """One row: the batch's clock, part records and checkpoint updates (arrays of structs). Empty
        arrays are left out: their element type would be lost."""
        columns = ["@now AS now"]
        params = [ScalarQueryParameter("now", "TIMESTAMP", now)]
        if segments:
            columns.append("@parts AS parts")
            params.append(query_parameter("parts", Struct(lp.PART_FIELDS), lp.part_rows(segments)))
        if checkpoints:
            columns.append("@checkpoints AS checkpoints")
            params.append(query_parameter("checkpoints", Struct(lp.CHECKPOINT_FIELDS), lp.checkpoint_rows(checkpoints)))
        self._run(f"CREATE OR REPLACE TABLE {meta} AS SELECT {', '.join(columns)}", params, doing="stage the batch")

    # -- internals -----------------------------------------------------------------------------------------

    def _rows_table(self, uris: list[str]) -> str:
        return self.names.d.q(f"{self.project}.{self.staging_dataset}.rows_{load_job_id(uris).removeprefix('load_')}")

    @contextmanager
    def staged_rows(self, uris: list[str], columns: tuple[Column, ...]) -> Iterator[tuple[str, Sql]]:
        """The part files loaded into a staging table (as the trades' load does), for one statement."""
        table = self._rows_table(uris)
        try:
            self._load_rows(uris, [SchemaField(c.name, c.type) for c in columns])
            yield f"{table} AS r", Sql("")
        finally:
            self._drop(table)

    def _load_rows(self, uris: list[str], row_schema: list[SchemaField] | None = None) -> None:
        """Load the part files into their staging table. The same files always mean the same job id, so a
        retried batch attaches to its earlier load (409 Already Exists) instead of loading twice."""
        job_id, table = load_job_id(uris), self._rows_table(uris)
        config = bigquery.LoadJobConfig(
            schema=row_schema or ROW_SCHEMA,
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            max_bad_records=0,
            ignore_unknown_values=False,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
        )
        with self._errors("load part files", uris=uris):
            try:
                job = self._start_load(uris, table, config, job_id)
            except gexc.Conflict:
                job = self.client.get_job(
                    job_id, location=self.location, retry=self.retry, timeout=self.request_timeout
                )
                if not self._reusable(job, table):  # failed before, or its table was dropped after a failed merge
                    job = self._start_load(uris, table, config, f"{job_id}_{uuid.uuid4().hex[:8]}")
            job.result(timeout=self.job_timeout, retry=self.retry)

    def _start_load(self, uris: list[str], table: str, config: bigquery.LoadJobConfig, job_id: str) -> Any:
        if uris[0].startswith("file://"):  # `backfill run --warehouse bigquery` without a bucket: upload them
            paths = [Path(unquote(urlparse(u).path)) for u in uris]
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise PermanentError(f"part file is missing: {missing[0]}", uri=uris[paths.index(Path(missing[0]))])
            with tempfile.TemporaryFile() as stream:  # one upload per batch: the files concatenated on disk
                for path in paths:
                    with path.open("rb") as part:
                        shutil.copyfileobj(part, stream)
                stream.seek(0)
                return self.client.load_table_from_file(
                    stream,
                    table.strip("`"),
                    job_config=config,
                    job_id=job_id,
                    location=self.location,
                    timeout=self.request_timeout,
                )
        return self.client.load_table_from_uri(
            uris,
            table.strip("`"),
            job_config=config,
            job_id=job_id,
            location=self.location,
            retry=self.retry,
            timeout=self.request_timeout,
        )

    def _reusable(self, job: Any, table: str) -> bool:
        if job.state == "DONE" and job.error_result:
            return False
        try:
            self.client.get_table(table.strip("`"), retry=self.retry, timeout=self.request_timeout)
        except gexc.NotFound:
            return False
        return True

    def _drop(self, table: str) -> None:
        try:
            self.client.delete_table(
                table.strip("`"), not_found_ok=True, retry=self.retry, timeout=self.request_timeout
            )
        except Exception as exc:  # the staging dataset's default expiration removes it later
            log.warning("could not drop staging table %s: %s", table, exc)

    def _submit(self, query: str, params: list[Any]) -> Any:
        return self.client.query(
            query,
            job_config=bigquery.QueryJobConfig(query_parameters=params),
            location=self.location,
            retry=self.retry,
            timeout=self.request_timeout,
            job_retry=None,
        )

    def _run(self, query: str, params: list[Any], *, doing: str, timeout: float | None = None) -> Any:
        with self._errors(doing):
            job = self._submit(query, params)
            job.result(timeout=timeout or self.job_timeout, retry=self.retry, job_retry=None)
            return job

    def _stream(self, query: str, params: list[Any], *, doing: str) -> Iterator[Any]:
        """Rows page by page (`page_size` rows in memory at a time), never the whole result."""
        with self._errors(doing):
            job = self._submit(query, params)
            rows = job.result(page_size=self.page_size, timeout=self.job_timeout, retry=self.retry, job_retry=None)
            yield from rows

    def _errors(self, doing: str, uris: list[str] | None = None) -> ErrorMap:
        return ErrorMap(doing, uris or [])
