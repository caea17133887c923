"""What the markets APIs know about the catalogue: each market's times, status, volumes, texts and
resolution, its event's, and the edge cases, all derived from the seed; resolutions added by advances
are the only state.

A market's status at the universe's start (`START`, the first virtual "now"): closed if its end time is
at least two days before START (resolved, with a completed time before START), open otherwise. Advance
k resolves `resolution_order[k-1]` at the advance's new now. Volumes are as of START and do not move.

Edge cases (`edges`, condition ids by name; every one is traded by the default universe's wallets):

    closed                     closed at START: Gamma hides them unless `closed=true`
    open                       open at START
    winning_side_string        closed, even index: Dome's `winning_side` is the label ("Yes"), as the spec types it
    winning_side_object        closed, odd index: Dome's `winning_side` is `{id, label}`, as the SDK parses it
    event_slug_null            single-market events: Dome serves `event_slug` null and no event for them;
                               Polymarket (Data API rows, Gamma) names their event, whose slug is the market's
    description_null           Dome's `description` null (Gamma's "")
    close_time_null            closed markets whose Dome `close_time` is null
    unknown                    traded, but neither markets API returns it (its event lists it nowhere)
    poison                     any Dome /markets or Gamma /markets/keyset request naming it answers 500;
                               listings and events skip it
    combo                      the combo (62-hex) condition ids: neither Dome (not indexed) nor Gamma knows them
    resolves_on_first_advance  open at START, resolved by the first advance
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from emulators.dome.fills import TIMELINE_END
from emulators.dome.markets import Market

START = TIMELINE_END
DAY, HOUR = 86_400, 3_600
_BASE_TAG = {"game": "Sports", "crypto": "Crypto", "mentions": "Mentions", "fed": "Economy", "single": "Crypto"}
SOURCES = {
    "game": "https://www.espn.com",
    "crypto": "https://www.binance.com/en/trade/BTC_USDT",
    "mentions": "",
    "fed": "https://www.federalreserve.gov/monetarypolicy/fomccalendars.htm",
    "single": "https://www.coingecko.com",
}
IMAGES = "https://polymarket-upload.s3.us-east-2.amazonaws.com"


@dataclass(frozen=True, slots=True)
class Details:
    """The static facts of one market."""

    start_time: int
    end_time: int
    game_start: int | None
    tags: tuple[str, ...]
    volume_total: float
    volume_1_year: float
    volume_1_month: float
    volume_1_week: float
    description: str | None
    negative_risk_id: str | None
    gamma_id: str
    question_id: str
    price_milli: int
    """The Yes price while open (the No price is 1000 minus it)."""
    winner: int
    """The outcome (index into LABELS) that wins when the market resolves."""
    completed_time: int | None
    """When it resolved, if it had by START."""


@dataclass(frozen=True, slots=True)
class Event:
    slug: str
    title: str
    subtitle: str | None
    kind: str
    members: tuple[int, ...]
    """Indexes of its markets, the ones no API serves (unknown, poison) included."""
    gamma_id: str


def _digest(seed: int, *parts: object) -> bytes:
    return hashlib.blake2b("|".join(map(str, ("dome-sim", seed, *parts))).encode(), digest_size=32).digest()


def _volumes(total: float, start: int, end: int) -> tuple[float, float, float]:
    """The 1-year, 1-month and 1-week volumes as of START: the share of the market's life in each window."""
    life_end = min(end, START)
    life = max(1, life_end - start)
    out = []
    for window in (365 * DAY, 30 * DAY, 7 * DAY):
        overlap = max(0, life_end - max(start, START - window))
        out.append(round(total * overlap / life, 2))
    return out[0], out[1], out[2]


def details(seed: int, m: Market) -> Details:
    d = _digest(seed, "market-details", m.index)
    start = m.date - (3 + d[0] % 40) * DAY - d[1] % 24 * HOUR
    game_start = m.date + (17 + d[2] % 5) * HOUR if m.kind == "game" else None
    end = m.date + 23 * HOUR + 59 * 60
    total = round(10 ** (2.5 + 4.5 * int.from_bytes(d[3:5], "little") / 65536), 2)
    yearly, monthly, weekly = _volumes(total, start, end)
    closed = end + 2 * DAY <= START
    description = None
    if m.index % 10 != 3:
        description = f'This market will resolve to "Yes" if the answer to "{m.title}" is yes. Otherwise, "No".'
    return Details(
        start_time=start,
        end_time=end,
        game_start=game_start,
        tags=(_BASE_TAG[m.kind], m.topic),
        volume_total=total,
        volume_1_year=yearly,
        volume_1_month=monthly,
        volume_1_week=weekly,
        description=description,
        negative_risk_id="0x" + _digest(seed, "neg-risk", m.event_slug).hex() if m.kind == "fed" else None,
        gamma_id=str(510_000 + 13 * m.index),
        question_id="0x" + _digest(seed, "question", m.index).hex(),
        price_milli=10 + 10 * (d[5] % 98),
        winner=d[6] & 1,
        completed_time=end + (1 + d[7] % 30) * HOUR if closed else None,
    )


