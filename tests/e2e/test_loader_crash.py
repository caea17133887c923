"""The loader killed with SIGKILL while a batch is open and again while one is being committed, then
every FileReady delivered a second time: BigQuery still holds each trade exactly once, none missing,
and every wallet is complete (design rules 1-5 across real processes and real redelivery)."""

from __future__ import annotations

import json

import pytest

from emulators.dome.config import SimConfig
from tests.e2e.pipeline import assert_exact, ground_truth, post, settled, status, wait_for

pytestmark = [pytest.mark.emulators, pytest.mark.slow]


@pytest.fixture(scope="module")
def cloud(start_cloud):
    # Two-second batches: the loader holds its push requests open that long before committing.
    return start_cloud(SimConfig(seed=17, size=8, whale_trades=3_000), LOADER_FLUSH_SECONDS="2")


@pytest.fixture
def tap(cloud):
    """A pull subscription on `files` next to the loader's push one: a copy of every FileReady."""
    subscriber, publisher = cloud.subscriber_client(), cloud.publisher_client()
    path = subscriber.subscription_path(cloud.config.project, "files-tap")
    subscriber.create_subscription(
        request={"name": path, "topic": publisher.topic_path(cloud.config.project, "files"), "ack_deadline_seconds": 60}
    )
    yield subscriber, publisher, path
    subscriber.close()
    publisher.transport.close()


def staging_tables(cloud) -> list[str]:
    client = cloud.stack.bigquery_client()
    try:
        return [t.table_id for t in client.list_tables(f"{cloud.config.project}.{cloud.config.staging_dataset}")]
    finally:
        client.close()


def drain(subscriber, path) -> list:
    messages = []
    while True:
        response = subscriber.pull(request={"subscription": path, "max_messages": 1000}, timeout=10)
        if not response.received_messages:
            return messages
        received = list(response.received_messages)
        messages += [m.message for m in received]
        subscriber.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id for m in received]})


def test_a_loader_killed_mid_batch_and_every_file_delivered_twice_leaves_no_duplicate_and_no_gap(cloud, tap, tmp_path):
    subscriber, publisher, path = tap
    truth = ground_truth(cloud, cloud.wallets, tmp_path)
    post(cloud, "/dispatch", {"mode": "backfill"})

    # 1. Killed while the first batch is filling: its push requests are open, nothing acknowledged.
    open_files = wait_for(cloud, "a FileReady at the loader", lambda: cloud.backlog("files-push"))
    cloud.kill("loader")
    assert open_files > 0
    cloud.restart("loader")

    # 2. Killed while a batch is being committed: its staging table exists between load and MERGE.
    committing = wait_for(cloud, "a batch in its commit", lambda: staging_tables(cloud), interval=0.02)
    cloud.kill("loader")
    cloud.restart("loader")

    first = wait_for(cloud, "every wallet complete", settled(cloud, complete=len(cloud.wallets)))
    assert committing and first["trades"] == sum(truth.values())
    assert_exact(cloud, truth)

    # 3. Every FileReady again, as a redelivering Pub/Sub might: same data, same attributes.
    copies = drain(subscriber, path)
    topic = publisher.topic_path(cloud.config.project, "files")
    for message in copies:
        publisher.publish(topic, message.data, **dict(message.attributes)).result(timeout=30)
    again = wait_for(cloud, "the copies loaded", settled(cloud, complete=len(cloud.wallets)))
    assert again["trades"] == first["trades"]
    assert_exact(cloud, truth)

    # Each part recorded once, and no FileReady was given up on.
    client = cloud.stack.bigquery_client()
    parts = f"`{cloud.config.project}.{cloud.config.dataset}.checkpoint_parts`"
    (row,) = client.query(f"SELECT COUNT(*) AS n, COUNT(DISTINCT uri) AS uris FROM {parts}").result()
    client.close()
    assert row["n"] == row["uris"] == len({json.loads(m.data)["uri"] for m in copies})
    assert status(cloud)["dead_letters"] == 0
