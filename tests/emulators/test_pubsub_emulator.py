"""The project's Pub/Sub emulator, driven only through the real client library and real HTTP endpoints."""

from __future__ import annotations

import base64
import itertools
import json
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.types import BatchSettings
from google.protobuf import field_mask_pb2

from emulators.pubsub.server import RunningEmulator, start_emulator

PROJECT = "emulator-test"
REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0
DEAD_LETTER_ATTRIBUTES = {
    "CloudPubSubDeadLetterSourceDeliveryCount",
    "CloudPubSubDeadLetterSourceSubscription",
    "CloudPubSubDeadLetterSourceSubscriptionProject",
    "CloudPubSubDeadLetterSourceTopicPublishTime",
}


# Helpers


@dataclass(frozen=True)
class PushRequest:
    at: float
    headers: dict[str, str]
    body: dict[str, Any]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a slow handler answering after the emulator gave up hits a closed socket


class PushEndpoint:
    """A real HTTP push endpoint: records each request and answers scripted statuses and delays."""

    def __init__(self, statuses: Sequence[int] = (204,), delays: Sequence[float] = ()) -> None:
        self.requests: list[PushRequest] = []
        self._statuses, self._delays = list(statuses), list(delays)
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, delay = endpoint._record(PushRequest(time.monotonic(), dict(self.headers), body))
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/push"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def _record(self, request: PushRequest) -> tuple[int, float]:
        with self._lock:
            n = len(self.requests)
            self.requests.append(request)
        delay = self._delays[n] if n < len(self._delays) else 0.0
        return self._statuses[min(n, len(self._statuses) - 1)], delay

    def wait_for(self, count: int) -> list[PushRequest]:
        wait_until(lambda: len(self.requests) >= count, f"{count} push requests")
        return self.requests[:count]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def pull_until(subscriber: pubsub_v1.SubscriberClient, subscription: str, count: int) -> list[Any]:
    """Pull (without acking) until `count` messages arrived."""
    got: list[Any] = []
    end = time.monotonic() + WAIT
    while len(got) < count:
        assert time.monotonic() < end, f"only {len(got)} of {count} messages pulled"
        response = subscriber.pull(request={"subscription": subscription, "max_messages": 100}, timeout=5)
        got.extend(response.received_messages)
    return got


def pull_nothing(subscriber: pubsub_v1.SubscriberClient, subscription: str) -> None:
    response = subscriber.pull(request={"subscription": subscription, "max_messages": 100}, timeout=5)
    assert list(response.received_messages) == []


# Fixtures


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator() as running:
        yield running


@pytest.fixture
def emulator_env(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host_port)
    return emulator


@pytest.fixture
def publisher(emulator_env: RunningEmulator) -> Iterator[pubsub_v1.PublisherClient]:
    client = pubsub_v1.PublisherClient(batch_settings=BatchSettings(max_messages=25, max_latency=0.05))
    yield client
    client.stop()
    client.transport.close()


@pytest.fixture
def subscriber(emulator_env: RunningEmulator) -> Iterator[pubsub_v1.SubscriberClient]:
    with pubsub_v1.SubscriberClient() as client:
        yield client


@pytest.fixture
def name() -> Callable[[str], str]:
    """Unique resource ids, so tests sharing the module's emulator never collide."""
    suffix = uuid.uuid4().hex[:8]
    return lambda base: f"{base}-{suffix}"


@pytest.fixture
def topic(publisher: pubsub_v1.PublisherClient, name: Callable[[str], str]) -> str:
    return publisher.create_topic(name=f"projects/{PROJECT}/topics/{name('topic')}").name


@pytest.fixture
def endpoint_factory() -> Iterator[Callable[..., PushEndpoint]]:
    endpoints: list[PushEndpoint] = []

    def make(statuses: Sequence[int] = (204,), delays: Sequence[float] = ()) -> PushEndpoint:
        endpoints.append(PushEndpoint(statuses, delays))
        return endpoints[-1]

    yield make
    for endpoint in endpoints:
        endpoint.close()


def subscription_path(name: Callable[[str], str], base: str = "sub") -> str:
    return f"projects/{PROJECT}/subscriptions/{name(base)}"


# Resources


def test_topics_are_created_read_listed_and_deleted(publisher, name):
    path = f"projects/{PROJECT}/topics/{name('lifecycle')}"

    publisher.create_topic(name=path)

    assert publisher.get_topic(topic=path).name == path
    assert path in [t.name for t in publisher.list_topics(project=f"projects/{PROJECT}")]
    with pytest.raises(exceptions.AlreadyExists):
        publisher.create_topic(name=path)
    publisher.delete_topic(topic=path)
    with pytest.raises(exceptions.NotFound):
        publisher.get_topic(topic=path)
    with pytest.raises(exceptions.NotFound):
        publisher.delete_topic(topic=path)


