"""One instance's share of an API key that a fleet of instances uses at once, found without talking
to the others (Cloud Run instances share no store): the API's own answers say how full the key is.

The instance paces its requests at `rate` (requests per second, evenly spaced), between `floor`
(TARGET_FILL of the key's sustained rate ÷ the most instances: what each gets even when every
instance runs) and the whole sustained rate (alone, it uses the whole key). The key's windows stay the hard ceiling in
`RateLimiter`, so one instance never exceeds the key by itself, whatever the rate says.

How the rate moves (docs/design.md, rule 10):

- **With rate-limit headers** (`x-ratelimit-limit` naming one of the key's windows by its limit, and
  `x-ratelimit-remaining`): the server counted `used = limit - remaining` requests of the whole key in
  that window; this instance knows how many of them were its own. Its rate becomes its part of the
  fleet's target, `TARGET_FILL x sustained x own / used`. Every instance doing the same puts the
  fleet's total at the target whatever the number of instances, at once and without a 429: the parts
  add up to one. Both counts cover the same window, so the 10 s window's lag does not make it
  overshoot. A user of the key outside the fleet is in `used` too, and the fleet leaves room for it.
  The parts follow what each instance has been sending: instances that start together get equal
  parts; one that joins a busy fleet starts at its floor and grows as the others' demand falls.
- **Without them** (a server that sends none, or a limit that names no window of the key): the 429s
  are the only signal. The rate doubles per long window until the first 429 (TCP's slow start), then
  grows by INCREASE floors per long window; a 429 cuts it (`DECREASE`), once per `COOLDOWN_SECONDS`
  however many requests in flight were refused together.
- **A 429** always cuts the rate that way too; the limiter's pause (Retry-After / x-ratelimit-reset)
  still holds every caller of the instance.

With one instance (`instances=1`, the embedded run) there is nothing to share: `RateLimiter` then has
no share at all and sends as fast as the key's windows allow, as before.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping

from shared.adapters.sources.limiter import Window

TARGET_FILL = 0.95
"""The fleet aims at this fraction of the key's sustained rate: the rest absorbs counts that are a
round trip old and instances that move at slightly different moments."""
SMOOTHING = 0.25
"""Each observation moves the rate this fraction of the way to its new target: a page's count of one
second's window is noisy, the average of a few is not."""
INCREASE = 0.25
"""Without headers the rate grows by this many floors per long window."""
DECREASE = 0.7
"""A 429 multiplies the rate by this."""
COOLDOWN_SECONDS = 1.0
"""After a cut, no other cut and no increase for this long: the requests already in flight when the
first 429 came back are refused for the same reason."""


class FleetShare:
    """The adaptive pace of one instance; thread-safe. `RateLimiter` asks it how long to wait and
    tells it when a request went out; the HTTP client tells it every answer (`observe`)."""

    def __init__(self, windows: tuple[Window, ...], instances: int, target_fill: float = TARGET_FILL) -> None:
        if instances < 2:
            raise ValueError("a share needs at least two instances; one instance uses the whole key")
        windows = tuple(w for w in windows if w.limit > 0)
        if not windows:
            raise ValueError("a share of an unlimited key means nothing")
        self.windows = windows
        self.instances = instances
        self.sustained = min(w.limit / w.seconds for w in windows)
        self.target = target_fill * self.sustained
        self.floor = self.target / instances
        self.rate = self.floor
        self._by_limit = {w.limit: w for w in sorted(windows, key=lambda w: w.seconds, reverse=True)}
        self._own: dict[Window, deque[float]] = {w: deque() for w in windows}
        self._longest = max(w.seconds for w in windows)
        self._next_send = float("-inf")
        self._quiet_until = float("-inf")
        self._last_seen: float | None = None
        self._slow_start = True
        self._lock = threading.Lock()

    # -- pacing (called by RateLimiter under its own lock) -----------------------------------------

    def wait(self, now: float) -> float:
        with self._lock:
            return max(0.0, self._next_send - now)

    def sent(self, now: float) -> None:
        with self._lock:
            self._next_send = max(self._next_send, now) + 1.0 / self.rate

    # -- feedback ----------------------------------------------------------------------------------

    def observe(self, status: int, headers: Mapping[str, str] | None, now: float) -> None:
        """One answer of the API. A 429 cuts the rate. Any other status passed the key's windows and
        counts as this instance's own; then headers that name a window set the rate, and without
        them the rate probes upwards."""
        with self._lock:
            since, self._last_seen = self._last_seen, now
            if status == 429:
                self._slow_start = False
                if now >= self._quiet_until:
                    self._set(self.rate * DECREASE)
                    self._quiet_until = now + COOLDOWN_SECONDS
                return
            for window, own in self._own.items():
                own.append(now)
                while own and own[0] <= now - window.seconds:
                    own.popleft()
            if since is None:
                return
            elapsed = min(now - since, 1.0)
            counted = _counted(headers, self._by_limit)
            if counted is not None:
                window, used = counted
                part = min(1.0, len(self._own[window]) / used)
                wanted = self.rate + SMOOTHING * (self._target(1.0 / part) * part - self.rate)
                rate = min(wanted, self.rate * 2.0**elapsed)  # at most double per second
            elif self._slow_start:  # no 429 yet: double per long window, as TCP's slow start
                rate = self.rate * 2.0 ** (elapsed / self._longest)
            else:  # N instances probe N x INCREASE floors per long window together
                rate = self.rate + INCREASE * self.floor * elapsed / self._longest
            if rate < self.rate or now >= self._quiet_until:
                self._set(rate)

    def _target(self, instances: float) -> float:
        """The fleet's target rate when about this many instances share the key: TARGET_FILL of the
        sustained rate, and in a small window room for one request more per instance (several evenly
        paced instances can each land one more request in a window than their rates say; the free
        tier's 10 per second is where that binds)."""
        return min(self.target, *((w.limit - instances) / w.seconds for w in self.windows))

    def _set(self, rate: float) -> None:
        self.rate = min(self.sustained, max(self.floor, rate))


def _counted(headers: Mapping[str, str] | None, by_limit: Mapping[int, Window]) -> tuple[Window, int] | None:
    """(the window the headers speak of, requests of the whole key it holds), or None when the headers
    are missing, unreadable, or name a limit that is none of the key's windows."""
    if not headers:
        return None
    try:
        limit = int(headers.get("x-ratelimit-limit") or "")
        remaining = int(headers.get("x-ratelimit-remaining") or "")
    except ValueError:
        return None
    window = by_limit.get(limit)
    used = limit - remaining
    if window is None or not 0 < used <= limit:
        return None
    return window, used
