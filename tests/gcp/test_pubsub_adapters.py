"""PubSubPublisher and PubSubDeadLetters with the real google-cloud-pubsub clients on the project's
Pub/Sub emulator: what a publish promises when it returns, how publishes are batched, which error
class a failure becomes, and that a dead letter leaves its subscription only once it is republished."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.api_core import retry as gretry
from google.cloud import pubsub_v1
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

from emulators.stack import HOST, free_port
from tests.fakes import FakeClock
from shared.core.errors import SystemicError, TransientError
from shared.adapters.gcp.pubsub import PubSubPublisher
from shared.handlers.replay import replay_dead_letters
from shared.core.messages import DeadLetter, WalletTask
from shared.ports.publisher import WALLETS
from tests.gcp.pipeline import PULL, Topology

pytestmark = pytest.mark.emulators
DEAD = "wallets-dead-letter-pull"
W = ["0x" + c * 40 for c in "abcdef"]


@pytest.fixture
def topology(emulator_stack, monkeypatch):
    if emulator_stack.pubsub_skip_reason:
        pytest.skip(emulator_stack.pubsub_skip_reason)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator_stack.pubsub_host_port)
    made = Topology()
    yield made
    made.close()


def pull_now(topology: Topology, subscription: str, max_messages: int = 100) -> list:
    """One Pull that does not wait: what the subscription holds at this instant."""
    response = topology.subscriber.pull(
        request={"subscription": topology.path(subscription), "max_messages": max_messages, "return_immediately": True}
    )
    return list(response.received_messages)


class PublishRecorder(grpc.UnaryUnaryClientInterceptor):
    """Counts the messages in each Publish RPC the client sends (the client's batches)."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def intercept_unary_unary(self, continuation, client_call_details, request):
        if client_call_details.method.endswith("/Publish"):
            self.batches.append(len(request.messages))
        return continuation(client_call_details, request)


def recorded_client(host_port: str, recorder: PublishRecorder, **batch) -> pubsub_v1.PublisherClient:
    channel = grpc.intercept_channel(grpc.insecure_channel(host_port), recorder)
    return pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(**batch), transport=PublisherGrpcTransport(channel=channel)
    )


def task(wallet: str, part: int = 0) -> WalletTask:
    return WalletTask(run_id="r1", wallet=wallet, part=part)


# -- PubSubPublisher ----------------------------------------------------------------------------------


def test_a_publish_returns_once_the_message_is_stored_and_it_arrives_with_its_data_and_attributes(topology):
    message = task(W[0], part=3)
    message_id = topology.publisher().publish(WALLETS, message.encode(), message.attributes())
    (received,) = pull_now(topology, PULL[WALLETS])  # no waiting: it is there when publish returns
    assert received.message.message_id == message_id
    assert received.message.data == message.encode()
    assert dict(received.message.attributes) == {"v": "1", "type": "WalletTask", "run_id": "r1", "wallet": W[0]} | {
        "part": "3"
    }


def test_publishes_from_one_thread_go_one_per_request_in_call_order_without_an_ordering_key(topology, emulator_stack):
    recorder = PublishRecorder()
    client = recorded_client(emulator_stack.pubsub_host_port, recorder)
    publisher = PubSubPublisher(client, topology.project)
    try:
        ids = [publisher.publish(WALLETS, task(w).encode(), task(w).attributes()) for w in W]
    finally:
        client.stop()
    assert recorder.batches == [1] * len(W)  # each call waits for its own message before the next starts
    received = pull_now(topology, PULL[WALLETS])
    assert [r.message.message_id for r in received] == ids
    assert {r.message.ordering_key for r in received} == {""}  # the pipeline never relies on order


def test_concurrent_publishes_share_requests_and_each_returns_with_its_own_message_id(topology, emulator_stack):
    recorder = PublishRecorder()
    # The client holds a batch open up to max_latency for more messages; the blocking publishes of the
    # threads started together land in it, and each call returns once that request is answered.
    client = recorded_client(emulator_stack.pubsub_host_port, recorder, max_messages=100, max_latency=1.0)
    publisher = PubSubPublisher(client, topology.project)
    start = threading.Barrier(len(W))

    def send(wallet: str) -> str:
        start.wait()
        return publisher.publish(WALLETS, task(wallet).encode(), task(wallet).attributes())

    try:
        with ThreadPoolExecutor(len(W)) as pool:
            ids = list(pool.map(send, W))
    finally:
        client.stop()
    assert sum(recorder.batches) == len(W) and len(recorder.batches) < len(W)  # batched
    assert len(set(ids)) == len(W)
    received = pull_now(topology, PULL[WALLETS])
    assert {r.message.message_id: r.message.attributes["wallet"] for r in received} == dict(zip(ids, W, strict=True))


def test_publishing_to_a_topic_that_does_not_exist_is_a_systemic_error(topology):
    with pytest.raises(SystemicError, match="no-such-topic"):
        topology.publisher().publish("no-such-topic", b"{}", {"v": "1"})


