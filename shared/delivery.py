"""One delivery policy for every consumer of a message: the fetcher and loader services, the
dispatcher's routes, and the embedded bus (design rules 4, 8, 12).

    handler outcome                     verdict       Pub/Sub push        embedded bus
    returned                            ACK           2xx                 ack
    PermanentError (this message)       DEAD_LETTER   letter, then 2xx    letter, ack
    TransientError or anything unknown  RETRY         503                 nack (back-off; letter after N)
    SystemicError (nothing will work)   HALT          503 + ERROR log     nack, and the run stops

A push body that is not an envelope never reaches here: it is a 400 (shared/web/push.py). A message
that is not a valid message is a PermanentError (InvalidMessage), so it is dead-lettered like any
other permanent failure. Unknown exceptions retry: dropping a message is never the default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from shared.core.errors import PermanentError, PipelineError, SystemicError
from shared.core.messages import DeadLetter
from shared.ports.deadletters import DeadLetterSink
from shared.ports.publisher import Topic

log = logging.getLogger("delivery")


class Outcome(StrEnum):
    ACK = "ack"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    HALT = "halt"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    error: BaseException | None = None

    @property
    def acked(self) -> bool:
        """The message is settled for good (done, or kept as a dead letter)."""
        return self.outcome in (Outcome.ACK, Outcome.DEAD_LETTER)

    @property
    def reason(self) -> str:
        return "" if self.error is None else str(self.error)


DONE = Verdict(Outcome.ACK)


def judge(error: BaseException | None) -> Verdict:
    if error is None:
        return DONE
    if isinstance(error, PermanentError):
        return Verdict(Outcome.DEAD_LETTER, error)
    if isinstance(error, SystemicError):
        return Verdict(Outcome.HALT, error)
    return Verdict(Outcome.RETRY, error)


def run(work: Callable[[], object]) -> Verdict:
    """Run a handler; its outcome as a verdict (KeyboardInterrupt and the like still propagate)."""
    try:
        work()
    except Exception as exc:
        return judge(exc)
    return DONE


@dataclass(frozen=True)
class Received:
    """A message as a consumer got it: where from, its body and attributes, which delivery this is."""

    topic: Topic
    data: bytes
    attributes: dict[str, str]
    attempt: int = 1


def settle(verdict: Verdict, message: Received, sink: DeadLetterSink) -> DeadLetter | None:
    """Do what the verdict asks of the consumer besides answering: keep the dead letter (before the
    message is acked, so nothing is lost in between) and log once. Returns the letter, if any."""
    fields = {"wallet": message.attributes.get("wallet"), "run_id": message.attributes.get("run_id")}
    if verdict.outcome is Outcome.DEAD_LETTER:
        assert verdict.error is not None
        letter = DeadLetter.of(
            message.topic, message.data, verdict.error, attributes=message.attributes, attempts=message.attempt
        )
        sink.put(letter)
        log.warning("dead-lettered: %s", verdict.error, extra=fields)
        return letter
    if verdict.outcome is Outcome.HALT:
        log.error("systemic failure: %s", verdict.error, extra={**fields, **_fields(verdict.error)})
    elif verdict.outcome is Outcome.RETRY and not isinstance(verdict.error, PipelineError):
        log.error("unexpected error, will be retried", exc_info=verdict.error, extra=fields)
    elif verdict.outcome is Outcome.RETRY:
        log.warning("will be retried: %s", verdict.error, extra=fields)
    return None


def _fields(error: BaseException | None) -> dict[str, object]:
    return dict(error.fields) if isinstance(error, PipelineError) else {}
