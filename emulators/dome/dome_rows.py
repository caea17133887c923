"""A fill as Dome's /polymarket/orders serves it: the 16 documented fields, in their order (dome-api.md §1).

Rows older than LOG_INDEX_SINCE carry `block_number` and `log_index` as JSON null (the keys stay
present): Dome added those fields in January 2026 and the simulator assumes old rows were not
backfilled (dome-api.md, open question 8).
"""

from __future__ import annotations

from typing import Any

from emulators.dome.fills import Fill
from emulators.dome.wallets import LOG_INDEX_SINCE

DOME_FIELDS = (
    "token_id",
    "token_label",
    "side",
    "market_slug",
    "condition_id",
    "shares",
    "shares_normalized",
    "price",
    "block_number",
    "log_index",
    "tx_hash",
    "title",
    "timestamp",
    "order_hash",
    "user",
    "taker",
)


def dome_row(fill: Fill) -> dict[str, Any]:
    """One fill as Dome's /polymarket/orders returns it: the 16 documented fields, in their order."""
    indexed = fill.timestamp >= LOG_INDEX_SINCE
    market = fill.market
    return {
        "token_id": fill.token_id,
        "token_label": fill.token_label,
        "side": fill.side,
        "market_slug": market.slug,
        "condition_id": market.condition_id,
        "shares": fill.shares,
        "shares_normalized": fill.shares / 1_000_000,
        "price": fill.price,
        "block_number": fill.block_number if indexed else None,
        "log_index": fill.log_index if indexed else None,
        "tx_hash": fill.tx_hash,
        "title": market.title,
        "timestamp": fill.timestamp,
        "order_hash": fill.order_hash,
        "user": fill.wallet,
        "taker": fill.taker,
    }
