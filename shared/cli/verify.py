"""`backfill verify [--requeue] [--json]`: prove every complete checkpoint against the warehouse and,
where the API counts cheaply (Dome), against the API (shared/handlers/verify.py, the verdicts).

With --requeue the wallets a re-fetch repairs are fetched again in a new run (the pipeline runs here,
as `dead-letters replay` does), then verified again. Exit status:

0    every complete wallet verified (after --requeue: every mismatch repaired)
4    mismatches found (each listed with its verdict); after --requeue: some remain
3    --requeue: the re-fetch finished with some wallets dead-lettered (listed; as `backfill run`)
2    bad usage, configuration or warehouse
1    halted on a fault that is not one wallet's (the warehouse, an API that is down or refuses the key):
     nothing is concluded; fix the cause and verify again
130  interrupted
"""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared import bootstrap
from shared.cli.options import (
    BucketOption,
    DatasetOption,
    DbOption,
    Mode,
    ProjectOption,
    SourceOption,
    Target,
    WarehouseOption,
    console,
    load_settings,
    open_deps,
    setup_logging,
    target,
)
from shared.cli.run import EXIT_DEAD_LETTERS, EXIT_HALTED, EXIT_OK, EXIT_USAGE, execute, run_config
from shared.core.errors import ConfigurationError, PipelineError
from shared.embedded.runner import EmbeddedRunner
from shared.handlers.verify import Requeue, VerifyReport, requeue_run_id, verify
from shared.ports.source import TradeCounter
from shared.settings import Settings

EXIT_MISMATCHES = 4
SHOWN = 200  # rows of the table (--json lists up to MAX_LISTED)


def verify_command(
    db: DbOption = None,
    warehouse: WarehouseOption = "duckdb",
    project: ProjectOption = None,
    dataset: DatasetOption = None,
    bucket: BucketOption = None,
    source: SourceOption = None,
    requeue: Annotated[
        bool, typer.Option("--requeue", help="Re-fetch the mismatched wallets in a new run, then verify them again.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout instead of the table.")] = False,
    api: Annotated[
        bool, typer.Option("--api/--no-api", help="Also compare with the API's own count (Dome; n/a for the Data API).")
    ] = True,
    workers: Annotated[int, typer.Option("--workers", min=1, max=256, help="Concurrent fetches (--requeue).")] = 8,
) -> None:
    """Prove every complete wallet: checkpoint trades_loaded = rows in trades = the API's count.

    Exit status: 0 all verified; 4 mismatches found (after --requeue: some remain); 3 the re-fetch
    dead-lettered some wallets; 2 bad usage, configuration or warehouse; 1 halted; 130 interrupted."""
    settings = load_settings(source)
    where = target(settings, warehouse, db, project, dataset, bucket)
    deps = open_deps(settings, where, Mode.WRITE if requeue else Mode.READ)
    counter = bootstrap.trade_counter(settings) if api else None
    try:
        raise typer.Exit(_verify(settings, where, deps, counter, requeue, as_json, workers, api))
    finally:
        deps.warehouse.close()
        if counter is not None:
            counter.close()


def _verify(
    settings: Settings,
    where: Target,
    deps: bootstrap.EmbeddedDeps,
    counter: TradeCounter | None,
    requeue: bool,
    as_json: bool,
    workers: int,
    api: bool,
) -> int:
    plan = None
    if requeue:
        setup_logging(where.log_path)
        # One process owns all in-flight work (as `backfill run`): leases a killed run left are void.
        deps.warehouse.release_leases("in_flight")
        plan = Requeue(deps.bus, requeue_run_id(deps.clock.now()), settings.lease_seconds)
    unasked = None if api else "n/a: not asked (--no-api)"
    check = partial(
        verify,
        warehouse=deps.warehouse,
        counter=counter,
        source=settings.trade_source,
        clock=deps.clock,
        unasked=unasked,
    )
    try:
        found = check(requeue=plan)
    except ConfigurationError as exc:
        console.print(f"[red]stopped: {exc}[/red]")
        return EXIT_USAGE
    except PipelineError as exc:
        console.print(f"[red]halted: {exc}[/red]\nnothing is concluded: fix the cause and verify again")
        return EXIT_HALTED
    if plan is None or not found.requeued:
        _show(found, None, as_json)
        return EXIT_OK if found.verified else EXIT_MISMATCHES
    if not as_json:
        _show(found, None, as_json=False)
    console.print(f"re-fetching {len(found.requeued):,} wallets in run {plan.run_id}")
    runner = EmbeddedRunner(run_config(settings, plan.run_id, workers, dispatch=False), deps)
    code = execute(runner)
    if code not in (EXIT_OK, EXIT_DEAD_LETTERS):
        return code
    try:
        after = check(wallets=found.requeued)
    except PipelineError as exc:
        console.print(f"[red]halted: {exc}[/red]")
        return EXIT_HALTED
    _show(found, after, as_json)
    if code == EXIT_DEAD_LETTERS:
        return code
    return EXIT_OK if after.mismatched == 0 and not found.left_alone else EXIT_MISMATCHES


def _show(found: VerifyReport, after: VerifyReport | None, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**found.as_json(), "after_requeue": after.as_json() if after else None}))
        return
    report = after or found
    if after is None:
        _table(found)
    elif after.mismatches:
        _table(after, "after the re-fetch: ")
    console.print(
        f"{'after the re-fetch: ' if after else ''}verified {report.checked:,} complete wallets: "
        f"{report.checked - report.mismatched:,} ok, {report.mismatched:,} mismatched; API counts: {report.api}"
    )
    for wallet, why in list(found.not_requeued.items())[:50]:
        console.print(f"  [yellow]not requeued[/yellow] {wallet}: {why}")
    if after is None and found.mismatched and found.run_id is None:
        console.print("re-fetch them in a new run: backfill verify --requeue (same warehouse options)")


def _table(report: VerifyReport, prefix: str = "") -> None:
    if not report.mismatches:
        return
    table = Table(title=f"{prefix}{report.mismatched:,} of {report.checked:,} complete wallets do not reconcile")
    for col in ("wallet", "run", "checkpoint trades_loaded", "warehouse rows", "API total", "verdict"):
        table.add_column(col)
    for check in report.mismatches[:SHOWN]:
        s = check.stored
        api = f"{check.api_total:,}" if check.api_total is not None else (check.api_note or "-").split(":")[0]
        table.add_row(s.wallet, s.run_id, f"{s.trades_loaded:,}", f"{s.rows:,}", api, str(check.verdict))
    Console().print(table)
    if report.mismatched > SHOWN:
        console.print(f"  ... and {report.mismatched - SHOWN:,} more (--json lists them)")
