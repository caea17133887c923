"""`backfill`: the embedded pipeline on one machine (local folder + DuckDB).

backfill run --wallets FILE --db PATH [--workers N]
backfill status --db PATH
backfill dead-letters list|replay --db PATH
backfill probe --wallet W [--source polymarket]
backfill demo
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from shared.embedded.progress import ProgressView
from shared.embedded.runner import EmbeddedRunner, RunConfig
from shared.embedded.wallets_file import import_wallets
from shared.errors import PipelineError
from shared.handlers.fetch import FetchBudget
from shared.objectstore import LocalObjectStore
from shared.settings import Settings
from shared.sources import make_source
from shared.warehouse.duckdb import DuckDBWarehouse

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
letters_app = typer.Typer(no_args_is_help=True, help="Inspect and replay dead letters.")
app.add_typer(letters_app, name="dead-letters")
console = Console(stderr=True)

DbOption = Annotated[Path, typer.Option("--db", help="The DuckDB file (created if missing).")]
SourceOption = Annotated[
    str | None,
    typer.Option("--source", help="dome or polymarket (default: the TRADE_SOURCE setting, else dome)."),
]
SOURCES = ("dome", "polymarket")


def _settings(source: str | None = None) -> Settings:
    if source is not None and source not in SOURCES:
        console.print(f"[red]--source must be one of {', '.join(SOURCES)}, not {source!r}[/red]")
        raise typer.Exit(2)
    try:
        return Settings(trade_source=source) if source else Settings()
    except ValidationError as exc:
        console.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from None


def _setup_logging(db: Path) -> None:
    log_path = db.with_suffix(".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def new_run_id() -> str:
    return "run-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def open_warehouse(db: Path) -> DuckDBWarehouse:
    try:
        warehouse = DuckDBWarehouse(db)
    except PipelineError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    warehouse.ensure_schema()
    return warehouse


def execute_run(runner: EmbeddedRunner, quiet: bool = False) -> int:
    """Run with a live progress display; Ctrl-C stops cleanly (and a kill loses nothing either)."""
    view = ProgressView(runner, console, quiet=quiet)
    try:
        with view:
            runner.run(on_tick=view.tick)
    except KeyboardInterrupt:
        runner.stop()
        console.print("[yellow]interrupted: everything committed is kept; run again to resume[/yellow]")
        return 130
    except PipelineError as exc:
        console.print(f"[red]stopped: {exc}[/red]")
        return 2
    finally:
        runner.source.close()
    return 0


EMBEDDED_PART_PAGES = 10


def _part_pages(settings: Settings) -> int:
    """Pages per part file: FETCH_MAX_PAGES if set, else 10 here (DuckDB's peak memory while merging a part
    grows with its size; 10 pages also make a resume after a kill lose at most 10 pages of work)."""
    return settings.fetch_max_pages if "fetch_max_pages" in settings.model_fields_set else EMBEDDED_PART_PAGES


def build_runner(
    settings: Settings,
    db: Path,
    workers: int,
    run_id: str,
    base_url: str | None = None,
    dispatch: bool = True,
    budget: FetchBudget | None = None,
) -> EmbeddedRunner:
    warehouse = open_warehouse(db)
    store = LocalObjectStore(db.parent / f"{db.stem}-parts")
    config = RunConfig(
        run_id=run_id,
        workers=workers,
        dispatch=dispatch,
        max_attempts=settings.max_delivery_attempts,
        budget=budget or FetchBudget(seconds=settings.fetch_budget_seconds, max_pages=_part_pages(settings)),
    )
    return EmbeddedRunner(config, source=make_source(settings, base_url=base_url), warehouse=warehouse, store=store)


@app.command()
def run(
    wallets: Annotated[Path, typer.Option("--wallets", exists=True, dir_okay=False, help="One address per line.")],
    db: DbOption,
    workers: Annotated[int, typer.Option("--workers", min=1, max=256, help="Concurrent fetches.")] = 8,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id for wallets not started yet.")] = None,
    source: SourceOption = None,
    switch_source: Annotated[
        bool, typer.Option("--switch-source", help="Re-fetch wallets loaded from the other source (drops their rows).")
    ] = False,
) -> None:
    """Back-fill every trade of the wallets in FILE into the DuckDB file; resumable after any stop."""
    settings = _settings(source)
    _setup_logging(db)
    runner = build_runner(settings, db, workers, run_id or new_run_id())
    imported = import_wallets(wallets, runner.warehouse, runner.dead_letters)
    conflicts = runner.warehouse.source_conflicts(settings.trade_source)
    if conflicts and not switch_source:
        others = sorted({s for _, s in conflicts})
        console.print(
            f"[red]refusing to switch sources:[/red] {len(conflicts)} wallet(s) in {db} were loaded from "
            f"{', '.join(others)}, and this run pages {settings.trade_source}. Rows from two sources have different "
            f"keys and cannot be merged. Run with --source {others[0]} to continue, or add --switch-source to "
            f"re-fetch those wallets from {settings.trade_source} (their {', '.join(others)} rows are dropped). "
            f"First: {conflicts[0][0]}"
        )
        runner.source.close()
        raise typer.Exit(2)
    if conflicts:
        dropped = runner.warehouse.forget_wallets([w for w, _ in conflicts])
        console.print(f"switching {len(conflicts)} wallet(s) to {settings.trade_source}: dropped {dropped:,} rows")
    console.print(
        f"wallets file: {imported.valid} valid ({imported.added} new), "
        f"{len(imported.invalid)} invalid (dead-lettered), {imported.blank_or_comment} blank/comment"
    )
    for letter in imported.invalid:
        console.print(f"  [yellow]invalid[/yellow] {letter.error}")
    code = execute_run(runner)
    print_status(runner.warehouse)
    raise typer.Exit(code)


def print_status(warehouse: DuckDBWarehouse) -> None:
    status = warehouse.status(datetime.now(UTC), 0)
    table = Table(title="backfill status", show_header=False)
    table.add_row("wallets", str(status.wallets_total))
    for name, count in status.by_status.items():
        table.add_row(f"  {name}", str(count))
    table.add_row("trades", f"{status.trades:,}")
    table.add_row("in flight", str(status.in_flight))
    table.add_row("dead letters", str(status.dead_letters))
    table.add_row("newest load", str(status.newest_load or "-"))
    Console().print(table)


@app.command()
def status(db: DbOption) -> None:
    """Wallets by status, trades loaded, dead letters."""
    warehouse = open_warehouse(db)
    print_status(warehouse)


@letters_app.command("list")
def letters_list(db: DbOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every dead letter with its reason (replayed ones marked)."""
    from shared.deadletters import DuckDBDeadLetters

    warehouse = open_warehouse(db)
    letters = DuckDBDeadLetters(warehouse.con, warehouse.lock, lambda: datetime.now(UTC)).all()
    if as_json:
        for letter, replayed in letters:
            print(json.dumps({**letter.model_dump(), "replayed_at": str(replayed) if replayed else None}))
        return
    table = Table(title=f"{sum(1 for _, r in letters if r is None)} pending dead letters")
    for col in ("wallet", "error_class", "error", "attempts", "replayed"):
        table.add_column(col)
    for letter, replayed in letters:
        table.add_row(
            letter.wallet or "-", letter.error_class, letter.error[:100], str(letter.attempts), str(replayed or "")
        )
    Console().print(table)


