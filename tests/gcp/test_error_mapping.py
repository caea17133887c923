"""The Google adapters turn client failures into the taxonomy (design rule 8), checked against an
endpoint that answers like a Google API having a bad day: no emulator, no mocks."""

from datetime import UTC, datetime

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, storage

from shared.adapters.gcp.bigquery import BigQueryWarehouse
from shared.adapters.gcp.storage import GcsObjectStore
from shared.core.errors import SystemicError, TransientError, WarehouseUnavailable
from tests.gcp.fake_endpoint import answering

NOW = datetime(2026, 3, 1, tzinfo=UTC)
UNREACHABLE = "http://127.0.0.1:9"
FAILURES = [
    (403, "accessDenied", SystemicError),
    (401, "unauthorized", SystemicError),
    (503, "backendError", TransientError),
    (500, "internalError", TransientError),
]


def warehouse_at(url):
    client = bigquery.Client(
        project="p", credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=url)
    )
    return BigQueryWarehouse(client, "p", "d", "s", request_timeout=2, retry_deadline=1)


def store_at(url):
    client = storage.Client(
        project="p", credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=url)
    )
    return GcsObjectStore(client, "b", timeout=2, retry_deadline=1)


@pytest.mark.parametrize(("status", "reason", "expected"), [*FAILURES, (403, "rateLimitExceeded", TransientError)])
def test_warehouse_failures_map_to_the_taxonomy(status, reason, expected):
    with answering(status, reason) as url, pytest.raises(expected) as caught:
        warehouse_at(url).in_flight(NOW)
    if expected is SystemicError:
        assert isinstance(caught.value, WarehouseUnavailable)


def test_an_unreachable_warehouse_is_transient_within_the_retry_deadline():
    with pytest.raises(TransientError):
        warehouse_at(UNREACHABLE).in_flight(NOW)


@pytest.mark.parametrize(("status", "reason", "expected"), FAILURES)
def test_object_store_failures_map_to_the_taxonomy(status, reason, expected):
    with answering(status, reason) as url:
        store = store_at(url)
        with pytest.raises(expected):
            store.exists("runs/a.jsonl")
        with pytest.raises(expected), store.open_writer("runs/a.jsonl") as out:
            out.write("row\n")


def test_an_unreachable_object_store_is_transient():
    with pytest.raises(TransientError):
        store_at(UNREACHABLE).exists("runs/a.jsonl")


def test_an_error_of_the_writers_own_block_passes_through_unchanged():
    with answering(503) as url, pytest.raises(KeyError), store_at(url).open_writer("runs/a.jsonl"):
        raise KeyError("the caller's own failure")


def test_chunk_sizes_must_be_multiples_of_256_kib():
    with pytest.raises(ValueError, match="multiple of 262144"):
        GcsObjectStore(storage.Client(project="p", credentials=AnonymousCredentials()), "b", chunk_size=100_000)
