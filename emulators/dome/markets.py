"""The simulated market catalogue: binary Yes/No markets grouped into events, with Dome-shaped identifiers.

Every market has a slug, a title, a condition id (0x + 64 hex) and two outcome tokens whose ids are
77-digit decimal strings (uint256 values, as on the CTF exchange), all derived from the seed and the
market's index (so the ids of market i never depend on how the titles were drawn).

Markets come in events, as on Polymarket: a game with its moneyline, spread and total markets; a crypto
price ladder ("Bitcoin above ___ on March 5, 2025?"); a speech's mention markets; a Fed decision with one
market per outcome (a negative-risk event); and single-market events ("single"), whose event slug is the
market's own slug. The markets APIs' details (times, status, volumes...) are in `catalog.py`.

`combos(seed)` adds combo (parlay) markets as the Data API shows them: a combo condition id of 62 hex
digits, `0x03`-prefixed and ending in zero padding, no slug, a title of the legs joined by " AND "
(polymarket-data-api.md §2; polyoxide OBSERVED.md "Combo trades carry 62-digit condition ids").
"""

from __future__ import annotations

import calendar
import hashlib
import random
from dataclasses import dataclass

LABELS = ("Yes", "No")
KINDS = ("game", "crypto", "mentions", "fed", "single")
SINGLE_EVERY, SINGLE_AT = 11, 4  # event groups g with g % 11 == 4 are single-market events
_MONTHS = tuple(calendar.month_name[1:])
_LEAGUES = (
    ("NBA", ("Lakers", "Celtics", "Warriors", "Knicks", "Bulls", "Heat")),
    ("EPL", ("Arsenal", "Chelsea", "Liverpool", "Tottenham")),
    ("NFL", ("Chiefs", "Eagles", "Bills", "Ravens")),
    ("MLB", ("Yankees", "Dodgers", "Mets", "Astros")),
)
_ASSETS = (
    ("Bitcoin", "btc", ("90k", "100k", "110k", "120k", "150k")),
    ("Ethereum", "eth", ("3k", "3.5k", "4k", "5k", "6k")),
    ("Solana", "sol", ("150", "200", "250", "300")),
)
_PEOPLE = ("Trump", "Powell", "Musk", "Harris", "Lagarde", "Zelensky")
_WORDS = ("tariff", "inflation", "crypto", "recession", "AI", "border", "China", "jobs")
_SPEECHES = (("the press conference", "press-conference"), ("the debate", "debate"), ("the interview", "interview"))
_FED = (("decrease-50-bps", "by 50+ bps"), ("decrease-25-bps", "by 25 bps"), ("no-change", ""), ("increase", ""))


@dataclass(frozen=True, slots=True)
class Market:
    index: int
    slug: str
    title: str
    condition_id: str
    token_ids: tuple[str, str]
    """Outcome token ids in LABELS order (Yes, No)."""
    combo: bool = False
    """A combo (parlay) of several markets: empty slug, outcome and event slug on the Data API."""
    event_slug: str = ""
    """The Polymarket event it belongs to ("" for combos); a "single" market's is its own slug."""
    event_title: str = ""
    kind: str = ""
    """One of KINDS ("" for combos)."""
    date: int = 0
    """The day the market is about, as epoch seconds of that day's 00:00 UTC."""
    topic: str = ""
    """The league, asset, speaker or "Fed Rates": the second tag of its event."""


def _hex(seed: int, *parts: object, size: int = 32) -> str:
    return hashlib.blake2b("|".join(map(str, (seed, *parts))).encode(), digest_size=size).hexdigest()


def token_id(seed: int, market: int, outcome: int) -> str:
    """A uint256 in decimal with exactly 77 digits (the common width of Polymarket token ids)."""
    value = int(_hex(seed, "token", market, outcome), 16)
    return str(10**76 + value % (9 * 10**76))


Draft = tuple[str, str]  # (title, slug) of one market
Group = tuple[str, str, str, list[Draft]]  # event slug, event title, topic, markets


