"""The simulator's markets APIs: Dome's /markets and /events, Gamma's /markets/keyset and /events, driven
through HTTP (TestClient), checked against the catalogue, the edge cases and the ground-truth export."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from emulators.dome.app import create_app
from emulators.dome.config import SimConfig
from emulators.dome.universe import Universe

WHALE = 3_000
AUTH = {"Authorization": "Bearer test-key"}
MARKETS, EVENTS = "/v1/polymarket/markets", "/v1/polymarket/events"
KEYSET, GAMMA_EVENTS = "/gamma/markets/keyset", "/gamma/events"
DOME_MARKET_FIELDS = (
    "market_slug",
    "event_slug",
    "condition_id",
    "title",
    "start_time",
    "end_time",
    "completed_time",
    "close_time",
    "game_start_time",
    "tags",
    "volume_1_week",
    "volume_1_month",
    "volume_1_year",
    "volume_total",
    "resolution_source",
    "image",
    "description",
    "negative_risk_id",
    "side_a",
    "side_b",
    "winning_side",
    "status",
    "extra_fields",
)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def make_client() -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(SimConfig(whale_trades=WHALE, **overrides)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Any) -> TestClient:
    return make_client()


@pytest.fixture(scope="module")
def universe() -> Universe:
    return Universe(whale_trades=WHALE)


def dome(
    client: TestClient, path: str = MARKETS, headers: dict[str, str] | None = AUTH, **params: Any
) -> httpx.Response:
    return client.get(path, params=params, headers=headers)


def walk_dome(client: TestClient, path: str = MARKETS, **params: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """Every row of a Dome /markets or /events query, following pagination_key; also each pagination."""
    rows_key = "markets" if path == MARKETS else "events"
    rows, pages, key = [], [], None
    while True:
        response = dome(client, path, **params, **({"pagination_key": key} if key else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body[rows_key]
        pages.append(body["pagination"])
        if not body["pagination"]["has_more"]:
            assert "pagination_key" not in body["pagination"]
            return rows, pages
        key = body["pagination"]["pagination_key"]
        assert len(pages) < 100


def walk_gamma(client: TestClient, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every market of a /markets/keyset query, following next_cursor; also the number of pages."""
    rows, pages, cursor = [], 0, None
    while True:
        response = client.get(KEYSET, params={**params, **({"after_cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        rows, pages = rows + body["markets"], pages + 1
        cursor = body.get("next_cursor")
        if cursor is None:
            assert "next_cursor" not in body
            return rows, pages
        assert pages < 100


def served(universe: Universe) -> list[str]:
    cat = universe.catalog
    return [m.condition_id for m in universe.markets if cat.served(m)]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# The catalogue and its edges


def test_markets_come_in_events_and_dome_lacks_the_single_market_ones(universe: Universe) -> None:
    cat = universe.catalog
    sizes = [len(e.members) for e in cat.events.values()]
    assert len(universe.markets) == 120 and sum(sizes) == 120
    assert sum(1 for n in sizes if n >= 2) >= 20 and max(sizes) == 4
    singles = [m for m in universe.markets if m.kind == "single"]
    assert len(singles) >= 3 and all(m.event_slug == m.slug for m in singles)
    assert {m.condition_id for m in singles} == set(universe.market_edges["event_slug_null"])
    assert all(cat.dome_event(m) is None for m in singles)
    assert all(cat.dome_event(m) == m.event_slug for m in universe.markets if m.kind != "single")


def test_the_default_universe_trades_every_market_edge() -> None:
    """A client fetches markets for the ids its trades name: each edge must be named by some wallet
    other than the whale (combos: by the Data API's combo wallet)."""
    u = Universe(seed=7, size=40, whale_trades=WHALE)
    whale = u.special["whale"]
    assert set(served(u)) <= u.traded(whale)
    traded_by: dict[str, set[str]] = {}
    for wallet in u.wallets("polymarket"):
        if wallet != whale:
            for condition_id in u.traded(wallet):
                traded_by.setdefault(condition_id, set()).add(wallet)
    for name, ids in u.market_edges.items():
        hits = [c for c in ids if traded_by.get(c)]
        assert hits, name
        if name != "combo":
            assert any(traded_by[c] & set(u.wallets("dome")) for c in hits), name
    assert len(u.market_edges["closed"]) >= 10 and len(u.market_edges["open"]) >= 10
    assert set(u.market_edges["winning_side_string"]) | set(u.market_edges["winning_side_object"]) == set(
        u.market_edges["closed"]
    )
    assert all(len(c) == 64 for c in u.market_edges["combo"])
    unknown, poison = u.market_edges["unknown"][0], u.market_edges["poison"][0]
    assert unknown not in served(u) and poison not in served(u) and unknown != poison


# Dome /markets


def test_a_dome_market_has_the_documented_fields_and_types(client: TestClient, universe: Universe) -> None:
    rows, _ = walk_dome(client, limit=100)
    assert len(rows) == len(served(universe))
    for row in rows:
        assert tuple(row) == DOME_MARKET_FIELDS
        market = universe.catalog.by_condition[row["condition_id"]]
        assert row["market_slug"] == market.slug and row["title"] == market.title
        assert all(isinstance(row[k], int) for k in ("start_time", "end_time"))
        assert row["start_time"] < row["end_time"] and row["status"] in ("open", "closed")
        assert (row["status"] == "closed") == isinstance(row["completed_time"], int)
        assert row["close_time"] is None or isinstance(row["close_time"], int)
        if market.kind == "game":
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000", row["game_start_time"])
        else:
            assert row["game_start_time"] is None
        assert row["side_a"] == {"id": market.token_ids[0], "label": "Yes"}
        assert row["side_b"] == {"id": market.token_ids[1], "label": "No"}
        assert row["volume_1_week"] <= row["volume_1_month"] <= row["volume_1_year"] <= row["volume_total"]
        assert row["tags"] and row["extra_fields"] == {} and row["image"].startswith("https://")
    by_id = {r["condition_id"]: r for r in rows}
    edges = universe.market_edges
    assert all(by_id[c]["event_slug"] is None for c in edges["event_slug_null"])
    assert all(by_id[c]["description"] is None for c in edges["description_null"])
    assert all(by_id[c]["close_time"] is None for c in edges["close_time_null"])
    assert sum(r["negative_risk_id"] is not None for r in rows) >= 4


def test_both_winning_side_shapes_come_among_resolved_markets(client: TestClient, universe: Universe) -> None:
    closed, _ = walk_dome(client, status="closed", limit=100)
    assert {r["condition_id"] for r in closed} == set(universe.market_edges["closed"])
    shapes = {type(r["winning_side"]) for r in closed}
    assert shapes == {str, dict}
    for row in closed:
        index = universe.catalog.by_condition[row["condition_id"]].index
        side = row["winning_side"]
        if index % 2 == 0:
            assert side in ("Yes", "No")
        else:
            assert side in (row["side_a"], row["side_b"]) and set(side) == {"id", "label"}
    opened, _ = walk_dome(client, status="open", limit=100)
    assert opened and all(r["winning_side"] is None and r["completed_time"] is None for r in opened)


def test_batches_of_100_ids_and_listings_over_100_page_with_the_key(client: TestClient, universe: Universe) -> None:
    ids = served(universe)[:100]
    body = dome(client, condition_id=ids, limit=100).json()
    assert len(body["markets"]) == 100 and body["pagination"] == {"limit": 100, "total": 100, "has_more": False}
    volumes = [(-r["volume_total"], r["condition_id"]) for r in body["markets"]]
    assert volumes == sorted(volumes), "filtered: by volume, ties by condition id"
    small, pages = walk_dome(client, condition_id=ids, limit=30)
    assert small == body["markets"] and [len(p) for p in pages] and len(pages) == 4
    assert {p["total"] for p in pages} == {100}
    # No filter: more than 100 markets, newest start first, the second page needs the key.
    first = dome(client, limit=100).json()
    assert first["pagination"]["has_more"] is True and len(first["markets"]) == 100
    assert first["pagination"]["total"] == len(served(universe)) > 100
    everything, pages = walk_dome(client, limit=100)
    assert len(pages) == 2 and everything[:100] == first["markets"]
    starts = [(-r["start_time"], r["condition_id"]) for r in everything]
    assert starts == sorted(starts) and len({r["condition_id"] for r in everything}) == len(everything)


def test_filters_by_slug_event_tag_and_status(client: TestClient, universe: Universe) -> None:
    market = next(m for m in universe.markets if m.kind == "crypto")
    event = universe.catalog.events[market.event_slug]
    by_event, _ = walk_dome(client, event_slug=event.slug)
    assert {r["condition_id"] for r in by_event} == {m.condition_id for m in universe.catalog.event_markets(event)}
    by_slug = dome(client, market_slug=[market.slug, "no-such-market"]).json()["markets"]
    assert [r["condition_id"] for r in by_slug] == [market.condition_id]
    crypto, _ = walk_dome(client, tags="Crypto", limit=100)
    assert crypto and all("Crypto" in r["tags"] for r in crypto)
    both, _ = walk_dome(client, tags="Crypto", status="open", limit=100)
    assert {r["condition_id"] for r in both} == {r["condition_id"] for r in crypto if r["status"] == "open"}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"condition_id": [f"0x{i:064x}" for i in range(101)]}, "Invalid query parameters"),
        ({"event_slug": [f"e{i}" for i in range(101)]}, "Invalid query parameters"),
        ({"status": "resolved"}, "Invalid query parameters"),
        ({"offset": 10}, "Invalid query parameters"),
        ({"limit": 0}, "Invalid limit parameter"),
        ({"limit": 101}, "Invalid limit parameter"),
        ({"limit": "ten"}, "Invalid limit parameter"),
        ({"pagination_key": "not-a-key"}, "Invalid pagination key"),
    ],
)
def test_dome_markets_400s(client: TestClient, params: dict[str, Any], error: str) -> None:
    response = dome(client, **params)
    assert response.status_code == 400
    assert set(response.json()) == {"error", "message"} and response.json()["error"] == error


