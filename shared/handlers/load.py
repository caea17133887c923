"""load(batch): merge a batch of part files and their checkpoints in one transaction (design rules 1–3, 5, 9).

The caller (the loader service or the embedded runner) hands over one batch at a time. A file the
warehouse cannot read is isolated by splitting the batch, so one bad file fails alone and the rest
commit (rule 12); a systemic failure (warehouse down) fails the whole batch for a retry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shared.core.chain import Segment, chain_state
from shared.core.errors import PermanentError, PipelineError
from shared.core.messages import FileReady
from shared.ports.clock import Clock
from shared.ports.warehouse import CheckpointUpdate, Warehouse

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    committed: list[FileReady] = field(default_factory=list)
    failed: dict[str, PipelineError] = field(default_factory=dict)  # uri -> why
    completed_wallets: list[str] = field(default_factory=list)


def load(batch: list[FileReady], *, warehouse: Warehouse, clock: Clock) -> LoadResult:
    unique: dict[str, FileReady] = {}
    for item in batch:
        unique.setdefault(item.uri, item)
    result = LoadResult()
    _load_or_split(list(unique.values()), warehouse, clock, result)
    return result


def _load_or_split(files: list[FileReady], warehouse: Warehouse, clock: Clock, result: LoadResult) -> None:
    if not files:
        return
    try:
        result.completed_wallets += _commit(files, warehouse, clock)
        result.committed += files
    except PermanentError as exc:
        if len(files) == 1:
            log.error("part file cannot be loaded: %s", exc, extra={"wallet": files[0].wallet, "uri": files[0].uri})
            result.failed[files[0].uri] = exc
            return
        half = len(files) // 2
        _load_or_split(files[:half], warehouse, clock, result)
        _load_or_split(files[half:], warehouse, clock, result)


def _commit(files: list[FileReady], warehouse: Warehouse, clock: Clock) -> list[str]:
    keys = {(f.wallet, f.run_id) for f in files}
    known: dict[tuple[str, str], list[Segment]] = {k: [] for k in keys}
    for seg in warehouse.segments(keys):
        known[(seg.wallet, seg.run_id)].append(seg)
    new = [Segment.of(f) for f in files]
    for seg in new:
        known[(seg.wallet, seg.run_id)].append(seg)
    source = {(f.wallet, f.run_id): f.source for f in files}
    updates, completed = [], []
    for (wallet, run_id), segs in sorted(known.items()):
        state = chain_state(segs)
        status = "complete" if state.complete else "in_progress"
        if state.complete:
            completed.append(wallet)
        updates.append(
            CheckpointUpdate(wallet, run_id, source[(wallet, run_id)], status, state.parts_loaded, state.final_part)
        )
    warehouse.commit_batch(files, new, updates, clock.now())
    log.info(
        "committed %d parts, %d rows; %d wallets complete, %d in progress",
        len(files),
        sum(f.rows for f in files),
        len(completed),
        len(updates) - len(completed),
    )
    return completed
