"""The dispatcher over HTTP: idempotent dispatch, replay, status, verify."""

import pytest
from fastapi.testclient import TestClient

from services.dispatcher.app import create_app
from shared.bootstrap import Overrides
from shared.core.messages import DeadLetter, WalletTask, decode, decode_task
from shared.handlers.fetch import fetch
from shared.handlers.load import load
from shared.ports.deadletters import EmptyInbox
from shared.ports.publisher import Topic
from shared.settings import DispatcherSettings
from tests.embedded.test_rules import fetch_all
from tests.fakes import FakeTradeSource, budget

W1, W2 = "0x" + "1" * 40, "0x" + "2" * 40


@pytest.fixture
def client(warehouse, publisher, dead_letters, clock):
    s = DispatcherSettings(gcp_project="p", gcs_bucket="b", max_in_flight=10)
    with TestClient(
        create_app(s, Overrides(warehouse=warehouse, publisher=publisher, inbox=EmptyInbox(), clock=clock))
    ) as c:
        yield c


def test_dispatch_twice_publishes_each_wallet_once(client, warehouse, publisher):
    warehouse.add_traders([W1, W2, "0xbad"])
    first = client.post("/dispatch", json={"run_id": "r1"}).json()
    assert (first["published"], first["dead_lettered"]) == (2, 1)
    second = client.post("/dispatch", json={"run_id": "r2"}).json()
    assert (second["published"], second["dead_lettered"]) == (0, 0)
    assert sorted(decode(WalletTask, d).wallet for d in publisher.on(Topic.WALLETS)) == [W1, W2]


def test_dispatch_validates_its_body(client):
    assert client.post("/dispatch", json={"mode": "sideways"}).status_code == 422
    assert client.post("/dispatch", json={"max_in_flight": 0}).status_code == 422


def test_replay_filters_and_acks_only_what_it_republished(client, dead_letters, publisher):
    task = WalletTask(run_id="r", wallet=W1)
    dead_letters.put(
        DeadLetter(
            topic=Topic.WALLETS,
            data=task.encode().decode(),
            attributes=task.attributes(),
            error_class="SourceUnavailable",
            error="503",
            wallet=W1,
        )
    )
    dead_letters.put(
        DeadLetter(topic=Topic.WALLETS, data="{}", error_class="InvalidWallet", error="bad", wallet="0xbad")
    )
    dry = client.post("/dead-letters/replay", json={"error_class": "SourceUnavailable", "dry_run": True}).json()
    assert (dry["matched"], dry["would_replay"], dry["replayed"], publisher.messages) == (1, 1, 0, [])
    done = client.post("/dead-letters/replay", json={"error_class": "SourceUnavailable"}).json()
    assert done["replayed"] == 1
    assert [decode(WalletTask, d) for d in publisher.on(Topic.WALLETS)] == [task]
    assert dead_letters.depth() == 1  # the InvalidWallet letter stays


def test_status_reports_wallets_trades_and_dead_letters(client, warehouse, dead_letters):
    warehouse.add_traders([W1, W2])
    dead_letters.put(DeadLetter(topic=Topic.WALLETS, data="{}", error_class="X", error="y", wallet=W2))
    status = client.get("/status").json()
    assert status["wallets"] == 2 and status["dead_letters"] == 1 and status["trades"] == 0
    assert status["by_status"] == {"pending": 2}