@letters_app.command("replay")
def letters_replay(
    db: DbOption,
    error_class: Annotated[str | None, typer.Option("--error-class")] = None,
    wallet: Annotated[str | None, typer.Option("--wallet")] = None,
    max_letters: Annotated[int, typer.Option("--max", min=1)] = 1000,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=256)] = 8,
) -> None:
    """Put dead letters back on their queue and run until they are done (or dead again)."""
    from shared.handlers.replay import replay_dead_letters

    settings = _settings()
    _setup_logging(db)
    runner = build_runner(settings, db, workers, new_run_id(), dispatch=False)
    result = replay_dead_letters(
        dead_letters=runner.dead_letters,
        publisher=runner.bus,
        warehouse=runner.warehouse,
        clock=runner.clock,
        error_class=error_class,
        wallet=wallet,
        max_letters=max_letters,
        dry_run=dry_run,
    )
    verb = "would replay" if dry_run else "replaying"
    console.print(f"{verb} {len(result.replayed)} dead letters")
    if dry_run or not result.replayed:
        raise typer.Exit(0)
    code = execute_run(runner)
    print_status(runner.warehouse)
    raise typer.Exit(code)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo's DuckDB file goes.")] = Path(".demo"),
    size: Annotated[int, typer.Option("--size", help="Ordinary wallets in the simulated universe.")] = 40,
    whale_trades: Annotated[int, typer.Option("--whale-trades")] = 250_000,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    workers: Annotated[int, typer.Option("--workers", min=1, max=256)] = 8,
    faults: Annotated[bool, typer.Option("--faults/--no-faults")] = True,
    source: Annotated[str, typer.Option("--source", help="Which API to simulate: dome or polymarket.")] = "dome",
) -> None:
    """Simulate the API (faults on), back-fill it into a fresh DuckDB file, check it row for row."""
    from shared.embedded.demo import run_demo

    raise typer.Exit(
        run_demo(
            directory,
            size=size,
            whale_trades=whale_trades,
            seed=seed,
            workers=workers,
            faults=faults,
            console=console,
            source=_settings(source).trade_source,
        )
    )


