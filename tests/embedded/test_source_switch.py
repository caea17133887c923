"""The checkpoint records the source; switching a loaded wallet to the other source is refused unless
asked for, and when asked the wallet ends up exactly as the new source serves it (no old rows left)."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb

from emulators.dome.config import SimConfig
from emulators.dome.server import run_simulator
from emulators.truth import verify_dome, verify_polymarket


def _run(sim, wallets, db, *extra):
    env = dict(
        os.environ,
        DOME_API_BASE_URL=sim.base_url,
        DOME_API_KEY="switch-test",
        POLYMARKET_API_BASE_URL=sim.data_api_url,
        LOOKUPS="false",  # the trades' keys are the subject here
    )
    argv = [sys.executable, "-m", "shared.cli.main", "run", "--wallets", str(wallets), "--db", str(db), *extra]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def _sources(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        trades = dict(con.execute("SELECT source, count(*) FROM trades GROUP BY ALL").fetchall())
        checkpoints = dict(con.execute("SELECT source, count(*) FROM checkpoints GROUP BY ALL").fetchall())
    finally:
        con.close()
    return trades, checkpoints


def test_switching_sources_is_refused_unless_asked_and_then_exact(tmp_path):
    with run_simulator(SimConfig(seed=3, size=3, whale_trades=1500)) as sim:
        universe = sim.state.universe
        chosen = [w for w in universe.wallets() if 0 < universe.count(w) < 1500][:3]
        wallets = tmp_path / "wallets.txt"
        wallets.write_text("\n".join(chosen) + "\n")
        db = tmp_path / "switch.duckdb"
        dome_truth, pm_truth = tmp_path / "dome.jsonl", tmp_path / "pm.jsonl"
        universe.export_ground_truth(dome_truth, source="dome", wallets=chosen)
        universe.export_ground_truth(pm_truth, source="polymarket", wallets=chosen)

        first = _run(sim, wallets, db, "--source", "dome")
        assert first.returncode == 0, first.stderr[-2000:]
        trades, _ = _sources(db)
        assert set(trades) == {"dome"}

        pm_requests = sim.state.stats.by_endpoint.get("/v2/trades", 0)
        refused = _run(sim, wallets, db, "--source", "polymarket")
        assert refused.returncode == 2
        assert "refusing to switch sources" in refused.stderr and "--switch-source" in refused.stderr
        assert sim.state.stats.by_endpoint.get("/v2/trades", 0) == pm_requests  # nothing was fetched
        assert _sources(db)[0] == trades  # nothing was touched

        switched = _run(sim, wallets, db, "--source", "polymarket", "--switch-source")
        assert switched.returncode == 0, switched.stderr[-2000:]

    trades, checkpoints = _sources(db)
    assert set(trades) == {"polymarket"} and checkpoints == {"polymarket": len(chosen)}
    con = duckdb.connect(str(db), read_only=True)
    try:
        check = verify_polymarket(con, str(pm_truth))
        stale = verify_dome(con, str(dome_truth))
    finally:
        con.close()
    assert check.exact and check.warehouse_rows == check.truth_rows > 0
    assert stale.missing == stale.truth_rows  # not one Dome row is left behind
