"""verify() and its requeue over the handlers, DuckDB and a fake API (the simulator and the command:
tests/embedded/test_verify.py). Each planted fault gets its verdict; a requeue claims leases first and
publishes fresh tasks of a new run, which the pipeline's own handlers turn into a checkpoint that
verifies."""

from datetime import timedelta

import pytest

from shared.core.errors import PermanentError, SourceDown
from shared.core.messages import FileReady, WalletTask, decode
from shared.handlers.fetch import fetch
from shared.handlers.load import load
from shared.handlers.verify import REPAIRABLE, Requeue, Verdict, verify
from shared.ports.publisher import Topic
from tests.embedded.test_rules import fetch_all
from tests.fakes import FakeTradeSource, budget

W = [f"0x{i:040x}" for i in range(1, 8)]


def loaded(warehouse, store, publisher, clock, counts):
    source = FakeTradeSource(counts)
    for wallet in counts:
        load(fetch_all(wallet, source, store, publisher, clock), warehouse=warehouse, store=store, clock=clock)
    publisher.messages.clear()
    return source


def sql(warehouse, text, *params):
    return warehouse.cursor().execute(text, list(params)).fetchall()


def check(warehouse, counter, clock, **kw):
    return verify(warehouse=warehouse, counter=counter, source="dome", clock=clock, **kw)


def test_a_consistent_warehouse_verifies_every_complete_wallet_a_chunk_at_a_time(warehouse, store, publisher, clock):
    source = loaded(warehouse, store, publisher, clock, {w: 5 * i for i, w in enumerate(W)})  # W[0] has none
    seen = []
    report = check(warehouse, source, clock, chunk=2, on_chunk=lambda r: seen.append(r.checked))
    assert (report.checked, report.mismatched, report.verified, report.api) == (7, 0, True, "dome")
    assert seen == [2, 4, 6, 7]
    assert sum(1 for _, what in source.requests if what == "count") == 7  # one count per wallet


def test_each_planted_fault_gets_its_verdict(warehouse, store, publisher, clock):
    counts = dict.fromkeys(W, 25)
    source = loaded(warehouse, store, publisher, clock, {w: 25 for w in W[:6]})
    # W[6]: one part of three loaded (in progress), then its checkpoint edited to complete
    source.counts = counts
    first = fetch(WalletTask(run_id="r1", wallet=W[6]), source=source, store=store, publisher=publisher, clock=clock,
                  budget=budget(max_pages=1))  # fmt: skip
    load([first.file], warehouse=warehouse, store=store, clock=clock)
    sql(warehouse, "UPDATE checkpoints SET status = 'complete' WHERE wallet_address = ?", W[6])
    sql(warehouse, "DELETE FROM trades WHERE wallet_address = ? AND trade_key IN "
        "(SELECT trade_key FROM trades WHERE wallet_address = ? LIMIT 2)", W[0], W[0])  # fmt: skip
    sql(warehouse, "UPDATE checkpoints SET trades_loaded = 20 WHERE wallet_address = ?", W[1])
    counts[W[2]] = 27  # the API gained two trades
    counts[W[3]] = 24  # the API lost one
    source.fail = {W[4]: PermanentError("HTTP 400 from the API: bad user", wallet=W[4])}
    report = check(warehouse, source, clock)
    verdicts = {c.wallet: c.verdict for c in report.mismatches}
    assert verdicts == {
        W[0]: Verdict.ROWS_MISSING,
        W[1]: Verdict.ROWS_EXTRA,
        W[2]: Verdict.API_HAS_MORE,
        W[3]: Verdict.API_HAS_FEWER,
        W[4]: Verdict.API_ERROR,
        W[6]: Verdict.NOT_MERGED,
    }
    rows = {c.wallet: c.as_json() for c in report.mismatches}
    assert (rows[W[0]]["trades_loaded"], rows[W[0]]["warehouse_rows"]) == (25, 23)
    assert (rows[W[2]]["warehouse_rows"], rows[W[2]]["api_total"]) == (25, 27)
    assert rows[W[6]]["final_parts"] == 0 and rows[W[6]]["trades_loaded"] == rows[W[6]]["warehouse_rows"] == 10
    assert "bad user" in rows[W[4]]["api_note"]
    assert (report.checked, report.mismatched, report.verified) == (7, 6, False)


def test_requeue_claims_leases_then_publishes_fresh_tasks_of_a_new_run_that_repair_the_wallets(
    warehouse, store, publisher, clock
):
    source = loaded(warehouse, store, publisher, clock, dict.fromkeys(W[:4], 25))
    sql(warehouse, "DELETE FROM trades WHERE wallet_address = ? AND trade_key IN "
        "(SELECT trade_key FROM trades WHERE wallet_address = ? LIMIT 3)", W[0], W[0])  # fmt: skip
    source.counts = {**source.counts, W[1]: 31, W[2]: 20}  # W[1] gained six trades, W[2] lost five
    plan = Requeue(publisher, "verify-2", lease_seconds=3600)
    report = check(warehouse, source, clock, requeue=plan)

    tasks = [decode(WalletTask, d) for d in publisher.on(Topic.WALLETS)]
    assert sorted(report.requeued) == [t.wallet for t in sorted(tasks, key=lambda t: t.wallet)] == [W[0], W[1]]
    assert {(t.run_id, t.part, t.cursor, t.source) for t in tasks} == {("verify-2", 0, None, "dome")}
    assert "a re-fetch does not repair it" in report.not_requeued[W[2]]  # MERGE never removes a row
    leases = sql(warehouse, "SELECT wallet_address, run_id, token IS NOT NULL FROM leases ORDER BY 1")
    assert leases == [(W[0], "verify-2", True), (W[1], "verify-2", True)]
    assert sql(warehouse, "SELECT count(*) FROM checkpoints WHERE run_id = 'verify-2'") == [(0,)]  # loader's table

    for task in tasks:  # the pipeline's own handlers take it from here
        t: WalletTask | None = task
        while t is not None:
            t = fetch(t, source=source, store=store, publisher=publisher, clock=clock, budget=budget(2)).continuation
    files = [decode(FileReady, d) for d in publisher.on(Topic.FILES)]
    load(files, warehouse=warehouse, store=store, clock=clock)
    moved = sql(warehouse, "SELECT wallet_address, run_id, status, trades_loaded FROM checkpoints "
                "WHERE wallet_address IN (?, ?) ORDER BY 1", W[0], W[1])  # fmt: skip
    assert moved == [(W[0], "verify-2", "complete", 25), (W[1], "verify-2", "complete", 31)]
    after = check(warehouse, source, clock, wallets=report.requeued)
    assert (after.checked, after.mismatched) == (2, 0)
    assert sql(warehouse, "SELECT count(*), count(DISTINCT trade_key) FROM trades WHERE wallet_address = ?", W[1]) == [
        (31, 31)
    ]


