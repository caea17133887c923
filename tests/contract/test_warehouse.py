"""The Warehouse port's contract, run against both twins: DuckDB (embedded) and BigQuery (emulator)."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from shared.adapters.sql.deadletters import SqlDeadLetters
from shared.adapters.sql.dialect import Sql
from shared.core.errors import PermanentError, SchemaMismatch, TransientError
from shared.core.messages import DeadLetter, FileReady, WalletTask
from shared.core.trades import COLUMN_NAMES
from shared.handlers.dispatch import dispatch
from shared.handlers.load import load
from shared.ports.publisher import Topic
from shared.ports.warehouse import CheckpointUpdate, Segment, Stored
from tests.contract.twins import TWINS, make_twin, now
from tests.fakes import FakeClock, canonical, dome_raw

W1, W2, W3 = "0x" + "1" * 40, "0x" + "2" * 40, "0x" + "3" * 40


def later():
    """A sync time after every walk these tests commit (they commit at `now()`)."""
    return now() + timedelta(hours=1)


@pytest.fixture(params=TWINS)
def twin(request, tmp_path):
    made = make_twin(request, tmp_path)
    yield made
    made.warehouse.close()


def rows(wallet, start, stop, run_id="r1", **overrides):
    """Canonical rows, every column present (as in a part file); every fourth without a log_index."""
    out = []
    for i in range(start, stop):
        row = {**canonical(wallet, dome_raw(wallet, i, log_index=i % 4 != 0)), "run_id": run_id, **overrides}
        out.append({c: row.get(c) for c in COLUMN_NAMES})
    return out


def by_key(rows_):
    return sorted(rows_, key=lambda r: (r["wallet_address"], r["trade_key"]))


def complete(wallet, run_id="r1", parts=1):
    return CheckpointUpdate(wallet, run_id, "dome", "complete", parts, parts - 1)


def empty_part(twin, wallet, run_id="r1", part=0):
    """The record of a part without rows: commit_batch takes at least one part record (the DuckDB twin's
    executemany refuses an empty list), and a zero-row part loads no file."""
    return Segment(
        wallet, run_id, part, twin.store.uri(f"runs/{run_id}/{wallet}/part-{part:05d}-empty.jsonl"), 0, True, None, None
    )


def test_create_schema_is_idempotent_and_the_check_accepts_it(twin):
    twin.warehouse.create_schema()
    twin.warehouse.create_schema()
    twin.warehouse.check_schema()
    assert twin.warehouse.add_traders([W1]) == 1


def test_add_traders_counts_only_new_wallets(twin):
    assert twin.warehouse.add_traders([W1, W2, W1]) == 2
    assert twin.warehouse.add_traders([W2, W3]) == 1
    assert twin.warehouse.status(now()).wallets_total == 3


def test_candidates_stream_every_wallet_that_is_not_complete_and_not_leased(twin):
    wallets = [f"0x{i:040x}" for i in range(2500)]
    wh = twin.warehouse
    assert wh.add_traders(wallets) == 2500
    done, leased, expired = wallets[:10], wallets[10:20], wallets[20:25]
    wh.commit_batch([], [empty_part(twin, w) for w in done], [complete(w) for w in done], now())
    wh.lease([(w, "r1") for w in leased], now(), now() + timedelta(hours=1), "in_flight")
    wh.lease([(w, "r1") for w in expired], now() - timedelta(hours=2), now() - timedelta(hours=1), "in_flight")

    found = wh.candidates(now(), 10_000)
    assert isinstance(found, Iterator)
    got = [c.wallet for c in found]  # 2,480 rows: several pages of the BigQuery twin's 500
    assert got == sorted(set(wallets) - set(done) - set(leased))
    assert [c.wallet for c in wh.candidates(now(), 100)] == got[:100]
    # A sync also wants the complete wallets last walked before its time, after every unfinished one.
    synced = [c for c in wh.candidates(now(), 10_000, sync_before=later()) if c.status == "complete"]
    assert [(c.wallet, c.run_id) for c in synced] == [(w, "r1") for w in done]
    assert [c.wallet for c in wh.candidates(now(), 10_000, sync_before=later())][-10:] == done
    assert [c for c in wh.candidates(now(), 10_000, sync_before=now() - timedelta(hours=1)) if c.status] == []


def test_an_unfinished_candidate_carries_its_run_and_a_complete_one_its_newest_trade(twin):
    wh = twin.warehouse
    wh.add_traders([W1, W2])
    f1 = twin.part(W1, "r7", 0, rows(W1, 0, 3, "r7"), final=False, cursor_after="c1")
    f2 = twin.part(W2, "r7", 0, rows(W2, 0, 4, "r7"), final=True)
    wh.commit_batch(
        [f1, f2],
        [Segment.of(f1), Segment.of(f2)],
        [CheckpointUpdate(W1, "r7", "dome", "in_progress", 1, None), complete(W2, "r7")],
        now(),
    )
    (c1,) = wh.candidates(now(), 10)
    assert (c1.wallet, c1.run_id, c1.status, c1.newest_trade_epoch) == (W1, "r7", "in_progress", 1_700_000_000)
    (_, c2) = wh.candidates(now(), 10, sync_before=later())
    assert (c2.wallet, c2.status, c2.newest_trade_epoch) == (W2, "complete", 1_700_000_000)
    # Given the source being dispatched, wallets loaded from another one are left out and listed instead.
    assert [c.source for c in wh.candidates(now(), 10, source="dome")] == ["dome"]
    assert list(wh.candidates(now(), 10, source="polymarket")) == []
    assert list(wh.candidates(now(), 10, source="polymarket", sync_before=later())) == []
    assert sorted(wh.source_conflicts("polymarket")) == [(W1, "dome"), (W2, "dome")]
    # A lease ends when its run completes the wallet: W2 stays due for a sync, W1 (unfinished) does not.
    wh.lease([(W1, "r7"), (W2, "r7")], now(), now() + timedelta(hours=6), "in_flight")
    assert [c.wallet for c in wh.candidates(now(), 10, sync_before=later())] == [W2]
    assert list(wh.candidates(now(), 10)) == []
    wh.lease([(W2, "r8")], now(), now() + timedelta(hours=6), "in_flight")  # a sync in flight
    assert list(wh.candidates(now(), 10, sync_before=later())) == []
    assert wh.source_conflicts("dome") == []


def test_leases_count_in_flight_until_they_expire_complete_or_are_released(twin):
    wh = twin.warehouse
    until = now() + timedelta(hours=1)
    wh.lease([(W1, "r1"), (W2, "r1"), (W3, "r1")], now(), until, "in_flight")
    wh.lease([("0xnot-a-wallet", "r1")], now(), now() + timedelta(days=3650), "dead_letter")
    assert wh.in_flight(now()) == 3
    assert wh.in_flight(until + timedelta(seconds=1)) == 0
    wh.commit_batch([], [empty_part(twin, W1)], [complete(W1)], now())
    assert wh.in_flight(now()) == 2
    wh.lease([(W2, "r2"), (W2, "r3")], now(), until, "in_flight")  # the last lease of a wallet wins
    assert wh.in_flight(now()) == 2
    assert wh.release_leases() == 3
    assert wh.in_flight(now()) == 0
    assert wh.release_leases("dead_letter") == 1


def test_committing_a_batch_twice_leaves_one_row_per_key_equal_to_the_input(twin):
    wh = twin.warehouse
    a = rows(W1, 0, 30)
    b = rows(W1, 20, 50) + rows(W1, 0, 5)  # overlaps the first part and repeats rows inside itself
    c = rows(W2, 0, 12)
    files = [
        twin.part(W1, "r1", 0, a, final=False, cursor_after="30"),
        twin.part(W1, "r1", 1, b, final=True, cursor_in="30"),
        twin.part(W2, "r1", 0, c, final=True),
    ]
    checkpoints = [complete(W1, parts=2), complete(W2)]
    wh.commit_batch(files, [Segment.of(f) for f in files], checkpoints, now())
    wh.commit_batch(files, [Segment.of(f) for f in files], checkpoints, now())
    expected = by_key({(r["wallet_address"], r["trade_key"]): r for r in a + b + c}.values())
    assert len(expected) == 62
    assert twin.trades() == expected
    assert len(twin.part_records()) == 3


def test_the_first_run_of_a_key_wins_and_a_later_batch_never_changes_a_merged_row(twin):
    wh = twin.warehouse
    early = twin.part(W1, "r1", 0, rows(W1, 0, 5, "r1", price=0.25), final=True)
    late = twin.part(W1, "r2", 0, rows(W1, 0, 5, "r2", price=0.75), final=True)
    wh.commit_batch([late, early], [Segment.of(late), Segment.of(early)], [], now())
    wh.commit_batch([late], [Segment.of(late)], [], now())
    assert {(r["run_id"], r["price"]) for r in twin.trades()} == {("r1", 0.25)}


def test_parts_out_of_order_complete_the_wallet_only_with_the_last_outstanding_part(twin):
    clock = FakeClock(wall=now())
    p0 = twin.part(W1, "r1", 0, rows(W1, 0, 10), final=False, cursor_after="10")
    p1 = twin.part(W1, "r1", 1, rows(W1, 10, 20), final=False, cursor_in="10", cursor_after="20")
    p2 = twin.part(W1, "r1", 2, rows(W1, 20, 25), final=True, cursor_in="20")
    load([p2], warehouse=twin.warehouse, store=twin.store, clock=clock)
    load([p0], warehouse=twin.warehouse, store=twin.store, clock=clock)
    ck = twin.checkpoints()[W1]
    assert (ck["status"], ck["parts_loaded"], ck["trades_loaded"]) == ("in_progress", 2, 15)
    result = load([p1, p0], warehouse=twin.warehouse, store=twin.store, clock=clock)  # p0 again: redelivered
    assert result.completed_wallets == [W1]
    ck = twin.checkpoints()[W1]
    assert (ck["status"], ck["parts_loaded"], ck["final_part"], ck["trades_loaded"]) == ("complete", 3, 2, 25)
    assert twin.trades() == by_key(rows(W1, 0, 25))


def test_a_batch_with_a_missing_part_file_raises_permanent_and_commits_nothing(twin):
    good = twin.part(W1, "r1", 0, rows(W1, 0, 5), final=True)
    gone = twin.part(W2, "r1", 0, rows(W2, 0, 5), final=True)
    twin.store.delete(twin.store.name_from_uri(gone.uri))
    with pytest.raises(PermanentError):
        twin.warehouse.commit_batch(
            [good, gone], [Segment.of(good), Segment.of(gone)], [complete(W1), complete(W2)], now()
        )
    assert (twin.trades(), twin.checkpoints(), twin.part_records()) == ([], {}, [])


def test_a_batch_with_a_corrupt_part_file_raises_permanent_naming_it_and_commits_nothing(twin):
    good = twin.part(W1, "r1", 0, rows(W1, 0, 5), final=True)
    with twin.store.open_writer("runs/r1/bad.jsonl") as out:
        out.write('{"wallet_address": "0xbad", "trade_key": "k"\n{not json\n')
    uri = twin.store.uri("runs/r1/bad.jsonl")
    bad = FileReady(run_id="r1", wallet=W2, part=0, uri=uri, rows=2, final=True)
    with pytest.raises(PermanentError) as caught:
        twin.warehouse.commit_batch(
            [good, bad], [Segment.of(good), Segment.of(bad)], [complete(W1), complete(W2)], now()
        )
    assert "bad.jsonl" in str(caught.value)
    assert (twin.trades(), twin.checkpoints(), twin.part_records()) == ([], {}, [])


def test_the_load_handler_isolates_a_bad_file_and_commits_the_rest(twin):
    good = twin.part(W1, "r1", 0, rows(W1, 0, 5), final=True)
    gone = twin.part(W2, "r1", 0, rows(W2, 0, 5), final=True)
    twin.store.delete(twin.store.name_from_uri(gone.uri))
    result = load([good, gone], warehouse=twin.warehouse, store=twin.store, clock=FakeClock(wall=now()))
    assert [f.uri for f in result.committed] == [good.uri] and list(result.failed) == [gone.uri]
    assert twin.trades() == by_key(rows(W1, 0, 5))


def test_checkpoints_reflect_the_updates_and_a_complete_run_is_never_regressed(twin):
    wh = twin.warehouse
    t0, t1, t2, t3 = (now() + timedelta(minutes=m) for m in (0, 1, 2, 3))
    f0 = twin.part(W1, "r1", 0, rows(W1, 0, 4), final=False, cursor_after="4")
    wh.commit_batch([f0], [Segment.of(f0)], [CheckpointUpdate(W1, "r1", "dome", "in_progress", 1, None)], t0)
    ck = twin.checkpoints()[W1]
    assert (ck["run_id"], ck["source"], ck["status"], ck["parts_loaded"], ck["final_part"]) == (
        "r1",
        "dome",
        "in_progress",
        1,
        None,
    )
    assert (ck["trades_loaded"], ck["newest_trade_at"].timestamp(), ck["completed_at"]) == (4, 1_700_000_000, None)
    assert ck["started_at"] == ck["updated_at"] == t0

    f1 = twin.part(W1, "r1", 1, rows(W1, 4, 6), final=True, cursor_in="4")
    wh.commit_batch([f1], [Segment.of(f1)], [complete(W1, parts=2)], t1)
    ck = twin.checkpoints()[W1]
    assert (ck["status"], ck["parts_loaded"], ck["final_part"], ck["trades_loaded"]) == ("complete", 2, 1, 6)
    assert (ck["started_at"], ck["updated_at"], ck["completed_at"]) == (t0, t1, t1)

    wh.commit_batch([], [empty_part(twin, W1)], [CheckpointUpdate(W1, "r1", "dome", "in_progress", 1, None)], t2)
    assert twin.checkpoints()[W1] == ck  # same run, already complete: unchanged

    wh.commit_batch([], [empty_part(twin, W1, "r2")], [CheckpointUpdate(W1, "r2", "dome", "in_progress", 0, None)], t3)
    ck = twin.checkpoints()[W1]
    assert (ck["run_id"], ck["status"], ck["started_at"], ck["completed_at"], ck["trades_loaded"]) == (
        "r2",
        "in_progress",
        t3,
        None,
        6,
    )


def test_two_updates_of_one_wallet_in_a_batch_apply_in_order(twin):
    updates = [complete(W1, "r1"), CheckpointUpdate(W1, "r2", "dome", "in_progress", 1, None)]
    twin.warehouse.commit_batch([], [empty_part(twin, W1)], updates, now())
    ck = twin.checkpoints()[W1]
    assert (ck["run_id"], ck["status"]) == ("r2", "in_progress")


def test_segments_round_trip_by_wallet_and_run(twin):
    wh = twin.warehouse
    f0 = twin.part(W1, "r1", 0, rows(W1, 0, 3), final=False, cursor_after="cur-1")
    f1 = twin.part(W1, "r1", 1, [], final=True, cursor_in="cur-1")  # an empty final part loads no file
    f2 = twin.part(W1, "r2", 0, rows(W1, 0, 1, "r2"), final=True)
    f3 = twin.part(W2, "r1", 0, rows(W2, 0, 2), final=True)
    segs = [Segment.of(f) for f in (f0, f1, f2, f3)]
    wh.commit_batch([f0, f1, f2, f3], segs + segs[:1], [], now())  # a repeated record is kept once
    assert sorted(wh.segments([(W1, "r1")]), key=lambda s: s.part) == segs[:2]
    assert set(wh.segments([(W1, "r2"), (W2, "r1")])) == {segs[2], segs[3]}
    assert wh.segments([]) == [] and wh.segments([(W3, "r1")]) == []


def test_status_counts_wallets_trades_and_loads(twin):
    wh = twin.warehouse
    wh.add_traders([W1, W2, W3])
    f = twin.part(W1, "r1", 0, rows(W1, 0, 7), final=True)
    wh.commit_batch([f], [Segment.of(f)], [complete(W1)], now())
    wh.lease([(W2, "r1")], now(), now() + timedelta(hours=1), "in_flight")
    status = wh.status(now())
    assert (status.wallets_total, status.by_status, status.trades, status.in_flight) == (
        3,
        {"complete": 1, "pending": 2},
        7,
        1,
    )
    assert status.newest_load == now()


def test_complete_wallets_walk_by_key_with_the_rows_and_final_parts_the_warehouse_holds(twin):
    """What verification reads (shared/handlers/verify.py): complete checkpoints in wallet order, a chunk
    after a key, with the rows `trades` holds now and the final parts loaded in the checkpoint's run."""
    wh = twin.warehouse
    w4 = "0x" + "4" * 40
    done = twin.part(W1, "r1", 0, rows(W1, 0, 6), final=True)
    going = twin.part(W2, "r1", 0, rows(W2, 0, 3), final=False, cursor_after="c1")
    other_run = twin.part(w4, "r0", 0, rows(w4, 0, 2, "r0"), final=True)
    updates = [complete(W1), CheckpointUpdate(W2, "r1", "dome", "in_progress", 1, None), complete(W3)]
    wh.commit_batch([done, going], [Segment.of(done), Segment.of(going), empty_part(twin, W3)], updates, now())
    # w4: complete in r2 while its only final part is r0's (a checkpoint no loader completed)
    wh.commit_batch([other_run], [Segment.of(other_run)], [complete(w4, "r2")], now())
    picked = f"SELECT trade_key FROM {twin.table('trades')} WHERE wallet_address = '{W1}' ORDER BY trade_key LIMIT 2"
    wh.execute(Sql(f"DELETE FROM {twin.table('trades')} WHERE wallet_address = '{W1}' AND trade_key IN ({picked})"))

    everything = wh.complete_wallets(None, 100)
    assert everything == [
        Stored(W1, "r1", "dome", 6, 4, 1),
        Stored(W3, "r1", "dome", 0, 0, 1),
        Stored(w4, "r2", "dome", 2, 2, 0),
    ]
    assert wh.complete_wallets(None, 1) == everything[:1]
    assert wh.complete_wallets(W1, 1) == everything[1:2]
    assert wh.complete_wallets(W3, 100) == everything[2:]
    assert wh.complete_wallets(w4, 100) == []
    assert wh.complete_wallets(None, 100, [w4, W2, W1]) == [everything[0], everything[2]]  # W2: not complete
    assert wh.complete_wallets(None, 100, []) == []


