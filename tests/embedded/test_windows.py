"""A big wallet fetched as time windows (docs/design.md, "Windows"): split, boundaries, completion only
when every window is complete, and a resume after a kill in the middle of a split walk.

The handlers run on the real local adapters (DuckDB, a folder of part files) against a source that
pages like the APIs do: newest first, whole-second bounds, several fills per second so that page ends
fall inside a second.
"""

from __future__ import annotations

import itertools
import json
import random

import pytest

from shared.core.messages import FileReady, WalletTask, decode
from shared.core.windows import SplitPolicy
from shared.handlers.dispatch import dispatch
from shared.handlers.fetch import FetchBudget, fetch
from shared.handlers.load import load
from shared.ports.publisher import Topic
from tests.fakes import WindowedTradeSource

W = "0x" + "a" * 40


def budget(pages: int = 4, window_pages: int = 3, children: int = 4, probe: int = 2) -> FetchBudget:
    return FetchBudget(240.0, pages, split=SplitPolicy(window_pages, children, probe))


def drain(task, source, store, publisher, clock, budget_, shuffle: random.Random | None = None) -> list[FileReady]:
    """Fetch the task and everything it hands on (continuations, child windows) to the end."""
    queue, files = [task], []
    while queue:
        current = queue.pop(shuffle.randrange(len(queue)) if shuffle else 0)
        published = len(publisher.messages)
        out = fetch(current, source=source, store=store, publisher=publisher, clock=clock, budget=budget_)
        files.append(out.file)
        queue += [decode(WalletTask, d) for t, d, _ in publisher.messages[published:] if t == Topic.WALLETS]
    return files


def file_keys(store, files):
    """trade_key -> how many part files hold it."""
    seen: dict[str, int] = {}
    for f in files:
        with open(store.root / store.name_from_uri(f.uri)) as fh:
            for line in fh:
                key = json.loads(line)["trade_key"]
                seen[key] = seen.get(key, 0) + 1
    return seen


def stored(warehouse):
    return {r[0] for r in warehouse.cursor().execute("SELECT trade_key FROM trades").fetchall()}


def status(warehouse):
    row = warehouse.cursor().execute("SELECT status, trades_loaded FROM checkpoints").fetchone()
    return tuple(row) if row else None


@pytest.mark.parametrize("totals", [True, False], ids=["with a total (Dome)", "without (Data API)"])
def test_a_big_wallet_is_split_into_windows_and_every_row_lands_in_exactly_one_part(
    warehouse, store, publisher, clock, totals
):
    source = WindowedTradeSource(W, 2_000, per_second=7, page_size=10, totals=totals)
    files = drain(WalletTask(run_id="r1", wallet=W), source, store, publisher, clock, budget())
    windows = {f.window for f in files}
    assert len(windows) >= 4, "the walk was not split"
    # No row lost or doubled at a boundary: every row of the history is in exactly one part file.
    held = file_keys(store, files)
    assert set(held) == {r["trade_key"] for r in source.rows}
    assert set(held.values()) == {1}
    load(files, warehouse=warehouse, store=store, clock=clock)
    assert stored(warehouse) == set(held) and status(warehouse) == ("complete", 2_000)


def test_the_boundary_second_goes_to_the_children_whole(warehouse, store, publisher, clock):
    """Seven fills per second, ten per page: the page a chain stops at ends inside a second. That second
    is left out of the chain's part and fetched, every fill of it, by the child window that ends there."""
    source = WindowedTradeSource(W, 600, per_second=7, page_size=10)
    files = drain(WalletTask(run_id="r1", wallet=W), source, store, publisher, clock, budget())
    splits = [f for f in files if f.split_at is not None]
    assert splits
    by_second: dict[int, set[str]] = {}
    for r in source.rows:
        by_second.setdefault(int(r["tx_hash"], 16), set()).add(r["trade_key"])
    for parent in splits:
        at = parent.split_at
        child = next(f for f in files if f.window and f.window[1] == at and f.part == 0)
        assert by_second[at] <= set(file_keys(store, [f for f in files if f.window == child.window]))
        assert not by_second[at] & set(file_keys(store, [parent]))
        # The children partition [window start, split_at]: contiguous, no second twice.
        lo = parent.bounds[0]
        edges = sorted(parent.children, key=lambda w: -1 if w[0] is None else w[0])
        assert edges[0][0] == lo and edges[-1][1] == at
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(edges))


