"""The markets and events lookups' contract on both warehouses: which keys are due, atomic claims,
one transaction that merges the rows and records the misses, and the condition ids trades name."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.core.chain import Segment
from shared.core.messages import LookupReady
from tests.contract.test_warehouse import W1, W2, complete, rows
from tests.contract.twins import TWINS, make_twin, now

C1, C2, C3 = ("0x" + c * 64 for c in "abc")
HOUR = timedelta(hours=1)


@pytest.fixture(params=TWINS)
def twin(request, tmp_path):
    made = make_twin(request, tmp_path)
    yield made
    made.warehouse.close()


def market(condition_id: str, *, status: str = "open", fetched_at: str = "2026-03-01T11:00:00.000000Z", **kw):
    raw = {"condition_id": condition_id, "status": status, **kw}
    return {
        "condition_id": condition_id,
        "market_slug": f"m-{condition_id[2:6]}",
        "event_slug": kw.get("event_slug"),
        "title": kw.get("title", "Will it?"),
        "status": status,
        "start_time": "2026-01-01T00:00:00Z",
        "end_time": "2026-06-01T00:00:00Z",
        "completed_time": None,
        "close_time": None,
        "tags": json.dumps(["Sports"]),
        "volume_total": 12.5,
        "side_a_token_id": "1" * 77,
        "side_a_label": "Yes",
        "side_b_token_id": "2" * 77,
        "side_b_label": "No",
        "winning_side_label": kw.get("winner"),
        "winning_token_id": "1" * 77 if kw.get("winner") else None,
        "source": "dome",
        "fetched_at": fetched_at,
        "raw": json.dumps(raw),
    }


def lookup(twin, kind, keys, found, missing=(), name=None) -> LookupReady:
    name = name or f"lookups/r1/{kind}/{abs(hash((tuple(keys), tuple(r['fetched_at'] for r in found))))}.jsonl"
    with twin.store.open_writer(name) as out:
        for row in found:
            out.write(json.dumps(row) + "\n")
    return LookupReady(
        kind=kind, run_id="r1", uri=twin.store.uri(name), rows=len(found), keys=tuple(keys), missing=tuple(missing)
    )


def due(twin, kind="markets", at=None, refresh=6 * HOUR, miss=timedelta(days=1)):
    at = at or now()
    return twin.warehouse.lookup_candidates(kind, at, at - refresh, at - miss, 1000)


def trade_rows_naming(twin, *condition_ids):
    """Trades whose rows name these condition ids, committed as the loader does."""
    out = []
    for i, condition_id in enumerate(condition_ids):
        out += rows(W1, 10 * i, 10 * i + 3, condition_id=condition_id)
    f = twin.part(W1, "r1", 0, out, final=True)
    twin.warehouse.commit_batch([f], [Segment.of(f)], [complete(W1)], now())


def test_the_condition_ids_trades_name_are_due_until_their_market_is_loaded(twin):
    trade_rows_naming(twin, C1, C2)
    assert due(twin) == [C1, C2]
    twin.warehouse.commit_lookups("markets", [lookup(twin, "markets", [C1, C2], [market(C1)], missing=[C2])], now())
    assert due(twin) == []  # C1 is fresh, C2 a recent miss
    assert due(twin, at=now() + 7 * HOUR) == [C1]  # unresolved and stale: refreshed; the miss waits a day
    assert due(twin, at=now() + 25 * HOUR) == [C1, C2]
    status = twin.warehouse.status(now())
    assert (status.condition_ids, status.markets, status.unresolved_markets, status.markets_not_found) == (2, 1, 1, 1)


def test_a_resolved_market_is_never_refreshed(twin):
    trade_rows_naming(twin, C1)
    twin.warehouse.commit_lookups(
        "markets", [lookup(twin, "markets", [C1], [market(C1, status="closed", winner="Yes")])], now()
    )
    assert due(twin, at=now() + timedelta(days=30)) == []


def test_a_newer_fetch_replaces_an_older_one_and_an_older_one_changes_nothing(twin):
    trade_rows_naming(twin, C1)
    early = market(C1, fetched_at="2026-03-01T10:00:00.000000Z")
    late = market(C1, status="closed", winner="No", fetched_at="2026-03-01T11:30:00.000000Z")
    twin.warehouse.commit_lookups("markets", [lookup(twin, "markets", [C1], [late])], now())
    twin.warehouse.commit_lookups(
        "markets", [lookup(twin, "markets", [C1], [early], name="lookups/r1/markets/early.jsonl")], now()
    )
    (row,) = twin.query(f"SELECT status, winning_side_label, raw FROM {twin.table('markets')}")
    assert (row["status"], row["winning_side_label"], json.loads(row["raw"])["status"]) == ("closed", "No", "closed")


def test_a_miss_found_later_is_no_longer_a_miss(twin):
    trade_rows_naming(twin, C1)
    twin.warehouse.commit_lookups("markets", [lookup(twin, "markets", [C1], [], missing=[C1])], now())
    assert twin.warehouse.status(now()).markets_not_found == 1
    twin.warehouse.commit_lookups(
        "markets", [lookup(twin, "markets", [C1], [market(C1)], name="lookups/r1/markets/b.jsonl")], now()
    )
    status = twin.warehouse.status(now())
    assert (status.markets, status.markets_not_found) == (1, 0)


def test_claims_are_atomic_and_end_when_the_lookup_is_answered(twin):
    trade_rows_naming(twin, C1, C2, C3)
    keys = due(twin)
    first = twin.warehouse.claim_lookups("markets", keys, now(), now() + HOUR, "t1")
    second = twin.warehouse.claim_lookups("markets", keys, now(), now() + HOUR, "t2")
    assert (first, second) == ({C1, C2, C3}, set())
    assert due(twin) == []  # in flight
    later = now() + timedelta(seconds=5)
    answer = [market(C1, fetched_at="2026-03-01T12:00:03.000000Z")]
    twin.warehouse.commit_lookups("markets", [lookup(twin, "markets", [C1], answer)], later)
    # answered: C1's lease is over (with refresh 0 it is due again at once), C2 and C3 still in flight
    assert due(twin, at=later, refresh=timedelta(0)) == [C1]
    assert twin.warehouse.claim_lookups("markets", [C1, C2], later, later + HOUR, "t3") == {C1}


def test_events_are_due_for_the_slugs_the_markets_name(twin):
    trade_rows_naming(twin, C1, C2)
    found = [market(C1, event_slug="e-one"), market(C2, event_slug="e-two")]
    twin.warehouse.commit_lookups("markets", [lookup(twin, "markets", [C1, C2], found)], now())
    assert due(twin, "events") == ["e-one", "e-two"]
    event = {
        "event_slug": "e-one", "title": "One", "subtitle": None, "status": "closed", "start_time": None,
        "end_time": None, "volume": 1.0, "tags": "[]", "market_count": 1, "source": "dome",
        "fetched_at": "2026-03-01T11:00:00.000000Z", "raw": "{}",
    }  # fmt: skip
    twin.warehouse.commit_lookups(
        "events", [lookup(twin, "events", ["e-one", "e-two"], [event], missing=["e-two"])], now()
    )
    assert due(twin, "events") == []
    assert (twin.warehouse.status(now()).events, twin.warehouse.status(now()).events_not_found) == (1, 1)


def test_market_refs_hold_each_traded_condition_id_once(twin):
    trade_rows_naming(twin, C1, C2)
    f = twin.part(W2, "r1", 0, rows(W2, 0, 4, condition_id=C1), final=True)
    twin.warehouse.commit_batch([f], [Segment.of(f)], [complete(W2)], now())
    refs = twin.query(f"SELECT condition_id FROM {twin.table('market_refs')} ORDER BY condition_id")
    assert [r["condition_id"] for r in refs] == [C1, C2]
