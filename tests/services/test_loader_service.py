"""The loader over HTTP: batches across concurrent requests, 204 only after the commit."""

import threading

import pytest
from fastapi.testclient import TestClient
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from services.loader.app import create_app
from shared.adapters.gcp.storage import GcsObjectStore
from shared.adapters.local.files import LocalObjectStore
from shared.bootstrap import Overrides
from shared.core.errors import UntrustedPart
from shared.core.messages import FileReady, WalletTask, decode
from shared.core.trades import part_line
from shared.handlers.fetch import fetch
from shared.handlers.load import check_part
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
def make_client(warehouse, letters, clock, store):
    def make(**settings):
        s = LoaderSettings(gcp_project="p", gcs_bucket="b", **settings)
        return TestClient(create_app(s, Overrides(warehouse=warehouse, store=store, dead_letters=letters, clock=clock)))

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


def post_each(client, files):
    codes = [0] * len(files)

    def one(i):
        codes[i] = client.post("/", json=envelope(files[i].encode(), {"wallet": files[i].wallet})).status_code

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(files))]
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


# --- The loader loads only the fetcher's own parts --------------------------------------------------------

EVIL = "0x" + "e" * 40


def planted(store, name):
    """A well-formed part file at `name`, rows of a wallet nobody fetched: it must never be loaded."""
    source = FakeTradeSource({EVIL: 2})
    task = WalletTask(run_id="r", wallet=EVIL)
    lines = [row for page in source.pages(EVIL, None, None, None) for row in page.rows]
    with store.open_writer(name) as out:
        for row in lines:
            out.write(part_line({**row, "run_id": task.run_id}))
    return store.uri(name)


FORGERIES = {
    # kind: (how the FileReady is forged from a genuine one, what its dead letter says)
    "another store": (
        lambda g, store, tmp: g.model_copy(
            update={"uri": planted(LocalObjectStore(tmp / "elsewhere"), store.name_from_uri(g.uri))}
        ),
        "not in this loader's store",
    ),
    "outside runs/": (
        lambda g, store, tmp: g.model_copy(update={"uri": planted(store, "evil/part.jsonl")}),
        "expected",
    ),
    "another wallet": (
        lambda g, store, tmp: g.model_copy(update={"wallet": WALLET_LIST[4]}),
        "wallet " + WALLET_LIST[4],
    ),
    "another run": (lambda g, store, tmp: g.model_copy(update={"run_id": "r2"}), "run r2"),
    "another part": (lambda g, store, tmp: g.model_copy(update={"part": 1}), "part 1"),
    "other rows": (lambda g, store, tmp: g.model_copy(update={"rows": 999}), "expected"),
    "a '..' path": (
        lambda g, store, tmp: g.model_copy(
            update={"uri": store.root.as_uri() + "/runs/r/x/../" + store.name_from_uri(g.uri).removeprefix("runs/r/")}
        ),
        "expected",
    ),
    "an invalid wallet": (lambda g, store, tmp: g.model_copy(update={"wallet": "0xnot-a-wallet"}), "not a wallet"),
    "a mixed-case wallet": (lambda g, store, tmp: g.model_copy(update={"wallet": "0x" + "A" * 40}), "not a wallet"),
}


@pytest.mark.parametrize("kind", sorted(FORGERIES))
def test_a_file_ready_for_anything_but_the_fetchers_own_part_is_dead_lettered_and_the_batch_commits(
    make_client, warehouse, store, publisher, clock, letters, tmp_path, kind
):
    forge, reason = FORGERIES[kind]
    good = part_files(store, publisher, clock, {w: 3 for w in WALLET_LIST[:3]})
    forged = forge(good[0], store, tmp_path)
    with make_client(loader_flush_files=4, loader_flush_seconds=5) as client:
        codes = post_each(client, [*good, forged])  # one batch: the forged message among genuine ones
        batches = client.app.state.batcher.batches
    assert codes == [204] * 4 and batches == [4]
    [letter] = letters.letters
    assert letter.error_class == "UntrustedPart" and reason in letter.error, letter.error
    assert decode(FileReady, letter.data.encode()) == forged  # kept as it came, for an operator to see
    complete = warehouse.cursor().execute("SELECT wallet_address FROM checkpoints WHERE status = 'complete'")
    assert sorted(r[0] for r in complete.fetchall()) == sorted(WALLET_LIST[:3])
    assert warehouse.cursor().execute("SELECT count(*) FROM trades").fetchone()[0] == 9  # nothing of EVIL's


def test_in_the_cloud_only_the_loaders_own_bucket_is_trusted(store, publisher, clock):
    """The same check on GcsObjectStore (no request is made: it only compares names)."""
    [good] = part_files(store, publisher, clock, {WALLET_LIST[0]: 1})
    name = store.name_from_uri(good.uri)
    client = storage.Client(project="p", credentials=AnonymousCredentials())
    bucket = GcsObjectStore(client, "parts-bucket")
    check_part(good.model_copy(update={"uri": f"gs://parts-bucket/{name}"}), bucket)  # trusted: no error
    for uri in (f"gs://other-bucket/{name}", f"gs://parts-bucket-2/{name}", f"gs://parts-bucket/x/{name}", good.uri):
        with pytest.raises(UntrustedPart):
            check_part(good.model_copy(update={"uri": uri}), bucket)
