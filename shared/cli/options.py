"""What the `backfill` commands share: the warehouse options, settings, logging, and opening the
embedded object graph (shared/bootstrap.py) in the mode a command needs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from shared import bootstrap
from shared.bootstrap import BigQueryTarget, EmbeddedDeps
from shared.core.errors import ConfigurationError, PipelineError
from shared.logs import RedactingFormatter
from shared.settings import Settings

console = Console(stderr=True, soft_wrap=True)  # a message is one line, whatever the width
SOURCES = ("dome", "polymarket")

DbOption = Annotated[Path | None, typer.Option("--db", help="The DuckDB file (the embedded warehouse).")]
WarehouseOption = Annotated[
    str, typer.Option("--warehouse", help="duckdb (with --db) or bigquery (with --project and --dataset).")
]
ProjectOption = Annotated[str | None, typer.Option("--project", help="BigQuery: the project of the dataset.")]
DatasetOption = Annotated[str | None, typer.Option("--dataset", help="BigQuery: the dataset of the tables.")]
BucketOption = Annotated[
    str | None, typer.Option("--bucket", help="BigQuery: part files in gs://BUCKET (default: a local folder).")
]
WalletsOption = Annotated[Path, typer.Option("--wallets", exists=True, dir_okay=False, help="One address per line.")]
WorkersOption = Annotated[int, typer.Option("--workers", min=1, max=256, help="Concurrent fetches.")]
SourceOption = Annotated[
    str | None,
    typer.Option("--source", help="dome or polymarket (default: the TRADE_SOURCE setting, else dome)."),
]


class Mode(StrEnum):
    CREATE = "create"  # create the schema if needed (backfill run)
    WRITE = "write"  # the warehouse must exist (dead-letters replay)
    READ = "read"  # read only; nothing is created (status, dead-letters list)


@dataclass(frozen=True)
class Target:
    db: Path | None
    bigquery: BigQueryTarget | None

    @property
    def parts(self) -> Path | None:
        """Where part files go when they are not in a bucket: beside the DuckDB file, or for BigQuery
        without --bucket a local folder the load jobs upload from."""
        if self.bigquery is not None and not self.bigquery.bucket:
            return Path(f"backfill-parts-{self.bigquery.dataset}")
        return None

    @property
    def log_path(self) -> Path:
        if self.db is not None:
            return self.db.with_suffix(".log")
        assert self.bigquery is not None
        return Path(f"backfill-{self.bigquery.dataset}.log")

    def __str__(self) -> str:
        if self.bigquery is not None:
            return f"bigquery {self.bigquery.project}.{self.bigquery.dataset}"
        return str(self.db)


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def load_settings(source: str | None = None) -> Settings:
    if source is not None and source not in SOURCES:
        raise fail(f"--source must be one of {', '.join(SOURCES)}, not {source!r}")
    try:
        return Settings(trade_source=source) if source else Settings()
    except ValidationError as exc:
        raise fail(f"invalid settings: {exc}") from None


def target(
    settings: Settings,
    warehouse: str,
    db: Path | None,
    project: str | None,
    dataset: str | None,
    bucket: str | None,
) -> Target:
    if warehouse == "duckdb":
        if db is None:
            raise fail("--db PATH is required (or --warehouse bigquery --project P --dataset D)")
        if project or dataset or bucket:
            raise fail("--project, --dataset and --bucket go with --warehouse bigquery")
        return Target(db, None)
    if warehouse != "bigquery":
        raise fail(f"--warehouse must be duckdb or bigquery, not {warehouse!r}")
    if db is not None:
        raise fail("--db is the DuckDB file; with --warehouse bigquery give --project and --dataset")
    if not project or not dataset:
        raise fail("--warehouse bigquery needs --project and --dataset")
    bucket_name = bucket.removeprefix("gs://").strip("/") if bucket else None
    return Target(
        None,
        BigQueryTarget(
            project,
            dataset,
            f"{dataset}_staging",
            bucket_name,
            settings.bq_location,
            settings.bigquery_api_endpoint,
        ),
    )


def setup_logging(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def open_deps(settings: Settings, where: Target, mode: Mode) -> EmbeddedDeps:
    """The embedded graph on the target, its schema created (CREATE) or checked (WRITE, READ); a missing
    or foreign warehouse is exit 2 with the reason, before any request is made."""
    try:
        deps = bootstrap.embedded(
            settings,
            db=where.db,
            bigquery=where.bigquery,
            parts=where.parts,
            read_only=mode is Mode.READ,
            must_exist=mode is not Mode.CREATE,
            process=settings.warehouse_process and mode is not Mode.READ,  # WarehouseProcess
        )
    except PipelineError as exc:
        raise fail(str(exc), 2 if isinstance(exc, ConfigurationError) else 1) from None
    try:
        if mode is Mode.CREATE:
            deps.warehouse.create_schema()
        else:
            deps.warehouse.check_schema()
    except PipelineError as exc:
        deps.warehouse.close()
        raise fail(str(exc), 2 if isinstance(exc, ConfigurationError) else 1) from None
    return deps
