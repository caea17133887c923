"""The Dome trade-history source: GET {base}/polymarket/orders?user=W&limit=1000, paged by pagination_key.

Reference: docs/design.md ("Facts"). Rows are validated page by page (shape, required fields,
`user` equals the queried wallet — mismatches are counted and logged, and kept: they are what the API
returned for that wallet) and mapped to the canonical row with the Dome natural key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import requests

from shared.adapters.sources import markets
from shared.adapters.sources.http import HttpTradeClient, error_body
from shared.adapters.sources.limiter import RateLimiter
from shared.core.errors import (
    AuthFailure,
    MalformedPage,
    PermanentError,
    PipelineError,
    SystemicError,
    register_secret,
)
from shared.core.trades import Occurrences, dome_trade_key, iso_timestamp
from shared.ports.source import Page

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # the documented maximum
LOOKUP_PAGE = 100  # /markets: limit 1..100; 100 condition ids per request
LOOKUP_ATTEMPTS = 1  # a failing lookup batch is split, not retried (handlers/lookups.py); its task is retried
_STRINGS = ("tx_hash", "order_hash", "user", "condition_id")
_NUMBERS = ("shares", "shares_normalized", "price")
_NUMBER_TYPES = (int, float)


def _ends_in_fingerprinted_tx(rows: list[dict[str, Any]]) -> bool:
    if not rows:
        return False
    tx = rows[-1]["tx_hash"]
    return any(":fp:" in r["trade_key"] for r in rows if r["tx_hash"] == tx)


class DomeSource(HttpTradeClient):
    name = "dome"

    def __init__(self, base_url: str, api_key: str | None, limiter: RateLimiter, **kwargs: Any) -> None:
        headers = {"Accept": "application/json"}
        if api_key:
            register_secret(api_key)  # Settings registered it already; a source built without settings too
            headers["Authorization"] = f"Bearer {api_key}"
        super().__init__(base_url, limiter, headers=headers, **kwargs)
        self.page_size = PAGE_SIZE

    def classify_status(self, response: requests.Response, context: dict[str, Any]) -> PipelineError:
        body = error_body(response)
        said = f"{body.get('error', '')}: {body.get('message', '')}".strip(": ")
        status = response.status_code
        if status == 401:
            # Dome also answers 401 for "Offset deprecated": that is our request, not the key.
            if "offset" in said.lower():
                return PermanentError(f"401 offset deprecated: {said}", **context)
            return AuthFailure(f"401 from the API, the key was rejected: {said}", **context)
        if status == 403:
            return AuthFailure(f"403 from the API: {said}", **context)
        if status == 404:
            return SystemicError(f"404 from the API: is DOME_API_BASE_URL right? {said}", **context)
        return PermanentError(f"HTTP {status} from the API: {said}", **context)

    def pages(
        self, wallet: str, cursor: str | None = None, since: int | None = None, until: int | None = None
    ) -> Iterator[Page]:
        params: dict[str, Any] = {"user": wallet, "limit": self.page_size}
        if since is not None:
            params["start_time"] = since
        if until is not None:
            params["end_time"] = until
        # Rows without a log_index are keyed by a fingerprint; identical fills of one transaction get
        # occurrence numbers, counted across pages. Every page goes out as soon as it is read (one page per
        # worker in memory). One whose last transaction has such rows may end a part only if that
        # transaction does not go on in the next page (a part starting inside it would count from 0
        # again): it says `resumable=None`, and the next page says whether it `continues` it; the walk
        # reads that next page only if the part wants to end there (`may_end_after`).
        seen = Occurrences()
        last_tx: str | None = None  # the previous page's last transaction (None: that page was empty)
        while True:
            query = dict(params)
            if cursor:
                query["pagination_key"] = cursor
            context = {"wallet": wallet}
            page = self._parse(wallet, self.get_json("/polymarket/orders", query, context), context)
            # (the API's own objects are not kept: only the canonical rows live while the page is written)
            if page.next_cursor is not None and page.next_cursor == cursor:
                raise MalformedPage("the API returned the same pagination_key again (would loop)", **context)
            for row in page.rows:
                n = seen.next(row["tx_hash"], row["trade_key"])
                if n and ":fp:" in row["trade_key"]:  # rows with a log_index are unique as they are
                    row["trade_key"] = f"{row['trade_key']}:{n}"
            page.continues = bool(page.rows) and last_tx is not None and page.rows[0]["tx_hash"] == last_tx
            if page.next_cursor is not None and _ends_in_fingerprinted_tx(page.rows):
                page.resumable = None
            last_tx = page.rows[-1]["tx_hash"] if page.rows else None
            cursor = page.next_cursor
            yield page
            if cursor is None:
                return
            del page  # not held while the next page is read

    # -- the TradeCounter port: the same key, the same limiter ----------------------------------------

    def count(self, wallet: str) -> int:
        """The wallet's trades as Dome counts them: `pagination.total` of a one-row request (no filter,
        so every trade the walk would return)."""
        context = {"wallet": wallet}
        body = self.get_json("/polymarket/orders", {"user": wallet, "limit": 1}, context)
        total = self._parse(wallet, body, context).total
        if total is None:
            raise MalformedPage("the answer has no 'pagination.total' (cannot count this wallet)", **context)
        return total

    # -- markets and events (the MarketSource port): the same key, the same limiter --------------------

    def markets(self, condition_ids: list[str], fetched_at: str) -> list[dict[str, Any]]:
        """`GET /polymarket/markets?condition_id=…` (repeated, ≤ 100) with limit 100, every page."""
        rows: list[dict[str, Any]] = []
        params: dict[str, Any] = {"condition_id": list(condition_ids), "limit": LOOKUP_PAGE}
        context = {"lookup": _named("markets", condition_ids)}
        for body in self._pages("/polymarket/markets", params, "markets", context):
            rows += [markets.dome_market(m, fetched_at) for m in body["markets"]]
        return rows

    def events(self, slugs: list[str], fetched_at: str) -> list[dict[str, Any]]:
        """`GET /polymarket/events?event_slug=…`: the endpoint takes one slug, so one request each."""
        rows: list[dict[str, Any]] = []
        for slug in slugs:
            for body in self._pages("/polymarket/events", {"event_slug": slug, "limit": 1}, "events", {"lookup": slug}):
                rows += [markets.dome_event(e, fetched_at) for e in body["events"] if e.get("event_slug") == slug]
        return rows

    def _pages(self, path: str, params: dict[str, Any], field: str, context: dict[str, Any]) -> Iterator[Any]:
        """Every page of a lookup's answer (pagination_key)."""
        key = None
        while True:
            body = self.get_json(path, {**params, **({"pagination_key": key} if key else {})}, context, LOOKUP_ATTEMPTS)
            if not isinstance(body, dict) or not isinstance(body.get(field), list):
                raise MalformedPage(f"{path}: the answer has no {field!r} list", **context)
            yield body
            pagination = body.get("pagination") or {}
            following = pagination.get("pagination_key") if pagination.get("has_more") else None
            if not following:
                return
            if following == key:
                raise MalformedPage(f"{path}: the same pagination_key again (would loop)", **context)
            key = following

    def _parse(self, wallet: str, body: Any, context: dict[str, Any]) -> Page:
        if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
            raise MalformedPage("page has no 'orders' list", **context)
        pagination = body.get("pagination")
        if not isinstance(pagination, dict) or not isinstance(pagination.get("has_more"), bool):
            raise MalformedPage("page has no 'pagination.has_more'", **context)
        next_key = pagination.get("pagination_key") if pagination["has_more"] else None
        if pagination["has_more"] and not (isinstance(next_key, str) and next_key):
            raise MalformedPage("has_more is true but there is no pagination_key", **context)
        # Each API object is let go once its canonical row is made: a page of both at once is ~4 MB, and
        # every fetch worker holds a page (`make bench-memory`).
        orders = body["orders"]
        rows = []
        for i in range(len(orders)):
            rows.append(self._row(wallet, orders[i], i, context))
            orders[i] = None
        mismatched = sum(1 for r in rows if r["user"] != wallet)
        if mismatched:
            log.warning("%d rows whose user is not the queried wallet (kept)", mismatched, extra=context)
        total = pagination.get("total")
        total = total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None
        return Page(rows=rows, next_cursor=next_key, mismatched_user=mismatched, total=total)

    @staticmethod
    def _row(wallet: str, raw: Any, index: int, context: dict[str, Any]) -> dict[str, Any]:
        # This runs for every row of every page: the checks are one expression of exact type tests
        # (`type(x) is int`, not isinstance: a bool is an int there), and only a row that fails them
        # goes through `_why` to say what is wrong with it.
        if type(raw) is not dict:
            raise MalformedPage(f"row {index}: not an object", **context)
        get = raw.get
        tx, order, user, condition = get("tx_hash"), get("order_hash"), get("user"), get("condition_id")
        shares, normalized, price = get("shares"), get("shares_normalized"), get("price")
        side, token_id, timestamp = get("side"), get("token_id"), get("timestamp")
        log_index, block = get("log_index"), get("block_number")
        if type(token_id) is int:
            token_id = str(token_id)  # a 77-digit integer that arrived unquoted: keep every digit
        if not (
            type(tx) is str and tx and type(order) is str and order and type(user) is str and user
            and type(condition) is str and condition
            and type(shares) in _NUMBER_TYPES and type(normalized) in _NUMBER_TYPES and type(price) in _NUMBER_TYPES
            and (side == "BUY" or side == "SELL") and type(token_id) is str and token_id
            and type(timestamp) is int
            and (log_index is None or type(log_index) is int) and (block is None or type(block) is int)
        ):  # fmt: skip
            raise MalformedPage(f"row {index}: {_why(raw)}", **context)
        if token_id is not raw["token_id"]:
            raw = {**raw, "token_id": token_id}
        return {
            "wallet_address": wallet,
            "source": "dome",
            "trade_key": dome_trade_key(wallet, raw),
            "tx_hash": tx,
            "log_index": log_index,
            "order_hash": order,
            "token_id": token_id,
            "token_label": get("token_label"),
            "side": side,
            "market_slug": get("market_slug"),
            "condition_id": condition,
            "shares": shares,
            "shares_normalized": normalized,
            "price": price,
            "block_number": block,
            "title": get("title"),
            "timestamp": iso_timestamp(timestamp),
            "user": user.lower(),
            "taker": get("taker"),
            "event_slug": None,
            "outcome": None,
            "outcome_index": None,
            "is_combo": None,
        }


def _why(raw: dict[str, Any]) -> str:
    """What is wrong with a row that failed `DomeSource._row`'s checks: the first check it fails."""
    get = raw.get
    for name in _STRINGS:
        value = get(name)
        if type(value) is not str or not value:
            return f"missing or empty {name!r}"
    for name in _NUMBERS:
        if type(get(name)) not in _NUMBER_TYPES:
            return f"missing or non-numeric {name!r}"
    if get("side") not in ("BUY", "SELL"):
        return f"side must be BUY or SELL, got {get('side')!r}"
    token_id = get("token_id")
    if type(token_id) is not int and (type(token_id) is not str or not token_id):
        return "missing 'token_id'"
    if type(get("timestamp")) is not int:
        return "missing or non-integer 'timestamp'"
    for name in ("log_index", "block_number"):
        if get(name) is not None and type(get(name)) is not int:
            return f"{name!r} must be an integer when present"
    return "not a trade"


def _named(kind: str, keys: list[str]) -> str:
    """What a lookup asked for, for its errors: the key itself when it stands alone."""
    return f"{kind} {keys[0]}" if len(keys) == 1 else f"{kind} ({len(keys)} keys)"
