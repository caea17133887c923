"""The design rules (docs/design.md), each with a test that fails without it (handlers + DuckDB + local folder)."""

import gc
import weakref

import pytest

from shared.core.errors import PermanentError
from shared.core.messages import FileReady, WalletTask, decode
from shared.handlers.dispatch import dispatch, sync_before_for
from shared.handlers.fetch import fetch
from shared.handlers.load import load
from shared.ports.publisher import Topic
from shared.ports.source import Page
from tests.fakes import FakeTradeSource, budget, canonical, dome_raw

W1, W2 = "0x" + "1" * 40, "0x" + "2" * 40


def fetch_all(wallet, source, store, publisher, clock, budget=budget(max_pages=2), run_id="r1"):
    """Run a wallet's fetch and its continuations to the end; return the FileReady messages."""
    task, files = WalletTask(run_id=run_id, wallet=wallet), []
    while task is not None:
        out = fetch(task, source=source, store=store, publisher=publisher, clock=clock, budget=budget)
        files.append(out.file)
        task = out.continuation
    return files


def rows_of(warehouse, wallet):
    return (
        warehouse.cursor()
        .execute(
            "SELECT trade_key, tx_hash, log_index, shares FROM trades WHERE wallet_address = ? ORDER BY trade_key",
            [wallet],
        )
        .fetchall()
    )


def checkpoint(warehouse, wallet):
    return (
        warehouse.cursor()
        .execute(
            "SELECT status, trades_loaded, parts_loaded, final_part FROM checkpoints WHERE wallet_address = ?", [wallet]
        )
        .fetchone()
    )


def expected_rows(wallet, n):
    rows = [canonical(wallet, dome_raw(wallet, i)) for i in range(n)]
    return sorted((r["trade_key"], r["tx_hash"], r["log_index"], float(r["shares"])) for r in rows)


# Rule 1 -------------------------------------------------------------------------------------------
def test_rule1_loading_the_same_parts_again_adds_no_row(warehouse, store, publisher, clock):
    source = FakeTradeSource({W1: 55})
    files = fetch_all(W1, source, store, publisher, clock)
    load(files + files, warehouse=warehouse, store=store, clock=clock)  # redelivered inside one batch
    load(files, warehouse=warehouse, store=store, clock=clock)  # and again later
    assert rows_of(warehouse, W1) == expected_rows(W1, 55)


def test_rule1_a_refetched_wallet_merges_into_the_same_rows(warehouse, store, publisher, clock):
    source = FakeTradeSource({W1: 30})
    load(fetch_all(W1, source, store, publisher, clock, run_id="a"), warehouse=warehouse, store=store, clock=clock)
    load(fetch_all(W1, source, store, publisher, clock, run_id="b"), warehouse=warehouse, store=store, clock=clock)
    assert rows_of(warehouse, W1) == expected_rows(W1, 30)


# Rules 2 and 3 ------------------------------------------------------------------------------------
def test_rule3_complete_only_when_the_last_outstanding_part_merges(warehouse, store, publisher, clock):
    files = fetch_all(W1, FakeTradeSource({W1: 50}), store, publisher, clock)  # 3 parts: 20, 20, 10
    assert [f.final for f in files] == [False, False, True]
    for f in (files[2], files[0]):  # out of order; part 1 still missing
        load([f], warehouse=warehouse, store=store, clock=clock)
        assert checkpoint(warehouse, W1)[0] == "in_progress"
    load([files[1]], warehouse=warehouse, store=store, clock=clock)
    assert checkpoint(warehouse, W1) == ("complete", 50, 3, 2)
    assert rows_of(warehouse, W1) == expected_rows(W1, 50)  # rule 2: every row before complete


def test_rule2_an_empty_wallet_is_complete_with_zero_trades_only_after_its_part(warehouse, store, publisher, clock):
    [empty] = fetch_all(W2, FakeTradeSource({}), store, publisher, clock)
    assert checkpoint(warehouse, W2) is None
    load([empty], warehouse=warehouse, store=store, clock=clock)
    assert checkpoint(warehouse, W2) == ("complete", 0, 1, 0)


# Rule 4 -------------------------------------------------------------------------------------------
def test_rule4_file_ready_is_published_only_after_the_file_is_durable(store, publisher, clock):
    fetch_all(W1, FakeTradeSource({W1: 15}), store, publisher, clock)
    for data in publisher.on(Topic.FILES):
        ready = decode(FileReady, data)
        assert sum(1 for _ in store.read_lines(store.name_from_uri(ready.uri))) == ready.rows


