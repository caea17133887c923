"""PubSubPublisher and the dead-letter inbox with the real google-cloud-pubsub clients on the project's
Pub/Sub emulator: what a publish promises when it returns, how publishes are batched, which error
class a failure becomes, and that a dead letter leaves its subscription only once the store holds it."""

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
from shared.adapters.gcp.pubsub import PubSubDeadLetterSink, PubSubPublisher
from shared.core.errors import InvalidWallet, SystemicError, TransientError
from shared.core.messages import DeadLetter, WalletTask
from shared.handlers.replay import collect_dead_letters
from shared.ports.publisher import Topic
from shared.resources import load_resources
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
    message_id = topology.publisher().publish(Topic.WALLETS, message.encode(), message.attributes())
    (received,) = pull_now(topology, PULL[Topic.WALLETS])  # no waiting: it is there when publish returns
    assert received.message.message_id == message_id
    assert received.message.data == message.encode()
    assert dict(received.message.attributes) == {"v": "1", "type": "WalletTask", "run_id": "r1", "wallet": W[0]} | {
        "part": "3"
    }


def test_publishes_from_one_thread_go_one_per_request_in_call_order_without_an_ordering_key(topology, emulator_stack):
    recorder = PublishRecorder()
    client = recorded_client(emulator_stack.pubsub_host_port, recorder)
    publisher = PubSubPublisher(client, topology.project, load_resources().topic_names())
    try:
        ids = [publisher.publish(Topic.WALLETS, task(w).encode(), task(w).attributes()) for w in W]
    finally:
        client.stop()
    assert recorder.batches == [1] * len(W)  # each call waits for its own message before the next starts
    received = pull_now(topology, PULL[Topic.WALLETS])
    assert [r.message.message_id for r in received] == ids
    assert {r.message.ordering_key for r in received} == {""}  # the pipeline never relies on order


def test_concurrent_publishes_share_requests_and_each_returns_with_its_own_message_id(topology, emulator_stack):
    recorder = PublishRecorder()
    # The client holds a batch open up to max_latency for more messages; the blocking publishes of the
    # threads started together land in it, and each call returns once that request is answered.
    client = recorded_client(emulator_stack.pubsub_host_port, recorder, max_messages=100, max_latency=1.0)
    publisher = PubSubPublisher(client, topology.project, load_resources().topic_names())
    start = threading.Barrier(len(W))

    def send(wallet: str) -> str:
        start.wait()
        return publisher.publish(Topic.WALLETS, task(wallet).encode(), task(wallet).attributes())

    try:
        with ThreadPoolExecutor(len(W)) as pool:
            ids = list(pool.map(send, W))
    finally:
        client.stop()
    assert sum(recorder.batches) == len(W) and len(recorder.batches) < len(W)  # batched
    assert len(set(ids)) == len(W)
    received = pull_now(topology, PULL[Topic.WALLETS])
    assert {r.message.message_id: r.message.attributes["wallet"] for r in received} == dict(zip(ids, W, strict=True))


def test_publishing_to_a_topic_that_does_not_exist_is_a_systemic_error(topology):
    """resources.yaml names a topic the project does not have (Terraform not applied, say)."""
    publisher = PubSubPublisher(topology.publisher_client, topology.project, {Topic.WALLETS: "no-such-topic"})
    with pytest.raises(SystemicError, match="no-such-topic"):
        publisher.publish(Topic.WALLETS, b"{}", {"v": "1"})


def test_an_unreachable_pubsub_is_a_transient_error(monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"{HOST}:{free_port()}")  # nothing listens there
    # The client's own retry gives up quickly here, so no background retry outlives the test.
    retry = gretry.Retry(initial=0.1, maximum=0.5, timeout=2.0)
    client = pubsub_v1.PublisherClient(publisher_options=pubsub_v1.types.PublisherOptions(retry=retry, timeout=2.0))
    try:
        with pytest.raises(TransientError, match="publish to wallets failed"):
            PubSubPublisher(client, "nowhere", load_resources().topic_names(), timeout=1.0).publish(
                Topic.WALLETS, b"{}", {"v": "1"}
            )
    finally:
        client.stop()


# -- the dead-letter sink and inbox ---------------------------------------------------------------------


class BrokenStore:
    """A dead-letter store that cannot be written (the warehouse is down)."""

    def put(self, letter: DeadLetter) -> None:
        raise TransientError("the warehouse is down")


def test_a_letter_stays_on_its_subscription_until_the_store_holds_it(topology):
    """The inbox is acked only after the store took the letters: a failed collect loses none."""
    letter = DeadLetter.of(Topic.WALLETS, task(W[0]).encode(), InvalidWallet("bad"), attributes=task(W[0]).attributes())
    PubSubDeadLetterSink(topology.publisher()).put(letter)
    topology.subscriber.update_subscription(  # a short lease, so the letter the failed collect held comes back soon
        request={
            "subscription": {"name": topology.path(DEAD), "ack_deadline_seconds": 1},
            "update_mask": {"paths": ["ack_deadline_seconds"]},
        }
    )
    inbox = topology.inbox()
    with pytest.raises(TransientError):
        collect_dead_letters(inbox, BrokenStore())  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    held = []
    while not held and time.monotonic() < deadline:
        held = inbox.pull(10)
    assert [h.letter for h in held] == [letter]
