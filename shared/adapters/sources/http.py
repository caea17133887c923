"""What every HTTP trade source shares: one pooled session, classified errors, retries that honour
the server's Retry-After / x-ratelimit-reset, the client-side limiter, and the breaker.

    requests.Timeout / ConnectionError / ChunkedEncodingError  -> SourceUnavailable (transient)
    429                                                        -> RateLimited (transient; pauses the limiter)
    5xx                                                        -> SourceUnavailable (transient)
    200 with a body that is not JSON                           -> TruncatedPage (transient)
    3xx                                                        -> ConfigurationError (redirects are refused)
    anything else                                              -> the source's `classify_status`
Transient errors are retried here first (jittered exponential back-off), at most `max_attempts` times
and for at most `retry_seconds` in all; the last one propagates. Every failure of the unavailable kind
(connection, timeout, 5xx, not JSON) is counted by the process's breaker, across wallets: when it
opens, requests stop at once with SourceDown (systemic), the cause named.

Timeouts are (connect, read): a server that accepts and never answers is noticed after `read_timeout`
seconds of silence, and the error says which request and how long it waited.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from shared.adapters.clock import SystemClock
from shared.adapters.sources.breaker import Breaker
from shared.adapters.sources.limiter import RateLimiter
from shared.core.errors import (
    ConfigurationError,
    PipelineError,
    RateLimited,
    SourceUnavailable,
    TransientError,
    TruncatedPage,
    upstream_text,
)
from shared.ports.clock import Clock
from shared.ports.source import BreakerState, SourceStats

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


# An integer literal of 19 digits or more as an object's value or an array's first element (where the
# APIs put numbers): orjson would read it as a float (a token id sent unquoted would lose its digits),
# so such a body goes through the stdlib, which keeps every digit. Anchored on ':' and '[' because a
# search from every ',' costs as much as the parse it would save (and a leading literal keeps it fast).
_LONG_VALUE, _LONG_FIRST = re.compile(rb":\s*-?\d{19}"), re.compile(rb"\[\s*-?\d{19}")


def loads_exact(body: bytes) -> Any:
    """JSON as the stdlib reads it, three times faster where that cannot differ (a page of 1,000 trades
    is ~700 KB, and parsing it was a sixth of a page's CPU): orjson, unless the body holds a number it
    would round or refuse."""
    if not (_LONG_VALUE.search(body) or _LONG_FIRST.search(body)):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # NaN, 1e400, bad UTF-8: the stdlib decides (and raises its own error)
    return json.loads(body)


class HttpTradeClient:
    """GET JSON with limiter, retries and classification. Subclasses say what a non-2xx means."""

    def __init__(
        self,
        base_url: str,
        limiter: RateLimiter,
        *,
        headers: dict[str, str] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        max_attempts: int = 6,
        retry_seconds: float = 90.0,
        breaker: Breaker | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        clock: Clock | None = None,
        pool_size: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.clock = clock or SystemClock()
        self.breaker = breaker or Breaker(self.clock)
        self.stats = SourceStats()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(headers or {})
        self._rng = random.Random()

    def close(self) -> None:
        self.session.close()

    def breaker_state(self) -> BreakerState:
        return self.breaker.state()

    def pace_per_second(self) -> float:
        return self.limiter.rate_per_second

    def classify_status(self, response: requests.Response, context: dict[str, Any]) -> PipelineError:
        raise NotImplementedError

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        if hinted is not None:
            return float(hinted) + self._rng.uniform(0, 0.25)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    def get_json(self, path: str, params: dict[str, Any], context: dict[str, Any], attempts: int | None = None) -> Any:
        """`attempts`: fewer retries than the client's default (a lookup batch splits instead)."""
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(attempts or self.max_attempts) | stop_after_delay(self.retry_seconds),
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
        self.breaker.check()
        try:
            body = self._request(path, params, context)
        except (SourceUnavailable, TruncatedPage) as exc:
            down = self.breaker.failure(context.get("wallet"), str(exc))
            if down is not None:
                raise down from None
            raise
        self.breaker.success()
        return body

    def _request(self, path: str, params: dict[str, Any], context: dict[str, Any]) -> Any:
        self.limiter.acquire()
        self.stats.requests += 1
        url = self.base_url + path
        try:
            response = self.session.get(url, params=params, timeout=self.timeout, allow_redirects=False, stream=True)
            # The body in one read: `.content` reads it 10 KB at a time, ~90 socket reads for a 700 KB page,
            # each letting go of the GIL and waiting to take it back behind the other workers.
            body = b"".join(response.iter_content(chunk_size=None))
            response._content = body  # what `.content` would hold (error_body reads it)
        except requests.Timeout as exc:
            waited = self.timeout[0] if isinstance(exc, requests.ConnectTimeout) else self.timeout[1]
            what = "no connection" if isinstance(exc, requests.ConnectTimeout) else "no answer"
            raise SourceUnavailable(f"GET {url}: {what} within {waited:g} s", **context) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise SourceUnavailable(f"GET {url}: {type(exc).__name__}: {_reason(exc)}", **context) from None
        status = response.status_code
        self.limiter.observe(status, response.headers)  # the fleet's share learns from every answer
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
        if 300 <= status < 400:
            # Refused, not followed: a redirect to another origin would drop the Authorization header, and
            # the 401 that follows would blame the key.
            location = response.headers.get("Location", "?")
            raise ConfigurationError(
                f"GET {url} answered {status}, redirecting to {location}: redirects are not followed; "
                "set the API's base URL to the address it redirects to",
                **context,
            )
        if status >= 500:
            unavailable = SourceUnavailable(f"HTTP {status} from the API", **context)
            hinted = retry_after_seconds(response.headers)  # a 503 may say when to come back
            if hinted is not None:
                unavailable.retry_after = min(hinted, 120.0)  # type: ignore[attr-defined]
            raise unavailable
        if status != 200:
            raise self.classify_status(response, context)
        try:
            return loads_exact(body)
        except ValueError:
            size = len(body)
            raise TruncatedPage(f"HTTP 200 with a body that is not JSON ({size} bytes)", **context) from None


def _reason(exc: Exception) -> str:
    """The innermost cause of a connection error, short (urllib3 nests them three deep)."""
    inner: BaseException = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    return upstream_text(str(inner), 200) or type(inner).__name__


def error_body(response: requests.Response) -> dict[str, Any]:
    """An error answer's fields, each fit to quote (`upstream_text`: redacted, at most 300 characters):
    a server that echoes the request, Authorization header and all, must not put the key in an error."""
    try:
        body = response.json()
    except ValueError:
        return {"message": upstream_text(response.text)}
    if not isinstance(body, dict):
        return {"message": upstream_text(json.dumps(body, default=str))}
    return {k: _quotable(v) for k, v in body.items()}


def _quotable(value: Any) -> Any:
    """Flags and numbers as they are (`retryable`); text, lists and objects as cut, redacted text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return upstream_text(value if isinstance(value, str) else json.dumps(value, default=str))
