"""The dead-letter ports' contract.

The store (SqlDeadLetters) over both warehouses, DuckDB and BigQuery (emulator); and the cloud's way
in: a letter published by PubSubDeadLetterSink, or forwarded by Pub/Sub itself after the last delivery
attempt, waits on the dead-letter topic's pull subscription (PubSubDeadLetterInbox) until the
dispatcher collects it into the store, whole.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.adapters.gcp.pubsub import PubSubDeadLetterInbox, PubSubDeadLetterSink
from shared.adapters.local.bus import Bus
from shared.adapters.sql.deadletters import SqlDeadLetters
from shared.core.errors import InvalidWallet, SourceUnavailable, TransientError
from shared.core.messages import DeadLetter, WalletTask
from shared.delivery import DONE
from shared.handlers.replay import collect_dead_letters, replay_dead_letters
from shared.ports.publisher import Topic
from shared.resources import load_resources
from tests.contract.twins import TWINS, duckdb_twin, make_twin
from tests.fakes import FakeClock

W1, W2 = "0x" + "1" * 40, "0x" + "2" * 40
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=TWINS)
def store(request, tmp_path):
    twin = make_twin(request, tmp_path)
    yield SqlDeadLetters(twin.warehouse, FakeClock(start=0, wall=NOW))
    twin.warehouse.close()


def letter(wallet: str, error: Exception) -> DeadLetter:
    task = WalletTask(run_id="r1", wallet=wallet)
    return DeadLetter.of(Topic.WALLETS, task.encode(), error, attributes=task.attributes())


def test_a_letter_comes_back_whole_and_looking_does_not_consume_it(store):
    put = letter(W1, SourceUnavailable("HTTP 503 from the API"))
    store.put(put)
    assert store.depth() == 1
    assert store.pending(10) == [put]
    assert store.pending(10) == [put]
    (stored,) = store.all()
    assert (stored.letter, stored.replayed_at) == (put, None)
    assert (put.wallet, put.error_class, put.error) == (W1, "SourceUnavailable", "HTTP 503 from the API")


def test_the_same_failure_twice_is_one_letter_and_a_replayed_one_fails_again_as_pending(store):
    first = letter(W1, SourceUnavailable("HTTP 503 from the API"))
    store.put(first)
    store.put(letter(W1, SourceUnavailable("HTTP 502 from the API")))  # same message, same class
    assert store.depth() == 1 and store.pending(10)[0].error == "HTTP 502 from the API"
    store.mark_replayed(store.pending(10))
    assert (store.depth(), store.pending(10)) == (0, [])
    assert store.all()[0].replayed_at == NOW
    store.put(first)
    assert store.depth() == 1 and store.all()[0].replayed_at is None


def test_pending_filters_by_error_class_and_wallet(store):
    store.put(letter(W1, SourceUnavailable("HTTP 503")))
    store.put(letter(W2, InvalidWallet("not a wallet")))
    assert [x.wallet for x in store.pending(10, error_class="InvalidWallet")] == [W2]
    assert [x.wallet for x in store.pending(10, wallet=W1)] == [W1]
    assert store.pending(10, error_class="InvalidWallet", wallet=W1) == []
    assert len(store.pending(1)) == 1


def test_replay_republishes_only_the_matching_letters_and_keeps_the_rest(store):
    store.put(letter(W1, SourceUnavailable("HTTP 503")))
    store.put(letter(W2, InvalidWallet("not a wallet")))
    bus = Bus(store)
    result = replay_dead_letters(
        dead_letters=store,
        publisher=bus,
        warehouse=None,
        clock=FakeClock(),
        lease_seconds=3600,
        error_class="SourceUnavailable",
    )
    assert [r.wallet for r in result.replayed] == [W1]
    delivery = bus.get(Topic.WALLETS, timeout=0)
    assert delivery is not None and bus.get(Topic.WALLETS, timeout=0) is None
    assert delivery.data == WalletTask(run_id="r1", wallet=W1).encode()
    assert delivery.attributes == WalletTask(run_id="r1", wallet=W1).attributes()  # the reason attributes stripped
    bus.settle(delivery, DONE)
    assert [(x.wallet, x.error_class) for x in store.pending(10)] == [(W2, "InvalidWallet")]


@pytest.mark.emulators
def test_letters_on_the_dead_letter_topics_are_collected_into_the_store_whole(emulator_stack, tmp_path, monkeypatch):
    """Both ways a letter reaches the topic: a service's put (with its reason) and Pub/Sub's own forward
    after the last delivery attempt (no reason but the count)."""
    if emulator_stack.pubsub_skip_reason:
        pytest.fail(emulator_stack.pubsub_skip_reason)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator_stack.pubsub_host_port)
    from tests.gcp.pipeline import PULL, Topology

    topology = Topology()
    try:
        inbox = PubSubDeadLetterInbox(
            topology.subscriber, topology.project, load_resources().dead_letter_subscriptions()
        )
        put = letter(W1, InvalidWallet("not a wallet"))
        PubSubDeadLetterSink(topology.publisher()).put(put)
        task = WalletTask(run_id="r1", wallet=W2)
        topology.publisher().publish(Topic.WALLETS, task.encode(), task.attributes())
        for _ in range(5):  # every delivery nacked: after the 5th, Pub/Sub forwards it to the dead-letter topic
            (received,) = topology.pull(PULL[Topic.WALLETS]) or topology.pull(PULL[Topic.WALLETS])
            topology.nack(PULL[Topic.WALLETS], [received.ack_id])
        store = SqlDeadLetters(duckdb_twin(tmp_path).warehouse, FakeClock(start=0, wall=NOW))
        store.warehouse.create_schema()
        assert collect_dead_letters(inbox, store) == 2
        got = {x.wallet: x for x in store.pending(10)}
        assert got[W1] == put
        forwarded = got[W2]
        assert (forwarded.topic, forwarded.error_class, forwarded.attempts) == (Topic.WALLETS, "MaxDeliveryAttempts", 5)
        assert forwarded.data == task.encode().decode() and forwarded.attributes == task.attributes()
        assert inbox.pull(10) == []  # acked once stored
    finally:
        topology.close()


class FailingPublisher:
    """Publishes until told to fail (as a Pub/Sub outage would)."""

    def __init__(self, inner, succeed: int) -> None:
        self.inner, self.succeed = inner, succeed

    def publish(self, topic, data, attributes):
        if self.succeed == 0:
            raise TransientError(f"publish to {topic} failed: 503 unavailable")
        self.succeed -= 1
        return self.inner.publish(topic, data, attributes)


def test_a_letter_whose_republish_fails_stays_pending(store):
    wallets = ["0x" + c * 40 for c in "abc"]
    for w in wallets:
        store.put(letter(w, InvalidWallet("bad")))
    bus = Bus(store)
    with pytest.raises(TransientError):
        replay_dead_letters(
            dead_letters=store, publisher=FailingPublisher(bus, 1), warehouse=None, clock=FakeClock(), lease_seconds=60
        )
    republished = bus.get(Topic.WALLETS, timeout=0)
    assert republished is not None
    assert sorted(x.wallet for x in store.pending(10)) == sorted(set(wallets) - {republished.attributes["wallet"]})
