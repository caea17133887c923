"""load(batch): merge a batch of part files and their checkpoints in one transaction (design rules 1–3, 5, 9).

The caller (the loader service or the embedded runner) hands over one batch at a time: wallets' part
files, and lookups' (markets, events), each kind committed in its own transaction so that a lookup
never holds trades back. A file the warehouse cannot read is isolated by splitting the batch, so one
bad file fails alone and the rest commit (rule 12); a systemic failure (warehouse down) fails the whole
batch for a retry.

Only the pipeline's own part files are loaded: a FileReady's uri must be in the store the caller
gives (the loader's bucket, the embedded parts folder) under exactly the name the fetcher gives that
message's run, wallet and part (`announced_part_name`), for a valid wallet; a LookupReady's under the
name `fetch_lookup` gives a lookup of that run and kind. Anything else is UntrustedPart —
dead-lettered with the reason by the caller, never read — and the rest of the batch goes on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from shared.core.chain import Segment, walk_state
from shared.core.errors import PermanentError, PipelineError, UntrustedPart
from shared.core.messages import FileReady, LookupReady
from shared.core.wallets import is_wallet
from shared.handlers.fetch import announced_part_name
from shared.ports.clock import Clock
from shared.ports.objectstore import ObjectStore
from shared.ports.warehouse import CheckpointUpdate, Warehouse

log = logging.getLogger(__name__)
Ready = FileReady | LookupReady


@dataclass
class LoadResult:
    committed: list[Ready] = field(default_factory=list)
    failed: dict[str, PipelineError] = field(default_factory=dict)  # uri -> why (a file that did not load)
    untrusted: dict[Ready, UntrustedPart] = field(default_factory=dict)  # a message that was not read
    completed_wallets: list[str] = field(default_factory=list)

    def error_of(self, ready: Ready) -> PipelineError | None:
        """Why this message did not load (None: its file is committed). Kept per message for untrusted
        ones: a forged FileReady may name a genuine file, whose own message must still succeed."""
        return self.untrusted.get(ready) or self.failed.get(ready.uri)


def load(batch: list[Ready], *, warehouse: Warehouse, store: ObjectStore, clock: Clock) -> LoadResult:
    """`store`: where this pipeline's fetcher writes part files; a message naming any other is refused."""
    result = LoadResult()
    unique: dict[str, Ready] = {}
    for item in batch:
        try:
            check_part(item, store)
        except UntrustedPart as exc:
            log.error("refused a part file: %s", exc, extra={"run_id": item.run_id})
            result.untrusted[item] = exc
            continue
        unique.setdefault(item.uri, item)
    parts = [f for f in unique.values() if isinstance(f, FileReady)]
    _isolating(parts, partial(_commit, warehouse=warehouse, clock=clock), result)
    for kind in ("markets", "events"):
        lookups = [f for f in unique.values() if isinstance(f, LookupReady) and f.kind == kind]
        _isolating(lookups, partial(_commit_lookups, kind, warehouse, clock), result)
    return result


_LOOKUP_NAME = re.compile(r"^runs/(?P<run>[^/]+)/lookups/(?P<kind>markets|events)/[0-9a-f]{16}\.jsonl$")


def check_part(ready: Ready, store: ObjectStore) -> None:
    """UntrustedPart unless `ready.uri` is, in `store`, the part file the fetcher wrote for `ready`."""
    shown = {"uri": ready.uri[:300]}
    try:
        name = store.name_from_uri(ready.uri)
    except ValueError:
        raise UntrustedPart(f"the part file is not in this loader's store: {shown['uri']}", **shown) from None
    if isinstance(ready, LookupReady):
        match = _LOOKUP_NAME.fullmatch(name)
        if not match or (match["run"], match["kind"]) != (ready.run_id, ready.kind):
            raise UntrustedPart(f"not a {ready.kind} lookup file of run {ready.run_id}: {shown['uri']}", **shown)
        return
    shown["wallet"] = ready.wallet[:100]
    if not is_wallet(ready.wallet) or ready.wallet != ready.wallet.strip().lower():
        raise UntrustedPart(f"not a wallet address (0x + 40 lowercase hex digits): {shown['wallet']!r}", **shown)
    expected = announced_part_name(ready)
    if ready.uri != store.uri(expected):
        raise UntrustedPart(
            f"not the part file the fetcher writes for run {ready.run_id}, wallet {ready.wallet}, "
            f"part {ready.part}: {shown['uri']} (expected {expected})",
            **shown,
        )


def _commit_lookups(kind: str, warehouse: Warehouse, clock: Clock, files: list[LookupReady]) -> None:
    warehouse.commit_lookups(kind, files, clock.now())


def _isolating(files: list[Any], commit: Callable[[list[Any]], list[str] | None], result: LoadResult) -> None:
    """Commit the files; on a permanent failure, split the batch until the file to blame stands alone."""
    if not files:
        return
    try:
        result.completed_wallets += commit(files) or []
        result.committed += files
    except PermanentError as exc:
        if len(files) == 1:
            extra = {"wallet": getattr(files[0], "wallet", None), "uri": files[0].uri}
            log.error("part file cannot be loaded: %s", exc, extra=extra)
            result.failed[files[0].uri] = exc
            return
        half = len(files) // 2
        _isolating(files[:half], commit, result)
        _isolating(files[half:], commit, result)


def _commit(files: list[FileReady], *, warehouse: Warehouse, clock: Clock) -> list[str]:
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
        state = walk_state(segs)
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
