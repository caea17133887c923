"""Polymarket's Gamma API as the MarketSource of the Data API source: markets by condition id
(`GET /markets/keyset?condition_ids=…`, ≤ 100 per request, `after_cursor` from `next_cursor`) and events
by slug (`GET /events?slug=…`, ≤ 100, a bare array).

Gamma leaves closed markets out unless asked with `closed=true`, and then returns only closed ones, so
a batch is asked open first and then, for the ids still missing, closed: two requests when a batch
mixes both (one when all are open). No key; its own published limits (`/markets` 300 per 10 s,
`/events` 500 per 10 s): one limiter at the stricter of the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from shared.adapters.sources import markets
from shared.adapters.sources.http import HttpTradeClient, error_body
from shared.adapters.sources.limiter import RateLimiter
from shared.core.errors import MalformedPage, PermanentError, PipelineError, SystemicError

PAGE = 100
ATTEMPTS = 1  # a failing lookup batch is split, not retried (handlers/lookups.py); its task is retried


class GammaSource(HttpTradeClient):
    name = "polymarket"

    def __init__(self, base_url: str, limiter: RateLimiter, **kwargs: Any) -> None:
        super().__init__(base_url, limiter, headers={"Accept": "application/json"}, **kwargs)

    def classify_status(self, response: requests.Response, context: dict[str, Any]) -> PipelineError:
        body = error_body(response)
        said = str(body.get("error") or body.get("message") or "")[:300]
        if response.status_code in (401, 403, 404):
            return SystemicError(
                f"HTTP {response.status_code} from Gamma: is GAMMA_API_BASE_URL right? {said}", **context
            )
        return PermanentError(f"HTTP {response.status_code} from Gamma: {said}", **context)

    def markets(self, condition_ids: list[str], fetched_at: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        wanted = {c.lower() for c in condition_ids}
        for closed in ("false", "true"):
            remaining = [c for c in condition_ids if c.lower() in wanted]
            if not remaining:
                break
            named = f"markets {remaining[0]}" if len(remaining) == 1 else f"markets ({len(remaining)} keys)"
            context = {"lookup": f"{named}, closed={closed}"}
            for body in self._keyset({"condition_ids": remaining, "closed": closed, "limit": PAGE}, context):
                for obj in body["markets"]:
                    row = markets.gamma_market(obj, fetched_at)
                    wanted.discard(row["condition_id"])
                    rows.append(row)
        return rows

    def events(self, slugs: list[str], fetched_at: str) -> list[dict[str, Any]]:
        body = self.get_json("/events", {"slug": list(slugs)}, {"lookup": f"events ({len(slugs)})"}, ATTEMPTS)
        if not isinstance(body, list):
            raise MalformedPage("/events: the answer is not a list of events")
        asked = set(slugs)
        return [markets.gamma_event(e, fetched_at) for e in body if isinstance(e, dict) and e.get("slug") in asked]

    def _keyset(self, params: dict[str, Any], context: dict[str, Any]) -> Iterator[Any]:
        after = None
        while True:
            body = self.get_json(
                "/markets/keyset", {**params, **({"after_cursor": after} if after else {})}, context, ATTEMPTS
            )
            if not isinstance(body, dict) or not isinstance(body.get("markets"), list):
                raise MalformedPage("/markets/keyset: the answer has no 'markets' list", **context)
            yield body
            following = body.get("next_cursor")
            if not following:
                return
            if following == after:
                raise MalformedPage("/markets/keyset: the same next_cursor again (would loop)", **context)
            after = following
