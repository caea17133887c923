"""The embedded runner's own promises: it ends only when every wallet is complete or dead-lettered."""

from datetime import UTC, datetime

from shared import bootstrap
from shared.bootstrap import Overrides
from shared.embedded.runner import EmbeddedRunner, RunConfig
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
