"""The context of the trades: look up the markets their condition ids name and the events those
markets name, and keep unresolved ones fresh. No fourth service: the dispatcher schedules lookups as it
schedules wallets (`dispatch_lookups`, after `dispatch`), the fetcher turns a `LookupTask` into a part
file (`fetch_lookup`) and the loader MERGEs it (`load`, shared/handlers/load.py) — each step idempotent
like the trades'.

A batch the API cannot answer is split in halves until the key to blame stands alone; that key goes on
as a task of its own, retried and in the end dead-lettered with its reason like a wallet, while the
rest of its batch is loaded. A key the API answers without knowing it is a miss, recorded with when it
was asked and asked again only after `miss_retry_seconds`. Nothing here waits on or holds back trades.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.core.errors import PermanentError, PipelineError, SystemicError
from shared.core.messages import MAX_LOOKUP_KEYS, LookupReady, LookupTask
from shared.ports.clock import Clock
from shared.ports.objectstore import ObjectStore
from shared.ports.publisher import Publisher, Topic, publish_message
from shared.ports.source import MarketSource
from shared.ports.warehouse import Warehouse

log = logging.getLogger(__name__)
KINDS = ("markets", "events")
KEY_COLUMN = {"markets": "condition_id", "events": "event_slug"}


@dataclass(frozen=True)
class LookupPolicy:
    refresh_seconds: int  # MARKETS_REFRESH_SECONDS: an unresolved market or event older than this is asked again
    miss_retry_seconds: int  # LOOKUP_MISS_RETRY_SECONDS: an id the API did not know is asked again after this
    lease_seconds: int  # a lookup in flight is not sent twice for this long
    max_keys: int = 20 * MAX_LOOKUP_KEYS  # per kind and call (bounded work, like wallets in flight)


def dispatch_lookups(
    *,
    warehouse: Warehouse,
    publisher: Publisher,
    clock: Clock,
    run_id: str,
    source: str,
    policy: LookupPolicy,
    started: datetime | None = None,
    sync_before: datetime | None = None,
) -> list[LookupTask]:
    """Publish a task per batch of ≤ 100 keys due for a lookup, of each kind; claims first (atomic, as
    for wallets), so concurrent calls never send a key twice. `started`: the run's start — a row
    fetched since then is fresh for the rest of the run, however short the refresh interval.
    `sync_before`: a sync's time — an unresolved row fetched before it is refreshed too."""
    now = clock.now()
    stale = min(now, started or now) - timedelta(seconds=policy.refresh_seconds)
    if sync_before is not None:
        stale = max(stale, min(sync_before, started or sync_before))
    miss = now - timedelta(seconds=policy.miss_retry_seconds)
    until = now + timedelta(seconds=policy.lease_seconds)
    tasks: list[LookupTask] = []
    for kind in KINDS:
        keys = warehouse.lookup_candidates(kind, now, stale, miss, policy.max_keys)
        if not keys:
            continue
        won = warehouse.claim_lookups(kind, keys, now, until, uuid.uuid4().hex)
        mine = [k for k in keys if k in won]
        for i in range(0, len(mine), MAX_LOOKUP_KEYS):
            task = LookupTask(kind=kind, run_id=run_id, keys=tuple(mine[i : i + MAX_LOOKUP_KEYS]), source=source)
            publish_message(publisher, Topic.WALLETS, task)
            tasks.append(task)
    if tasks:
        log.info("dispatched %d lookups (%s)", len(tasks), ", ".join(sorted({t.kind for t in tasks})))
    return tasks


def lookup_name(task: LookupTask, fetched_at: str) -> str:
    digest = hashlib.sha256(f"{task.kind}|{'|'.join(task.keys)}|{fetched_at}".encode()).hexdigest()[:16]
    return f"runs/{task.run_id}/lookups/{task.kind}/{digest}.jsonl"


def fetch_lookup(
    task: LookupTask, *, source: MarketSource, store: ObjectStore, publisher: Publisher, clock: Clock
) -> LookupReady | None:
    """Look the task's keys up, write their rows as a part file, publish its LookupReady (and a task of
    its own for each key whose request failed). None when every key of the task failed and went on."""
    if task.source != source.name:
        raise PermanentError(f"lookup is for source {task.source!r} but this fetcher asks {source.name!r}")
    # To the microsecond: a lookup's lease ends when a row newer than the lease is loaded (sql/lookups.py).
    fetched_at = clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows, failed = _isolating(task.kind, list(task.keys), source, fetched_at)
    if failed and len(task.keys) == 1:
        # The key alone: the delivery policy retries it, then dead-letters it, its letter naming the key.
        error = failed[task.keys[0]]
        raise type(error)(f"{task.kind} {task.keys[0]}: {error.message}", **error.fields) from error
    for key, error in failed.items():
        log.warning("lookup of %s %s failed, it goes on alone: %s", task.kind, key, error)
        publish_message(publisher, Topic.WALLETS, task.model_copy(update={"keys": (key,)}))
    keys = tuple(k for k in task.keys if k not in failed)
    if not keys:
        return None
    found = {row[KEY_COLUMN[task.kind]] for row in rows}
    name = lookup_name(task, fetched_at)
    tmp = f"tmp/{task.run_id}/lookups/{uuid.uuid4().hex}.jsonl"  # written, then moved, as a part file is
    with store.open_writer(tmp) as out:
        for row in rows:
            out.write(_line(row))
    store.rename(tmp, name)
    ready = LookupReady(
        kind=task.kind,
        run_id=task.run_id,
        uri=store.uri(name),
        rows=len(rows),
        keys=keys,
        missing=tuple(k for k in keys if k.lower() not in found and k not in found),
        source=task.source,
    )
    publish_message(publisher, Topic.FILES, ready)
    log.info("looked up %d %s: %d found, %d unknown", len(keys), task.kind, len(rows), len(ready.missing))
    return ready


def _isolating(
    kind: str, keys: list[str], source: MarketSource, fetched_at: str
) -> tuple[list[dict[str, object]], dict[str, PipelineError]]:
    """The rows for `keys`; a failing batch split in halves down to the keys to blame (systemic errors
    go on at once: the breaker or the key, not a key of ours, is at fault)."""
    try:
        return (source.markets if kind == "markets" else source.events)(keys, fetched_at), {}
    except SystemicError:
        raise
    except PipelineError as exc:
        if len(keys) == 1:
            return [], {keys[0]: exc}
        half = len(keys) // 2
        left, left_failed = _isolating(kind, keys[:half], source, fetched_at)
        right, right_failed = _isolating(kind, keys[half:], source, fetched_at)
        return left + right, {**left_failed, **right_failed}


def _line(row: dict[str, object]) -> str:
    return json.dumps(row, separators=(",", ":")) + "\n"
