"""The simulated universe: wallets and their fills, fully determined by (seed, size, whale_trades).

Rows are computed, never stored (see `fills`), so the whale costs no memory and any page costs
O(page). The position order is the API's order: newest first, i.e. (timestamp desc, block_number desc,
log_index desc), ties beyond that broken by the position itself, so the order is total.

Rows older than LOG_INDEX_SINCE carry `block_number` and `log_index` as JSON null (the keys stay
present): Dome added those fields in January 2026 and the simulator assumes old rows were not
backfilled (dome-api.md, open question 8).

Two views of the same fills: `rows` in Dome's shape, `trade_rows` in the Data API v2's
(`polymarket.py`). The Data API edge wallets (`data_api_special`: identical fills of one transaction
straddling the 1000-row page boundary, combo markets, rows without a transaction hash, fills older
than the Data API's 3-year default window, dust under 0.01 shares) are listed only by
`wallets("polymarket")`: Dome's listings, exports and tests stay as they were (its endpoint still
answers those wallets if asked).
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

from emulators.dome.fills import CHUNK, TIMELINE_END, TIMELINE_START, Fill, Segment, chunk_fills, timestamp_at
from emulators.dome.markets import Market, catalogue, combos
from emulators.dome.polymarket import FULL_HISTORY, profile, trade_row

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
DATA_API_SPECIAL = ("straddle", "combo", "no_tx_hash", "old_fills", "dust")
STRADDLE_AT = 997  # first position of the straddle wallet's sweep: 3 fills each side of the 1000-row boundary
Run = tuple[Any, ...]  # newest, length, span, multi, partial[, kind]
SOURCES = ("dome", "polymarket")


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
    for newest, length, span, multi, partial, *kind in runs:
        span = span and max(span, 2 * length)  # >= 2 s between transactions: one block each
        if floor is not None and newest > floor - 2:
            raise ValueError("segments must be newest first and apart in time")
        out.append(Segment(start, length, newest, span, multi, partial, *kind))
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


def _data_api_runs(name: str) -> tuple[Run, ...]:
    recent = RECENT - DAY
    return {
        "straddle": (
            (recent, STRADDLE_AT, 40 * DAY, 0.1, 0.05),
            (recent - 41 * DAY, 6, 0, 0.0, 0.0, "sweep"),
            (recent - 42 * DAY, 300, 30 * DAY, 0.1, 0.05),
        ),
        "combo": ((recent, 400, 90 * DAY, 0.1, 0.05, "combo"),),
        "no_tx_hash": ((recent, 200, 30 * DAY, 0.1, 0.05), (recent - 31 * DAY, 300, 60 * DAY, 0.3, 0.0, "hashless")),
        "old_fills": ((recent, 150, 200 * DAY, 0.1, 0.05), (TIMELINE_START + 180 * DAY, 200, 170 * DAY, 0.1, 0.05)),
        "dust": ((recent, 300, 60 * DAY, 0.1, 0.05, "dust"),),
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
        # Combo fills draw from a small catalogue where combos are common (a third of the markets).
        self.combo_mix: tuple[Market, ...] = self.markets[:24] + combos(seed, self.markets)
        self.special: dict[str, str] = {name: _address(seed, f"special:{name}") for name in SPECIAL}
        self.data_api_special: dict[str, str] = {name: _address(seed, f"special:{name}") for name in DATA_API_SPECIAL}
        self._plans: dict[str, _Plan] = {}
        for name, wallet in self.special.items():
            self._plans[wallet] = self._plan(wallet, _special_runs(name, whale_trades))
        for name, wallet in self.data_api_special.items():
            self._plans[wallet] = self._plan(wallet, _data_api_runs(name))
        self._ordinary: list[str] = []
        for j in range(size):
            wallet = _address(seed, f"wallet:{j}")
            self._ordinary.append(wallet)
            self._plans[wallet] = self._plan(wallet, _ordinary_run(seed, j))

    def _plan(self, wallet: str, runs: tuple[Run, ...]) -> _Plan:
        base = hashlib.blake2b(f"dome-sim|{self.seed}|{wallet}".encode(), digest_size=64)
        segments = _segments(*runs)
        return _Plan(base, segments, tuple(s.start for s in segments), sum(s.length for s in segments))

    def wallets(self, source: str = "dome") -> list[str]:
        """Special wallets first (in SPECIAL order), then for "polymarket" the Data API edge wallets
        (in DATA_API_SPECIAL order), then the ordinary ones."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        extra = list(self.data_api_special.values()) if source == "polymarket" else []
        return [*self.special.values(), *extra, *self._ordinary]

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
        return chunk_fills(plan.base, wallet.lower(), seg_no, seg, chunk, self._catalogue(seg), slot)[0]

    def _catalogue(self, seg: Segment) -> tuple[Market, ...]:
        return self.combo_mix if seg.kind == "combo" else self.markets

    def fills(self, wallet: str, start: int = 0, stop: int | None = None) -> Iterator[Fill]:
        """Fills at positions [start, stop), newest first, generated a chunk at a time."""
        wallet = wallet.lower()
        stop = self.count(wallet) if stop is None else min(stop, self.count(wallet))
        i = max(0, start)
        while i < stop:
            plan, seg_no, seg = self._locate(wallet, i)
            chunk, slot = divmod(i - seg.start, CHUNK)
            batch = chunk_fills(plan.base, wallet, seg_no, seg, chunk, self._catalogue(seg), slot)
            yield from batch[: stop - i]
            i += len(batch)

    def row(self, wallet: str, i: int) -> dict[str, Any]:
        return dome_row(self.fill(wallet, i))

    def rows(self, wallet: str, start: int = 0) -> Iterator[dict[str, Any]]:
        return map(dome_row, self.fills(wallet, start))

    def trade_rows(self, wallet: str) -> Iterator[dict[str, Any]]:
        """The Data API's rows of the wallet, as `/v2/trades?user=W&taker_only=false&start=1` serves them."""
        who = profile(self.seed, wallet.lower())
        return (trade_row(f, who) for f in self.fills(wallet) if FULL_HISTORY.shows(f))

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

    def export_ground_truth(
        self, path: str | Path, source: str = "dome", wallets: list[str] | None = None
    ) -> dict[str, int]:
        """JSONL, one `{"wallet": w, **row}` per row `source`'s API returns for the wallet (Dome: every
        fill; Polymarket: `taker_only=false&start=1`), every wallet (default: `wallets(source)`) in API
        order; returns rows per wallet."""
        counts: dict[str, int] = {}
        rows_of = self.trade_rows if source == "polymarket" else self.rows
        with Path(path).open("w", encoding="utf-8") as out:
            for wallet in self.wallets(source) if wallets is None else [w.lower() for w in wallets]:
                counts[wallet] = 0
                lines: list[str] = []
                for row in rows_of(wallet):
                    lines.append(json.dumps({"wallet": wallet, **row}, separators=(",", ":")))
                    if len(lines) >= 5000:
                        out.write("\n".join(lines) + "\n")
                        counts[wallet] += len(lines)
                        lines.clear()
                if lines:
                    out.write("\n".join(lines) + "\n")
                    counts[wallet] += len(lines)
        return counts
