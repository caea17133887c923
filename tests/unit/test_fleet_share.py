"""design rule 10 across the fleet: instances that share one key find their parts of it from the API's
answers, in fake time (tests/fleet.py: each instance's real RateLimiter and FleetShare against one fake
server counting the key's sliding windows, as the Dome simulator does)."""

import pytest

from shared.adapters.sources.limiter import TIERS, Window
from shared.adapters.sources.share import DECREASE, TARGET_FILL, FleetShare
from shared.bootstrap import key_limiter
from shared.settings import Settings
from tests.fakes import FakeClock
from tests.fleet import Fleet, most_in_window

DEV = TIERS["dev"]  # 100/s and 500 per 10 s: 50/s sustained
HEADERS = {"x-ratelimit-limit": "500", "x-ratelimit-remaining": "400"}


def assert_each_instance_stays_inside_the_key(fleet: Fleet) -> None:
    """One instance never exceeds the key by itself, whatever its share says."""
    for instance in fleet.instances:
        for window in fleet.windows:
            assert most_in_window(instance.sent, window.seconds) <= window.limit


def test_alone_an_instance_grows_from_its_floor_to_the_whole_key():
    fleet = Fleet(DEV, most_instances=10)
    alone = fleet.add()
    fleet.run(60)
    assert alone.rates[0][1] < 10  # it started at its floor, 47.5 / 10
    assert fleet.used(5, 60) >= 0.9
    assert fleet.refused == []
    assert_each_instance_stays_inside_the_key(fleet)


def test_alone_against_a_server_without_headers_it_grows_to_the_whole_key_too():
    fleet = Fleet(DEV, most_instances=10, headers=False)
    fleet.add()
    fleet.run(120)
    assert fleet.used(40, 120) >= 0.9
    assert fleet.refused == []


@pytest.mark.parametrize("tier", ["dev", "pro"])
def test_three_instances_share_the_key_and_use_it_whole_without_a_429(tier):
    fleet = Fleet(TIERS[tier], most_instances=10, concurrency=40)
    for _ in range(3):
        fleet.add()
    fleet.run(120)
    assert fleet.used(10, 120) >= 0.9
    assert fleet.refused == []
    parts = [i.admitted_between(60, 120) for i in fleet.instances]
    assert max(parts) <= 1.2 * min(parts)  # started together: about equal parts
    assert_each_instance_stays_inside_the_key(fleet)


def test_three_instances_against_a_server_without_headers_adapt_on_429s_alone():
    fleet = Fleet(DEV, most_instances=10, headers=False)
    for _ in range(3):
        fleet.add()
    fleet.run(300)
    assert fleet.used(30, 300) >= 0.85
    assert 0 < fleet.refused_share() < 0.01  # the 429s are the signal: a few, no storm
    assert_each_instance_stays_inside_the_key(fleet)


def test_as_many_instances_as_the_most_each_keeps_its_floor_and_the_windows_hold():
    fleet = Fleet(DEV, most_instances=10)
    for k in range(10):
        fleet.add(start=0.37 * k)
    fleet.run(120)
    assert fleet.used(10, 120) >= 0.9
    assert fleet.refused_share() < 0.01
    floor = TARGET_FILL * 50 / 10
    assert all(i.admitted_between(20, 120) / 100 >= 0.95 * floor for i in fleet.instances)


def test_the_instances_that_stay_take_over_the_part_of_those_that_leave():
    fleet = Fleet(DEV, most_instances=10)
    stays = fleet.add()
    fleet.add(stop=60)
    fleet.add(stop=60)
    fleet.run(120)
    assert stays.admitted_between(30, 60) / 30 < 20  # a third of the key
    assert fleet.used(75, 120) >= 0.9  # within about one 10 s window, the whole key again
    assert fleet.refused == []


def test_a_user_of_the_key_outside_the_fleet_is_left_its_room():
    fleet = Fleet(DEV, most_instances=10)
    outsider = fleet.add(windows=(Window(10, 1.0),))  # 10/s of the key, not in the fleet
    for _ in range(3):
        fleet.add()
    fleet.run(120)
    assert outsider.admitted_between(20, 120) / 100 >= 9.5 and outsider.refused == 0
    assert fleet.used(20, 120) >= 0.9
    assert fleet.refused == []


def test_a_429_cuts_the_rate_once_per_cooldown_and_never_below_the_floor():
    share = FleetShare(DEV, instances=10)
    for t in range(1, 40):  # alone by the headers: it climbs towards the target
        share.observe(200, {"x-ratelimit-limit": "500", "x-ratelimit-remaining": str(500 - t)}, now=t / 10)
    before = share.rate
    assert before > 2 * share.floor
    for _ in range(5):  # the requests in flight together: refused for one reason, cut once
        share.observe(429, {"Retry-After": "1"}, now=4.0)
    assert share.rate == pytest.approx(before * DECREASE)
    share.observe(429, None, now=5.1)
    assert share.rate == pytest.approx(before * DECREASE**2)
    for k in range(20):
        share.observe(429, None, now=6.2 + 1.1 * k)
    assert share.rate == share.floor


def test_headers_that_name_no_window_of_the_key_are_not_read():
    share = FleetShare(DEV, instances=10)
    unknown = {"x-ratelimit-limit": "1234", "x-ratelimit-remaining": "1233"}  # limit of no window
    share.observe(200, unknown, now=0.0)
    share.observe(200, unknown, now=0.1)
    # The known window would have set ~47.5 x its part; unread, the rate only probes (slow start).
    assert share.rate < 1.1 * share.floor


def test_the_pace_spaces_requests_at_the_shares_rate():
    share = FleetShare(DEV, instances=10)
    share.sent(now=0.0)
    assert share.wait(now=0.0) == pytest.approx(1 / share.floor)


def test_one_instance_means_the_whole_key_and_no_share():
    limiter = key_limiter(DEV, Settings(), FakeClock())
    assert limiter.share is None and limiter.rate_per_second == 50
    fleet = key_limiter(DEV, Settings(fetcher_max_instances=10), FakeClock())
    assert fleet.share is not None and fleet.share.floor == pytest.approx(TARGET_FILL * 50 / 10)
    assert fleet.windows == DEV  # the ceiling: the key's windows, not a tenth of them
