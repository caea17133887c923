"""The dead-letter port's contract, over both twins: DuckDBDeadLetters with the embedded bus, and
PubSubDeadLetters with PubSubPublisher on the project's Pub/Sub emulator (real client library)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes import FakeClock
from shared.ports.deadletters import DuckDBDeadLetters
from shared.adapters.local.bus import Bus
from shared.handlers.replay import replay_dead_letters
from shared.core.messages import DeadLetter, WalletTask
from shared.ports.publisher import WALLETS
from shared.adapters.local.duckdb import DuckDBWarehouse

W1, W2 = "0x" + "1" * 40, "0x" + "2" * 40


@dataclass
class LetterTwin:
    dead_letters: Any
    publisher: Any
    republished: Any  # () -> list of (data bytes, attributes) published on `wallets` since the start


@pytest.fixture(params=["duckdb", pytest.param("pubsub", marks=pytest.mark.emulators)])
def twin(request, tmp_path, monkeypatch):
    if request.param == "duckdb":
        warehouse = DuckDBWarehouse(tmp_path / "letters.duckdb")
        warehouse.ensure_schema()
        letters = DuckDBDeadLetters(warehouse.con, warehouse.lock, lambda: datetime(2026, 1, 1, tzinfo=UTC))
        bus = Bus(letters)

        def drained():
            out = []
            while delivery := bus.get(WALLETS, timeout=0):
                out.append((delivery.data, delivery.attributes))
                bus.ack(delivery)
            return out

        yield LetterTwin(letters, bus, drained)
        warehouse.close()
        return
    stack = request.getfixturevalue("emulator_stack")
    if stack.pubsub_skip_reason:
        pytest.fail(stack.pubsub_skip_reason)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", stack.pubsub_host_port)
    from tests.gcp.pipeline import PULL, Topology

    topology = Topology()
    publisher = topology.publisher()

    def drained_pubsub():
        return [(r.message.data, dict(r.message.attributes)) for r in topology.drain(PULL[WALLETS])]

    yield LetterTwin(topology.dead_letters(publisher), publisher, drained_pubsub)
    topology.close()


def letter(wallet: str, error_class: str) -> DeadLetter:
    task = WalletTask(run_id="r1", wallet=wallet)
    return DeadLetter(
        topic=WALLETS,
        data=task.encode().decode(),
        attributes=task.attributes(),
        error_class=error_class,
        error=f"{error_class}: the reason for {wallet}",
        wallet=wallet,
    )


def test_a_letter_comes_back_whole_and_looking_does_not_consume_it(twin):
    twin.dead_letters.put(letter(W1, "PermanentError"))
    assert twin.dead_letters.depth() == 1
    assert twin.dead_letters.depth() == 1
    (held,) = twin.dead_letters.pull(10)
    got = held.letter
    assert (got.topic, got.wallet, got.error_class) == (WALLETS, W1, "PermanentError")
    assert got.error == f"PermanentError: the reason for {W1}"
    assert got.data == letter(W1, "PermanentError").data


def test_an_acknowledged_letter_is_gone(twin):
    twin.dead_letters.put(letter(W1, "PermanentError"))
    (held,) = twin.dead_letters.pull(10)
    twin.dead_letters.ack([held.handle])
    assert twin.dead_letters.depth() == 0
    assert twin.dead_letters.pull(10) == []


def test_replay_republishes_only_the_matching_letters_and_keeps_the_rest(twin):
    twin.dead_letters.put(letter(W1, "SourceUnavailable"))
    twin.dead_letters.put(letter(W2, "InvalidWallet"))
    result = replay_dead_letters(
        dead_letters=twin.dead_letters,
        publisher=twin.publisher,
        warehouse=None,
        clock=FakeClock(),
        error_class="SourceUnavailable",
    )
    assert [r.wallet for r in result.replayed] == [W1]
    ((data, attributes),) = twin.republished()
    assert data == WalletTask(run_id="r1", wallet=W1).encode()
    assert attributes == WalletTask(run_id="r1", wallet=W1).attributes()  # the reason attributes stripped
    assert twin.dead_letters.depth() == 1
    (left,) = twin.dead_letters.pull(10)
    assert (left.letter.wallet, left.letter.error_class) == (W2, "InvalidWallet")
