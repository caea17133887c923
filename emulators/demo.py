"""`make demo` (`python -m emulators.demo`): the simulator in-process (faults on), the product's embedded
pipeline into a fresh DuckDB file, then a row-for-row check against the simulator's ground truth.
Exit status 0 only if it is exact, every valid wallet is complete and the invalid line is dead-lettered.

    python -m emulators.demo [--source polymarket] [--size 200] [--whale-trades 500000] [--no-faults]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from emulators.dome.config import SimConfig
from emulators.dome.server import run_simulator
from emulators.truth import verify_dome, verify_polymarket
from shared import bootstrap
from shared.adapters.local.duckdb import DuckDBWarehouse
from shared.cli.run import execute, new_run_id, run_config
from shared.embedded.runner import EmbeddedRunner
from shared.embedded.wallets_file import import_wallets
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
        )
        deps = bootstrap.embedded(settings, db=db)
        deps.warehouse.create_schema()
        runner = EmbeddedRunner(run_config(settings, new_run_id(), workers), deps)
        imported = import_wallets(wallets_file, deps.warehouse, deps.dead_letters)
        started = time.monotonic()
        code = execute(runner, quiet=True)
        elapsed = time.monotonic() - started
        assert isinstance(deps.warehouse, DuckDBWarehouse)
        check = (verify_polymarket if source == "polymarket" else verify_dome)(deps.warehouse.con, str(truth))
        letters = deps.dead_letters.pending(1000)
        status = deps.warehouse.status(datetime.now(UTC))
        sim_stats = sim.state.stats
    table = Table(title=f"demo: {db}", show_header=False)
    rows = [
        ("wallets", f"{check.wallets} valid ({imported.duplicates} repeated lines), {len(imported.invalid)} invalid"),
        ("complete", str(status.by_status.get("complete", 0))),
        ("ground-truth rows", f"{check.truth_rows:,}"),
        ("warehouse rows", f"{check.warehouse_rows:,}"),
        ("duplicates", str(check.duplicates)),
        ("missing", str(check.missing)),
        ("extra", str(check.extra)),
        ("dead letters", str(len(letters))),
        *[(f"  {letter.wallet}", f"{letter.error_class}: {letter.error}") for letter in letters],
        ("requests", f"{runner.source.stats.requests:,} ({runner.source.stats.retries} retried)"),
        ("429s", str(runner.source.stats.rate_limited)),
        (
            "simulator faults served",
            str(
                sum(getattr(sim_stats, "faults", {}).values())
                if isinstance(getattr(sim_stats, "faults", None), dict)
                else "-"
            ),
        ),
        ("elapsed", f"{elapsed:.1f} s"),
        (
            "throughput",
            f"{check.warehouse_rows / max(elapsed, 1e-6):,.0f} trades/s, "
            f"{runner.source.stats.requests / max(elapsed, 1e-6):.1f} requests/s",
        ),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    invalid_dead = any(letter.wallet == INVALID_LINE for letter in letters)
    all_complete = status.by_status.get("complete", 0) == check.wallets
    # `backfill run` answers 3 for a run with dead letters: here the invalid line must be one.
    ok = code == 3 and check.exact and invalid_dead and all_complete
    if not ok:
        console.print(
            f"[red]demo FAILED[/red]: exit {code}, exact={check.exact}, invalid dead-lettered="
            f"{invalid_dead}, all complete={all_complete}; wrong wallets: {check.wallets_wrong}"
        )
        return 1
    console.print("[green]demo OK: 0 duplicates, 0 missing, 0 extra[/green]")
    return 0


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