# -- semantics the two SQL dialects must agree on (the dead-letter drift was one) ------------------------


def park(twin, wallet, error_class="PermanentError", run_id="r1"):
    """Dead-letter the wallet's task as the services do: a letter in the warehouse's dead-letter table."""
    task = WalletTask(run_id=run_id, wallet=wallet)
    letter = DeadLetter.of(
        Topic.WALLETS, task.encode(), PermanentError(f"{error_class} for {wallet}"), attributes=task.attributes()
    )
    letters = SqlDeadLetters(twin.warehouse, FakeClock(wall=now()))
    letters.put(letter)
    return letters, letter


def test_a_dead_lettered_wallet_is_neither_a_candidate_nor_in_flight_until_replayed(twin):
    wh = twin.warehouse
    wh.add_traders([W1, W2, W3])
    until = now() + timedelta(hours=6)
    wh.lease([(W1, "r1"), (W2, "r1")], now() - timedelta(hours=7), now() - timedelta(hours=1), "in_flight")
    wh.lease([(W3, "r1")], now(), until, "in_flight")
    letters, letter = park(twin, W1)  # the fetcher gave up on W1; its lease has run out
    park(twin, W3)  # and on W3, whose lease still runs
    assert [c.wallet for c in wh.candidates(now(), 10)] == [W2]
    assert wh.in_flight(now()) == 0  # W3's lease no longer counts: nothing is working on it
    status = wh.status(now())
    assert (status.dead_letters, status.parked) == (2, 2)
    letters.mark_replayed([letter])
    assert [c.wallet for c in wh.candidates(now(), 10)] == [W1, W2]
    assert wh.status(now()).parked == 1


