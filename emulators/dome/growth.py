"""Time moves: `Universe.advance(seconds)` takes the virtual now from old to new and grows the universe,
deterministically from (seed, the sequence of advances).

Advance k (from 1) adds, as a small stored overlay merged into the seeded rows (`Overlay`):

- new fills, timestamps in (old now, new now], for `growth_wallets`: "whale" (four transactions, one
  of them two fills), "few" (the ordinary wallet with the fewest fills, one), "zero" (the first
  ordinary wallet without fills, two; its first is a taker fill, so `/v2/trades`' default shows it),
  and two more ordinary wallets drawn per advance (one or two each);
- late-indexed fills (`late_edges`): "inside_lookback" (the ordinary wallet with the most fills among
  those whose newest is after LOG_INDEX_SINCE, so Dome serves their log indexes) gains
  two transactions OLDER than its newest fill before the advance, N, but within 24 h of it (what a
  daily sync with a 1-day lookback still sees): two fills of one transaction 1-5 h before N, then a
  taker fill 12-23 h before N, so a later advance's single fill sorts after an earlier advance's
  two-fill transaction (a cursor inside that transaction must survive rows added behind it); and
  "outside_lookback" (the second of them) gains one fill 3 days (to ten minutes) older than
  its newest, N' - 3 d: a 1-day lookback misses it;
- the resolution of `catalog.resolution_order[k-1]` (an open market; the whale trades every market),
  completed at the new now.

New fills trade open markets. Each transaction gets a second (and block, `block_at`) of its own: no
other fill of that wallet is in that block at another second; if the only seconds left share one with
a fill at the same second, the transaction joins that block with log indexes above its fills. Hashes
are fresh digests, so no row identity collides. Where a wallet is missing (small universes), the roles
fall back to special wallets: "few" to `one`, "zero" to `empty`, the late ones to `n1001` and `n999`.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulators.dome.fills import Fill, block_at
from emulators.dome.markets import Market
from emulators.dome.wallets import LOG_INDEX_SINCE

if TYPE_CHECKING:
    from emulators.dome.universe import Universe

DAY, HOUR = 86_400, 3_600
LATE_WINDOW = DAY
OUTSIDE_BY = 3 * DAY


@dataclass(frozen=True)
class Overlay:
    """A wallet's added fills, newest first, each with how many seeded rows sort before it (`ranks`);
    `at` is each one's index among the wallet's rows now. Immutable: growing swaps in a new one, so a
    reader holding one sees a consistent wallet."""

    fills: tuple[Fill, ...] = ()
    ranks: tuple[int, ...] = ()
    at: tuple[int, ...] = ()

    def with_fill(self, fill: Fill, rank: int) -> Overlay:
        key = (fill.timestamp, fill.sequence)
        j = next((j for j, f in enumerate(self.fills) if (f.timestamp, f.sequence) < key), len(self.fills))
        ranks = (*self.ranks[:j], rank, *self.ranks[j:])
        fills = (*self.fills[:j], fill, *self.fills[j:])
        return Overlay(fills, ranks, tuple(r + i for i, r in enumerate(ranks)))


@dataclass(frozen=True)
class AdvanceReport:
    advance: int
    previous_now: int
    now: int
    new_fills: dict[str, list[Fill]]
    late_fills: dict[str, list[Fill]]
    newest_before: dict[str, int | None]
    """Each growing wallet's newest timestamp before the advance (None: it had no fills)."""
    resolved: list[str]
    """Condition ids resolved by this advance."""

    def as_json(self) -> dict[str, Any]:
        return {
            "advance": self.advance,
            "previous_now": self.previous_now,
            "now": self.now,
            "new_fills": {w: len(fs) for w, fs in self.new_fills.items()},
            "late_fills": {w: [f.timestamp for f in fs] for w, fs in self.late_fills.items()},
            "newest_before": self.newest_before,
            "resolved": self.resolved,
        }


def roles(u: Universe) -> tuple[dict[str, str], dict[str, str]]:
    """(growth_wallets, late_edges), chosen once from the seeded counts."""
    ordinary = u.ordinary()
    recent = [w for w in ordinary if u.seeded.count(w) and u.seeded.timestamp(w, 0) >= LOG_INDEX_SINCE + DAY]
    busy = sorted(recent, key=lambda w: (-u.seeded.count(w), ordinary.index(w)))
    quiet = sorted((w for w in ordinary if u.seeded.count(w)), key=lambda w: (u.seeded.count(w), ordinary.index(w)))
    inside = busy[0] if busy else u.special["n1001"]
    outside = busy[1] if len(busy) > 1 else u.special["n999"]
    few = next((w for w in quiet if w not in (inside, outside)), u.special["one"])
    zero = next((w for w in ordinary if u.seeded.count(w) == 0), u.special["empty"])
    growth = {"whale": u.special["whale"], "few": few, "zero": zero}
    return growth, {"inside_lookback": inside, "outside_lookback": outside}


def _digest(u: Universe, *parts: object) -> bytes:
    return hashlib.blake2b("|".join(map(str, ("dome-sim", u.seed, "advance", *parts))).encode()).digest()


