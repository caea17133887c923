"""The canonical trade row (one fill of one wallet) and its natural key (design rule 1).

Every source maps its rows to this shape; the part files hold exactly the columns of
`shared.core.tables.TRADE_ROW` (one JSON object per line), the list both warehouses are built from.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.core.tables import TRADE_ROW, TRADES

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in TRADE_ROW)
KEY_COLUMNS = TRADES.key


def iso_timestamp(epoch_seconds: int) -> str:
    """The form both warehouses parse into a TIMESTAMP from JSON (and that sorts as time does: same
    width, most significant first). The date part is cached per day: formatting a datetime for every
    fill was a tenth of a page's CPU."""
    days, rest = divmod(int(epoch_seconds), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    return f"{_day(days)}T{hours:02d}:{minutes:02d}:{seconds:02d}Z"


@functools.lru_cache(maxsize=1 << 14)
def _day(days: int) -> str:
    return datetime.fromtimestamp(days * 86_400, tz=UTC).strftime("%Y-%m-%d")


def _num(value: Any) -> str:
    return repr(float(value)) if value is not None else ""


_EXACT = (int, float)  # a bool is not one of them: `type(x) in` compares exact types


def _text(part: Any) -> str:
    return _num(part) if isinstance(part, int | float) and not isinstance(part, bool) else str(part or "")


def fingerprint(*parts: Any) -> str:
    """A stable hash of identifying fields: numbers through float repr so 5 and 5.0 agree. Strings and
    exact numbers, most fields of most rows, are turned to text inline (this runs for many rows a page)."""
    text = "\x1f".join([p if type(p) is str else repr(float(p)) if type(p) in _EXACT else _text(p) for p in parts])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Occurrences:
    """Occurrence numbers of identical fingerprints inside one group (a transaction), for sources whose
    rows carry no id: feed rows in API order; a new group starts the counts again."""

    def __init__(self) -> None:
        self.group: str | None = None
        self.counts: dict[str, int] = {}

    def next(self, group: str, key: str) -> int:
        if group != self.group:
            self.group, self.counts = group, {}
        n = self.counts.get(key, 0)
        self.counts[key] = n + 1
        return n


def dome_trade_key(wallet: str, row: dict[str, Any]) -> str:
    """(wallet, tx_hash, log_index); without a log_index, a fingerprint of the identifying fields.

    Never order_hash alone (repeats across partial fills) nor tx_hash alone (one transaction holds
    several fills of one wallet): both would drop real trades.
    """
    if row.get("log_index") is not None:
        return f"dome:{wallet}:{row['tx_hash']}:{int(row['log_index'])}"
    fp = fingerprint(
        row["tx_hash"],
        row["order_hash"],
        row["user"],
        row["token_id"],
        row["side"],
        row["shares"],
        row["price"],
        row["timestamp"],
    )
    return f"dome:{wallet}:fp:{fp}"


def part_line(row: dict[str, Any]) -> str:
    """One canonical row as a JSONL line, columns in table order, nothing else. orjson writes it (the
    stdlib encoder was a fifth of a page's CPU); a value it refuses (an integer past 64 bits) goes
    through the stdlib, which keeps every digit."""
    # A row the source built in table order (and whose run_id the fetcher added last) is written as it
    # is: re-ordering every row was a third of the line's cost.
    in_order = len(row) == len(COLUMN_NAMES) and tuple(row) == COLUMN_NAMES
    ordered = row if in_order else {name: row.get(name) for name in COLUMN_NAMES}
    try:
        return orjson.dumps(ordered, option=orjson.OPT_APPEND_NEWLINE).decode()
    except TypeError:
        return json.dumps(ordered, separators=(",", ":")) + "\n"