class Catalog:
    """The catalogue as the markets APIs see it now."""

    def __init__(self, seed: int, markets: tuple[Market, ...], combos: tuple[Market, ...]) -> None:
        self.seed, self.markets = seed, markets
        self.details = tuple(details(seed, m) for m in markets)
        self.by_condition = {m.condition_id: m for m in markets}
        self.by_slug = {m.slug: m for m in markets}
        members: dict[str, list[int]] = {}
        for m in markets:
            members.setdefault(m.event_slug, []).append(m.index)
        self.events: dict[str, Event] = {}
        for n, (slug, indexes) in enumerate(members.items()):
            first = markets[indexes[0]]
            subtitle = first.topic if first.kind == "game" else None
            gamma_id = str(20_000 + 7 * n)
            self.events[slug] = Event(slug, first.event_title, subtitle, first.kind, tuple(indexes), gamma_id)
        rng = random.Random(f"dome-sim|{seed}|market-edges")
        grouped = [m.index for m in markets if len(self.events[m.event_slug].members) >= 2]
        self.unknown = rng.choice(grouped)  # the two come from different events: each keeps a served market
        self.poison = rng.choice([i for i in grouped if markets[i].event_slug != markets[self.unknown].event_slug])
        self.resolved: dict[int, int] = {}
        """Index -> completed time, for the markets advances resolved."""
        opened = [m.index for m in markets if self.served(m) and self.details[m.index].completed_time is None]
        self.resolution_order = tuple(rng.sample(opened, len(opened)))
        self.edges = self._edges(combos)

    def _edges(self, combos: tuple[Market, ...]) -> dict[str, tuple[str, ...]]:
        served = [m for m in self.markets if self.served(m)]
        closed = [m for m in served if self.closed(m.index)]

        def ids(ms: list[Market]) -> tuple[str, ...]:
            return tuple(m.condition_id for m in ms)

        return {
            "closed": ids(closed),
            "open": ids([m for m in served if not self.closed(m.index)]),
            "winning_side_string": ids([m for m in closed if m.index % 2 == 0]),
            "winning_side_object": ids([m for m in closed if m.index % 2 == 1]),
            "event_slug_null": ids([m for m in served if m.kind == "single"]),
            "description_null": ids([m for m in served if self.details[m.index].description is None]),
            "close_time_null": ids([m for m in closed if self.close_time(m.index) is None]),
            "unknown": (self.markets[self.unknown].condition_id,),
            "poison": (self.markets[self.poison].condition_id,),
            "combo": ids(list(combos)),
            "resolves_on_first_advance": (self.markets[self.resolution_order[0]].condition_id,),
        }

    def served(self, m: Market) -> bool:
        """Whether the markets APIs return this market (not a combo, not the unknown or poison one)."""
        return not m.combo and m.index not in (self.unknown, self.poison) and self.by_condition.get(m.condition_id) is m

    def completed_time(self, index: int) -> int | None:
        return self.resolved.get(index, self.details[index].completed_time)

    def closed(self, index: int) -> bool:
        return self.completed_time(index) is not None

    def close_time(self, index: int) -> int | None:
        """When trading stopped: the end time, the resolution for early ones; null on some closed markets."""
        done = self.completed_time(index)
        if done is None or index % 6 == 1:
            return None
        return min(done, self.details[index].end_time)

    def winner(self, index: int) -> int | None:
        return self.details[index].winner if self.closed(index) else None

    def dome_event(self, m: Market) -> str | None:
        """The event slug Dome serves: null for single-market events."""
        return None if m.kind == "single" else m.event_slug

    def event_markets(self, event: Event) -> list[Market]:
        """The event's markets that the APIs serve (catalogue order)."""
        return [self.markets[i] for i in event.members if self.served(self.markets[i])]

    def event_closed(self, event: Event) -> bool:
        return all(self.closed(m.index) for m in self.event_markets(event))

    def resolve(self, k: int, now: int) -> Market | None:
        """Advance k's resolution (k from 1): the next market of `resolution_order`, completed at `now`."""
        if k > len(self.resolution_order):
            return None
        index = self.resolution_order[k - 1]
        self.resolved[index] = now
        return self.markets[index]
