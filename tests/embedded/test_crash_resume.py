"""`backfill run` killed with SIGKILL at random points, then run to the end: exact against ground truth.

The kill points are drawn from a seeded RNG as numbers of requests the simulator has answered (not as
wall-clock delays), so each kill lands somewhere inside the run whatever the machine's speed. Between
runs the simulator's per-wallet request counts prove the other two promises: a wallet completed before
a kill is never requested again, and a wallet with committed parts resumes from its cursor, never from
its first page.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from emulators.dome.config import SimConfig
from emulators.dome.server import run_simulator
from emulators.truth import verify_dome, verify_polymarket

pytestmark = pytest.mark.slow

KILLS = 4
RUN_TIMEOUT = 240


VERIFY = {"dome": verify_dome, "polymarket": verify_polymarket}


def _env(sim, source: str, own_process: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TRADE_SOURCE=source,
        DOME_API_BASE_URL=sim.base_url,
        POLYMARKET_API_BASE_URL=sim.data_api_url,
        GAMMA_API_BASE_URL=sim.gamma_url,
        POLYMARKET_RATE_PER_10S="4000",
        DOME_API_KEY="crash-test-key",
        DOME_TIER="custom",
        DOME_RATE_PER_SECOND="400",
        DOME_RATE_PER_10S="4000",
        FETCH_MAX_PAGES="2",  # many small parts: kills land between and inside them
        HTTP_MAX_ATTEMPTS="10",
        WAREHOUSE_PROCESS=str(own_process).lower(),
    )
    return env


def _start(wallets: Path, db: Path, env: dict[str, str]) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "shared.cli.main",
        "run",
        "--wallets",
        str(wallets),
        "--db",
        str(db),
        "--workers",
        "4",
    ]
    with open(db.with_suffix(".stderr"), "a") as err:
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)


def _finish(wallets: Path, db: Path, env: dict[str, str]) -> None:
    proc = _start(wallets, db, env)
    assert proc.wait(timeout=RUN_TIMEOUT) == 0, db.with_suffix(".stderr").read_text()[-3000:]


Chain = tuple[str, "int | None", "int | None"]  # (wallet, window start, window end): one chain of parts


def _open_when_free(db: Path, seconds: float = 5.0) -> duckdb.DuckDBPyConnection:
    """The file, read-only, once the killed run's warehouse process (killed with it, PR_SET_PDEATHSIG)
    has let go of its lock: within `seconds`, or the warehouse outlived its runner."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return duckdb.connect(str(db), read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _committed(db: Path) -> tuple[set[str], set[Chain]]:
    """(complete wallets, chains of unfinished wallets whose first part is committed and whose final part
    is not) as the killed run left them. A big wallet's walk is split into windows, each a chain."""
    con = _open_when_free(db)
    try:
        complete = {
            r[0] for r in con.execute("SELECT wallet_address FROM checkpoints WHERE status = 'complete'").fetchall()
        }
        started = {
            (w, lo, hi)
            for w, lo, hi in con.execute(
                """SELECT wallet_address, window_lo, window_hi FROM checkpoint_parts
                   GROUP BY ALL HAVING bool_or(part = 0) AND NOT bool_or(final)"""
            ).fetchall()
            if w not in complete
        }
    finally:
        con.close()
    return complete, started


def _sent(source: str, chain: Chain) -> tuple[str, str | None, str | None]:
    """The first-page key the simulator counts for a chain: its bounds as the source sends them."""
    wallet, lo, hi = chain
    if source == "polymarket":
        return wallet, str(max(lo, 1) if lo is not None else 1), None if hi is None else str(hi)
    return wallet, None if lo is None else str(lo), None if hi is None else str(hi)


def _half_done_commit(log: Path, skip_lines: int) -> bool:
    if not log.exists():
        return False
    lines = log.read_text().splitlines()[skip_lines:]
    return any("committed" in line and " 0 in progress" not in line for line in lines)


# Each source once, one with DuckDB in the runner and one with it in a process of its own (WAREHOUSE_PROCESS:
# the SIGKILL of the runner takes that process down too, mid-transaction).
@pytest.mark.parametrize(("source", "own_process"), [("dome", False), ("polymarket", True)])
def test_sigkill_at_random_points_then_resume_is_exact(tmp_path, source, own_process):
    rng = random.Random(20261130)
    config = SimConfig(
        seed=11, size=20, whale_trades=100_000, latency_ms=20, error_5xx_rate=0.03, burst_429_rate=0.01,
        truncated_rate=0.01, drop_rate=0.01, data_api_per_10s=None,
    )  # fmt: skip
    db = tmp_path / "crash.duckdb"
    with run_simulator(config) as sim:
        universe = sim.state.universe
        truth = tmp_path / "truth.jsonl"
        counts = universe.export_ground_truth(truth, source=source)
        wallets = tmp_path / "wallets.txt"
        wallets.write_text("\n".join(counts) + "\n")
        env = _env(sim, source, own_process)
        stats = sim.state.stats
        total_pages = sum(n // 1000 + 1 for n in counts.values())

        kills, resumed_midway = 0, 0
        for _ in range(KILLS):
            before = dict(stats.by_wallet)
            first_pages_before = dict(stats.first_pages)
            complete, started = _committed(db) if db.exists() else (set(), set())
            target = stats.requests + rng.randint(total_pages // (2 * KILLS), total_pages // KILLS)
            proc = _start(wallets, db, env)
            deadline = time.monotonic() + RUN_TIMEOUT
            log = db.with_suffix(".log")
            seen = log.read_text().count("\n") if log.exists() else 0
            # Kill once the API has answered `target` requests and this run has committed a batch that
            # leaves a wallet half-done: the kill then lands between that wallet's parts.
            while proc.poll() is None and time.monotonic() < deadline:
                if stats.requests >= target and _half_done_commit(log, seen):
                    break
                time.sleep(0.005)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
            # A wallet complete before this run was not asked for again...
            for w in complete:
                assert stats.by_wallet.get(w, 0) == before.get(w, 0), f"completed wallet {w} requested again"
            # ...and each chain (window) with committed parts resumed from its cursor, not its first page.
            resumed_midway += len(started)
            for chain in started:
                key = _sent(source, chain)
                assert stats.first_pages.get(key, 0) == first_pages_before.get(key, 0), f"{chain} restarted"
        assert kills >= 3, "the run finished before it could be killed: make the universe bigger"
        assert resumed_midway >= 1, "no kill left a wallet half-done: the resume check proved nothing"

        _finish(wallets, db, env)

        # A full re-run afterwards asks the API nothing at all.
        requests_after = stats.requests
        _finish(wallets, db, env)
        assert stats.requests == requests_after

    con = duckdb.connect(str(db), read_only=True)
    try:
        check = VERIFY[source](con, str(truth))
        statuses = dict(con.execute("SELECT status, count(*) FROM checkpoints GROUP BY ALL").fetchall())
    finally:
        con.close()
    assert (check.duplicates, check.missing, check.extra) == (0, 0, 0), check
    assert check.truth_rows == sum(counts.values())
    assert statuses == {"complete": len(counts)}
