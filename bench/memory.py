"""`make bench-memory`: the embedded run's peak memory against the wallet's size and the warehouse's.

Each case is a fresh DuckDB file filled by `backfill run`'s own runner in a child process (so its peak
RSS, its VmHWM, is its own); the Dome simulator runs in this process, with no rate limit and no
latency (memory, not throughput, is measured here):

  whale-last  the 108 largest ordinary wallets of a 1,500-wallet universe, then a 250,000-trade whale
  million     a 1,000,000-trade wallet alone
  small       one 999-trade wallet alone (the baseline: the process, its imports, an empty warehouse)

Printed per case: peak RSS, RSS after the imports, the RSS sampled as the rows were merged (does it grow
with the warehouse?), DuckDB's own accounting at the end (`duckdb_memory()`, the file's size) and a
row-for-row check against the simulator's ground truth. Figures only: the exit status is non-zero only
when a run fails or is not exact.

    python -m bench.memory [--cases whale-last,million,small] [--million N] [--whale N] [--ordinary N]
                           [--workers N] [--keep DIR] [--source dome|polymarket]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BUDGET_MB = 250.0  # issue 15: the embedded run's peak, whatever the wallet and the warehouse hold
CASES = ("whale-last", "million", "small")

# ---------------------------------------------------------------- child: one case, one process


def rss_mb(pid: int | str = "self") -> float:
    """The resident set now (Linux: /proc/<pid>/statm, in pages); 0 for a process that has ended."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextlib.contextmanager
def duckdb_connection(db: Path) -> Iterator[Any]:
    """The finished run's file, for the check against the ground truth (the run has closed it)."""
    import duckdb

    con = duckdb.connect(str(db))
    try:
        yield con
    finally:
        con.close()


def warehouse_rss_mb(runner: Any) -> float:
    """The resident set of the runner's warehouse process now; 0 when DuckDB runs in the runner."""
    pid = getattr(runner.warehouse, "pid", None)
    return rss_mb(pid) if pid is not None else 0.0


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak resident set since it started its program (Linux: VmHWM of /proc/<pid>/status).
    Not `ru_maxrss`: across an exec that keeps the highest of the old address space too, so a case
    started from the bench's process (the simulator's rows) would report that process's size."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)


def warehouse_peak_rss_mb(runner: Any) -> float:
    """The peak RSS of the runner's warehouse process (asked before it ends); 0 when DuckDB runs in the runner."""
    pid = getattr(runner.warehouse, "pid", None)
    return peak_rss_mb(pid) if pid is not None else 0.0


