"""Check `markets` and `events` against the simulator's ground truth (`Universe.export_markets_truth`,
`export_events_truth`), without trusting the product's mapping: every served market or event must be
there once, its `raw` equal to what the API serves now, and its columns equal to what this oracle
derives from the API object on its own; every id the API does not know must be recorded as a miss;
the poison id must be dead-lettered and absent. Warehouse-agnostic: it takes the tables' rows.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class KindCheck:
    expected: int = 0
    loaded: int = 0
    missing: list[str] = field(default_factory=list)  # served by the API, no row
    extra: list[str] = field(default_factory=list)  # a row the API does not serve
    duplicates: int = 0
    wrong: list[tuple[str, str]] = field(default_factory=list)  # (key, column)
    not_found_expected: int = 0
    not_found_unrecorded: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not (self.missing or self.extra or self.duplicates or self.wrong or self.not_found_unrecorded)


@dataclass
class ContextCheck:
    markets: KindCheck
    events: KindCheck
    failing: list[str]  # the ids whose fetch always fails (the poison market)
    failing_dead_lettered: bool

    @property
    def exact(self) -> bool:
        return self.markets.exact and self.events.exact and self.failing_dead_lettered


def _dome_winner(m: dict[str, Any]) -> tuple[Any, Any]:
    w = m.get("winning_side")
    if isinstance(w, dict):
        return w.get("label"), w.get("id")
    if isinstance(w, str):
        token = next((s["id"] for s in (m["side_a"], m["side_b"]) if s["label"] == w), None)
        return w, token
    return None, None


def expected_market(m: dict[str, Any], source: str) -> dict[str, Any]:
    if source == "dome":
        label, token = _dome_winner(m)
        return {
            "condition_id": m["condition_id"],
            "market_slug": m["market_slug"],
            "event_slug": m["event_slug"],
            "title": m["title"],
            "status": m["status"],
            "side_a_token_id": m["side_a"]["id"],
            "side_b_label": m["side_b"]["label"],
            "winning_side_label": label,
            "winning_token_id": token,
            "volume_total": m["volume_total"],
        }
    outcomes, tokens, prices = (json.loads(m[k]) for k in ("outcomes", "clobTokenIds", "outcomePrices"))
    won = prices.index("1") if m["closed"] and "1" in prices else None
    return {
        "condition_id": m["conditionId"],
        "market_slug": m["slug"],
        "event_slug": m["events"][0]["slug"] if m.get("events") else None,
        "title": m["question"],
        "status": "closed" if m["closed"] else "open",
        "side_a_token_id": tokens[0],
        "side_b_label": outcomes[1],
        "winning_side_label": None if won is None else outcomes[won],
        "winning_token_id": None if won is None else tokens[won],
        "volume_total": m["volumeNum"],
    }


def expected_event(e: dict[str, Any], source: str) -> dict[str, Any]:
    if source == "dome":
        return {
            "event_slug": e["event_slug"],
            "title": e["title"],
            "status": e["status"],
            "market_count": e["market_count"],
        }
    return {
        "event_slug": e["slug"],
        "title": e["title"],
        "status": "closed" if e["closed"] else "open",
        "market_count": len(e["markets"]),
    }


def _raw_of_truth(obj: dict[str, Any], kind: str, source: str) -> dict[str, Any]:
    """Dome's truth event embeds its markets (include_markets=true); the product asks without them."""
    if kind == "events" and source == "dome":
        return {k: v for k, v in obj.items() if k != "markets"}
    return obj


def _check(
    kind: str, rows: list[dict[str, Any]], truth: list[dict[str, Any]], misses: set[str], source: str
) -> KindCheck:
    key = "condition_id" if kind == "markets" else "event_slug"
    expect = expected_market if kind == "markets" else expected_event
    out = KindCheck(loaded=len(rows))
    counts = Counter(r[key] for r in rows)
    out.duplicates = sum(n - 1 for n in counts.values() if n > 1)
    have = {r[key]: r for r in rows}
    served: dict[str, dict[str, Any]] = {}
    for line in truth:
        if line.get("not_found"):
            out.not_found_expected += 1
            if line["condition_id"] not in misses:
                out.not_found_unrecorded.append(line["condition_id"])
        elif not line.get("fails"):
            wanted = expect(line, source)
            served[wanted[key]] = line
    out.expected = len(served)
    out.missing = sorted(set(served) - set(have))
    out.extra = sorted(set(have) - set(served))
    for k in sorted(set(served) & set(have)):
        row, obj = have[k], served[k]
        for column, value in expect(obj, source).items():
            if row.get(column) != value:
                out.wrong.append((k, column))
        if json.loads(row["raw"]) != _raw_of_truth(obj, kind, source):
            out.wrong.append((k, "raw"))
    return out


def verify_context(
    *,
    markets: list[dict[str, Any]],
    events: list[dict[str, Any]],
    misses: list[tuple[str, str]],
    letters: list[Any],
    market_truth: list[dict[str, Any]],
    event_truth: list[dict[str, Any]],
    source: str,
) -> ContextCheck:
    """`misses`: (kind, key) of lookup_misses; `letters`: the pending dead letters (with `.data`)."""
    by_kind: dict[str, set[str]] = {"markets": set(), "events": set()}
    for kind, key in misses:
        by_kind[kind].add(key)
    failing = [line["condition_id"] for line in market_truth if line.get("fails")]
    lettered = " ".join(x.data for x in letters)
    return ContextCheck(
        markets=_check("markets", markets, market_truth, by_kind["markets"], source),
        events=_check("events", events, event_truth, by_kind["events"], source),
        failing=failing,
        failing_dead_lettered=all(f in lettered for f in failing)
        and not any(r["condition_id"] in failing for r in markets),
    )


def read_truth(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
