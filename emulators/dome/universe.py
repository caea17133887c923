"""The simulated universe: wallets and their fills, fully determined by (seed, size, whale_trades).

Rows are computed, never stored (see `fills`), so the whale costs no memory and any page costs
O(page). The position order is the API's order: newest first, i.e. (timestamp desc, block_number desc,
log_index desc), ties beyond that broken by the position itself, so the order is total.

Rows older than LOG_INDEX_SINCE carry `block_number` and `log_index` as JSON null (the keys stay
present): Dome added those fields in January 2026 and the simulator assumes old rows were not
backfilled (dome-api.md, open question 8).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.dome.fills import CHUNK, TIMELINE_END, Fill, Segment, chunk_fills, timestamp_at
from emulators.dome.markets import Market, catalogue

LOG_INDEX_SINCE = 1735689600  # 2025-01-01T00:00:00Z
DAY = 86_400
RECENT = TIMELINE_END - 2 * DAY
DOME_FIELDS = (
    "token_id",
    "token_label",
    "side",
    "market_slug",
    "condition_id",
    "shares",
    "shares_normalized",
    "price",
    "block_number",
    "log_index",
    "tx_hash",
    "title",
    "timestamp",
    "order_hash",
    "user",
    "taker",
)
SPECIAL = (
    "empty",
    "one",
    "n999",
    "n1000",
    "n1001",
    "whale",
    "multi_fill_tx",
    "partial_fills",
    "same_ts_boundary",
    "no_log_index",
)
Run = tuple[int, int, int, float, float]  # newest, length, span, multi, partial


def dome_row(fill: Fill) -> dict[str, Any]:
    """One fill as Dome's /polymarket/orders returns it: the 16 documented fields, in their order."""
    indexed = fill.timestamp >= LOG_INDEX_SINCE
    market = fill.market
    return {
        "token_id": fill.token_id,
        "token_label": fill.token_label,
        "side": fill.side,
        "market_slug": market.slug,
        "condition_id": market.condition_id,
        "shares": fill.shares,
        "shares_normalized": fill.shares / 1_000_000,
        "price": fill.price,
        "block_number": fill.block_number if indexed else None,
        "log_index": fill.log_index if indexed else None,
        "tx_hash": fill.tx_hash,
        "title": market.title,
        "timestamp": fill.timestamp,
        "order_hash": fill.order_hash,
        "user": fill.wallet,
        "taker": fill.taker,
    }


def _address(seed: int, name: str) -> str:
    return "0x" + hashlib.blake2b(f"dome-sim|{seed}|{name}".encode(), digest_size=20).hexdigest()


def _segments(*runs: Run) -> tuple[Segment, ...]:
    out: list[Segment] = []
    start, floor = 0, None
    for newest, length, span, multi, partial in runs:
        span = span and max(span, 2 * length)  # >= 2 s between transactions: one block each
        if floor is not None and newest > floor - 2:
            raise ValueError("segments must be newest first and apart in time")
        out.append(Segment(start, length, newest, span, multi, partial))
        start, floor = start + length, newest - span
    return tuple(out)


def _special_runs(name: str, whale_trades: int) -> tuple[Run, ...]:
    recent = RECENT - DAY
    return {
        "empty": (),
        "one": ((RECENT - 5 * DAY, 1, DAY, 0.0, 0.0),),
        "n999": ((recent, 999, 60 * DAY, 0.1, 0.05),),
        "n1000": ((recent, 1000, 60 * DAY, 0.1, 0.05),),
        "n1001": ((recent, 1001, 60 * DAY, 0.1, 0.05),),
        "whale": ((RECENT, whale_trades, RECENT - 1_672_531_200, 0.08, 0.04),),
        "multi_fill_tx": ((recent, 240, 30 * DAY, 1.0, 0.0),),
        "partial_fills": ((recent, 240, 30 * DAY, 0.0, 1.0),),
        "same_ts_boundary": (
            (recent, 400, 20 * DAY, 0.1, 0.0),
            (recent - 21 * DAY, 1600, 0, 0.1, 0.0),
            (recent - 22 * DAY, 300, 20 * DAY, 0.1, 0.0),
        ),
        "no_log_index": (
            (LOG_INDEX_SINCE + 30 * DAY, 200, 20 * DAY, 0.1, 0.05),
            (LOG_INDEX_SINCE - DAY, 1000, 300 * DAY, 0.4, 0.1),
        ),
    }[name]


def _ordinary_run(seed: int, j: int) -> tuple[Run, ...]:
    """Skewed counts: mostly 0-300, every tenth wallet up to ~3,000; windows often straddle LOG_INDEX_SINCE."""
    rng = random.Random(f"dome-sim|{seed}|wallet|{j}")
    if j % 10 == 9:
        count = rng.randint(301, 3000)
    elif rng.random() < 0.1:
        count = 0
    else:
        count = int(300 * rng.random() ** 2) + 1
    if count == 0:
        return ()
    newest = rng.randint(LOG_INDEX_SINCE - 60 * DAY, RECENT)
    span = rng.randint(30, 700) * DAY
    return ((newest, count, span, rng.choice((0.0, 0.05, 0.15, 0.3)), rng.choice((0.0, 0.03, 0.1))),)


