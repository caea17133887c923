"""A market and an event as each markets API serves them: Dome's snake_case objects and Gamma's camelCase
ones, computed from the catalogue now (a resolution changes both at once).

Dome (dome-api.md §5): times in unix seconds, `game_start_time` a "YYYY-MM-DD HH:MM:SS.000" string (UTC)
on games only, `side_a`/`side_b` = {id: token id, label}, `extra_fields` {}. `winning_side` comes in two
shapes, because the spec types it as a nullable string and the SDK parses an object: resolved markets
with an even index get the label ("Yes"), odd ones `{id, label}`; null while open.

Gamma (polymarket-data-api.md §5): `id` a numeric string, ISO date-times for `startDate`/`endDate`,
`closedTime` in the Postgres text form Gamma serves ("2025-03-06 04:11:55+00"), null while open;
`outcomes`, `outcomePrices` and `clobTokenIds` are JSON-ENCODED STRINGS (decode them); a resolved
market's prices are "1" for the winner and "0" for the other. `active` stays true on closed markets
(as Gamma's do), `archived` is false, `description` is "" where Dome's is null, `umaResolutionStatus`
is "resolved" once closed (null before), `negRisk` is true on negative-risk (Fed decision) events.
Markets embedded in an event carry no `events` list of their own.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from emulators.dome.catalog import IMAGES, SOURCES, Catalog, Event
from emulators.dome.markets import LABELS, Market


def _utc(ts: int, fmt: str) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime(fmt)


def iso(ts: int) -> str:
    return _utc(ts, "%Y-%m-%dT%H:%M:%SZ")


def _sides(m: Market) -> tuple[dict[str, str], dict[str, str]]:
    return {"id": m.token_ids[0], "label": LABELS[0]}, {"id": m.token_ids[1], "label": LABELS[1]}


def winning_side(cat: Catalog, m: Market) -> str | dict[str, str] | None:
    """The label on even indexes (the spec's string), `{id, label}` on odd ones (the SDK's object)."""
    winner = cat.winner(m.index)
    if winner is None:
        return None
    side = _sides(m)[winner]
    return side["label"] if m.index % 2 == 0 else dict(side)


def dome_market(cat: Catalog, m: Market) -> dict[str, Any]:
    d = cat.details[m.index]
    side_a, side_b = _sides(m)
    return {
        "market_slug": m.slug,
        "event_slug": cat.dome_event(m),
        "condition_id": m.condition_id,
        "title": m.title,
        "start_time": d.start_time,
        "end_time": d.end_time,
        "completed_time": cat.completed_time(m.index),
        "close_time": cat.close_time(m.index),
        "game_start_time": None if d.game_start is None else _utc(d.game_start, "%Y-%m-%d %H:%M:%S.000"),
        "tags": list(d.tags),
        "volume_1_week": d.volume_1_week,
        "volume_1_month": d.volume_1_month,
        "volume_1_year": d.volume_1_year,
        "volume_total": d.volume_total,
        "resolution_source": SOURCES[m.kind],
        "image": f"{IMAGES}/{m.event_slug}.png",
        "description": d.description,
        "negative_risk_id": d.negative_risk_id,
        "side_a": side_a,
        "side_b": side_b,
        "winning_side": winning_side(cat, m),
        "status": "closed" if cat.closed(m.index) else "open",
        "extra_fields": {},
    }


def event_volume(cat: Catalog, event: Event) -> float:
    return round(sum(cat.details[m.index].volume_total for m in cat.event_markets(event)), 2)


def _span(cat: Catalog, event: Event) -> tuple[int, int]:
    markets = cat.event_markets(event)
    return min(cat.details[m.index].start_time for m in markets), max(cat.details[m.index].end_time for m in markets)


def dome_event(cat: Catalog, event: Event, include_markets: bool) -> dict[str, Any]:
    markets = cat.event_markets(event)
    start, end = _span(cat, event)
    body: dict[str, Any] = {
        "event_slug": event.slug,
        "title": event.title,
        "subtitle": event.subtitle,
        "status": "closed" if cat.event_closed(event) else "open",
        "start_time": start,
        "end_time": end,
        "volume_fiat_amount": event_volume(cat, event),
        "settlement_sources": SOURCES[event.kind],
        "rules_url": f"https://polymarket.com/event/{event.slug}#rules",
        "image": f"{IMAGES}/{event.slug}.png",
        "tags": list(cat.details[markets[0].index].tags),
        "market_count": len(markets),
    }
    if include_markets:
        body["markets"] = [dome_market(cat, m) for m in markets]
    return body


def _prices(cat: Catalog, m: Market) -> list[str]:
    winner = cat.winner(m.index)
    if winner is not None:
        return ["1", "0"] if winner == 0 else ["0", "1"]
    yes = cat.details[m.index].price_milli
    return [f"{yes / 1000:g}", f"{(1000 - yes) / 1000:g}"]


def _event_ref(cat: Catalog, m: Market) -> dict[str, Any]:
    event = cat.events[m.event_slug]
    return {"id": event.gamma_id, "ticker": event.slug, "slug": event.slug, "title": event.title}


def gamma_market(cat: Catalog, m: Market, with_events: bool = True) -> dict[str, Any]:
    d = cat.details[m.index]
    closed = cat.closed(m.index)
    done = cat.completed_time(m.index)
    body: dict[str, Any] = {
        "id": d.gamma_id,
        "question": m.title,
        "conditionId": m.condition_id,
        "slug": m.slug,
        "startDate": iso(d.start_time),
        "endDate": iso(d.end_time),
        "closed": closed,
        "active": True,
        "archived": False,
        "closedTime": None if done is None else _utc(done, "%Y-%m-%d %H:%M:%S+00"),
        "outcomes": json.dumps(list(LABELS)),
        "outcomePrices": json.dumps(_prices(cat, m)),
        "clobTokenIds": json.dumps(list(m.token_ids)),
        "questionID": d.question_id,
        "umaResolutionStatus": "resolved" if closed else None,
        "volumeNum": d.volume_total,
        "description": d.description or "",
        "negRisk": d.negative_risk_id is not None,
    }
    if with_events:
        body["events"] = [_event_ref(cat, m)]
    return body


def gamma_tag(label: str) -> dict[str, str]:
    tag_id = int.from_bytes(hashlib.blake2b(label.encode(), digest_size=4).digest(), "little") % 100_000
    return {"id": str(tag_id), "label": label, "slug": label.lower().replace(" ", "-")}


def gamma_event(cat: Catalog, event: Event) -> dict[str, Any]:
    markets = cat.event_markets(event)
    start, end = _span(cat, event)
    return {
        "id": event.gamma_id,
        "ticker": event.slug,
        "slug": event.slug,
        "title": event.title,
        "subtitle": event.subtitle,
        "description": f"Markets on {event.title}",
        "startDate": iso(start),
        "endDate": iso(end),
        "active": True,
        "closed": cat.event_closed(event),
        "volume": event_volume(cat, event),
        "negRisk": event.kind == "fed",
        "tags": [gamma_tag(label) for label in cat.details[markets[0].index].tags],
        "markets": [gamma_market(cat, m, with_events=False) for m in markets],
    }