def test_an_unreachable_pubsub_is_a_transient_error(monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"{HOST}:{free_port()}")  # nothing listens there
    # The client's own retry gives up quickly here, so no background retry outlives the test.
    retry = gretry.Retry(initial=0.1, maximum=0.5, timeout=2.0)
    client = pubsub_v1.PublisherClient(publisher_options=pubsub_v1.types.PublisherOptions(retry=retry, timeout=2.0))
    try:
        with pytest.raises(TransientError, match="publish to wallets failed"):
            PubSubPublisher(client, "nowhere", timeout=1.0).publish(WALLETS, b"{}", {"v": "1"})
    finally:
        client.stop()


# -- PubSubDeadLetters ----------------------------------------------------------------------------------


def letter(wallet: str, error_class: str = "InvalidWallet") -> DeadLetter:
    t = task(wallet)
    return DeadLetter(
        topic=WALLETS,
        data=t.encode().decode(),
        attributes=t.attributes(),
        error_class=error_class,
        error=f"{error_class} for {wallet}",
        wallet=wallet,
    )


def test_a_dead_letter_put_by_a_service_is_pulled_back_with_its_reason_and_depth_leaves_it_there(topology):
    dead_letters = topology.dead_letters()
    dead_letters.put(letter(W[0]))
    assert dead_letters.depth() == 1
    assert dead_letters.depth() == 1  # depth leases and releases at once: nothing is consumed
    (held,) = dead_letters.pull(10)
    assert held.letter.topic == WALLETS and held.letter.wallet == W[0]
    assert (held.letter.error_class, held.letter.error) == ("InvalidWallet", f"InvalidWallet for {W[0]}")
    assert held.letter.data == task(W[0]).encode().decode()


def test_a_message_nacked_max_delivery_attempts_times_is_forwarded_and_pulled_as_a_dead_letter(topology):
    message = task(W[1])
    topology.publisher().publish(WALLETS, message.encode(), message.attributes())
    deliveries = 0
    while received := topology.pull(PULL[WALLETS]):  # the 5 attempts of infra/resources.yaml, all nacked
        deliveries += len(received)
        topology.nack(PULL[WALLETS], [r.ack_id for r in received])
    assert deliveries == 5
    (held,) = topology.dead_letters().pull(10)
    assert held.letter.topic == WALLETS and held.letter.wallet == W[1]
    assert (held.letter.error_class, held.letter.attempts) == ("MaxDeliveryAttempts", 5)
    assert held.letter.data == message.encode().decode()


def test_replay_republishes_the_original_and_only_then_removes_the_letter(topology):
    dead_letters = topology.dead_letters()
    dead_letters.put(letter(W[0]))
    dead_letters.put(letter(W[1], error_class="MalformedPage"))

    result = replay_dead_letters(
        dead_letters=dead_letters,
        publisher=topology.publisher(),
        warehouse=None,
        clock=FakeClock(),
        error_class="InvalidWallet",
    )

    assert [r.wallet for r in result.replayed] == [W[0]]
    (replayed,) = topology.drain(PULL[WALLETS])
    assert replayed.message.data == task(W[0]).encode()
    assert dict(replayed.message.attributes) == task(W[0]).attributes()  # our reason attributes stripped
    (left,) = dead_letters.pull(10)  # the other class was released at once, untouched
    assert (left.letter.wallet, left.letter.error_class) == (W[1], "MalformedPage")


class FailingPublisher:
    """Publishes through the real adapter until told to fail (as a Pub/Sub outage would)."""

    def __init__(self, inner: PubSubPublisher, succeed: int) -> None:
        self.inner, self.succeed = inner, succeed

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        if self.succeed == 0:
            raise TransientError(f"publish to {topic} failed: 503 unavailable")
        self.succeed -= 1
        return self.inner.publish(topic, data, attributes)


def test_a_letter_whose_republish_fails_stays_on_the_dead_letter_subscription(topology):
    # A short ack deadline, so the letters the failed replay held come back within the test.
    topology.subscriber.update_subscription(
        request={
            "subscription": {"name": topology.path(DEAD), "ack_deadline_seconds": 1},
            "update_mask": {"paths": ["ack_deadline_seconds"]},
        }
    )
    dead_letters = topology.dead_letters()
    for wallet in W[:3]:
        dead_letters.put(letter(wallet))

    with pytest.raises(TransientError):
        replay_dead_letters(
            dead_letters=dead_letters,
            publisher=FailingPublisher(topology.publisher(), succeed=1),
            warehouse=None,
            clock=FakeClock(),
        )

    (republished,) = topology.drain(PULL[WALLETS])
    first = republished.message.attributes["wallet"]
    remaining = wait_for_letters(dead_letters, 2)
    assert sorted(remaining) == sorted(set(W[:3]) - {first})


def wait_for_letters(dead_letters, n: int, limit: float = 15.0) -> list[str]:
    """Pull until `n` letters are held (their earlier leases expire first); release them again."""
    deadline = time.monotonic() + limit
    held = []
    while time.monotonic() < deadline:
        held = dead_letters.pull(10)
        dead_letters.release([h.handle for h in held])
        if len(held) >= n:
            break
    return [h.letter.wallet for h in held]
