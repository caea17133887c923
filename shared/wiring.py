"""Build the Google adapters from settings: the services' composition root (called in lifespans).

With the emulators' variables set (STORAGE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, BIGQUERY_API_ENDPOINT)
the same code talks to the local stand-ins with anonymous credentials.
"""

from __future__ import annotations

import os
from typing import Any

from shared.settings import CloudSettings

DEAD_LETTER_SUBSCRIPTIONS = {
    "wallets-dead-letter": "wallets-dead-letter-pull",
    "files-dead-letter": "files-dead-letter-pull",
}


def _credentials() -> Any:
    if os.environ.get("STORAGE_EMULATOR_HOST") or os.environ.get("PUBSUB_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    return None


def build_publisher(settings: CloudSettings) -> Any:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

    from shared.gcp.pubsub import PubSubPublisher

    return PubSubPublisher(pubsub_v1.PublisherClient(), settings.gcp_project)


def build_dead_letters(settings: CloudSettings, publisher: Any) -> Any:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

    from shared.gcp.pubsub import PubSubDeadLetters

    return PubSubDeadLetters(publisher, pubsub_v1.SubscriberClient(), settings.gcp_project, DEAD_LETTER_SUBSCRIPTIONS)


def build_store(settings: CloudSettings) -> Any:
    from google.cloud import storage

    from shared.gcp.storage import GcsObjectStore

    client = storage.Client(project=settings.gcp_project, credentials=_credentials())
    return GcsObjectStore(client, settings.gcs_bucket)


def build_warehouse(settings: CloudSettings, traders_table: str | None = None) -> Any:
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    from shared.gcp.bigquery import BigQueryWarehouse

    options = ClientOptions(api_endpoint=settings.bigquery_api_endpoint) if settings.bigquery_api_endpoint else None
    credentials = None
    if settings.bigquery_api_endpoint:
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
    client = bigquery.Client(project=settings.gcp_project, credentials=credentials, client_options=options)
    return BigQueryWarehouse(
        client,
        settings.gcp_project,
        settings.bq_dataset,
        settings.bq_staging_dataset,
        traders_table=traders_table,
        location=settings.bq_location,
    )
