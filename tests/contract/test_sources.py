"""One contract for both trade sources: the real clients (DomeSource, PolymarketSource) against the
in-process simulator, which serves both APIs from one universe.

Every result is checked row for row with the `verify_*` of its source against that source's exported
ground truth, as the pipeline's own check does. Server and clients share one fake clock: rate-limit
windows, Retry-After pauses and back-off all run in fake time, so nothing here depends on timing.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from emulators.dome.config import Faults, SimConfig
from emulators.dome.server import RunningSimulator, run_simulator
from emulators.dome.universe import Universe
from emulators.truth import Verification, verify_dome, verify_polymarket
from shared.adapters.local.files import LocalObjectStore
from shared.adapters.sources.dome import DomeSource
from shared.adapters.sources.limiter import TIERS, RateLimiter, Window
from shared.adapters.sources.polymarket import PolymarketSource
from shared.adapters.sources.share import FleetShare
from shared.core.errors import (
    AuthFailure,
    MalformedPage,
    PermanentError,
    PipelineError,
    SystemicError,
    TransientError,
    TruncatedPage,
)
from shared.core.messages import WalletTask
from shared.core.tables import TRADE_ROW as COLUMNS
from shared.core.trades import iso_timestamp, part_line
from shared.handlers.fetch import announced_part_name, fetch
from shared.ports.source import Page, may_end_after
from tests.embedded.conftest import RecordingPublisher
from tests.fakes import FakeClock, budget

SOURCES = ("dome", "polymarket")
EDGES = (
    "empty",
    "one",
    "n999",
    "n1000",
    "n1001",
    "multi_fill_tx",
    "partial_fills",
    "same_ts_boundary",
    "no_log_index",
    "straddle",
    "combo",
    "no_tx_hash",
    "dust",
)
NOW = 1_790_000_000.0  # 2026-09-21, the simulator's wall clock
_COLUMNS = "{" + ", ".join(f"'{c.name}': '{c.duckdb}'" for c in COLUMNS) + "}"


@dataclass
class Contract:
    sim: RunningSimulator
    clock: FakeClock
    truth: dict[str, Path]

    @property
    def universe(self) -> Universe:
        return self.sim.state.universe

    def wallet(self, name: str) -> str:
        u = self.universe
        return u.special.get(name) or u.data_api_special[name]

    def client(
        self,
        source: str,
        *,
        unthrottled: bool = False,
        max_attempts: int = 10,
        limiter: RateLimiter | None = None,
        **kwargs: Any,
    ) -> DomeSource | PolymarketSource:
        """The real client as the product builds it, on the shared fake clock. `unthrottled`: no
        client-side limiter, so the server's windows are what stops it."""
        if source == "dome":
            windows = () if unthrottled else TIERS["dev"]
            return DomeSource(
                self.sim.base_url,
                kwargs.pop("api_key", "contract-key"),
                limiter or RateLimiter(windows, clock=self.clock),
                clock=self.clock,
                max_attempts=max_attempts,
                **kwargs,
            )
        windows = () if unthrottled else (Window(200, 10.0),)
        return PolymarketSource(
            self.sim.data_api_url,
            RateLimiter(windows, clock=self.clock),
            clock=self.clock,
            max_attempts=max_attempts,
            **kwargs,
        )

    def verify(self, source: str, rows: list[dict[str, Any]], wallets: list[str], tmp_path: Path) -> Verification:
        """Load the canonical rows into a DuckDB `trades` table and compare them with the ground truth."""
        part = tmp_path / f"rows-{source}.jsonl"
        part.write_text("".join(part_line(r) for r in rows))
        con = duckdb.connect()
        try:
            con.execute(
                "CREATE TABLE trades AS SELECT * FROM read_json(?, format = 'newline_delimited', "
                f"columns = {_COLUMNS})",
                [str(part)],
            )
            check = verify_dome if source == "dome" else verify_polymarket
            return check(con, str(self.truth[source]), wallets)
        finally:
            con.close()

    def truth_count(self, source: str, wallet: str) -> int:
        rows = self.universe.rows(wallet) if source == "dome" else self.universe.trade_rows(wallet)
        return sum(1 for _ in rows)


async def _no_wait(seconds: float) -> None:
    return None