@app.command()
def probe(
    wallet: Annotated[str, typer.Option("--wallet", help="The wallet to page.")],
    source: SourceOption = None,
    max_pages: Annotated[int | None, typer.Option("--max-pages", min=1, help="Stop after this many pages.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Page one wallet and print counts: pages, rows, maker/taker, rows per transaction, identical fills."""
    from dataclasses import asdict

    from shared.errors import InvalidWallet
    from shared.probe import probe as run_probe
    from shared.wallets import normalize_wallet

    settings = _settings(source)
    try:
        address = normalize_wallet(wallet)
    except InvalidWallet as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    main_source = make_source(settings)
    taker_only = None
    if settings.trade_source == "polymarket":
        from shared.sources.polymarket import PolymarketSource

        taker_only = make_source(settings)
        assert isinstance(taker_only, PolymarketSource)
        taker_only.taker_only = True  # the API's default: what a client that forgets the flag gets
    try:
        report = run_probe(main_source, address, max_pages=max_pages, taker_only_source=taker_only)
    except PipelineError as exc:
        console.print(f"[red]probe failed: {exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        main_source.close()
        if taker_only is not None:
            taker_only.close()
    if as_json:
        print(json.dumps({**asdict(report), "maker_rows": report.maker_rows}))
        return
    walk = report.walk
    table = Table(title=f"probe {report.source}: {address}", show_header=False)
    rows = [
        ("pages", f"{walk.pages}{' (stopped at --max-pages)' if walk.truncated else ''}"),
        ("rows", f"{walk.rows:,}"),
        ("requests", f"{walk.requests} ({walk.retries} retried, {walk.rate_limited} answered 429)"),
        ("seconds", f"{walk.seconds:.1f}"),
    ]
    if report.taker_only_rows is not None:
        rows += [
            ("rows with taker_only=true (API default)", f"{report.taker_only_rows:,}"),
            ("maker rows (missed by the default)", f"{report.maker_rows:,}"),
        ]
    per_tx = ", ".join(f"{k}: {v}" for k, v in report.rows_per_tx.items())
    rows += [
        ("transactions", f"{report.transactions:,}"),
        ("rows per transaction -> transactions", per_tx or "-"),
        ("identical fills within a transaction", str(report.identical_fills)),
        ("rows without a transaction hash", str(report.without_tx_hash)),
        ("combo rows", str(report.combo_rows)),
        ("rows of another user", str(report.mismatched_user)),
        ("oldest .. newest", f"{report.oldest or '-'} .. {report.newest or '-'}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
