"""`backfill status` and `backfill dead-letters list|replay`: operating a warehouse. `status` and
`list` only read (a mistyped --db is exit 2, and nothing is created)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared.cli.options import (
    BucketOption,
    DatasetOption,
    DbOption,
    Mode,
    ProjectOption,
    WarehouseOption,
    WorkersOption,
    console,
    load_settings,
    open_deps,
    setup_logging,
    target,
)
from shared.cli.run import execute, new_run_id, print_status, run_config
from shared.embedded.runner import EmbeddedRunner
from shared.handlers.replay import replay_dead_letters


def status(
    db: DbOption = None,
    warehouse: WarehouseOption = "duckdb",
    project: ProjectOption = None,
    dataset: DatasetOption = None,
) -> None:
    """Wallets by status, trades loaded, dead letters."""
    settings = load_settings()
    deps = open_deps(settings, target(settings, warehouse, db, project, dataset, None), Mode.READ)
    print_status(deps.warehouse)


def letters_list(
    db: DbOption = None,
    warehouse: WarehouseOption = "duckdb",
    project: ProjectOption = None,
    dataset: DatasetOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every dead letter with its reason (replayed ones marked)."""
    settings = load_settings()
    deps = open_deps(settings, target(settings, warehouse, db, project, dataset, None), Mode.READ)
    stored = deps.dead_letters.all()
    if as_json:
        for item in stored:
            replayed = str(item.replayed_at) if item.replayed_at else None
            print(json.dumps({**item.letter.model_dump(), "replayed_at": replayed}))
        return
    table = Table(title=f"{sum(1 for s in stored if s.replayed_at is None)} pending dead letters")
    for col in ("wallet", "error_class", "error", "attempts", "replayed"):
        table.add_column(col)
    for item in stored:
        x = item.letter
        table.add_row(x.wallet or "-", x.error_class, x.error[:100], str(x.attempts), str(item.replayed_at or ""))
    Console().print(table)


def letters_replay(
    db: DbOption = None,
    warehouse: WarehouseOption = "duckdb",
    project: ProjectOption = None,
    dataset: DatasetOption = None,
    bucket: BucketOption = None,
    error_class: Annotated[str | None, typer.Option("--error-class")] = None,
    wallet: Annotated[str | None, typer.Option("--wallet")] = None,
    max_letters: Annotated[int, typer.Option("--max", min=1)] = 1000,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    workers: WorkersOption = 8,
) -> None:
    """Put dead letters back on their queue and run until they are done (or dead again)."""
    settings = load_settings()
    where = target(settings, warehouse, db, project, dataset, bucket)
    deps = open_deps(settings, where, Mode.READ if dry_run else Mode.WRITE)  # a mistyped --db: nothing created
    if not dry_run:
        setup_logging(where.log_path)
    try:
        result = replay_dead_letters(
            dead_letters=deps.dead_letters,
            publisher=deps.bus,
            warehouse=deps.warehouse,
            clock=deps.clock,
            lease_seconds=settings.lease_seconds,
            error_class=error_class,
            wallet=wallet,
            max_letters=max_letters,
            dry_run=dry_run,
        )
        console.print(f"{'would replay' if dry_run else 'replaying'} {len(result.replayed)} dead letters")
        if dry_run or not result.replayed:
            raise typer.Exit(0)
        runner = EmbeddedRunner(run_config(settings, new_run_id(), workers, dispatch=False), deps)
        code = execute(runner)
        print_status(deps.warehouse)
        raise typer.Exit(code)
    finally:
        deps.warehouse.close()
