"""Versioned messages between the services (docs/design.md, Messages).

Every message is JSON in the Pub/Sub data field. `v` is checked first, so an unknown version gets its
own clear error instead of a field-by-field validation dump. Unknown fields are rejected: a typo in a
producer must not silently drop a value.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.core.errors import InvalidMessage, PipelineError, redact

VERSION = 1
RunId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$")]
SourceName = Literal["dome", "polymarket"]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = 1  # VERSION

    def encode(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    def attributes(self) -> dict[str, str]:
        """Pub/Sub attributes: what a person filtering the dead letters looks for, without decoding."""
        out = {"v": str(self.v), "type": type(self).__name__}
        for name in ("run_id", "wallet", "part", "kind", "estimate"):
            value = getattr(self, name, None)
            if value is not None:
                out[name] = str(value)
        return out


Epoch = Annotated[int, Field(ge=0)]
# A time window of a walk, in whole seconds, both ends inclusive; None: open on that side.
Window = tuple[Epoch | None, Epoch | None]


class WalletTask(Message):
    """One wallet, or the continuation of a wallet from `cursor` as part `part`.

    `since`/`until` bound the run's whole walk (a sync walks from its watermark); `window`, when set,
    is the stretch of it this task's chain of parts covers (a big wallet is split into windows fetched
    in parallel, docs/design.md "Windows"); `estimate` is the pages that chain is expected to take."""

    run_id: RunId
    wallet: str = Field(min_length=1, max_length=200)
    part: int = Field(default=0, ge=0)
    cursor: str | None = Field(default=None, max_length=4096)
    since: int | None = Field(default=None, ge=0)
    until: int | None = Field(default=None, ge=0)
    window: Window | None = None
    estimate: int | None = Field(default=None, ge=0)
    source: SourceName = "dome"
    # What the earlier parts of this wallet's walk saw, for the fetcher's guards against an API that
    # never ends a walk: pages so far, the current run of empty pages, digests of the last cursors.
    pages: int = Field(default=0, ge=0)
    empty_pages: int = Field(default=0, ge=0)
    recent: tuple[Annotated[str, Field(max_length=16)], ...] = Field(default=(), max_length=32)
    # What the chain has read in its earlier parts, for the split decision: its newest trade's second,
    # its rows, and whether its pages came newest first inside the window (else it is never split).
    newest: int | None = Field(default=None, ge=0)
    walked_rows: int = Field(default=0, ge=0)
    splittable: bool = True

    @model_validator(mode="after")
    def _window_inside_the_walk(self) -> WalletTask:
        check_window(self.since, self.until, self.window)
        return self

    @property
    def bounds(self) -> tuple[int | None, int | None]:
        """What this task's requests ask for: its window, or the whole walk."""
        return self.window if self.window is not None else (self.since, self.until)


MAX_CHILDREN = 64  # windows one split may hand out


class FileReady(Message):
    """One part file is durable in the object store; `cursor_in` → `cursor_after` is the stretch it covers.

    `since`/`until`/`window` as in the task it came from. A final part with `split_at` ends its
    window's chain early: the chain covers (split_at, window end], and `children` are the windows that
    cover [window start, split_at], each fetched as a chain of its own."""

    run_id: RunId
    wallet: str = Field(min_length=1, max_length=200)
    part: int = Field(ge=0)
    uri: str = Field(min_length=1, max_length=2048)
    rows: int = Field(ge=0)
    final: bool
    cursor_in: str | None = Field(default=None, max_length=4096)
    cursor_after: str | None = Field(default=None, max_length=4096)
    since: int | None = Field(default=None, ge=0)
    until: int | None = Field(default=None, ge=0)
    window: Window | None = None
    split_at: int | None = Field(default=None, ge=0)
    children: tuple[Window, ...] = Field(default=(), max_length=MAX_CHILDREN)
    source: SourceName = "dome"

    @model_validator(mode="after")
    def _split_is_a_final_part_with_children(self) -> FileReady:
        check_window(self.since, self.until, self.window)
        if (self.split_at is None) != (not self.children):
            raise ValueError("split_at and children go together")
        if self.split_at is not None and not self.final:
            raise ValueError("only a final part may split its window")
        return self

    @property
    def bounds(self) -> tuple[int | None, int | None]:
        return self.window if self.window is not None else (self.since, self.until)


def check_window(since: int | None, until: int | None, window: Window | None) -> None:
    """A window lies inside the walk's bounds and is not empty."""
    if since is not None and until is not None and since > until:
        raise ValueError(f"since {since} is after until {until}")
    if window is None:
        return
    lo, hi = window
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"window {window} is empty")
    if since is not None and (lo is None or lo < since):
        raise ValueError(f"window {window} starts before the walk's since {since}")
    if until is not None and (hi is None or hi > until):
        raise ValueError(f"window {window} ends after the walk's until {until}")


