"""The embedded runner's own promises: it ends only when every wallet is complete or dead-lettered."""

from datetime import UTC, datetime

from shared import bootstrap
from shared.adapters.local.duckdb import DuckDBWarehouse
from shared.bootstrap import Overrides
from shared.core.messages import FileReady, WalletTask
from shared.embedded.runner import EmbeddedRunner, RunConfig
from shared.ports.publisher import Topic, publish_message
from shared.settings import Settings
from tests.fakes import FakeTradeSource, budget


def test_the_run_never_ends_while_wallets_wait_even_when_the_queue_drains_between_dispatches(tmp_path):
    """300 one-trade wallets against an instant source, 25 in flight at a time: the queue is empty long
    before the next (throttled) dispatch — an idle queue alone must not end the run."""
    wallets = [f"0x{i:040x}" for i in range(1, 301)]
    deps = bootstrap.embedded(
        Settings(), db=tmp_path / "w.duckdb", o=Overrides(source=FakeTradeSource({w: 1 for w in wallets}))
    )
    deps.warehouse.create_schema()
    deps.warehouse.add_traders(wallets)
    config = RunConfig(run_id="r1", budget=budget(), lease_seconds=3600, workers=4, max_in_flight=25)
    EmbeddedRunner(config, deps).run()
    status = deps.warehouse.status(datetime.now(UTC))
    assert status.by_status == {"complete": 300} and status.trades == 300


def test_the_runner_dead_letters_a_file_ready_for_a_file_that_is_not_one_of_its_parts(tmp_path):
    """The embedded run trusts only its parts folder, through the same load handler as the loader."""
    w1, w2 = "0x" + "1" * 40, "0x" + "2" * 40
    deps = bootstrap.embedded(Settings(), db=tmp_path / "w.duckdb", o=Overrides(source=FakeTradeSource({w1: 3})))
    deps.warehouse.create_schema()
    deps.warehouse.add_traders([w1])
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text("")
    forged = FileReady(run_id="r1", wallet=w2, part=0, uri=outside.as_uri(), rows=0, final=True)
    publish_message(deps.bus, Topic.FILES, forged)
    config = RunConfig(run_id="r1", budget=budget(), lease_seconds=3600, workers=2, max_in_flight=5)
    EmbeddedRunner(config, deps).run()
    [letter] = [s.letter for s in deps.dead_letters.all()]
    assert letter.error_class == "UntrustedPart" and "not in this loader's store" in letter.error
    status = deps.warehouse.status(datetime.now(UTC))
    assert status.by_status == {"complete": 1} and status.trades == 3


class CommitRecorder(DuckDBWarehouse):
    """The DuckDB warehouse, recording the part files' rows of each commit_batch."""

    batch_rows = 25

    def __init__(self, path):
        super().__init__(path)
        self.commits: list[list[int]] = []

    def commit_batch(self, files, segments, checkpoints, now):
        self.commits.append([f.rows for f in files if f.rows > 0])
        super().commit_batch(files, segments, checkpoints, now)


def test_the_loader_commits_at_most_the_warehouses_batch_rows_in_one_transaction(tmp_path):
    """DuckDB's merge holds a batch's rows in memory: the runner splits what its loader takes from the
    bus into transactions of at most `batch_rows` rows (a bigger part alone), and every row lands."""
    wallets = [f"0x{i:040x}" for i in range(1, 9)]
    warehouse = CommitRecorder(tmp_path / "w.duckdb")
    source = FakeTradeSource({w: 30 for w in wallets}, page_size=10)
    deps = bootstrap.embedded(Settings(), db=tmp_path / "w.duckdb", o=Overrides(warehouse=warehouse, source=source))
    deps.warehouse.create_schema()
    deps.warehouse.add_traders(wallets)
    parts = budget(max_pages=1)  # one page of 10 rows a part
    config = RunConfig(run_id="r1", budget=parts, lease_seconds=3600, workers=4, max_in_flight=8)
    EmbeddedRunner(config, deps).run()
    assert all(sum(rows) <= warehouse.batch_rows or len(rows) == 1 for rows in warehouse.commits)
    assert any(len(rows) > 1 for rows in warehouse.commits)  # files are still grouped up to the limit
    status = deps.warehouse.status(datetime.now(UTC))
    assert status.by_status == {"complete": 8} and status.trades == 8 * 30


def test_dispatch_comes_again_soon_only_when_it_could_find_work(tmp_path):
    """The dispatcher's queries wait behind the loader's transactions: a dispatch every 0.25 s is for when
    it could find something (the last one published, or a wallet completed since), and the workers may
    soon run dry; otherwise every 2 s, or at once when nothing at all is queued."""
    deps = bootstrap.embedded(Settings(), db=tmp_path / "w.duckdb", o=Overrides(source=FakeTradeSource({})))
    deps.warehouse.create_schema()
    config = RunConfig(run_id="r1", budget=budget(), lease_seconds=3600, workers=2, max_in_flight=5)
    runner = EmbeddedRunner(config, deps)
    assert not runner._dispatch_due(0.1, idle=True)  # never more often than every 0.25 s
    assert runner._dispatch_due(0.3, idle=True)  # nothing queued: dispatch (and maybe end the run)

    publish_message(deps.bus, Topic.WALLETS, WalletTask(run_id="r1", wallet="0x" + "1" * 40))
    runner._last_published = False  # the last dispatch found nothing, and no wallet completed since
    runner._completed_at_dispatch = runner.progress.wallets_completed
    assert not runner._dispatch_due(0.3, idle=False)
    assert not runner._dispatch_due(1.9, idle=False)
    assert runner._dispatch_due(2.0, idle=False)  # but every 2 s still (retries, expired leases, lookups)

    runner.progress.wallets_completed += 1  # a wallet completed: room under max_in_flight
    assert runner._dispatch_due(0.3, idle=False)
    runner._completed_at_dispatch = runner.progress.wallets_completed
    runner._last_published = True  # the last dispatch published: there may be more
    assert runner._dispatch_due(0.3, idle=False)

    for i in range(2, 2 * config.workers + 1):  # the workers have enough queued: no need yet
        publish_message(deps.bus, Topic.WALLETS, WalletTask(run_id="r1", wallet=f"0x{i:040x}"))
    assert deps.bus.pending(Topic.WALLETS) >= 2 * config.workers
    assert not runner._dispatch_due(0.3, idle=False)
    deps.warehouse.close()