def _game(rng: random.Random, day: str, text: str) -> Group:
    league, teams = rng.choice(_LEAGUES)
    team, other = rng.sample(teams, 2)
    slug = f"{team}-vs-{other}-{day}".lower()
    drafts = [(f"Will the {team} beat the {other} on {text}?", slug)]
    if rng.random() < 0.6:
        line = rng.randint(2, 12)
        title = f"Will the {team} win by more than {line}.5 against the {other} on {text}?"
        drafts.append((title, f"{slug}-spread-{line}pt5"))
    if rng.random() < 0.5:
        total = rng.randint(180, 240)
        drafts.append((f"{team} vs. {other} on {text}: over {total}.5 points?", f"{slug}-total-{total}pt5"))
    return slug, f"{team} vs. {other}", league, drafts


def _crypto(rng: random.Random, day: str, text: str) -> Group:
    name, ticker, levels = rng.choice(_ASSETS)
    chosen = sorted(rng.sample(levels, rng.randint(2, 4)), key=levels.index)
    drafts = [(f"Will {name} be above ${level} on {text}?", f"{ticker}-above-{level}-on-{day}") for level in chosen]
    return f"{ticker}-above-on-{day}", f"{name} above ___ on {text}?", name, drafts


def _mentions(rng: random.Random, day: str, text: str) -> Group:
    person, (speech, speech_slug) = rng.choice(_PEOPLE), rng.choice(_SPEECHES)
    words = rng.sample(_WORDS, rng.randint(2, 4))
    drafts = [
        (f'Will {person} say "{w}" during {speech} on {text}?', f"{person}-says-{w}-{speech_slug}-{day}".lower())
        for w in words
    ]
    event = f"what-will-{person}-say-during-{speech_slug}-{day}".lower()
    return event, f"What will {person} say during {speech}?", person, drafts


def _fed(month: int, year: int) -> Group:
    when = f"{_MONTHS[month]} {year}"
    slug = f"fed-decision-in-{_MONTHS[month].lower()}-{year}"
    drafts = []
    for part, size in _FED:
        if part == "no-change":
            title = f"Will the Fed hold rates after the {when} meeting?"
        else:
            move = "decrease" if part.startswith("decrease") else "increase"
            title = f"Will the Fed {move} rates {size or 'by 25+ bps'} after the {when} meeting?"
        drafts.append((title, f"{slug}-{part}"))
    return slug, f"Fed decision in {when}?", "Fed Rates", drafts


def _single(rng: random.Random, day: str, text: str) -> Group:
    name, ticker, levels = rng.choice(_ASSETS)
    level = rng.choice(levels)
    title, slug = f"Will {name} hit ${level} by {text}?", f"will-{ticker}-hit-{level}-by-{day}"
    return slug, title, name, [(title, slug)]


def _unique(slug: str, seen: set[str]) -> str:
    base, n = slug, 2
    while slug in seen:
        slug, n = f"{base}-{n}", n + 1
    seen.add(slug)
    return slug


def catalogue(seed: int, count: int = 120) -> tuple[Market, ...]:
    """`count` markets with unique slugs, in events of one to four; the same seed gives the same catalogue."""
    rng = random.Random(f"dome-sim|{seed}|markets")
    markets: list[Market] = []
    seen: set[str] = set()
    events: set[str] = set()
    group = 0
    while len(markets) < count:
        month, day, year = rng.randrange(12), rng.randint(1, 28), rng.choice((2023, 2024, 2025, 2025, 2026, 2026))
        day_slug, text = f"{_MONTHS[month].lower()}-{day}-{year}", f"{_MONTHS[month]} {day}, {year}"
        kind = "single" if group % SINGLE_EVERY == SINGLE_AT else rng.choices(KINDS[:4], (3, 3, 3, 1))[0]
        if kind == "fed":
            event, event_title, topic, drafts = _fed(month, year)
        else:
            make = {"game": _game, "crypto": _crypto, "mentions": _mentions, "single": _single}[kind]
            event, event_title, topic, drafts = make(rng, day_slug, text)
        event = _unique(event, events)
        date = calendar.timegm((year, month + 1, day, 0, 0, 0))
        for title, slug in drafts[: count - len(markets)]:
            index = len(markets)
            slug = event if kind == "single" else _unique(slug.replace(" ", "-"), seen)
            seen.add(slug)
            condition = "0x" + _hex(seed, "condition", index)
            tokens = (token_id(seed, index, 0), token_id(seed, index, 1))
            markets.append(Market(index, slug, title, condition, tokens, False, event, event_title, kind, date, topic))
        group += 1
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
