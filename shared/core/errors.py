"""One error taxonomy for every handler and service.

    PipelineError
    ├── TransientError   retry later (timeouts, 5xx, 429, a truncated body): non-2xx, Pub/Sub backs off
    ├── PermanentError   this one item can never succeed (invalid address, a 400 about the wallet,
    │                    a row missing required fields): dead-letter it with the reason, then ack
    └── SystemicError    nothing will succeed until an operator acts (bad API key, quota exhausted,
                         warehouse down): non-2xx and a loud ERROR log, never dead-letter the queue

Exceptions carry structured fields (wallet, run_id, part, uri) so one log line says where it happened.

Redaction (`redact`) is here because every error text passes through PipelineError, and the log
formatters (shared/logs.py), dead letters (shared/core/messages.py) and HTTP error bodies
(shared/web/app.py) apply the same function: the API key, registered once by the settings that read
it (`register_secret`, from `Settings`), and anything shaped like `Bearer <token>` never leave the
process. Text copied from an upstream answer is redacted and cut first (`upstream_text`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

REDACTED = "[redacted]"
UPSTREAM_TEXT_LIMIT = 300  # characters of an upstream answer an error may quote
MIN_SECRET_LENGTH = 8  # shorter values would redact ordinary words; no real API key is that short
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;<>]{8,}")
_secrets: list[str] = []


def register_secret(value: str | None) -> None:
    """Never show `value` (and its URL-encoded form) again in error text, dead letters or logs."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    for form in (value, quote(value, safe="")):
        if form not in _secrets:
            _secrets.append(form)
    _secrets.sort(key=len, reverse=True)  # a longer form first, so no part of it is left behind


def redact(text: str) -> str:
    """`text` without the registered secrets and without the token of any `Bearer <token>`."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _BEARER.sub(lambda m: f"{m[1]} {REDACTED}", text)


def upstream_text(text: str, limit: int = UPSTREAM_TEXT_LIMIT) -> str:
    """Text from another system's answer, fit to quote in an error: redacted, then cut to `limit`."""
    text = redact(text)
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text):,} characters cut to {limit}]"


class PipelineError(Exception):
    kind = "pipeline"

    def __init__(self, message: str, **fields: Any) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.fields = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items() if v is not None}

    @property
    def error_class(self) -> str:
        return type(self).__name__

    def __str__(self) -> str:
        if not self.fields:
            return self.message
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.fields.items()))
        return redact(f"{self.message} ({extra})")


class TransientError(PipelineError):
    kind = "transient"


class PermanentError(PipelineError):
    kind = "permanent"


class SystemicError(PipelineError):
    kind = "systemic"


class InvalidWallet(PermanentError):
    """The address is not 0x followed by 40 hex digits."""


class InvalidMessage(PermanentError):
    """A message body that does not parse, or has an unknown version."""


class MalformedPage(PermanentError):
    """A page of the API that parses as JSON but breaks the documented shape (e.g. a row without tx_hash)."""


class RunawayWallet(PermanentError):
    """A walk that does not end: a cursor the API gave before, endless empty pages, or more pages for
    one wallet than the guard allows (MAX_PAGES_PER_WALLET)."""


class UntrustedPart(PermanentError):
    """A FileReady that does not announce a part file this pipeline's fetcher wrote for it: a uri outside
    the loader's own store, a name other than the one `fetch` gives that run, wallet and part, or an
    invalid wallet. Dead-lettered with the reason, never loaded."""


class TruncatedPage(TransientError):
    """A page of the API that is not valid JSON: usually a cut connection, so worth retrying."""


class RateLimited(TransientError):
    """The API answered 429 more times than the client retries."""


class SourceUnavailable(TransientError):
    """Timeouts, connection errors and 5xx after the client's own retries."""


class SourceDown(SystemicError):
    """The trade API fails for every wallet, not for one (the breaker, shared/adapters/sources/breaker.py):
    the run stops and the wallets stay resumable."""


class AuthFailure(SystemicError):
    """The API rejected the key (401 that is not the offset-deprecation answer, or 403)."""


class WarehouseUnavailable(SystemicError):
    """The warehouse could not be reached or refused the transaction."""


class ConfigurationError(SystemicError):
    """Settings, a path or a warehouse that cannot work as given: fixed by the user, not by waiting."""


class SchemaMismatch(ConfigurationError):
    """The warehouse is missing, or its tables are not the ones the table spec describes."""


def classify(exc: BaseException) -> str:
    """The taxonomy kind of any exception; anything unknown counts as transient (retry, never drop)."""
    if isinstance(exc, PipelineError):
        return exc.kind
    return "transient"
