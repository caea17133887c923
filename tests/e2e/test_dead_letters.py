"""Wallets the API keeps failing end in the wallets dead-letter topic with their reason; once the
cause is gone, POST /dead-letters/replay brings them in and the warehouse is still exact.

Two ways in: a 400 is permanent for that wallet (the fetcher dead-letters it with the API's answer
and acks), a 500 is transient (503, Pub/Sub backs off and forwards it after max delivery attempts)."""

from __future__ import annotations

import pytest
import requests

from emulators.dome.config import SimConfig
from emulators.dome.universe import Universe
from shared.resources import load_resources
from tests.e2e.pipeline import assert_exact, ground_truth, post, settled, status, wait_for

pytestmark = [pytest.mark.emulators, pytest.mark.slow]

SEED = 13
SPECIAL = Universe(SEED, 0, 0).special  # the special wallets' addresses depend on the seed only
PERMANENT, TRANSIENT = SPECIAL["n1001"], SPECIAL["partial_fills"]


@pytest.fixture(scope="module")
def cloud(start_cloud):
    sim = SimConfig(seed=SEED, size=4, whale_trades=1_500, fail_wallets={PERMANENT: 400, TRANSIENT: 500})
    return start_cloud(sim, HTTP_MAX_ATTEMPTS="2")  # each failing delivery asks the API twice


def test_failing_wallets_are_dead_lettered_with_their_reason_and_replayed_once_fixed(cloud, tmp_path):
    others = len(cloud.wallets) - 2
    post(cloud, "/dispatch", {"mode": "backfill"})
    stuck = wait_for(cloud, "two dead letters", settled(cloud, complete=others, dead_letters=2))
    # Parked by their letters: not in flight (nothing works on them), and not dispatched again until an
    # operator replays them (tests/contract checks the same after their leases have run out).
    assert (stuck["in_flight"], stuck["parked"]) == (0, 2)
    assert post(cloud, "/dispatch", {"mode": "backfill"})["published"] == 0

    # The 400 was asked once; the 500 by every client attempt of every Pub/Sub delivery.
    requests_by_wallet = cloud.sim.state.stats.by_wallet
    deliveries = load_resources().subscription("wallets-push").max_delivery_attempts
    assert requests_by_wallet[PERMANENT] == 1
    assert requests_by_wallet[TRANSIENT] == deliveries * int(cloud.config.service_env["HTTP_MAX_ATTEMPTS"])

    listing = post(cloud, "/dead-letters/replay", {"dry_run": True})
    letters = {letter["wallet"]: letter for letter in listing["letters"]}
    assert listing["matched"] == 2 and set(letters) == {PERMANENT, TRANSIENT}
    assert letters[PERMANENT]["error_class"] == "PermanentError"
    assert "HTTP 400" in letters[PERMANENT]["error"]
    assert letters[TRANSIENT]["error_class"] == "MaxDeliveryAttempts"  # forwarded by Pub/Sub itself
    assert status(cloud)["dead_letters"] == 2  # a dry run leaves them where they are

    # The operator fixes the cause (here: the simulator stops failing), then replays, one filter at a time.
    response = requests.post(f"{cloud.sim.root_url}/_sim/faults", json={"fail_wallets": {}}, timeout=10)
    assert response.status_code == 200
    first = post(cloud, "/dead-letters/replay", {"wallet": PERMANENT})
    assert [letter["wallet"] for letter in first["letters"]] == [PERMANENT]
    wait_for(cloud, "the replayed wallet complete", settled(cloud, complete=others + 1, dead_letters=1))
    second = post(cloud, "/dead-letters/replay", {"error_class": "MaxDeliveryAttempts"})
    assert [letter["wallet"] for letter in second["letters"]] == [TRANSIENT]

    done = wait_for(cloud, "every wallet complete", settled(cloud, complete=len(cloud.wallets)))
    assert done["in_flight"] == 0
    assert post(cloud, "/dead-letters/replay", {"dry_run": True})["matched"] == 0
    assert_exact(cloud, ground_truth(cloud, cloud.wallets, tmp_path))
