"""The emulator stack: processes on loopback ports that the real clients talk to, sharing the files."""

import socket
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pytest
from google.cloud import bigquery

from emulators.stack import EmulatorStack, install_duckdb_extensions

pytestmark = pytest.mark.emulators


def test_the_stack_exports_what_the_clients_and_the_services_read(emulator_stack):
    env = emulator_stack.env()
    assert env["STORAGE_EMULATOR_HOST"] == emulator_stack.gcs_endpoint
    assert env["BIGQUERY_API_ENDPOINT"] == emulator_stack.bigquery_endpoint
    assert env["GCP_PROJECT"] == emulator_stack.project
    for url in (env["STORAGE_EMULATOR_HOST"], env["BIGQUERY_API_ENDPOINT"]):
        assert urlparse(url).hostname == "127.0.0.1"


def test_bigquery_load_jobs_read_the_objects_the_storage_emulator_holds(emulator_stack, bucket):
    emulator_stack.storage_client().bucket(bucket).blob("runs/a.jsonl").upload_from_string('{"n": 1}\n{"n": 2}\n')
    bq = emulator_stack.bigquery_client()
    bq.create_dataset("stack_check", exists_ok=True)
    config = bigquery.LoadJobConfig(
        schema=[bigquery.SchemaField("n", "INT64")], source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON
    )
    bq.load_table_from_uri(
        f"gs://{bucket}/runs/a.jsonl", f"{emulator_stack.project}.stack_check.n", job_config=config
    ).result(timeout=30)
    (row,) = bq.query(f"SELECT SUM(n) AS total FROM `{emulator_stack.project}.stack_check.n`").result()
    assert row["total"] == 3


def test_the_pubsub_emulator_runs_in_process_when_it_can_be_imported(emulator_stack):
    if emulator_stack.pubsub_skip_reason:
        pytest.skip(emulator_stack.pubsub_skip_reason)
    from google.cloud import pubsub_v1

    host, port = emulator_stack.pubsub_host_port.rsplit(":", 1)
    assert emulator_stack.env()["PUBSUB_EMULATOR_HOST"] == emulator_stack.pubsub_host_port
    with socket.create_connection((host, int(port)), timeout=2):
        pass
    assert pubsub_v1.PublisherClient  # the client that reads PUBSUB_EMULATOR_HOST is installed


def test_duckdb_extensions_are_installed_where_duckdb_looks_and_reinstalling_is_a_no_op():
    folder = install_duckdb_extensions()
    platform = duckdb.execute("PRAGMA platform").fetchone()[0]
    assert folder == Path.home() / ".duckdb" / "extensions" / f"v{duckdb.__version__}" / platform
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.duckdb_extension")}
    assert {"spatial.duckdb_extension", "avro.duckdb_extension"} <= set(before)
    install_duckdb_extensions()
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.duckdb_extension")} == before


def test_stop_ends_the_processes_it_started_and_removes_its_folder():
    stack = EmulatorStack(project="stop-check", pubsub=False).start()
    processes = [p.popen for p in stack._processes]
    endpoints = [stack.gcs_endpoint, stack.bigquery_endpoint]
    stack.stop()
    assert all(p.poll() is not None for p in processes)
    assert not stack.workdir.exists()
    for url in endpoints:
        with pytest.raises(OSError):
            socket.create_connection((urlparse(url).hostname, urlparse(url).port), timeout=1).close()
    stack.stop()  # idempotent
