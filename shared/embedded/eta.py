"""The ETA of `backfill run`'s display: the requests left, at the pace the run is observed to make them.

Time is spent on requests, one per page of 1000 rows, so the ETA counts requests, not wallets (a whale
of 250 pages and 249 one-page wallets are the same work) and divides them by a pace that was measured,
never by the key's limit, which the run may not reach (latency, workers, a lone wallet's chain):

- requests left, KNOWN: for each wallet in flight whose size the API told (Dome: `pagination.total` of
  each walk's first page, shared/embedded/observed.py), its expected pages less the pages done, and at
  least one while it is open;
- requests left, GUESSED: every other wallet neither complete nor dead-lettered (not started yet,
  queued, resumed from an earlier run, just fetched and not yet committed, or any wallet of the Data
  API, which gives no total) counts as the mean size in pages of the wallets whose size is known
  (expected pages, or all the pages a finished wallet took), less what it did already, else one page;
- pace: trade pages handed out per second over the last 10 s (the key's longest window; measured by
  the display), so 429s, retries and the lookups that spend Dome's key slow it as they slow the run;
- a floor: a wallet's pages are a chain (each page's cursor comes from the one before), so the run
  cannot end before its biggest wallet does. The ETA is the larger of requests left / pace and, for
  each wallet in flight of known size, its pages left at its own pace so far (pages / time since it
  began): at the end of a run the whale's chain, not the key, is what takes the time.

It is shown as `ETA 2m05s` only when nothing is guessed (every wallet left is in flight with a known
size), otherwise as `ETA ~2m05s (estimate)`: sizes are heavy-tailed, and the mean of those seen misses
a whale not started yet. With no page in the last 10 s there is no pace and no ETA (`-`). Small
errors it accepts: a page read twice (a retried part, a part's look-ahead page at its end) is a
request not counted as left; a wallet split into time windows may take one page more per window.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.embedded.observed import WalletProgress


@dataclass(frozen=True)
class Eta:
    seconds: float | None  # None: no pace to divide by
    estimated: bool  # some of the requests left are guessed (the module docstring)
    known: int  # requests left of wallets of known size
    guessed: int  # requests left guessed for the others


def estimate(
    wallets_left: int,
    in_flight: list[WalletProgress],
    mean_pages: float | None,
    pace: float | None,
    now: float,
) -> Eta:
    """The ETA (the module docstring): `wallets_left` not complete nor dead-lettered, `in_flight` those
    being paged, `pace` pages per second observed lately."""
    guess = max(mean_pages or 1.0, 1.0)
    known = guessed = 0.0
    chain = 0.0
    for w in in_flight:
        left = w.pages_left
        if left is None:
            guessed += max(guess - w.pages, 1.0)
            continue
        known += left
        if w.pages and now > w.started:
            chain = max(chain, left / (w.pages / (now - w.started)))
    unseen = max(wallets_left - len(in_flight), 0)
    guessed += unseen * guess
    estimated = guessed > 0
    if known + guessed == 0:
        return Eta(0.0, estimated, 0, 0)
    seconds = None if not pace else max((known + guessed) / pace, chain)
    return Eta(seconds, estimated, round(known), round(guessed))
