"""A scheduler-style back-fill over real HTTP and the Pub/Sub emulator's push delivery, against a
simulator that answers some requests with 5xx, 429 and cut bodies: BigQuery ends up equal to the
simulator's ground truth row for row, and the whale is paged in many small, bounded push requests."""

from __future__ import annotations

import pytest

from emulators.dome.config import SimConfig
from shared.resources import load_resources
from tests.e2e.pipeline import assert_exact, fetcher_parts, ground_truth, post, settled, status, wait_for

pytestmark = [pytest.mark.emulators, pytest.mark.slow]

WHALE_TRADES = 4_000
FAULTS = {"error_5xx_rate": 0.1, "burst_429_rate": 0.05, "truncated_rate": 0.05}


@pytest.fixture(scope="module")
def cloud(start_cloud):
    return start_cloud(SimConfig(seed=11, size=8, whale_trades=WHALE_TRADES, tier="dev", **FAULTS))


@pytest.fixture(scope="module")
def backfill(cloud):
    """What Cloud Scheduler does: POST /dispatch (twice, since it delivers at least once), then wait."""
    first = post(cloud, "/dispatch", {"mode": "backfill"})
    at_once = post(cloud, "/dispatch", {"mode": "backfill"})
    done = wait_for(cloud, "every wallet complete", settled(cloud, complete=len(cloud.wallets)))
    return {"first": first, "at_once": at_once, "done": done}


@pytest.fixture(scope="module")
def truth(cloud, tmp_path_factory):
    return ground_truth(cloud, cloud.wallets, tmp_path_factory.mktemp("truth"))


def test_a_scheduled_backfill_lands_every_trade_exactly_once_despite_api_faults(cloud, backfill, truth):
    assert backfill["first"]["published"] == len(cloud.wallets)
    assert_exact(cloud, truth)
    assert backfill["done"]["trades"] == sum(truth.values())
    assert backfill["done"]["by_status"] == {"complete": len(cloud.wallets)}
    faults = cloud.sim.state.stats.faults
    assert sum(faults.values()) > 0, "the simulator injected no fault: the retry paths did not run"


def test_a_second_dispatch_publishes_nothing_while_wallets_are_leased_or_complete(cloud, backfill):
    assert backfill["at_once"]["published"] == 0  # all leased by the first call
    before = status(cloud)
    after_completion = post(cloud, "/dispatch", {"mode": "backfill"})
    assert after_completion["published"] == 0  # all complete
    assert status(cloud)["trades"] == before["trades"]


def test_the_whale_is_fetched_across_many_push_requests_each_within_its_page_budget(cloud, backfill):
    whale = cloud.sim.state.universe.special["whale"]
    run_id = backfill["first"]["run_id"]
    parts = [p for p in fetcher_parts(cloud, whale) if p["run_id"] == run_id]
    by_part = {p["part"]: p for p in parts}
    max_pages = int(cloud.config.service_env["FETCH_MAX_PAGES"])

    assert sorted(by_part) == list(range(len(by_part))) and len(by_part) >= 4, sorted(by_part)
    assert all(p["pages"] <= max_pages for p in parts), "a push request ran past FETCH_MAX_PAGES"
    # Each push's handler time (logged by the fetcher) stays inside the wallets-push ack deadline.
    ack = next(s.ack_deadline_seconds for s in load_resources().subscriptions if s.name == "wallets-push")
    assert all(0 <= p["seconds"] < ack for p in parts), [p["seconds"] for p in parts]
    assert [n for n, p in sorted(by_part.items()) if p["final"]] == [max(by_part)]
    assert sum(p["rows"] for p in by_part.values()) == WHALE_TRADES
    # One part file per part (names are deterministic, so a redelivered part lands on its own name).
    blobs = list(cloud.stack.storage_client().list_blobs(cloud.bucket, prefix=f"runs/{run_id}/{whale}/"))
    assert len(blobs) == len(by_part)
    # Every part after the first resumed from a cursor: continuations, not one long walk.
    assert cloud.sim.state.stats.as_json()["by_wallet_cursor"][whale]["with_cursor"] >= len(by_part) - 1
