"""Markets and events through the services, end to end: the dispatcher schedules the lookups of what
the loaded trades name, the fetchers page the markets APIs (Dome's, or Gamma for the Data API), the
loader MERGEs them; BigQuery's `markets` and `events` equal the simulator's ground truth, the unknown
id is recorded as a miss, and the id whose lookup always fails is dead-lettered by Pub/Sub alone."""

from __future__ import annotations

import pytest

from emulators.context_truth import verify_context
from emulators.dome.config import SimConfig
from emulators.dome.truth import event_lines, market_lines
from tests.e2e.pipeline import post, settled, status, wait_for

pytestmark = [pytest.mark.emulators, pytest.mark.slow]


def table_rows(cloud, table: str) -> list[dict]:
    client = cloud.stack.bigquery_client()
    try:
        sql = f"SELECT * FROM `{cloud.config.project}.{cloud.config.dataset}.{table}`"
        return [dict(row.items()) for row in client.query(sql).result()]
    finally:
        client.close()


@pytest.mark.parametrize("source", ["dome", "polymarket"])
def test_the_services_fill_markets_and_events_exactly(start_cloud, source):
    cloud = start_cloud(SimConfig(seed=7, size=6, whale_trades=1_500, tier="pro"), source=source, LOOKUPS="true")
    post(cloud, "/dispatch", {"mode": "backfill"})
    wait_for(cloud, "every wallet complete", settled(cloud, complete=len(cloud.wallets)))

    def context_settled():
        """Dispatch again (as the scheduler would) until a call finds no lookup to send and nothing waits."""
        answer = post(cloud, "/dispatch", {"mode": "backfill"})
        if answer["lookups"] or cloud.backlog("wallets-push") or cloud.backlog("files-push"):
            return None
        now = status(cloud)
        return now if now["markets"]["events"] and now["dead_letters"] >= 1 else None

    done = wait_for(cloud, "markets and events loaded", context_settled, interval=1.0)
    universe = cloud.sim.state.universe
    check = verify_context(
        markets=table_rows(cloud, "markets"),
        events=table_rows(cloud, "events"),
        misses=[(r["kind"], r["key"]) for r in table_rows(cloud, "lookup_misses")],
        letters=[type("L", (), {"data": r["data"]}) for r in table_rows(cloud, "dead_letters")],
        market_truth=list(market_lines(universe, source)),
        event_truth=list(event_lines(universe, source)),
        source=source,
    )
    assert check.exact, (check.markets, check.events, check.failing_dead_lettered)
    assert done["markets"]["markets"] == check.markets.expected and done["markets"]["not_found"] >= 1
    assert done["dead_letters"] == 1  # the failing market alone: its batch loaded without it
