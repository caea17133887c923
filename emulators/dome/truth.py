"""Ground truth as JSONL: every row, market and event exactly as the APIs serve them now, to check a run
line for line (`Universe.export_*`, and the `/_sim/*-truth` endpoints, which stream the same lines).

Markets: one line per condition id the source's wallets trade (default `wallets(source)`; or the ids
given), in catalogue order, then the combo ids: the market object in the source's shape (Dome's
/markets object for "dome", Gamma's /markets/keyset object for "polymarket"), or
`{"condition_id": X, "not_found": true}` for an id the API does not know (the unknown market, combos,
anything else), or `{"condition_id": X, "fails": true}` for the poison one.

Events: one line per event those served markets name (Dome: their non-null `event_slug`, shaped as
/events?include_markets=true serves it; Polymarket: Gamma's /events object, which embeds its markets),
in the order the markets first name them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulators.dome.market_views import dome_event, dome_market, gamma_event, gamma_market

if TYPE_CHECKING:
    from emulators.dome.universe import Universe

SOURCES = ("dome", "polymarket")


def _check(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")


def traded_ids(u: Universe, source: str, condition_ids: Iterable[str] | None = None) -> list[str]:
    """The condition ids to export, catalogue first, then combos, then any others (in the order given)."""
    if condition_ids is None:
        wanted: set[str] = set().union(*(u.traded(w) for w in u.wallets(source)))
        given: list[str] = []
    else:
        given = list(dict.fromkeys(c.lower() for c in condition_ids))
        wanted = set(given)
    ordered = [m.condition_id for m in (*u.markets, *u.combos) if m.condition_id in wanted]
    placed = set(ordered)
    return ordered + [c for c in given if c not in placed]


def market_lines(u: Universe, source: str = "dome", condition_ids: Iterable[str] | None = None) -> Iterator[Any]:
    _check(source)
    cat = u.catalog
    poison = cat.markets[cat.poison].condition_id
    for condition_id in traded_ids(u, source, condition_ids):
        market = cat.by_condition.get(condition_id)
        if condition_id == poison:
            yield {"condition_id": condition_id, "fails": True}
        elif market is None or not cat.served(market):
            yield {"condition_id": condition_id, "not_found": True}
        else:
            yield dome_market(cat, market) if source == "dome" else gamma_market(cat, market)


def event_lines(u: Universe, source: str = "dome") -> Iterator[Any]:
    _check(source)
    cat = u.catalog
    slugs: dict[str, None] = {}
    for condition_id in traded_ids(u, source):
        market = cat.by_condition.get(condition_id)
        if market is None or not cat.served(market):
            continue
        slug = cat.dome_event(market) if source == "dome" else market.event_slug
        if slug:
            slugs.setdefault(slug)
    for slug in slugs:
        event = cat.events[slug]
        yield dome_event(cat, event, include_markets=True) if source == "dome" else gamma_event(cat, event)


def _kind(line: dict[str, Any]) -> str:
    return "fails" if line.get("fails") else "not_found" if line.get("not_found") else "served"


def write(path: str | Path, lines: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Write the lines; returns how many of each kind ("served", "not_found", "fails")."""
    counts: Counter[str] = Counter()
    with Path(path).open("w", encoding="utf-8") as out:
        for line in lines:
            counts[_kind(line)] += 1
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    return dict(counts)


def ndjson(lines: Iterable[dict[str, Any]], batch: int = 1000) -> Iterator[bytes]:
    """The lines as NDJSON chunks of `batch` lines (for a streaming response)."""
    chunk: list[str] = []
    for line in lines:
        chunk.append(json.dumps(line, separators=(",", ":")))
        if len(chunk) == batch:
            yield ("\n".join(chunk) + "\n").encode()
            chunk.clear()
    if chunk:
        yield ("\n".join(chunk) + "\n").encode()


def wallet_rows(u: Universe, wallet: str, source: str) -> Iterator[dict[str, Any]]:
    rows = u.trade_rows(wallet) if source == "polymarket" else u.rows(wallet)
    return ({"wallet": wallet, **row} for row in rows)


def export_rows(u: Universe, path: str | Path, source: str, wallets: list[str] | None) -> dict[str, int]:
    """Every row of every wallet (default `wallets(source)`), `{"wallet": w, **row}`; rows per wallet."""
    counts: dict[str, int] = {}
    with Path(path).open("wb") as out:
        for wallet in u.wallets(source) if wallets is None else [w.lower() for w in wallets]:
            counts[wallet] = 0
            for chunk in ndjson(wallet_rows(u, wallet, source), batch=5000):
                out.write(chunk)
                counts[wallet] += chunk.count(b"\n")
    return counts
