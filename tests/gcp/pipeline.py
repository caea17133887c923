"""The pipeline on the emulator stack, for the end-to-end tests.

- `Topology`: the topics of infra/resources.yaml in a project of their own on the Pub/Sub emulator,
  with the same dead-letter policies, but as pull subscriptions so a test can be the push endpoint:
  it pulls a message, calls the handler, and acks (2xx) or nacks (anything else), as the services do.
- `Pipeline`: the handlers wired to PubSubPublisher, GcsObjectStore and BigQueryWarehouse, and the
  loop that drains the `wallets` and `files` subscriptions.
- `verify_bigquery`: BigQuery's `trades` read back through the client and compared with the
  simulator's ground truth as a multiset on every source field (emulators/truth.py, on an in-memory DuckDB).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import duckdb
from google.cloud import bigquery, pubsub_v1
from google.cloud.bigquery import ArrayQueryParameter

from emulators.dome.universe import DOME_FIELDS
from emulators.truth import Verification, verify_dome
from shared import delivery
from shared.adapters.gcp.bigquery import BigQueryWarehouse
from shared.adapters.gcp.pubsub import PubSubDeadLetterInbox, PubSubDeadLetterSink, PubSubPublisher
from shared.adapters.sql.deadletters import SqlDeadLetters
from shared.core.messages import FileReady, WalletTask, decode
from shared.delivery import Received
from shared.handlers.fetch import FetchBudget, fetch
from shared.handlers.load import LoadResult, load
from shared.handlers.replay import collect_dead_letters
from shared.ports.clock import Clock
from shared.ports.objectstore import ObjectStore
from shared.ports.publisher import Topic
from shared.ports.source import TradeSource
from shared.resources import load_resources

# Pull stand-ins for the push subscriptions (same topic, ack deadline and dead-letter policy).
PULL = {Topic.WALLETS: "wallets-pull", Topic.FILES: "files-pull"}
# Redelivery after a nack: the resources' 10 s minimum back-off, scaled down so tests do not wait.
TEST_BACKOFF = (timedelta(milliseconds=50), timedelta(milliseconds=200))


class Topology:
    """Topics and subscriptions of infra/resources.yaml under `project` on the emulator."""

    def __init__(self, project: str | None = None) -> None:
        self.project = project or f"t-{uuid.uuid4().hex[:12]}"
        self.publisher_client = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        resources = load_resources()
        for topic in resources.topics:
            self.publisher_client.create_topic(name=self.topic_path(topic))
        for spec in resources.subscriptions:
            name = PULL.get(Topic(spec.topic), spec.name) if spec.push_service else spec.name
            request: dict[str, Any] = {
                "name": self.path(name),
                "topic": self.topic_path(spec.topic),
                "ack_deadline_seconds": spec.ack_deadline_seconds,
            }
            if spec.dead_letter_topic:
                request["dead_letter_policy"] = {
                    "dead_letter_topic": self.topic_path(spec.dead_letter_topic),
                    "max_delivery_attempts": spec.max_delivery_attempts,
                }
                request["retry_policy"] = {"minimum_backoff": TEST_BACKOFF[0], "maximum_backoff": TEST_BACKOFF[1]}
            self.subscriber.create_subscription(request=request)

    def topic_path(self, topic: str) -> str:
        return self.publisher_client.topic_path(self.project, topic)

    def path(self, subscription: str) -> str:
        return self.subscriber.subscription_path(self.project, subscription)

    def pull(self, subscription: str, max_messages: int = 100) -> list[Any]:
        """What is due now (the emulator waits up to 0.5 s for a first message)."""
        response = self.subscriber.pull(
            request={"subscription": self.path(subscription), "max_messages": max_messages}, timeout=10
        )
        return list(response.received_messages)

    def drain(self, subscription: str) -> list[Any]:
        """Pull and ack everything on `subscription`."""
        out = []
        while batch := self.pull(subscription):
            self.ack(subscription, [m.ack_id for m in batch])
            out += batch
        return out

    def ack(self, subscription: str, ack_ids: list[str]) -> None:
        if ack_ids:
            self.subscriber.acknowledge(request={"subscription": self.path(subscription), "ack_ids": ack_ids})

    def nack(self, subscription: str, ack_ids: list[str]) -> None:
        if ack_ids:
            self.subscriber.modify_ack_deadline(
                request={"subscription": self.path(subscription), "ack_ids": ack_ids, "ack_deadline_seconds": 0}
            )

    def publisher(self, timeout: float = 30.0) -> PubSubPublisher:
        return PubSubPublisher(self.publisher_client, self.project, load_resources().topic_names(), timeout=timeout)

    def inbox(self) -> PubSubDeadLetterInbox:
        return PubSubDeadLetterInbox(self.subscriber, self.project, load_resources().dead_letter_subscriptions())

    def close(self) -> None:
        self.publisher_client.stop()
        with contextlib.suppress(Exception):
            self.publisher_client.transport.close()
        self.subscriber.close()


@dataclass
class DriveLog:
    """What one drive did: every FileReady seen (in arrival order) and how deliveries ended."""

    files: list[FileReady] = field(default_factory=list)
    fetches: int = 0
    nacked_tasks: int = 0
    load_batches: int = 0
    loads: list[LoadResult] = field(default_factory=list)


@dataclass
class Pipeline:
    topology: Topology
    source: TradeSource
    store: ObjectStore
    warehouse: BigQueryWarehouse
    clock: Clock
    budget: FetchBudget
    publisher: PubSubPublisher = field(init=False)
    dead_letters: PubSubDeadLetterSink = field(init=False)  # the fetcher's and the loader's
    letters: SqlDeadLetters = field(init=False)  # the dispatcher's table

    def __post_init__(self) -> None:
        self.publisher = self.topology.publisher()
        self.dead_letters = PubSubDeadLetterSink(self.publisher)
        self.letters = SqlDeadLetters(self.warehouse, self.clock)

    def collect(self) -> int:
        """What the dispatcher does first on every call: letters on the dead-letter topics into its table."""
        return collect_dead_letters(self.topology.inbox(), self.letters)

    def drive(self, *, load_files: bool = True, batch_files: int = 10) -> DriveLog:
        """Serve `wallets` and `files` the way the fetcher and the loader serve their pushes, until
        neither has anything due. With `load_files=False`, FileReady messages are collected and acked
        without loading (a test then delivers them itself)."""
        log = DriveLog()
        while True:
            tasks = self.topology.pull(PULL[Topic.WALLETS], 10)
            for received in tasks:
                self._fetch_one(received, log)
            files = self.topology.pull(PULL[Topic.FILES], batch_files)
            if files:
                self._load_batch(files, log, load_files)
            if not tasks and not files:
                return log

    def _fetch_one(self, received: Any, log: DriveLog) -> None:
        """What the fetcher service does with one push: the delivery policy, then 2xx (ack) or not (nack)."""
        message = Received(Topic.WALLETS, received.message.data, dict(received.message.attributes))
        budget = self.budget

        def work() -> None:
            task = decode(WalletTask, message.data)
            fetch(task, source=self.source, store=self.store, publisher=self.publisher, clock=self.clock, budget=budget)

        verdict = delivery.run(work)
        delivery.settle(verdict, message, self.dead_letters)
        if not verdict.acked:
            log.nacked_tasks += 1
            self.topology.nack(PULL[Topic.WALLETS], [received.ack_id])
            return
        log.fetches += 1
        self.topology.ack(PULL[Topic.WALLETS], [received.ack_id])

    def _load_batch(self, received: list[Any], log: DriveLog, load_files: bool) -> None:
        messages = [decode(FileReady, r.message.data) for r in received]
        log.files += messages
        if load_files:
            result = self.load(messages)
            log.loads.append(result)
            log.load_batches += 1
            assert not result.failed, result.failed
        self.topology.ack(PULL[Topic.FILES], [r.ack_id for r in received])

    def load(self, messages: list[FileReady]) -> LoadResult:
        return load(messages, warehouse=self.warehouse, store=self.store, clock=self.clock)


# -- reading BigQuery back ------------------------------------------------------------------------------


def rows(warehouse: BigQueryWarehouse, sql: str) -> list[dict[str, Any]]:
    return [dict(r.items()) for r in warehouse.client.query(sql).result()]


def table(warehouse: BigQueryWarehouse, name: str) -> str:
    return f"`{warehouse.project}.{warehouse.dataset}.{name}`"


def trades_snapshot(warehouse: BigQueryWarehouse) -> list[dict[str, Any]]:
    """Per wallet: rows, distinct keys and the span of `ingested_at`. MERGE only ever inserts, so an equal
    snapshot after a reload means no row was added (a re-inserted row would carry the reload's time)."""
    return rows(
        warehouse,
        f"""SELECT wallet_address, COUNT(*) AS n, COUNT(DISTINCT trade_key) AS keys,
                   MIN(ingested_at) AS first_in, MAX(ingested_at) AS last_in
            FROM {table(warehouse, "trades")} GROUP BY wallet_address ORDER BY wallet_address""",
    )


def checkpoints(warehouse: BigQueryWarehouse) -> dict[str, dict[str, Any]]:
    return {r["wallet_address"]: r for r in rows(warehouse, f"SELECT * FROM {table(warehouse, 'checkpoints')}")}


def verify_bigquery(warehouse: BigQueryWarehouse, truth_path: str, wallets: list[str]) -> Verification:
    """BigQuery's trades of `wallets` against the ground truth, row for row on every field the API sends
    (no key of ours trusted): the rows come back through the BigQuery client into an in-memory DuckDB."""
    columns = ", ".join(f"`{c}`" for c in ("wallet_address", *DOME_FIELDS))
    job = warehouse.client.query(
        f"SELECT {columns} FROM {table(warehouse, 'trades')} WHERE wallet_address IN UNNEST(@wallets)",
        job_config=bigquery.QueryJobConfig(query_parameters=[ArrayQueryParameter("wallets", "STRING", wallets)]),
    )
    arrow = job.result(page_size=50_000).to_arrow(create_bqstorage_client=False)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("bq_trades", arrow)
        con.execute("CREATE TABLE trades AS SELECT * FROM bq_trades")
        return verify_dome(con, truth_path, wallets)
