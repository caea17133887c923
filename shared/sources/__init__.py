"""Trade sources. `make_source(settings)` is the one place that turns settings into a TradeSource."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.clock import Clock
from shared.sources.limiter import RateLimiter
from shared.tradesource import TradeSource

if TYPE_CHECKING:
    from shared.settings import Settings


def make_source(settings: Settings, *, base_url: str | None = None, clock: Clock | None = None) -> TradeSource:
    if settings.trade_source == "dome":
        from shared.sources.dome import DomeSource

        key = settings.dome_api_key.get_secret_value() if settings.dome_api_key else None
        return DomeSource(
            base_url or settings.dome_api_base_url,
            key,
            RateLimiter(settings.rate_windows(), clock=clock),
            timeout=settings.http_timeout_seconds,
            max_attempts=settings.http_max_attempts,
            clock=clock,
        )
    if settings.trade_source == "polymarket":
        from shared.sources.limiter import Window
        from shared.sources.polymarket import PolymarketSource

        return PolymarketSource(
            base_url or settings.polymarket_api_base_url,
            RateLimiter((Window(settings.polymarket_rate_per_10s, 10.0),), clock=clock),
            timeout=settings.http_timeout_seconds,
            max_attempts=settings.http_max_attempts,
            clock=clock,
        )
    raise ValueError(f"TRADE_SOURCE={settings.trade_source!r} is not available in this build")
