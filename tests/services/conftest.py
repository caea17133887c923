import pytest

from tests.embedded.conftest import RecordingPublisher, clock, dead_letters, publisher, store, warehouse  # noqa: F401


class RecordingLetters:
    """The dead-letter port as a list (the services' Pub/Sub one is tested against the emulator)."""

    def __init__(self):
        self.letters = []

    def put(self, letter):
        self.letters.append(letter)

    def pull(self, max_letters):
        return []

    def ack(self, handles):
        pass

    def depth(self):
        return len(self.letters)


@pytest.fixture
def letters():
    return RecordingLetters()


__all__ = ["RecordingPublisher"]
