"""Fills computed directly from (seed, wallet, position): nothing of a wallet's history is stored.

A wallet's history is a short list of `Segment`s (a run of positions over a time span). A segment is
cut into chunks of CHUNK positions; each chunk picks one `Pattern` from a hash, which says how its
fills group into transactions (several fills of this wallet in one tx), orders (one order hash
filled across several txs) and books (market, outcome, side). Position i is therefore computable in
O(1): segment by bisection, then chunk i // CHUNK, then the slot. Timestamps fall with the position
(a transaction's time comes from its first position), so the position order is the API's order.

A `Fill` is source-neutral (it always knows its block, log index and maker/taker role); each API
simulator renders it in its own shape.

A segment's `kind` adds one trait the Data API cares about: "sweep" (the whole run is ONE transaction
of identical resting orders of this wallet, filled by one taker: same tx, token, side, size, price and
second, only order hash and log index differ), "hashless" (rows the Data API serves without a
transaction hash), "combo" (some fills on combo markets: the universe hands in a catalogue holding
them) and "dust" (a quarter of the fills under 0.01 shares, which `/v2/trades` hides by default).
Outside "dust" segments no fill is under 0.01 shares.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from emulators.dome.markets import LABELS, Market

CHUNK = 8
EXCHANGE = "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e"  # Polymarket CTF Exchange: `taker` of taker-order fills
TIMELINE_START = 1672531200  # 2023-01-01T00:00:00Z
TIMELINE_END = 1769904000  # 2026-02-01T00:00:00Z
BLOCK_AT_END = 82_000_000  # Polygon: ~2 s blocks
_PATTERN, _TX, _ORDER, _BOOK = 1, 2, 3, 4


@dataclass(frozen=True)
class Pattern:
    """Equal letters: same transaction (`tx`, contiguous), same order hash (`order`), same market,
    outcome and side (`book`, which must join every tx's fills and every order's fills)."""

    tx: str
    order: str
    book: str

    def layout(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[bool, ...]]:
        """Per slot: tx id, order id, book id, first slot of its tx, whether its order spans txs."""
        ids = [tuple(ord(c) - 65 for c in s) for s in (self.tx, self.order, self.book)]
        first = tuple(self.tx.index(c) for c in self.tx)
        pairs = list(zip(self.tx, self.order, strict=True))
        spans = tuple(len({t for t, o in pairs if o == mine}) > 1 for mine in self.order)
        return ids[0], ids[1], ids[2], first, spans


SINGLE = Pattern("ABCDEFGH", "ABCDEFGH", "ABCDEFGH")
MULTI_FILL = (
    Pattern("AABCDEFG", "ABCDEFGH", "AABCDEFG"),
    Pattern("ABBBCDEF", "ABCDEFGH", "ABBBCDEF"),
    Pattern("ABCCCCDE", "ABCDEFGH", "ABCCCCDE"),
    Pattern("AABBCDEF", "ABCDEFGH", "AABBCDEF"),
    Pattern("AABCDEFG", "ABCDBEFG", "AABCADEF"),  # order B: a fill in multi-fill tx A, another in tx D
)
PARTIAL_FILL = (
    Pattern("ABCDEFGH", "ABACADEF", "ABACADEF"),
    Pattern("ABCDEFGH", "AABCDDEF", "AABCDDEF"),
    Pattern("ABCDEFGH", "ABCDEBFB", "ABCDEBFB"),
)
_SINGLE = SINGLE.layout()
_MULTI = tuple(p.layout() for p in MULTI_FILL)
_PARTIAL = tuple(p.layout() for p in PARTIAL_FILL)


@dataclass(frozen=True, slots=True)
class Segment:
    start: int
    """First position of the run."""
    length: int
    newest: int
    """Timestamp of the first position."""
    span: int
    """Seconds covered: position o is at newest - o * span // length; 0 = one shared timestamp."""
    multi: float = 0.0
    """Share of chunks holding multi-fill transactions."""
    partial: float = 0.0
    """Share of chunks holding orders filled across several transactions."""
    kind: str = ""
    """"" or one of "sweep", "hashless", "combo", "dust" (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Fill:
    wallet: str
    position: int
    """Its place in the wallet's seeded history (-1 for fills added by advances, see `growth`)."""
    tx_hash: str
    block_number: int
    log_index: int
    timestamp: int
    order_hash: str
    market: Market
    outcome: int
    side: str
    shares: int
    """Raw units, 6 decimals."""
    price_milli: int
    counterparty: str
    role: str
    """"maker" (a resting order of this wallet was filled) or "taker" (this wallet's order took)."""
    hashless: bool = False
    """The Data API serves this fill with an empty transaction_hash (Dome still has the hash)."""

    @property
    def sequence(self) -> int:
        """Its place within its second: with the timestamp, the total sort key (newest first)."""
        return self.block_number << 16 | self.log_index

    @property
    def token_id(self) -> str:
        return self.market.token_ids[self.outcome]

    @property
    def token_label(self) -> str:
        return LABELS[self.outcome]

    @property
    def price(self) -> float:
        return self.price_milli / 1000

    @property
    def taker(self) -> str:
        """The OrderFilled event's taker: the exchange itself for the taker order's own fill."""
        return EXCHANGE if self.role == "taker" else self.counterparty


def block_at(timestamp: int) -> int:
    return BLOCK_AT_END - (TIMELINE_END - timestamp) // 2


def _digest(base: Any, *parts: int) -> bytes:
    h = base.copy()
    h.update(struct.pack(f"<{len(parts)}Q", *parts))
    return h.digest()


