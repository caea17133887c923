"""design rule 10: both windows of the key hold, measured on an injected clock."""

import threading

from shared.adapters.sources.limiter import TIERS, RateLimiter, Window
from tests.fakes import FakeClock


def sends_in(limiter: RateLimiter, clock: FakeClock, seconds: float) -> list[float]:
    start, times = clock.monotonic(), []
    while True:
        limiter.acquire()
        if clock.monotonic() - start >= seconds:
            return times
        times.append(clock.monotonic() - start)


def max_in_window(times: list[float], width: float) -> int:
    j, best = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_per_second_window_caps_bursts():
    clock = FakeClock()
    limiter = RateLimiter(TIERS["dev"], clock=clock, margin=0)
    times = sends_in(limiter, clock, 30)
    assert max_in_window(times, 1.0) <= 100


def test_ten_second_window_caps_the_sustained_rate():
    clock = FakeClock()
    limiter = RateLimiter(TIERS["dev"], clock=clock, margin=0)
    times = sends_in(limiter, clock, 60)
    assert max_in_window(times, 10.0) <= 500
    # and it is not needlessly slow: the sustained limit (50/s) is reached
    assert len(times) >= 0.95 * 50 * 60


def test_free_tier_both_windows():
    clock = FakeClock()
    limiter = RateLimiter(TIERS["free"], clock=clock, margin=0)
    times = sends_in(limiter, clock, 40)
    assert max_in_window(times, 1.0) <= 10 and max_in_window(times, 10.0) <= 100


def test_margin_keeps_a_safety_gap_at_the_window_edge():
    clock = FakeClock()
    limiter = RateLimiter((Window(5, 10.0),), clock=clock, margin=0.05)
    times = sends_in(limiter, clock, 25)
    assert max_in_window(times, 10.5) <= 5


def test_pause_until_holds_every_caller():
    clock = FakeClock()
    limiter = RateLimiter(TIERS["pro"], clock=clock)
    limiter.pause_until(clock.monotonic() + 7)
    waited = limiter.acquire()
    assert waited >= 7


def test_limiter_is_shared_safely_between_threads():
    clock = FakeClock()
    lock = threading.Lock()
    limiter = RateLimiter((Window(50, 1.0),), clock=clock, margin=0)
    stamps: list[float] = []

    def worker():
        for _ in range(40):
            limiter.acquire()
            with lock:
                stamps.append(clock.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 200
    assert max_in_window(sorted(stamps), 1.0) <= 50
