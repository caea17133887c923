"""Polymarket's Gamma market API without the HTTP: `GET /markets/keyset` and `GET /events`, from the same
catalogue (polymarket-data-api.md §5). The shapes are in `market_views`.

Readings of what the docs leave open:

- `closed` on /markets/keyset: closed markets are not returned unless `closed=true`, and `closed=true`
  returns only closed ones (the filter is `closed == value`, default false). So a client looking up
  condition ids needs both calls; a market resolved since the last call moves from one to the other.
- `condition_ids` and `slug` are repeated parameters, at most 100 values each (more -> 422); `limit`
  1-100, default 20 (else 422); `offset` -> 422; `after_cursor` is the opaque `next_cursor` of the page
  before, omitted on the last page. Markets come in `id` order (numeric, ascending), and the cursor is
  the last id returned (signed; an edited one -> 422).
- Unknown ids match nothing: the unknown market and the combo (62-hex) ids, which Gamma does not know.
  The poison market: a /markets/keyset request whose condition_ids (or slugs) name it answers 500.
- /events: `slug` repeated (<= 100, more -> 422) returns every named event Gamma knows, whatever
  `limit`; without `slug`, a listing in `id` order with `limit` (default 20, <= 500) and `offset`.
  `closed` filters events only when given. The answer is a bare JSON array; each event embeds its
  served markets, closed ones included. Gamma knows single-market events (Dome does not).
- Error bodies are `{"error": message}`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from emulators.dome import cursor
from emulators.dome.catalog import Catalog, Event
from emulators.dome.market_views import gamma_event, gamma_market

MAX_LIMIT, DEFAULT_LIMIT, MAX_VALUES, MAX_EVENTS_LIMIT = 100, 20, 100, 500


class GammaError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status, self.message = status, message

    def body(self) -> dict[str, Any]:
        return {"error": self.message}


def _invalid(message: str) -> GammaError:
    return GammaError(422, message)


def _values(params: QueryParams, name: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in params.getlist(name) if v.strip())
    if len(values) > MAX_VALUES:
        raise _invalid(f"{name}: at most {MAX_VALUES} values, got {len(values)}")
    return values


def _int(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = (params.get(name) or "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"\d{1,9}", raw) or not low <= int(raw) <= high:
        raise _invalid(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def _bool(params: QueryParams, name: str) -> bool | None:
    raw = (params.get(name) or "").strip().lower()
    if raw in ("", "true", "false"):
        return None if not raw else raw == "true"
    raise _invalid(f"{name} must be true or false")


@dataclass(frozen=True)
class KeysetQuery:
    condition_ids: tuple[str, ...]
    slugs: tuple[str, ...]
    closed: bool
    limit: int
    after_cursor: str | None


def parse_keyset(params: QueryParams) -> KeysetQuery:
    if params.get("offset") is not None:
        raise _invalid("offset is not supported on /markets/keyset: use after_cursor")
    ids = tuple(c.lower() for c in _values(params, "condition_ids"))
    limit = _int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    after = (params.get("after_cursor") or "").strip() or None
    return KeysetQuery(ids, _values(params, "slug"), bool(_bool(params, "closed")), limit, after)


class Gamma:
    def __init__(self, catalog: Catalog, seed: int) -> None:
        self.catalog = catalog
        self.secret = hashlib.blake2b(f"dome-sim|{seed}|gamma-cursor".encode()).digest()[:32]

    def keyset(self, q: KeysetQuery) -> dict[str, Any]:
        cat = self.catalog
        poison = cat.markets[cat.poison]
        if poison.condition_id in q.condition_ids or poison.slug in q.slugs:
            raise GammaError(500, "internal server error")
        after = -1
        if q.after_cursor:
            try:
                after = int(cursor.unseal(q.after_cursor, self.secret)["id"])
            except (cursor.InvalidCursor, KeyError, TypeError, ValueError):
                raise _invalid("after_cursor is invalid") from None
        found = [
            m
            for m in cat.markets
            if cat.served(m)
            and cat.closed(m.index) == q.closed
            and (not q.condition_ids or m.condition_id in q.condition_ids)
            and (not q.slugs or m.slug in q.slugs)
            and int(cat.details[m.index].gamma_id) > after
        ]
        page = found[: q.limit]  # catalogue order is id order
        body: dict[str, Any] = {"markets": [gamma_market(cat, m) for m in page]}
        if len(found) > q.limit:
            body["next_cursor"] = cursor.seal({"id": int(cat.details[page[-1].index].gamma_id)}, self.secret)
        return body

    def events(self, params: QueryParams) -> list[dict[str, Any]]:
        cat = self.catalog
        slugs = _values(params, "slug")
        closed = _bool(params, "closed")
        limit = _int(params, "limit", DEFAULT_LIMIT, 1, MAX_EVENTS_LIMIT)
        offset = _int(params, "offset", 0, 0, 10**9)

        def wanted(e: Event) -> bool:
            known = bool(cat.event_markets(e)) and (not slugs or e.slug in slugs)
            return known and (closed is None or cat.event_closed(e) == closed)

        found = sorted((e for e in cat.events.values() if wanted(e)), key=lambda e: int(e.gamma_id))
        if not slugs:
            found = found[offset : offset + limit]
        return [gamma_event(cat, e) for e in found]
