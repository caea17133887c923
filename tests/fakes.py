"""Fakes at the edges only: a clock that moves when told, a trade source that behaves like a paged API
(cursor, failures on cue)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.errors import PipelineError
from shared.core.trades import dome_trade_key, iso_timestamp
from shared.handlers.fetch import FetchBudget
from shared.ports.source import BreakerState, Page, SourceStats


class FakeClock:
    """A clock that only moves when something sleeps on it or a test advances it."""

    def __init__(self, start: float = 1_000.0, wall: datetime | None = None) -> None:
        self.t = start
        self.wall = wall or datetime(2026, 1, 1, tzinfo=UTC)
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(seconds, 0.0))

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def now(self) -> datetime:
        return self.wall + timedelta(seconds=self.t)


def dome_raw(wallet: str, i: int, *, log_index: bool = True) -> dict[str, Any]:
    """Row i of a wallet, newest first; every third row shares its transaction with the next."""
    tx = i // 3
    raw = {
        "tx_hash": f"0x{tx:064x}",
        "order_hash": f"0x{i:064x}",
        "user": wallet,
        "token_id": str(10**76 + i),
        "token_label": "Yes",
        "side": "BUY" if i % 2 else "SELL",
        "market_slug": "m",
        "title": "t",
        "condition_id": "0x" + "c" * 64,
        "shares": 1_000_000 + i,
        "shares_normalized": (1_000_000 + i) / 1e6,
        "price": 0.5,
        "block_number": 100_000 - tx,
        "log_index": i % 3 if log_index else None,
        "timestamp": 1_700_000_000 - tx,
        "taker": "0x" + "e" * 40,
    }
    return raw


def canonical(wallet: str, raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "wallet_address": wallet,
        "source": "dome",
        "trade_key": dome_trade_key(wallet, raw),
        **{k: v for k, v in raw.items() if k != "timestamp"},
        "timestamp": iso_timestamp(raw["timestamp"]),
    }


class FakeTradeSource:
    """Pages of `page_size` rows from an integer cursor; `fail` maps wallet -> exception to raise."""

    name = "dome"

    def __init__(self, counts: dict[str, int], page_size: int = 10, fail: dict[str, PipelineError] | None = None):
        self.counts = counts
        self.page_size = page_size
        self.fail = fail or {}
        self.stats = SourceStats()
        self.requests: list[tuple[str, str | None]] = []

    def close(self) -> None:
        pass

    def breaker_state(self) -> BreakerState:
        return BreakerState(False, 0, 0, None, None)

    def pace_per_second(self) -> float:
        return float("inf")

    def count(self, wallet: str) -> int:
        """The TradeCounter port: what the API holds for the wallet, in one request."""
        self.requests.append((wallet, "count"))
        self.stats.requests += 1
        if wallet in self.fail:
            raise self.fail[wallet]
        return self.counts.get(wallet, 0)

    def pages(
        self, wallet: str, cursor: str | None = None, since: int | None = None, until: int | None = None
    ) -> Iterator[Page]:
        start = int(cursor or 0)
        while True:
            self.requests.append((wallet, cursor))
            self.stats.requests += 1
            if wallet in self.fail:
                raise self.fail[wallet]
            n = self.counts.get(wallet, 0)
            rows = [canonical(wallet, dome_raw(wallet, i)) for i in range(start, min(start + self.page_size, n))]
            start += self.page_size
            cursor = str(start) if start < n else None
            yield Page(rows, cursor)
            if cursor is None:
                return


def budget(max_pages: int = 100, seconds: float = 240.0) -> FetchBudget:
    """A fetch budget for tests (the product reads its budget from settings)."""
    return FetchBudget(seconds=seconds, max_pages=max_pages)


class WindowedTradeSource:
    """A wallet's history as the real APIs serve it: newest first, `start`/`end` bounds in whole seconds
    (inclusive), a cursor that is the position in the filtered rows, and (like Dome) the filtered count
    as `total` — or none (like the Data API) with `totals=False`. `per_second` rows share each second,
    so page boundaries fall inside a second. `honours_bounds=False` is a server that ignores them."""

    name = "dome"

    def __init__(
        self,
        wallet: str,
        n: int,
        *,
        per_second: int = 3,
        page_size: int = 10,
        totals: bool = True,
        honours_bounds: bool = True,
        newest: int = 1_700_000_000,
        gaps: dict[int, int] | None = None,
    ) -> None:
        self.wallet, self.page_size, self.totals, self.honours_bounds = wallet, page_size, totals, honours_bounds
        self.stats = SourceStats()
        self.requests: list[tuple[str | None, int | None, int | None]] = []  # (cursor, since, until)
        self.rows: list[dict[str, Any]] = []
        second, extra = newest, gaps or {}
        for i in range(n):
            if i and i % per_second == 0:
                second -= 1 + extra.get(i, 0)  # a gap of `extra[i]` seconds before row i
            raw = {**dome_raw(wallet, i), "timestamp": second, "tx_hash": f"0x{second:064x}", "log_index": i}
            self.rows.append(canonical(wallet, raw))

    def close(self) -> None:
        pass

    def pace_per_second(self) -> float:
        return float("inf")

    def breaker_state(self) -> BreakerState:
        return BreakerState(False, 0, 0, None, None)

    def pages(
        self, wallet: str, cursor: str | None = None, since: int | None = None, until: int | None = None
    ) -> Iterator[Page]:
        def inside(row: dict[str, Any]) -> bool:
            t = int(datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00")).timestamp())
            return not self.honours_bounds or ((since is None or t >= since) and (until is None or t <= until))

        matching = [dict(r) for r in self.rows if inside(r)] if wallet == self.wallet else []
        start = int(cursor or 0)
        while True:
            self.requests.append((cursor, since, until))
            self.stats.requests += 1
            rows = matching[start : start + self.page_size]
            start += self.page_size
            cursor = str(start) if start < len(matching) else None
            yield Page(rows, cursor, total=len(matching) if self.totals else None)
            if cursor is None:
                return
