"""The simulated market catalogue: binary Yes/No markets with Dome-shaped identifiers.

Every market has a slug, a title, a condition id (0x + 64 hex) and two outcome tokens whose ids are
77-digit decimal strings (uint256 values, as on the CTF exchange), all derived from the seed.

`combos(seed)` adds combo (parlay) markets as the Data API shows them: a combo condition id of 62 hex
digits, `0x03`-prefixed and ending in zero padding, no slug, a title of the legs joined by " AND "
(polymarket-data-api.md §2; polyoxide OBSERVED.md "Combo trades carry 62-digit condition ids").
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

LABELS = ("Yes", "No")
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_TEAMS = (
    "Lakers",
    "Celtics",
    "Warriors",
    "Knicks",
    "Arsenal",
    "Real Madrid",
    "Chiefs",
    "Eagles",
    "Yankees",
    "Dodgers",
    "Barcelona",
    "Bayern Munich",
)
_ASSETS = (
    ("Bitcoin", "btc", ("90k", "100k", "120k", "150k")),
    ("Ethereum", "eth", ("3k", "4k", "5k", "6k")),
    ("Solana", "sol", ("150", "200", "250", "300")),
)
_PEOPLE = ("Trump", "Powell", "Musk", "Harris", "Lagarde", "Zelensky")
_WORDS = ("tariff", "inflation", "crypto", "recession", "AI", "border")
_EVENTS = ("the press conference", "the debate", "the earnings call", "the interview")


@dataclass(frozen=True, slots=True)
class Market:
    index: int
    slug: str
    title: str
    condition_id: str
    token_ids: tuple[str, str]
    """Outcome token ids in LABELS order (Yes, No)."""
    combo: bool = False
    """A combo (parlay) of several markets: empty slug and outcome on the Data API."""

    @property
    def event_slug(self) -> str:
        """The parent event's slug: the market's subject and date (markets of one event share it)."""
        if self.combo:
            return ""
        parts = self.slug.split("-")
        return "-".join([parts[0], *parts[-3:]])


def _hex(seed: int, *parts: object, size: int = 32) -> str:
    return hashlib.blake2b("|".join(map(str, (seed, *parts))).encode(), digest_size=size).hexdigest()


def token_id(seed: int, market: int, outcome: int) -> str:
    """A uint256 in decimal with exactly 77 digits (the common width of Polymarket token ids)."""
    value = int(_hex(seed, "token", market, outcome), 16)
    return str(10**76 + value % (9 * 10**76))


def _title(rng: random.Random) -> tuple[str, str]:
    month = rng.randrange(12)
    day = rng.randint(1, 28)
    year = rng.choice((2023, 2024, 2025, 2026))
    date_slug = f"{_MONTHS[month]}-{day}-{year}"
    date_text = f"{_MONTHS[month].capitalize()} {day}, {year}"
    kind = rng.randrange(3)
    if kind == 0:
        team, other = rng.sample(_TEAMS, 2)
        return f"Will the {team} beat the {other} on {date_text}?", f"{team}-vs-{other}-{date_slug}"
    if kind == 1:
        name, ticker, levels = rng.choice(_ASSETS)
        level = rng.choice(levels)
        return f"Will {name} be above ${level} on {date_text}?", f"{ticker}-above-{level}-on-{date_slug}"
    person, word, event = rng.choice(_PEOPLE), rng.choice(_WORDS), rng.choice(_EVENTS)
    return f'Will {person} say "{word}" during {event} on {date_text}?', f"{person}-says-{word}-{date_slug}"


def catalogue(seed: int, count: int = 120) -> tuple[Market, ...]:
    """`count` markets with unique slugs; the same seed always gives the same catalogue."""
    rng = random.Random(f"dome-sim|{seed}|markets")
    markets: list[Market] = []
    seen: set[str] = set()
    for index in range(count):
        title, slug = _title(rng)
        slug = slug.lower().replace(" ", "-")
        base, n = slug, 2
        while slug in seen:
            slug, n = f"{base}-{n}", n + 1
        seen.add(slug)
        markets.append(
            Market(
                index,
                slug,
                title,
                "0x" + _hex(seed, "condition", index),
                (token_id(seed, index, 0), token_id(seed, index, 1)),
            )
        )
    return tuple(markets)


def combos(seed: int, legs_from: tuple[Market, ...], count: int = 12) -> tuple[Market, ...]:
    """`count` combo markets over the legs' titles; indexes continue after the legs'."""
    rng = random.Random(f"dome-sim|{seed}|combos")
    out: list[Market] = []
    for k in range(count):
        legs = rng.sample(legs_from, rng.randint(2, 4))
        index = len(legs_from) + k
        condition = "0x03" + _hex(seed, "combo", k)[:50] + "0" * 10  # 62 hex digits
        out.append(
            Market(
                index,
                "",
                " AND ".join(leg.title for leg in legs),
                condition,
                (token_id(seed, index, 0), token_id(seed, index, 1)),
                combo=True,
            )
        )
    return tuple(out)
