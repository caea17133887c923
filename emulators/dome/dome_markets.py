"""Dome's `GET /polymarket/markets` and `GET /polymarket/events` without the HTTP: parameter checks with
Dome's error bodies, then one keyset page of the catalogue as it is now (dome-api.md §5).

Readings of what the docs leave open:

- /markets filters: `condition_id`, `market_slug`, `event_slug`, `tags` are repeated parameters, each
  at most 100 values (the docs give 100 for token_id only; more -> 400 `Invalid query parameters`);
  values OR within a filter, filters AND together; `status` is open|closed. An id or slug no served
  market has simply matches nothing (the unknown market, combo ids: Dome does not index combos).
- Order: by `volume_total` (highest first) when any filter is given, by `start_time` (newest first)
  when none; ties by condition_id ascending. Events: by volume (`volume_fiat_amount`), ties by slug.
- `pagination_key`: signed base64 of the last row's sort key and the order it belongs to, so a key
  resumes after that market even if statuses changed meanwhile; a key of the other order, or edited,
  -> 400 `Invalid pagination key`. `offset` was removed from /markets: sending it -> 400.
- The poison market: a request whose condition_id or market_slug values name it answers 500
  `{"error", "message"}` (the documented 500 body); listings that do not name it skip it.
- /events: `event_slug` takes one value (that event or none); `include_markets` is true|false; events
  are those with a non-null Dome event_slug (single-market events have none on Dome).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from emulators.dome import cursor
from emulators.dome.catalog import Catalog, Event
from emulators.dome.market_views import dome_event, dome_market, event_volume
from emulators.dome.markets import Market
from emulators.dome.orders import ApiError

MAX_LIMIT, DEFAULT_LIMIT, MAX_VALUES = 100, 10, 100
INTERNAL = ApiError(500, "Internal Server Error", "An unexpected error occurred")


def _bad(message: str) -> ApiError:
    return ApiError(400, "Invalid query parameters", message)


def _values(params: QueryParams, name: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in params.getlist(name) if v.strip())
    if len(values) > MAX_VALUES:
        raise _bad(f"{name} accepts at most {MAX_VALUES} values, got {len(values)}")
    return values


def _common(params: QueryParams) -> tuple[int, str | None, str | None]:
    """limit, status and pagination_key, checked."""
    raw = (params.get("limit") or "").strip()
    if raw and not (re.fullmatch(r"\d{1,4}", raw) and 1 <= int(raw) <= MAX_LIMIT):
        raise ApiError(400, "Invalid limit parameter", f"limit must be a number between 1 and {MAX_LIMIT}")
    if params.get("offset") is not None:
        raise _bad("offset is not supported: use pagination_key")
    status = (params.get("status") or "").strip() or None
    if status not in (None, "open", "closed"):
        raise _bad("status must be open or closed")
    return int(raw or DEFAULT_LIMIT), status, (params.get("pagination_key") or "").strip() or None


@dataclass(frozen=True)
class MarketsQuery:
    condition_ids: tuple[str, ...]
    market_slugs: tuple[str, ...]
    event_slugs: tuple[str, ...]
    tags: tuple[str, ...]
    status: str | None
    limit: int
    pagination_key: str | None

    @property
    def filtered(self) -> bool:
        return bool(self.condition_ids or self.market_slugs or self.event_slugs or self.tags or self.status)


def parse_markets(params: QueryParams) -> MarketsQuery:
    ids = tuple(c.lower() for c in _values(params, "condition_id"))
    slugs, events, tags = (_values(params, n) for n in ("market_slug", "event_slug", "tags"))
    limit, status, key = _common(params)
    return MarketsQuery(ids, slugs, events, tags, status, limit, key)


@dataclass(frozen=True)
class EventsQuery:
    event_slug: str | None
    tags: tuple[str, ...]
    status: str | None
    include_markets: bool
    limit: int
    pagination_key: str | None


def parse_events(params: QueryParams) -> EventsQuery:
    slugs = _values(params, "event_slug")
    if len(slugs) > 1:
        raise _bad("event_slug takes a single value")
    include = (params.get("include_markets") or "false").strip().lower()
    if include not in ("true", "false"):
        raise _bad("include_markets must be true or false")
    limit, status, key = _common(params)
    return EventsQuery(slugs[0] if slugs else None, _values(params, "tags"), status, include == "true", limit, key)


class MarketIndex:
    """Answers parsed /markets and /events queries from the catalogue."""

    def __init__(self, catalog: Catalog, seed: int) -> None:
        self.catalog = catalog
        self.secret = hashlib.blake2b(f"dome-sim|{seed}|markets-cursor".encode()).digest()[:32]

    def _matches(self, q: MarketsQuery, m: Market) -> bool:
        cat = self.catalog
        if not cat.served(m):
            return False
        d = cat.details[m.index]
        return (
            (not q.condition_ids or m.condition_id in q.condition_ids)
            and (not q.market_slugs or m.slug in q.market_slugs)
            and (not q.event_slugs or cat.dome_event(m) in q.event_slugs)
            and (not q.tags or any(t in d.tags for t in q.tags))
            and (q.status is None or (q.status == "closed") == cat.closed(m.index))
        )

    def markets(self, q: MarketsQuery) -> dict[str, Any]:
        cat = self.catalog
        poison = cat.markets[cat.poison]
        if poison.condition_id in q.condition_ids or poison.slug in q.market_slugs:
            raise INTERNAL
        order = "volume" if q.filtered else "start_time"

        def key(m: Market) -> tuple[float, str]:
            d = cat.details[m.index]
            return (-d.volume_total if order == "volume" else -d.start_time), m.condition_id

        found = sorted((m for m in cat.markets if self._matches(q, m)), key=key)
        rows, more = self._after(found, key, order, q.pagination_key, q.limit)
        pagination: dict[str, Any] = {"limit": q.limit, "total": len(found), "has_more": more}
        if more:
            pagination["pagination_key"] = self._key(order, key(rows[-1]))
        return {"markets": [dome_market(cat, m) for m in rows], "pagination": pagination}

    def events(self, q: EventsQuery) -> dict[str, Any]:
        cat = self.catalog

        def wanted(e: Event) -> bool:
            markets = cat.event_markets(e)
            if not markets or e.kind == "single" or (q.event_slug and e.slug != q.event_slug):
                return False
            if q.tags and not any(t in cat.details[markets[0].index].tags for t in q.tags):
                return False
            return q.status is None or (q.status == "closed") == cat.event_closed(e)

        def key(e: Event) -> tuple[float, str]:
            return -event_volume(cat, e), e.slug

        found = sorted((e for e in cat.events.values() if wanted(e)), key=key)
        rows, more = self._after(found, key, "events", q.pagination_key, q.limit)
        pagination: dict[str, Any] = {"limit": q.limit, "has_more": more}
        if more:
            pagination["pagination_key"] = self._key("events", key(rows[-1]))
        return {"events": [dome_event(cat, e, q.include_markets) for e in rows], "pagination": pagination}

    def _key(self, order: str, after: tuple[float, str]) -> str:
        return cursor.seal({"order": order, "after": list(after)}, self.secret)

    def _after(self, found: list[Any], key: Any, order: str, token: str | None, limit: int) -> tuple[list[Any], bool]:
        """The page after the key's sort position (from the start without one), and whether more follow."""
        if token:
            invalid = ApiError(400, "Invalid pagination key", "pagination_key is invalid or corrupted")
            try:
                payload = cursor.unseal(token, self.secret)
                anchor = (float(payload["after"][0]), str(payload["after"][1]))
            except (cursor.InvalidCursor, KeyError, TypeError, ValueError, IndexError):
                raise invalid from None
            if payload.get("order") != order:
                raise invalid
            found = [x for x in found if key(x) > anchor]
        return found[:limit], len(found) > limit