@dataclass(frozen=True)
class _Plan:
    base: Any  # blake2b state holding (seed, wallet): every digest of this wallet continues from it
    segments: tuple[Segment, ...]
    starts: tuple[int, ...]
    count: int


class Universe:
    def __init__(self, seed: int = 7, size: int = 40, whale_trades: int = 250_000) -> None:
        self.seed, self.size, self.whale_trades = seed, size, whale_trades
        self.markets: tuple[Market, ...] = catalogue(seed)
        self.special: dict[str, str] = {name: _address(seed, f"special:{name}") for name in SPECIAL}
        self._plans: dict[str, _Plan] = {}
        for name, wallet in self.special.items():
            self._plans[wallet] = self._plan(wallet, _special_runs(name, whale_trades))
        for j in range(size):
            wallet = _address(seed, f"wallet:{j}")
            self._plans[wallet] = self._plan(wallet, _ordinary_run(seed, j))

    def _plan(self, wallet: str, runs: tuple[Run, ...]) -> _Plan:
        base = hashlib.blake2b(f"dome-sim|{self.seed}|{wallet}".encode(), digest_size=64)
        segments = _segments(*runs)
        return _Plan(base, segments, tuple(s.start for s in segments), sum(s.length for s in segments))

    def wallets(self) -> list[str]:
        """Special wallets first (in SPECIAL order), then the ordinary ones."""
        return list(self._plans)

    def count(self, wallet: str) -> int:
        plan = self._plans.get(wallet.lower())
        return plan.count if plan else 0

    def _locate(self, wallet: str, i: int) -> tuple[_Plan, int, Segment]:
        plan = self._plans.get(wallet.lower())
        if plan is None or not 0 <= i < plan.count:
            raise IndexError(f"{wallet} has no row {i}")
        seg_no = bisect.bisect_right(plan.starts, i) - 1
        return plan, seg_no, plan.segments[seg_no]

    def timestamp(self, wallet: str, i: int) -> int:
        plan, seg_no, seg = self._locate(wallet, i)
        return timestamp_at(plan.base, seg_no, seg, i - seg.start)

    def fill(self, wallet: str, i: int) -> Fill:
        plan, seg_no, seg = self._locate(wallet, i)
        chunk, slot = divmod(i - seg.start, CHUNK)
        return chunk_fills(plan.base, wallet.lower(), seg_no, seg, chunk, self.markets, slot)[0]

    def fills(self, wallet: str, start: int = 0, stop: int | None = None) -> Iterator[Fill]:
        """Fills at positions [start, stop), newest first, generated a chunk at a time."""
        wallet = wallet.lower()
        stop = self.count(wallet) if stop is None else min(stop, self.count(wallet))
        i = max(0, start)
        while i < stop:
            plan, seg_no, seg = self._locate(wallet, i)
            chunk, slot = divmod(i - seg.start, CHUNK)
            batch = chunk_fills(plan.base, wallet, seg_no, seg, chunk, self.markets, slot)
            yield from batch[: stop - i]
            i += len(batch)

    def row(self, wallet: str, i: int) -> dict[str, Any]:
        return dome_row(self.fill(wallet, i))

    def rows(self, wallet: str, start: int = 0) -> Iterator[dict[str, Any]]:
        return map(dome_row, self.fills(wallet, start))

    def role(self, wallet: str, i: int) -> str:
        """ "maker" or "taker": the wallet's side of the match (not a Dome field; kept for other sources)."""
        return self.fill(wallet, i).role

    def window(self, wallet: str, start_time: int | None = None, end_time: int | None = None) -> range:
        """Positions whose timestamp is within [start_time, end_time] (inclusive): O(log n)."""
        n = self.count(wallet)
        lo = 0 if end_time is None else self._first(wallet, n, lambda ts: ts <= end_time)
        hi = n if start_time is None else self._first(wallet, n, lambda ts: ts < start_time)
        return range(lo, max(lo, hi))

    def _first(self, wallet: str, n: int, test: Any) -> int:
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            if test(self.timestamp(wallet, mid)):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def export_ground_truth(self, path: str | Path) -> dict[str, int]:
        """JSONL, one `{"wallet": w, **row}` per fill, every wallet in API order; returns rows per wallet."""
        counts: dict[str, int] = {}
        with Path(path).open("w", encoding="utf-8") as out:
            for wallet in self.wallets():
                counts[wallet] = 0
                lines: list[str] = []
                for row in self.rows(wallet):
                    lines.append(json.dumps({"wallet": wallet, **row}, separators=(",", ":")))
                    if len(lines) >= 5000:
                        out.write("\n".join(lines) + "\n")
                        counts[wallet] += len(lines)
                        lines.clear()
                if lines:
                    out.write("\n".join(lines) + "\n")
                    counts[wallet] += len(lines)
        return counts
