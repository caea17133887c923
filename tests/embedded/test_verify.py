"""`backfill verify` against the in-process simulator (issue 14, point 3): each planted fault is caught —
rows deleted by hand, a checkpoint edited to complete, an API that gained trades — and `--requeue`
repairs each exactly, row for row against the simulator's ground truth (emulators/truth.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from emulators.dome.config import SimConfig
from emulators.dome.server import run_simulator
from emulators.truth import verify_dome, verify_polymarket
from shared import bootstrap
from shared.core.messages import WalletTask
from shared.handlers.fetch import fetch
from shared.handlers.load import load
from shared.settings import Settings
from tests.embedded.conftest import RecordingPublisher
from tests.fakes import budget

pytestmark = pytest.mark.slow
EXIT_OK, EXIT_USAGE, EXIT_MISMATCHES = 0, 2, 4


def env_for(sim, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DOME_API_BASE_URL": sim.base_url,
        "POLYMARKET_API_BASE_URL": sim.data_api_url,
        "POLYMARKET_RATE_PER_10S": "4000",
        "DOME_API_KEY": "verify-test",
        "DOME_TIER": "pro",
        "LOOKUPS": "false",  # the trades are the subject here
        **extra,
    }


def backfill(sim, cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "shared.cli.main", *args]
    return subprocess.run(argv, env=env_for(sim, **extra), cwd=cwd, capture_output=True, text=True, timeout=300)


def verify(sim, db: Path, *extra: str, source: str = "dome") -> tuple[int, dict]:
    done = backfill(sim, db.parent, "verify", "--db", str(db), "--json", "--source", source, *extra)
    assert done.stdout, done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout)


def run_all(sim, tmp: Path, wallets: list[str], source: str = "dome") -> Path:
    (tmp / "wallets.txt").write_text("\n".join(wallets) + "\n")
    db = tmp / "w.duckdb"
    done = backfill(sim, tmp, "run", "--wallets", "wallets.txt", "--db", str(db), "--source", source)
    assert done.returncode == EXIT_OK, done.stderr[-3000:]
    return db


def exact(sim, db: Path, wallets: list[str], source: str = "dome") -> None:
    truth = db.parent / f"truth-{datetime.now(UTC).timestamp()}.jsonl"
    sim.state.universe.export_ground_truth(truth, source=source, wallets=wallets)
    with duckdb.connect(str(db), read_only=True) as con:
        check = (verify_dome if source == "dome" else verify_polymarket)(con, str(truth))
    assert check.exact and check.warehouse_rows == check.truth_rows > 0, check


def sql(db: Path, text: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(db)) as con:
        return con.execute(text, list(params)).fetchall()


def delete_rows(db: Path, wallet: str, n: int) -> None:
    picked = "SELECT trade_key FROM trades WHERE wallet_address = ? ORDER BY trade_key LIMIT ?"
    sql(db, f"DELETE FROM trades WHERE wallet_address = ? AND trade_key IN ({picked})", wallet, wallet, n)


def checkpoints(db: Path) -> dict[str, tuple]:
    rows = sql(db, "SELECT wallet_address, run_id, status, trades_loaded FROM checkpoints")
    return {w: tuple(rest) for w, *rest in rows}


def verdicts(doc: dict) -> dict[str, str]:
    return {m["wallet"]: m["verdict"] for m in doc["mismatches"]}


@pytest.fixture(scope="module")
def sim():
    with run_simulator(SimConfig(seed=11, size=6, whale_trades=3_000, tier="pro")) as running:
        yield running


@pytest.fixture(scope="module")
def loaded(sim, tmp_path_factory) -> Path:
    """Every wallet of the universe back-filled once; each test works on its own copy."""
    return run_all(sim, tmp_path_factory.mktemp("loaded"), sim.state.universe.wallets())


@pytest.fixture
def db(loaded: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "w.duckdb"
    shutil.copy(loaded, copy)
    return copy


def busy(sim) -> tuple[str, str]:
    """A wallet of several parts and one of one page."""
    universe = sim.state.universe
    counts = {w: universe.count(w) for w in universe.wallets()}
    big = max(counts, key=counts.__getitem__)
    small = next(w for w, n in sorted(counts.items()) if 10 < n < 1000)
    return big, small


def test_a_verified_warehouse_exits_0_and_counts_each_wallet_once_with_the_api(sim, db):
    before = sim.state.stats.requests
    code, doc = verify(sim, db)
    wallets = len(sim.state.universe.wallets())
    assert code == EXIT_OK, doc
    summary = (doc["checked"], doc["ok"], doc["mismatched"], doc["api"], doc["complete"])
    assert summary == (wallets, wallets, 0, "dome", True)
    assert sim.state.stats.requests - before == wallets  # one limit=1 request each
    table = backfill(sim, db.parent, "verify", "--db", str(db))
    assert table.returncode == EXIT_OK and f"{wallets} ok, 0 mismatched; API counts: dome" in table.stderr


def test_rows_deleted_by_hand_are_found_and_requeue_repairs_them_exactly(sim, db):
    big, small = busy(sim)
    loaded_before = checkpoints(db)
    delete_rows(db, big, 7)
    delete_rows(db, small, 1)

    code, doc = verify(sim, db)
    assert code == EXIT_MISMATCHES
    assert verdicts(doc) == {big: "rows_missing", small: "rows_missing"}
    found = {m["wallet"]: m for m in doc["mismatches"]}
    assert found[big]["warehouse_rows"] == found[big]["trades_loaded"] - 7 == loaded_before[big][2] - 7

    others = {w: n for w, n in sim.state.stats.by_wallet.items() if w not in (big, small)}
    code, doc = verify(sim, db, "--requeue")
    assert code == EXIT_OK, doc
    assert sorted(doc["requeued"]) == sorted([big, small]) and doc["after_requeue"]["mismatched"] == 0
    after = checkpoints(db)
    assert {w for w in after if after[w][0] != loaded_before[w][0]} == {big, small}  # only they moved run
    assert all(after[w][0] == doc["run_id"] and after[w][1] == "complete" for w in (big, small))
    # the other wallets were counted (one request each), never walked again
    assert all(sim.state.stats.by_wallet[w] - n == 1 for w, n in others.items())
    exact(sim, db, sim.state.universe.wallets())
    assert verify(sim, db)[0] == EXIT_OK


def test_an_in_progress_wallet_edited_to_complete_is_caught_without_the_api_and_requeue_completes_it(sim, tmp_path):
    big, _ = busy(sim)
    db = tmp_path / "w.duckdb"
    settings = Settings(dome_api_base_url=sim.base_url, dome_api_key="verify-test", dome_tier="pro", lookups=False)
    deps = bootstrap.embedded(settings, db=db)
    deps.warehouse.create_schema()
    deps.warehouse.add_traders([big])
    first = fetch(WalletTask(run_id="run-1", wallet=big), source=deps.source, store=deps.store,
                  publisher=RecordingPublisher(), clock=deps.clock, budget=budget(max_pages=1))  # fmt: skip
    load([first.file], warehouse=deps.warehouse, store=deps.store, clock=deps.clock)
    deps.warehouse.close()
    assert checkpoints(db)[big] == ("run-1", "in_progress", 1000)
    sql(db, "UPDATE checkpoints SET status = 'complete' WHERE wallet_address = ?", big)

    code, doc = verify(sim, db, "--no-api")
    assert code == EXIT_MISMATCHES and verdicts(doc) == {big: "not_merged"}
    [m] = doc["mismatches"]
    assert (m["trades_loaded"], m["warehouse_rows"], m["final_parts"], m["api_total"]) == (1000, 1000, 0, None)
    assert doc["api"] == "n/a: not asked (--no-api)"

    code, doc = verify(sim, db, "--requeue")
    assert code == EXIT_OK, doc
    assert checkpoints(db)[big] == (doc["run_id"], "complete", sim.state.universe.count(big))
    exact(sim, db, [big])


def test_a_wallet_emptied_and_marked_complete_with_zero_trades_is_caught_by_the_api_count(sim, db):
    """The seeds' 161 wallets: complete with zero trades. The warehouse agrees with itself; the API does not."""
    _, small = busy(sim)
    sql(db, "DELETE FROM trades WHERE wallet_address = ?", small)
    sql(db, "UPDATE checkpoints SET trades_loaded = 0 WHERE wallet_address = ?", small)
    code, doc = verify(sim, db)
    assert code == EXIT_MISMATCHES and verdicts(doc) == {small: "api_has_more"}
    [m] = doc["mismatches"]
    assert (m["trades_loaded"], m["warehouse_rows"], m["api_total"]) == (0, 0, sim.state.universe.count(small))
    code, doc = verify(sim, db, "--requeue")
    assert code == EXIT_OK and doc["requeued"] == [small]
    exact(sim, db, sim.state.universe.wallets())


