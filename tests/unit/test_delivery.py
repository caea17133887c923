"""The one delivery policy (design rule 8): each outcome's verdict, and what settling it does."""

import pytest

from shared.core.errors import AuthFailure, InvalidMessage, InvalidWallet, SourceUnavailable, WarehouseUnavailable
from shared.delivery import DONE, Outcome, Received, judge, run, settle
from shared.ports.publisher import Topic


class Letters:
    def __init__(self):
        self.put_letters = []

    def put(self, letter):
        self.put_letters.append(letter)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, Outcome.ACK),
        (InvalidWallet("not an address"), Outcome.DEAD_LETTER),
        (InvalidMessage("unknown version"), Outcome.DEAD_LETTER),
        (SourceUnavailable("HTTP 503"), Outcome.RETRY),
        (ConnectionResetError("peer reset"), Outcome.RETRY),  # unknown: retried, never dropped
        (AuthFailure("401"), Outcome.HALT),
        (WarehouseUnavailable("disk full"), Outcome.HALT),
    ],
)
def test_each_kind_of_outcome_has_one_verdict(error, outcome):
    verdict = judge(error)
    assert verdict.outcome is outcome and verdict.error is error
    assert verdict.acked == (outcome in (Outcome.ACK, Outcome.DEAD_LETTER))


def test_run_turns_a_raise_into_its_verdict_and_lets_an_interrupt_through():
    assert run(lambda: None) is DONE
    assert run(lambda: (_ for _ in ()).throw(SourceUnavailable("503"))).outcome is Outcome.RETRY

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(interrupted)


def test_settling_a_dead_letter_keeps_the_message_and_the_reason_and_nothing_else_writes_one():
    letters = Letters()
    message = Received(Topic.WALLETS, b'{"v":1}', {"wallet": "0xabc", "run_id": "r1"}, attempt=3)
    for verdict in (DONE, judge(SourceUnavailable("503")), judge(AuthFailure("401"))):
        assert settle(verdict, message, letters) is None
    assert letters.put_letters == []
    letter = settle(judge(InvalidWallet("400 from the API: invalid user")), message, letters)
    assert letters.put_letters == [letter]
    assert (letter.topic, letter.data, letter.wallet, letter.attempts) == ("wallets", '{"v":1}', "0xabc", 3)
    assert (letter.error_class, letter.error) == ("InvalidWallet", "400 from the API: invalid user")
    assert letter.attributes == {"wallet": "0xabc", "run_id": "r1"}


def test_an_oversized_body_is_cut_and_the_reason_says_so():
    letters = Letters()
    message = Received(Topic.WALLETS, b"x" * 13_000_000, {})
    letter = settle(judge(InvalidMessage("WalletTask: body is not JSON")), message, letters)
    assert len(letter.data) == 64 * 1024
    assert "13,000,000 characters cut" in letter.error
