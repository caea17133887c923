"""What one running simulator holds: the universe, the live faults, the limiters, the fault RNG, stats.

Reached in-process as `app.state.sim` (or `RunningSimulator.state`); everything here runs on the
server's event loop, and the few writes from a test thread are single attribute assignments.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from emulators.dome.config import Faults, SimConfig
from emulators.dome.dome_markets import MarketIndex
from emulators.dome.gamma import Gamma
from emulators.dome.orders import OrderBook
from emulators.dome.ratelimit import SlidingWindows
from emulators.dome.trades import TradeFeed
from emulators.dome.universe import Universe


@dataclass
class MarketStats:
    """The markets and events endpoints' requests, kept apart from the trade endpoints' (`Stats`)."""

    requests: int = 0
    rate_limited: int = 0
    rows_served: int = 0
    """Markets or events served (embedded markets not counted)."""
    by_endpoint: dict[str, int] = field(default_factory=dict)
    by_status: dict[int, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)

    def count_request(self, endpoint: str) -> None:
        self.requests += 1
        self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1

    def count_status(self, status: int) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status == 429:
            self.rate_limited += 1

    def count_fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "rows_served": self.rows_served,
            "by_endpoint": dict(self.by_endpoint),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "faults": dict(self.faults),
        }


@dataclass
class Stats:
    requests: int = 0
    """Requests to /polymarket/orders and /v2/trades, whatever their outcome."""
    rate_limited: int = 0
    """429s sent (window limits and burst faults)."""
    rows_served: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    by_wallet: dict[str, int] = field(default_factory=dict)
    by_wallet_cursor: dict[tuple[str, bool], int] = field(default_factory=dict)
    """(wallet, the request carried a cursor: pagination_key or cursor) -> requests."""
    first_pages: dict[tuple[str, str | None, str | None], int] = field(default_factory=dict)
    """(wallet, start bound, end bound as sent) -> requests without a cursor: a walk's first pages."""
    by_endpoint: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    """Fault kind -> times injected."""
    markets: MarketStats = field(default_factory=MarketStats)
    """Dome's /markets and /events, Gamma's /markets/keyset and /events (not in the counts above)."""

    def count_request(
        self,
        wallet: str | None,
        had_cursor: bool,
        endpoint: str = "/v1/polymarket/orders",
        window: tuple[str | None, str | None] = (None, None),
    ) -> None:
        self.requests += 1
        self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1
        if wallet:
            self.by_wallet[wallet] = self.by_wallet.get(wallet, 0) + 1
            key = (wallet, had_cursor)
            self.by_wallet_cursor[key] = self.by_wallet_cursor.get(key, 0) + 1
            if not had_cursor:
                first = (wallet, *window)
                self.first_pages[first] = self.first_pages.get(first, 0) + 1

    def count_status(self, status: int) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status == 429:
            self.rate_limited += 1

    def count_fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def as_json(self) -> dict[str, Any]:
        cursors: dict[str, dict[str, int]] = {}
        for (wallet, had_cursor), n in self.by_wallet_cursor.items():
            cursors.setdefault(wallet, {"first_page": 0, "with_cursor": 0})[
                "with_cursor" if had_cursor else "first_page"
            ] = n
        return {
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "rows_served": self.rows_served,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_wallet": dict(self.by_wallet),
            "by_wallet_cursor": cursors,
            "by_endpoint": dict(self.by_endpoint),
            "faults": dict(self.faults),
            "markets": self.markets.as_json(),
        }


class Roll(NamedTuple):
    """One request's draws, all taken every time so the fault sequence does not depend on the rates."""

    burst_429: bool
    error_5xx: bool
    slow: bool
    drop: bool
    truncated: bool
    jitter: float
    pick: float
    # From a second RNG, so adding these left the first seven draws (and Dome's fault runs) unchanged.
    unavailable: bool
    html: bool
    missing_field: bool
    short_page: bool


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.universe = Universe(config.seed, config.size, config.whale_trades, config.wallet_scale)
        self.book = OrderBook(self.universe)
        self.feed = TradeFeed(self.universe)
        self.market_index = MarketIndex(self.universe.catalog, config.seed)
        self.gamma = Gamma(self.universe.catalog, config.seed)
        self.lock = threading.Lock()
        """Held while a page is computed and while the universe advances (a test thread may advance)."""
        self.faults: Faults = config.faults()
        self.stats = Stats()
        per_second, per_10s = config.windows()
        windows = [(n, s) for n, s in ((per_second, 1.0), (per_10s, 10.0)) if n is not None]
        self.limiter = SlidingWindows(windows, config.clock)
        self.rng = random.Random(config.fault_seed)
        self.extra_rng = random.Random(f"{config.fault_seed}|extra")
        per_client = [(config.data_api_per_10s, 10.0)] if config.data_api_per_10s else []
        self.client_limiter = SlidingWindows(per_client, config.clock)
        gamma = [(config.gamma_markets_per_10s, 10.0)] if config.gamma_markets_per_10s else []
        self.gamma_markets_limiter = SlidingWindows(gamma, config.clock)
        gamma = [(config.gamma_events_per_10s, 10.0)] if config.gamma_events_per_10s else []
        self.gamma_events_limiter = SlidingWindows(gamma, config.clock)
        self._traces = 0

    def trace_id(self) -> str:
        """The `x-trace-id` of the next Data API response: opaque, unique per response."""
        self._traces += 1
        return hashlib.blake2b(f"{self.config.fault_seed}|trace|{self._traces}".encode(), digest_size=16).hexdigest()

    def patch_faults(self, patch: Mapping[str, Any] | None = None, **changes: Any) -> Faults:
        """Replace some fault fields (validated; unknown names are an error); returns the new faults."""
        merged = {**self.faults.model_dump(), **(patch or {}), **changes}
        self.faults = Faults.model_validate(merged)
        return self.faults

    def reset_stats(self) -> None:
        self.stats = Stats()

    def advance(self, seconds: int) -> dict[str, Any]:
        """Move the universe's now forward (see `growth`); returns what changed, as JSON."""
        with self.lock:
            return self.universe.advance(seconds).as_json()

    def roll(self) -> Roll:
        f, r, x = self.faults, self.rng.random, self.extra_rng.random
        return Roll(
            r() < f.burst_429_rate,
            r() < f.error_5xx_rate,
            r() < f.slow_rate,
            r() < f.drop_rate,
            r() < f.truncated_rate,
            0.75 + 0.5 * r(),
            r(),
            x() < f.unavailable_rate,
            x() < f.html_rate,
            x() < f.missing_field_rate,
            x() < f.short_page_rate,
        )
