"""The daily sync through the services: after a back-fill, the simulated world moves a day on (new
fills, fills indexed late, a market resolves); the sync's dispatch call brings BigQuery's trades,
markets and events level with the new ground truth — but for the one fill indexed three days late,
beyond the 1-day lookback (the lookback's documented limit) — for about a request per unchanged wallet."""

from __future__ import annotations

import pytest

from emulators.context_truth import verify_context
from emulators.dome.config import SimConfig
from emulators.dome.truth import event_lines, market_lines
from tests.e2e.pipeline import bigquery_trades, difference, ground_truth, post, settled, status, wait_for
from tests.e2e.test_markets import table_rows

pytestmark = [pytest.mark.emulators, pytest.mark.slow]
DAY = 86_400


def drained(cloud):
    """Dispatch as the 30-minute schedule would until a call sends nothing and nothing waits."""

    def check():
        answer = post(cloud, "/dispatch", {"mode": "backfill"})
        if answer["published"] or answer["lookups"] or cloud.backlog("wallets-push") or cloud.backlog("files-push"):
            return None
        return status(cloud)

    return check


def test_the_sync_call_brings_trades_markets_and_events_level_with_a_day_later(start_cloud, tmp_path):
    cloud = start_cloud(SimConfig(seed=3, size=8, whale_trades=3_000, tier="pro"), LOOKUPS="true", FETCH_MAX_PAGES="2")
    n = len(cloud.wallets)
    post(cloud, "/dispatch", {"mode": "backfill"})
    wait_for(cloud, "the back-fill", settled(cloud, complete=n))
    wait_for(cloud, "markets and events", drained(cloud), interval=1.0)

    grown = cloud.sim.state.advance(DAY)
    before = dict(cloud.sim.state.stats.by_wallet)
    answer = post(cloud, "/dispatch", {"mode": "sync"})  # the daily call
    assert answer["published"] == n and answer["lookups"] >= 1
    done = wait_for(cloud, "the sync", drained(cloud), interval=1.0)
    asked = {w: cloud.sim.state.stats.by_wallet.get(w, 0) - before.get(w, 0) for w in cloud.wallets}

    truth = ground_truth(cloud, cloud.wallets, tmp_path)
    outside = next(w for w, ts in grown["late_fills"].items() if len(ts) == 1)
    have = bigquery_trades(cloud)
    assert difference(have, truth) == {"missing": 1, "extra": 0, "duplicated": 0}
    [(missed, _)] = [(row, k) for row, k in (truth - have).items()]
    assert missed[0] == outside  # the fill beyond the lookback, and nothing else
    unchanged = [w for w in cloud.wallets if w not in grown["new_fills"] and w not in grown["late_fills"]]
    assert unchanged and all(asked[w] == 1 for w in unchanged), asked
    assert done["by_status"] == {"complete": n} and done["sync"]["oldest_sync"] is not None

    universe = cloud.sim.state.universe
    check = verify_context(
        markets=table_rows(cloud, "markets"),
        events=table_rows(cloud, "events"),
        misses=[(r["kind"], r["key"]) for r in table_rows(cloud, "lookup_misses")],
        letters=[type("L", (), {"data": r["data"]}) for r in table_rows(cloud, "dead_letters")],
        market_truth=list(market_lines(universe, "dome")),
        event_truth=list(event_lines(universe, "dome")),
        source="dome",
    )
    assert grown["resolved"] and check.exact, (check.markets, check.events)
