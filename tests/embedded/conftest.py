from datetime import UTC, datetime

import pytest

from shared.adapters.local.duckdb import DuckDBWarehouse
from shared.adapters.local.files import LocalObjectStore
from shared.adapters.sql.deadletters import SqlDeadLetters
from tests.fakes import FakeClock


class RecordingPublisher:
    """The Publisher port as a list: what was published, in order; can be told to fail."""

    def __init__(self):
        self.messages: list[tuple[str, bytes, dict]] = []
        self.fail_on: str | None = None

    def publish(self, topic, data, attributes):
        if topic == self.fail_on:
            raise ConnectionError(f"publish to {topic} failed")
        self.messages.append((topic, data, dict(attributes)))
        return str(len(self.messages))

    def on(self, topic):
        return [data for t, data, _ in self.messages if t == topic]


@pytest.fixture
def clock():
    return FakeClock(wall=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def warehouse(tmp_path):
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.create_schema()
    yield wh
    wh.close()


@pytest.fixture
def store(tmp_path):
    return LocalObjectStore(tmp_path / "parts")


@pytest.fixture
def publisher():
    return RecordingPublisher()


@pytest.fixture
def dead_letters(warehouse, clock):
    return SqlDeadLetters(warehouse, clock)
