"""The simulator's Polymarket Data API v2 (`GET /v2/trades`), driven through its HTTP interface."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from emulators.dome.__main__ import main as cli_main
from emulators.dome.app import create_app
from emulators.dome.config import SimConfig
from emulators.dome.polymarket import TRADE_FIELDS
from emulators.dome.trades import three_years_before
from emulators.dome.universe import STRADDLE_AT, Universe

WHALE = 1_500
SIZE = 6
NOW = 1_790_000_000.0  # 2026-09-21: the wall clock the Data API's default window counts back from
TRADES = "/v2/trades"
FULL = {"taker_only": "false", "start": 1}
HEX = set("0123456789abcdef")


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
        # No window and a clock that stands still unless a test turns it: nothing here depends on timing.
        settings: dict[str, Any] = {"data_api_per_10s": None, "clock": FakeClock(), "wall_clock": lambda: NOW}
        config = SimConfig(size=SIZE, whale_trades=WHALE, **{**settings, **overrides})
        client = TestClient(create_app(config))
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
    return Universe(size=SIZE, whale_trades=WHALE)


def get(client: TestClient, **params: Any) -> httpx.Response:
    return client.get(TRADES, params=params)


@dataclass
class Walk:
    rows: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)


def walk(client: TestClient, wallet: str, **params: Any) -> Walk:
    """Follow next_cursor until null, sending identical filters on every page."""
    out, cursor = Walk(), None
    while True:
        response = get(client, user=wallet, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        out.rows += body["data"]
        out.pages.append(body["pagination"])
        out.sizes.append(len(body["data"]))
        cursor = body["pagination"]["next_cursor"]
        assert (cursor is not None) == body["pagination"]["has_more"]
        if cursor is None:
            return out
        assert len(out.pages) < 1_000


def truth(universe: Universe, tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    path = tmp_path / "truth.jsonl"
    counts = universe.export_ground_truth(path, source="polymarket")
    rows: dict[str, list[dict[str, Any]]] = {w: [] for w in counts}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        rows[row.pop("wallet")].append(row)
    assert {w: len(r) for w, r in rows.items()} == counts
    return rows


def same_fill(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in ("transaction_hash", "token_id", "side", "size", "price", "timestamp"))


# The envelope and the row


def test_a_page_is_the_v2_envelope_of_snake_case_trades(client: TestClient, universe: Universe) -> None:
    wallet = universe.special["n1001"]
    response = get(client, user=wallet, limit=3, **FULL)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert len(response.headers["x-trace-id"]) == 32
    body = response.json()
    assert list(body) == ["data", "pagination"]
    assert list(body["pagination"]) == ["limit", "offset", "has_more", "next_cursor"]
    assert body["pagination"]["limit"] == 3 and body["pagination"]["offset"] == 0
    assert isinstance(body["pagination"]["next_cursor"], str)
    for row in body["data"]:
        assert tuple(row) == TRADE_FIELDS
        assert row["proxy_wallet"] == wallet and row["side"] in ("BUY", "SELL")
        assert len(row["token_id"]) == 77 and row["token_id"].isdigit()
        assert len(row["condition_id"]) == 66 and set(row["condition_id"][2:]) <= HEX
        assert len(row["transaction_hash"]) == 66 and set(row["transaction_hash"][2:]) <= HEX
        assert isinstance(row["size"], float) and row["size"] >= 0.01
        assert 0 < row["price"] < 1 and isinstance(row["timestamp"], int)
        assert row["title"] and row["slug"] and row["event_slug"] and row["icon"].startswith("https://")
        assert (row["outcome"], row["outcome_index"]) in (("Yes", 0), ("No", 1))
        assert row["pseudonym"] and all(isinstance(row[k], str) for k in ("name", "bio", "profile_image"))


def test_size_is_in_shares_and_rows_are_the_dome_fills_seen_from_the_wallet(universe: Universe) -> None:
    wallet = universe.special["multi_fill_tx"]
    dome = {
        (r["tx_hash"], r["token_id"], r["side"], r["price"], r["timestamp"], r["shares_normalized"]): r
        for r in universe.rows(wallet)
    }
    pm = list(universe.trade_rows(wallet))
    assert len(pm) == len(dome) == universe.count(wallet)
    for row in pm:
        key = (row["transaction_hash"], row["token_id"], row["side"], row["price"], row["timestamp"], row["size"])
        assert dome[key]["shares"] == round(row["size"] * 1_000_000)
        assert dome[key]["condition_id"] == row["condition_id"] and dome[key]["market_slug"] == row["slug"]


# Pagination


def test_walking_the_cursor_to_the_end_returns_exactly_the_ground_truth(
    client: TestClient, universe: Universe, tmp_path: Path
) -> None:
    expected = truth(universe, tmp_path)
    assert set(expected) == set(universe.wallets("polymarket"))
    for wallet, rows in expected.items():
        got = walk(client, wallet, limit=1000, **FULL)
        assert got.rows == rows, wallet
        assert got.sizes == [1000] * (len(rows) // 1000) + ([len(rows) % 1000] if len(rows) % 1000 else []) or (
            got.sizes == [0] and not rows
        )
        assert [p["offset"] for p in got.pages] == [1000 * i for i in range(len(got.pages))]


def test_small_pages_and_the_page_size_edges(client: TestClient, universe: Universe) -> None:
    for name in ("one", "n999", "same_ts_boundary"):
        wallet = universe.special[name]
        assert walk(client, wallet, limit=7, **FULL).rows == list(universe.trade_rows(wallet))
    for name, sizes in (("empty", [0]), ("n999", [999]), ("n1000", [1000]), ("n1001", [1000, 1])):
        assert walk(client, universe.special[name], limit=1000, **FULL).sizes == sizes, name


def test_the_cursor_keeps_its_page_size_whatever_limit_later_pages_send(client: TestClient, universe: Universe) -> None:
    wallet = universe.special["n999"]
    first = get(client, user=wallet, limit=10, **FULL).json()
    second = get(client, user=wallet, limit=500, cursor=first["pagination"]["next_cursor"], **FULL).json()
    assert len(second["data"]) == 10 and second["pagination"]["limit"] == 10
    assert second["pagination"]["offset"] == 10
    assert first["data"] + second["data"] == list(universe.trade_rows(wallet))[:20]


def test_identical_fills_of_one_transaction_straddle_the_1000_row_boundary(
    client: TestClient, universe: Universe
) -> None:
    wallet = universe.data_api_special["straddle"]
    first = get(client, user=wallet, limit=1000, **FULL).json()
    second = get(client, user=wallet, limit=1000, cursor=first["pagination"]["next_cursor"], **FULL).json()
    tail = [r for r in first["data"] if same_fill(r) == same_fill(first["data"][-1])]
    head = [r for r in second["data"] if same_fill(r) == same_fill(first["data"][-1])]
    assert len(tail) == 1000 - STRADDLE_AT == 3 and len(head) == 3
    assert tail == first["data"][-3:] and head == second["data"][:3]
    assert tail[0]["transaction_hash"].startswith("0x") and tail == head  # the very same row, six times
    # Dome sees six different fills of that transaction (each its own order hash and log index).
    dome = [r for r in universe.rows(wallet) if r["tx_hash"] == tail[0]["transaction_hash"]]
    assert len(dome) == 6 and len({(r["order_hash"], r["log_index"]) for r in dome}) == 6


def test_a_changed_filter_or_a_foreign_wallet_re_anchors_silently(client: TestClient, universe: Universe) -> None:
    wallet, other = universe.special["n1001"], universe.special["n1000"]
    cursor = get(client, user=wallet, limit=100, **FULL).json()["pagination"]["next_cursor"]
    anchor = list(universe.trade_rows(wallet))[99]
    taker_only = get(client, user=wallet, cursor=cursor, start=1).json()["data"]
    assert taker_only and all(r["timestamp"] <= anchor["timestamp"] for r in taker_only)
    foreign = get(client, user=other, cursor=cursor, **FULL)
    assert foreign.status_code == 200 and all(r["proxy_wallet"] == other for r in foreign.json()["data"])


# Defaults: taker_only, the 3-year window, the size filter


def test_taker_only_defaults_to_true_and_hides_the_maker_fills(client: TestClient, universe: Universe) -> None:
    wallet = universe.special["n1001"]
    roles = Counter(universe.role(wallet, i) for i in range(universe.count(wallet)))
    assert roles["maker"] > 300 and roles["taker"] > 200
    default = walk(client, wallet, limit=1000, start=1).rows
    takers = [row for i, row in enumerate(universe.trade_rows(wallet)) if universe.role(wallet, i) == "taker"]
    assert default == takers and len(default) == roles["taker"]
    assert walk(client, wallet, limit=1000, start=1, taker_only="true").rows == takers
    assert len(walk(client, wallet, limit=1000, start=1, takerOnly="false").rows) == universe.count(wallet)


def test_the_default_window_is_three_years_back_to_now_plus_a_day(make_client: Any, universe: Universe) -> None:
    wallet = universe.data_api_special["old_fills"]
    rows = list(universe.trade_rows(wallet))
    floor = three_years_before(NOW)
    assert floor == 1_695_305_600  # 2023-09-21T14:13:20Z
    old = [r for r in rows if r["timestamp"] < floor]
    assert len(old) == 200 and len(rows) == 350
    client = make_client()
    assert walk(client, wallet, limit=1000, taker_only="false").rows == [r for r in rows if r["timestamp"] >= floor]
    assert walk(client, wallet, limit=1000, taker_only="false", start=0).rows == rows[:150]
    assert walk(client, wallet, limit=1000, **FULL).rows == rows
    window = walk(client, wallet, limit=1000, taker_only="false", start=rows[10]["timestamp"], end=rows[5]["timestamp"])
    assert window.rows == [r for r in rows if rows[10]["timestamp"] <= r["timestamp"] <= rows[5]["timestamp"]]
    # `end` omitted is now + 1 day: with the clock set back, the newest fills are not served yet.
    early = make_client(wall_clock=lambda: rows[20]["timestamp"] - 86_400)
    assert walk(early, wallet, limit=1000, **FULL).rows == [r for r in rows if r["timestamp"] <= rows[20]["timestamp"]]


def test_fills_under_a_hundredth_of_a_share_are_hidden_by_default(client: TestClient, universe: Universe) -> None:
    wallet = universe.data_api_special["dust"]
    fills = list(universe.fills(wallet))
    dust = [f for f in fills if f.shares < 10_000]
    assert len(dust) > 30
    shown = walk(client, wallet, limit=1000, **FULL).rows
    assert len(shown) == len(fills) - len(dust) and min(r["size"] for r in shown) >= 0.01
    assert walk(client, wallet, limit=1000, filter_amount=0, **FULL).rows == shown  # "0 means the same"
    assert len(walk(client, wallet, limit=1000, filter_amount=0.000001, **FULL).rows) == len(fills)
    big = walk(client, wallet, limit=1000, filterType="CASH", filterAmount=20, **FULL).rows
    assert big and all(r["size"] * r["price"] >= 20 - 1e-9 for r in big) and len(big) < len(shown)


# Edge rows


def test_combo_rows_have_62_digit_condition_ids_and_no_slug_or_outcome(universe: Universe) -> None:
    rows = list(universe.trade_rows(universe.data_api_special["combo"]))
    combos = [r for r in rows if r["outcome_index"] == 999]
    assert 60 < len(combos) < len(rows)
    for row in combos:
        assert len(row["condition_id"]) == 64 and row["condition_id"].startswith("0x03")
        assert row["condition_id"].endswith("0" * 10)
        assert row["slug"] == row["outcome"] == row["event_slug"] == "" and " AND " in row["title"]


def test_some_rows_have_no_transaction_hash(universe: Universe) -> None:
    rows = list(universe.trade_rows(universe.data_api_special["no_tx_hash"]))
    bare = [r for r in rows if r["transaction_hash"] == ""]
    assert len(bare) == 300 and all("transaction_hash" in r for r in rows)
    assert max(Counter(r["timestamp"] for r in bare).values()) > 1, "several fills in one second, no hash"


def test_condition_and_side_filters_narrow_the_feed(client: TestClient, universe: Universe) -> None:
    wallet = universe.data_api_special["combo"]
    rows = list(universe.trade_rows(wallet))
    combo, market = rows[[r["outcome_index"] for r in rows].index(999)]["condition_id"], rows[0]["condition_id"]
    got = walk(client, wallet, limit=10, condition=f"{combo},{market.upper().replace('0X', '0x')}", **FULL).rows
    assert got == [r for r in rows if r["condition_id"] in (combo, market)]
    assert walk(client, wallet, limit=1000, side="SELL", **FULL).rows == [r for r in rows if r["side"] == "SELL"]


# Errors


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": 1001}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": 0}, "offset"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"taker_only": "maybe"}, "taker_only"),
        ({"side": "buy"}, "side"),
        ({"filter_type": "USD"}, "filter_type"),
        ({"filter_amount": "-1"}, "filter_amount"),
        ({"condition": "0x1234"}, "condition"),
        ({"condition": ",".join(f"0x{i:064x}" for i in range(21))}, "condition"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_invalid_parameters_are_400_invalid_request_naming_the_parameter(
    client: TestClient, universe: Universe, params: dict[str, Any], parameter: str
) -> None:
    response = get(client, user=universe.special["one"], **params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "code", "retryable", "trace_id", "parameter"}
    assert body["code"] == "invalid_request" and body["retryable"] is False and body["parameter"] == parameter
    assert body["trace_id"] == response.headers["x-trace-id"]


@pytest.mark.parametrize("limit", [0, 1, 1000])
def test_limit_from_0_to_1000_is_accepted_and_0_means_the_default(
    client: TestClient, universe: Universe, limit: int
) -> None:
    body = get(client, user=universe.special["n1001"], limit=limit, **FULL).json()
    assert len(body["data"]) == (limit or 100) == body["pagination"]["limit"]


@pytest.mark.parametrize("user", ["0x123", "0x" + "g" * 40, "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e"])
def test_a_malformed_or_protocol_contract_user_is_a_400(client: TestClient, user: str) -> None:
    response = get(client, user=user)
    assert response.status_code == 400 and response.json()["parameter"] == "user"


def test_a_tampered_cursor_is_a_400(client: TestClient, universe: Universe) -> None:
    wallet = universe.special["n1001"]
    cursor = get(client, user=wallet, limit=10, **FULL).json()["pagination"]["next_cursor"]
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**payload, "size": 1000}).encode()).decode()
    for bad in (forged, cursor[:-6], "e30"):
        response = get(client, user=wallet, cursor=bad, **FULL)
        assert response.status_code == 400 and response.json()["parameter"] == "cursor", bad


def test_the_global_feed_is_not_simulated(client: TestClient, universe: Universe) -> None:
    assert get(client).status_code == 501
    assert get(client, user=universe.special["one"], event_id=5).status_code == 501


# Rate limit and faults


def test_the_201st_request_in_10_seconds_from_one_client_is_a_429_with_retry_after(make_client: Any) -> None:
    clock = FakeClock()
    client = make_client(clock=clock, data_api_per_10s=200)  # the default, as SimConfig() has it
    wallet = "0x" + "ab" * 20
    for _ in range(4):  # 50 a second for 4 s
        assert all(get(client, user=wallet).status_code == 200 for _ in range(50))
        clock.advance(1.0)
    limited = get(client, user=wallet)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "6"
    assert limited.json()["code"] == "rate_limited" and limited.json()["retryable"] is True
    clock.advance(6.0)
    assert get(client, user=wallet).status_code == 200
    assert client.app.state.sim.stats.rate_limited == 1


def test_the_per_client_window_is_configurable_and_separate_from_domes(make_client: Any) -> None:
    clock = FakeClock()
    client = make_client(clock=clock, data_api_per_10s=3, tier="free")
    wallet = "0x" + "ab" * 20
    assert [get(client, user=wallet).status_code for _ in range(4)] == [200, 200, 200, 429]
    dome = client.get("/v1/polymarket/orders", params={"user": wallet}, headers={"Authorization": "Bearer k"})
    assert dome.status_code == 200
    unlimited = make_client(data_api_per_10s=None)
    assert all(get(unlimited, user=wallet).status_code == 200 for _ in range(250))


def test_503_fault_is_request_timeout_with_retry_after(make_client: Any, universe: Universe) -> None:
    client = make_client(unavailable_rate=1.0, unavailable_retry_after=3)
    response = get(client, user=universe.special["one"])
    assert response.status_code == 503 and response.headers["Retry-After"] == "3"
    assert response.json()["code"] == "request_timeout" and response.json()["retryable"] is True


def test_html_fault_is_a_cdn_block_page(make_client: Any, universe: Universe) -> None:
    client = make_client(html_rate=1.0)
    response = get(client, user=universe.special["one"])
    assert response.status_code == 403 and response.headers["content-type"].startswith("text/html")
    assert "blocked" in response.text
    client.app.state.sim.patch_faults(html_status=200)
    assert get(client, user=universe.special["one"]).status_code == 200
    with pytest.raises(ValueError):
        get(client, user=universe.special["one"]).json()


def test_burst_429_5xx_missing_field_and_truncated_faults(make_client: Any, universe: Universe) -> None:
    wallet = universe.special["n999"]
    burst = get(make_client(burst_429_rate=1.0), user=wallet)
    assert burst.status_code == 429 and burst.headers["Retry-After"] == "1"
    assert burst.json()["code"] == "rate_limited"
    errors = make_client(error_5xx_rate=1.0)
    answers = [get(errors, user=wallet) for _ in range(30)]
    assert {r.status_code for r in answers} == {500, 502, 503}
    assert {r.headers["content-type"].split(";")[0] for r in answers} == {"application/json", "text/html"}
    missing = get(make_client(missing_field_rate=1.0), user=wallet, **FULL).json()
    assert "timestamp" not in missing["data"][0] and "timestamp" in missing["data"][1]
    cut = get(make_client(truncated_rate=1.0), user=wallet, **FULL)
    assert cut.status_code == 200 and cut.content.startswith(b'{"data":[')
    with pytest.raises(ValueError):
        json.loads(cut.content)


def test_short_pages_keep_has_more_exact_and_the_walk_complete(make_client: Any, universe: Universe) -> None:
    client = make_client(short_page_rate=1.0)
    wallet = universe.special["n1001"]
    got = walk(client, wallet, limit=100, **FULL)
    assert got.rows == list(universe.trade_rows(wallet)) and set(got.sizes[:-1]) == {50}
    assert {p["limit"] for p in got.pages} == {100}


# Stats, debugging endpoints, the CLI


def test_stats_count_v2_requests_per_wallet_and_cursor(client: TestClient, universe: Universe) -> None:
    wallet = universe.special["n1001"]
    walk(client, wallet, limit=400, **FULL)
    get(client, user=universe.special["one"])
    stats = client.get("/_sim/stats").json()
    assert stats["by_wallet"] == {wallet: 3, universe.special["one"]: 1}
    assert stats["by_wallet_cursor"][wallet] == {"first_page": 1, "with_cursor": 2}
    assert stats["by_endpoint"] == {"/v2/trades": 4} and stats["rows_served"] == 1001


def test_ground_truth_and_wallets_endpoints_speak_both_shapes(client: TestClient, universe: Universe) -> None:
    wallet = universe.data_api_special["straddle"]
    lines = client.get(f"/_sim/ground-truth/{wallet}", params={"source": "polymarket"}).text.splitlines()
    assert [json.loads(line) for line in lines] == [{"wallet": wallet, **r} for r in universe.trade_rows(wallet)]
    listing = client.get("/_sim/wallets", params={"source": "polymarket"}).json()
    assert listing["data_api_special"] == universe.data_api_special
    assert [w["wallet"] for w in listing["wallets"]] == universe.wallets("polymarket")
    assert len(client.get("/_sim/wallets").json()["wallets"]) == len(universe.wallets()) == 10 + SIZE


def test_cli_exports_the_polymarket_ground_truth(tmp_path: Path, universe: Universe) -> None:
    path = tmp_path / "truth.jsonl"
    argv = ["--size", str(SIZE), "--whale-trades", str(WHALE), "--export-ground-truth", str(path)]
    assert cli_main([*argv, "--export-source", "polymarket", "--export-only"]) == 0
    lines = path.read_text().splitlines()
    assert len(lines) == sum(sum(1 for _ in universe.trade_rows(w)) for w in universe.wallets("polymarket"))
    assert tuple(json.loads(lines[0])) == ("wallet", *TRADE_FIELDS)