@pytest.fixture(scope="module")
def contract(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contract]:
    clock = FakeClock()
    config = SimConfig(
        size=4,
        whale_trades=1_200,
        tier="dev",  # Dome: 100/s and 500 per 10 s per key; the Data API: 200 per 10 s per client
        clock=clock.monotonic,
        wall_clock=lambda: NOW,
        sleep=_no_wait,
    )
    folder = tmp_path_factory.mktemp("truth")
    with run_simulator(config) as sim:
        universe = sim.state.universe
        truth = {source: folder / f"{source}.jsonl" for source in SOURCES}
        for source, path in truth.items():  # every wallet: Dome's endpoint serves the Data API's edges too
            universe.export_ground_truth(path, source, wallets=universe.wallets("polymarket"))
        yield Contract(sim, clock, truth)


@pytest.fixture
def sim(contract: Contract) -> Iterator[Contract]:
    """The shared simulator with default faults and fresh stats, its windows long since drained."""
    contract.sim.state.patch_faults(Faults().model_dump())
    contract.sim.state.reset_stats()
    contract.clock.advance(60.0)
    contract.clock.slept.clear()
    yield contract
    contract.sim.state.patch_faults(Faults().model_dump())


def walk(
    client: DomeSource | PolymarketSource, wallet: str, cursor: str | None = None, since: int | None = None
) -> list[Page]:
    try:
        return list(client.pages(wallet, cursor=cursor, since=since))
    finally:
        client.close()


def rows_of(pages: list[Page]) -> list[dict[str, Any]]:
    return [row for page in pages for row in page.rows]


def assert_exact(sim: Contract, source: str, rows: list[dict[str, Any]], wallets: list[str], tmp_path: Path) -> None:
    check = sim.verify(source, rows, wallets, tmp_path)
    assert check.exact, check
    assert check.warehouse_rows == check.truth_rows == sum(sim.truth_count(source, w) for w in wallets)
    keys = [(r["wallet_address"], r["trade_key"]) for r in rows]
    assert len(keys) == len(set(keys)), "two rows share a trade_key: the warehouse MERGE would drop one"
    assert {r["source"] for r in rows} <= {source}


# Paging to the end


@pytest.mark.parametrize("source", SOURCES)
def test_paging_every_edge_wallet_to_the_end_equals_the_ground_truth(
    sim: Contract, source: str, tmp_path: Path
) -> None:
    rows: list[dict[str, Any]] = []
    wallets = [sim.wallet(name) for name in EDGES]
    for name, wallet in zip(EDGES, wallets, strict=True):
        client = sim.client(source)
        pages = walk(client, wallet)
        rows += rows_of(pages)
        expected_requests = max(1, math.ceil(sim.truth_count(source, wallet) / 1000))
        assert len(pages) == client.stats.requests == expected_requests, name
        assert sim.sim.state.stats.by_wallet[wallet] == expected_requests, name
        assert pages[-1].next_cursor is None and all(p.next_cursor for p in pages[:-1]), name
        assert client.stats.retries == 0, name
    assert_exact(sim, source, rows, wallets, tmp_path)  # Verification.wallets_wrong names any culprit
    assert sim.clock.slept == []  # no faults, the limiter under the server's windows: nothing waited


@pytest.mark.parametrize("source", SOURCES)
def test_a_page_of_exactly_1000_rows_is_the_last_and_1001_takes_two(sim: Contract, source: str) -> None:
    for name, sizes in (("n999", [999]), ("n1000", [1000]), ("n1001", [1000, 1])):
        wallet = sim.wallet(name)
        assert [len(p.rows) for p in walk(sim.client(source), wallet)] == sizes, name
        assert sim.sim.state.stats.by_wallet_cursor[(wallet, False)] == 1
        assert sim.sim.state.stats.by_wallet_cursor.get((wallet, True), 0) == len(sizes) - 1


@pytest.mark.parametrize("source", SOURCES)
def test_since_is_an_inclusive_lower_bound_and_0_means_the_whole_history(
    sim: Contract, source: str, tmp_path: Path
) -> None:
    wallet = sim.wallet("old_fills")  # 200 of its 350 fills are older than the Data API's 3-year default
    assert_exact(sim, source, rows_of(walk(sim.client(source), wallet, since=0)), [wallet], tmp_path)
    stamps = sorted(f.timestamp for f in sim.universe.fills(wallet))
    since = stamps[100]
    got = rows_of(walk(sim.client(source), wallet, since=since))
    assert len(got) == sum(1 for t in stamps if t >= since) > 200
    assert min(r["timestamp"] for r in got) == iso_timestamp(since)


