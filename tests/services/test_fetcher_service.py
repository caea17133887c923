"""The fetcher over HTTP: status codes per design rules 4, 8 and 12."""

import pytest
from fastapi.testclient import TestClient

from services.fetcher.app import create_app
from shared.adapters.sources.breaker import Breaker
from shared.adapters.sources.dome import DomeSource
from shared.adapters.sources.limiter import RateLimiter, Window
from shared.bootstrap import Overrides
from shared.core.errors import AuthFailure, InvalidWallet, SourceUnavailable
from shared.core.messages import FileReady, WalletTask, decode
from shared.ports.publisher import Topic
from shared.settings import FetcherSettings
from shared.web.push import envelope
from tests.fakes import FakeTradeSource

W = "0x" + "a" * 40


@pytest.fixture
def make_client(store, publisher, letters, clock):
    def make(source, **settings):
        s = FetcherSettings(gcp_project="p", gcs_bucket="b", fetch_max_pages=2, **settings)
        app = create_app(
            s, Overrides(publisher=publisher, store=store, source=source, dead_letters=letters, clock=clock)
        )
        return TestClient(app)

    return make


def push(client, task: WalletTask | bytes, attempt=1):
    data = task if isinstance(task, bytes) else task.encode()
    return client.post("/", json=envelope(data, {"wallet": W}, delivery_attempt=attempt))


def test_success_is_204_after_file_ready_and_continuation_are_published(make_client, publisher, store):
    with make_client(FakeTradeSource({W: 35})) as client:
        response = push(client, WalletTask(run_id="r", wallet=W))
    assert response.status_code == 204
    [ready] = [decode(FileReady, d) for d in publisher.on(Topic.FILES)]
    assert (ready.rows, ready.final) == (20, False) and store.exists(store.name_from_uri(ready.uri))
    [cont] = [decode(WalletTask, d) for d in publisher.on(Topic.WALLETS)]
    assert (cont.part, cont.cursor) == (1, "20")


def test_transient_failure_is_503_and_nothing_is_published(make_client, publisher, letters):
    source = FakeTradeSource({W: 5}, fail={W: SourceUnavailable("HTTP 503 from the API")})
    with make_client(source) as client:
        assert push(client, WalletTask(run_id="r", wallet=W)).status_code == 503
    assert publisher.messages == [] and letters.letters == []


def test_systemic_failure_is_503_and_never_dead_letters(make_client, letters, caplog):
    source = FakeTradeSource({W: 5}, fail={W: AuthFailure("401 from the API, the key was rejected")})
    with make_client(source) as client:
        assert push(client, WalletTask(run_id="r", wallet=W)).status_code == 503
    assert letters.letters == []
    assert any(r.levelname == "ERROR" and "key was rejected" in r.getMessage() for r in caplog.records)


def test_permanent_failure_dead_letters_with_reason_then_204(make_client, letters):
    source = FakeTradeSource({W: 5}, fail={W: InvalidWallet("400 from the API: invalid user address")})
    with make_client(source) as client:
        assert push(client, WalletTask(run_id="r", wallet=W)).status_code == 204
    [letter] = letters.letters
    assert letter.error_class == "InvalidWallet" and "invalid user address" in letter.error
    assert decode(WalletTask, letter.data.encode()).wallet == W  # the original message is kept


def test_invalid_address_in_a_task_is_dead_lettered(make_client, letters):
    with make_client(FakeTradeSource({})) as client:
        assert push(client, WalletTask(run_id="r", wallet="0x123")).status_code == 204
    assert letters.letters[0].error_class == "InvalidWallet"


def test_unknown_message_version_is_dead_lettered_not_retried(make_client, letters):
    with make_client(FakeTradeSource({})) as client:
        assert push(client, b'{"v": 9, "run_id": "r", "wallet": "x"}').status_code == 204
    assert letters.letters[0].error_class == "InvalidMessage" and "version 9" in letters.letters[0].error


@pytest.mark.parametrize("body", [b"not json", b'{"message": {}}', b'{"message": {"data": "%%%", "messageId": "1"}}'])
def test_malformed_envelope_is_400(make_client, body, publisher, letters):
    with make_client(FakeTradeSource({})) as client:
        response = client.post("/", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "envelope" in response.json()["message"] or "base64" in response.json()["message"]
    assert publisher.messages == [] and letters.letters == []


def test_when_the_api_fails_for_every_wallet_the_breaker_answers_503_without_calling_it(make_client, letters, clock):
    """Connection refused for three different wallets in a row opens the breaker: the next push is a 503
    at once (Pub/Sub backs off; nothing is dead-lettered), no request is sent, and /status says why."""
    limiter = RateLimiter((Window(100, 1.0),), clock=clock)
    source = DomeSource(
        "http://127.0.0.1:9/v1", "k", limiter, max_attempts=1, breaker=Breaker(clock, threshold=3), clock=clock
    )
    wallets = ["0x" + c * 40 for c in "abcd"]
    with make_client(source) as client:
        codes = [push(client, WalletTask(run_id="r", wallet=w)).status_code for w in wallets[:3]]
        sent = source.stats.requests
        last = push(client, WalletTask(run_id="r", wallet=wallets[3]))
        status = client.get("/status").json()
    assert codes == [503, 503, 503] and last.status_code == 503 and last.json()["error"] == "SourceDown"
    assert source.stats.requests == sent == 3  # the open breaker sent nothing
    assert status["breaker"]["open"] is True and "ConnectionError" in status["breaker"]["cause"]
    assert letters.letters == []


def test_a_13_mb_push_is_dead_lettered_with_a_cut_body_and_answered_204(make_client, letters, publisher):
    huge = WalletTask(run_id="r", wallet=W).encode()[:-1] + b',"cursor":"' + b"x" * 13_000_000 + b'"}'
    with make_client(FakeTradeSource({W: 5})) as client:
        response = push(client, huge)
    assert response.status_code == 204 and publisher.messages == []
    (letter,) = letters.letters
    assert letter.error_class == "InvalidMessage" and "cut to 65,536" in letter.error
    assert len(letter.data) == 64 * 1024
