"""`GET /polymarket/orders` without the HTTP: parameter checks with Dome's documented error bodies,
then one page of the universe (dome-api.md §1, §2, §4).

Pages are keyset pages: the cursor names the sort key of the last row returned and the next page
starts right after it in the total order, so rows are never skipped or repeated, also across an
advance (rows added since that sort before the key are not in the walk; those after it are).
`has_more` is exact: a wallet with exactly `limit` rows answers one page with has_more false and no
pagination_key.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulators.dome import cursor
from emulators.dome.fills import Fill
from emulators.dome.universe import Universe, dome_row

MAX_LIMIT, DEFAULT_LIMIT, MAX_OFFSET = 1000, 100, 10_000
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_MARKET_FILTERS = ("market_slug", "condition_id", "token_id")


class ApiError(Exception):
    """An answer other than 200, with Dome's `{"error", "message"}` body."""

    def __init__(self, status: int, error: str, message: str, **extra: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.body = {"error": error, "message": message, **extra}


def _bad(error: str, message: str) -> ApiError:
    return ApiError(400, error, message)


@dataclass(frozen=True)
class OrdersQuery:
    user: str | None
    market_slug: str | None
    condition_id: str | None
    token_id: str | None
    start_time: int | None
    end_time: int | None
    limit: int
    offset: int
    pagination_key: str | None


def _integer(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"\d{1,12}", raw.strip()):
        raise ValueError(raw)
    return int(raw)


def parse(params: Mapping[str, str]) -> OrdersQuery:
    """The query, or the ApiError Dome answers for it."""
    values = {name: (params.get(name) or "").strip() or None for name in ("user", *_MARKET_FILTERS, "pagination_key")}
    try:
        limit = _integer(params.get("limit"))
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise ValueError(limit)
    except ValueError:
        raise _bad("Invalid limit parameter", "limit must be a number between 1 and 1000") from None
    times: dict[str, int | None] = {}
    for name in ("start_time", "end_time"):
        try:
            times[name] = _integer(params.get(name))
        except ValueError:
            raise _bad(f"Invalid {name} parameter", f"{name} must be a valid Unix timestamp") from None
    try:
        offset = _integer(params.get("offset")) or 0
    except ValueError:
        raise _bad("Invalid offset parameter", "offset must be a non-negative integer") from None
    if offset > MAX_OFFSET:
        raise ApiError(
            401,
            "Offset deprecated",
            "Offsets greater than 10,000 are no longer supported. Please use pagination_key for efficient pagination.",
            docs="https://docs.domeapi.io/pagination",
        )
    if not any(values[name] for name in ("user", *_MARKET_FILTERS)):
        raise _bad(
            "Missing required filter parameter",
            "At least one of market_slug, condition_id, user, or token_id must be provided",
        )
    if sum(1 for name in _MARKET_FILTERS if values[name]) > 1:
        raise _bad("Invalid filter combination", "Only one of market_slug, token_id, or condition_id can be provided")
    user = values["user"]
    if user is not None and not _ADDRESS.match(user):
        raise _bad("Invalid user parameter", f"Invalid wallet address format: {user!r} is not 0x + 40 hex digits")
    start, end = times["start_time"], times["end_time"]
    if start is not None and end is not None and start >= end:
        raise _bad("Invalid time range", "start_time must be less than end_time")
    return OrdersQuery(
        user.lower() if user else None,
        values["market_slug"],
        values["condition_id"],
        values["token_id"],
        start,
        end,
        limit or DEFAULT_LIMIT,
        offset,
        values["pagination_key"],
    )


class OrderBook:
    """Answers parsed queries from a universe; keeps a few per-filter totals (they need a scan)."""

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self.secret = hashlib.blake2b(f"dome-sim|{universe.seed}|cursor".encode()).digest()[:32]
        self._totals: OrderedDict[tuple[Any, ...], int] = OrderedDict()

    def page(self, q: OrdersQuery) -> dict[str, Any]:
        if q.user is None:
            raise ApiError(501, "Not implemented", "the simulator serves queries with user= only")
        u = self.universe
        window = u.window(q.user, q.start_time, q.end_time)
        begin, skip = window.start + q.offset, q.offset
        if q.pagination_key:
            begin, skip = self._resume(q.user, q.pagination_key), 0
        begin = max(begin, window.start)
        match = self._matcher(q)
        last_index = begin - 1
        if match is None:
            stop = min(begin + q.limit, window.stop) if begin < window.stop else begin
            fills = list(u.fills(q.user, begin, stop))
            has_more, total, last_index = stop < window.stop, len(window), stop - 1
        else:
            fills, has_more = [], False
            for index, fill in enumerate(u.fills(q.user, begin, window.stop), start=begin):
                if not match(fill):
                    continue
                if skip:
                    skip -= 1
                elif len(fills) == q.limit:
                    has_more = True
                    break
                else:
                    fills.append(fill)
                    last_index = index
            total = self._total(q, window, match)
        pagination: dict[str, Any] = {"limit": q.limit, "offset": q.offset, "total": total, "has_more": has_more}
        rows = [dome_row(f) for f in fills]
        if has_more:
            last, row = fills[-1], rows[-1]
            key = cursor.Cursor(last_index, last.timestamp, last.tx_hash, row["log_index"], total, last.sequence)
            pagination["pagination_key"] = cursor.encode(key, self.secret)
        return {"orders": rows, "pagination": pagination}

    def _resume(self, wallet: str, key: str) -> int:
        """The index right after the row the key names, once checked that the key is ours and that this
        wallet has that row (same sort key, tx_hash and log_index): keyset, so it survives growth."""
        invalid = _bad("Invalid pagination key", "pagination_key is invalid or corrupted")
        try:
            at = cursor.decode(key, self.secret)
        except cursor.InvalidCursor:
            raise invalid from None
        after = self.universe.seek(wallet, at.timestamp, at.sequence)
        if after == 0:
            raise invalid
        fill = self.universe.fill(wallet, after - 1)
        row = dome_row(fill)
        if (fill.timestamp, fill.sequence, fill.tx_hash, row["log_index"]) != (
            at.timestamp,
            at.sequence,
            at.tx_hash,
            at.log_index,
        ):
            raise invalid
        return after

    def _matcher(self, q: OrdersQuery) -> Callable[[Fill], bool] | None:
        if q.market_slug:
            return lambda f: f.market.slug == q.market_slug
        if q.condition_id:
            wanted = q.condition_id.lower()
            return lambda f: f.market.condition_id == wanted
        if q.token_id:
            return lambda f: f.token_id == q.token_id
        return None

    def _total(self, q: OrdersQuery, window: range, match: Callable[[Fill], bool]) -> int:
        key = (
            q.user,
            q.market_slug,
            q.condition_id,
            q.token_id,
            window.start,
            window.stop,
            len(self.universe.advances),
        )
        if key not in self._totals:
            self._totals[key] = sum(1 for f in self.universe.fills(q.user or "", window.start, window.stop) if match(f))
            while len(self._totals) > 256:
                self._totals.popitem(last=False)
        self._totals.move_to_end(key)
        return self._totals[key]
