"""Time moves in the simulator: `advance` adds new and late-indexed fills and resolves a market; both
sources' rows, markets, exports and cursors move together."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from emulators.dome.app import create_app
from emulators.dome.catalog import START
from emulators.dome.config import SimConfig
from emulators.dome.server import run_simulator
from emulators.dome.universe import Universe

WHALE = 3_000
DAY = 86_400
NOW = 1_790_000_000.0  # the Data API's wall clock, after every simulated day here
AUTH = {"Authorization": "Bearer test-key"}
ORDERS, TRADES = "/v1/polymarket/orders", "/v2/trades"
FULL = {"taker_only": "false", "start": 1}


@pytest.fixture
def make_client() -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = {"whale_trades": WHALE, "wall_clock": lambda: NOW, "data_api_per_10s": None, **overrides}
        client = TestClient(create_app(SimConfig(**settings)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Any) -> TestClient:
    return make_client()


def universe_of(client: TestClient) -> Universe:
    universe: Universe = client.app.state.sim.universe  # type: ignore[attr-defined]
    return universe


def advance(client: TestClient, seconds: int = DAY) -> dict[str, Any]:
    response = client.post("/_sim/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def dome_pages(client: TestClient, wallet: str, limit: int, key: str | None = None, **params: Any) -> Iterator[Any]:
    """Each /orders body, from `key` (or the start) until has_more is false."""
    while True:
        query = {"user": wallet, "limit": limit, **params, **({"pagination_key": key} if key else {})}
        response = client.get(ORDERS, params=query, headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        yield body
        if not body["pagination"]["has_more"]:
            return
        key = body["pagination"]["pagination_key"]


def dome_rows(client: TestClient, wallet: str, limit: int = 1000, **params: Any) -> list[dict[str, Any]]:
    return [row for body in dome_pages(client, wallet, limit, **params) for row in body["orders"]]


def trade_pages(client: TestClient, wallet: str, limit: int, cursor: str | None = None, **params: Any) -> Iterator[Any]:
    while True:
        query = {"user": wallet, "limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get(TRADES, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        yield body
        cursor = body["pagination"]["next_cursor"]
        if cursor is None:
            return


def trade_rows(client: TestClient, wallet: str, limit: int = 1000, **params: Any) -> list[dict[str, Any]]:
    return [row for body in trade_pages(client, wallet, limit, **params) for row in body["data"]]


def growing(u: Universe) -> list[str]:
    return [*u.growth_wallets.values(), *u.late_edges.values()]


# What an advance adds


def test_an_advance_grows_the_documented_wallets_within_the_new_day(client: TestClient) -> None:
    u = universe_of(client)
    before = {w: u.count(w) for w in u.wallets("polymarket")}
    assert u.now == START and before[u.growth_wallets["zero"]] == 0
    assert 0 < before[u.growth_wallets["few"]] <= 10
    report = advance(client)
    assert (report["advance"], report["previous_now"], report["now"]) == (
        1,
        START,
        START + DAY,
    ) and u.now == START + DAY
    after = {w: u.count(w) for w in before}
    grew = {w for w in before if after[w] > before[w]}
    assert set(growing(u)) <= grew and len(grew) >= 6
    assert after[u.growth_wallets["whale"]] - before[u.growth_wallets["whale"]] == 5
    for wallet, n in report["new_fills"].items():
        fresh = [f for f in u.fills(wallet) if f.timestamp > START]
        assert len(fresh) == n > 0 and all(START < f.timestamp <= START + DAY for f in fresh)
    zero = u.growth_wallets["zero"]
    assert trade_rows(client, zero, start=1), "the new wallet's taker fill is on the default feed"
    listing = client.get("/_sim/wallets").json()
    assert listing["now"] == START + DAY and listing["late_edges"] == u.late_edges
    assert client.get(ORDERS, params={"user": zero}, headers=AUTH).json()["pagination"]["total"] == after[zero]


def test_late_fills_land_inside_and_outside_a_one_day_lookback(client: TestClient) -> None:
    u = universe_of(client)
    inside, outside = u.late_edges["inside_lookback"], u.late_edges["outside_lookback"]
    for k in (1, 2):
        newest = {w: u.timestamp(w, 0) for w in (inside, outside)}
        report = advance(client)
        assert report["newest_before"][inside] == newest[inside]
        late_in, late_out = report["late_fills"][inside], report["late_fills"][outside]
        assert len(late_in) == 3 and all(newest[inside] - DAY < t < newest[inside] for t in late_in), k
        assert len(late_out) == 1 and abs(late_out[0] - (newest[outside] - 3 * DAY)) <= 600, k
        assert u.timestamp(inside, 0) == newest[inside], "late fills are older than the newest"
    # A daily sync re-reading one day before each wallet's newest fill sees the first, not the second.
    for wallet, expect in ((inside, 6), (outside, 0)):
        lookback = u.timestamp(wallet, 0) - DAY
        late = {(f.tx_hash, f.log_index) for a in u.advances for f in a.late_fills[wallet]}
        window = dome_rows(client, wallet, start_time=lookback)
        assert sum((r["tx_hash"], r["log_index"]) in late for r in window) == expect, wallet
        assert len(late) == (6 if wallet == inside else 2)


def test_rows_keep_the_api_order_and_unique_keys_after_advances(client: TestClient) -> None:
    u = universe_of(client)
    for seconds in (DAY, 7, 3 * DAY):
        advance(client, seconds)
    assert u.now == START + 4 * DAY + 7
    for wallet in u.wallets("polymarket"):
        fills = list(u.fills(wallet))
        assert len(fills) == u.count(wallet)
        keys = [(f.timestamp, f.sequence) for f in fills]
        assert all(a > b for a, b in itertools.pairwise(keys)), wallet
        assert len({(f.tx_hash, f.log_index) for f in fills}) == len(fills)
        assert len({f.order_hash for f in fills if f.position < 0}) == sum(f.position < 0 for f in fills)
        seconds_of_block: dict[int, int] = {}
        assert all(seconds_of_block.setdefault(f.block_number, f.timestamp) == f.timestamp for f in fills), wallet
        step = max(1, len(fills) // 50)
        assert [u.fill(wallet, i) for i in range(0, len(fills), step)] == fills[::step]


def test_advances_are_deterministic_from_the_seed_and_their_sequence() -> None:
    a, b, c = (Universe(whale_trades=WHALE) for _ in range(3))
    for u in (a, b):
        u.advance(DAY)
        u.advance(3_600)
    c.advance(DAY)
    c.advance(7_200)
    assert [r.as_json() for r in a.advances] == [r.as_json() for r in b.advances]
    for wallet in growing(a):
        assert list(a.rows(wallet)) == list(b.rows(wallet))
    assert any(list(a.rows(w)) != list(c.rows(w)) for w in a.growth_wallets.values())


def test_the_advance_endpoint_checks_its_body(client: TestClient) -> None:
    for body in ({"seconds": 0}, {"seconds": "day"}, {"seconds": 1.5}, {"seconds": True}, [1]):
        response = client.post("/_sim/advance", json=body)
        assert response.status_code == 400 and response.json()["error"] == "Invalid advance", body
    assert universe_of(client).now == START


# Both sources move together


@pytest.mark.parametrize("source", ["dome", "polymarket"])
def test_ground_truth_equals_the_pages_after_advances(client: TestClient, tmp_path: Path, source: str) -> None:
    u = universe_of(client)
    advance(client)
    advance(client, 5 * 3_600)
    wallets = [*growing(u), u.special["n1001"]]
    path = tmp_path / "truth.jsonl"
    counts = u.export_ground_truth(path, source=source, wallets=wallets)
    truth: dict[str, list[dict[str, Any]]] = {w: [] for w in wallets}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        truth[row.pop("wallet")].append(row)
    for wallet in wallets:
        served = dome_rows(client, wallet, 1000) if source == "dome" else trade_rows(client, wallet, 1000, **FULL)
        assert served == truth[wallet] and counts[wallet] == len(served), wallet
        streamed = client.get(f"/_sim/ground-truth/{wallet}", params={"source": source}).text.splitlines()
        assert [json.loads(line) for line in streamed] == [{"wallet": wallet, **r} for r in truth[wallet]]
    whale = u.growth_wallets["whale"]
    assert counts[whale] == (WHALE + 10 if source == "dome" else sum(1 for _ in u.trade_rows(whale)))


def test_a_dome_key_taken_before_an_advance_continues_after_it(client: TestClient) -> None:
    u = universe_of(client)

    def ids(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(r["tx_hash"], r["order_hash"]) for r in rows]

    for wallet, limit in ((u.growth_wallets["whale"], 700), (u.late_edges["inside_lookback"], 1)):
        old = ids(dome_rows(client, wallet))
        first = next(dome_pages(client, wallet, limit))
        key, anchor = first["pagination"]["pagination_key"], first["orders"][-1]
        advance(client)
        rows = dome_rows(client, wallet)
        at = rows.index(anchor)
        rest = [row for body in dome_pages(client, wallet, 1000, key) for row in body["orders"]]
        assert rest == rows[at + 1 :], "every row older than the key, once, in order"
        walked = ids(first["orders"] + rest)
        assert len(set(walked)) == len(walked) and set(old) <= set(walked)
        added = set(walked) - set(old)
        if wallet == u.late_edges["inside_lookback"]:
            assert len(added) == 3, "the late fills sort after the key: they are in the walk"
        else:
            assert not added and len(rows[:at]) == limit - 1 + 5, "the new fills sort before it: not in the walk"
        body = client.get(ORDERS, params={"user": wallet, "limit": 1, "pagination_key": key}, headers=AUTH).json()
        assert body["pagination"]["total"] == u.count(wallet)


def test_a_data_api_cursor_taken_before_an_advance_continues_after_it(client: TestClient) -> None:
    u = universe_of(client)
    wallet = u.late_edges["outside_lookback"]
    newer = len(u.window(wallet, u.timestamp(wallet, 0) - 3 * DAY + 601))  # rows newer than the late fill
    first = next(trade_pages(client, wallet, newer, **FULL))
    cursor, anchor = first["pagination"]["next_cursor"], first["data"][-1]
    advance(client)
    advance(client)
    rows = trade_rows(client, wallet, **FULL)
    assert rows[:newer] == first["data"]
    rest = [row for body in trade_pages(client, wallet, newer, cursor, **FULL) for row in body["data"]]
    assert rest == rows[newer:] and len(rest) == u.count(wallet) - newer and anchor not in rest
    late = {f.tx_hash for a in u.advances for f in a.late_fills[wallet]}
    assert {r["transaction_hash"] for r in rest} >= late and len(late) == 2
    whale = u.growth_wallets["whale"]
    first, then = next(trade_pages(client, whale, 500, **FULL)), u.now
    advance(client)
    cursor = first["pagination"]["next_cursor"]
    rest = [r for body in trade_pages(client, whale, 500, cursor, **FULL) for r in body["data"]]
    rows = trade_rows(client, whale, **FULL)
    assert first["data"] + rest == [r for r in rows if r["timestamp"] <= then] != rows, "new rows: not in the walk"


def test_the_keys_keep_their_tamper_checks(client: TestClient) -> None:
    u = universe_of(client)
    wallet = u.special["n1001"]
    key = next(dome_pages(client, wallet, 10))["pagination"]["pagination_key"]
    advance(client)
    assert client.get(ORDERS, params={"user": wallet, "pagination_key": key}, headers=AUTH).status_code == 200
    foreign = client.get(ORDERS, params={"user": u.special["n999"], "pagination_key": key}, headers=AUTH)
    assert foreign.status_code == 400 and foreign.json()["error"] == "Invalid pagination key"


def test_time_filters_work_on_the_grown_data(client: TestClient) -> None:
    u = universe_of(client)
    whale = u.growth_wallets["whale"]
    advance(client)
    fresh = [f.timestamp for f in u.fills(whale) if f.timestamp > START]
    lo, hi = min(fresh), max(fresh)
    dome_window = dome_rows(client, whale, start_time=lo, end_time=hi)
    assert [r["timestamp"] for r in dome_window] == sorted(fresh, reverse=True)
    assert dome_rows(client, whale, start_time=lo + 1, end_time=hi)[-1]["timestamp"] > lo
    pm = trade_rows(client, whale, start=lo, end=hi, taker_only="false")
    assert [r["timestamp"] for r in pm] == sorted(fresh, reverse=True)
    default_window = trade_rows(client, whale, taker_only="false")
    assert default_window[0]["timestamp"] == hi, "the 3-year default window follows the wall clock"


def test_the_resolving_market_changes_on_both_apis(client: TestClient, tmp_path: Path) -> None:
    u = universe_of(client)
    target = u.market_edges["resolves_on_first_advance"][0]
    market = u.catalog.by_condition[target]
    assert any(target in u.traded(w) for w in u.wallets() if w != u.growth_wallets["whale"])

    def dome_market() -> dict[str, Any]:
        body = client.get("/v1/polymarket/markets", params={"condition_id": target}, headers=AUTH).json()
        return body["markets"][0]  # type: ignore[no-any-return]

    def gamma(closed: str) -> list[dict[str, Any]]:
        return client.get("/gamma/markets/keyset", params={"condition_ids": target, "closed": closed}).json()["markets"]

    before = dome_market()
    assert before["status"] == "open" and before["winning_side"] is None and before["completed_time"] is None
    assert len(gamma("false")) == 1 and gamma("true") == []
    report = advance(client)
    assert report["resolved"] == [target]
    after = dome_market()
    assert after["status"] == "closed" and after["completed_time"] == report["now"]
    assert after["winning_side"] is not None and after["close_time"] in (None, report["now"])
    assert gamma("false") == []
    (resolved,) = gamma("true")
    prices = json.loads(resolved["outcomePrices"])
    assert resolved["closed"] is True and "1" in prices and resolved["closedTime"].endswith("+00")
    assert (
        prices[
            ("Yes", "No").index(
                after["winning_side"] if isinstance(after["winning_side"], str) else after["winning_side"]["label"]
            )
        ]
        == "1"
    )
    path = tmp_path / "m.jsonl"
    u.export_markets_truth(path, condition_ids=[target])
    assert json.loads(path.read_text()) == after
    event = client.get("/gamma/events", params={"slug": market.event_slug}).json()[0]
    assert next(m for m in event["markets"] if m["conditionId"] == target)["closed"] is True
    assert advance(client)["resolved"] != [target]


def test_a_real_server_advances_over_http_and_serves_gamma_under_gamma_url() -> None:
    with run_simulator(SimConfig(whale_trades=WHALE, size=4)) as sim, requests.Session() as session:
        assert sim.gamma_url == f"{sim.root_url}/gamma"
        page = session.get(f"{sim.gamma_url}/markets/keyset", params={"limit": 3}, timeout=10).json()
        assert len(page["markets"]) == 3
        report = session.post(f"{sim.root_url}/_sim/advance", json={"seconds": DAY}, timeout=10).json()
        assert report["now"] == START + DAY and sim.state.universe.now == START + DAY
        assert sim.state.advance(60)["advance"] == 2


def test_a_data_api_cursor_inside_a_transaction_survives_rows_added_behind_it(client: TestClient) -> None:
    """The anchor is the first of two fills sharing one second; the next advance adds a fill older than
    both: the sequence id in the cursor must still point between the two."""
    u = universe_of(client)
    wallet = u.late_edges["inside_lookback"]
    advance(client)
    pair = [f for f in u.advances[0].late_fills[wallet] if f.role == "maker"]
    assert len(pair) == 2 and pair[0].timestamp == pair[1].timestamp
    rows = trade_rows(client, wallet, **FULL)
    size = next(i for i, r in enumerate(rows) if r["timestamp"] == pair[0].timestamp) + 1
    first = next(trade_pages(client, wallet, size, **FULL))
    advance(client)
    behind = [f for f in u.advances[1].late_fills[wallet] if f.timestamp < pair[0].timestamp]
    assert behind, "the second advance adds a fill older than the pair"
    rows = trade_rows(client, wallet, **FULL)
    at = rows.index(first["data"][-1])
    rest = [
        r
        for body in trade_pages(client, wallet, size, first["pagination"]["next_cursor"], **FULL)
        for r in body["data"]
    ]
    assert rest == rows[at + 1 :] and rest[0]["timestamp"] == pair[0].timestamp
