"""The simulated universe: wallets, their fills and the market catalogue, fully determined by (seed, size,
whale_trades) and the sequence of advances.

Seeded rows are computed, never stored (see `fills`), so the whale costs no memory and any page costs
O(page). The order is the API's order: newest first, i.e. (timestamp desc, block_number desc, log_index
desc), which `Fill.sequence` makes one total key (timestamp, sequence). `advance` moves the virtual now
(`now`, from START) and adds fills (`growth`): a small stored overlay per wallet, merged into the seeded
rows by that key, so index i of a wallet is "its i-th row now" whichever side it comes from.

Two views of the same fills: `rows` in Dome's shape, `trade_rows` in the Data API v2's
(`polymarket.py`). The Data API edge wallets (`data_api_special`: identical fills of one transaction
straddling the 1000-row page boundary, combo markets, rows without a transaction hash, fills older
than the Data API's 3-year default window, dust under 0.01 shares) are listed only by
`wallets("polymarket")`: Dome's listings, exports and tests stay as they were (its endpoint still
answers those wallets if asked). The markets APIs' view of the catalogue is `catalog` (edges:
`market_edges`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from emulators.dome import growth, truth
from emulators.dome.catalog import START, Catalog
from emulators.dome.dome_rows import DOME_FIELDS, dome_row
from emulators.dome.fills import Fill
from emulators.dome.markets import Market, catalogue, combos
from emulators.dome.polymarket import FULL_HISTORY, profile, trade_row
from emulators.dome.wallets import (
    DATA_API_SPECIAL,
    DAY,
    LOG_INDEX_SINCE,
    RECENT,
    SPECIAL,
    STRADDLE_AT,
    Seeded,
    address,
    data_api_runs,
    ordinary_run,
    special_runs,
)

__all__ = [
    "DATA_API_SPECIAL",
    "DAY",
    "DOME_FIELDS",
    "LOG_INDEX_SINCE",
    "RECENT",
    "SPECIAL",
    "STRADDLE_AT",
    "Universe",
    "dome_row",
]
SOURCES = ("dome", "polymarket")


class Universe:
    def __init__(self, seed: int = 7, size: int = 40, whale_trades: int = 250_000, wallet_scale: int = 1) -> None:
        self.seed, self.size, self.whale_trades = seed, size, whale_trades
        self.markets: tuple[Market, ...] = catalogue(seed)
        self.combos: tuple[Market, ...] = combos(seed, self.markets)
        # Combo fills draw from a small catalogue where combos are common (a third of the markets).
        self.combo_mix: tuple[Market, ...] = self.markets[:24] + self.combos
        self.catalog = Catalog(seed, self.markets, self.combos)
        self.market_edges: dict[str, tuple[str, ...]] = self.catalog.edges
        self.special: dict[str, str] = {name: address(seed, f"special:{name}") for name in SPECIAL}
        self.data_api_special: dict[str, str] = {name: address(seed, f"special:{name}") for name in DATA_API_SPECIAL}
        self.seeded = Seeded(seed, self.markets, self.combo_mix)
        for name, wallet in self.special.items():
            self.seeded.add(wallet, special_runs(name, whale_trades))
        for name, wallet in self.data_api_special.items():
            self.seeded.add(wallet, data_api_runs(name))
        self._ordinary: list[str] = []
        for j in range(size):
            wallet = address(seed, f"wallet:{j}")
            self._ordinary.append(wallet)
            self.seeded.add(wallet, ordinary_run(seed, j, wallet_scale))
        self.now = START
        """The virtual now: START, then moved by `advance`."""
        self.advances: list[growth.AdvanceReport] = []
        self._overlays: dict[str, growth.Overlay] = {}
        self._traded: dict[str, frozenset[str]] = {}
        self.growth_wallets, self.late_edges = growth.roles(self)

    def wallets(self, source: str = "dome") -> list[str]:
        """Special wallets first (in SPECIAL order), then for "polymarket" the Data API edge wallets
        (in DATA_API_SPECIAL order), then the ordinary ones."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        extra = list(self.data_api_special.values()) if source == "polymarket" else []
        return [*self.special.values(), *extra, *self._ordinary]

    def ordinary(self) -> list[str]:
        return list(self._ordinary)

    def keep(self, wallets: list[str]) -> None:
        """Compute these wallets' seeded histories now and answer from them from now on: the same rows,
        without the per-request cost of computing them (a benchmark that shares its machine with the
        simulator keeps the list it runs, so the server's CPU does not compete with the run it times).
        Costs their rows' memory."""
        for wallet in wallets:
            self.seeded.keep(wallet)

    # The rows now: seeded rows and the overlay, merged (index i = the wallet's i-th row now)

    def count(self, wallet: str) -> int:
        overlay = self._overlays.get(wallet.lower())
        return self.seeded.count(wallet) + (len(overlay.fills) if overlay else 0)

    def _at(self, wallet: str, i: int) -> tuple[Fill | None, int]:
        """(the overlay's fill at index i, -1) or (None, the seeded position at index i)."""
        overlay = self._overlays.get(wallet.lower())
        if not overlay:
            return None, i
        j = bisect.bisect_left(overlay.at, i)
        if j < len(overlay.at) and overlay.at[j] == i:
            return overlay.fills[j], -1
        return None, i - j

    def timestamp(self, wallet: str, i: int) -> int:
        extra, position = self._at(wallet, i)
        if not 0 <= i < self.count(wallet):
            raise IndexError(f"{wallet} has no row {i}")
        return extra.timestamp if extra else self.seeded.timestamp(wallet, position)

    def fill(self, wallet: str, i: int) -> Fill:
        extra, position = self._at(wallet, i)
        if not 0 <= i < self.count(wallet):
            raise IndexError(f"{wallet} has no row {i}")
        return extra or self.seeded.fill(wallet, position)

    def fills(self, wallet: str, start: int = 0, stop: int | None = None) -> Iterator[Fill]:
        """Fills at indexes [start, stop), newest first, generated a chunk at a time."""
        wallet = wallet.lower()
        stop = self.count(wallet) if stop is None else min(stop, self.count(wallet))
        overlay = self._overlays.get(wallet)
        if not overlay:
            yield from self.seeded.fills(wallet, start, stop)
            return
        i = max(0, start)
        j = bisect.bisect_left(overlay.at, i)
        while i < stop:
            if j < len(overlay.at) and overlay.at[j] == i:
                yield overlay.fills[j]
                i, j = i + 1, j + 1
                continue
            run = min(stop, overlay.at[j] if j < len(overlay.at) else stop) - i
            yield from self.seeded.fills(wallet, i - j, i - j + run)
            i += run

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
        """Indexes whose timestamp is within [start_time, end_time] (inclusive): O(log n)."""
        n = self.count(wallet)
        at = self.timestamp
        lo = 0 if end_time is None else _first(n, lambda i: at(wallet, i) <= end_time)
        hi = n if start_time is None else _first(n, lambda i: at(wallet, i) < start_time)
        return range(lo, max(lo, hi))

    def seek(self, wallet: str, timestamp: int, sequence: int) -> int:
        """The first index whose key (timestamp, sequence) sorts after the given one (is older): O(log n)."""
        return _first(self.count(wallet), lambda i: _key_below(self, wallet, i, timestamp, sequence))

    def base_rank(self, wallet: str, timestamp: int, sequence: int) -> int:
        """How many seeded rows sort before the key (are newer)."""

        def older(p: int) -> bool:
            ts = self.seeded.timestamp(wallet, p)
            return ts < timestamp or (ts == timestamp and self.seeded.fill(wallet, p).sequence < sequence)

        return _first(self.seeded.count(wallet), older)

    # Time

    def advance(self, seconds: int) -> growth.AdvanceReport:
        """Move now forward by `seconds` (>= 1): new and late-indexed fills, a market resolves (`growth`)."""
        report = growth.advance(self, seconds)
        self.advances.append(report)
        return report

    def add_fill(self, wallet: str, fill: Fill) -> None:
        """Merge one fill into the wallet's rows (growth's entry point; its key must be new to the wallet)."""
        wallet = wallet.lower()
        rank = self.base_rank(wallet, fill.timestamp, fill.sequence)
        self._overlays[wallet] = self._overlays.get(wallet, growth.Overlay()).with_fill(fill, rank)
        self._traded.pop(wallet, None)

    def traded(self, wallet: str) -> frozenset[str]:
        """The condition ids of the wallet's fills (one scan, cached until the wallet grows)."""
        wallet = wallet.lower()
        if wallet not in self._traded:
            self._traded[wallet] = frozenset(f.market.condition_id for f in self.fills(wallet))
        return self._traded[wallet]

    # Ground truth

    def export_ground_truth(
        self, path: str | Path, source: str = "dome", wallets: list[str] | None = None
    ) -> dict[str, int]:
        """JSONL, one `{"wallet": w, **row}` per row `source`'s API returns for the wallet (Dome: every
        fill; Polymarket: `taker_only=false&start=1`), every wallet (default: `wallets(source)`) in API
        order; returns rows per wallet."""
        return truth.export_rows(self, path, source, wallets)

    def export_markets_truth(
        self, path: str | Path, source: str = "dome", condition_ids: list[str] | None = None
    ) -> dict[str, int]:
        """JSONL of the market objects as `source`'s markets API serves them now (`truth.market_lines`)."""
        return truth.write(path, truth.market_lines(self, source, condition_ids))

    def export_events_truth(self, path: str | Path, source: str = "dome") -> dict[str, int]:
        """JSONL of the events the exported markets name, as `source`'s events API serves them now."""
        return truth.write(path, truth.event_lines(self, source))


def _first(n: int, test: Callable[[int], bool]) -> int:
    """The first index in [0, n) where the monotone `test` holds (n if none)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if test(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _key_below(u: Universe, wallet: str, i: int, timestamp: int, sequence: int) -> bool:
    ts = u.timestamp(wallet, i)
    return ts < timestamp or (ts == timestamp and u.fill(wallet, i).sequence < sequence)