def test_the_scheduled_call_syncs_complete_wallets_once_a_day_from_the_sync_hour(
    warehouse, publisher, dead_letters, store, clock
):
    """One job, one policy: every 30-minute call sends new and unfinished wallets; from SYNC_HOUR_UTC
    on, it also sends each complete wallet not walked since that hour — once, then not again that day."""
    clock.advance(3600)  # 01:00 UTC: W1 is back-filled
    warehouse.add_traders([W1])
    task = WalletTask(run_id="r0", wallet=W1)
    done = fetch(task, source=FakeTradeSource({W1: 3}), store=store, publisher=publisher, clock=clock, budget=budget())
    load([done.file], warehouse=warehouse, store=store, clock=clock)
    warehouse.add_traders([W2])
    publisher.messages.clear()
    s = DispatcherSettings(gcp_project="p", gcs_bucket="b", max_in_flight=10, sync_hour_utc=2)
    o = Overrides(warehouse=warehouse, publisher=publisher, inbox=EmptyInbox(), clock=clock)
    with TestClient(create_app(s, o)) as client:
        clock.advance(1800)  # 01:30: the new wallet only
        assert client.post("/dispatch", json={}).json()["wallets"] == [W2]
        assert client.get("/status").json()["sync"]["due"] == 0
        clock.advance(3600)  # 02:30: W1 is due for the day's sync, from its newest trade minus a day
        assert client.get("/status").json()["sync"]["due"] == 1
        answer = client.post("/dispatch", json={"mode": "scheduled"}).json()
        assert answer["wallets"] == [W1]
        [synced] = [t for t in map(decode_task, publisher.on(Topic.WALLETS)) if isinstance(t, WalletTask)][-1:]
        assert (synced.since, synced.cursor) == (1_700_000_000 - 86_400, None)
        # Leased while it runs: the next calls do not send it again.
        assert client.post("/dispatch", json={}).json()["published"] == 0
        # A backfill-only call never syncs; a sync call would, but the wallet is leased.
        assert client.post("/dispatch", json={"mode": "backfill"}).json()["published"] == 0
        status = client.get("/status").json()["sync"]
        assert status["daily_at_utc"] == "02:00" and status["oldest_sync"].startswith("2026-01-01T01:")


def test_verify_finds_what_does_not_reconcile_and_requeues_it_in_a_new_run(
    warehouse, publisher, dead_letters, clock, store
):
    """POST /verify: the operators' reconciliation (issue 14). It reads the loader's tables and writes only
    leases; a requeue publishes fresh tasks of a new run, claimed first."""
    counts = {W1: 12, W2: 5}
    for wallet in counts:
        load(fetch_all(wallet, FakeTradeSource(counts), store, publisher, clock), warehouse=warehouse, store=store,
             clock=clock)  # fmt: skip
    publisher.messages.clear()
    warehouse.cursor().execute("DELETE FROM trades WHERE wallet_address = ? AND log_index = 0", [W1])
    api = FakeTradeSource({W1: 12, W2: 7})  # W2 traded twice since it completed
    s = DispatcherSettings(gcp_project="p", gcs_bucket="b", max_in_flight=10)
    overrides = Overrides(warehouse=warehouse, publisher=publisher, inbox=EmptyInbox(), clock=clock, counter=api)
    with TestClient(create_app(s, overrides)) as client:
        found = client.post("/verify", json={}).json()
        assert (found["checked"], found["mismatched"], found["verified"], found["api"]) == (2, 2, False, "dome")
        assert {m["wallet"]: m["verdict"] for m in found["mismatches"]} == {W1: "rows_missing", W2: "api_has_more"}
        assert found["run_id"] is None and publisher.messages == []  # no requeue unless asked

        first = client.post("/verify", json={"max": 1, "api": False}).json()
        assert (first["checked"], first["next_after"], first["api"]) == (1, W1, "n/a: not asked")
        assert client.post("/verify", json={"after": W1, "api": False}).json()["next_after"] is None

        requeued = client.post("/verify", json={"requeue": True}).json()
    tasks = [decode(WalletTask, d) for d in publisher.on(Topic.WALLETS)]
    assert sorted(requeued["requeued"]) == sorted(t.wallet for t in tasks) == [W1, W2]
    assert {(t.run_id, t.part, t.cursor) for t in tasks} == {(requeued["run_id"], 0, None)}
    assert requeued["run_id"].startswith("verify-")
    leases = warehouse.cursor().execute("SELECT DISTINCT run_id FROM leases").fetchall()
    assert leases == [(requeued["run_id"],)]
    assert warehouse.cursor().execute("SELECT count(*) FROM checkpoints WHERE run_id LIKE 'verify-%'").fetchone() == (
        0,
    )  # the checkpoints are the loader's to move
