"""Polymarket's Data API v2 as a trade source: GET {base}/v2/trades?user=W&taker_only=false&start=1&limit=1000,
following pagination.next_cursor until null with identical filters on every page (a changed filter
silently re-anchors the walk). Reference: docs/design.md ("Facts").

This API exposes no row id and one transaction can hold identical-looking fills of one wallet, so the
key is a fingerprint of (wallet, transaction_hash, token_id, side, size, price, timestamp) plus the
occurrence number of that fingerprint within the transaction. For those numbers to be stable across
fetches, a walk may only stop where a transaction ends: each page is handed out as soon as it is read,
with `resumable=None` (not known yet), and the next page says whether it `continues` the transaction
the previous one ended in (`shared.ports.source.may_end_after`). A part that wants to end reads one page
more to know, and ends before it when it starts a new transaction (that page is read again by the
continuation). Handing the page out before the next is read keeps one page per worker in memory, not two.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import requests

from shared.adapters.sources.http import HttpTradeClient, error_body
from shared.adapters.sources.limiter import RateLimiter
from shared.core.errors import MalformedPage, PermanentError, PipelineError, SystemicError, TransientError
from shared.core.trades import Occurrences, fingerprint, iso_timestamp
from shared.ports.source import Page

log = logging.getLogger(__name__)
PAGE_SIZE = 1000
_COMBO = re.compile(r"^0x[0-9a-fA-F]{62}$")  # parlay rows: 62 hex digits, empty slug/outcome


def _group(raw: dict[str, Any]) -> str:
    """Rows of one transaction; rows without a hash group by their block second instead."""
    return raw.get("transaction_hash") or f"notx:{raw.get('timestamp')}"


class PolymarketSource(HttpTradeClient):
    name = "polymarket"

    def __init__(self, base_url: str, limiter: RateLimiter, *, taker_only: bool = False, **kwargs: Any) -> None:
        super().__init__(base_url, limiter, headers={"Accept": "application/json"}, **kwargs)
        self.page_size = PAGE_SIZE
        self.taker_only = taker_only  # False: maker fills too (the API's default, true, hides them)

    def classify_status(self, response: requests.Response, context: dict[str, Any]) -> PipelineError:
        body = error_body(response)
        said = f"{body.get('code', body.get('error', ''))}: {body.get('message', body.get('error', ''))}"
        if body.get("retryable") is True:
            return TransientError(f"HTTP {response.status_code} (retryable): {said}", **context)
        if response.status_code in (401, 403):
            return SystemicError(f"HTTP {response.status_code} from the Data API: {said}", **context)
        if response.status_code == 404:
            return SystemicError(f"404 from the Data API: is the base URL right? {said}", **context)
        return PermanentError(f"HTTP {response.status_code} from the Data API: {said}", **context)

    def _walk(
        self, wallet: str, cursor: str | None, since: int | None, until: int | None
    ) -> Iterator[tuple[list, Any]]:
        params: dict[str, Any] = {
            "user": wallet,
            "taker_only": str(self.taker_only).lower(),
            # start=0 (like an omitted start) means "three years back" to the Data API; since=0 means all.
            "start": max(since, 1) if since is not None else 1,
            "limit": self.page_size,
        }
        if until is not None:
            params["end"] = until
        context = {"wallet": wallet}
        while True:
            query = dict(params, **({"cursor": cursor} if cursor else {}))
            body = self.get_json("/v2/trades", query, context)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise MalformedPage("page has no 'data' list", **context)
            pagination = body.get("pagination")
            if not isinstance(pagination, dict):
                raise MalformedPage("page has no 'pagination' object", **context)
            next_cursor = pagination.get("next_cursor")
            if next_cursor is not None and (not isinstance(next_cursor, str) or next_cursor == cursor):
                raise MalformedPage("next_cursor is not a new string (would loop)", **context)
            data = body["data"]
            del body  # the rest of the answer need not live while the rows are used
            yield data, next_cursor
            del data
            if next_cursor is None:
                return
            cursor = next_cursor

    def pages(
        self, wallet: str, cursor: str | None = None, since: int | None = None, until: int | None = None
    ) -> Iterator[Page]:
        if until is not None and until < 1:
            # The Data API reads end=0 as "now + 1 day", not as "nothing after 1970": nothing to ask for.
            yield Page([], None)
            return
        seen = Occurrences()
        last_group: str | None = None  # the previous page's last transaction (None: that page was empty)
        for raw_rows, next_cursor in self._walk(wallet, cursor, since, until):
            rows: list[dict[str, Any]] = []
            first_group = page_last = None
            for i in range(len(raw_rows)):
                raw, raw_rows[i] = raw_rows[i], None  # each API object let go once its row is made
                row = self._row(wallet, raw, i)
                group, fp = _group(raw), row["trade_key"]
                row["trade_key"] = f"pm:{wallet}:{group}:{fp}:{seen.next(group, fp)}"
                rows.append(row)
                if i == 0:
                    first_group = group
                page_last = group
            del raw_rows
            continues = first_group is not None and first_group == last_group
            # Out at once: whether a part may end after it is known when the next page is read, and only
            # asked when the part wants to end there (`may_end_after`).
            last = next_cursor is None
            yield Page(
                rows,
                next_cursor,
                resumable=True if last else None,
                continues=continues,
                mismatched_user=sum(1 for r in rows if r["user"] != wallet),
            )
            last_group = page_last
            del rows

    @staticmethod
    def _row(wallet: str, raw: Any, index: int) -> dict[str, Any]:
        def bad(why: str) -> MalformedPage:
            return MalformedPage(f"row {index}: {why}", wallet=wallet)

        if not isinstance(raw, dict):
            raise bad("not an object")
        for name in ("proxy_wallet", "side", "token_id", "condition_id"):
            if not isinstance(raw.get(name), str) or not raw[name]:
                raise bad(f"missing or empty {name!r}")
        for name in ("size", "price"):
            if not isinstance(raw.get(name), int | float) or isinstance(raw.get(name), bool):
                raise bad(f"missing or non-numeric {name!r}")
        if not isinstance(raw.get("timestamp"), int) or isinstance(raw.get("timestamp"), bool):
            raise bad("missing or non-integer 'timestamp'")
        tx = raw.get("transaction_hash") or None
        outcome_index = raw.get("outcome_index")
        return {
            "wallet_address": wallet,
            "source": "polymarket",
            "trade_key": fingerprint(
                wallet, tx, raw["token_id"], raw["side"], raw["size"], raw["price"], raw["timestamp"]
            ),
            "tx_hash": tx,
            "log_index": None,  # not exposed by this API: NULL, never invented
            "order_hash": None,
            "token_id": raw["token_id"],
            "token_label": None,
            "side": raw["side"],
            "market_slug": raw.get("slug"),
            "condition_id": raw["condition_id"],
            "shares": None,  # the API gives shares (size), not raw units
            "shares_normalized": raw["size"],
            "price": raw["price"],
            "block_number": None,
            "title": raw.get("title"),
            "timestamp": iso_timestamp(raw["timestamp"]),
            "user": str(raw["proxy_wallet"]).lower(),
            "taker": None,
            "event_slug": raw.get("event_slug"),
            "outcome": raw.get("outcome"),
            "outcome_index": outcome_index if isinstance(outcome_index, int) else None,
            "is_combo": bool(_COMBO.fullmatch(raw["condition_id"])),
        }
