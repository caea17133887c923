"""Splitting a big wallet's walk into time windows fetched in parallel (docs/design.md, "Windows").

A wallet's pages follow one cursor, so a million-trade wallet paged alone takes a thousand round trips
one after another. Both sources take start/end bounds in whole seconds, so the walk can be cut into
windows, each its own chain of parts. When what a chain has read shows that much is left — Dome's
`pagination.total` says so exactly; for the Data API, the time its pages covered so far says it
roughly — the chain ends at the page in hand and hands the rest to child windows, each of which decides
again from its own first pages (work stealing: a window that is still big splits again, so an uneven
history spreads too).

Why nothing is lost or doubled at a boundary: pages come newest first, so when a chain stops at a page
whose oldest trade is at second `t`, every trade after `t` inside its window has been read. The chain
writes the page's trades after `t` and covers (t, window end]; the children cover [window start, t] —
second `t` included, whose trades the chain did NOT write (more of them may follow on the next page).
A transaction has one timestamp, so no transaction straddles a boundary, and keys that count
occurrences inside a transaction stay the same. Every second belongs to exactly one window.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from shared.core.messages import MAX_CHILDREN, Window


@dataclass(frozen=True)
class SplitPolicy:
    """When a chain hands the rest of its window to children (SPLIT_* settings)."""

    window_pages: int = 10  # pages a window aims at; a chain with more than twice this left splits
    max_children: int = 16  # windows one split hands out (bounded by MAX_CHILDREN)
    probe_pages: int = 2  # without a total (the Data API), pages read before the pace is trusted
    enabled: bool = True


@dataclass(frozen=True)
class Split:
    at: int  # the chain covers (at, window end]; its trades at or before `at` are the children's
    children: tuple[Window, ...]
    estimate: int  # pages each child is expected to take


@dataclass(frozen=True)
class Walked:
    """What a chain's first part has read so far, the page in hand included."""

    window: Window
    newest: int  # the first trade's second (the chain's newest)
    oldest: int  # the page in hand's oldest second
    rows: int
    pages: int
    total: int | None  # the API's count for the window, when it gives one


def plan_split(policy: SplitPolicy, walked: Walked) -> Split | None:
    """The split to make now, or None to go on paging this chain."""
    if not policy.enabled:
        return None
    lo, hi = walked.window
    at = walked.oldest
    if hi is not None and at >= hi:
        return None  # the children would cover the whole window again: no progress
    if lo is not None and at <= lo:
        return None  # nothing left below the page in hand
    per_page = max(walked.rows / max(walked.pages, 1), 1.0)
    seconds = max(walked.newest - at + 1, 1)
    pace = walked.rows / seconds  # trades per second so far
    left: float
    if walked.total is not None:
        left = max(walked.total - walked.rows, 0)
    elif walked.pages < policy.probe_pages:
        return None
    elif lo is not None:
        left = pace * (at - lo)
    elif walked.pages < 2 * policy.window_pages:
        return None  # no total, no start: only a chain that has proved big by walking is split
    else:
        return _open_ended(policy, walked, at, seconds, per_page)
    pages_left = math.ceil(left / per_page)
    if pages_left <= 2 * policy.window_pages:
        return None
    k = min(policy.max_children, MAX_CHILDREN, math.ceil(pages_left / policy.window_pages))
    # Where the window's trades probably start: its own start, or as far back as the pace says.
    start = lo if lo is not None else max(0, at - math.ceil(left / pace) if pace > 0 else 0)
    children = _even(lo, start, at, k)
    if len(children) < 2:
        return None
    return Split(at, children, math.ceil(pages_left / len(children)))


def _open_ended(policy: SplitPolicy, walked: Walked, at: int, seconds: int, per_page: float) -> Split | None:
    """No total and no start (the Data API's first window): how much is left is unknown, but the chain
    has walked twice a window's pages, so it is big. Children of doubling spans going back from `at`
    (the first as long as what was read), the oldest open: each bounded child measures its own pace,
    and the open one splits again once it has proved big too."""
    k = min(policy.max_children, MAX_CHILDREN) // 2
    if k < 2:
        return None
    bounds, top = [], at
    for i in range(k - 1):
        low = top - max(seconds, 2) * 2**i + 1  # at least two seconds: Dome refuses start >= end
        if low <= 0:
            break
        bounds.append((low, top))
        top = low - 1
    bounds.append((None, top))
    return Split(at, tuple(reversed(bounds)), math.ceil(walked.pages))


def _even(lo: int | None, start: int, at: int, k: int) -> tuple[Window, ...]:
    """[start, at] in k windows of equal seconds, each at least two seconds long (Dome refuses a start
    that is not before the end); the first keeps the window's own start (None: open)."""
    start = min(start, at)
    span = at - start + 1
    k = min(k, span // 2)
    edges = sorted({start + (span * i) // k for i in range(k)} | {at + 1})
    out: list[Window] = []
    for a, b in itertools.pairwise(edges):
        out.append((a, b - 1))
    if out:
        out[0] = (lo, out[0][1])
    return tuple(out)
