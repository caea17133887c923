"""BigQueryWarehouse beyond the port's contract: table layout, staging clean-up, atomicity, load job
ids and parameterised values (tests/contract holds what both twins share)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import bigquery

from shared.adapters.gcp.bigquery import BigQueryWarehouse, load_job_id
from shared.core.errors import PermanentError, WarehouseUnavailable
from shared.core.tables import TABLES
from shared.ports.warehouse import CheckpointUpdate, Segment
from tests.contract.twins import bigquery_twin
from tests.fakes import canonical, dome_raw

pytestmark = pytest.mark.emulators
W1, W2 = "0x" + "1" * 40, "0x" + "2" * 40
NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def twin(emulator_stack):
    made = bigquery_twin(emulator_stack)
    made.warehouse.create_schema()
    yield made
    made.warehouse.close()


def rows(wallet, n, run_id="r1"):
    return [{**canonical(wallet, dome_raw(wallet, i)), "run_id": run_id} for i in range(n)]


def staging_tables(wh):
    return [t.table_id for t in wh.client.list_tables(f"{wh.project}.{wh.staging_dataset}")]


def load_job_ids(wh, uris):
    first = load_job_id(uris)
    return sorted(j.job_id for j in wh.client.list_jobs(max_results=10_000) if j.job_id.startswith(first))


def test_trades_is_month_partitioned_on_timestamp_and_clustered_by_wallet_and_market(twin):
    wh = twin.warehouse
    table = wh.client.get_table(f"{wh.project}.{wh.dataset}.trades")
    assert table.time_partitioning.type_ == "MONTH" and table.time_partitioning.field == "timestamp"
    assert table.clustering_fields == ["wallet_address", "condition_id"]
    assert {f.name: f.field_type for f in table.schema}["token_id"] == "STRING"
    tables = {t.table_id for t in wh.client.list_tables(f"{wh.project}.{wh.dataset}")}
    assert tables == {t.name for t in TABLES}  # the one table spec, markets and events included


def test_staging_tables_are_dropped_after_a_commit_and_after_a_failed_one(twin):
    wh = twin.warehouse
    good = twin.part(W1, "r1", 0, rows(W1, 5), final=True)
    wh.commit_batch([good], [Segment.of(good)], [], NOW)
    assert staging_tables(wh) == []
    gone = twin.part(W2, "r1", 0, rows(W2, 5), final=True)
    twin.store.delete(twin.store.name_from_uri(gone.uri))
    with pytest.raises(PermanentError, match=gone.uri):
        wh.commit_batch([gone], [Segment.of(gone)], [], NOW)
    assert staging_tables(wh) == []


def test_a_statement_failing_inside_the_transaction_rolls_the_whole_batch_back(twin):
    wh = twin.warehouse
    wh.client.delete_table(f"{wh.project}.{wh.dataset}.checkpoints")  # the last MERGE of the script will fail
    f = twin.part(W1, "r1", 0, rows(W1, 5), final=True)
    with pytest.raises(WarehouseUnavailable):
        wh.commit_batch([f], [Segment.of(f)], [CheckpointUpdate(W1, "r1", "dome", "complete", 1, 0)], NOW)
    assert twin.trades() == [] and twin.part_records() == []
    assert staging_tables(wh) == []


def test_the_same_files_always_get_the_same_load_job_and_a_retry_attaches_to_it(twin):
    wh = twin.warehouse
    files = [twin.part(W1, "r1", p, rows(W1, 3), final=p == 1, cursor_after="c") for p in (0, 1)]
    uris = sorted(f.uri for f in files)
    wh._load_rows(uris)  # the loader died after its load job, before the MERGE
    (first,) = load_job_ids(wh, uris)
    wh.commit_batch(files, [Segment.of(f) for f in files], [], NOW)
    assert load_job_ids(wh, uris) == [first]  # attached to the finished job: its staging table was still there
    wh.commit_batch(files, [Segment.of(f) for f in files], [], NOW)
    ids = load_job_ids(wh, uris)  # the earlier job's table is gone now, so this retry loads again, once
    assert len(ids) == 2 and ids[1].startswith(first + "_")
    assert len(twin.trades()) == 3


def test_values_travel_as_parameters_never_as_sql(twin):
    wh = twin.warehouse
    odd = "0x'; DROP TABLE leases; --\\`"
    assert wh.add_traders([odd, W1]) == 2
    wh.lease([(odd, "r'1")], NOW, NOW + timedelta(hours=1), "in_flight")
    assert wh.in_flight(NOW) == 1
    assert [c.wallet for c in wh.candidates(NOW, 10)] == [W1]


def test_candidates_read_an_existing_traders_table_that_ensure_schema_leaves_alone(emulator_stack, twin):
    client = twin.warehouse.client
    source = f"src_{uuid.uuid4().hex[:8]}"
    client.create_dataset(source)
    client.create_table(
        bigquery.Table(
            f"{emulator_stack.project}.{source}.wallets",
            schema=[bigquery.SchemaField("wallet_address", "STRING"), bigquery.SchemaField("label", "STRING")],
        )
    )
    client.query(
        f"INSERT INTO `{emulator_stack.project}.{source}.wallets` (wallet_address, label) "
        f"VALUES ('{W2}', 'b'), ('{W1}', 'a'), ('{W1}', 'again'), (NULL, 'none')"
    ).result()
    wh = BigQueryWarehouse(
        client,
        emulator_stack.project,
        f"wh_{uuid.uuid4().hex[:8]}",
        "stg_x",
        traders_table=f"{emulator_stack.project}.{source}.wallets",
        retry_deadline=5,
    )
    wh.create_schema()
    assert "traders" not in {t.table_id for t in client.list_tables(f"{emulator_stack.project}.{wh.dataset}")}
    assert [c.wallet for c in wh.candidates(NOW, 10)] == [W1, W2]