def _slot(u: Universe, wallet: str, target: int, lo: int, hi: int) -> tuple[int, int] | None:
    """A second in [lo, hi] near `target` for a new transaction, and the highest log index already in its
    block (-1: none), or None when no second is left (among the 2,000 nearest)."""
    fallback = None
    for d in range(max(target - lo, hi - target) + 1):
        for t in sorted({target - d, target + d}):
            if not lo <= t <= hi:
                continue
            block, top, clash = block_at(t), -1, False
            for i in u.window(wallet, t - 2, t + 2):
                f = u.fill(wallet, i)
                if f.block_number == block:
                    clash = clash or f.timestamp != t
                    top = max(top, f.log_index)
            if clash:
                continue
            if top < 0:
                return t, top
            fallback = fallback or (t, top)
        if d >= 1_000:
            break
    return fallback


def _transaction(
    u: Universe, wallet: str, tag: tuple[object, ...], when: tuple[int, int], size: int, market: Market, taker: bool
) -> list[Fill]:
    (ts, top), d = when, _digest(u, *tag)
    first_log = (5 + int.from_bytes(d[40:42], "little") % 600) if top < 0 else top + 2 + d[42] % 20
    out = []
    for n in range(size):
        f = _digest(u, *tag, "fill", n)
        r = int.from_bytes(f[0:4], "little") / 2**32
        out.append(
            Fill(
                wallet=wallet,
                position=-1,
                tx_hash="0x" + d[:32].hex(),
                block_number=block_at(ts),
                log_index=first_log + 2 * (size - 1 - n),
                timestamp=ts,
                order_hash="0x" + f[32:64].hex(),
                market=market,
                outcome=d[43] & 1,
                side="BUY" if d[39] < 150 else "SELL",
                shares=(1 + int(20_000 * r**3)) * 10_000,
                price_milli=10 * (1 + f[4] % 99),
                counterparty="0x" + d[44:64].hex(),
                role="taker" if taker and size == 1 else "maker",
            )
        )
    return out


def _markets(u: Universe) -> list[Market]:
    cat = u.catalog
    live = [m for m in u.markets if cat.served(m) and not cat.closed(m.index)]
    return live or [m for m in u.markets if cat.served(m)]


def _place(
    u: Universe, k: int, wallet: str, txs: list[tuple[int, bool]], span: tuple[int, int], targets: list[int]
) -> list[Fill]:
    """Add transactions of (size, taker) to the wallet at seconds near `targets` within `span`."""
    markets, added = _markets(u), []
    for n, ((size, taker), target) in enumerate(zip(txs, targets, strict=True)):
        when = _slot(u, wallet, target, *span)
        if when is None:
            continue
        pick = _digest(u, k, wallet, "market", n)
        market = markets[int.from_bytes(pick[:4], "little") % len(markets)]
        fills = _transaction(u, wallet, (k, wallet, "tx", n), when, size, market, taker)
        for fill in fills:
            u.add_fill(wallet, fill)
        added += fills
    return added


def _newest(u: Universe, wallet: str) -> int | None:
    return u.timestamp(wallet, 0) if u.count(wallet) else None


def advance(u: Universe, seconds: int) -> AdvanceReport:
    if int(seconds) != seconds or seconds < 1:
        raise ValueError(f"an advance is a whole number of seconds >= 1, not {seconds!r}")
    k, old = len(u.advances) + 1, u.now
    new = old + int(seconds)
    rng = random.Random(f"dome-sim|{u.seed}|advance|{k}|{seconds}")
    g, late = u.growth_wallets, u.late_edges
    others = [w for w in u.ordinary() if u.seeded.count(w) and w not in (*g.values(), *late.values())]
    plan: dict[str, list[tuple[int, bool]]] = {g["whale"]: [(1, True), (2, False), (1, False), (1, True)]}
    plan[g["few"]] = [(1, True)]
    plan[g["zero"]] = [(1, True), (1, False)]
    for wallet in rng.sample(others, min(2, len(others))):
        plan[wallet] = [(1, rng.random() < 0.5) for _ in range(rng.randint(1, 2))]
    inside, outside = late["inside_lookback"], late["outside_lookback"]
    newest = {w: _newest(u, w) for w in (*plan, inside, outside)}
    new_fills = {}
    for wallet, txs in plan.items():
        targets = sorted((old + 1 + rng.randrange(seconds) for _ in txs), reverse=True)
        new_fills[wallet] = _place(u, k, wallet, txs, (old + 1, new), targets)
    late_fills = {}
    top = newest[inside]
    if top is not None:
        targets = [top - HOUR - rng.randrange(4 * HOUR), top - 12 * HOUR - rng.randrange(11 * HOUR)]
        late_fills[inside] = _place(u, k, inside, [(2, False), (1, True)], (top - LATE_WINDOW + 1, top - 1), targets)
    top = newest[outside]
    if top is not None:
        at = top - OUTSIDE_BY
        late_fills[outside] = _place(u, k, outside, [(1, True)], (at - 600, at + 600), [at])
    resolved = u.catalog.resolve(k, new)
    u.now = new
    return AdvanceReport(k, old, new, new_fills, late_fills, newest, [resolved.condition_id] if resolved else [])