def test_subscriptions_are_created_read_updated_listed_and_deleted(publisher, subscriber, topic, name):
    path = subscription_path(name)

    created = subscriber.create_subscription(name=path, topic=topic)

    assert created.ack_deadline_seconds == 10
    assert created.message_retention_duration == timedelta(days=7)
    assert subscriber.get_subscription(subscription=path).topic == topic
    assert path in [s.name for s in subscriber.list_subscriptions(project=f"projects/{PROJECT}")]
    assert list(publisher.list_topic_subscriptions(topic=topic)) == [path]
    updated = subscriber.update_subscription(
        subscription={"name": path, "ack_deadline_seconds": 30},
        update_mask=field_mask_pb2.FieldMask(paths=["ack_deadline_seconds"]),
    )
    assert updated.ack_deadline_seconds == 30
    with pytest.raises(exceptions.AlreadyExists):
        subscriber.create_subscription(name=path, topic=topic)
    with pytest.raises(exceptions.NotFound):
        subscriber.create_subscription(name=subscription_path(name, "orphan"), topic=f"{topic}-missing")
    subscriber.delete_subscription(subscription=path)
    with pytest.raises(exceptions.NotFound):
        subscriber.get_subscription(subscription=path)


def test_publishing_to_a_missing_topic_fails_with_not_found(publisher, name):
    future = publisher.publish(f"projects/{PROJECT}/topics/{name('missing')}", b"x")

    with pytest.raises(exceptions.NotFound):
        future.result(timeout=WAIT)


# Pull


def test_each_subscription_gets_every_message_published_after_it_was_created(publisher, subscriber, topic, name):
    first, second = subscription_path(name, "first"), subscription_path(name, "second")
    for path in (first, second):
        subscriber.create_subscription(name=path, topic=topic)
    publisher.publish(topic, b"before-third").result(timeout=WAIT)
    third = subscription_path(name, "third")
    subscriber.create_subscription(name=third, topic=topic)

    futures = [publisher.publish(topic, f"m{i}".encode(), index=str(i)) for i in range(120)]
    ids = [f.result(timeout=WAIT) for f in futures]

    assert len(set(ids)) == 120
    for path, expected in ((first, 121), (second, 121), (third, 120)):
        received = pull_until(subscriber, path, expected)
        assert len(received) == expected
        by_id = {r.message.message_id: r.message for r in received}
        assert all(by_id[i].data == f"m{n}".encode() for n, i in enumerate(ids))
        assert by_id[ids[7]].attributes["index"] == "7"
        subscriber.acknowledge(subscription=path, ack_ids=[r.ack_id for r in received])
        pull_nothing(subscriber, path)


def test_an_unacked_pulled_message_is_redelivered_after_its_ack_deadline(publisher, subscriber, topic, name):
    path = subscription_path(name)
    subscriber.create_subscription(name=path, topic=topic, ack_deadline_seconds=1)
    publisher.publish(topic, b"forgotten").result(timeout=WAIT)

    [first] = pull_until(subscriber, path, 1)
    [again] = pull_until(subscriber, path, 1)

    assert again.message.message_id == first.message.message_id
    assert again.ack_id != first.ack_id
    assert again.delivery_attempt == 0  # only counted with a dead-letter policy


def test_modify_ack_deadline_zero_redelivers_at_once(publisher, subscriber, topic, name):
    path = subscription_path(name)
    subscriber.create_subscription(name=path, topic=topic, ack_deadline_seconds=600)
    publisher.publish(topic, b"nacked").result(timeout=WAIT)
    [first] = pull_until(subscriber, path, 1)

    subscriber.modify_ack_deadline(subscription=path, ack_ids=[first.ack_id], ack_deadline_seconds=0)

    [again] = pull_until(subscriber, path, 1)
    assert again.message.message_id == first.message.message_id


def test_pull_counts_delivery_attempts_when_a_dead_letter_policy_is_set(publisher, subscriber, topic, name):
    dead_topic = publisher.create_topic(name=f"projects/{PROJECT}/topics/{name('dead')}").name
    path = subscription_path(name)
    subscriber.create_subscription(
        request={
            "name": path,
            "topic": topic,
            "dead_letter_policy": {"dead_letter_topic": dead_topic, "max_delivery_attempts": 5},
        }
    )
    publisher.publish(topic, b"counted").result(timeout=WAIT)

    attempts = []
    for _ in range(3):
        [received] = pull_until(subscriber, path, 1)
        attempts.append(received.delivery_attempt)
        subscriber.modify_ack_deadline(subscription=path, ack_ids=[received.ack_id], ack_deadline_seconds=0)

    assert attempts == [1, 2, 3]