def test_a_letter_without_a_trader_parks_nothing_and_counts_as_a_dead_letter(twin):
    twin.warehouse.add_traders([W1])
    park(twin, "0xnot-a-wallet")
    assert [c.wallet for c in twin.warehouse.candidates(now(), 10)] == [W1]
    status = twin.warehouse.status(now())
    assert (status.dead_letters, status.parked) == (1, 0)


def test_traders_are_compared_trimmed_and_lowercase(twin):
    upper = "0x" + "A" * 40
    twin.warehouse.add_traders([f"  {upper} "])
    ((cand,),) = [list(twin.warehouse.candidates(now(), 10))]
    assert cand.wallet == upper.lower()
    f = twin.part(upper.lower(), "r1", 0, rows(upper.lower(), 0, 2), final=True)
    twin.warehouse.commit_batch([f], [Segment.of(f)], [complete(upper.lower())], now())
    assert list(twin.warehouse.candidates(now(), 10)) == []
    assert twin.warehouse.status(now()).by_status == {"complete": 1}


def test_forgetting_wallets_drops_their_rows_checkpoints_parts_and_leases_only(twin):
    wh = twin.warehouse
    wh.add_traders([W1, W2])
    files = [twin.part(W1, "r1", 0, rows(W1, 0, 4), final=True), twin.part(W2, "r1", 0, rows(W2, 0, 3), final=True)]
    wh.commit_batch(files, [Segment.of(f) for f in files], [complete(W1), complete(W2)], now())
    wh.lease([(W1, "r1")], now(), now() + timedelta(hours=1), "in_flight")
    assert wh.forget_wallets([W1]) == 4
    assert twin.trades() == by_key(rows(W2, 0, 3))
    assert set(twin.checkpoints()) == {W2} and [p["wallet_address"] for p in twin.part_records()] == [W2]
    assert [c.wallet for c in wh.candidates(now(), 10)] == [W1]
    assert wh.forget_wallets([]) == 0


