"""The loader over HTTP: batches across concurrent requests, 204 only after the commit."""

import threading

import pytest
from fastapi.testclient import TestClient

from services.loader.app import create_app
from shared.bootstrap import Overrides
from shared.core.messages import FileReady, WalletTask, decode
from shared.handlers.fetch import fetch
from shared.ports.publisher import Topic
from shared.settings import LoaderSettings
from shared.web.push import envelope
from tests.fakes import FakeTradeSource, budget

WALLET_LIST = [f"0x{i:040x}" for i in range(1, 6)]


def part_files(store, publisher, clock, counts):
    source = FakeTradeSource(counts)
    for wallet in counts:
        fetch(
            WalletTask(run_id="r", wallet=wallet),
            source=source,
            store=store,
            publisher=publisher,
            clock=clock,
            budget=budget(max_pages=100),
        )
    return [decode(FileReady, d) for d in publisher.on(Topic.FILES)]


@pytest.fixture
def make_client(warehouse, letters, clock):
    def make(**settings):
        s = LoaderSettings(gcp_project="p", gcs_bucket="b", **settings)
        return TestClient(create_app(s, Overrides(warehouse=warehouse, dead_letters=letters, clock=clock)))

    return make


def post_all(client, files):
    codes: dict[str, int] = {}

    def one(ready):
        codes[ready.wallet] = client.post("/", json=envelope(ready.encode(), {"wallet": ready.wallet})).status_code

    threads = [threading.Thread(target=one, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def test_concurrent_requests_share_one_batch_and_answer_after_commit(make_client, warehouse, store, publisher, clock):
    files = part_files(store, publisher, clock, {w: 7 for w in WALLET_LIST})
    with make_client(loader_flush_files=5, loader_flush_seconds=5) as client:
        codes = post_all(client, files)
        batches = client.app.state.batcher.batches
    assert set(codes.values()) == {204}
    assert batches == [5]
    done = warehouse.cursor().execute("SELECT count(*) FROM checkpoints WHERE status = 'complete'").fetchone()[0]
    assert done == 5


def test_a_missing_file_is_dead_lettered_and_the_rest_commit(make_client, warehouse, store, publisher, clock, letters):
    files = part_files(store, publisher, clock, {w: 3 for w in WALLET_LIST[:3]})
    store.delete(store.name_from_uri(files[0].uri))
    with make_client(loader_flush_files=3, loader_flush_seconds=5) as client:
        codes = post_all(client, files)
    assert set(codes.values()) == {204}
    [letter] = letters.letters
    assert letter.wallet == files[0].wallet and "missing" in letter.error
    done = {
        r[0]
        for r in warehouse.cursor()
        .execute("SELECT wallet_address FROM checkpoints WHERE status = 'complete'")
        .fetchall()
    }
    assert done == {f.wallet for f in files[1:]}


def test_a_failed_batch_answers_non_2xx_so_pubsub_redelivers(make_client, warehouse, store, publisher, clock):
    files = part_files(store, publisher, clock, {WALLET_LIST[0]: 3})
    with make_client(loader_flush_files=1, loader_flush_seconds=0.1) as client:
        warehouse.con.close()  # the warehouse goes away under the loader
        response = client.post("/", json=envelope(files[0].encode()))
    assert response.status_code >= 500


def test_malformed_file_ready_is_dead_lettered(make_client, letters):
    with make_client() as client:
        assert client.post("/", json=envelope(b'{"v": 1, "run_id": "r"}')).status_code == 204
    assert letters.letters[0].error_class == "InvalidMessage"