def test_messages_older_than_the_retention_duration_are_dropped(publisher, subscriber, topic, name):
    path = subscription_path(name)
    subscriber.create_subscription(request={"name": path, "topic": topic, "message_retention_duration": {"seconds": 1}})
    publisher.publish(topic, b"stale").result(timeout=WAIT)

    time.sleep(1.2)

    pull_nothing(subscriber, path)


def test_streaming_pull_delivers_messages_and_takes_acks(publisher, subscriber, topic, name):
    path = subscription_path(name)
    subscriber.create_subscription(name=path, topic=topic)
    received: list[bytes] = []
    lock = threading.Lock()

    def callback(message: Any) -> None:
        with lock:
            received.append(message.data)
        message.ack()

    future = subscriber.subscribe(path, callback)
    try:
        for i in range(30):
            publisher.publish(topic, f"s{i}".encode())
        wait_until(lambda: len(received) >= 30, "30 streamed messages")
    finally:
        future.cancel()
        future.result(timeout=WAIT)

    assert sorted(received) == sorted(f"s{i}".encode() for i in range(30))
    pull_nothing(subscriber, path)


def test_streaming_pull_on_a_missing_subscription_fails_with_not_found(subscriber, name):
    future = subscriber.subscribe(subscription_path(name, "missing"), lambda message: message.ack())

    with pytest.raises(exceptions.NotFound):
        future.result(timeout=WAIT)


# Push


def test_push_acks_on_204_and_posts_the_wrapped_envelope(publisher, subscriber, topic, name, endpoint_factory):
    endpoint = endpoint_factory(statuses=[204])
    path = subscription_path(name)
    subscriber.create_subscription(name=path, topic=topic, push_config={"push_endpoint": endpoint.url})
    data = bytes(range(256))

    message_id = publisher.publish(topic, data, wallet="0xabc", kind="wallet").result(timeout=WAIT)

    [request] = endpoint.wait_for(1)
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    assert set(request.body) == {"message", "subscription"}  # no deliveryAttempt without a DLQ policy
    assert request.body["subscription"] == path
    message = request.body["message"]
    assert set(message) == {"data", "attributes", "messageId", "message_id", "publishTime", "publish_time"}
    assert base64.b64decode(message["data"]) == data
    assert message["attributes"] == {"wallet": "0xabc", "kind": "wallet"}
    assert message["messageId"] == message["message_id"] == message_id
    assert message["publishTime"] == message["publish_time"]
    assert message["publishTime"].endswith("Z") and "T" in message["publishTime"]
    time.sleep(0.5)
    assert len(endpoint.requests) == 1  # acked: never redelivered


def test_push_with_an_oidc_token_sends_an_unsigned_bearer_token(publisher, subscriber, topic, name, endpoint_factory):
    endpoint = endpoint_factory()
    path = subscription_path(name)
    oidc = {"service_account_email": "invoker@p.iam.gserviceaccount.com", "audience": "https://dispatcher"}
    subscriber.create_subscription(
        name=path, topic=topic, push_config={"push_endpoint": endpoint.url, "oidc_token": oidc}
    )

    publisher.publish(topic, b"authed").result(timeout=WAIT)

    [request] = endpoint.wait_for(1)
    scheme, token = request.headers["Authorization"].split(" ")
    header, claims, signature = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    assert scheme == "Bearer"
    assert decode(header)["alg"] == "none" and signature == ""
    assert decode(claims)["aud"] == "https://dispatcher"
    assert decode(claims)["email"] == "invoker@p.iam.gserviceaccount.com"


def test_push_failures_are_retried_with_growing_backoff_within_the_retry_policy(
    publisher, subscriber, topic, name, endpoint_factory
):
    minimum, maximum = 0.05, 0.4
    endpoint = endpoint_factory(statuses=[500, 500, 500, 500, 500, 204])
    path = subscription_path(name)
    subscriber.create_subscription(
        request={
            "name": path,
            "topic": topic,
            "push_config": {"push_endpoint": endpoint.url},
            "retry_policy": {"minimum_backoff": {"nanos": 50_000_000}, "maximum_backoff": {"nanos": 400_000_000}},
        }
    )

    publisher.publish(topic, b"flaky").result(timeout=WAIT)

    requests = endpoint.wait_for(6)
    assert len({r.body["message"]["messageId"] for r in requests}) == 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    assert all(gap >= minimum for gap in gaps), gaps
    assert all(gap <= maximum + 1.0 for gap in gaps), gaps  # generous slack: ordering, not timing
    assert all(later >= earlier - 0.05 for earlier, later in itertools.pairwise(gaps)), gaps
    assert gaps[-1] > gaps[0], gaps
    time.sleep(0.5)
    assert len(endpoint.requests) == 6  # the 204 acked it