def test_the_wallet_is_complete_only_when_every_window_is(warehouse, store, publisher, clock):
    source = WindowedTradeSource(W, 1_500, per_second=5, page_size=10)
    files = drain(WalletTask(run_id="r1", wallet=W), source, store, publisher, clock, budget())
    rng = random.Random(7)
    rng.shuffle(files)
    last_final = next(i for i in range(len(files) - 1, -1, -1) if files[i].final and files[i].window is not None)
    held_back = files.pop(last_final)
    for i in range(0, len(files), 5):  # in batches, out of order, each batch twice
        load(files[i : i + 5], warehouse=warehouse, store=store, clock=clock)
        load(files[i : i + 5], warehouse=warehouse, store=store, clock=clock)
        assert status(warehouse)[0] == "in_progress"
    load([held_back], warehouse=warehouse, store=store, clock=clock)
    assert status(warehouse) == ("complete", 1_500)
    assert stored(warehouse) == {r["trade_key"] for r in source.rows}


def test_a_kill_in_the_middle_of_a_split_walk_resumes_every_unfinished_window_exactly(
    warehouse, store, publisher, dead_letters, clock
):
    """Half the part files of a split walk committed, the rest lost with the process: the next dispatch
    sends each window that is not complete from its own cursor (never a window from its start again
    when it has parts), and finishing those makes the wallet exact."""
    warehouse.add_traders([W])
    source = WindowedTradeSource(W, 1_800, per_second=4, page_size=10)
    files = drain(WalletTask(run_id="r1", wallet=W), source, store, publisher, clock, budget(pages=2))
    committed = files[: len(files) // 2]
    load(committed, warehouse=warehouse, store=store, clock=clock)
    assert status(warehouse)[0] == "in_progress"
    result = dispatch(
        warehouse=warehouse,
        publisher=publisher,
        dead_letters=dead_letters,
        clock=clock,
        run_id="r2",
        source="dome",
        max_in_flight=10,
        lease_seconds=3600,
    )
    tasks = result.published
    assert len(tasks) >= 2 and {t.run_id for t in tasks} == {"r1"}
    loaded = {(f.window, f.part) for f in committed}
    for t in tasks:
        # A window with parts resumes after its furthest one; only windows without parts start over.
        assert (t.window, t.part) not in loaded
        started = [f for f in committed if f.window == t.window]
        if started:
            assert t.part == max(f.part for f in started) + 1 and t.cursor is not None
    publisher.messages.clear()
    rest = []
    for t in tasks:
        rest += drain(t, source, store, publisher, clock, budget(pages=2))
    load(rest, warehouse=warehouse, store=store, clock=clock)
    assert status(warehouse) == ("complete", 1_800)
    assert stored(warehouse) == {r["trade_key"] for r in source.rows}


def test_an_api_that_ignores_the_bounds_is_walked_unsplit_and_stays_exact(warehouse, store, publisher, clock):
    source = WindowedTradeSource(W, 800, per_second=3, page_size=10, honours_bounds=False)
    files = drain(WalletTask(run_id="r1", wallet=W, since=1), source, store, publisher, clock, budget())
    # The first page is inside (since=1 reaches back to the start); a split's children then get rows
    # outside their windows, are seen not to honour them, and walk on unsplit: slower, never wrong.
    load(files, warehouse=warehouse, store=store, clock=clock)
    assert stored(warehouse) == {r["trade_key"] for r in source.rows}
    assert status(warehouse) == ("complete", 800)


def test_a_small_wallet_is_not_split(warehouse, store, publisher, clock):
    source = WindowedTradeSource(W, 45, per_second=3, page_size=10)
    files = drain(WalletTask(run_id="r1", wallet=W), source, store, publisher, clock, budget())
    assert {f.window for f in files} == {None} and not any(f.split_at for f in files)
    assert len(source.requests) == 5
