"""`backfill run --warehouse bigquery`: the embedded runner (local bus, no Pub/Sub) into BigQuery, the
seeds' single-job shape, against the simulator (faults on) and the BigQuery and GCS emulators; row for
row against the ground truth, with part files in a bucket and in a local folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from emulators.dome.config import SimConfig
from emulators.dome.server import run_simulator
from shared import bootstrap
from shared.adapters.sql.dialect import Sql
from shared.bootstrap import BigQueryTarget
from tests.gcp.pipeline import verify_bigquery

pytestmark = [pytest.mark.emulators, pytest.mark.slow]


def backfill(args: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli.main", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("parts", ["bucket", "local folder"])
def test_a_cli_run_into_bigquery_is_exact_and_a_second_run_fetches_nothing(emulator_stack, tmp_path, parts):
    faults = dict(error_5xx_rate=0.03, burst_429_rate=0.01, truncated_rate=0.01)
    with run_simulator(SimConfig(seed=11, size=6, whale_trades=2_500, tier="dev", **faults)) as sim:
        universe = sim.state.universe
        wallets = universe.wallets()
        (tmp_path / "wallets.txt").write_text("\n".join(wallets) + "\n")
        truth = tmp_path / "truth.jsonl"
        universe.export_ground_truth(truth)
        dataset = f"cli_{uuid.uuid4().hex[:8]}"
        where = ["--warehouse", "bigquery", "--project", emulator_stack.project, "--dataset", dataset]
        if parts == "bucket":
            bucket = f"b-{uuid.uuid4().hex[:12]}"
            emulator_stack.storage_client().create_bucket(bucket)
            where += ["--bucket", f"gs://{bucket}"]
        env = {
            **os.environ,
            **emulator_stack.env(),
            "DOME_API_BASE_URL": sim.base_url,
            "DOME_API_KEY": "k",
            "DOME_TIER": "dev",
            "HTTP_MAX_ATTEMPTS": "4",
            "LOOKUPS": "false",  # trades only: markets into BigQuery are tests/e2e/test_markets.py's
        }
        env.pop("PUBSUB_EMULATOR_HOST", None)  # no Pub/Sub in this shape: the bus is in the process
        first = backfill(["run", "--wallets", "wallets.txt", *where, "--workers", "4"], env, tmp_path)
        assert first.returncode == 0, first.stderr[-3000:]
        assert "summary:" in first.stderr and f"{len(wallets)} complete" in first.stderr
        requests_after_first = sim.state.stats.requests
        again = backfill(["run", "--wallets", "wallets.txt", *where], env, tmp_path)
        assert again.returncode == 0, again.stderr[-3000:]
        assert sim.state.stats.requests == requests_after_first  # complete wallets are never asked again
        status = backfill(["status", *where[:6]], env, tmp_path)
        assert status.returncode == 0 and f"{sum(universe.count(w) for w in wallets):,}" in status.stdout

    target = BigQueryTarget(
        emulator_stack.project, dataset, f"{dataset}_staging", endpoint=emulator_stack.bigquery_endpoint
    )
    warehouse = bootstrap.bigquery_warehouse(target)
    try:
        check = verify_bigquery(warehouse, str(truth), wallets)
    finally:
        warehouse.close()
    assert check.exact and check.warehouse_rows == check.truth_rows > 2_500, check
    assert (parts == "local folder") == (tmp_path / f"backfill-parts-{dataset}").is_dir()


def test_verify_on_bigquery_finds_rows_deleted_by_hand_and_requeue_repairs_them_exactly(emulator_stack, tmp_path):
    """`backfill verify --warehouse bigquery`: the same reconciliation over BigQuery (issue 14)."""
    with run_simulator(SimConfig(seed=13, size=3, whale_trades=1_200, tier="pro")) as sim:
        universe = sim.state.universe
        wallets = universe.wallets()
        (tmp_path / "wallets.txt").write_text("\n".join(wallets) + "\n")
        dataset = f"verify_{uuid.uuid4().hex[:8]}"
        where = ["--warehouse", "bigquery", "--project", emulator_stack.project, "--dataset", dataset]
        env = {**os.environ, **emulator_stack.env(), "DOME_API_BASE_URL": sim.base_url, "DOME_API_KEY": "k",
               "DOME_TIER": "pro", "LOOKUPS": "false"}  # fmt: skip
        env.pop("PUBSUB_EMULATOR_HOST", None)
        assert backfill(["run", "--wallets", "wallets.txt", *where], env, tmp_path).returncode == 0
        target = BigQueryTarget(
            emulator_stack.project, dataset, f"{dataset}_staging", endpoint=emulator_stack.bigquery_endpoint
        )
        whale = max(wallets, key=universe.count)
        warehouse = bootstrap.bigquery_warehouse(target)
        try:
            trades = f"`{emulator_stack.project}.{dataset}.trades`"
            picked = f"SELECT trade_key FROM {trades} WHERE wallet_address = '{whale}' ORDER BY trade_key LIMIT 3"
            warehouse.execute(Sql(f"DELETE FROM {trades} WHERE wallet_address = '{whale}' AND trade_key IN ({picked})"))
        finally:
            warehouse.close()

        found = backfill(["verify", *where, "--json"], env, tmp_path)
        assert found.returncode == 4, found.stderr[-3000:]
        [mismatch] = json.loads(found.stdout)["mismatches"]
        assert (mismatch["wallet"], mismatch["verdict"]) == (whale, "rows_missing")
        assert mismatch["trades_loaded"] - mismatch["warehouse_rows"] == 3
        repaired = backfill(["verify", *where, "--requeue", "--json"], env, tmp_path)
        assert repaired.returncode == 0, repaired.stderr[-3000:]
        assert json.loads(repaired.stdout)["requeued"] == [whale]
        truth = tmp_path / "truth.jsonl"
        universe.export_ground_truth(truth)

    warehouse = bootstrap.bigquery_warehouse(target)
    try:
        check = verify_bigquery(warehouse, str(truth), wallets)
    finally:
        warehouse.close()
    assert check.exact and check.warehouse_rows == check.truth_rows, check
