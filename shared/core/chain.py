"""When is a wallet complete? When its loaded parts form an unbroken chain of cursors from the start
of the walk (cursor None) to a final part (design rule 3, docs/design.md).

Parts may arrive out of order, more than once, or from two attempts that stopped at different pages:
the chain is a graph walk over what is loaded, so none of that can make a gap look complete.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from shared.core.messages import FileReady


@dataclass(frozen=True)
class Segment:
    """One loaded part: the stretch of a wallet's walk from cursor_in to cursor_after."""

    wallet: str
    run_id: str
    part: int
    uri: str
    rows: int
    final: bool
    cursor_in: str | None
    cursor_after: str | None

    @classmethod
    def of(cls, f: FileReady) -> Segment:
        return cls(f.wallet, f.run_id, f.part, f.uri, f.rows, f.final, f.cursor_in, f.cursor_after)


@dataclass(frozen=True)
class ChainState:
    complete: bool
    resume_part: int  # the part number to fetch next
    resume_cursor: str | None  # where to fetch it from (None: the start)
    parts_loaded: int
    final_part: int | None


def chain_state(segments: Iterable[Segment]) -> ChainState:
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
                final = seg if final is None or seg.part < final.part else final
                continue
            if furthest is None or seg.part > furthest.part:
                furthest = seg
            if seg.cursor_after not in reached:
                reached.add(seg.cursor_after)
                frontier.append(seg.cursor_after)
    if final is not None:
        return ChainState(True, final.part + 1, None, len(parts), final.part)
    if furthest is None:
        return ChainState(False, 0, None, len(parts), None)
    return ChainState(False, furthest.part + 1, furthest.cursor_after, len(parts), None)
