"""`make demo` (`python -m emulators.demo`): the simulator in-process (faults on), the product's embedded
pipeline into a fresh DuckDB file, then a row-for-row check against the simulator's ground truth.
Exit status 0 only if it is exact, every valid wallet is complete and the invalid line is dead-lettered.

    python -m emulators.demo [--source polymarket] [--size 200] [--whale-trades 500000] [--no-faults]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from emulators.context_truth import ContextCheck, read_truth, verify_context
from emulators.dome.config import SimConfig
from emulators.dome.server import RunningSimulator, run_simulator
from emulators.truth import Verification, verify_dome, verify_polymarket
from shared import bootstrap
from shared.adapters.local.duckdb import DuckDBWarehouse
from shared.cli.options import setup_logging
from shared.cli.run import execute, new_run_id, run_config
from shared.core.messages import DeadLetter
from shared.embedded.runner import EmbeddedRunner
from shared.embedded.wallets_file import import_wallets
from shared.ports.warehouse import Status
from shared.settings import Settings

INVALID_LINE = "0xnot-a-wallet"


def run_demo(
    directory: Path,
    *,
    size: int,
    whale_trades: int,
    seed: int,
    workers: int,
    faults: bool,
    console: Console,
    source: str = "dome",
) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    db = directory / f"demo-{stamp}.duckdb"
    fault_rates = dict(error_5xx_rate=0.03, burst_429_rate=0.01, truncated_rate=0.01, drop_rate=0.01) if faults else {}
    config = SimConfig(seed=seed, size=size, whale_trades=whale_trades, tier="dev", latency_ms=80, **fault_rates)
    limits = "Dev tier limits (100/s, 500/10 s)" if source == "dome" else "the Data API's 200 requests/10 s"
    console.print(
        f"simulator ({source}): seed {seed}, {size} ordinary wallets + edge cases, whale {whale_trades:,} trades, "
        f"{limits}, ~80 ms latency, faults {'on' if faults else 'off'}"
    )
    with run_simulator(config) as sim:
        universe = sim.state.universe
        truth = directory / f"ground-truth-{stamp}.jsonl"
        universe.export_ground_truth(truth, source=source)
        wallets_file = directory / f"wallets-{stamp}.txt"
        wallets = universe.wallets(source)
        # The file a person would have: mixed case, stray spaces, a repeat, and one line that is no address.
        lines = [f"  {wallets[0].upper().replace('0X', '0x')}  ", *wallets, wallets[1], INVALID_LINE]
        wallets_file.write_text("\n".join(lines) + "\n")
        settings = Settings(
            trade_source=source,
            dome_api_base_url=sim.base_url,
            dome_api_key="demo-key",
            dome_tier="dev",
            polymarket_api_base_url=sim.data_api_url,
            gamma_api_base_url=sim.gamma_url,
        )
        setup_logging(db.with_suffix(".log"))
        first = _run(settings, db, workers, wallets_file, sim)
        check = (verify_polymarket if source == "polymarket" else verify_dome)(first.con, str(truth))
        context = _context(first, sim, directory, stamp, source)
        # A day later (the simulator's clock): a market resolves. The second run fetches no trade (every
        # wallet is complete) and refreshes only the markets and events not yet resolved.
        resolved = sim.state.advance(86_400).get("resolved", [])
        again = _run(settings.model_copy(update={"markets_refresh_seconds": 0}), db, workers, wallets_file, sim)
        context_again = _context(again, sim, directory, stamp, source)
    report(console, db, first, again, check, context, context_again, resolved)
    invalid_dead = any(x.wallet == INVALID_LINE for x in first.letters)
    all_complete = first.status.by_status.get("complete", 0) == check.wallets
    # `backfill run` answers 3 for a run with dead letters: here the invalid line (and the poison market).
    ok = (
        first.code == 3
        and check.exact
        and invalid_dead
        and all_complete
        and context.exact
        and context_again.exact
        and again.trade_requests == 0
    )
    if not ok:
        console.print(
            f"[red]demo FAILED[/red]: exit {first.code}, exact={check.exact}, invalid dead-lettered={invalid_dead}, "
            f"all complete={all_complete}, markets/events exact={context.exact}/{context_again.exact}, "
            f"second run's trade requests={again.trade_requests}; wrong wallets: {check.wallets_wrong}; "
            f"markets: {context.markets}; events: {context.events}"
        )
        return 1
    console.print("[green]demo OK: 0 duplicates, 0 missing, 0 extra; markets and events exact, refreshed[/green]")
    return 0


@dataclass
class DemoRun:
    code: int
    elapsed: float
    con: Any
    status: Status
    letters: list[DeadLetter]
    requests: int
    retries: int
    rate_limited: int
    trade_requests: int
    market_requests: dict[str, int]


def _run(settings: Settings, db: Path, workers: int, wallets_file: Path, sim: RunningSimulator) -> DemoRun:
    trades_before = sim.state.stats.requests
    markets_before = dict(sim.state.stats.markets.by_endpoint)
    deps = bootstrap.embedded(settings, db=db)
    deps.warehouse.create_schema()
    import_wallets(wallets_file, deps.warehouse, deps.dead_letters)
    runner = EmbeddedRunner(run_config(settings, new_run_id(), workers), deps)
    started = time.monotonic()
    code = execute(runner, quiet=True)
    assert isinstance(deps.warehouse, DuckDBWarehouse)
    stats = runner.source.stats
    markets = {k: v - markets_before.get(k, 0) for k, v in sim.state.stats.markets.by_endpoint.items()}
    return DemoRun(
        code,
        time.monotonic() - started,
        deps.warehouse.con,
        deps.warehouse.status(datetime.now(UTC)),
        deps.dead_letters.pending(1000),
        stats.requests,
        stats.retries,
        stats.rate_limited,
        sim.state.stats.requests - trades_before,
        {k: v for k, v in markets.items() if v},
    )


def _context(run: DemoRun, sim: RunningSimulator, directory: Path, stamp: str, source: str) -> ContextCheck:
    markets_path, events_path = directory / f"markets-{stamp}.jsonl", directory / f"events-{stamp}.jsonl"
    sim.state.universe.export_markets_truth(markets_path, source=source)
    sim.state.universe.export_events_truth(events_path, source=source)
    cur = run.con.cursor()

    def rows(table: str) -> list[dict[str, Any]]:
        result = cur.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in result.description]
        return [dict(zip(names, r, strict=True)) for r in result.fetchall()]

    return verify_context(
        markets=rows("markets"),
        events=rows("events"),
        misses=[(r["kind"], r["key"]) for r in rows("lookup_misses")],
        letters=run.letters,
        market_truth=read_truth(str(markets_path)),
        event_truth=read_truth(str(events_path)),
        source=source,
    )


def report(
    console: Console,
    db: Path,
    first: DemoRun,
    again: DemoRun,
    check: Verification,
    context: ContextCheck,
    context_again: ContextCheck,
    resolved: list[Any],
) -> None:
    table = Table(title=f"demo: {db}", show_header=False)
    m, e = context.markets, context.events
    distinct = first.status.condition_ids
    rows = [
        ("wallets", f"{check.wallets} valid, 1 invalid"),
        ("complete", str(first.status.by_status.get("complete", 0))),
        ("ground-truth rows", f"{check.truth_rows:,}"),
        ("warehouse rows", f"{check.warehouse_rows:,}"),
        ("duplicates / missing / extra", f"{check.duplicates} / {check.missing} / {check.extra}"),
        ("markets", f"{m.loaded} of {m.expected} served; {m.not_found_expected} unknown to the API (recorded: "
                    f"{m.not_found_expected - len(m.not_found_unrecorded)}); missing {len(m.missing)}, wrong "
                    f"{len(m.wrong)}, duplicate keys {m.duplicates}"),
        ("events", f"{e.loaded} of {e.expected}; missing {len(e.missing)}, wrong {len(e.wrong)}, "
                   f"duplicates {e.duplicates}"),
        ("failing market", f"{', '.join(context.failing) or '-'} (dead-lettered: {context.failing_dead_lettered})"),
        ("market requests", f"{_requests(first.market_requests)} for {distinct} condition ids "
                            f"(ceil(n / 100) = {-(-distinct // 100)} batches)"),
        ("dead letters", str(len(first.letters))),
        *[(f"  {x.wallet or x.attributes.get('kind', '-')}", f"{x.error_class}: {x.error}") for x in first.letters],
        ("requests", f"{first.requests:,} ({first.retries} retried, {first.rate_limited} answered 429)"),
        ("elapsed", f"{first.elapsed:.1f} s, {check.warehouse_rows / max(first.elapsed, 1e-6):,.0f} trades/s"),
        ("a day later", f"{len(resolved)} market(s) resolved; second run: {again.trade_requests} trade requests, "
                        f"{_requests(again.market_requests)} (refreshes); markets exact: {context_again.exact}"),
    ]  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def _requests(by_endpoint: dict[str, int]) -> str:
    return ", ".join(f"{n} {endpoint}" for endpoint, n in sorted(by_endpoint.items())) or "none"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulators.demo", description=__doc__)
    p.add_argument("--dir", type=Path, default=Path(".demo"), help="where the demo's DuckDB file goes")
    p.add_argument("--size", type=int, default=40, help="ordinary wallets in the simulated universe")
    p.add_argument("--whale-trades", type=int, default=250_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--no-faults", dest="faults", action="store_false")
    p.add_argument("--source", choices=("dome", "polymarket"), default="dome", help="which API to simulate")
    args = p.parse_args(argv)
    console = Console(stderr=True)
    return run_demo(
        args.dir,
        size=args.size,
        whale_trades=args.whale_trades,
        seed=args.seed,
        workers=args.workers,
        faults=args.faults,
        console=console,
        source=args.source,
    )


if __name__ == "__main__":
    sys.exit(main())
