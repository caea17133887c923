"""The three services' walk on the emulators, for the permission proof (tests/gcp/test_permissions.py).

Each app (services/<name>/app.py) runs with the adapters shared/bootstrap.py builds from its settings,
watched by a Recorder before the app starts; the test plays Pub/Sub push: it pulls `wallets` and `files`
and posts each message to the fetcher or the loader, acking on 2xx. The walk: dispatch (one address of
the traders table is invalid and parked), fetch every wallet (a continuation is lost, so the wallet's part 1
comes from a later dispatch that resumes it), load every part, a task the fetcher refuses and a part file
the loader cannot load (both dead-lettered), /status (which collects the letters), /verify, a replay,
an incremental dispatch.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from emulators.dome.config import SimConfig
from emulators.dome.server import run_simulator
from services.dispatcher import app as dispatcher_app
from services.fetcher import app as fetcher_app
from services.loader import app as loader_app
from shared import bootstrap
from shared.bootstrap import Overrides
from shared.core.messages import FileReady, WalletTask
from shared.ports.publisher import Topic
from shared.settings import DispatcherSettings, FetcherSettings, LoaderSettings
from shared.web.push import envelope
from tests.fakes import FakeClock
from tests.gcp.pipeline import PULL, Topology
from tests.gcp.recording import Recorder

SERVICES = ("dispatcher", "fetcher", "loader")
INVALID = "0xnot-a-wallet"
LEASE_SECONDS = 600


class World:
    """The emulator names of one run and their Terraform counterparts."""

    def __init__(self, stack: Any, project: str, terraform: dict[str, str]) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.project, self.bucket = project, f"b-{suffix}"
        self.dataset, self.staging = f"iam_{suffix}", f"iam_stg_{suffix}"
        self.renames = {
            "projects": {project: terraform["project"]},
            "datasets": {self.dataset: terraform["dataset"], self.staging: terraform["staging_dataset"]},
            "buckets": {self.bucket: terraform["bucket"]},
        }
        self.common: dict[str, Any] = {
            "gcp_project": project,
            "gcs_bucket": self.bucket,
            "bq_dataset": self.dataset,
            "bq_staging_dataset": self.staging,
            "bigquery_api_endpoint": stack.bigquery_endpoint,
            "lease_seconds": LEASE_SECONDS,
        }

    def terraform_name(self, resource: str) -> str:
        """projects/<emulator project>/datasets/<random> -> projects/test-project/datasets/polymarket."""
        parts = resource.split("/")
        for i in range(1, len(parts)):
            parts[i] = self.renames.get(parts[i - 1], {}).get(parts[i], parts[i])
        return "/".join(parts)


def pump(
    client: TestClient, topology: Topology, subscription: str, drop: Callable[[Any], bool] = lambda m: False
) -> list[int]:
    """Pub/Sub push, played by the test: each message due on `subscription` is posted; 2xx acks it."""
    statuses = []
    while received := topology.pull(subscription):
        for r in received:
            if drop(r.message):
                topology.ack(subscription, [r.ack_id])
                continue
            attrs = dict(r.message.attributes)
            body = envelope(r.message.data, attrs, r.message.message_id, topology.path(subscription))
            statuses.append(client.post("/", json=body).status_code)
            (topology.ack if statuses[-1] < 300 else topology.nack)(subscription, [r.ack_id])
    return statuses


def drive(
    fetcher: TestClient, loader: TestClient, topology: Topology, drop: Callable[[Any], bool] = lambda m: False
) -> list[int]:
    statuses = []
    while True:
        batch = pump(fetcher, topology, PULL[Topic.WALLETS], drop) + pump(loader, topology, PULL[Topic.FILES])
        if not batch:
            return statuses
        statuses += batch


@contextlib.contextmanager
def services(
    world: World, sim_url: str, clock: FakeClock
) -> Iterator[tuple[dict[str, Recorder], dict[str, TestClient]]]:
    """The three apps, their adapters built by shared/bootstrap.py and watched before the apps start."""
    fs = FetcherSettings(
        **world.common, dome_api_base_url=sim_url, dome_api_key="k", fetch_max_pages=1, http_max_attempts=2
    )
    ls = LoaderSettings(**world.common, loader_flush_files=1, loader_flush_seconds=1)
    # The dispatcher's clock runs ahead (the walk advances it past the leases), the loader's is the real one:
    # a daily sync hour between the two made every complete wallet due (the walk failed from ~01:25 to 02:00
    # UTC under the default hour 2). Twelve hours from now, that boundary is never crossed here.
    ds = DispatcherSettings(**world.common, sync_hour_utc=(datetime.now(UTC).hour + 12) % 24)
    fd, ld = bootstrap.fetcher(fs), bootstrap.loader(ls)
    dd = bootstrap.dispatcher(ds, Overrides(clock=clock))
    recorders = {name: Recorder() for name in SERVICES}
    assert recorders["fetcher"].watch(fd) == {"storage", "publisher"}
    assert recorders["loader"].watch(ld) == {"bigquery", "publisher", "storage"}  # the store: to trust a uri
    assert recorders["dispatcher"].watch(dd) == {"bigquery", "publisher", "subscriber"}
    apps = {
        "fetcher": fetcher_app.create_app(
            fs,
            Overrides(
                publisher=fd.publisher, store=fd.store, source=fd.source, dead_letters=fd.dead_letters, clock=fd.clock
            ),
        ),
        "loader": loader_app.create_app(
            ls, Overrides(warehouse=ld.warehouse, dead_letters=ld.dead_letters, clock=ld.clock)
        ),
        "dispatcher": dispatcher_app.create_app(
            ds, Overrides(warehouse=dd.warehouse, publisher=dd.publisher, inbox=dd.inbox, clock=clock)
        ),
    }
    with contextlib.ExitStack() as stack:
        clients = {name: stack.enter_context(TestClient(app)) for name, app in apps.items()}
        yield recorders, clients


def walk(world: World, topology: Topology, sim: Any, wallets: dict[str, int], clock: FakeClock) -> dict[str, Recorder]:
    whale = max(wallets, key=lambda w: wallets[w])
    with services(world, sim.base_url, clock) as (recorders, c):
        sent = c["dispatcher"].post("/dispatch", json={"run_id": "iam-1"}).json()
        assert (sent["published"], sent["dead_lettered"]) == (len(wallets), 1)
        cut: set[str] = set()  # wallets whose continuation is lost: their part 1 comes from a resume

        def lost(message: Any) -> bool:
            task = WalletTask.model_validate_json(message.data)
            if task.part > 0:
                cut.add(task.wallet)
            return task.part > 0

        assert set(drive(c["fetcher"], c["loader"], topology, drop=lost)) == {204}
        assert whale in cut
        clock.advance(2 * LEASE_SECONDS)  # their leases run out: the next dispatch resumes them at part 1
        second = c["dispatcher"].post("/dispatch", json={"run_id": "iam-2"}).json()
        assert sorted(second["wallets"]) == sorted(cut), (second, cut)  # resumed, and no wallet synced
        assert second["lookups"] > 0, second  # the markets the trades name
        # 503s: the markets lookup that always fails (the simulator's poison id), until Pub/Sub dead-letters it
        assert set(drive(c["fetcher"], c["loader"], topology)) <= {204, 503}
        events = c["dispatcher"].post("/dispatch", json={"run_id": "iam-2b"}).json()
        assert events["lookups"] > 0  # the events the loaded markets name
        assert set(drive(c["fetcher"], c["loader"], topology)) == {204}

        publisher = topology.publisher()
        refused = WalletTask(run_id="iam-1", wallet=whale, source="polymarket")  # this fetcher pages Dome
        publisher.publish(Topic.WALLETS, refused.encode(), refused.attributes())
        gone = FileReady(
            run_id="iam-1",
            wallet=whale,
            part=9,
            rows=3,
            final=True,
            uri=f"gs://{world.bucket}/runs/iam-1/{whale}/part-00009-gone.jsonl",
        )
        publisher.publish(Topic.FILES, gone.encode(), gone.attributes())
        assert set(drive(c["fetcher"], c["loader"], topology)) == {204}  # both dead-lettered, then acked

        status = c["dispatcher"].get("/status").json()  # first moves the two letters into the table
        # the invalid trader, the two dead-lettered above, and the markets lookup that always fails
        assert (status["by_status"], status["dead_letters"]) == ({"complete": len(wallets), "pending": 1}, 4)
        # the operators' reconciliation reads the loader's tables (and would write leases only)
        verified = c["dispatcher"].post("/verify", json={"requeue": True}).json()
        assert (verified["checked"], verified["mismatched"], verified["requeued"]) == (len(wallets), 0, [])
        replayed = c["dispatcher"].post("/dead-letters/replay", json={"max": 10}).json()
        assert replayed["replayed"] == 4 and {x["topic"] for x in replayed["letters"]} == {"wallets", "files"}
        assert c["dispatcher"].post("/dispatch", json={"run_id": "iam-3", "mode": "sync"}).status_code == 200
    return recorders


@contextlib.contextmanager
def recorded_walk(stack: Any, truth: Path, terraform: dict[str, str]) -> Iterator[tuple[World, dict[str, Recorder]]]:
    """The walk on a fresh project, bucket and datasets of the emulator stack; `terraform`: the names the
    deployment gives them (project, dataset, staging_dataset, bucket)."""
    with pytest.MonkeyPatch.context() as env, run_simulator(SimConfig(seed=5, size=2, whale_trades=1500)) as sim:
        for key in ("STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
            env.setenv(key, stack.env()[key])
        topology = Topology()
        world = World(stack, topology.project, terraform)
        stack.storage_client().create_bucket(world.bucket)
        setup = bootstrap.bigquery_warehouse(bootstrap.cloud_target(DispatcherSettings(**world.common)))
        setup.create_schema()  # Terraform's part, and the operator's list of wallets: not recorded
        wallets = sim.state.universe.export_ground_truth(truth)
        setup.add_traders([*wallets, INVALID])
        setup.close()
        try:
            yield world, walk(world, topology, sim, wallets, FakeClock(wall=datetime.now(UTC)))
        finally:
            topology.close()