# Limits and faults


@pytest.mark.parametrize("source", SOURCES)
def test_429s_and_5xx_are_retried_and_the_result_is_still_exact(sim: Contract, source: str, tmp_path: Path) -> None:
    sim.sim.state.patch_faults(
        burst_429_rate=0.1,
        error_5xx_rate=0.1,
        unavailable_rate=0.05,
        unavailable_retry_after=2,
        truncated_rate=0.05,
        drop_rate=0.05,
        short_page_rate=0.3,  # /v2/trades only
    )
    wallets = [sim.wallet(n) for n in ("n1001", "same_ts_boundary", "straddle", "no_log_index", "combo")]
    client = sim.client(source)
    client.page_size = 100  # more requests, more faults
    rows = [row for w in wallets for row in rows_of(walk(client, w))]
    assert_exact(sim, source, rows, wallets, tmp_path)
    faults = sim.sim.state.stats.faults
    assert client.stats.retries >= 5 and client.stats.rate_limited == faults.get("burst_429", 0) > 0
    assert faults.get("error_5xx", 0) + faults.get("unavailable", 0) > 0


@pytest.mark.parametrize("source", SOURCES)
def test_the_servers_window_answers_429_with_retry_after_and_the_client_waits_it_out(
    sim: Contract, source: str, tmp_path: Path
) -> None:
    wallet = sim.wallet("n1001")
    client = sim.client(source, unthrottled=True)
    client.page_size = 5  # 201 requests at one instant: past Dome's 100/s and the Data API's 200/10 s
    rows = rows_of(walk(client, wallet))
    assert_exact(sim, source, rows, [wallet], tmp_path)
    assert client.stats.rate_limited >= 1 and sim.sim.state.stats.rate_limited == client.stats.rate_limited
    assert max(sim.clock.slept) >= 1.0  # the Retry-After the server sent, honoured in (fake) time


def test_an_instance_of_a_fleet_learns_its_part_of_the_key_from_the_answers(sim: Contract, tmp_path: Path) -> None:
    """Alone on the key, by the simulator's x-ratelimit-* headers: from its floor (a tenth of the target)
    to the whole key's target within seconds, without a 429."""
    share = FleetShare(TIERS["dev"], instances=10)
    client = sim.client("dome", limiter=RateLimiter(TIERS["dev"], clock=sim.clock, share=share))
    client.page_size = 5  # 201 requests
    wallet = sim.wallet("n1001")
    start = client.pace_per_second()
    assert_exact(sim, "dome", rows_of(walk(client, wallet)), [wallet], tmp_path)
    assert start == share.floor and client.pace_per_second() >= 0.9 * share.target
    assert client.stats.rate_limited == 0


@pytest.mark.parametrize("source", SOURCES)
def test_a_503_with_retry_after_is_waited_out(sim: Contract, source: str) -> None:
    sim.sim.state.patch_faults(unavailable_rate=1.0, unavailable_retry_after=7)
    client = sim.client(source, max_attempts=3)
    with pytest.raises(TransientError) as caught:
        walk(client, sim.wallet("one"))
    assert caught.value.fields["wallet"] == sim.wallet("one")
    assert [s for s in sim.clock.slept if s >= 7] and client.stats.requests == 3


# Malformed pages


@dataclass(frozen=True)
class Malformed:
    faults: dict[str, Any]
    error: type[PipelineError]
    retried: bool


