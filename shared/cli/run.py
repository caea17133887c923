"""`backfill run`: back-fill the wallets of a file into the warehouse, and what its exit status means.

0    every wallet complete
3    finished, some wallets dead-lettered (each listed with its reason; fix, then `dead-letters replay`)
2    bad usage, configuration or warehouse (nothing was fetched)
1    halted on a systemic fault (the cause is printed; run the same command again to resume)
130  interrupted (everything committed is kept; run the same command again to resume)
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
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
    WalletsOption,
    WarehouseOption,
    WorkersOption,
    console,
    load_settings,
    open_deps,
    setup_logging,
    target,
)
from shared.core.errors import ConfigurationError, PipelineError
from shared.embedded.progress import ProgressView
from shared.embedded.runner import EmbeddedRunner, RunConfig
from shared.embedded.wallets_file import import_wallets
from shared.ports.warehouse import Warehouse
from shared.settings import Settings

EXIT_OK, EXIT_HALTED, EXIT_USAGE, EXIT_DEAD_LETTERS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EMBEDDED_PART_PAGES = 10


def new_run_id() -> str:
    return "run-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def run_config(
    settings: Settings,
    run_id: str,
    workers: int,
    *,
    dispatch: bool = True,
    lookups: bool = True,
    sync: bool = False,
    lookback_seconds: int | None = None,
) -> RunConfig:
    """Pages per part: FETCH_MAX_PAGES if set, else 10 here (DuckDB's peak memory while merging a part
    grows with its size; 10 pages also make a resume after a kill lose at most 10 pages of work)."""
    pages = settings.fetch_max_pages if "fetch_max_pages" in settings.model_fields_set else EMBEDDED_PART_PAGES
    return RunConfig(
        run_id=run_id,
        budget=bootstrap.fetch_budget(settings, pages),
        lease_seconds=settings.lease_seconds,
        workers=workers,
        dispatch=dispatch,
        lookups=bootstrap.lookup_policy(settings) if lookups else None,
        sync=sync,
        lookback_seconds=settings.sync_lookback_seconds if lookback_seconds is None else lookback_seconds,
    )


def execute(runner: EmbeddedRunner, quiet: bool = False) -> int:
    """Run with the live display; the exit status by what happened (the module docstring). The first
    Ctrl-C stops the run cleanly (the commit in progress finishes); a second one leaves at once."""
    view = ProgressView(runner, console, quiet=quiet)
    started = time.monotonic()

    def on_interrupt(signum: int, frame: object) -> None:
        if runner.stopping:
            raise KeyboardInterrupt
        runner.stop(interrupted=True)
        console.print("[yellow]stopping: the commit in progress finishes first (Ctrl-C again to leave now)[/yellow]")

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if main_thread else None
    code: int | None = None
    try:
        with view:
            runner.run(on_tick=view.tick)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except ConfigurationError as exc:
        console.print(f"[red]stopped: {exc}[/red]")
        code = EXIT_USAGE
    except PipelineError as exc:
        console.print(f"[red]halted: {exc}[/red]\nnothing is lost: fix the cause and run the same command again")
        code = EXIT_HALTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        runner.source.close()
    if runner.progress.interrupted:
        code = EXIT_INTERRUPTED
    finished = summarize(runner, time.monotonic() - started, line_only=code is not None)
    if code == EXIT_INTERRUPTED:
        console.print(
            "[yellow]interrupted: everything committed is kept; run the same command again to resume[/yellow]"
        )
    return finished if code is None else code


def summarize(runner: EmbeddedRunner, elapsed: float, line_only: bool = False) -> int:
    """The closing summary line, and the status a finished run earns: 0, 3 with dead letters, or 1 when
    wallets are left neither complete nor dead-lettered (never claimed as done)."""
    stats = runner.source.stats
    totals = f"{stats.requests:,} requests ({stats.rate_limited} answered 429) in {elapsed:,.1f} s"
    try:
        status = runner.warehouse.status(datetime.now(UTC))
        letters = runner.dead_letters.pending(1000)
    except PipelineError as exc:  # the warehouse is what failed: say so rather than hide the summary
        console.print(f"summary: unavailable ({exc}); {totals}")
        return EXIT_HALTED
    complete = status.by_status.get("complete", 0)
    pending = status.wallets_total - complete - status.parked
    console.print(
        f"summary: {complete:,} complete, {status.dead_letters:,} dead-lettered, {pending:,} pending; {totals}"
    )
    if line_only:
        return EXIT_HALTED
    for letter in letters[:50]:
        console.print(f"  [yellow]dead letter[/yellow] {letter.wallet or '-'}: {letter.error_class}: {letter.error}")
    if pending:
        console.print(f"[red]{pending:,} wallets are neither complete nor dead-lettered: the run is not done[/red]")
        return EXIT_HALTED
    if letters:
        console.print("fix the cause, then: backfill dead-letters replay (same warehouse options)")
        return EXIT_DEAD_LETTERS
    return EXIT_OK


def print_status(warehouse: Warehouse) -> None:
    status = warehouse.status(datetime.now(UTC))
    table = Table(title="backfill status", show_header=False)
    table.add_row("wallets", str(status.wallets_total))
    for name, count in status.by_status.items():
        table.add_row(f"  {name}", str(count))
    table.add_row("trades", f"{status.trades:,}")
    table.add_row("in flight", str(status.in_flight))
    table.add_row("dead letters", str(status.dead_letters))
    table.add_row("newest load", str(status.newest_load or "-"))
    oldest_sync = status.oldest_sync
    table.add_row("oldest sync", f"{oldest_sync} ({_ago(oldest_sync)})" if oldest_sync else "-")
    table.add_row(
        "markets", f"{status.markets:,} of {status.condition_ids:,} traded ({status.unresolved_markets:,} unresolved)"
    )
    table.add_row("  not found", f"{status.markets_not_found:,} (asked again after a day)")
    oldest = status.oldest_unresolved_fetch
    table.add_row("  oldest unresolved fetch", f"{oldest} ({_ago(oldest)})" if oldest else "-")
    table.add_row("events", f"{status.events:,} ({status.events_not_found:,} not found)")
    Console().print(table)


def _ago(at: datetime) -> str:
    seconds = int((datetime.now(UTC) - at).total_seconds())
    return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"


def run(
    wallets: WalletsOption,
    db: DbOption = None,
    warehouse: WarehouseOption = "duckdb",
    project: ProjectOption = None,
    dataset: DatasetOption = None,
    bucket: BucketOption = None,
    workers: WorkersOption = 8,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id for wallets not started yet.")] = None,
    source: SourceOption = None,
    markets: Annotated[
        bool, typer.Option("--markets/--no-markets", help="Also look up the markets and events the trades name.")
    ] = True,
    switch_source: Annotated[
        bool, typer.Option("--switch-source", help="Re-fetch wallets loaded from the other source (drops their rows).")
    ] = False,
) -> None:
    """Back-fill every trade of the wallets in FILE into the warehouse; resumable after any stop.

    Exit status: 0 every wallet complete; 3 some dead-lettered (listed); 2 bad usage, configuration or
    warehouse; 1 halted on a systemic fault (run again to resume); 130 interrupted."""
    _run(wallets, db, warehouse, project, dataset, bucket, workers, run_id, source, markets, switch_source)


def sync(
    wallets: WalletsOption,
    db: DbOption = None,
    warehouse: WarehouseOption = "duckdb",
    project: ProjectOption = None,
    dataset: DatasetOption = None,
    bucket: BucketOption = None,
    workers: WorkersOption = 8,
    lookback: Annotated[
        str | None,
        typer.Option("--lookback", help="How far behind the newest stored trade to ask again: 1d, 12h, 3600s."),
    ] = None,
    source: SourceOption = None,
    markets: Annotated[
        bool, typer.Option("--markets/--no-markets", help="Also look up and refresh markets and events.")
    ] = True,
) -> None:
    """Bring the warehouse up to date: new wallets get their backfill, unfinished ones resume, and every
    complete wallet is asked for its trades since its newest stored trade minus the lookback (default
    1 day: trades the API indexes late); markets and events not yet resolved are refreshed.

    Exit status as for `run`: 0 every wallet complete and synced; 3 some dead-lettered; 2 bad usage;
    1 halted (run again to resume); 130 interrupted."""
    seconds = parse_duration(lookback) if lookback is not None else None
    where = (wallets, db, warehouse, project, dataset, bucket)
    _run(*where, workers, None, source, markets, False, sync=True, lookback=seconds)


def parse_duration(text: str) -> int:
    """'1d', '12h', '30m', '3600s' or '3600' in seconds; a usage error (exit 2) otherwise."""
    units = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
    value = text.strip().lower()
    unit = units.get(value[-1:]) if value else None
    number = value[:-1] if unit else value
    if not number.isdigit():
        console.print(f"[red]--lookback {text!r}: give a whole number with d, h, m or s (1d, 12h, 3600s)[/red]")
        raise typer.Exit(EXIT_USAGE)
    return int(number) * (unit or 1)


def _run(
    wallets: Path,
    db: Path | None,
    warehouse: str,
    project: str | None,
    dataset: str | None,
    bucket: str | None,
    workers: int,
    run_id: str | None,
    source: str | None,
    markets: bool,
    switch_source: bool,
    *,
    sync: bool = False,
    lookback: int | None = None,
) -> None:
    settings = load_settings(source)
    where = target(settings, warehouse, db, project, dataset, bucket)
    setup_logging(where.log_path)
    deps = open_deps(settings, where, Mode.CREATE)
    try:
        code = _run_on(deps, settings, where, wallets, workers, run_id, markets, switch_source, sync, lookback)
    finally:
        deps.warehouse.close()  # the warehouse process folds its WAL in and lets go of the file
    raise typer.Exit(code)


def _run_on(
    deps: bootstrap.EmbeddedDeps,
    settings: Settings,
    where: Target,
    wallets: Path,
    workers: int,
    run_id: str | None,
    markets: bool,
    switch_source: bool,
    sync: bool,
    lookback: int | None,
) -> int:
    imported = import_wallets(wallets, deps.warehouse, deps.dead_letters)
    conflicts = deps.warehouse.source_conflicts(settings.trade_source)
    if conflicts and not switch_source:
        others = sorted({s for _, s in conflicts})
        deps.source.close()
        console.print(
            f"[red]refusing to switch sources:[/red] {len(conflicts)} wallet(s) in {where} were loaded from "
            f"{', '.join(others)}, and this run pages {settings.trade_source}. Rows from two sources have different "
            f"keys and cannot be merged. Run with --source {others[0]} to continue, or add --switch-source to "
            f"re-fetch those wallets from {settings.trade_source} (their {', '.join(others)} rows are dropped). "
            f"First: {conflicts[0][0]}"
        )
        raise typer.Exit(EXIT_USAGE)
    if conflicts:
        dropped = deps.warehouse.forget_wallets([w for w, _ in conflicts])
        console.print(f"switching {len(conflicts)} wallet(s) to {settings.trade_source}: dropped {dropped:,} rows")
    console.print(
        f"wallets file: {imported.valid} valid ({imported.added} new), "
        f"{len(imported.invalid)} invalid (dead-lettered), {imported.blank_or_comment} blank/comment"
    )
    for letter in imported.invalid:
        console.print(f"  [yellow]invalid[/yellow] {letter.error}")
    config = run_config(
        settings, run_id or new_run_id(), workers, lookups=markets, sync=sync, lookback_seconds=lookback
    )
    runner = EmbeddedRunner(config, deps)
    code = execute(runner)
    print_status(deps.warehouse)
    return code