def test_an_api_that_gained_trades_is_found_and_requeue_brings_the_wallets_up_to_date(tmp_path):
    with run_simulator(SimConfig(seed=12, size=6, whale_trades=2_000, tier="pro")) as sim:
        wallets = sim.state.universe.wallets()
        db = run_all(sim, tmp_path, wallets)
        universe = sim.state.universe
        before = {w: universe.count(w) for w in wallets}
        sim.state.advance(86_400)  # new fills, and late-indexed ones older than a wallet's newest
        gained = {w: universe.count(w) - n for w, n in before.items() if universe.count(w) != n}
        assert len(gained) >= 3

        code, doc = verify(sim, db)
        assert code == EXIT_MISMATCHES
        assert verdicts(doc) == dict.fromkeys(gained, "api_has_more")
        assert {m["wallet"]: m["api_total"] - m["warehouse_rows"] for m in doc["mismatches"]} == gained

        code, doc = verify(sim, db, "--requeue")
        assert code == EXIT_OK, doc
        assert sorted(doc["requeued"]) == sorted(gained)
        exact(sim, db, wallets)


def test_the_data_api_source_reports_no_total_and_still_repairs_lost_rows(sim, tmp_path):
    universe = sim.state.universe
    wallets = [w for w in universe.wallets() if 0 < universe.count(w) < 1500][:3]
    db = run_all(sim, tmp_path, wallets, source="polymarket")
    delete_rows(db, wallets[0], 2)
    code, doc = verify(sim, db, source="polymarket")
    assert code == EXIT_MISMATCHES and verdicts(doc) == {wallets[0]: "rows_missing"}
    assert doc["api"] == "n/a: the Data API gives no total"
    code, doc = verify(sim, db, "--requeue", source="polymarket")
    assert code == EXIT_OK, doc
    exact(sim, db, wallets, source="polymarket")
    table = backfill(sim, db.parent, "verify", "--db", str(db), "--source", "polymarket")
    assert table.returncode == EXIT_OK and "API counts: n/a" in table.stderr


def test_a_mistyped_db_is_a_usage_error_and_creates_nothing(sim, tmp_path):
    done = backfill(sim, tmp_path, "verify", "--db", str(tmp_path / "nope.duckdb"))
    assert done.returncode == EXIT_USAGE and not (tmp_path / "nope.duckdb").exists()