def _layout(base: Any, seg_no: int, seg: Segment, chunk: int) -> tuple[tuple[Any, ...], bytes]:
    slots = _digest(base, _PATTERN, seg_no, chunk)
    u = int.from_bytes(slots[48:50], "little") / 65536
    if u < seg.multi:
        return _MULTI[slots[50] % len(_MULTI)], slots
    if u < seg.multi + seg.partial:
        return _PARTIAL[slots[50] % len(_PARTIAL)], slots
    return _SINGLE, slots


def _tx_time(seg: Segment, offset: int) -> int:
    return seg.newest - offset * seg.span // seg.length


def timestamp_at(base: Any, seg_no: int, seg: Segment, offset: int) -> int:
    chunk, slot = divmod(offset, CHUNK)
    (_, _, _, first, _), _ = _layout(base, seg_no, seg, chunk)
    return _tx_time(seg, chunk * CHUNK + first[slot])


def chunk_fills(
    base: Any, wallet: str, seg_no: int, seg: Segment, chunk: int, markets: tuple[Market, ...], first_slot: int = 0
) -> list[Fill]:
    """The fills of one chunk from `first_slot` on (the last chunk of a segment may be short)."""
    if seg.kind == "sweep":
        return _sweep_fills(base, wallet, seg_no, seg, chunk, markets, first_slot)
    (tx_ids, order_ids, book_ids, first, spans), slots = _layout(base, seg_no, seg, chunk)
    n = min(CHUNK, seg.length - chunk * CHUNK)
    tx_size = [0] * CHUNK
    for s in range(n):
        tx_size[tx_ids[s]] += 1
    full_size = [tx_ids.count(t) for t in range(CHUNK)]
    txs: dict[int, bytes] = {}
    orders: dict[int, bytes] = {}
    books: dict[int, bytes] = {}
    out: list[Fill] = []
    for s in range(first_slot, n):
        t, o, b = tx_ids[s], order_ids[s], book_ids[s]
        td = txs.get(t) or txs.setdefault(t, _digest(base, _TX, seg_no, chunk, t))
        od = orders.get(o) or orders.setdefault(o, _digest(base, _ORDER, seg_no, chunk, o))
        bd = books.get(b) or books.setdefault(b, _digest(base, _BOOK, seg_no, chunk, b))
        offset = chunk * CHUNK + s
        ts = _tx_time(seg, chunk * CHUNK + first[s])
        if seg.span == 0:  # one block holds the whole run: log indexes fall along it
            log_index = 10 + 2 * (seg.length - 1 - offset)
        else:
            log_index = 5 + int.from_bytes(td[53:55], "little") % 600 + 2 * (tx_size[t] - 1 - (s - first[s]))
        if bd[6] < 200:  # most markets tick in cents, some in tenths of a cent
            base_milli = 10 * (1 + int.from_bytes(bd[7:9], "little") % 99)
        else:
            base_milli = 1 + int.from_bytes(bd[7:9], "little") % 999
        price_milli = min(999, max(1, base_milli + 10 * (od[32] % 3 - 1)))
        sd = slots[6 * s : 6 * s + 6]
        r = int.from_bytes(sd[0:4], "little") / 2**32
        shares = (1 + int(50_000 * r**3)) * 10_000
        if sd[4] < 64 and shares > 10_000:  # amounts off the cent grid, as fees and odd sizes produce
            shares -= (sd[5] * 37) % 10_000
        elif seg.kind == "dust" and sd[4] >= 192:  # under 0.01 shares: hidden by /v2/trades' default filter
            shares = 1 + (sd[5] * 37) % 9_999
        taker = full_size[t] == 1 and not spans[s] and td[52] < 90
        out.append(
            Fill(
                wallet=wallet,
                position=seg.start + offset,
                tx_hash="0x" + td[:32].hex(),
                block_number=block_at(ts),
                log_index=log_index,
                timestamp=ts,
                order_hash="0x" + od[:32].hex(),
                market=markets[int.from_bytes(bd[0:4], "little") % len(markets)],
                outcome=bd[4] & 1,
                side="BUY" if bd[5] < 150 else "SELL",
                shares=shares,
                price_milli=price_milli,
                counterparty="0x" + td[32:52].hex(),
                role="taker" if taker else "maker",
                hashless=seg.kind == "hashless",
            )
        )
    return out


def _sweep_fills(
    base: Any, wallet: str, seg_no: int, seg: Segment, chunk: int, markets: tuple[Market, ...], first_slot: int
) -> list[Fill]:
    """A "sweep" segment: one transaction, one block, identical fills but for order hash and log index."""
    td = _digest(base, _TX, seg_no, 0, 0)
    bd = _digest(base, _BOOK, seg_no, 0, 0)
    market = markets[int.from_bytes(bd[0:4], "little") % len(markets)]
    price_milli = 10 * (1 + int.from_bytes(bd[7:9], "little") % 99)
    shares = (1 + td[40] % 200) * 250_000
    out: list[Fill] = []
    for s in range(first_slot, min(CHUNK, seg.length - chunk * CHUNK)):
        offset = chunk * CHUNK + s
        od = _digest(base, _ORDER, seg_no, chunk, s)
        out.append(
            Fill(
                wallet=wallet,
                position=seg.start + offset,
                tx_hash="0x" + td[:32].hex(),
                block_number=block_at(seg.newest),
                log_index=10 + 2 * (seg.length - 1 - offset),
                timestamp=seg.newest,
                order_hash="0x" + od[:32].hex(),
                market=market,
                outcome=bd[4] & 1,
                side="BUY" if bd[5] < 150 else "SELL",
                shares=shares,
                price_milli=price_milli,
                counterparty="0x" + td[32:52].hex(),
                role="maker",
            )
        )
    return out
