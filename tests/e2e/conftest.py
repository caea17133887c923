"""One DevCloud per test module: the emulators, the simulator and the three services as processes,
the same orchestration as `make dev`, with short back-off so retries and dead letters take seconds."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from emulators.dev import DevCloud, DevConfig
from emulators.dome.config import SimConfig

# What every e2e cloud runs with: small parts so wallets span many push requests, few client-side
# attempts so API faults also reach Pub/Sub's redelivery, short batches.
BASE_ENV = {
    "FETCH_MAX_PAGES": "1",
    "FETCH_BUDGET_SECONDS": "5",
    "HTTP_MAX_ATTEMPTS": "3",
    "LOADER_FLUSH_FILES": "20",
    "LOADER_FLUSH_SECONDS": "1",
    "LOOKUPS": "false",  # markets and events have their own e2e test (test_markets.py)
}

CloudFactory = Callable[..., DevCloud]


@pytest.fixture(scope="module")
def start_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudFactory]:
    """`start_cloud(sim=SimConfig(...), FETCH_MAX_PAGES="2", ...)`: a running DevCloud, stopped after
    the module. Its logs stay in the test's temp folder."""
    clouds: list[DevCloud] = []

    def start(sim: SimConfig, source: str = "dome", **env: str) -> DevCloud:
        config = DevConfig(
            project="e2e",
            sim=sim,
            source=source,
            retry_scale=0.01,
            service_env={**BASE_ENV, **env},
            workdir=tmp_path_factory.mktemp("cloud"),
        )
        try:
            cloud = DevCloud(config).start()
        except (OSError, RuntimeError) as exc:
            pytest.fail(f"the local cloud did not start: {exc}")
        clouds.append(cloud)
        return cloud

    yield start
    for cloud in clouds:
        cloud.stop()