def test_a_tampered_or_foreign_markets_key_is_rejected(client: TestClient) -> None:
    key = dome(client, limit=5).json()["pagination"]["pagination_key"]
    assert dome(client, limit=5, pagination_key=key).status_code == 200
    payload = json.loads(base64.b64decode(key))
    forged = base64.b64encode(json.dumps({**payload, "after": [0, "0x"]}).encode()).decode()
    for bad in (forged, key[:-6]):
        assert dome(client, limit=5, pagination_key=bad).json()["error"] == "Invalid pagination key"
    # A key of the unfiltered (start_time) order is not one of the filtered (volume) order.
    response = dome(client, limit=5, status="open", pagination_key=key)
    assert response.status_code == 400 and response.json()["error"] == "Invalid pagination key"
    events_key = dome(client, EVENTS, limit=2).json()["pagination"]["pagination_key"]
    assert dome(client, limit=5, pagination_key=events_key).status_code == 400


def test_unknown_and_combo_ids_are_simply_absent(client: TestClient, universe: Universe) -> None:
    known = served(universe)[0]
    ids = [known, universe.market_edges["unknown"][0], *universe.market_edges["combo"][:3], "0x" + "ab" * 32]
    body = dome(client, condition_id=ids, limit=100).json()
    assert [r["condition_id"] for r in body["markets"]] == [known] and body["pagination"]["total"] == 1
    gamma = walk_gamma(client, condition_ids=ids)[0] + walk_gamma(client, condition_ids=ids, closed="true")[0]
    assert [m["conditionId"] for m in gamma] == [known]


