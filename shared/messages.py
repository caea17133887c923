"""Versioned messages between the services (DESIGN.md, Messages).

Every message is JSON in the Pub/Sub data field. `v` is checked first, so an unknown version gets its
own clear error instead of a field-by-field validation dump. Unknown fields are rejected: a typo in a
producer must not silently drop a value.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import InvalidMessage

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
        for name in ("run_id", "wallet", "part"):
            value = getattr(self, name, None)
            if value is not None:
                out[name] = str(value)
        return out


class WalletTask(Message):
    """One wallet, or the continuation of a wallet from `cursor` as part `part`."""

    run_id: RunId
    wallet: str = Field(min_length=1, max_length=200)
    part: int = Field(default=0, ge=0)
    cursor: str | None = Field(default=None, max_length=4096)
    since: int | None = Field(default=None, ge=0)
    until: int | None = Field(default=None, ge=0)
    source: SourceName = "dome"


class FileReady(Message):
    """One part file is durable in the object store; `cursor_in` → `cursor_after` is the stretch it covers."""

    run_id: RunId
    wallet: str = Field(min_length=1, max_length=200)
    part: int = Field(ge=0)
    uri: str = Field(min_length=1, max_length=2048)
    rows: int = Field(ge=0)
    final: bool
    cursor_in: str | None = Field(default=None, max_length=4096)
    cursor_after: str | None = Field(default=None, max_length=4096)
    source: SourceName = "dome"


class DeadLetter(BaseModel):
    """A message that will not succeed as it is: the original data and attributes plus the reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    topic: str
    data: str  # the original message body, as text (all our messages are JSON)
    attributes: dict[str, str] = Field(default_factory=dict)
    error_class: str
    error: str
    wallet: str | None = None
    attempts: int = 1


M = TypeVar("M", bound=Message)


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
