"""Who is in the universe and how each wallet's seeded history is laid out: the special wallets, the
Data API edge wallets, the skewed ordinary wallets, each as a few runs of fills (`Segment`s, see
`fills`); `Seeded` computes row i of any of them on demand (what advances add is in `growth`).

LOG_INDEX_SINCE: Dome serves older rows with null block_number and log_index (`dome_rows`).
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from emulators.dome.fills import CHUNK, TIMELINE_END, TIMELINE_START, Fill, Segment, chunk_fills, timestamp_at
from emulators.dome.markets import Market

LOG_INDEX_SINCE = 1735689600  # 2025-01-01T00:00:00Z
DAY = 86_400
RECENT = TIMELINE_END - 2 * DAY
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


def address(seed: int, name: str) -> str:
    return "0x" + hashlib.blake2b(f"dome-sim|{seed}|{name}".encode(), digest_size=20).hexdigest()


def segments(*runs: Run) -> tuple[Segment, ...]:
    out: list[Segment] = []
    start, floor = 0, None
    for newest, length, span, multi, partial, *kind in runs:
        span = span and max(span, 2 * length)  # >= 2 s between transactions: one block each
        if floor is not None and newest > floor - 2:
            raise ValueError("segments must be newest first and apart in time")
        out.append(Segment(start, length, newest, span, multi, partial, *kind))
        start, floor = start + length, newest - span
    return tuple(out)


def special_runs(name: str, whale_trades: int) -> tuple[Run, ...]:
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


def data_api_runs(name: str) -> tuple[Run, ...]:
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


def ordinary_run(seed: int, j: int, scale: int = 1) -> tuple[Run, ...]:
    """Skewed counts: mostly 0-300, every tenth wallet up to ~3,000, times `scale`; windows often straddle
    LOG_INDEX_SINCE."""
    rng = random.Random(f"dome-sim|{seed}|wallet|{j}")
    if j % 10 == 9:
        count = rng.randint(301, 3000)
    elif rng.random() < 0.1:
        count = 0
    else:
        count = int(300 * rng.random() ** 2) + 1
    if count == 0:
        return ()
    count *= scale
    newest = rng.randint(LOG_INDEX_SINCE - 60 * DAY, RECENT)
    span = rng.randint(30, 700) * DAY
    return ((newest, count, span, rng.choice((0.0, 0.05, 0.15, 0.3)), rng.choice((0.0, 0.03, 0.1))),)


@dataclass(frozen=True)
class _Plan:
    base: Any  # blake2b state holding (seed, wallet): every digest of this wallet continues from it
    segments: tuple[Segment, ...]
    starts: tuple[int, ...]
    count: int


class Seeded:
    """The seeded histories, wallet -> plan; position i (newest first) of a wallet is computed, never stored."""

    def __init__(self, seed: int, markets: tuple[Market, ...], combo_mix: tuple[Market, ...]) -> None:
        self.seed, self.markets, self.combo_mix = seed, markets, combo_mix
        self._plans: dict[str, _Plan] = {}
        self._kept: dict[str, list[Fill]] = {}

    def keep(self, wallet: str) -> None:
        """Compute the wallet's history once and answer from it from now on (`Universe.keep`)."""
        wallet = wallet.lower()
        if wallet in self._plans and wallet not in self._kept:
            self._kept[wallet] = list(self.fills(wallet, 0, self.count(wallet)))

    def add(self, wallet: str, runs: tuple[Run, ...]) -> None:
        base = hashlib.blake2b(f"dome-sim|{self.seed}|{wallet}".encode(), digest_size=64)
        segs = segments(*runs)
        self._plans[wallet] = _Plan(base, segs, tuple(s.start for s in segs), sum(s.length for s in segs))

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
        kept = self._kept.get(wallet.lower())
        if kept is not None:
            return kept[i].timestamp
        return timestamp_at(plan.base, seg_no, seg, i - seg.start)

    def fill(self, wallet: str, i: int) -> Fill:
        plan, seg_no, seg = self._locate(wallet, i)
        kept = self._kept.get(wallet.lower())
        if kept is not None:
            return kept[i]
        chunk, slot = divmod(i - seg.start, CHUNK)
        return chunk_fills(plan.base, wallet.lower(), seg_no, seg, chunk, self._catalogue(seg), slot)[0]

    def _catalogue(self, seg: Segment) -> tuple[Market, ...]:
        return self.combo_mix if seg.kind == "combo" else self.markets

    def fills(self, wallet: str, start: int, stop: int) -> Iterator[Fill]:
        """Positions [start, stop) of a known wallet, a chunk at a time."""
        kept = self._kept.get(wallet.lower())
        if kept is not None:
            if max(0, start) < stop > len(kept):
                raise IndexError(f"{wallet} has no row {len(kept)}")  # as `_locate` says it
            yield from kept[max(0, start) : stop]
            return
        i = max(0, start)
        while i < stop:
            plan, seg_no, seg = self._locate(wallet, i)
            chunk, slot = divmod(i - seg.start, CHUNK)
            batch = chunk_fills(plan.base, wallet, seg_no, seg, chunk, self._catalogue(seg), slot)
            yield from batch[: stop - i]
            i += len(batch)
