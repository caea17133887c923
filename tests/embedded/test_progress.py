"""The live display of `backfill run`, driven by a real run against the simulator: on a terminal a bar,
the key's limit and a line per big wallet with its pages done / expected; elsewhere one whole line per
fact whatever the width. The whale is held at known pages (`HoldAt`) so the display is read while it is
in flight, at a page the test knows, with no reliance on timing."""

from __future__ import annotations

import io
import math
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from rich.console import Console

from emulators.dome.config import SimConfig
from emulators.dome.server import run_simulator
from shared import bootstrap
from shared.bootstrap import Overrides
from shared.core.errors import PermanentError
from shared.embedded.progress import ProgressView
from shared.embedded.runner import EmbeddedRunner, RunConfig
from shared.ports.source import Page
from shared.settings import Settings
from tests.fakes import FakeTradeSource, budget

HOLD_AT = (5, 12)  # the whale's pages at which the display is read: in its first part, and in its second
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class HoldAt:
    """A TradeSource around a real one that holds one wallet's walk after the given pages (counted across
    its calls) until the test has looked."""

    def __init__(self, inner, wallet: str, at: tuple[int, ...]) -> None:
        self.inner, self.wallet = inner, wallet
        self.name, self.stats = inner.name, inner.stats
        self.limiter, self.page_size = inner.limiter, inner.page_size
        self.handed: set[str] = set()  # distinct pages handed out (a part's look-ahead page is read again)
        self.used: set[str] = set()  # distinct pages after which the caller asked for more
        self.held = {n: threading.Event() for n in at}
        self.released = {n: threading.Event() for n in at}

    @property
    def pages_handed(self) -> int:
        return len(self.handed)

    def pages(self, wallet, cursor=None, since=None, until=None) -> Iterator[Page]:
        for page in self.inner.pages(wallet, cursor, since, until):
            mine = wallet == self.wallet and bool(page.rows)
            first = page.rows[0]["trade_key"] if mine else ""
            if mine:
                self.handed.add(first)
            yield page
            if mine and first not in self.used:  # the caller asks for the next page: hold it
                self.used.add(first)
                n = len(self.used)
                if n in self.held:
                    self.held[n].set()
                    self.released[n].wait(60)

    def breaker_state(self):
        return self.inner.breaker_state()

    def close(self) -> None:
        self.inner.close()


def plain(text: str) -> str:
    return ANSI.sub("", text)


@pytest.fixture(scope="module")
def held_run(tmp_path_factory):
    """One run of the whale (13 pages, 10 per part) and two small wallets at Dome's Dev tier, the display
    read at each hold: what the terminal showed, what the log showed, and what the source recorded."""
    tmp = tmp_path_factory.mktemp("progress")
    with run_simulator(SimConfig(seed=11, size=0, whale_trades=12_500, tier="dev")) as sim:
        universe = sim.state.universe
        whale = universe.special["whale"]
        wallets = [whale, universe.special["n1001"], universe.special["one"]]
        settings = Settings(dome_api_base_url=sim.base_url, dome_api_key="k", dome_tier="dev", lookups=False)
        source = HoldAt(bootstrap.make_source(settings), whale, HOLD_AT)
        deps = bootstrap.embedded(settings, db=tmp / "w.duckdb", o=Overrides(source=source))
        deps.warehouse.create_schema()
        deps.warehouse.add_traders(wallets)
        config = RunConfig(run_id="r1", budget=budget(max_pages=10), lease_seconds=3600, workers=2)
        runner = EmbeddedRunner(config, deps)
        terminal = io.StringIO()
        view = ProgressView(runner, Console(file=terminal, force_terminal=True, width=120), every=0)
        log = io.StringIO()
        log_view = ProgressView(runner, Console(file=log, force_terminal=False, width=80))
        seen: dict[int, dict] = {}

        def on_tick(r: EmbeddedRunner) -> None:
            view.tick(r)
            for n, held in source.held.items():
                if held.is_set() and n not in seen:
                    mark = terminal.tell()
                    view.tick(r, force=True)
                    log_view.tick(r, force=True)
                    [whale_now] = [w for w in r.source.in_flight() if w.wallet == whale]
                    seen[n] = {"terminal": plain(terminal.getvalue()[mark:]), "wallet": whale_now}
                    source.released[n].set()

        with view:
            runner.run(on_tick=on_tick)
        yield {
            "seen": seen,
            "log": log.getvalue(),
            "whale": whale,
            "rows": universe.count(whale),
            "pages_handed": source.pages_handed,
            "trades": deps.warehouse.status(datetime.now(UTC)).trades,
            "all_rows": sum(universe.count(w) for w in wallets),
            "finished": runner.source.sizes().finished,
            "in_flight_after": runner.source.in_flight(),
        }
        deps.warehouse.close()


