"""What every HTTP trade source shares: one pooled session, classified errors, retries that honour
the server's Retry-After / x-ratelimit-reset, and the client-side limiter.

    requests.Timeout / ConnectionError / ChunkedEncodingError  -> SourceUnavailable (transient)
    429                                                        -> RateLimited (transient; pauses the limiter)
    5xx                                                        -> SourceUnavailable (transient)
    200 with a body that is not JSON                           -> TruncatedPage (transient)
    anything else                                              -> the source's `classify_status`
Transient errors are retried here first (jittered exponential back-off); the last one propagates.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from shared.adapters.clock import SystemClock
from shared.adapters.sources.limiter import RateLimiter
from shared.core.errors import PipelineError, RateLimited, SourceUnavailable, TransientError, TruncatedPage
from shared.ports.clock import Clock
from shared.ports.source import SourceStats

log = logging.getLogger(__name__)


def retry_after_seconds(headers: Any, wall_now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After (delta or HTTP date) or x-ratelimit-reset (epoch seconds)."""
    wall_now = time.time() if wall_now is None else wall_now
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - wall_now)
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            reset_at = float(reset)
        except ValueError:
            return None
        # Some servers send seconds-until-reset rather than an epoch; both are plausible.
        return max(0.0, reset_at - wall_now) if reset_at > 1e9 else max(0.0, reset_at)
    return None


class HttpTradeClient:
    """GET JSON with limiter, retries and classification. Subclasses say what a non-2xx means."""

    def __init__(
        self,
        base_url: str,
        limiter: RateLimiter,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        clock: Clock | None = None,
        pool_size: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.clock = clock or SystemClock()
        self.stats = SourceStats()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(headers or {})
        self._rng = random.Random()

    def close(self) -> None:
        self.session.close()

    def classify_status(self, response: requests.Response, context: dict[str, Any]) -> PipelineError:
        raise NotImplementedError

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        if hinted is not None:
            return float(hinted) + self._rng.uniform(0, 0.25)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    def get_json(self, path: str, params: dict[str, Any], context: dict[str, Any]) -> Any:
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            sleep=self.clock.sleep,
            reraise=True,
            before_sleep=lambda s: self._count_retry(s, context),
        )
        return retrying(self._get_once, path, params, context)

    def _count_retry(self, state: RetryCallState, context: dict[str, Any]) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.info("retrying after %s", exc, extra={"wallet": context.get("wallet")})

    def _get_once(self, path: str, params: dict[str, Any], context: dict[str, Any]) -> Any:
        self.limiter.acquire()
        self.stats.requests += 1
        try:
            response = self.session.get(self.base_url + path, params=params, timeout=self.timeout)
            body = response.content
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise SourceUnavailable(f"request failed: {type(exc).__name__}", **context) from None
        status = response.status_code
        if status != 200:
            self.stats.errors_by_status[status] = self.stats.errors_by_status.get(status, 0) + 1
        if status == 429:
            self.stats.rate_limited += 1
            delay = retry_after_seconds(response.headers)
            delay = 1.0 if delay is None else min(delay, 120.0)
            self.limiter.pause_until(self.clock.monotonic() + delay)
            err = RateLimited(f"429 from the API, retry after {delay:.1f}s", **context)
            err.retry_after = delay  # type: ignore[attr-defined]
            raise err
        if status >= 500:
            unavailable = SourceUnavailable(f"HTTP {status} from the API", **context)
            hinted = retry_after_seconds(response.headers)  # a 503 may say when to come back
            if hinted is not None:
                unavailable.retry_after = min(hinted, 120.0)  # type: ignore[attr-defined]
            raise unavailable
        if status != 200:
            raise self.classify_status(response, context)
        try:
            return json.loads(body)
        except ValueError:
            size = len(body)
            raise TruncatedPage(f"HTTP 200 with a body that is not JSON ({size} bytes)", **context) from None


def error_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"message": response.text[:300]}
    return body if isinstance(body, dict) else {"message": str(body)[:300]}
