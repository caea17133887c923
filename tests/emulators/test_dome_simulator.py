"""The Dome API simulator, driven through its HTTP interface (TestClient; real HTTP where it matters)."""

from __future__ import annotations

import base64
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from fastapi.testclient import TestClient

from emulators.dome.__main__ import main as cli_main
from emulators.dome.app import create_app
from emulators.dome.config import SimConfig
from emulators.dome.fills import EXCHANGE
from emulators.dome.server import run_simulator
from emulators.dome.universe import DOME_FIELDS, Universe

WHALE = 3_000
AUTH = {"Authorization": "Bearer test-key"}
ORDERS = "/v1/polymarket/orders"
ADDRESS_CHARS = set("0123456789abcdef")


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SleepRecorder:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


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


@pytest.fixture
def universe() -> Universe:
    return Universe(whale_trades=WHALE)


def get(client: TestClient, headers: dict[str, str] | None = AUTH, **params: Any) -> httpx.Response:
    return client.get(ORDERS, params=params, headers=headers)


@dataclass
class Walk:
    rows: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    """Each page's pagination object."""
    sizes: list[int] = field(default_factory=list)
    """Rows on each page."""


def walk(client: TestClient, wallet: str, limit: int, **params: Any) -> Walk:
    """Follow pagination_key until has_more is false."""
    out = Walk()
    key = None
    while True:
        query = {"user": wallet, "limit": limit, **params, **({"pagination_key": key} if key else {})}
        response = get(client, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        out.rows += body["orders"]
        out.pages.append(body["pagination"])
        out.sizes.append(len(body["orders"]))
        if not body["pagination"]["has_more"]:
            assert "pagination_key" not in body["pagination"]
            return out
        key = body["pagination"]["pagination_key"]
        assert len(out.pages) < 10_000


def ground_truth(universe: Universe, tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    path = tmp_path / "truth.jsonl"
    counts = universe.export_ground_truth(path)
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        row = json.loads(line)
        rows[row.pop("wallet")].append(row)
    assert {w: len(rows[w]) for w in universe.wallets()} == counts
    return rows


def all_rows(universe: Universe) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for wallet in universe.wallets():
        yield wallet, list(universe.rows(wallet))


def fingerprint(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in ("tx_hash", "order_hash", "user", "token_id", "side", "shares", "price", "timestamp"))


def decode_key(key: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(key))


def encode_key(payload: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


# The universe


def test_special_wallets_have_their_documented_counts(universe: Universe, client: TestClient) -> None:
    counts = {name: universe.count(wallet) for name, wallet in universe.special.items()}
    assert counts == {
        "empty": 0,
        "one": 1,
        "n999": 999,
        "n1000": 1000,
        "n1001": 1001,
        "whale": WHALE,
        "multi_fill_tx": 240,
        "partial_fills": 240,
        "same_ts_boundary": 2300,
        "no_log_index": 1200,
    }
    for wallet in universe.special.values():
        assert get(client, user=wallet, limit=1).json()["pagination"]["total"] == universe.count(wallet)


def test_default_whale_has_250000_trades_without_materialising_them() -> None:
    universe = Universe()
    whale = universe.special["whale"]
    assert universe.count(whale) == 250_000
    assert universe.row(whale, 249_999)["user"] == whale
    with pytest.raises(IndexError):
        universe.row(whale, 250_000)


def test_rows_have_exactly_the_16_dome_fields_with_their_types(universe: Universe) -> None:
    assert len(DOME_FIELDS) == 16
    for wallet, rows in all_rows(universe):
        assert wallet.startswith("0x") and len(wallet) == 42 and set(wallet[2:]) <= ADDRESS_CHARS
        for row in rows:
            assert tuple(row) == DOME_FIELDS
            assert isinstance(row["token_id"], str) and len(row["token_id"]) == 77 and row["token_id"].isdigit()
            assert row["token_label"] in ("Yes", "No") and row["side"] in ("BUY", "SELL")
            for name, length in (("condition_id", 66), ("tx_hash", 66), ("order_hash", 66), ("taker", 42)):
                assert len(row[name]) == length and set(row[name][2:]) <= ADDRESS_CHARS, name
            assert isinstance(row["shares"], int) and row["shares"] > 0
            assert row["shares_normalized"] == row["shares"] / 1e6
            assert 0 < row["price"] < 1 and round(row["price"], 3) == row["price"]
            assert isinstance(row["timestamp"], int) and row["user"] == wallet
            assert (row["log_index"] is None) == (row["block_number"] is None)
            assert row["market_slug"] and row["title"]


def test_universe_is_determined_by_its_seed() -> None:
    a, b, c = (
        Universe(seed=7, whale_trades=WHALE),
        Universe(seed=7, whale_trades=WHALE),
        Universe(seed=8, whale_trades=WHALE),
    )
    assert a.wallets() == b.wallets()
    for wallet in a.wallets():
        assert list(a.rows(wallet)) == list(b.rows(wallet))
    assert set(a.wallets()).isdisjoint(c.wallets())
    assert a.row(a.special["n1000"], 0)["tx_hash"] != c.row(c.special["n1000"], 0)["tx_hash"]


def test_row_i_equals_the_ith_row_of_the_walk(universe: Universe) -> None:
    wallet = universe.special["same_ts_boundary"]
    rows = list(universe.rows(wallet))
    assert [universe.row(wallet, i) for i in (0, 7, 8, 399, 400, 1999, 2000, 2299)] == [
        rows[i] for i in (0, 7, 8, 399, 400, 1999, 2000, 2299)
    ]
    assert list(universe.rows(wallet, start=1003)) == rows[1003:]


def test_keys_are_unique_and_the_order_is_total(universe: Universe) -> None:
    for wallet, rows in all_rows(universe):
        indexed = [(r["tx_hash"], r["log_index"]) for r in rows if r["log_index"] is not None]
        assert len(indexed) == len(set(indexed)), wallet
        unindexed = [fingerprint(r) for r in rows if r["log_index"] is None]
        assert len(unindexed) == len(set(unindexed)), wallet
        for newer, older in itertools.pairwise(rows):
            assert newer["timestamp"] >= older["timestamp"]
            if newer["log_index"] is not None and older["log_index"] is not None:
                assert (newer["block_number"], newer["log_index"]) > (older["block_number"], older["log_index"])


def test_multi_fill_wallet_has_several_fills_in_one_transaction(universe: Universe) -> None:
    by_tx: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in universe.rows(universe.special["multi_fill_tx"]):
        by_tx[row["tx_hash"]].append(row)
    multi = [rows for rows in by_tx.values() if len(rows) > 1]
    assert len(multi) >= 20 and max(map(len, multi)) >= 4
    for rows in multi:
        assert len({r["log_index"] for r in rows}) == len(rows)
        assert len({r["order_hash"] for r in rows}) == len(rows)
        assert len({(r["token_id"], r["side"], r["taker"], r["timestamp"]) for r in rows}) == 1


def test_partial_fills_wallet_fills_one_order_across_transactions(universe: Universe) -> None:
    txs: dict[str, set[str]] = defaultdict(set)
    for row in universe.rows(universe.special["partial_fills"]):
        txs[row["order_hash"]].add(row["tx_hash"])
    assert sum(1 for tx in txs.values() if len(tx) >= 2) >= 20
    assert max(map(len, txs.values())) >= 3


def test_same_timestamp_run_straddles_the_1000_row_page_boundary(universe: Universe) -> None:
    rows = list(universe.rows(universe.special["same_ts_boundary"]))
    timestamp, run = Counter(r["timestamp"] for r in rows).most_common(1)[0]
    assert run >= 1500
    assert rows[999]["timestamp"] == rows[1000]["timestamp"] == timestamp


def test_no_log_index_wallet_has_older_rows_with_null_log_index(universe: Universe) -> None:
    rows = list(universe.rows(universe.special["no_log_index"]))
    bare = [r for r in rows if r["log_index"] is None]
    assert len(bare) == 1000 and all(r["block_number"] is None for r in bare)
    assert all("log_index" in r and "block_number" in r for r in rows)
    assert max(r["timestamp"] for r in bare) < min(r["timestamp"] for r in rows if r["log_index"] is not None)
    assert any(n > 1 for n in Counter(r["tx_hash"] for r in bare).values()), "multi-fill txs without log_index"


def test_ordinary_wallets_are_skewed_and_cover_the_edges(universe: Universe) -> None:
    ordinary = [w for w in universe.wallets() if w not in universe.special.values()]
    assert len(ordinary) == 40
    counts = sorted(universe.count(w) for w in ordinary)
    assert counts[len(counts) // 2] <= 300 and 0 in counts and 1000 < counts[-1] <= 3000
    mixed = multi = 0
    for wallet in ordinary:
        rows = list(universe.rows(wallet))
        mixed += len({r["log_index"] is None for r in rows}) == 2
        multi += any(n > 1 for n in Counter(r["tx_hash"] for r in rows).values())
    assert mixed >= 3 and multi >= 3


def test_role_is_taker_exactly_when_the_taker_is_the_exchange(universe: Universe) -> None:
    roles = Counter()
    for wallet in universe.wallets():
        for i, row in enumerate(universe.rows(wallet)):
            role = universe.role(wallet, i) if i % 25 == 0 else None
            if role is not None:
                roles[role] += 1
                assert (role == "taker") == (row["taker"] == EXCHANGE)
    assert roles["taker"] > 50 and roles["maker"] > 50


# Pagination


@pytest.mark.parametrize("limit", [1000, 7])
def test_walking_the_cursor_returns_exactly_the_ground_truth(
    client: TestClient, universe: Universe, tmp_path: Path, limit: int
) -> None:
    truth = ground_truth(universe, tmp_path)
    names = ("one", "n999", "n1000", "n1001", "multi_fill_tx", "partial_fills", "same_ts_boundary", "no_log_index")
    wallets = [universe.special[n] for n in names]
    if limit == 1000:
        wallets = universe.wallets()
    for wallet in wallets:
        got = walk(client, wallet, limit)
        assert got.rows == truth[wallet], wallet
        assert len(got.pages) == max(1, -(-len(truth[wallet]) // limit))
        assert all(size == limit for size in got.sizes[:-1])


def test_a_page_of_exactly_limit_rows_is_the_last_page(client: TestClient, universe: Universe) -> None:
    for name, pages_expected in (("n999", [999]), ("n1000", [1000]), ("n1001", [1000, 1])):
        got = walk(client, universe.special[name], 1000)
        assert got.sizes == pages_expected
        assert [p["has_more"] for p in got.pages] == [True] * (len(pages_expected) - 1) + [False]
    body = get(client, user=universe.special["one"], limit=1).json()
    assert len(body["orders"]) == 1 and body["pagination"] == {"limit": 1, "offset": 0, "total": 1, "has_more": False}


def test_empty_and_unknown_wallets_answer_an_empty_page(client: TestClient, universe: Universe) -> None:
    for wallet in (universe.special["empty"], "0x" + "ab" * 20):
        response = get(client, user=wallet)
        assert response.status_code == 200
        assert response.json() == {
            "orders": [],
            "pagination": {"limit": 100, "offset": 0, "total": 0, "has_more": False},
        }


def test_checksummed_addresses_are_the_same_wallet(client: TestClient, universe: Universe) -> None:
    wallet = universe.special["n999"]
    body = get(client, user="0x" + wallet[2:].upper(), limit=3).json()
    assert body["orders"] == list(universe.rows(wallet))[:3]


def test_time_window_is_inclusive_and_paginates(client: TestClient, universe: Universe) -> None:
    wallet = universe.special["same_ts_boundary"]
    rows = list(universe.rows(wallet))
    end, start = rows[100]["timestamp"], rows[2100]["timestamp"]
    expected = [r for r in rows if start <= r["timestamp"] <= end]
    got = walk(client, wallet, 300, start_time=start, end_time=end)
    assert got.rows == expected and got.pages[0]["total"] == len(expected)
    assert (
        get(client, user=wallet, start_time=rows[0]["timestamp"] + 1, end_time=rows[0]["timestamp"] + 9).json()[
            "orders"
        ]
        == []
    )


@pytest.mark.parametrize("name", ["market_slug", "condition_id", "token_id"])
def test_market_filters_narrow_a_wallets_rows(client: TestClient, universe: Universe, name: str) -> None:
    wallet = universe.special["whale"]
    rows = list(universe.rows(wallet))
    value = rows[0][name]
    expected = [r for r in rows if r[name] == value]
    got = walk(client, wallet, 5, **{name: value})
    assert got.rows == expected and got.pages[0]["total"] == len(expected) and len(expected) > 5


def test_offset_skips_rows_up_to_10000(client: TestClient, universe: Universe) -> None:
    wallet = universe.special["n1001"]
    body = get(client, user=wallet, limit=10, offset=995).json()
    assert body["orders"] == list(universe.rows(wallet))[995:1001]
    assert body["pagination"]["offset"] == 995 and body["pagination"]["has_more"] is False


# Errors


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        (
            {},
            "Missing required filter parameter",
            "At least one of market_slug, condition_id, user, or token_id must be provided",
        ),
        (
            {"market_slug": "x", "token_id": "1"},
            "Invalid filter combination",
            "Only one of market_slug, token_id, or condition_id can be provided",
        ),
        (
            {"user": "0x" + "a" * 40, "condition_id": "0x1", "market_slug": "x"},
            "Invalid filter combination",
            "Only one of market_slug, token_id, or condition_id can be provided",
        ),
        ({"user": "0x" + "a" * 40, "limit": 0}, "Invalid limit parameter", "limit must be a number between 1 and 1000"),
        (
            {"user": "0x" + "a" * 40, "limit": 1001},
            "Invalid limit parameter",
            "limit must be a number between 1 and 1000",
        ),
        (
            {"user": "0x" + "a" * 40, "limit": "ten"},
            "Invalid limit parameter",
            "limit must be a number between 1 and 1000",
        ),
        (
            {"user": "0x" + "a" * 40, "start_time": "yesterday"},
            "Invalid start_time parameter",
            "start_time must be a valid Unix timestamp",
        ),
        (
            {"user": "0x" + "a" * 40, "start_time": 20, "end_time": 10},
            "Invalid time range",
            "start_time must be less than end_time",
        ),
        (
            {"user": "0x" + "a" * 40, "start_time": 10, "end_time": 10},
            "Invalid time range",
            "start_time must be less than end_time",
        ),
        (
            {"user": "0x" + "a" * 40, "pagination_key": "not-a-key"},
            "Invalid pagination key",
            "pagination_key is invalid or corrupted",
        ),
    ],
)
def test_documented_400_bodies(client: TestClient, params: dict[str, Any], error: str, message: str) -> None:
    response = get(client, **params)
    assert response.status_code == 400
    assert response.json() == {"error": error, "message": message}


@pytest.mark.parametrize("user", ["0x123", "0xnot-a-wallet", "0x" + "g" * 40, "a" * 42])
def test_invalid_address_is_a_400_naming_it(client: TestClient, user: str) -> None:
    response = get(client, user=user)
    assert response.status_code == 400
    assert user in response.json()["message"] and "address" in response.json()["message"]


def test_offset_over_10000_is_401_offset_deprecated(client: TestClient, universe: Universe) -> None:
    response = get(client, user=universe.special["whale"], offset=10_001)
    assert response.status_code == 401
    assert response.json() == {
        "error": "Offset deprecated",
        "message": "Offsets greater than 10,000 are no longer supported. Please use pagination_key for efficient "
        "pagination.",
        "docs": "https://docs.domeapi.io/pagination",
    }


def test_a_tampered_or_foreign_cursor_is_rejected(client: TestClient, universe: Universe) -> None:
    wallet = universe.special["n1001"]
    key = get(client, user=wallet, limit=10).json()["pagination"]["pagination_key"]
    payload = decode_key(key)
    assert set(payload) >= {"block_timestamp", "tx_hash", "log_index", "total"}
    assert payload["block_timestamp"].endswith(".000Z")
    assert get(client, user=wallet, limit=10, pagination_key=key).status_code == 200
    tampered = [
        encode_key({**payload, "position": payload["position"] + 5}),
        encode_key({**payload, "total": 1}),
        encode_key({k: v for k, v in payload.items() if k != "sig"}),
        key[:-8],
        "e30=",
        "",
    ]
    for bad in tampered[:-1]:
        response = get(client, user=wallet, limit=10, pagination_key=bad)
        assert response.status_code == 400 and response.json()["error"] == "Invalid pagination key", bad
    foreign = get(client, user=universe.special["n1000"], limit=10, pagination_key=key)
    assert foreign.status_code == 400 and foreign.json()["error"] == "Invalid pagination key"


def test_queries_without_user_are_not_simulated(client: TestClient, universe: Universe) -> None:
    slug = universe.row(universe.special["one"], 0)["market_slug"]
    response = get(client, market_slug=slug)
    assert response.status_code == 501 and response.json()["error"] == "Not implemented"


# Auth


def test_missing_or_malformed_bearer_key_is_401(client: TestClient, universe: Universe) -> None:
    body = {"error": "Unauthorized", "message": "Invalid or missing API key"}
    wallet = universe.special["one"]
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}, {"X-Api-Key": "k"}):
        response = get(client, headers=headers, user=wallet)
        assert response.status_code == 401 and response.json() == body
    assert get(client, headers={"Authorization": "Bearer any-key"}, user=wallet).status_code == 200


def test_only_configured_keys_are_accepted(make_client: Any, universe: Universe) -> None:
    client = make_client(api_keys={"good"})
    wallet = universe.special["one"]
    assert get(client, headers={"Authorization": "Bearer good"}, user=wallet).status_code == 200
    response = get(client, headers={"Authorization": "Bearer bad"}, user=wallet)
    assert response.status_code == 401 and response.json()["error"] == "Unauthorized"


# Rate limits


def test_free_tier_11th_request_in_a_second_is_429_until_the_window_slides(
    make_client: Any, universe: Universe
) -> None:
    clock = FakeClock()
    client = make_client(tier="free", clock=clock, wall_clock=lambda: 1_700_000_000.0)
    wallet = universe.special["one"]
    for _ in range(10):
        assert get(client, user=wallet).status_code == 200
    clock.advance(0.4)
    limited = get(client, user=wallet)
    assert limited.status_code == 429
    assert limited.json()["error"] == "Too Many Requests"
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["x-ratelimit-limit"] == "10"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["x-ratelimit-reset"] == "1700000001"
    clock.advance(0.6)
    ok = get(client, user=wallet)
    assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining"] == "9"


def test_dev_tier_10_second_window_binds_after_500(make_client: Any, universe: Universe) -> None:
    clock = FakeClock()
    client = make_client(tier="dev", clock=clock)
    wallet = universe.special["one"]
    for _ in range(5):  # 100 per second for 5 s: the per-second window never refuses
        assert all(get(client, user=wallet).status_code == 200 for _ in range(100))
        clock.advance(1.0)
    limited = get(client, user=wallet)
    assert limited.status_code == 429
    assert limited.headers["x-ratelimit-limit"] == "500" and limited.headers["Retry-After"] == "5"
    clock.advance(4.9)
    assert get(client, user=wallet).status_code == 429
    clock.advance(0.1)
    assert get(client, user=wallet).status_code == 200


def test_without_ratelimit_headers_a_429_says_only_retry_after(make_client: Any, universe: Universe) -> None:
    clock = FakeClock()
    client = make_client(tier="free", clock=clock, ratelimit_headers=False)
    wallet = universe.special["one"]
    answers = [get(client, user=wallet) for _ in range(11)]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert not any(k.startswith("x-ratelimit") for a in answers for k in a.headers)
    assert answers[-1].headers["Retry-After"] == "1"


def test_max_page_rows_caps_each_page_and_the_walk_still_ends_complete(make_client: Any, universe: Universe) -> None:
    client = make_client(max_page_rows=7)
    wallet = universe.special["n1000"]
    pages = walk(client, wallet, limit=1000)
    assert max(pages.sizes) == 7 and len(pages.rows) == 1000 == universe.count(wallet)
    assert len({(r["tx_hash"], r["log_index"], r["order_hash"]) for r in pages.rows}) == 1000


def test_refused_requests_do_not_count_and_keys_are_separate(make_client: Any, universe: Universe) -> None:
    clock = FakeClock()
    client = make_client(per_second=2, clock=clock)
    wallet = universe.special["one"]
    assert [get(client, user=wallet).status_code for _ in range(3)] == [200, 200, 429]
    clock.advance(0.5)
    assert [get(client, user=wallet).status_code for _ in range(5)] == [429] * 5
    other = get(client, headers={"Authorization": "Bearer other-key"}, user=wallet)
    assert other.status_code == 200
    clock.advance(0.5)
    assert [get(client, user=wallet).status_code for _ in range(3)] == [200, 200, 429]
    assert client.app.state.sim.stats.rate_limited == 7


# Latency and faults


def test_latency_is_the_mean_plus_or_minus_25_percent(make_client: Any, universe: Universe) -> None:
    sleep = SleepRecorder()
    client = make_client(latency_ms=80, sleep=sleep)
    for _ in range(50):
        get(client, user=universe.special["one"])
    assert len(sleep.slept) == 50 and all(0.06 <= s <= 0.1 for s in sleep.slept)
    assert min(sleep.slept) < 0.07 and max(sleep.slept) > 0.09


def test_slow_fault_adds_slow_seconds(make_client: Any, universe: Universe) -> None:
    sleep = SleepRecorder()
    client = make_client(slow_rate=1.0, slow_seconds=7.5, sleep=sleep)
    assert get(client, user=universe.special["one"]).status_code == 200
    assert sleep.slept == [7.5]


def test_5xx_fault_answers_500_502_503_with_json_or_html(make_client: Any, universe: Universe) -> None:
    client = make_client(error_5xx_rate=1.0)
    responses = [get(client, user=universe.special["one"]) for _ in range(40)]
    assert {r.status_code for r in responses} == {500, 502, 503}
    kinds = {r.headers["content-type"].split(";")[0] for r in responses}
    assert kinds == {"application/json", "text/html"}


def test_burst_429_fault_says_retry_after_1(make_client: Any, universe: Universe) -> None:
    client = make_client(burst_429_rate=1.0)
    response = get(client, user=universe.special["one"])
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert response.json()["error"] == "Too Many Requests"


def test_truncated_fault_is_a_200_with_a_body_cut_in_the_middle(make_client: Any, universe: Universe) -> None:
    client = make_client(truncated_rate=1.0)
    response = get(client, user=universe.special["n999"], limit=50)
    assert response.status_code == 200 and response.content.startswith(b'{"orders":[')
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_fault_rates_mix_by_probability(make_client: Any, universe: Universe) -> None:
    client = make_client(error_5xx_rate=0.3, fault_seed=3)
    statuses = Counter(get(client, user=universe.special["one"]).status_code for _ in range(200))
    assert 30 < sum(n for s, n in statuses.items() if s >= 500) < 90 and statuses[200] > 100


def test_fail_wallets_always_answer_their_status(make_client: Any, universe: Universe) -> None:
    doomed, broken = universe.special["n999"], universe.special["n1000"]
    client = make_client(fail_wallets={doomed: 400, broken.upper().replace("0X", "0x"): 500})
    assert [get(client, user=doomed).status_code for _ in range(3)] == [400] * 3
    assert get(client, user=broken).status_code == 500
    assert doomed in get(client, user=doomed).json()["message"]
    assert get(client, user=universe.special["one"]).status_code == 200


def test_faults_change_at_runtime(client: TestClient, universe: Universe) -> None:
    wallet = universe.special["one"]
    assert client.post("/_sim/faults", json={"error_5xx_rate": 1.0}).status_code == 200
    assert get(client, user=wallet).status_code >= 500
    client.app.state.sim.patch_faults(error_5xx_rate=0.0, fail_wallets={wallet: 503})
    assert get(client, user=wallet).status_code == 503
    assert client.get("/_sim/faults").json()["fail_wallets"] == {wallet: 503}
    client.post("/_sim/faults", json={"fail_wallets": {}})
    assert get(client, user=wallet).status_code == 200
    assert client.post("/_sim/faults", json={"error_5xx_rate": 2}).status_code == 422
    assert client.post("/_sim/faults", json={"no_such_fault": 1}).status_code == 422
    assert client.get("/_sim/faults").json()["error_5xx_rate"] == 0.0


# Stats, debugging endpoints, the real server, the CLI


def test_stats_count_requests_per_wallet_and_cursor(client: TestClient, universe: Universe) -> None:
    n1001, one = universe.special["n1001"], universe.special["one"]
    walk(client, n1001, 400)
    get(client, user=one)
    get(client, headers={}, user=one)
    stats = client.get("/_sim/stats").json()
    assert stats["requests"] == 5 and stats["rows_served"] == 1002
    assert stats["by_wallet"] == {n1001: 3, one: 2}
    assert stats["by_wallet_cursor"][n1001] == {"first_page": 1, "with_cursor": 2}
    assert stats["by_status"] == {"200": 4, "401": 1}
    assert client.app.state.sim.stats.by_wallet_cursor[(one, False)] == 2
    assert client.post("/_sim/stats/reset").status_code == 204
    assert client.get("/_sim/stats").json()["requests"] == 0


def test_ground_truth_wallets_and_health_endpoints(client: TestClient, universe: Universe) -> None:
    wallet = universe.special["n1001"]
    lines = client.get(f"/_sim/ground-truth/{wallet}").text.splitlines()
    assert [json.loads(line) for line in lines] == [{"wallet": wallet, **r} for r in universe.rows(wallet)]
    listing = client.get("/_sim/wallets").json()
    assert listing["special"] == universe.special and len(listing["wallets"]) == 50
    assert client.get("/healthz").json() == {"status": "ok"}


def test_real_server_pages_over_http_and_drops_connections(universe: Universe) -> None:
    wallet = universe.special["n1001"]
    with run_simulator(SimConfig(whale_trades=WHALE)) as sim, requests.Session() as session:
        assert sim.base_url.startswith("http://127.0.0.1:") and sim.base_url.endswith("/v1")
        url = f"{sim.base_url}/polymarket/orders"
        first = session.get(url, params={"user": wallet, "limit": 1000}, headers=AUTH, timeout=10).json()
        key = first["pagination"]["pagination_key"]
        second = session.get(
            url, params={"user": wallet, "limit": 1000, "pagination_key": key}, headers=AUTH, timeout=10
        ).json()
        assert first["orders"] + second["orders"] == list(universe.rows(wallet))
        sim.state.patch_faults(drop_rate=1.0)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            session.get(url, params={"user": wallet, "limit": 1000}, headers=AUTH, timeout=10)
        assert sim.state.stats.faults == {"drop": 1}
        sim.state.patch_faults(drop_rate=0.0)
        assert session.get(url, params={"user": wallet}, headers=AUTH, timeout=10).status_code == 200


def test_cli_exports_the_ground_truth(tmp_path: Path, universe: Universe, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "truth.jsonl"
    assert cli_main(["--whale-trades", str(WHALE), "--export-ground-truth", str(path), "--export-only"]) == 0
    assert sum(1 for _ in path.open()) == sum(universe.count(w) for w in universe.wallets())
    assert "ground truth" in capsys.readouterr().out


def test_kept_rows_answer_exactly_as_rows_computed_per_request(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Universe.keep` (what `make bench` does before its clock starts) changes what a page costs, not
    what it says: the same pages, cursors and windows, also after an advance merges new fills in."""
    import emulators.dome.wallets as wallets_module

    computed, kept = make_client(), make_client()
    u = kept.app.state.sim.universe
    names = ("whale", "same_ts_boundary", "no_log_index", "partial_fills", "n1001")
    wallets = [u.special[n] for n in names] + u.ordinary()[:5]
    u.keep(wallets)
    chunks = 0
    real_chunk_fills = wallets_module.chunk_fills

    def counted(*args: Any) -> Any:
        nonlocal chunks
        chunks += 1
        return real_chunk_fills(*args)

    monkeypatch.setattr(wallets_module, "chunk_fills", counted)

    def same(**params: Any) -> None:
        for wallet in wallets:
            a, b = walk(computed, wallet, 1000, **params), walk(kept, wallet, 1000, **params)
            assert (a.rows, a.pages) == (b.rows, b.pages), wallet

    same()
    rows = list(u.rows(u.special["same_ts_boundary"]))
    same(start_time=rows[2100]["timestamp"], end_time=rows[100]["timestamp"])
    for client in (computed, kept):
        assert client.post("/_sim/advance", json={"seconds": 86_400}).status_code == 200
    same()
    # Only the computed universe computed its rows: the kept one answered from what it holds.
    before = chunks
    walk(kept, u.special["whale"], 1000)
    assert chunks == before
    walk(computed, u.special["whale"], 1000)
    assert chunks > before
