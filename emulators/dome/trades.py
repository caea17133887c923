"""`GET /v2/trades` without the HTTP: parameter checks with the v2 error body, then one keyset page of a
wallet's feed (polymarket-data-api.md §1c, §3; the v2 OpenAPI's shared conventions).

The cursor is opaque and signed: base64url JSON of the seek anchor (block timestamp, sequence id), the
page size and the cosmetic running offset. Like the real one it carries no filters: every page applies
the request's own filters from the anchor on, so a changed filter re-anchors silently, and a cursor
sent for another wallet seeks that wallet's feed from the same anchor. A fill's sequence id is
`Fill.sequence` (block_number << 16 | log_index), so (timestamp, sequence id) descends along the feed
and stays put when the wallet grows: a cursor taken before an advance continues after it with every
older row once ("stable across concurrent writes", polymarket-data-api.md §1c).

Deliberate differences: only the `user=` shape is served (without it, or with `event_id`: 501); the
`condition` and `side` filters narrow a wallet's feed by a scan; `limit` omitted or 0 means 100 (the
`/v2/activity` default; `/v2/trades` documents none).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emulators.dome.fills import EXCHANGE, Fill
from emulators.dome.polymarket import DEFAULT_MIN_AMOUNT, Visibility, profile, trade_row
from emulators.dome.universe import Universe

MAX_LIMIT, DEFAULT_LIMIT, MAX_CONDITIONS = 1000, 100, 20
DAY = 86_400
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_CONDITION = re.compile(r"^0x(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{62})$")  # markets, and combos (62 hex digits)
# "A known protocol contract address -> 400": the CTF exchanges, V1 (neg-risk too) and V2 (reference §4).
PROTOCOL_CONTRACTS = frozenset(
    {
        EXCHANGE,
        "0xc5d563a36ae78145c45a50134d48a1215220f80a",
        "0xe111180000d2663c0091e4f400237545b87b996b",
        "0xe2222d279d744050d28e00520010520000310f59",
    }
)
CODES = {400: "invalid_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}
CODES |= {429: "rate_limited", 500: "internal", 502: "dependency_unavailable", 503: "request_timeout"}


class V2Error(Exception):
    """An answer other than 200, with the v2 body `{error, code, retryable, trace_id, parameter?}`."""

    def __init__(self, status: int, error: str, *, parameter: str | None = None, code: str | None = None) -> None:
        super().__init__(f"{status} {error}")
        self.status, self.error, self.parameter = status, error, parameter
        self.code = code or CODES.get(status, "invalid_request" if status < 500 else "internal")

    def body(self, trace_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "error": self.error,
            "code": self.code,
            "retryable": self.status in (429, 500, 502, 503, 504),
            "trace_id": trace_id,
        }
        if self.parameter:
            body["parameter"] = self.parameter
        return body


def _bad(parameter: str, error: str) -> V2Error:
    return V2Error(400, error, parameter=parameter)


@dataclass(frozen=True)
class TradesQuery:
    user: str
    visibility: Visibility
    start: int
    end: int
    limit: int
    cursor: str | None


def three_years_before(now: float) -> int:
    """The default `start`: the same calendar day three years back (29 February falls to the 28th)."""
    day = datetime.fromtimestamp(now, tz=UTC)
    return int(day.replace(year=day.year - 3, day=min(day.day, 28) if day.month == 2 else day.day).timestamp())


def _param(params: Mapping[str, str], *names: str) -> str | None:
    """The first spelling present: params accept both snake_case and camelCase."""
    for name in names:
        value = params.get(name)
        if value is not None:
            return value.strip()
    return None


def _integer(params: Mapping[str, str], name: str, *aliases: str) -> int | None:
    raw = _param(params, name, *aliases)
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"\d{1,18}", raw):
        raise _bad(name, f"{name} must be a non-negative integer, got {raw!r}")
    return int(raw)


def parse(params: Mapping[str, str], now: float) -> TradesQuery:
    """The query, or the V2Error the Data API answers for it; `now` is epoch seconds."""
    if params.get("offset") is not None:
        raise _bad("offset", "offset is not supported: follow pagination.next_cursor")
    limit = _integer(params, "limit")
    if limit is not None and limit > MAX_LIMIT:
        raise _bad("limit", f"limit must be at most {MAX_LIMIT}, got {limit}")
    taker_only = _param(params, "taker_only", "takerOnly")
    if taker_only not in (None, "") and taker_only.lower() not in ("true", "false"):
        raise _bad("taker_only", f"taker_only must be true or false, got {taker_only!r}")
    side = _param(params, "side") or None
    if side is not None and side not in ("BUY", "SELL"):
        raise _bad("side", "side must be BUY or SELL")
    filter_type = _param(params, "filter_type", "filterType") or "TOKENS"
    if filter_type not in ("CASH", "TOKENS"):
        raise _bad("filter_type", "filterType must be CASH or TOKENS")
    raw_amount = _param(params, "filter_amount", "filterAmount") or "0"
    try:
        amount = float(raw_amount)
    except ValueError:
        amount = -1.0
    if not math.isfinite(amount) or amount < 0:
        raise _bad("filter_amount", f"filter_amount must be a number >= 0, got {raw_amount!r}")
    conditions = None
    raw_conditions = _param(params, "condition", "condition_id", "conditionId")
    if raw_conditions:
        conditions = frozenset(c.strip().lower() for c in raw_conditions.split(",") if c.strip())
        for c in sorted(conditions):
            if not _CONDITION.match(c):
                raise _bad("condition", f"invalid condition id: {c}")
        if len(conditions) > MAX_CONDITIONS:
            raise _bad("condition", f"at most {MAX_CONDITIONS} distinct condition ids")
    start, end = _integer(params, "start"), _integer(params, "end")
    user = _param(params, "user") or None
    if user is not None:
        if not _ADDRESS.match(user):
            raise _bad("user", f"invalid user address: {user!r} is not 0x + 40 hex digits")
        if user.lower() in PROTOCOL_CONTRACTS:
            raise _bad("user", f"'user' is a known protocol contract address: {user}")
    if user is None or _param(params, "event_id", "eventId"):
        raise V2Error(501, "the simulator serves the user= shape of /v2/trades only", code="invalid_request")
    visibility = Visibility(
        taker_only=(taker_only or "true").lower() == "true",
        filter_type=filter_type,
        min_amount=amount or DEFAULT_MIN_AMOUNT,  # "defaults to 0.01, and 0 means the same"
        side=side,
        conditions=conditions,
    )
    return TradesQuery(
        user.lower(),
        visibility,
        start or three_years_before(now),  # omitted or 0: three years back; start=1: full history
        end or int(now) + DAY,  # omitted or 0: now plus one day
        limit or DEFAULT_LIMIT,
        _param(params, "cursor") or None,
    )


@dataclass(frozen=True)
class Anchor:
    timestamp: int
    sequence: int
    size: int
    offset: int


class TradeFeed:
    """Answers parsed queries from a universe."""

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self.secret = hashlib.blake2b(f"dome-sim|{universe.seed}|v2-cursor".encode()).digest()[:32]

    def page(self, q: TradesQuery, short: bool = False) -> dict[str, Any]:
        """One page; `short` serves half a page with has_more still exact (the walk must go on)."""
        u = self.universe
        window = u.window(q.user, q.start, q.end)
        size, offset, begin = q.limit, 0, window.start
        if q.cursor is not None:  # the cursor's page size wins over `limit`
            anchor = self._decode(q.cursor)
            size, offset = anchor.size, anchor.offset
            begin = max(begin, u.seek(q.user, anchor.timestamp, anchor.sequence))
        take = max(1, size // 2) if short else size
        fills: list[Fill] = []
        has_more = False
        for fill in u.fills(q.user, begin, window.stop):
            if not q.visibility.shows(fill):
                continue
            if len(fills) == take:
                has_more = True
                break
            fills.append(fill)
        next_cursor = None
        if has_more:
            last = fills[-1]
            next_cursor = self._encode(Anchor(last.timestamp, last.sequence, size, offset + len(fills)))
        who = profile(u.seed, q.user)
        return {
            "data": [trade_row(f, who) for f in fills],
            "pagination": {"limit": size, "offset": offset, "has_more": has_more, "next_cursor": next_cursor},
        }

    def _sign(self, payload: dict[str, Any]) -> str:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.blake2b(text, key=self.secret, digest_size=12).hexdigest()

    def _encode(self, anchor: Anchor) -> str:
        payload = {"ts": anchor.timestamp, "seq": anchor.sequence, "size": anchor.size, "offset": anchor.offset}
        payload["sig"] = self._sign(payload)  # type: ignore[assignment]
        return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")

    def _decode(self, token: str) -> Anchor:
        invalid = _bad("cursor", "invalid cursor")
        try:
            payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError):
            raise invalid from None
        if not isinstance(payload, dict) or not isinstance(sig := payload.pop("sig", None), str):
            raise invalid
        if sig != self._sign(payload):
            raise invalid
        try:
            anchor = Anchor(int(payload["ts"]), int(payload["seq"]), int(payload["size"]), int(payload["offset"]))
        except (KeyError, TypeError, ValueError):
            raise invalid from None
        if not 1 <= anchor.size <= MAX_LIMIT:
            raise invalid
        return anchor