MALFORMED = {
    "truncated JSON": Malformed({"truncated_rate": 1.0}, TruncatedPage, True),
    "HTML body with 200": Malformed({"html_rate": 1.0, "html_status": 200}, TruncatedPage, True),
    "CDN block page 403": Malformed({"html_rate": 1.0, "html_status": 403}, SystemicError, False),
    "row missing a field": Malformed({"missing_field_rate": 1.0}, MalformedPage, False),
}


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize("source", SOURCES)
def test_malformed_pages_raise_the_right_error_class(sim: Contract, source: str, case: str) -> None:
    spec = MALFORMED[case]
    sim.sim.state.patch_faults(spec.faults)
    client = sim.client(source, max_attempts=3)
    wallet = sim.wallet("n999")
    with pytest.raises(spec.error) as caught:
        walk(client, wallet)
    assert caught.value.fields["wallet"] == wallet
    assert client.stats.requests == (3 if spec.retried else 1)
    assert isinstance(caught.value, TransientError) == spec.retried


# Resuming from a cursor


@pytest.mark.parametrize("name", ["n1001", "same_ts_boundary", "straddle", "no_tx_hash"])
@pytest.mark.parametrize("source", SOURCES)
def test_resuming_from_any_resumable_page_cursor_gives_the_truth_once(
    sim: Contract, source: str, name: str, tmp_path: Path
) -> None:
    wallet = sim.wallet(name)
    client = sim.client(source)
    client.page_size = {"straddle": 250, "no_tx_hash": 200}.get(name, 1000)
    pages = walk(client, wallet)
    ends = [may_end_after(page, after) for page, after in itertools.zip_longest(pages, pages[1:])]
    resumable = [k for k, page in enumerate(pages) if ends[k] and page.next_cursor]
    assert resumable, "no page to resume from: the test proves nothing"
    for k, (page, after) in enumerate(itertools.pairwise(pages)):  # a part may end only between two transactions
        same_tx = (page.rows[-1]["tx_hash"], page.rows[-1]["timestamp"]) == (
            after.rows[0]["tx_hash"],
            after.rows[0]["timestamp"],
        )
        assert ends[k] == (source == "dome" or not same_tx)
    if (source, name) == ("polymarket", "straddle"):
        assert not ends[3]  # rows 750-999: the sweep's identical fills go on at row 1000
    for k in resumable:
        first = sim.client(source)
        first.page_size = client.page_size
        stream = first.pages(wallet)
        head = list(itertools.islice(stream, k + 1))  # stop after page k, as a part budget would
        stream.close()
        first.close()
        rest = sim.client(source)
        rest.page_size = client.page_size
        tail = walk(rest, wallet, cursor=head[-1].next_cursor)
        assert_exact(sim, source, rows_of(head) + rows_of(tail), [wallet], tmp_path)


def test_a_page_that_splits_identical_fills_is_not_resumable_on_the_data_api(sim: Contract, tmp_path: Path) -> None:
    wallet = sim.wallet("straddle")
    pages = walk(sim.client("polymarket"), wallet)
    assert [may_end_after(p, after) for p, after in itertools.zip_longest(pages, pages[1:])] == [False, True]
    # Why: resuming there would number the second half of the transaction's identical fills from 0 again.
    tail = walk(sim.client("polymarket"), wallet, cursor=pages[0].next_cursor)
    keys = {r["trade_key"] for r in pages[0].rows} & {r["trade_key"] for r in tail[0].rows}
    assert len(keys) == 3
    assert all(p.resumable for p in walk(sim.client("dome"), wallet))  # Dome rows carry their own log_index


@pytest.mark.parametrize("source", SOURCES)
def test_a_page_goes_out_before_the_next_one_is_read(sim: Contract, source: str) -> None:
    """Memory: a worker holds the page it writes, not that one and the next (issue 15's 250 MB)."""
    client = sim.client(source)
    client.page_size = 250
    try:
        stream = client.pages(sim.wallet("n1001"))
        first = next(stream)
        assert first.next_cursor is not None and client.stats.requests == 1
        second = next(stream)
        assert client.stats.requests == 2 and second.rows[0]["trade_key"] != first.rows[0]["trade_key"]
        stream.close()
    finally:
        client.close()


