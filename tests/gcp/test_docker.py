"""Where a Docker engine answers, the official fake-gcs-server image serves the same adapter; here the
suite relies on the PyPI emulators (tests/gcp/conftest.py), which run without Docker."""

import uuid

import pytest

from emulators.stack import docker_unavailable_reason

FAKE_GCS_IMAGE = "fsouza/fake-gcs-server:1.52"


@pytest.mark.docker
def test_the_object_store_round_trips_on_the_official_fake_gcs_server_image():
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    from shared.adapters.gcp.storage import GcsObjectStore

    with DockerContainer(FAKE_GCS_IMAGE).with_command("-scheme http -port 4443").with_exposed_ports(4443) as gcs:
        wait_for_logs(gcs, "server started", timeout=60)
        endpoint = f"http://{gcs.get_container_host_ip()}:{gcs.get_exposed_port(4443)}"
        client = storage.Client(
            project="p", credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=endpoint)
        )
        bucket = f"b-{uuid.uuid4().hex[:12]}"
        client.create_bucket(bucket)
        store = GcsObjectStore(client, bucket)
        with store.open_writer("runs/a.jsonl") as out:
            out.write("a\nb\n")
        assert list(store.read_lines("runs/a.jsonl")) == ["a\n", "b\n"]
