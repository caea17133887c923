"""`backfill sync` after the world moved on: the simulator's day passes (new fills, fills the API indexed
late, a market resolves), and the sync is exact against the new ground truth for a request or so per
unchanged wallet. The one late fill older than the lookback is the lookback's documented limit: the
sync misses it (and `backfill verify` is what finds it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

from emulators.context_truth import read_truth, verify_context
from emulators.dome.config import SimConfig
from emulators.dome.server import run_simulator
from emulators.truth import verify_dome, verify_polymarket

VERIFY = {"dome": verify_dome, "polymarket": verify_polymarket}
DAY = 86_400


def _cli(command: str, sim: Any, wallets: Path, db: Path, source: str, **env: str) -> subprocess.CompletedProcess:
    environ = dict(
        os.environ,
        TRADE_SOURCE=source,
        DOME_API_BASE_URL=sim.base_url,
        POLYMARKET_API_BASE_URL=sim.data_api_url,
        GAMMA_API_BASE_URL=sim.gamma_url,
        DOME_API_KEY="sync-test-key",
        DOME_TIER="pro",
        POLYMARKET_RATE_PER_10S="3000",
        **env,
    )
    argv = [sys.executable, "-m", "shared.cli.main", command, "--wallets", str(wallets), "--db", str(db)]
    return subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=300)


def _cli_json(command: str, sim: Any, db: Path, source: str) -> dict[str, Any]:
    environ = dict(os.environ, DOME_API_BASE_URL=sim.base_url, DOME_API_KEY="sync-test-key", DOME_TIER="pro")
    argv = [sys.executable, "-m", "shared.cli.main", command, "--db", str(db), "--json", "--source", source]
    done = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=300)
    assert done.stdout, done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _table(con: Any, name: str) -> list[dict[str, Any]]:
    result = con.execute(f"SELECT * FROM {name}")
    names = [d[0] for d in result.description]
    return [dict(zip(names, r, strict=True)) for r in result.fetchall()]


@pytest.mark.parametrize("source", sorted(VERIFY))
def test_a_sync_after_a_day_is_exact_against_the_grown_world_for_a_request_per_unchanged_wallet(tmp_path, source):
    config = SimConfig(seed=5, size=14, whale_trades=6_000, latency_ms=5, error_5xx_rate=0.02, data_api_per_10s=None)
    db, wallets = tmp_path / "sync.duckdb", tmp_path / "wallets.txt"
    with run_simulator(config) as sim:
        universe = sim.state.universe
        counts = universe.export_ground_truth(tmp_path / "truth0.jsonl", source=source)
        wallets.write_text("\n".join(counts) + "\n")
        first = _cli("run", sim, wallets, db, source)
        assert first.returncode in (0, 3), first.stderr[-3000:]  # 3: the market the API always fails on

        grown = sim.state.advance(DAY)
        sim.state.patch_faults(error_5xx_rate=0.0)  # count the sync's requests without retries
        before, sync_started = dict(sim.state.stats.by_wallet), datetime.now(UTC)
        # The sync also asks again for every market and event not resolved when it started.
        sync = _cli("sync", sim, wallets, db, source)
        assert sync.returncode in (0, 3), sync.stderr[-3000:]
        asked = {w: sim.state.stats.by_wallet.get(w, 0) - before.get(w, 0) for w in counts}

        after = universe.export_ground_truth(tmp_path / "truth1.jsonl", source=source)
        universe.export_markets_truth(tmp_path / "markets.jsonl", source=source)
        universe.export_events_truth(tmp_path / "events.jsonl", source=source)
        # What the lookback misses, the API's own count finds (Dome gives one; the Data API does not).
        found = _cli_json("verify", sim, db, source) if source == "dome" else None

    inside = next(iter(w for w, ts in grown["late_fills"].items() if len(ts) > 1))
    outside = next(iter(w for w, ts in grown["late_fills"].items() if len(ts) == 1))
    con = duckdb.connect(str(db), read_only=True)
    try:
        others = [w for w in after if w != outside]
        check = VERIFY[source](con, str(tmp_path / "truth1.jsonl"), others)
        missed = VERIFY[source](con, str(tmp_path / "truth1.jsonl"), [outside])
        checkpoints = {r["wallet_address"]: r for r in _table(con, "checkpoints")}
        context = verify_context(
            markets=_table(con, "markets"),
            events=_table(con, "events"),
            misses=[(r["kind"], r["key"]) for r in _table(con, "lookup_misses")],
            letters=[SimpleNamespace(data=r["data"]) for r in _table(con, "dead_letters") if not r["replayed_at"]],
            market_truth=read_truth(str(tmp_path / "markets.jsonl")),
            event_truth=read_truth(str(tmp_path / "events.jsonl")),
            source=source,
        )
    finally:
        con.close()

    # Every wallet exact against the grown world, the late fills inside the lookback included...
    assert check.exact, check
    assert check.truth_rows + missed.truth_rows == sum(after.values()) > sum(counts.values())
    assert inside in others and sum(grown["new_fills"].values()) > 0
    # ...but the one indexed three days behind the wallet's newest trade: the lookback's limit.
    assert (missed.missing, missed.duplicates, missed.extra) == (1, 0, 0)
    if found is not None:
        assert [(m["wallet"], m["verdict"]) for m in found["mismatches"]] == [(outside, "api_has_more")]
    # Markets and events too: the market resolved during the day is refreshed.
    assert context.exact, context
    # A request per wallet that did not change (its last day of trades fits one page).
    unchanged = [w for w in counts if w not in grown["new_fills"] and w not in grown["late_fills"]]
    assert unchanged and all(asked[w] == 1 for w in unchanged), {w: asked[w] for w in unchanged}
    # Each wallet was walked again, and its checkpoint says when.
    assert len(checkpoints) == len(counts)
    assert all(c["status"] == "complete" and c["synced_at"] >= sync_started for c in checkpoints.values())
    assert "oldest sync" in sync.stdout


def test_a_lookback_that_is_not_a_duration_is_refused_before_anything_is_created(tmp_path):
    (tmp_path / "wallets.txt").write_text("0x" + "1" * 40 + "\n")
    argv = [sys.executable, "-m", "shared.cli.main", "sync", "--wallets", "wallets.txt", "--db", "w.duckdb"]
    done = subprocess.run([*argv, "--lookback", "3x"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--lookback '3x'" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wallets.txt"]
