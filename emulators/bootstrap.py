"""Create the resources of infra/resources.yaml on the local emulators (or any project the clients
point at): topics, subscriptions with push endpoints, retry and dead-letter policies, the bucket,
the datasets and tables. Idempotent: existing resources are left as they are (push endpoints updated).

    python -m emulators.bootstrap --project local --bucket local-backfill-parts \
        --push fetcher=http://127.0.0.1:8082 --push loader=http://127.0.0.1:8083 [--retry-scale 0.01]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1, storage
from google.protobuf import duration_pb2

from shared import bootstrap
from shared.resources import Resources, load_resources
from shared.settings import CloudSettings


def _duration(seconds: float) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=int(seconds), nanos=int((seconds % 1) * 1e9))


def bootstrap_pubsub(
    project: str,
    push: dict[str, str],
    resources: Resources | None = None,
    retry_scale: float = 1.0,
    ack_deadline_cap: int | None = None,
) -> None:
    """`retry_scale` shrinks the retry back-off for local runs (10 s → 0.1 s at 0.01); `push` maps a
    service name (fetcher, loader) to its base URL."""
    resources = resources or load_resources()
    publisher = pubsub_v1.PublisherClient()
    with pubsub_v1.SubscriberClient() as subscriber:
        for topic in resources.topics:
            with contextlib.suppress(gexc.AlreadyExists):
                publisher.create_topic(name=publisher.topic_path(project, topic))
        for spec in resources.subscriptions:
            sub: dict[str, Any] = {
                "name": subscriber.subscription_path(project, spec.name),
                "topic": publisher.topic_path(project, spec.topic),
                "ack_deadline_seconds": min(spec.ack_deadline_seconds, ack_deadline_cap or 600),
            }
            push_config = None
            if spec.push_service:
                base = push[spec.push_service].rstrip("/")
                push_config = {"push_endpoint": base + spec.push_path}
                sub["push_config"] = push_config
            if spec.minimum_backoff is not None and spec.maximum_backoff is not None:
                sub["retry_policy"] = {
                    "minimum_backoff": _duration(spec.minimum_backoff * retry_scale),
                    "maximum_backoff": _duration(spec.maximum_backoff * retry_scale),
                }
            if spec.dead_letter_topic:
                sub["dead_letter_policy"] = {
                    "dead_letter_topic": publisher.topic_path(project, spec.dead_letter_topic),
                    "max_delivery_attempts": spec.max_delivery_attempts,
                }
            if spec.message_retention_seconds:
                sub["message_retention_duration"] = _duration(spec.message_retention_seconds)
            try:
                subscriber.create_subscription(request=sub)
            except gexc.AlreadyExists:
                if push_config:
                    subscriber.modify_push_config(request={"subscription": sub["name"], "push_config": push_config})
    publisher.transport.close()


def bootstrap_storage(project: str, bucket: str) -> None:
    creds = AnonymousCredentials() if os.environ.get("STORAGE_EMULATOR_HOST") else None
    client = storage.Client(project=project, credentials=creds)
    with contextlib.suppress(gexc.Conflict):
        client.create_bucket(bucket)


def read_traders(source: str) -> list[str]:
    """Wallets from a file (one per line) or from a simulator's `/_sim/wallets` listing URL."""
    if source.startswith(("http://", "https://")):
        for attempt in range(30):  # the simulator's container may still be starting
            try:
                response = requests.get(source, timeout=30)
                break
            except requests.ConnectionError:
                if attempt == 29:
                    raise
                time.sleep(2)
        response.raise_for_status()
        return [w["wallet"] for w in response.json()["wallets"]]
    with open(source, encoding="utf-8") as lines:
        return [line.strip().lower() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--push", action="append", default=[], help="service=base_url")
    parser.add_argument("--retry-scale", type=float, default=1.0)
    parser.add_argument("--skip-bigquery", action="store_true")
    parser.add_argument(
        "--traders-from", help="seed the traders table: a wallets file, or a simulator's /_sim/wallets URL"
    )
    args = parser.parse_args()
    push = dict(item.split("=", 1) for item in args.push)
    bootstrap_pubsub(args.project, push, retry_scale=args.retry_scale)
    bootstrap_storage(args.project, args.bucket)
    if not args.skip_bigquery:
        settings = CloudSettings(gcp_project=args.project, gcs_bucket=args.bucket)
        warehouse = bootstrap.bigquery_warehouse(bootstrap.cloud_target(settings))
        warehouse.create_schema()  # in a deployment Terraform owns the schema; here the emulator needs one
        if args.traders_from:
            print(f"traders: {warehouse.add_traders(read_traders(args.traders_from))} added")
    print("bootstrap done")


if __name__ == "__main__":
    main()