def test_push_dead_letters_after_max_delivery_attempts(publisher, subscriber, topic, name, endpoint_factory):
    endpoint = endpoint_factory(statuses=[500])
    dead_topic = publisher.create_topic(name=f"projects/{PROJECT}/topics/{name('dead')}").name
    dead_sub = subscription_path(name, "dead-sub")
    subscriber.create_subscription(name=dead_sub, topic=dead_topic)
    sub_id = name("pushed")
    path = f"projects/{PROJECT}/subscriptions/{sub_id}"
    subscriber.create_subscription(
        request={
            "name": path,
            "topic": topic,
            "push_config": {"push_endpoint": endpoint.url},
            "retry_policy": {"minimum_backoff": {"nanos": 50_000_000}, "maximum_backoff": {"nanos": 100_000_000}},
            "dead_letter_policy": {"dead_letter_topic": dead_topic, "max_delivery_attempts": 3},
        }
    )

    publisher.publish(topic, b"poison", wallet="0xdead").result(timeout=WAIT)

    [dead] = pull_until(subscriber, dead_sub, 1)
    assert [r.body["deliveryAttempt"] for r in endpoint.requests] == [1, 2, 3]
    assert dead.message.data == b"poison"
    attributes = dict(dead.message.attributes)
    assert set(attributes) == {"wallet"} | DEAD_LETTER_ATTRIBUTES
    assert attributes["wallet"] == "0xdead"
    assert attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "3"
    assert attributes["CloudPubSubDeadLetterSourceSubscription"] == sub_id
    assert attributes["CloudPubSubDeadLetterSourceSubscriptionProject"] == PROJECT
    publish_time = endpoint.requests[0].body["message"]["publishTime"]
    assert attributes["CloudPubSubDeadLetterSourceTopicPublishTime"] == publish_time
    time.sleep(0.5)
    assert len(endpoint.requests) == 3  # the original was acked once dead-lettered


def test_push_slower_than_the_ack_deadline_is_a_nack(publisher, subscriber, topic, name, endpoint_factory):
    endpoint = endpoint_factory(statuses=[204], delays=[2.5])
    dead_topic = publisher.create_topic(name=f"projects/{PROJECT}/topics/{name('dead')}").name
    path = subscription_path(name)
    subscriber.create_subscription(
        request={
            "name": path,
            "topic": topic,
            "ack_deadline_seconds": 1,
            "push_config": {"push_endpoint": endpoint.url},
            "dead_letter_policy": {"dead_letter_topic": dead_topic, "max_delivery_attempts": 5},
        }
    )

    publisher.publish(topic, b"slow").result(timeout=WAIT)

    requests = endpoint.wait_for(2)
    assert [r.body["deliveryAttempt"] for r in requests] == [1, 2]
    assert requests[0].body["message"]["messageId"] == requests[1].body["message"]["messageId"]


def test_modify_push_config_switches_a_subscription_between_pull_and_push(
    publisher, subscriber, topic, name, endpoint_factory
):
    endpoint = endpoint_factory()
    path = subscription_path(name)
    subscriber.create_subscription(name=path, topic=topic)
    publisher.publish(topic, b"pulled").result(timeout=WAIT)
    [pulled] = pull_until(subscriber, path, 1)
    subscriber.acknowledge(subscription=path, ack_ids=[pulled.ack_id])

    subscriber.modify_push_config(subscription=path, push_config={"push_endpoint": endpoint.url})
    publisher.publish(topic, b"pushed").result(timeout=WAIT)
    [pushed] = endpoint.wait_for(1)
    subscriber.modify_push_config(subscription=path, push_config={})
    publisher.publish(topic, b"pulled-again").result(timeout=WAIT)

    assert base64.b64decode(pushed.body["message"]["data"]) == b"pushed"
    assert subscriber.get_subscription(subscription=path).push_config.push_endpoint == ""
    [again] = pull_until(subscriber, path, 1)
    assert again.message.data == b"pulled-again"
    assert len(endpoint.requests) == 1


# Standalone process


def test_the_cli_prints_a_ready_line_serves_and_exits_on_sigterm(monkeypatch, name):
    command = [sys.executable, "-m", "emulators.pubsub", "--host", "127.0.0.1", "--port", "0"]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], WAIT)
            assert ready, "no ready line"
            line = process.stdout.readline()
            assert "PUBSUB_EMULATOR_HOST=127.0.0.1:" in line
            monkeypatch.setenv("PUBSUB_EMULATOR_HOST", line.strip().split("=", 1)[1])
            with pubsub_v1.SubscriberClient() as subscriber:
                assert list(subscriber.list_subscriptions(project=f"projects/{PROJECT}")) == []
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=WAIT) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_a_busy_port_is_refused_and_stop_frees_it():
    running = start_emulator()
    port = running.port
    with pytest.raises(OSError):
        start_emulator(port=port)
    running.stop()
    running.stop()  # idempotent

    with start_emulator(port=port) as again:
        assert again.host_port == f"127.0.0.1:{port}"
