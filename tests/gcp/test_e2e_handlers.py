"""The handlers wired to the Google adapters, end to end on the emulators (issue 3 acceptance).

dispatch → Pub/Sub `wallets` → fetch (Dome simulator with faults on, small pages and a one-page budget,
so wallets take several parts and continuations) → part files in GCS → Pub/Sub `files` → load (load job,
MERGE, checkpoints in BigQuery). The test is the push endpoint: it pulls each message, calls the
handler, and acks or nacks as the services do. BigQuery's `trades` is then compared with the
simulator's ground truth as a multiset on every source field.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from emulators.dome.config import SimConfig
from emulators.dome.server import RunningSimulator, run_simulator
from shared.adapters.gcp.bigquery import BigQueryWarehouse
from shared.adapters.gcp.storage import GcsObjectStore
from shared.bootstrap import make_source
from shared.core.messages import FileReady
from shared.handlers.dispatch import dispatch
from shared.ports.publisher import Topic
from shared.settings import Settings
from tests.contract.twins import StrictJobIdClient
from tests.fakes import FakeClock, budget
from tests.gcp.pipeline import Pipeline, Topology, checkpoints, trades_snapshot, verify_bigquery

pytestmark = [pytest.mark.emulators, pytest.mark.slow]

FAULTS = {"error_5xx_rate": 0.05, "burst_429_rate": 0.03, "truncated_rate": 0.03, "drop_rate": 0.03}
PAGE_SIZE = 500  # with one page per part: the 3,000-trade whale takes six parts
LEASE_SECONDS = 3600
INVALID = "0xnot-a-wallet"


@dataclass
class Simulated:
    sim: RunningSimulator
    truth: Path
    counts: dict[str, int]

    @property
    def wallets(self) -> list[str]:
        return list(self.counts)

    def by_size(self, n: int) -> str:
        return next(w for w, c in self.counts.items() if c == n)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory):
    with run_simulator(SimConfig(seed=11, size=6, whale_trades=3000, fault_seed=5, **FAULTS)) as sim:
        truth = tmp_path_factory.mktemp("truth") / "ground-truth.jsonl"
        counts = sim.state.universe.export_ground_truth(truth)
        yield Simulated(sim, truth, counts)


@pytest.fixture
def topology(emulator_stack, monkeypatch):
    if emulator_stack.pubsub_skip_reason:
        pytest.skip(emulator_stack.pubsub_skip_reason)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator_stack.pubsub_host_port)
    made = Topology()
    yield made
    made.close()


def bigquery_client(stack) -> bigquery.Client:
    return StrictJobIdClient(  # a retried load attaches to its earlier job, as on real BigQuery
        project=stack.project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=stack.bigquery_endpoint),
    )


def traders_table(client: bigquery.Client, project: str, wallets: list[str]) -> str:
    """An existing table of wallets as a team would have it: mixed case, stray spaces, a repeat, junk."""
    dataset = f"src_{uuid.uuid4().hex[:10]}"
    client.create_dataset(dataset)
    ref = f"{project}.{dataset}.wallets"
    client.create_table(bigquery.Table(ref, schema=[bigquery.SchemaField("wallet_address", "STRING")]))
    listed = [("0x" + w[2:].upper() if i % 2 else w) for i, w in enumerate(wallets)]
    listed += [f"  {wallets[0].upper().replace('0X', '0x')} ", wallets[1], INVALID]
    values = ", ".join(f"('{w}')" for w in listed)
    client.query(f"INSERT INTO `{ref}` (wallet_address) VALUES {values}").result()
    return ref


@pytest.fixture
def pipeline(emulator_stack, topology, simulated, bucket):
    simulated.sim.state.reset_stats()
    clock = FakeClock(wall=datetime(2026, 3, 1, tzinfo=UTC))  # the source's retries wait on it, not on the wall
    settings = Settings(
        dome_api_base_url=simulated.sim.base_url, dome_api_key="k", dome_tier="dev", http_max_attempts=2
    )
    source = make_source(settings, clock=clock)
    source.page_size = PAGE_SIZE  # type: ignore[attr-defined]
    client = bigquery_client(emulator_stack)
    suffix = uuid.uuid4().hex[:10]
    warehouse = BigQueryWarehouse(
        client,
        emulator_stack.project,
        f"e2e_{suffix}",
        f"e2e_stg_{suffix}",
        traders_table=traders_table(client, emulator_stack.project, simulated.wallets),
        request_timeout=10,
        job_timeout=60,
        retry_deadline=5,
    )
    warehouse.create_schema()
    store = GcsObjectStore(emulator_stack.storage_client(), bucket, timeout=10, retry_deadline=5)
    made = Pipeline(topology, source, store, warehouse, clock, budget(seconds=60.0, max_pages=1))
    yield made
    source.close()
    warehouse.close()


def run_dispatch(p: Pipeline, run_id: str):
    return dispatch(
        warehouse=p.warehouse,
        publisher=p.publisher,
        dead_letters=p.letters,
        clock=p.clock,
        run_id=run_id,
        source="dome",
        max_in_flight=100,
        lease_seconds=LEASE_SECONDS,
    )


def test_a_backfill_through_pubsub_gcs_and_bigquery_equals_the_ground_truth_and_a_reload_changes_nothing(
    pipeline, simulated
):
    p, truth_rows = pipeline, sum(simulated.counts.values())
    sent = run_dispatch(p, "e2e-backfill")
    assert sorted(t.wallet for t in sent.published) == sorted(simulated.wallets)  # lowercased, each once
    assert [d.wallet for d in sent.dead_lettered] == [INVALID]

    log = p.drive()

    check = verify_bigquery(p.warehouse, str(simulated.truth), simulated.wallets)
    assert (check.truth_rows, check.warehouse_rows) == (truth_rows, truth_rows)
    assert (check.duplicates, check.missing, check.extra) == (0, 0, 0), check.wallets_wrong
    done = checkpoints(p.warehouse)
    assert {w: (c["status"], c["trades_loaded"]) for w, c in done.items()} == {
        w: ("complete", n) for w, n in simulated.counts.items()
    }
    whale = simulated.by_size(3000)
    assert done[whale]["final_part"] == 5 and done[whale]["parts_loaded"] == 6  # five continuations
    # The faults happened and were absorbed: retried in the client, or nacked and redelivered.
    assert sum(simulated.sim.state.stats.faults.values()) > 0
    assert p.source.stats.retries + log.nacked_tasks > 0
    assert p.collect() == 0  # nothing was dead-lettered on the way: no letter waits on the topics
    assert [x.wallet for x in p.letters.pending(10)] == [INVALID]  # the dispatcher parked the invalid line

    # Past the leases, a second dispatch finds every wallet complete (read back from the mixed-case table).
    p.clock.advance(2 * LEASE_SECONDS)
    assert run_dispatch(p, "e2e-again").published == []
    status = p.warehouse.status(p.clock.now())
    assert status.by_status == {"complete": len(simulated.wallets), "pending": 1}  # pending: the invalid line
    assert (status.dead_letters, status.parked) == (1, 1)
    assert status.trades == truth_rows

    # The loader gets every FileReady message again (one batch): the MERGE inserts nothing, and no
    # checkpoint moves (a complete checkpoint of the same run is never rewritten).
    trades_before, checkpoints_before = trades_snapshot(p.warehouse), checkpoints(p.warehouse)
    again = p.load(log.files)
    assert not again.failed and sorted(again.completed_wallets) == sorted(simulated.wallets)
    assert trades_snapshot(p.warehouse) == trades_before
    assert checkpoints(p.warehouse) == checkpoints_before


def test_file_ready_out_of_order_and_twice_into_a_fresh_dataset_completes_a_wallet_only_with_its_last_part(
    pipeline, simulated
):
    p = pipeline
    run_dispatch(p, "e2e-shuffle")
    files = p.drive(load_files=False).files  # part files written and announced; nothing loaded yet
    assert len({f.uri for f in files}) == len(files)
    whale, n1001 = simulated.by_size(3000), simulated.by_size(1001)
    whale_parts = sorted((f for f in files if f.wallet == whale), key=lambda f: f.part)
    n1001_parts = sorted((f for f in files if f.wallet == n1001), key=lambda f: f.part)
    assert len(whale_parts) == 6 and len(n1001_parts) == 3
    # The whale misses a middle part (its final part arrives); n1001 misses its final part.
    withheld = [whale_parts[2], n1001_parts[-1]]
    rest = [f for f in files if f not in withheld]
    shuffled = rest * 2
    random.Random(3).shuffle(shuffled)
    publish(p, shuffled)
    p.drive(batch_files=25)

    done = checkpoints(p.warehouse)
    assert done[whale]["status"] == "in_progress" and done[n1001]["status"] == "in_progress"
    assert done[whale]["trades_loaded"] == 3000 - whale_parts[2].rows
    assert done[n1001]["trades_loaded"] == 1001 - n1001_parts[-1].rows
    others = [w for w in simulated.wallets if w not in (whale, n1001)]
    assert {w: (done[w]["status"], done[w]["trades_loaded"]) for w in others} == {
        w: ("complete", simulated.counts[w]) for w in others
    }
    loaded = {r["wallet_address"]: (r["n"], r["keys"]) for r in trades_snapshot(p.warehouse)}
    assert all(n == keys for n, keys in loaded.values())  # every part twice, and not one row twice

    publish(p, [withheld[1], withheld[0], withheld[1]])
    p.drive()

    done = checkpoints(p.warehouse)
    assert {w: (c["status"], c["trades_loaded"]) for w, c in done.items()} == {
        w: ("complete", n) for w, n in simulated.counts.items()
    }
    check = verify_bigquery(p.warehouse, str(simulated.truth), simulated.wallets)
    assert check.exact and check.warehouse_rows == sum(simulated.counts.values())
    parts = Counter(r.wallet for r in files)
    assert {w: done[w]["parts_loaded"] for w in simulated.wallets} == {w: parts[w] for w in simulated.wallets}


def publish(p: Pipeline, files: list[FileReady]) -> None:
    for f in files:
        p.publisher.publish(Topic.FILES, f.encode(), f.attributes())
