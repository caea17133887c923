"""The Warehouse port on BigQuery: the same tables and guarantees as the DuckDB twin.

`commit_batch` (DESIGN, load path): the batch's part files go into an unpartitioned staging table by
a load job with a deterministic id (free; a retried batch attaches to its earlier job); the batch's
part records and checkpoints go into a one-row staging table by one parameterised CTAS; then ONE
script — BEGIN TRANSACTION; MERGE trades; MERGE checkpoint_parts; MERGE checkpoints; COMMIT — reads
only staging tables, so it needs no values in its text; then both staging tables are dropped.

Why the CTAS rather than parameters in the script: real BigQuery binds query parameters in scripts,
but bqemulator does not (its script interpreter drops them), and the one form that runs on both is a
script without parameters. Identifiers are the only thing formatted into SQL, and they are validated.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Literal

from google.api_core import exceptions as gexc
from google.cloud import bigquery
from google.cloud.bigquery import ArrayQueryParameter, ScalarQueryParameter, StructQueryParameter

from shared.errors import PermanentError, PipelineError, TransientError, WarehouseUnavailable
from shared.gcp import sql
from shared.gcp.clients import reasons, translate
from shared.gcp.schema import ROW_SCHEMA, TABLES, TRADES_CLUSTERING, TRADES_PARTITION_FIELD
from shared.messages import FileReady
from shared.warehouse import Candidate, CheckpointUpdate, Segment, Status

log = logging.getLogger(__name__)

STAGING_EXPIRATION_MS = 24 * 3600 * 1000  # a safety net: staging tables are dropped after each batch
PARAM_CHUNK = 5000  # wallets per parameterised statement (BigQuery caps a query request at 12 MB)
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_-]{0,127}$")  # validated: identifiers are formatted into SQL
_NAME = re.compile(r"^[A-Za-z0-9_]{1,1024}$")


def load_job_id(uris: Iterable[str]) -> str:
    """The load job of a set of part files: the same files, in any order, give the same id."""
    return "load_" + hashlib.sha256("\n".join(sorted(uris)).encode()).hexdigest()[:32]


class BigQueryWarehouse:
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
        self.names = sql.Names(project, dataset, staging_dataset, traders_table)

    # -- schema ---------------------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        with self._errors("create the datasets and tables"):
            for name, expiration in ((self.dataset, None), (self.staging_dataset, STAGING_EXPIRATION_MS)):
                ds = bigquery.Dataset(f"{self.project}.{name}")
                if self.location:  # an explicit null location is a 500 on bqemulator
                    ds.location = self.location
                if expiration:
                    ds.default_table_expiration_ms = expiration
                self.client.create_dataset(ds, exists_ok=True, retry=self.retry, timeout=self.request_timeout)
            for name, schema in TABLES.items():
                ref = f"{self.project}.{self.dataset}.{name}"
                if name == "traders" and ref != self.traders_table:
                    continue  # the wallets come from an existing table: not ours to create
                table = bigquery.Table(ref, schema=schema)
                if name == "trades":
                    # Through the API, not DDL: bqemulator drops partitioning given any other way.
                    table.time_partitioning = bigquery.TimePartitioning(
                        type_=bigquery.TimePartitioningType.MONTH, field=TRADES_PARTITION_FIELD
                    )
                    table.clustering_fields = TRADES_CLUSTERING
                self.client.create_table(table, exists_ok=True, retry=self.retry, timeout=self.request_timeout)

    def close(self) -> None:
        self.client.close()

    # -- the dispatcher's side ---------------------------------------------------------------------------

    def add_traders(self, wallets: Iterable[str]) -> int:
        unique = list(dict.fromkeys(wallets))
        added = 0
        for i in range(0, len(unique), PARAM_CHUNK):
            job = self._run(
                sql.add_traders(self.names),
                [ArrayQueryParameter("wallets", "STRING", unique[i : i + PARAM_CHUNK])],
                doing="add traders",
            )
            added += int(job.num_dml_affected_rows or 0)
        return added

    def candidates(
        self, now: datetime, lease_seconds: int, mode: str, limit: int, source: str | None = None
    ) -> Iterator[Candidate]:
        params = [
            ScalarQueryParameter("now", "TIMESTAMP", now),
            ScalarQueryParameter("limit", "INT64", limit),
            ScalarQueryParameter("source", "STRING", source),
        ]
        for row in self._stream(
            sql.candidates(self.names, incremental=mode == "incremental"), params, doing="list candidates"
        ):
            yield Candidate(
                row["wallet_address"], row["run_id"], row["status"], row["newest_trade_epoch"], row["source"]
            )

    def source_conflicts(self, source: str, limit: int = 1000) -> list[tuple[str, str]]:
        """(wallet, its checkpoint's source) for up to `limit` traders already loaded from another source."""
        params = [ScalarQueryParameter("source", "STRING", source), ScalarQueryParameter("limit", "INT64", limit)]
        rows = self._stream(sql.source_conflicts(self.names), params, doing="list source conflicts")
        return [(row["wallet_address"], row["source"]) for row in rows]

    def in_flight(self, now: datetime, lease_seconds: int) -> int:
        params = [ScalarQueryParameter("now", "TIMESTAMP", now)]
        return int(self._first(sql.in_flight(self.names), params, doing="count wallets in flight")["n"])

    def lease(self, leases: list[tuple[str, str]], now: datetime, until: datetime, reason: str) -> None:
        for i in range(0, len(leases), PARAM_CHUNK):
            chunk = leases[i : i + PARAM_CHUNK]
            rows = [
                StructQueryParameter(
                    None,
                    ScalarQueryParameter("wallet_address", "STRING", w),
                    ScalarQueryParameter("run_id", "STRING", r),
                    ScalarQueryParameter("idx", "INT64", i + n),
                )
                for n, (w, r) in enumerate(chunk)
            ]
            self._run(
                sql.lease(self.names),
                [
                    ArrayQueryParameter("leases", "STRUCT", rows),
                    ScalarQueryParameter("reason", "STRING", reason),
                    ScalarQueryParameter("now", "TIMESTAMP", now),
                    ScalarQueryParameter("until", "TIMESTAMP", until),
                ],
                doing="lease wallets",
            )

    def release_leases(self, reason: str = "in_flight") -> int:
        job = self._run(
            sql.release_leases(self.names), [ScalarQueryParameter("reason", "STRING", reason)], doing="release leases"
        )
        return int(job.num_dml_affected_rows or 0)

    def status(self, now: datetime, lease_seconds: int) -> Status:
        # dead_letters stays 0 here: in the cloud they are messages on the dead-letter subscriptions, and the
        # dispatcher's /status reports PubSubDeadLetters.depth() for them instead of this field.
        out = Status()
        for row in self._stream(sql.status_counts(self.names), [], doing="read status"):
            out.by_status[row["status"]] = int(row["n"])
        out.wallets_total = sum(out.by_status.values())
        row = self._first(sql.status_totals(self.names), [], doing="read status")
        out.trades, out.newest_load = int(row["trades"]), row["newest_load"]
        out.in_flight = self.in_flight(now, lease_seconds)
        return out

    # -- the loader's side --------------------------------------------------------------------------------

    def segments(self, keys: Iterable[tuple[str, str]]) -> list[Segment]:
        keys = set(keys)
        if not keys:
            return []
        wallets = sorted({w for w, _ in keys})
        out = []
        for i in range(0, len(wallets), PARAM_CHUNK):
            params = [ArrayQueryParameter("wallets", "STRING", wallets[i : i + PARAM_CHUNK])]
            for row in self._stream(sql.segments(self.names), params, doing="read loaded parts"):
                if (row["wallet_address"], row["run_id"]) in keys:
                    out.append(Segment(*row.values()))
        return out

    def commit_batch(
        self, files: list[FileReady], segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> None:
        uris = sorted({f.uri for f in files if f.rows > 0})
        for uri in uris:
            if not uri.startswith("gs://"):
                raise PermanentError(f"BigQuery loads part files from gs://, not {uri}", uri=uri)
        rows_table = self._rows_table(uris) if uris else None
        meta_table = self.names.staging(f"batch_{uuid.uuid4().hex[:16]}")
        try:
            if rows_table:
                self._load_rows(uris)
            self._run(
                sql.create_meta(meta_table, bool(segments), bool(checkpoints)),
                sql.meta_params(now, segments, checkpoints),
                doing="stage the batch's checkpoints",
            )
            rounds = sql.rounds(checkpoints)
            script = sql.commit_script(self.names, rows_table, meta_table, bool(segments), rounds)
            self._run(script, [], doing="merge the batch", timeout=self.job_timeout)
        finally:
            for table in (rows_table, meta_table):
                if table:  # also after a failed load: bqemulator creates the destination before reading
                    self._drop(table)

    # -- internals -----------------------------------------------------------------------------------------

    def _rows_table(self, uris: list[str]) -> str:
        return self.names.staging(f"rows_{load_job_id(uris).removeprefix('load_')}")

    def _load_rows(self, uris: list[str]) -> None:
        """Load the part files into their staging table. The same files always mean the same job id, so a
        retried batch attaches to its earlier load (409 Already Exists) instead of loading twice."""
        job_id, table = load_job_id(uris), self._rows_table(uris)
        config = bigquery.LoadJobConfig(
            schema=ROW_SCHEMA,
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

    def _first(self, query: str, params: list[Any], *, doing: str) -> Any:
        return next(iter(self._stream(query, params, doing=doing)))

    def _errors(self, doing: str, uris: list[str] | None = None) -> _ErrorMap:
        return _ErrorMap(doing, uris or [])


class _ErrorMap:
    """Map client failures to the taxonomy: a part file BigQuery cannot read is permanent (for that
    file), 5xx/timeouts transient, auth and anything else about the warehouse systemic."""

    def __init__(self, doing: str, uris: list[str]) -> None:
        self.doing = doing
        self.uris = uris

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, PipelineError) or not isinstance(exc, Exception):
            return False
        mapped = translate(exc, self.doing, WarehouseUnavailable) or self._about_input(exc)
        raise mapped from exc

    def _about_input(self, exc: Exception) -> PipelineError:
        what = f"{self.doing}: {type(exc).__name__}: {exc}"
        if not isinstance(exc, gexc.GoogleAPICallError):
            return TransientError(what)
        text = " ".join([str(exc), *(str(e) for e in (getattr(exc, "errors", None) or []))])
        if "concurrent update" in text or reasons(exc) & {"jobRateLimitExceeded", "rateLimitExceeded"}:
            return TransientError(what)  # a transaction cancelled by a concurrent one: retry
        named = [u for u in self.uris if u in text]
        if self.uris and (named or (reasons(exc) & {"invalid", "notFound"} and "reading data" in text)):
            return PermanentError(f"part file cannot be loaded: {exc}", uri=", ".join(named or self.uris))
        return WarehouseUnavailable(what)
