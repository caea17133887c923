"""ObservedSource (shared/embedded/observed.py): a wallet's progress is its position in its walks, each
counted once — whatever the retries, continuations and time windows the fetcher pages it through."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from shared.adapters.sources.dome import DomeSource
from shared.adapters.sources.limiter import TIERS, RateLimiter
from shared.embedded.observed import ObservedSource
from shared.ports.source import BreakerState, Page, SourceStats
from tests.fakes import FakeTradeSource

W = "0x" + "a" * 40


class WindowedSource:
    """One wallet's trades at timestamps 0..n-1, newest first, in pages of `page_size` rows; each page
    carries its window's total, as Dome's pagination.total does for the request's filters."""

    name = "dome"

    def __init__(self, n: int, page_size: int = 10) -> None:
        self.n, self.page_size, self.stats = n, page_size, SourceStats()

    def pages(self, wallet, cursor=None, since=None, until=None) -> Iterator[Page]:
        stamps = list(range((self.n if until is None else until) - 1, (since or 0) - 1, -1))
        start = int(cursor or 0)
        while True:
            rows = [{"timestamp": t} for t in stamps[start : start + self.page_size]]
            start += self.page_size
            following = str(start) if start < len(stamps) else None
            yield Page(rows, following, total=len(stamps))
            if following is None:
                return

    def breaker_state(self) -> BreakerState:
        return BreakerState(False, 0, 0, None, None)

    def close(self) -> None:
        pass


def take(walk: Iterator[Page], pages: int) -> None:
    """Read `pages` pages of a call, then end it as a part does (the generator is closed)."""
    list(islice(walk, pages))
    walk.close()  # type: ignore[attr-defined]


def test_a_part_retried_from_its_cursor_does_not_count_its_pages_twice():
    observed = ObservedSource(FakeTradeSource({W: 100}, page_size=10))
    take(observed.pages(W), 3)
    take(observed.pages(W), 3)  # the same part again (its task was retried)
    take(observed.pages(W, "30"), 3)  # its continuation
    take(observed.pages(W, "30"), 3)  # retried too
    [wallet] = observed.in_flight()
    assert (wallet.pages, wallet.rows) == (6, 60)
    assert observed.pages_seen == 12  # every page handed out: what the pace is measured on
    take(observed.pages(W, "60"), 10)
    assert observed.in_flight() == []
    sizes = observed.sizes()
    assert (sizes.finished, sizes.mean_pages) == (1, 10)  # no total: the pages it took, from its first


def test_a_part_that_ends_before_its_look_ahead_page_is_continued_from_the_page_before():
    """A part that wanted to end after page 3 read page 4 to know it may (resumable=None): it ends at 3,
    and its continuation, from page 3's cursor, reads page 4 again; it is counted once."""
    observed = ObservedSource(FakeTradeSource({W: 100}, page_size=10))
    take(observed.pages(W), 4)  # pages 1-3 written, page 4 read ahead
    take(observed.pages(W, "30"), 2)  # the continuation: pages 4 and 5
    [wallet] = observed.in_flight()
    assert (wallet.pages, wallet.rows) == (5, 50)


def test_a_wallet_paged_as_windows_at_once_adds_up_its_windows_and_expects_each_row_once():
    observed = ObservedSource(WindowedSource(200))
    newer, older = observed.pages(W, None, 100, None), observed.pages(W, None, None, 100)
    for _ in range(4):
        next(newer)
    for _ in range(2):
        next(older)
    [wallet] = observed.in_flight()
    assert (wallet.walks, wallet.pages, wallet.rows) == (2, 6, 60)
    assert (wallet.expected_rows, wallet.expected_pages, wallet.pages_left) == (200, 20, 14)
    list(newer)
    list(older)
    assert observed.in_flight() == [] and observed.sizes().finished == 1


def test_a_covering_walk_read_for_its_total_then_split_into_windows_is_expected_once():
    observed = ObservedSource(WindowedSource(200))
    take(observed.pages(W), 1)  # the whole history, one page: its total
    take(observed.pages(W, None, 100, None), 4)
    [wallet] = observed.in_flight()
    # Expected from the covering walk (not 200 + 100); done from the window (its first page re-read).
    assert (wallet.expected_rows, wallet.pages, wallet.rows, wallet.walks) == (200, 4, 40, 1)


def test_a_walk_resumed_from_an_earlier_runs_cursor_counts_from_here_and_has_no_known_size():
    observed = ObservedSource(WindowedSource(100))
    take(observed.pages(W, "50"), 2)
    [wallet] = observed.in_flight()
    assert (wallet.pages, wallet.expected_pages, wallet.resumed) == (2, None, True)
    list(observed.pages(W, "70"))
    sizes = observed.sizes()
    assert (sizes.finished, sizes.sample_wallets) == (1, 0)  # its size is not known: not in the sample


def test_the_observed_source_reports_the_key_limit_of_the_source_it_wraps():
    dome = DomeSource("http://127.0.0.1:9/v1", "k", RateLimiter(TIERS["dev"]))
    observed = ObservedSource(dome)
    assert (observed.limit_per_second, observed.page_rows, observed.name) == (50.0, 1000, "dome")
    assert observed.stats is dome.stats
    assert ObservedSource(FakeTradeSource({})).limit_per_second is None
