"""A fill as Polymarket's Data API v2 serves it (`GET /v2/trades`), and which fills a query shows.

The row is the v2 `Trade` schema (polymarket-data-api.md §2; the official v2 OpenAPI): all 19 fields
present, snake_case, `size` in shares (never raw units), `outcome_index` 999 where the outcome cannot
be labelled (combo rows, which also have an empty slug, outcome and event slug), profile fields of the
wallet, and `transaction_hash` empty on "hashless" fills. There is no row id, log index, order hash or
maker/taker role on the wire.

Visibility: `taker_only` defaults to true (only fills where this wallet took), and a size filter
defaults to TOKENS >= 0.01 ("0 means the same"), so dust fills are never served by default.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from emulators.dome.fills import Fill
from emulators.dome.markets import LABELS

UNLABELLED = 999  # outcome_index sentinel: "the outcome could not be labeled"
DEFAULT_MIN_AMOUNT = 0.01
TRADE_FIELDS = (
    "proxy_wallet",
    "side",
    "token_id",
    "condition_id",
    "size",
    "price",
    "timestamp",
    "title",
    "slug",
    "icon",
    "event_slug",
    "outcome",
    "outcome_index",
    "name",
    "pseudonym",
    "bio",
    "profile_image",
    "profile_image_optimized",
    "transaction_hash",
)
_ADJECTIVES = ("Quiet", "Bold", "Lucky", "Swift", "Calm", "Grim", "Witty", "Brave", "Sly", "Keen")
_NOUNS = ("Otter", "Falcon", "Badger", "Heron", "Lynx", "Marmot", "Raven", "Walrus", "Gecko", "Bison")


@dataclass(frozen=True)
class Visibility:
    """The filters that decide whether a fill is on the feed (the query's, or the API's defaults)."""

    taker_only: bool = True
    filter_type: str = "TOKENS"
    min_amount: float = DEFAULT_MIN_AMOUNT
    side: str | None = None
    conditions: frozenset[str] | None = None

    def shows(self, fill: Fill) -> bool:
        if self.taker_only and fill.role != "taker":
            return False
        if self.filter_type == "TOKENS":
            if fill.shares < round(self.min_amount * 1_000_000):
                return False
        elif fill.shares * fill.price_milli < round(self.min_amount * 1_000_000_000):  # CASH: size * price
            return False
        if self.side is not None and fill.side != self.side:
            return False
        return self.conditions is None or fill.market.condition_id in self.conditions


FULL_HISTORY = Visibility(taker_only=False)
"""What `taker_only=false&start=1` shows: the ground truth of this source."""


def profile(seed: int, wallet: str) -> dict[str, str]:
    """The wallet's public profile fields: a generated pseudonym, a display name for some."""
    h = hashlib.blake2b(f"dome-sim|{seed}|profile|{wallet}".encode(), digest_size=8).digest()
    pseudonym = f"{_ADJECTIVES[h[0] % 10]}-{_NOUNS[h[1] % 10]}"
    named = h[2] < 80
    image = f"https://polymarket-upload.s3.us-east-2.amazonaws.com/profile-image-{h.hex()}.png" if named else ""
    return {
        "name": f"{_NOUNS[h[3] % 10].lower()}{h[4]}" if named else "",
        "pseudonym": pseudonym,
        "bio": "",
        "profile_image": image,
        "profile_image_optimized": "",
    }


def trade_row(fill: Fill, who: dict[str, str]) -> dict[str, Any]:
    """One fill as a v2 `Trade`, fields in the schema's order; `who` is the wallet's `profile`."""
    market = fill.market
    event_slug = market.event_slug
    icon_key = event_slug or market.condition_id[2:18]
    return {
        "proxy_wallet": fill.wallet,
        "side": fill.side,
        "token_id": fill.token_id,
        "condition_id": market.condition_id,
        "size": fill.shares / 1_000_000,
        "price": fill.price,
        "timestamp": fill.timestamp,
        "title": market.title,
        "slug": market.slug,
        "icon": f"https://polymarket-upload.s3.us-east-2.amazonaws.com/{icon_key}.png",
        "event_slug": event_slug,
        "outcome": "" if market.combo else LABELS[fill.outcome],
        "outcome_index": UNLABELLED if market.combo else fill.outcome,
        "name": who["name"],
        "pseudonym": who["pseudonym"],
        "bio": who["bio"],
        "profile_image": who["profile_image"],
        "profile_image_optimized": who["profile_image_optimized"],
        "transaction_hash": "" if fill.hashless else fill.tx_hash,
    }