def test_the_poison_id_answers_500_whenever_it_is_included_and_only_then(
    client: TestClient, universe: Universe
) -> None:
    poison = universe.market_edges["poison"][0]
    batch = served(universe)[:60]
    for ids in ([poison], [*batch, poison], [poison.upper().replace("0X", "0x"), batch[0]]):
        response = dome(client, condition_id=ids, limit=100)
        assert response.status_code == 500 and set(response.json()) == {"error", "message"}
        for closed in ("true", "false"):
            assert client.get(KEYSET, params={"condition_ids": ids, "closed": closed}).status_code == 500
    market = universe.catalog.by_condition[poison]
    assert dome(client, market_slug=market.slug).status_code == 500
    assert dome(client, condition_id=batch, limit=100).status_code == 200
    assert client.get(KEYSET, params={"condition_ids": batch, "limit": 100}).status_code == 200
    listing, _ = walk_dome(client, limit=100)
    assert poison not in {r["condition_id"] for r in listing}
    embedded, _ = walk_dome(client, EVENTS, include_markets="true", limit=100)
    assert poison not in {m["condition_id"] for e in embedded for m in e["markets"]}


# Dome /events


def test_dome_events_listing_lookup_and_embedded_markets(client: TestClient, universe: Universe) -> None:
    events, pages = walk_dome(client, EVENTS, limit=7)
    assert all(set(p) == {"limit", "has_more", "pagination_key"} or set(p) == {"limit", "has_more"} for p in pages)
    assert "total" not in pages[0] and len(pages) > 2
    cat = universe.catalog
    expected = [e for e in cat.events.values() if e.kind != "single"]
    assert {e["event_slug"] for e in events} == {e.slug for e in expected}
    volumes = [(-e["volume_fiat_amount"], e["event_slug"]) for e in events]
    assert volumes == sorted(volumes) and all("markets" not in e for e in events)
    target = max(expected, key=lambda e: len(e.members))
    one = dome(client, EVENTS, event_slug=target.slug, include_markets="true").json()["events"]
    assert len(one) == 1 and one[0]["market_count"] == len(one[0]["markets"]) == len(cat.event_markets(target))
    assert all(m["event_slug"] == target.slug for m in one[0]["markets"])
    assert dome(client, EVENTS, event_slug="no-such-event").json()["events"] == []
    closed, _ = walk_dome(client, EVENTS, status="closed", tags="Sports", limit=100)
    assert closed and all(e["status"] == "closed" and "Sports" in e["tags"] for e in closed)
    assert dome(client, EVENTS, event_slug=["a", "b"]).status_code == 400
    assert dome(client, EVENTS, include_markets="yes").status_code == 400