def test_a_wallet_in_flight_is_not_requeued(warehouse, store, publisher, clock):
    source = loaded(warehouse, store, publisher, clock, {W[0]: 12})
    now = clock.now()
    warehouse.claim([(W[0], "sync-7")], now, now + timedelta(hours=1), "another-call")  # a live run holds it
    source.counts = {W[0]: 13}
    report = check(warehouse, source, clock, requeue=Requeue(publisher, "verify-3", 3600))
    assert report.requeued == [] and publisher.messages == []
    assert "in flight" in report.not_requeued[W[0]]
    assert sql(warehouse, "SELECT run_id FROM leases") == [("sync-7",)]


def test_a_wallet_loaded_from_another_source_is_neither_counted_nor_requeued(warehouse, store, publisher, clock):
    source = loaded(warehouse, store, publisher, clock, {W[0]: 12, W[1]: 4})
    sql(warehouse, "UPDATE checkpoints SET source = 'polymarket', trades_loaded = 13 WHERE wallet_address = ?", W[0])
    report = check(warehouse, source, clock, requeue=Requeue(publisher, "verify-4", 3600))
    [mismatch] = report.mismatches
    assert mismatch.verdict is Verdict.ROWS_MISSING
    assert W[0] not in [w for w, what in source.requests if what == "count"]
    assert "loaded from polymarket" in report.not_requeued[W[0]] and report.requeued == []


def test_the_data_api_has_no_total_and_its_wallets_are_still_proven_against_the_warehouse(
    warehouse, store, publisher, clock
):
    loaded(warehouse, store, publisher, clock, {W[0]: 12, W[1]: 4})
    sql(warehouse, "DELETE FROM trades WHERE wallet_address = ? AND trade_key IN "
        "(SELECT trade_key FROM trades WHERE wallet_address = ? LIMIT 1)", W[1], W[1])  # fmt: skip
    report = verify(warehouse=warehouse, counter=None, source="polymarket", clock=clock)
    assert report.api == "n/a: the Data API gives no total"
    [mismatch] = report.mismatches
    assert (mismatch.wallet, mismatch.verdict, mismatch.as_json()["api_total"]) == (W[1], Verdict.ROWS_MISSING, None)


def test_a_systemic_api_error_stops_the_verification(warehouse, store, publisher, clock):
    source = loaded(warehouse, store, publisher, clock, {W[0]: 3, W[1]: 3})
    source.fail = {W[1]: SourceDown("the API failed for 5 wallets in a row", wallet=W[1])}
    with pytest.raises(SourceDown):
        check(warehouse, source, clock, requeue=Requeue(publisher, "verify-5", 3600))
    assert publisher.messages == []


def test_a_bounded_call_says_where_the_next_one_resumes(warehouse, store, publisher, clock):
    source = loaded(warehouse, store, publisher, clock, dict.fromkeys(W[:5], 2))
    first = check(warehouse, source, clock, max_wallets=2, chunk=3)
    assert (first.checked, first.next_after, first.verified) == (2, W[1], False)
    second = check(warehouse, source, clock, after=first.next_after, budget_seconds=0, chunk=2)
    assert (second.checked, second.next_after) == (2, W[3])  # out of time after its first chunk
    last = check(warehouse, source, clock, after=second.next_after)
    assert (last.checked, last.next_after, last.mismatched) == (1, None, 0)


def test_only_what_a_refetch_repairs_is_requeued():
    repaired = {Verdict.NOT_MERGED, Verdict.ROWS_MISSING, Verdict.ROWS_EXTRA, Verdict.API_HAS_MORE}
    assert repaired == REPAIRABLE


def test_tens_of_thousands_of_wallets_are_walked_a_chunk_at_a_time(warehouse, clock):
    wallet = "printf('0x%040x', i)"
    sql(
        warehouse,
        f"""INSERT INTO checkpoints (wallet_address, run_id, source, status, parts_loaded, final_part,
        trades_loaded) SELECT {wallet}, 'r1', 'dome', 'complete', 1, 0, 0 FROM range(1, 12002) AS t(i)""",
    )
    sql(
        warehouse,
        f"""INSERT INTO checkpoint_parts (wallet_address, run_id, part, uri, "rows", final)
        SELECT {wallet}, 'r1', 0, 'file:///parts/' || i, 0, TRUE FROM range(1, 12002) AS t(i)""",
    )
    seen = []
    report = verify(
        warehouse=warehouse, counter=None, source="dome", clock=clock, on_chunk=lambda r: seen.append(r.checked)
    )
    assert seen == [5000, 10_000, 12_001] and (report.checked, report.mismatched) == (12_001, 0)
