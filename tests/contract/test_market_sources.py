"""The MarketSource port on both APIs — Dome's /polymarket/markets and /events, Gamma's /markets/keyset
and /events — against the simulator, checked by the ground-truth oracle (emulators/context_truth.py):
every served market and event, mapped right, raw kept whole; unknown ids absent; the poison id
isolated by the lookup handler and sent on alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from emulators.context_truth import verify_context
from emulators.dome.config import SimConfig
from emulators.dome.server import RunningSimulator, run_simulator
from emulators.dome.truth import event_lines, market_lines
from shared import bootstrap
from shared.adapters.local.files import LocalObjectStore
from shared.core.errors import SourceUnavailable
from shared.core.messages import LookupTask, decode
from shared.handlers.lookups import fetch_lookup
from shared.ports.publisher import Topic
from shared.settings import Settings
from tests.embedded.conftest import RecordingPublisher
from tests.fakes import FakeClock

SOURCES = ("dome", "polymarket")


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with run_simulator(SimConfig(seed=7, size=40, whale_trades=3_000, tier="pro")) as running:
        yield running


def market_source(sim: RunningSimulator, source: str):
    settings = Settings(
        trade_source=source,
        dome_api_base_url=sim.base_url,
        dome_api_key="k",
        dome_tier="pro",
        polymarket_api_base_url=sim.data_api_url,
        gamma_api_base_url=sim.gamma_url,
    )
    return bootstrap.make_market_source(settings, bootstrap.make_source(settings))


@pytest.mark.parametrize("source", SOURCES)
def test_every_served_market_and_event_comes_back_mapped_and_whole(sim, source):
    truth_markets = list(market_lines(sim.state.universe, source))
    truth_events = list(event_lines(sim.state.universe, source))
    client = market_source(sim, source)
    ids = [line.get("condition_id") or line.get("conditionId") for line in truth_markets if not line.get("fails")]
    fetched = "2026-03-01T12:00:00.000000Z"
    rows = [row for i in range(0, len(ids), 100) for row in client.markets(ids[i : i + 100], fetched)]
    slugs = sorted({r["event_slug"] for r in rows if r["event_slug"]})
    events = [row for i in range(0, len(slugs), 100) for row in client.events(slugs[i : i + 100], fetched)]
    unknown = {line["condition_id"] for line in truth_markets if line.get("not_found")}
    check = verify_context(
        markets=rows,
        events=events,
        misses=[("markets", k) for k in unknown],
        letters=[],
        market_truth=[line for line in truth_markets if not line.get("fails")],
        event_truth=truth_events,
        source=source,
    )
    assert check.markets.exact and check.events.exact, (check.markets, check.events)
    assert check.markets.expected > 100 and check.events.expected > 20  # several batches, both winning_side shapes
    assert not unknown & {r["condition_id"] for r in rows}
    assert {r["winning_side_label"] for r in rows if r["status"] == "closed"} >= {"Yes", "No"}


@pytest.mark.parametrize("source", SOURCES)
def test_a_batch_holding_the_failing_id_is_split_and_the_id_goes_on_alone(sim, source, tmp_path):
    universe = sim.state.universe
    poison = universe.catalog.markets[universe.catalog.poison].condition_id
    good = [m.condition_id for m in universe.markets if m.condition_id != poison][:20]
    keys = (*good[:10], poison, *good[10:])
    publisher, store, clock = (
        RecordingPublisher(),
        LocalObjectStore(tmp_path),
        FakeClock(wall=datetime(2026, 3, 1, tzinfo=UTC)),
    )
    client = market_source(sim, source)
    task = LookupTask(kind="markets", run_id="r1", keys=keys, source=source)
    ready = fetch_lookup(task, source=client, store=store, publisher=publisher, clock=clock)
    assert ready is not None and set(ready.keys) == set(good) and ready.rows == len(good) and ready.missing == ()
    (alone,) = [decode(LookupTask, d) for d in publisher.on(Topic.WALLETS)]
    assert alone.keys == (poison,)
    with pytest.raises(SourceUnavailable, match=poison):
        fetch_lookup(alone, source=client, store=store, publisher=publisher, clock=clock)