def test_rule4_a_failed_publish_fails_the_fetch(store, publisher, clock):
    publisher.fail_on = Topic.FILES
    with pytest.raises(ConnectionError):
        fetch(
            WalletTask(run_id="r", wallet=W1),
            source=FakeTradeSource({W1: 5}),
            store=store,
            publisher=publisher,
            clock=clock,
            budget=budget(),
        )


# Rule 5 -------------------------------------------------------------------------------------------
def test_rule5_a_retried_task_writes_the_same_object_name(store, publisher, clock):
    task = WalletTask(run_id="r", wallet=W1)
    source = FakeTradeSource({W1: 25})
    a = fetch(task, source=source, store=store, publisher=publisher, clock=clock, budget=budget(max_pages=1))
    b = fetch(task, source=source, store=store, publisher=publisher, clock=clock, budget=budget(max_pages=1))
    assert a.file.uri == b.file.uri
    assert [n for n in store.list("runs/")] == [store.name_from_uri(a.file.uri)]


# Rule 6 -------------------------------------------------------------------------------------------
class _Rows(list):
    pass  # a list that can be weakly referenced


class StreamingProbe(FakeTradeSource):
    """Checks, before producing each page, that the page before last is no longer held by anyone."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.refs: list[weakref.ref] = []
        self.held_too_long = 0

    def pages(self, wallet, cursor=None, since=None, until=None):
        for page in super().pages(wallet, cursor, since, until):
            gc.collect()
            if len(self.refs) >= 2 and self.refs[-2]() is not None:
                self.held_too_long += 1
            rows = _Rows(page.rows)
            self.refs.append(weakref.ref(rows))
            yield Page(rows, page.next_cursor)


def test_rule6_memory_is_one_page_not_one_wallet(store, publisher, clock):
    probe = StreamingProbe({W1: 200}, page_size=10)
    fetch(
        WalletTask(run_id="r", wallet=W1),
        source=probe,
        store=store,
        publisher=publisher,
        clock=clock,
        budget=budget(max_pages=1000),
    )
    assert len(probe.refs) == 20 and probe.held_too_long == 0


# Rule 7 -------------------------------------------------------------------------------------------
def test_rule7_page_budget_ends_the_part_and_publishes_a_continuation(store, publisher, clock):
    out = fetch(
        WalletTask(run_id="r", wallet=W1),
        source=FakeTradeSource({W1: 100}),
        store=store,
        publisher=publisher,
        clock=clock,
        budget=budget(max_pages=3),
    )
    assert (out.file.rows, out.file.final, out.pages) == (30, False, 3)
    continuation = decode(WalletTask, publisher.on(Topic.WALLETS)[-1])
    assert (continuation.run_id, continuation.wallet, continuation.part, continuation.cursor) == ("r", W1, 1, "30")
    assert (continuation.pages, continuation.empty_pages, len(continuation.recent)) == (3, 0, 3)  # for the guards


class SlowSource(FakeTradeSource):
    def __init__(self, clock, seconds_per_page, *a, **kw):
        super().__init__(*a, **kw)
        self.clock, self.seconds = clock, seconds_per_page

    def pages(self, *a, **kw):
        for page in super().pages(*a, **kw):
            self.clock.advance(self.seconds)
            yield page


def test_rule7_time_budget_ends_the_part_inside_the_ack_deadline(store, publisher, clock):
    source = SlowSource(clock, 50.0, {W1: 1000})
    out = fetch(
        WalletTask(run_id="r", wallet=W1),
        source=source,
        store=store,
        publisher=publisher,
        clock=clock,
        budget=budget(seconds=240, max_pages=1000),
    )
    assert out.pages == 5 and not out.file.final and out.continuation is not None


# Rule 11 ------------------------------------------------------------------------------------------
def run_dispatch(warehouse, publisher, dead_letters, clock, cap=100, mode="backfill", source="dome"):
    return dispatch(
        warehouse=warehouse,
        publisher=publisher,
        dead_letters=dead_letters,
        clock=clock,
        run_id="run-x",
        source=source,
        max_in_flight=cap,
        lease_seconds=3600,
        sync_before=sync_before_for(mode, clock.now(), daily=False, hour_utc=0),
        lookback_seconds=86_400,
    )


def test_rule11_a_second_dispatch_sends_nothing_already_leased(warehouse, publisher, dead_letters, clock):
    warehouse.add_traders([W1, W2])
    assert len(run_dispatch(warehouse, publisher, dead_letters, clock).published) == 2
    assert run_dispatch(warehouse, publisher, dead_letters, clock).published == []
    clock.advance(3601)  # lease expired and nothing finished: sent again
    assert len(run_dispatch(warehouse, publisher, dead_letters, clock).published) == 2


def test_rule11_dispatch_is_capped_by_wallets_in_flight(warehouse, publisher, dead_letters, clock):
    warehouse.add_traders([f"0x{i:040x}" for i in range(10)])
    assert len(run_dispatch(warehouse, publisher, dead_letters, clock, cap=4).published) == 4
    assert run_dispatch(warehouse, publisher, dead_letters, clock, cap=4).published == []
    assert len(run_dispatch(warehouse, publisher, dead_letters, clock, cap=7).published) == 3


def test_rule11_completed_wallets_are_not_sent_and_unfinished_ones_resume(
    warehouse, store, publisher, dead_letters, clock
):
    warehouse.add_traders([W1, W2])
    source = FakeTradeSource({W1: 5, W2: 50})
    load(fetch_all(W1, source, store, publisher, clock, run_id="old"), warehouse=warehouse, store=store, clock=clock)
    w2 = fetch_all(W2, source, store, publisher, clock, run_id="old")
    load(w2[:1], warehouse=warehouse, store=store, clock=clock)  # part 0 committed, the rest lost in a crash
    [task] = run_dispatch(warehouse, publisher, dead_letters, clock).published
    assert task == WalletTask(run_id="old", wallet=W2, part=1, cursor=w2[0].cursor_after)


def test_a_sync_resends_complete_wallets_from_their_newest_trade_minus_the_lookback(
    warehouse, store, publisher, dead_letters, clock
):
    warehouse.add_traders([W1])
    load(
        fetch_all(W1, FakeTradeSource({W1: 5}), store, publisher, clock), warehouse=warehouse, store=store, clock=clock
    )
    assert run_dispatch(warehouse, publisher, dead_letters, clock, mode="backfill").published == []
    clock.advance(1)
    [task] = run_dispatch(warehouse, publisher, dead_letters, clock, mode="sync").published
    assert task.since == 1_700_000_000 - 86_400 and task.run_id == "run-x" and task.cursor is None


# Rule 12 ------------------------------------------------------------------------------------------
def test_rule12_an_invalid_trader_is_dead_lettered_and_parked_not_resent(warehouse, publisher, dead_letters, clock):
    warehouse.add_traders(["0xnot-an-address", W1])
    first = run_dispatch(warehouse, publisher, dead_letters, clock)
    assert [t.wallet for t in first.published] == [W1]
    [letter] = first.dead_lettered
    assert letter.error_class == "InvalidWallet" and "0xnot-an-address" in letter.error
    clock.advance(10 * 3600)
    assert run_dispatch(warehouse, publisher, dead_letters, clock).dead_lettered == []


def test_rule12_a_bad_part_file_fails_alone_and_the_good_ones_commit(warehouse, store, publisher, clock):
    good = fetch_all(W1, FakeTradeSource({W1: 12}), store, publisher, clock, budget=budget(max_pages=100))
    bad = fetch_all(W2, FakeTradeSource({W2: 12}), store, publisher, clock, budget=budget(max_pages=100))
    with store.open_writer(store.name_from_uri(bad[0].uri)) as fh:
        fh.write('{"wallet_address": "0x2222", "trade_key": \n')  # truncated on disk
    result = load(good + bad, warehouse=warehouse, store=store, clock=clock)
    assert list(result.failed) == [bad[0].uri] and isinstance(result.failed[bad[0].uri], PermanentError)
    assert checkpoint(warehouse, W1)[0] == "complete" and checkpoint(warehouse, W2) is None
    assert rows_of(warehouse, W2) == []


# Sources --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["backfill", "sync"])
def test_a_wallet_loaded_from_another_source_is_not_dispatched_and_is_reported(
    warehouse, store, publisher, dead_letters, clock, mode
):
    warehouse.add_traders([W1, W2])
    source = FakeTradeSource({W1: 5, W2: 50})
    load(fetch_all(W1, source, store, publisher, clock, run_id="old"), warehouse=warehouse, store=store, clock=clock)
    load(
        fetch_all(W2, source, store, publisher, clock, run_id="old")[:1], warehouse=warehouse, store=store, clock=clock
    )
    result = run_dispatch(warehouse, publisher, dead_letters, clock, mode=mode, source="polymarket")
    # W1 (complete) and W2 (half done) came from dome: neither is resumed or refreshed from polymarket.
    assert result.published == []
    assert sorted(result.source_conflicts) == [(W1, "dome"), (W2, "dome")]
