"""The simulator's settings: the universe, the API keys, the rate-limit tier, latency and faults.

`SimConfig` is fixed for the app's life; `Faults` (built from it) can be patched while it runs,
through `POST /_sim/faults` or `app.state.sim.patch_faults(...)`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
# Dome's published tiers (docs/design.md, "Facts"): (per second, per 10 s); both windows apply.
TIERS: dict[str, tuple[int, int]] = {"free": (10, 100), "dev": (100, 500), "pro": (300, 3000)}
# Polymarket's published Data API row for `/trades`: 200 requests per 10 s (polymarket-data-api.md §3).
DATA_API_PER_10S = 200
# Gamma's published rows (same table): `/markets` 300 per 10 s, `/events` 500 per 10 s.
GAMMA_MARKETS_PER_10S, GAMMA_EVENTS_PER_10S = 300, 500


class Faults(BaseModel):
    """What can go wrong, per request; rates are probabilities drawn from the fault RNG."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    latency_ms: float = Field(default=0.0, ge=0.0)
    """Mean added latency; each request waits this ±25%."""
    error_5xx_rate: Rate = 0.0
    """A 500/502/503 with a JSON or an HTML body."""
    burst_429_rate: Rate = 0.0
    """A spontaneous 429 with Retry-After: 1, whatever the windows say."""
    slow_rate: Rate = 0.0
    """Wait `slow_seconds` more before answering."""
    slow_seconds: float = Field(default=5.0, ge=0.0)
    """Extra wait of a slow request."""
    drop_rate: Rate = 0.0
    """Cut the connection halfway through a streamed 200 body."""
    truncated_rate: Rate = 0.0
    """A 200 whose JSON body is cut in the middle."""
    fail_wallets: dict[str, int] = Field(default_factory=dict)
    """Wallet -> HTTP status every request for it answers (dead-letter tests)."""
    unavailable_rate: Rate = 0.0
    """A 503 with Retry-After (the Data API's `request_timeout`: no database connection in time)."""
    unavailable_retry_after: int = Field(default=1, ge=0)
    """The Retry-After seconds of that 503."""
    html_rate: Rate = 0.0
    """A CDN block page: HTML, not JSON, answered before the request reaches the API."""
    html_status: int = Field(default=403, ge=200, le=599)
    """Its status: 403 as Cloudflare's and CloudFront's blocks send; 200 for a proxy that hides it."""
    missing_field_rate: Rate = 0.0
    """A 200 whose first row lacks a required field (Dome: tx_hash; Data API: timestamp)."""
    short_page_rate: Rate = 0.0
    """/v2/trades only: half a page with has_more true ("a short page does not end the walk")."""

    @field_validator("fail_wallets")
    @classmethod
    def _lowercase(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {w: s for w, s in value.items() if not 400 <= s <= 599}
        if bad:
            raise ValueError(f"fail_wallets statuses must be 400-599: {bad}")
        return {w.lower(): s for w, s in value.items()}


class SimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, arbitrary_types_allowed=True)

    seed: int = 7
    """Seed of the universe (wallets, fills, markets)."""
    size: int = Field(default=40, ge=0)
    """Ordinary wallets besides the special ones."""
    whale_trades: int = Field(default=250_000, ge=0)
    """Fills of the `whale` wallet."""
    wallet_scale: int = Field(default=1, ge=1)
    """Ordinary wallets' fills times this (bigger wallets for the benchmarks)."""
    api_keys: set[str] | None = None
    """Accepted bearer keys; None accepts any non-empty key."""
    tier: Literal["free", "dev", "pro", "none"] | None = None
    """Rate-limit preset per API key; None or "none" = unlimited."""
    per_second: int | None = Field(default=None, ge=1)
    """Overrides the tier's per-second window."""
    per_10s: int | None = Field(default=None, ge=1)
    """Overrides the tier's per-10-seconds window."""
    ratelimit_headers: bool = True
    """Send `x-ratelimit-limit`, `-remaining` and `-reset` (epoch seconds) on every answer of the key's
    windows, for the window with the least room left (the one refusing, on a 429), as third-party
    clients of Dome read them "when present" (dome-api.md §4; unverified for the real API). False: a
    server that only says Retry-After on its 429s."""
    max_page_rows: int | None = Field(default=None, ge=1)
    """Dome's /orders pages hold at most this many rows whatever `limit` asks (has_more and the
    pagination_key go on as usual); None: `limit` rows. Many requests from a small universe (bench)."""
    fault_seed: int = 1
    """Seed of the fault RNG (separate from the universe's)."""
    latency_ms: float = Field(default=0.0, ge=0.0)
    """Initial `Faults.latency_ms`."""
    error_5xx_rate: Rate = 0.0
    burst_429_rate: Rate = 0.0
    slow_rate: Rate = 0.0
    slow_seconds: float = Field(default=5.0, ge=0.0)
    drop_rate: Rate = 0.0
    truncated_rate: Rate = 0.0
    fail_wallets: dict[str, int] = Field(default_factory=dict)
    unavailable_rate: Rate = 0.0
    unavailable_retry_after: int = Field(default=1, ge=0)
    html_rate: Rate = 0.0
    html_status: int = Field(default=403, ge=200, le=599)
    missing_field_rate: Rate = 0.0
    short_page_rate: Rate = 0.0
    """Initial fault settings, as in `Faults`."""
    data_api_per_10s: int | None = Field(default=DATA_API_PER_10S, ge=1)
    """The per-client window of /v2/trades (requests per 10 s, by client address); None = unlimited."""
    gamma_markets_per_10s: int | None = Field(default=GAMMA_MARKETS_PER_10S, ge=1)
    """The per-client window of Gamma's /markets* (requests per 10 s, by client address); None = unlimited."""
    gamma_events_per_10s: int | None = Field(default=GAMMA_EVENTS_PER_10S, ge=1)
    """The per-client window of Gamma's /events*; None = unlimited."""
    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds for the rate-limit windows (tests inject a fake)."""
    wall_clock: Callable[[], float] = time.time
    """Epoch seconds, for x-ratelimit-reset and the Data API's default window (3 years back from now)."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    """How latency is spent (tests inject a recorder)."""

    def windows(self) -> tuple[int | None, int | None]:
        """(per second, per 10 s) after the overrides; None = that window is unlimited."""
        per_second, per_10s = TIERS.get(self.tier or "none", (None, None))
        return self.per_second or per_second, self.per_10s or per_10s

    def faults(self) -> Faults:
        return Faults.model_validate(self.model_dump(include=set(Faults.model_fields)))