def run_case(args: argparse.Namespace) -> int:
    from emulators.truth import verify_dome, verify_polymarket
    from shared import bootstrap
    from shared.adapters.sql.dialect import Sql
    from shared.cli.run import execute, new_run_id, run_config
    from shared.embedded.runner import EmbeddedRunner
    from shared.embedded.wallets_file import import_wallets
    from shared.settings import Settings

    directory = Path(args.dir)
    settings = Settings(
        trade_source=args.source,
        dome_api_base_url=args.base_url,
        polymarket_api_base_url=args.data_api_url,
        dome_api_key=args.api_key,
        dome_tier="pro",
        polymarket_rate_per_10s=10_000,  # memory, not throughput: the simulator runs without its limit
    )
    db = directory / f"{args.case}.duckdb"
    deps = bootstrap.embedded(settings, db=db, process=settings.warehouse_process)  # as `backfill run` opens it
    deps.warehouse.create_schema()
    # Trades only: the markets lookups' tables are small, and the simulator's poison market would
    # dead-letter one lookup on purpose (exit 3).
    runner = EmbeddedRunner(run_config(settings, new_run_id(), workers=args.workers, lookups=False), deps)
    import_wallets(directory / f"{args.case}-wallets.txt", runner.warehouse, runner.dead_letters)
    rss_start = peak_rss_mb()
    samples: list[tuple[float, int, float]] = []  # (seconds, rows merged, RSS now)
    stop = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not stop.wait(0.05):
            rss = rss_mb() + warehouse_rss_mb(runner)  # the runner and its warehouse process (if any)
            samples.append((time.monotonic() - started, runner.progress.rows_loaded, rss))

    sampler = threading.Thread(target=sample, name="rss", daemon=True)
    sampler.start()
    code = execute(runner, quiet=True)
    elapsed = time.monotonic() - started
    stop.set()
    sampler.join()
    # DuckDB's own accounting, asked of the warehouse process before it ends.
    memory = list(runner.warehouse.query(Sql("SELECT tag, memory_usage_bytes / 2^20 AS mb FROM duckdb_memory()")))
    duckdb_mb = sum(r["mb"] for r in memory)
    tags = sorted(((r["tag"], r["mb"]) for r in memory if r["mb"] > 1), key=lambda t: -t[1])
    warehouse_peak = warehouse_peak_rss_mb(runner)
    runner.warehouse.close()
    runner_peak = peak_rss_mb()
    rss_peak = runner_peak + warehouse_peak  # before the check, which loads the ground truth into DuckDB
    with duckdb_connection(db) as con:
        check = (verify_polymarket if args.source == "polymarket" else verify_dome)(con, args.truth)
    result = {
        "exit": code,
        "elapsed": elapsed,
        "requests": runner.source.stats.requests,
        "rows_loaded": runner.progress.rows_loaded,
        "parts_loaded": runner.progress.parts_loaded,
        "rss_start_mb": rss_start,
        "rss_peak_mb": rss_peak,  # both processes' peaks: never less than the peak of their sum
        "warehouse_process": settings.warehouse_process,
        "runner_rss_peak_mb": runner_peak,
        "warehouse_rss_peak_mb": warehouse_peak,
        "samples": samples,
        "duckdb_mb": duckdb_mb,
        "duckdb_tags": tags,
        "file_mb": os.path.getsize(directory / f"{args.case}.duckdb") / 2**20,
        "check": {**vars(check), "exact": check.exact},
    }
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------- parent: simulator, cases, report


def run_child(
    case: str, wallets: list[str], sim: Any, directory: Path, truth: Path, workers: int, source: str
) -> dict[str, Any]:
    (directory / f"{case}-wallets.txt").write_text("\n".join(wallets) + "\n")
    command = [sys.executable, "-m", "bench.memory", "--case", case, "--dir", str(directory), "--truth", str(truth)]
    command += ["--base-url", sim.base_url, "--data-api-url", sim.data_api_url, "--api-key", f"bench-{case}"]
    command += ["--workers", str(workers), "--source", source]
    load_before = os.getloadavg()[0]
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0 or not done.stdout.strip():
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"case {case!r}: the child process failed (exit {done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    said = (done.stdout + done.stderr).splitlines()
    result["said"] = [line for line in said if line.startswith(("halted", "stopped", "systemic failure"))][:1]
    result["load_average"] = (load_before, os.getloadavg()[0])
    return result


def growth(samples: list[list[float]]) -> str:
    """RSS when a quarter, half, three quarters and all of the rows were merged."""
    if not samples:
        return "no samples"
    total = samples[-1][1] or 1
    points = []
    for share in (0.25, 0.5, 0.75, 1.0):
        at = next((s for s in samples if s[1] >= share * total), samples[-1])
        points.append(f"{at[1]:,} rows {at[2]:.0f} MB")
    top = max(samples, key=lambda s: s[2])
    return ", ".join(points) + f"; highest sample {top[2]:.0f} MB at {top[0]:.1f} s ({top[1]:,} rows merged)"


def split(r: dict[str, Any]) -> str:
    """How the peak is made up when DuckDB ran in a process of its own (WAREHOUSE_PROCESS)."""
    if not r["warehouse_process"]:
        return ""
    return (
        f" = runner {r['runner_rss_peak_mb']:.1f} MB + its warehouse process {r['warehouse_rss_peak_mb']:.1f} MB,"
        " each at its own peak"
    )


