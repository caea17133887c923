"""The services with TRADE_SOURCE=polymarket: the same push pipeline back-fills the simulated Data API v2
(identical fills straddling a page boundary, rows without a transaction hash, combo rows, 429s) into
the BigQuery emulator, and `trades` equals that source's ground truth row for row."""

from __future__ import annotations

import duckdb
import pytest

from emulators.dome.config import SimConfig
from emulators.truth import verify_polymarket
from tests.e2e.pipeline import post, settled, wait_for

pytestmark = [pytest.mark.emulators, pytest.mark.slow]

FAULTS = {"error_5xx_rate": 0.05, "unavailable_rate": 0.03, "html_rate": 0.02}


@pytest.fixture(scope="module")
def cloud(start_cloud):
    return start_cloud(
        SimConfig(seed=21, size=4, whale_trades=2_500, data_api_per_10s=200, **FAULTS),
        source="polymarket",
        FETCH_MAX_PAGES="1",
    )


def test_a_dispatch_on_the_data_api_lands_every_row_exactly_once(cloud, tmp_path):
    universe = cloud.sim.state.universe
    assert set(universe.data_api_special.values()) <= set(cloud.wallets)  # straddle, combo, no_tx_hash, ...
    first = post(cloud, "/dispatch", {"mode": "backfill"})
    assert first["published"] == len(cloud.wallets)
    done = wait_for(cloud, "every wallet complete", settled(cloud, complete=len(cloud.wallets)))

    truth = tmp_path / "truth.jsonl"
    counts = universe.export_ground_truth(truth, source="polymarket", wallets=cloud.wallets)
    client = cloud.stack.bigquery_client()
    try:
        table = f"`{cloud.config.project}.{cloud.config.dataset}.trades`"
        arrow = client.query(f"SELECT * FROM {table}").result(page_size=50_000).to_arrow(create_bqstorage_client=False)
    finally:
        client.close()
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("bq_trades", arrow)
        con.execute("CREATE TABLE trades AS SELECT * FROM bq_trades")
        sources = con.execute("SELECT DISTINCT source FROM trades").fetchall()
        check = verify_polymarket(con, str(truth), cloud.wallets)
    assert (check.duplicates, check.missing, check.extra) == (0, 0, 0), check
    assert check.warehouse_rows == sum(counts.values()) == done["trades"]
    assert sources == [("polymarket",)]
    assert sum(cloud.sim.state.stats.faults.values()) > 0, "no fault was served: the retry paths did not run"
