"""The TradeSource port: pages of canonical trade rows for one wallet, newest first, from a cursor.

Adapters (shared/adapters/sources/): `DomeSource` (Dome `/polymarket/orders`) and `PolymarketSource`
(the Data API's `/v2/trades`). Each maps the API's rows to the canonical row (`shared.core.trades`),
`trade_key` included.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Page:
    rows: list[dict[str, Any]]  # canonical rows (shared.core.tables.TRADE_ROW less run_id)
    next_cursor: str | None  # None: this is the last page of the walk
    # False when a walk must not stop after this page, because a part that ended here would split
    # rows whose keys depend on their neighbours (fills of one transaction numbered by occurrence).
    # None: not known until the next page is read; that page's `continues` says (`may_end_after`). The
    # Data API's pages go out so, as soon as they are read: a worker holds one page, not two.
    resumable: bool | None = True
    continues: bool = False  # this page's first rows go on with the previous page's last transaction
    mismatched_user: int = 0  # rows whose user is not the queried wallet (counted, logged, kept)
    # Rows the whole walk holds, when the API says (Dome's pagination.total for the request's filters;
    # the Data API gives none): what a window split and the progress display estimate from.
    total: int | None = None


def may_end_after(page: Page, following: Page | None) -> bool:
    """Whether a part may end after `page`, `following` being the page the walk gave next (None: none)."""
    if page.resumable is not None:
        return page.resumable
    return following is None or not following.continues


@dataclass
class SourceStats:
    requests: int = 0
    rate_limited: int = 0  # 429 answers seen (each retried)
    retries: int = 0
    errors_by_status: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BreakerState:
    open: bool
    failures: int  # consecutive failed requests, across wallets
    wallets: int  # distinct wallets among them
    cause: str | None
    opened_at: float | None


class TradeSource(Protocol):
    name: str  # the value of the rows' `source` column and of WalletTask.source
    stats: SourceStats

    def pages(
        self, wallet: str, cursor: str | None = None, since: int | None = None, until: int | None = None
    ) -> Iterator[Page]:
        """Walk the wallet's trades from `cursor` (None: the newest) to the end, one page at a time.

        Raises the taxonomy's errors: TransientError after the client's own retries, PermanentError
        for this wallet (invalid address, a page that breaks the documented shape), SystemicError
        for the key or the quota.
        """
        ...

    def breaker_state(self) -> BreakerState:
        """Whether this process still calls the API (see shared/adapters/sources/breaker.py)."""
        ...

    def pace_per_second(self) -> float:
        """The requests per second this process allows itself now: its share of the key in a fleet
        (shared/adapters/sources/share.py), else the key's sustained rate; inf when unlimited."""
        ...

    def close(self) -> None: ...


class TradeCounter(Protocol):
    """How many trades the API holds for a wallet, in one cheap request: what a reconciliation compares
    the warehouse with (shared/handlers/verify.py). Adapter: `DomeSource` (`pagination.total` of a
    `limit=1` request). The Data API gives no total, so it has none: its wallets' API count is "n/a"."""

    name: str
    stats: SourceStats

    def count(self, wallet: str) -> int:
        """Raises the taxonomy's errors, like a page of trades (MalformedPage: an answer without a total)."""
        ...

    def close(self) -> None: ...


class MarketSource(Protocol):
    """Markets by condition id and events by slug, as rows of `markets` / `events` (shared/core/tables.py).

    Adapters: `DomeSource` (its /polymarket/markets and /polymarket/events spend the same key budget as
    its trades: one client, one limiter) and `GammaSource` (Polymarket's Gamma API, its own limits).
    A key the API does not know is simply absent from the answer; a request that fails raises the
    taxonomy's errors, like a page of trades.
    """

    name: str
    stats: SourceStats

    def markets(self, condition_ids: list[str], fetched_at: str) -> list[dict[str, Any]]:
        """At most 100 condition ids; the markets found (any order), every page of the answer."""
        ...

    def events(self, slugs: list[str], fetched_at: str) -> list[dict[str, Any]]: ...

    def breaker_state(self) -> BreakerState: ...

    def close(self) -> None: ...
