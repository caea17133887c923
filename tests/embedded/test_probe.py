"""`backfill probe` against the simulated Data API: its counts match what the ground truth holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

from emulators.dome.config import SimConfig
from emulators.dome.polymarket import FULL_HISTORY
from emulators.dome.server import run_simulator


def _truth(universe, wallet):
    rows = list(universe.trade_rows(wallet))
    same = Counter(
        (r["transaction_hash"], r["token_id"], r["side"], r["size"], r["price"], r["timestamp"]) for r in rows
    )
    return rows, sum(n - 1 for n in same.values() if n > 1)


def test_probe_counts_rows_makers_and_identical_fills_of_the_straddle_wallet():
    with run_simulator(SimConfig(seed=5, size=1, whale_trades=10)) as sim:
        wallet = sim.state.universe.data_api_special["straddle"]
        rows, identical = _truth(sim.state.universe, wallet)
        env = dict(os.environ, POLYMARKET_API_BASE_URL=sim.data_api_url)
        argv = [
            sys.executable,
            "-m",
            "shared.cli.main",
            "probe",
            "--source",
            "polymarket",
            "--wallet",
            wallet,
            "--json",
        ]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        universe = sim.state.universe
        makers = sum(1 for f in universe.fills(wallet) if FULL_HISTORY.shows(f) and f.role == "maker")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["walk"]["rows"] == len(rows) > 1000
    assert report["walk"]["pages"] == len(rows) // 1000 + 1
    assert report["identical_fills"] == identical >= 5
    assert report["transactions"] == len({r["transaction_hash"] for r in rows})
    # The API's default taker_only=true hides maker fills: the probe shows how many.
    assert report["maker_rows"] == makers > 0
    assert report["taker_only_rows"] == len(rows) - makers


def test_probe_rejects_an_invalid_wallet_with_a_clear_error():
    argv = [sys.executable, "-m", "shared.cli.main", "probe", "--source", "polymarket", "--wallet", "0x123"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "not a wallet address" in proc.stderr
