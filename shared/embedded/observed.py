"""`ObservedSource`: the runner's TradeSource, watched page by page for the progress display.

It hands every call to the source it wraps and records, per wallet, how far each walk has gone, so the
display can show a big wallet's pages done / expected and estimate the requests left, without the fetch
handler knowing about any display.

A walk is one `(since, until)` of a wallet, paged through one or more calls: a part ends after a few
pages and its continuation calls again from the cursor the part ended at; a part that failed is called
again from the cursor it started at. So progress is a *position* in the walk, not a count of pages
handed out: the position of every cursor a call may start from is kept (the calls' entry cursors and
each open call's latest cursor), a call resumes from its cursor's position, and the walk's progress is
the furthest position reached. A retried part therefore never counts its pages twice.

A wallet may be fetched as several walks (time windows, paged at once). Its figures add up its walks:
- expected: the totals (`Page.total` of a walk's first page, cursor None) of the walks no other walk
  of the wallet contains (None bounds are open), so a wallet whose whole history was asked for once
  (to read its total) and then split into windows is expected once, not twice;
- done: the positions of the walks that contain no other, so the windows' pages count and the
  covering walk's first page (re-read by a window) does not.
A walk first seen from a cursor (resumed from an earlier run) has no known start: its pages count from
here, and its wallet's expected size is unknown (the display estimates it, and says so).

Wallets whose walks have all ended are dropped (a million-wallet run keeps only those in flight); what
the estimate needs from them (how many, and how many pages each took) is kept as two sums. A wallet
dead-lettered midway never ends its walk: the display `forget`s it when it sees its letter.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from shared.adapters.clock import SystemClock
from shared.ports.clock import Clock
from shared.ports.source import BreakerState, Page, TradeSource

PAGE_ROWS = 1000  # both APIs' page size (shared/adapters/sources/): used when the source does not say
Bounds = tuple[int | None, int | None]  # (since, until) of a walk


def expected_pages(total: int, page_rows: int) -> int:
    """Requests a walk of `total` rows takes: an empty walk still takes one."""
    return max(1, math.ceil(total / page_rows))


@dataclass
class _Walk:
    started: float
    total: int | None = None  # rows, from the first page (cursor None)
    resumed: bool = False  # first seen from a cursor of an earlier run
    position: tuple[int, int] = (0, 0)  # furthest (pages, rows) reached
    ended: bool = False
    open_calls: int = 0
    at: dict[str, tuple[int, int]] = field(default_factory=dict)  # cursor -> (pages, rows) before it


def _contains(outer: Bounds, inner: Bounds) -> bool:
    """Whether walk `outer` covers all of `inner` (and is another walk); None is an open bound."""

    def span(b: Bounds) -> tuple[float, float]:
        return (float("-inf") if b[0] is None else b[0], float("inf") if b[1] is None else b[1])

    (lo, hi), (ilo, ihi) = span(outer), span(inner)
    return outer != inner and lo <= ilo and ihi <= hi


@dataclass(frozen=True)
class WalletProgress:
    """One wallet in flight, its walks added up (the module docstring)."""

    wallet: str
    pages: int
    rows: int
    expected_pages: int | None  # None: some walk's size is unknown
    expected_rows: int | None
    walks: int  # walks that contain no other (time windows paged at once)
    resumed: bool  # some walk was resumed from an earlier run: its earlier pages are not counted here
    started: float  # monotonic time its first walk was seen
    paging: bool  # a call is paging it now (else it waits: for its next part, a retry, or nothing)

    @property
    def pages_left(self) -> int | None:
        """Requests left, when known: at least one while a walk is open."""
        return None if self.expected_pages is None else max(self.expected_pages - self.pages, 1)


@dataclass(frozen=True)
class Sizes:
    """What the estimate knows of wallet sizes: wallets finished here, and a sample of sizes in pages."""

    finished: int
    sample_pages: int
    sample_wallets: int

    @property
    def mean_pages(self) -> float | None:
        return self.sample_pages / self.sample_wallets if self.sample_wallets else None


class ObservedSource:
    """A TradeSource that records the walks it hands out (the module docstring); thread-safe."""

    def __init__(self, inner: TradeSource, clock: Clock | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.stats = inner.stats  # the same object: the source keeps counting into it
        self.clock = clock or SystemClock()
        # Not in the TradeSource port: the HTTP sources have them (a fake may not).
        self.page_rows: int = getattr(inner, "page_size", PAGE_ROWS)
        limiter = getattr(inner, "limiter", None)
        limit = getattr(limiter, "sustained_per_second", None)
        self.limit_per_second: float | None = limit if isinstance(limit, int | float) and math.isfinite(limit) else None
        self.pages_seen = 0  # every page handed out, re-read ones too: the pace at which pages come
        self._lock = threading.Lock()
        self._wallets: dict[str, dict[Bounds, _Walk]] = {}
        self._finished = self._sample_pages = self._sample_wallets = 0

    # -- the TradeSource port --------------------------------------------------------------------------

    def pages(
        self, wallet: str, cursor: str | None = None, since: int | None = None, until: int | None = None
    ) -> Iterator[Page]:
        bounds = (since, until)
        walk, position = self._open(wallet, bounds, cursor)
        # The cursors this call put in walk.at, the last two kept: a part's continuation starts at the
        # cursor of its last page, or of the page before when the last was read only to look ahead.
        first, added = cursor is None, deque[str]()
        try:
            for page in self.inner.pages(wallet, cursor, since, until):
                position = (position[0] + 1, position[1] + len(page.rows))
                with self._lock:
                    self.pages_seen += 1
                    walk.position = max(walk.position, position)
                    if first and position[0] == 1 and page.total is not None:
                        walk.total = page.total
                    if page.next_cursor is None:
                        walk.ended, walk.at = True, {}
                    elif page.next_cursor not in walk.at:
                        walk.at[page.next_cursor] = position
                        added.append(page.next_cursor)
                        if len(added) > 2:  # a call starts only at an entry or at one of a part's last cursors
                            walk.at.pop(added.popleft(), None)
                yield page
                del page  # not held while the next page is read
        finally:
            self._close(wallet, walk)

    def breaker_state(self) -> BreakerState:
        return self.inner.breaker_state()

    def pace_per_second(self) -> float:
        return self.inner.pace_per_second()

    def close(self) -> None:
        self.inner.close()

    # -- what the display reads ------------------------------------------------------------------------

    def in_flight(self) -> list[WalletProgress]:
        with self._lock:
            return [self._progress(w, walks) for w, walks in self._wallets.items()]

    def sizes(self) -> Sizes:
        """Wallets finished here, and the sizes in pages of those whose size is known (expected, or all
        pages seen from the first), in flight or finished: what a wallet not started yet is guessed at."""
        with self._lock:
            pages, wallets = self._sample_pages, self._sample_wallets
            for w, walks in self._wallets.items():
                known = self._progress(w, walks).expected_pages
                if known is not None:
                    pages, wallets = pages + known, wallets + 1
            return Sizes(self._finished, pages, wallets)

    def forget(self, wallet: str) -> None:
        """Stop counting a wallet no call is paging (it was dead-lettered: nothing will page it again)."""
        with self._lock:
            walks = self._wallets.get(wallet)
            if walks is not None and not any(w.open_calls for w in walks.values()):
                del self._wallets[wallet]

    # -- bookkeeping (under the lock) ------------------------------------------------------------------

    def _open(self, wallet: str, bounds: Bounds, cursor: str | None) -> tuple[_Walk, tuple[int, int]]:
        with self._lock:
            walks = self._wallets.setdefault(wallet, {})
            walk = walks.get(bounds)
            if walk is None:
                walk = walks[bounds] = _Walk(started=self.clock.monotonic(), resumed=cursor is not None)
            walk.open_calls += 1
            walk.ended = False  # a final part retried: its walk is open again until its last page
            if cursor is None:
                return walk, (0, 0)
            # A cursor this walk handed out, or (resumed) one from an earlier run: counted from here.
            return walk, walk.at.setdefault(cursor, walk.position)

    def _close(self, wallet: str, walk: _Walk) -> None:
        with self._lock:
            walk.open_calls -= 1
            walks = self._wallets.get(wallet)
            if walks is None or any(w.open_calls for w in walks.values()):
                return
            innermost = [b for b in walks if not any(_contains(b, o) for o in walks)]
            if not all(walks[b].ended for b in innermost):
                return
            progress = self._progress(wallet, walks)
            self._finished += 1
            size = progress.expected_pages
            if size is None and not progress.resumed:
                size = progress.pages
            if size is not None:
                self._sample_pages, self._sample_wallets = self._sample_pages + size, self._sample_wallets + 1
            del self._wallets[wallet]

    def _progress(self, wallet: str, walks: dict[Bounds, _Walk]) -> WalletProgress:
        outer = [w for b, w in walks.items() if not any(_contains(o, b) for o in walks)]
        inner = [w for b, w in walks.items() if not any(_contains(b, o) for o in walks)]
        totals = [w.total for w in outer]
        known = None if any(t is None for t in totals) else [t for t in totals if t is not None]
        return WalletProgress(
            wallet=wallet,
            pages=sum(w.position[0] for w in inner),
            rows=sum(w.position[1] for w in inner),
            expected_pages=None if known is None else sum(expected_pages(t, self.page_rows) for t in known),
            expected_rows=None if known is None else sum(known),
            walks=len(inner),
            resumed=any(w.resumed for w in walks.values()),
            started=min(w.started for w in walks.values()),
            paging=any(w.open_calls for w in walks.values()),
        )