def report(case: str, r: dict[str, Any], trades: int) -> bool:
    c = r["check"]
    before, after = r["load_average"]
    ok = r["exit"] == 0 and bool(c["exact"])
    if r["exit"] != 0:
        print(f"{case}: the run exited {r['exit']}: {' '.join(r['said']) or 'see the child output'}")
    tags = ", ".join(f"{tag} {mb:.0f}" for tag, mb in r["duckdb_tags"]) or "none over 1 MB"
    verdict = "PASS" if r["rss_peak_mb"] <= BUDGET_MB else "MISS"
    print(
        f"{case} ({trades:,} trades): peak RSS {r['rss_peak_mb']:.1f} MB{split(r)} (after imports"
        f" {r['rss_start_mb']:.1f} MB)   [<= {BUDGET_MB:.0f} MB: {verdict}]\n"
        f"  run               {r['rows_loaded']:,} rows in {r['parts_loaded']:,} parts, {r['requests']:,} requests,"
        f" {r['elapsed']:.1f} s; load average {before:.1f} -> {after:.1f}\n"
        f"  RSS as it merged  {growth(r['samples'])}\n"
        f"  DuckDB at the end {r['duckdb_mb']:.0f} MB in duckdb_memory() ({tags}); file {r['file_mb']:.0f} MB\n"
        f"  exact             {'yes' if c['exact'] else 'NO'}: {c['warehouse_rows']:,} rows for {c['truth_rows']:,}"
        f" in the ground truth, {c['duplicates']} duplicates, {c['missing']} missing, {c['extra']} extra",
        flush=True,
    )
    return ok


def simulate(directory: Path, name: str, *, size: int, whale: int, seed: int, source: str) -> Any:
    from emulators.dome.config import SimConfig
    from emulators.dome.server import run_simulator

    started = time.monotonic()
    config = SimConfig(seed=seed, size=size, whale_trades=whale, tier=None, latency_ms=0.0, data_api_per_10s=None)
    sim = run_simulator(config)
    truth = directory / f"truth-{name}.jsonl"
    sim.state.universe.export_ground_truth(truth, source=source)
    print(
        f"simulator ({size:,} ordinary wallets, whale {whale:,}): ready and its ground truth exported in"
        f" {time.monotonic() - started:.1f} s; this process's peak RSS {peak_rss_mb():.0f} MB",
        flush=True,
    )
    return sim, truth


def benchmark(
    directory: Path,
    cases: list[str],
    *,
    million: int,
    whale: int,
    ordinary: int,
    seed: int,
    workers: int,
    source: str = "dome",
) -> int:
    ok = True
    print(f"source: {'the Data API' if source == 'polymarket' else 'Dome'}", flush=True)
    if "whale-last" in cases or "small" in cases:
        sim, truth = simulate(directory, "universe", size=1500, whale=whale, seed=seed, source=source)
        with sim:
            u = sim.state.universe
            largest = sorted(u.ordinary(), key=lambda w: (-u.count(w), w))[:ordinary]
            work = {"whale-last": [*largest, u.special["whale"]], "small": [u.special["n999"]]}
            for case in (c for c in CASES if c in cases and c in work):
                trades = sum(u.count(w) for w in work[case])
                result = run_child(case, work[case], sim, directory, truth, workers, source)
                ok = report(case, result, trades) and ok
    if "million" in cases:
        sim, truth = simulate(directory, "million", size=0, whale=million, seed=seed, source=source)
        with sim:
            wallet = sim.state.universe.special["whale"]
            result = run_child("million", [wallet], sim, directory, truth, workers, source)
            ok = report("million", result, million) and ok
    print("all runs exact" if ok else "A RUN FAILED OR WAS NOT EXACT")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--million", type=int, default=1_000_000, help="the big wallet's trades")
    parser.add_argument("--whale", type=int, default=250_000, help="the whale-last list's whale")
    parser.add_argument("--ordinary", type=int, default=108, help="ordinary wallets before the whale")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=8, help="fetch workers (backfill run's default: 8)")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the DuckDB files and part files")
    parser.add_argument("--source", choices=("dome", "polymarket"), default="dome", help="which API the run pages")
    for internal in ("--case", "--dir", "--base-url", "--data-api-url", "--api-key", "--truth"):
        parser.add_argument(internal, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        return run_case(args)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := set(cases) - set(CASES):
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    directory = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-memory-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        return benchmark(
            directory,
            cases,
            million=args.million,
            whale=args.whale,
            ordinary=args.ordinary,
            seed=args.seed,
            workers=args.workers,
            source=args.source,
        )
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