# Gamma


def test_gamma_hides_closed_markets_unless_closed_true(client: TestClient, universe: Universe) -> None:
    default, _ = walk_gamma(client, limit=100)
    assert {m["conditionId"] for m in default} == set(universe.market_edges["open"])
    assert walk_gamma(client, closed="false", limit=100)[0] == default
    closed, _ = walk_gamma(client, closed="true", limit=100)
    assert {m["conditionId"] for m in closed} == set(universe.market_edges["closed"])
    assert all(m["closed"] for m in closed) and not any(m["closed"] for m in default)
    ids = [universe.market_edges["closed"][0], universe.market_edges["open"][0]]
    assert [m["conditionId"] for m in walk_gamma(client, condition_ids=ids)[0]] == ids[1:]


def test_gamma_string_encoded_fields_decode_to_lists(client: TestClient, universe: Universe) -> None:
    markets = walk_gamma(client, limit=100)[0] + walk_gamma(client, closed="true", limit=100)[0]
    assert len(markets) == len(served(universe))
    for m in markets:
        market = universe.catalog.by_condition[m["conditionId"]]
        for name in ("outcomes", "outcomePrices", "clobTokenIds"):
            assert isinstance(m[name], str) and isinstance(json.loads(m[name]), list), name
        assert json.loads(m["outcomes"]) == ["Yes", "No"] and m["outcomes"] == '["Yes", "No"]'
        assert json.loads(m["clobTokenIds"]) == list(market.token_ids)
        prices = json.loads(m["outcomePrices"])
        if m["closed"]:
            assert sorted(prices) == ["0", "1"] and m["closedTime"] and m["umaResolutionStatus"] == "resolved"
            winner = universe.catalog.winner(market.index)
            assert prices[winner] == "1"
        else:
            assert abs(sum(map(float, prices)) - 1) < 1e-9 and m["closedTime"] is None
        assert isinstance(m["id"], str) and m["id"].isdigit() and m["slug"] == market.slug
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["startDate"])
        assert [e["slug"] for e in m["events"]] == [market.event_slug]