LookupKind = Literal["markets", "events"]
LookupKey = Annotated[str, Field(min_length=1, max_length=300)]
MAX_LOOKUP_KEYS = 100  # one request of the markets APIs names at most 100 condition ids (or slugs)


class LookupTask(Message):
    """Look up markets (by condition id) or events (by slug): one batch of at most 100 keys."""

    kind: LookupKind
    run_id: RunId
    keys: tuple[LookupKey, ...] = Field(min_length=1, max_length=MAX_LOOKUP_KEYS)
    source: SourceName = "dome"


class LookupReady(Message):
    """A part file of market or event rows is durable; `missing` are the keys the API does not know."""

    kind: LookupKind
    run_id: RunId
    uri: str = Field(min_length=1, max_length=2048)
    rows: int = Field(ge=0)
    keys: tuple[LookupKey, ...] = Field(min_length=1, max_length=MAX_LOOKUP_KEYS)
    missing: tuple[LookupKey, ...] = Field(default=(), max_length=MAX_LOOKUP_KEYS)
    source: SourceName = "dome"


# A dead letter keeps the original body for replay, but never more than this: a body that large was
# never a valid message (ours are < 10 KB), and Pub/Sub refuses messages over 10 MB.
MAX_LETTER_DATA = 64 * 1024
MAX_LETTER_ERROR = 2000


class DeadLetter(BaseModel):
    """A message that will not succeed as it is: the original data and attributes plus the reason.
    Build one with `DeadLetter.of(...)`, the one constructor every producer uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    topic: str
    data: str  # the original message body, as text (all our messages are JSON)
    attributes: dict[str, str] = Field(default_factory=dict)
    error_class: str
    error: str
    wallet: str | None = None
    attempts: int = 1

    @field_validator("error")
    @classmethod
    def _redact_error(cls, value: str) -> str:
        return redact(value)

    @field_validator("attributes")
    @classmethod
    def _redact_attributes(cls, value: dict[str, str]) -> dict[str, str]:
        return {k: redact(v) for k, v in value.items()}

    @classmethod
    def of(
        cls,
        topic: str,
        data: bytes | str,
        error: BaseException,
        *,
        attributes: dict[str, str] | None = None,
        wallet: str | None = None,
        attempts: int = 1,
    ) -> DeadLetter:
        """The letter for `data` (from `topic`) that failed with `error`; the wallet is taken from the
        argument, else the attributes, else the error's fields. An oversized body is cut to
        MAX_LETTER_DATA, and the reason says so (the letter itself must still be publishable). The reason
        and the attributes are redacted (shared/core/errors.py) before anything is cut, so no cut leaves
        part of a secret behind; the body is kept as it came, for replay."""
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        attributes = dict(attributes or {})
        if isinstance(error, PipelineError):
            error_class, message = error.error_class, error.message
            wallet = wallet or attributes.get("wallet") or error.fields.get("wallet")
        else:
            error_class, message = type(error).__name__, str(error)
            wallet = wallet or attributes.get("wallet")
        message = redact(message)
        if len(text) > MAX_LETTER_DATA:
            message = f"{message} [body of {len(text):,} characters cut to {MAX_LETTER_DATA:,}]"
            text = text[:MAX_LETTER_DATA]
        return cls(
            topic=topic,
            data=text,
            attributes=attributes,
            error_class=error_class,
            error=message[:MAX_LETTER_ERROR],
            wallet=(wallet or None) and str(wallet)[:200],
            attempts=attempts,
        )

    @property
    def id(self) -> str:
        """Same message, same reason: same id, so a re-run does not pile up copies of one failure."""
        text = f"{self.topic}\x1f{self.data}\x1f{self.error_class}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]


M = TypeVar("M", bound=Message)


def decode_task(data: bytes | str) -> WalletTask | LookupTask:
    """What the fetcher receives: a wallet's task, or a lookup (its body names a `kind`)."""
    if _has_kind(data):
        return decode(LookupTask, data)
    return decode(WalletTask, data)


def decode_file(data: bytes | str) -> FileReady | LookupReady:
    """What the loader receives: a wallet's part file, or a lookup's (its body names a `kind`)."""
    if _has_kind(data):
        return decode(LookupReady, data)
    return decode(FileReady, data)


def _has_kind(data: bytes | str) -> bool:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(raw, dict) and "kind" in raw


def decode(model: type[M], data: bytes | str) -> M:
    """Parse and validate one message; InvalidMessage (permanent) says exactly what is wrong."""
    try:
        raw: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidMessage(f"{model.__name__}: body is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidMessage(f"{model.__name__}: body must be a JSON object, got {type(raw).__name__}")
    version = raw.get("v")
    if version != VERSION:
        raise InvalidMessage(f"{model.__name__}: unknown message version {version!r} (this build reads v{VERSION})")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidMessage(f"{model.__name__}: {problems}") from None