@pytest.mark.parametrize("source", SOURCES)
def test_one_page_parts_end_only_between_transactions_and_give_the_truth_once(
    sim: Contract, source: str, tmp_path: Path
) -> None:
    """The fetch loop asks for a part end after every page; where that is known only from the next page
    (the Data API), it reads the next page, and ends before it only if it starts another transaction."""
    wallet = sim.wallet("straddle")
    store, rows, ends, task = LocalObjectStore(tmp_path / "parts"), [], [], WalletTask(run_id="r", wallet=wallet)
    client = sim.client(source)
    client.page_size = 250
    task = task.model_copy(update={"source": source})
    try:
        while task is not None:
            out = fetch(
                task,
                source=client,
                store=store,
                publisher=RecordingPublisher(),
                clock=sim.clock,
                budget=budget(max_pages=1),
            )
            rows += [json.loads(line) for line in store.read_lines(announced_part_name(out.file))]
            ends.append(len(rows))
            task = out.continuation
    finally:
        client.close()
    assert_exact(sim, source, rows, [wallet], tmp_path)
    # Rows 750-999 end inside the sweep's transaction of identical fills: on the Data API no part ends
    # at row 1000 (its occurrence numbers would start again); Dome's rows carry their log_index.
    assert (1000 in ends) == (source == "dome")
    assert len(ends) > 1


# What the defaults would hide


def test_a_client_leaving_taker_only_at_the_api_default_misses_the_maker_fills(sim: Contract, tmp_path: Path) -> None:
    wallets = [sim.wallet(n) for n in ("n1001", "straddle", "multi_fill_tx")]
    client = sim.client("polymarket", taker_only=True)
    rows = [row for w in wallets for row in rows_of(walk(client, w))]
    check = sim.verify("polymarket", rows, wallets, tmp_path)
    assert not check.exact and check.extra == 0 and check.duplicates == 0
    assert check.missing == check.truth_rows - len(rows) > 1000  # the straddle's sweep alone is 6 maker fills


# Dome only: the 401 body, the limit's edges


def test_a_dome_401_about_offsets_is_permanent_not_an_auth_failure(sim: Contract) -> None:
    client = sim.client("dome")
    response = requests.get(
        f"{sim.sim.base_url}/polymarket/orders",
        params={"user": sim.wallet("n1001"), "offset": 10_001},
        headers={"Authorization": "Bearer contract-key"},
        timeout=10,
    )
    assert response.status_code == 401 and response.json()["error"] == "Offset deprecated"
    error = client.classify_status(response, {"wallet": sim.wallet("n1001")})
    client.close()
    assert isinstance(error, PermanentError) and not isinstance(error, SystemicError)


def test_a_dome_401_for_the_key_is_an_auth_failure(sim: Contract) -> None:
    with pytest.raises(AuthFailure):
        walk(sim.client("dome", api_key=None), sim.wallet("one"))


@pytest.mark.parametrize("source", SOURCES)
def test_a_page_size_past_the_documented_maximum_is_a_permanent_400(sim: Contract, source: str) -> None:
    client = sim.client(source)
    client.page_size = 1001
    with pytest.raises(PermanentError) as caught:
        walk(client, sim.wallet("n1001"))
    assert "400" in str(caught.value) and client.stats.requests == 1


@pytest.mark.parametrize("source", SOURCES)
def test_an_invalid_wallet_is_a_permanent_400(sim: Contract, source: str) -> None:
    with pytest.raises(PermanentError):
        walk(sim.client(source), "0xnot-a-wallet")


# Dome only: the count a reconciliation compares with (shared/handlers/verify.py)


def test_dome_counts_a_wallet_with_one_limit_1_request_exactly_as_many_rows_as_its_walk(sim: Contract) -> None:
    names = ("empty", "one", "n1001", "no_log_index", "multi_fill_tx")
    client = sim.client("dome")
    try:
        counts = {name: client.count(sim.wallet(name)) for name in names}
    finally:
        client.close()
    assert counts == {name: sim.truth_count("dome", sim.wallet(name)) for name in names}
    assert client.stats.requests == len(names)  # one request each, through the same limiter


def test_a_dome_count_fails_like_a_page(sim: Contract) -> None:
    sim.sim.state.patch_faults({"missing_field_rate": 1.0})  # the one row of the answer breaks the shape
    client = sim.client("dome", max_attempts=3)
    try:
        with pytest.raises(MalformedPage):
            client.count(sim.wallet("n999"))
        with pytest.raises(PermanentError):
            client.count("0xnot-a-wallet")
    finally:
        client.close()
    keyless = sim.client("dome", api_key=None)
    try:
        with pytest.raises(AuthFailure):
            keyless.count(sim.wallet("one"))
    finally:
        keyless.close()
