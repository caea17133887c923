"""Markets and events as rows of the `markets` and `events` tables (shared/core/tables.py), from
either API's objects. Which field comes from where:

    column              Dome /polymarket/markets           Gamma /markets/keyset
    condition_id        condition_id                       conditionId
    market_slug         market_slug                        slug
    event_slug          event_slug (nullable)              events[0].slug
    title               title                              question
    status              status (open | closed)             closed -> closed | open
    start/end_time      start_time / end_time (seconds)    startDate / endDate (ISO)
    completed_time      completed_time                     closedTime ("2025-03-06 04:11:55+00")
    close_time          close_time                         NULL (Gamma has none)
    tags                tags (a JSON array)                NULL (Gamma puts tags on events)
    volume_total        volume_total                       volumeNum
    side_a/b            side_a / side_b {id, label}        clobTokenIds[i], outcomes[i] (JSON-encoded strings)
    winning_side_*      winning_side: a label string, or   the outcome priced "1" once closed
                        an object {id, label} (both seen)

    events              Dome /polymarket/events            Gamma /events
    event_slug, title, subtitle, status, start/end_time     slug, title, subtitle, closed, startDate/endDate
    volume              volume_fiat_amount                 volume
    tags                tags                               tags[].label
    market_count        market_count                       len(markets)

`raw` keeps the API's object as JSON, so no field is lost; `fetched_at` is when the API was asked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared.core.errors import MalformedPage
from shared.core.trades import iso_timestamp


def _time(value: Any) -> str | None:
    """Seconds or an ISO / Postgres date-time, as the form both warehouses parse (UTC, 'Z')."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return iso_timestamp(int(value))
    text = str(value).strip().replace(" ", "T", 1)
    if text.endswith(("+00", "-00")):
        text += ":00"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedPage(f"not a date-time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_list(value: Any) -> list[Any]:
    """Gamma's JSON-encoded string fields ('["Yes", "No"]'), or a list already."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise MalformedPage(f"not a JSON-encoded list: {value[:80]!r}") from None
    if not isinstance(value, list):
        raise MalformedPage(f"not a list: {value!r}")
    return value


def _raw(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _number(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _object(obj: Any, key: str, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or not isinstance(obj.get(key), str) or not obj[key]:
        raise MalformedPage(f"a {what} without its {key!r}")
    return obj


def dome_market(obj: Any, fetched_at: str) -> dict[str, Any]:
    m = _object(obj, "condition_id", "market")
    side_a, side_b = m.get("side_a") or {}, m.get("side_b") or {}
    winner = m.get("winning_side")
    if isinstance(winner, dict):  # the SDK's shape: {id, label}
        label, token = winner.get("label"), winner.get("id")
    elif isinstance(winner, str) and winner:  # the spec's shape: the label
        label = winner
        token = next((s.get("id") for s in (side_a, side_b) if s.get("label") == winner), None)
    else:
        label = token = None
    return {
        "condition_id": m["condition_id"].lower(),
        "market_slug": m.get("market_slug"),
        "event_slug": m.get("event_slug"),
        "title": m.get("title"),
        "status": m.get("status"),
        "start_time": _time(m.get("start_time")),
        "end_time": _time(m.get("end_time")),
        "completed_time": _time(m.get("completed_time")),
        "close_time": _time(m.get("close_time")),
        "tags": json.dumps(m["tags"]) if isinstance(m.get("tags"), list) else None,
        "volume_total": _number(m.get("volume_total")),
        "side_a_token_id": _str(side_a.get("id")),
        "side_a_label": side_a.get("label"),
        "side_b_token_id": _str(side_b.get("id")),
        "side_b_label": side_b.get("label"),
        "winning_side_label": label,
        "winning_token_id": _str(token),
        "source": "dome",
        "fetched_at": fetched_at,
        "raw": _raw(m),
    }


def gamma_market(obj: Any, fetched_at: str) -> dict[str, Any]:
    m = _object(obj, "conditionId", "market")
    outcomes, tokens = _json_list(m.get("outcomes")), [str(t) for t in _json_list(m.get("clobTokenIds"))]
    prices = [_number(p) for p in _json_list(m.get("outcomePrices"))]
    closed = bool(m.get("closed"))
    winner = prices.index(1.0) if closed and 1.0 in prices else None
    events = m.get("events") or []

    def at(values: list[Any], i: int | None) -> Any:
        return values[i] if i is not None and i < len(values) else None

    return {
        "condition_id": m["conditionId"].lower(),
        "market_slug": m.get("slug"),
        "event_slug": events[0].get("slug") if events and isinstance(events[0], dict) else None,
        "title": m.get("question"),
        "status": "closed" if closed else "open",
        "start_time": _time(m.get("startDate")),
        "end_time": _time(m.get("endDate")),
        "completed_time": _time(m.get("closedTime")),
        "close_time": None,
        "tags": None,
        "volume_total": _number(m.get("volumeNum")),
        "side_a_token_id": at(tokens, 0),
        "side_a_label": at(outcomes, 0),
        "side_b_token_id": at(tokens, 1),
        "side_b_label": at(outcomes, 1),
        "winning_side_label": at(outcomes, winner),
        "winning_token_id": at(tokens, winner),
        "source": "polymarket",
        "fetched_at": fetched_at,
        "raw": _raw(m),
    }


def dome_event(obj: Any, fetched_at: str) -> dict[str, Any]:
    e = _object(obj, "event_slug", "event")
    return {
        "event_slug": e["event_slug"],
        "title": e.get("title"),
        "subtitle": e.get("subtitle"),
        "status": e.get("status"),
        "start_time": _time(e.get("start_time")),
        "end_time": _time(e.get("end_time")),
        "volume": _number(e.get("volume_fiat_amount")),
        "tags": json.dumps(e["tags"]) if isinstance(e.get("tags"), list) else None,
        "market_count": e.get("market_count") if isinstance(e.get("market_count"), int) else None,
        "source": "dome",
        "fetched_at": fetched_at,
        "raw": _raw(e),
    }


def gamma_event(obj: Any, fetched_at: str) -> dict[str, Any]:
    e = _object(obj, "slug", "event")
    tags = [t.get("label") for t in e.get("tags") or [] if isinstance(t, dict)]
    markets = e.get("markets")
    return {
        "event_slug": e["slug"],
        "title": e.get("title"),
        "subtitle": e.get("subtitle"),
        "status": "closed" if e.get("closed") else "open",
        "start_time": _time(e.get("startDate")),
        "end_time": _time(e.get("endDate")),
        "volume": _number(e.get("volume")),
        "tags": json.dumps(tags),
        "market_count": len(markets) if isinstance(markets, list) else None,
        "source": "polymarket",
        "fetched_at": fetched_at,
        "raw": _raw(e),
    }


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
