"""When is a wallet complete? When every second of its walk is covered by a complete chain of parts
(design rule 3, docs/design.md "Windows").

A walk asks the API for the wallet's trades between `since` and `until` (whole seconds, inclusive;
None: open). It starts as one window, the whole walk, paged as a chain of parts from cursor None to a
final part. A big window may end its chain early with a *split*: its final part covers
(split_at, window end] and names child windows that cover [window start, split_at], each a chain of
its own, which may split again. A chain is complete when its loaded parts link from cursor None to a
final part; the wallet is complete when the complete chains' covered stretches leave no second of the
walk out.

Parts may arrive out of order, more than once, or from two attempts that stopped at different pages:
each chain is a graph walk over what is loaded, and coverage is a sweep over what complete chains
cover, so none of that can make a gap look complete.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the warehouse process reads these types' objects without pydantic's 17 MB
    from shared.core.messages import FileReady, Window


OPEN_LOW, OPEN_HIGH = -1, 2**62  # None bounds in the coverage sweep


@dataclass(frozen=True)
class Segment:
    """One loaded part: the stretch of a chain's walk from cursor_in to cursor_after. The chain is the
    window (window_lo, window_hi) of the walk (span_since, span_until); NULLs of an older warehouse read
    as the whole, unbounded walk."""

    wallet: str
    run_id: str
    part: int
    uri: str
    rows: int
    final: bool
    cursor_in: str | None
    cursor_after: str | None
    span_since: int | None = None
    span_until: int | None = None
    window_lo: int | None = None
    window_hi: int | None = None
    split_at: int | None = None
    split_children: str | None = None  # JSON [[lo, hi], ...]

    @classmethod
    def of(cls, f: FileReady) -> Segment:
        lo, hi = f.bounds
        return cls(
            f.wallet,
            f.run_id,
            f.part,
            f.uri,
            f.rows,
            f.final,
            f.cursor_in,
            f.cursor_after,
            f.since,
            f.until,
            lo,
            hi,
            f.split_at,
            json.dumps([list(c) for c in f.children]) if f.children else None,
        )

    @property
    def window(self) -> Window:
        return (self.window_lo, self.window_hi)

    @property
    def children(self) -> list[Window]:
        return [(lo, hi) for lo, hi in json.loads(self.split_children)] if self.split_children else []


@dataclass(frozen=True)
class ChainState:
    complete: bool
    resume_part: int  # the part number to fetch next
    resume_cursor: str | None  # where to fetch it from (None: the start)
    parts_loaded: int
    final_part: int | None
    final: Segment | None = None  # the final part the chain reached (its split, if any)


def chain_state(segments: Iterable[Segment]) -> ChainState:
    """The state of ONE chain (one window) from its loaded parts."""
    by_cursor: dict[str | None, list[Segment]] = defaultdict(list)
    parts = set()
    for seg in segments:
        by_cursor[seg.cursor_in].append(seg)
        parts.add(seg.part)
    reached: set[str | None] = {None}
    frontier: list[str | None] = [None]
    final: Segment | None = None
    furthest: Segment | None = None
    while frontier:
        cursor = frontier.pop()
        for seg in by_cursor.get(cursor, ()):
            if seg.final:
                final = seg if final is None or (seg.part, seg.uri) < (final.part, final.uri) else final
                continue
            if furthest is None or seg.part > furthest.part:
                furthest = seg
            if seg.cursor_after not in reached:
                reached.add(seg.cursor_after)
                frontier.append(seg.cursor_after)
    if final is not None:
        return ChainState(True, final.part + 1, None, len(parts), final.part, final)
    if furthest is None:
        return ChainState(False, 0, None, len(parts), None)
    return ChainState(False, furthest.part + 1, furthest.cursor_after, len(parts), None)


@dataclass(frozen=True)
class Resume:
    """A chain to (re)start: its window, the part number and the cursor to fetch from."""

    window: Window
    part: int
    cursor: str | None


@dataclass(frozen=True)
class WalkState:
    complete: bool
    since: int | None
    until: int | None
    pending: list[Resume]  # the chains not complete, each from where it stands
    parts_loaded: int
    final_part: int | None  # the first window's final part (its chain's length - 1) once complete
    windows: int  # chains known: the first window and every child a split named


def covered(state: ChainState, window: Window) -> Window | None:
    """What a chain covers: nothing until complete; its window, or the part above its split."""
    if not state.complete or state.final is None:
        return None
    lo, hi = window
    if state.final.split_at is not None:
        return (state.final.split_at + 1, hi)
    return (lo, hi)


def is_covered(stretches: Iterable[Window], since: int | None, until: int | None) -> bool:
    """True when the stretches (inclusive, None open) leave no second of [since, until] out."""
    low = OPEN_LOW if since is None else since
    high = OPEN_HIGH if until is None else until
    reach = low  # every second below `reach` is covered
    for lo, hi in sorted(((OPEN_LOW if a is None else a), (OPEN_HIGH if b is None else b)) for a, b in stretches):
        if lo > reach:
            break
        reach = max(reach, hi + 1)
        if reach > high:
            return True
    return reach > high


def walk_state(segments: Iterable[Segment]) -> WalkState:
    """The state of one wallet's walk in one run, from the parts loaded for it."""
    by_window: dict[Window, list[Segment]] = defaultdict(list)
    for seg in segments:
        by_window[seg.window].append(seg)
    since = until = None
    if by_window:
        first = next(iter(by_window.values()))[0]
        since, until = first.span_since, first.span_until
    root: Window = (since, until)
    # The chains the walk consists of: the first window, and every child window a split has named.
    known: dict[Window, None] = {root: None}
    states: dict[Window, ChainState] = {}
    queue = [root]
    while queue:
        window = queue.pop()
        state = states[window] = chain_state(by_window.get(window, ()))
        if state.final is not None:
            for child in state.final.children:
                if child not in known:
                    known[child] = None
                    queue.append(child)
    stretches = [c for w, s in states.items() if (c := covered(s, w)) is not None]
    complete = is_covered(stretches, since, until)
    pending = [] if complete else [
        Resume(w, s.resume_part, s.resume_cursor) for w, s in states.items() if not s.complete
    ]  # fmt: skip
    parts = sum(s.parts_loaded for s in states.values())
    return WalkState(complete, since, until, pending, parts, states[root].final_part if complete else None, len(known))