def test_the_schema_check_refuses_a_table_that_is_not_ours(twin):
    text, number = ("VARCHAR", "BIGINT") if twin.kind == "duckdb" else ("STRING", "INT64")
    twin.query(f"DROP TABLE {twin.table('trades')}")
    twin.query(f"CREATE TABLE {twin.table('trades')} (wallet_address {text}, x {number})")
    with pytest.raises(SchemaMismatch, match="trades"):
        twin.warehouse.check_schema()


def test_concurrent_dispatches_publish_each_wallet_once(twin):
    """Ten /dispatch calls at once (a Scheduler retry plus manual calls): the leases are claimed
    atomically, so every wallet is published by exactly one of them."""
    wallets = [f"0x{i:040x}" for i in range(1, 41)]
    twin.warehouse.add_traders(wallets)
    published: list[str] = []
    lock = threading.Lock()

    class Recording:
        def publish(self, topic, data, attributes):
            with lock:
                published.append(attributes["wallet"])
            return "id"

    def one_call(n: int):
        return dispatch(
            warehouse=twin.warehouse,
            publisher=Recording(),
            dead_letters=SqlDeadLetters(twin.warehouse, FakeClock(wall=now())),
            clock=FakeClock(start=0, wall=now()),
            run_id=f"r{n}",
            source="dome",
            max_in_flight=1000,
            lease_seconds=3600,
        )

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(lambda n: _or_error(one_call, n), range(10)))
    assert sorted(published) == wallets  # every wallet once, none twice
    succeeded = [o for o in outcomes if not isinstance(o, Exception)]
    assert succeeded and all(isinstance(o, TransientError) for o in outcomes if isinstance(o, Exception))
    assert sum(len(o.published) for o in succeeded) == len(wallets)
    assert twin.warehouse.in_flight(now()) == len(wallets)


def _or_error(function, *args):
    try:
        return function(*args)
    except Exception as exc:  # a conflicting transaction may fail a call: it must be a retryable error
        return exc