def test_on_a_terminal_the_display_shows_the_wallets_bar_and_the_requests_per_second_against_the_key_limit(held_run):
    frame = held_run["seen"][HOLD_AT[0]]["terminal"]
    assert "━" in frame  # rich's bar
    assert re.search(r"wallets\s+━+.*\d+/3 \(\d+%\)", frame), frame
    # Dome's Dev tier: 500 per 10 s sustained (the rate itself is "-" until a second has passed)
    assert re.search(r"(\d+\.\d|-)/50 req/s", frame), frame
    assert "429s 0" in frame and "ETA" in frame


def test_a_big_wallet_in_flight_has_a_line_with_pages_done_of_expected_across_its_parts(held_run):
    expected = math.ceil(held_run["rows"] / 1000)  # the simulator's pages for the whale (1000 rows each)
    assert expected >= 10 and held_run["pages_handed"] == expected
    short = held_run["whale"][:6] + "…" + held_run["whale"][-4:]
    for n in HOLD_AT:  # page 12 is in the second part: the continuation carries on, it does not restart
        frame = held_run["seen"][n]["terminal"]
        line = next(line for line in frame.splitlines() if short in line)
        assert f"pages {n}/{expected}" in line and f"rows {n * 1000:,}" in line, line


def test_the_expected_size_of_a_wallet_is_the_total_the_api_reports_for_it(held_run):
    for n in HOLD_AT:
        wallet = held_run["seen"][n]["wallet"]
        assert wallet.expected_rows == held_run["rows"] and wallet.pages == n and not wallet.resumed


def test_when_the_run_ends_no_wallet_is_left_in_flight_and_each_is_counted_finished_once(held_run):
    assert held_run["in_flight_after"] == [] and held_run["finished"] == 3
    assert held_run["trades"] == held_run["all_rows"]  # holding the whale changed nothing it loaded


def test_off_a_terminal_each_status_line_stays_one_line_however_narrow_the_console(held_run):
    lines = held_run["log"].splitlines()
    assert lines and all(line.startswith(("progress: ", "  wallet ")) for line in lines), lines
    assert max(len(line) for line in lines) > 80  # long enough that an 80-column console would wrap it
    assert sum(line.startswith("progress: ") for line in lines) == len(HOLD_AT)
    whale_lines = [line for line in lines if held_run["whale"] in line]
    assert len(whale_lines) == len(HOLD_AT) and "pages 12/13" in whale_lines[-1]


def test_a_wallet_dead_lettered_midway_is_no_longer_shown_in_flight_nor_counted_in_the_eta(tmp_path):
    good, bad = "0x" + "1" * 40, "0x" + "2" * 40
    fake = FakeTradeSource({good: 30, bad: 30}, fail={bad: PermanentError("the API refuses this wallet")})
    deps = bootstrap.embedded(Settings(), db=tmp_path / "w.duckdb", o=Overrides(source=fake))
    deps.warehouse.create_schema()
    deps.warehouse.add_traders([good, bad])
    runner = EmbeddedRunner(RunConfig(run_id="r1", budget=budget(), lease_seconds=3600, workers=2), deps)
    runner.run()
    assert [w.wallet for w in runner.source.in_flight()] == [bad]  # its walk began and never ended
    snap = ProgressView(runner, Console(file=io.StringIO(), force_terminal=False)).snapshot()
    assert runner.source.in_flight() == [] and (snap.done, snap.dead_letters) == (1, 1)
    assert snap.eta.known == snap.eta.guessed == 0