def test_gamma_keyset_limits_cursor_and_422s(client: TestClient, universe: Universe) -> None:
    page = client.get(KEYSET, params={"closed": "true"}).json()
    assert len(page["markets"]) == 20 and "next_cursor" in page
    walked, pages = walk_gamma(client, closed="true", limit=25)
    assert pages == -(-len(universe.market_edges["closed"]) // 25) and walked[:20] == page["markets"]
    assert [int(m["id"]) for m in walked] == sorted(int(m["id"]) for m in walked)
    for params in (
        {"condition_ids": [f"0x{i:064x}" for i in range(101)]},
        {"limit": 101},
        {"limit": 0},
        {"offset": 0},
        {"closed": "maybe"},
        {"after_cursor": "garbage"},
    ):
        response = client.get(KEYSET, params=params)
        assert response.status_code == 422 and "error" in response.json(), params


def test_gamma_events_by_slug_and_listing(client: TestClient, universe: Universe) -> None:
    cat = universe.catalog
    single = next(m for m in universe.markets if m.kind == "single")
    slugs = [single.event_slug, *list(cat.events)[:3], "no-such-event"]
    events = client.get(GAMMA_EVENTS, params={"slug": slugs}).json()
    assert isinstance(events, list) and {e["slug"] for e in events} == set(slugs[:4])
    for event in events:
        assert {m["conditionId"] for m in event["markets"]} == {
            m.condition_id for m in cat.event_markets(cat.events[event["slug"]])
        }
        assert all({"id", "label", "slug"} == set(t) for t in event["tags"]) and "events" not in event["markets"][0]
    listing = client.get(GAMMA_EVENTS, params={"limit": 5, "offset": 5}).json()
    assert len(listing) == 5 and [e["id"] for e in listing] == sorted(e["id"] for e in listing)
    assert client.get(GAMMA_EVENTS, params={"slug": [f"e{i}" for i in range(101)]}).status_code == 422
    closed = client.get(GAMMA_EVENTS, params={"closed": "true", "limit": 500}).json()
    assert closed and all(e["closed"] for e in closed)


# Rate limits, faults, stats


def test_dome_markets_and_events_spend_the_orders_key_budget(make_client: Any, universe: Universe) -> None:
    clock = FakeClock()
    client = make_client(per_second=3, clock=clock)
    wallet = universe.special["one"]
    assert [dome(client, limit=1).status_code for _ in range(2)] == [200, 200]
    assert dome(client, EVENTS).status_code == 200
    limited = client.get("/v1/polymarket/orders", params={"user": wallet}, headers=AUTH)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert dome(client, limit=1).status_code == 429
    other = {"Authorization": "Bearer other-key"}
    assert client.get("/v1/polymarket/orders", params={"user": wallet}, headers=other).status_code == 200
    clock.advance(1.0)
    assert client.get("/v1/polymarket/orders", params={"user": wallet}, headers=AUTH).status_code == 200
    assert dome(client, headers={}).status_code == 401


def test_gamma_has_its_own_per_client_windows(make_client: Any) -> None:
    clock = FakeClock()
    client = make_client(gamma_markets_per_10s=3, gamma_events_per_10s=2, tier="free", clock=clock)
    assert [client.get(KEYSET).status_code for _ in range(4)] == [200, 200, 200, 429]
    limited = client.get(KEYSET)
    assert limited.headers["Retry-After"] == "10" and "error" in limited.json()
    assert [client.get(GAMMA_EVENTS).status_code for _ in range(3)] == [200, 200, 429]
    assert dome(client, limit=1).status_code == 200  # Dome's key windows are another budget
    clock.advance(10.0)
    assert client.get(KEYSET).status_code == 200
    defaults = SimConfig()
    assert (defaults.gamma_markets_per_10s, defaults.gamma_events_per_10s) == (300, 500)


def test_faults_reach_the_markets_endpoints(make_client: Any, universe: Universe) -> None:
    errors = make_client(error_5xx_rate=1.0)
    assert {dome(errors).status_code for _ in range(10)} <= {500, 502, 503}
    assert {errors.get(KEYSET).status_code for _ in range(10)} <= {500, 502, 503}
    blocked = make_client(html_rate=1.0).get(KEYSET)
    assert blocked.status_code == 403 and "gamma-api.polymarket.com" in blocked.text
    missing = make_client(missing_field_rate=1.0)
    rows = dome(missing, limit=3).json()["markets"]
    assert "condition_id" not in rows[0] and "condition_id" in rows[1]
    events = missing.get(GAMMA_EVENTS, params={"limit": 2}).json()
    assert "slug" not in events[0] and "slug" in events[1]
    stats = missing.get("/_sim/stats").json()
    assert stats["markets"]["faults"] == {"missing_field": 2} and stats["faults"] == {}


def test_stats_count_market_requests_per_endpoint_apart_from_trades(client: TestClient, universe: Universe) -> None:
    walk_dome(client, limit=100)
    dome(client, EVENTS)
    walk_gamma(client, limit=50)
    client.get(GAMMA_EVENTS)
    dome(client, limit=0)
    stats = client.get("/_sim/stats").json()
    assert stats["markets"]["by_endpoint"] == {
        "/v1/polymarket/markets": 3,
        "/v1/polymarket/events": 1,
        "/gamma/markets/keyset": 1,
        "/gamma/events": 1,
    }
    assert stats["markets"]["requests"] == 6 and stats["markets"]["by_status"] == {"200": 5, "400": 1}
    assert stats["requests"] == 0 and stats["by_endpoint"] == {} and stats["rows_served"] == 0


# Ground truth


@pytest.mark.parametrize("source", ["dome", "polymarket"])
def test_markets_truth_equals_what_the_endpoints_serve(
    client: TestClient, universe: Universe, tmp_path: Path, source: str
) -> None:
    path = tmp_path / "markets.jsonl"
    counts = universe.export_markets_truth(path, source=source)
    lines = read_jsonl(path)
    traded = set().union(*(universe.traded(w) for w in universe.wallets(source)))
    ids = [line.get("condition_id") or line["conditionId"] for line in lines]
    assert set(ids) == traded and len(ids) == len(traded)
    poison, unknown = universe.market_edges["poison"][0], universe.market_edges["unknown"][0]
    assert {"condition_id": poison, "fails": True} in lines and {"condition_id": unknown, "not_found": True} in lines
    missing = {line["condition_id"] for line in lines if line.get("not_found")}
    combos = set(universe.market_edges["combo"])
    assert missing == ({unknown} | combos if source == "polymarket" else {unknown})
    assert counts == {"served": len(lines) - len(missing) - 1, "not_found": len(missing), "fails": 1}
    served_lines = [line for line in lines if not line.get("not_found") and not line.get("fails")]
    batch = [i for i in ids if i != poison]
    if source == "dome":
        pages: list[dict[str, Any]] = []
        for k in range(0, len(batch), 100):
            pages += walk_dome(client, condition_id=batch[k : k + 100], limit=100)[0]
        key = "condition_id"
    else:
        pages = []
        for k in range(0, len(batch), 100):
            for closed in ("false", "true"):
                pages += walk_gamma(client, condition_ids=batch[k : k + 100], closed=closed, limit=100)[0]
        key = "conditionId"
    assert sorted(pages, key=lambda m: m[key]) == sorted(served_lines, key=lambda m: m[key])
    streamed = client.get("/_sim/markets-truth", params={"source": source}).text.splitlines()
    assert [json.loads(line) for line in streamed] == lines


@pytest.mark.parametrize("source", ["dome", "polymarket"])
def test_events_truth_equals_what_the_endpoints_serve(
    client: TestClient, universe: Universe, tmp_path: Path, source: str
) -> None:
    path = tmp_path / "events.jsonl"
    assert universe.export_events_truth(path, source=source)["served"] > 20
    lines = read_jsonl(path)
    if source == "dome":
        served_events = [dome(client, EVENTS, event_slug=e["event_slug"], include_markets="true").json() for e in lines]
        assert [body["events"][0] for body in served_events] == lines
        assert all(e["event_slug"] for e in lines)
    else:
        slugs = [e["slug"] for e in lines]
        got = client.get(GAMMA_EVENTS, params={"slug": slugs[:100]}).json()
        got += client.get(GAMMA_EVENTS, params={"slug": slugs[100:]}).json() if len(slugs) > 100 else []
        assert sorted(got, key=lambda e: e["slug"]) == sorted(lines, key=lambda e: e["slug"])
        assert {m.event_slug for m in universe.markets if m.kind == "single"} <= set(slugs)
    streamed = client.get("/_sim/events-truth", params={"source": source}).text.splitlines()
    assert [json.loads(line) for line in streamed] == lines
    assert client.get("/_sim/events-truth", params={"source": "kalshi"}).status_code == 400


def test_markets_truth_for_given_ids(universe: Universe, tmp_path: Path) -> None:
    path = tmp_path / "some.jsonl"
    known, unknown = served(universe)[3], "0x" + "cd" * 32
    assert universe.export_markets_truth(path, condition_ids=[unknown, known]) == {"served": 1, "not_found": 1}
    lines = read_jsonl(path)
    assert lines[0]["condition_id"] == known and lines[1] == {"condition_id": unknown, "not_found": True}
