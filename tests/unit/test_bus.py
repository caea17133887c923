"""The embedded bus keeps Pub/Sub's delivery rules: redeliver with back-off, dead-letter after N."""

import itertools
import threading

from shared.adapters.local.bus import Bus
from shared.core.errors import SourceUnavailable
from shared.core.messages import DeadLetter
from shared.delivery import DONE, judge
from shared.ports.publisher import Topic
from tests.fakes import FakeClock


class RecordingLetters:
    def __init__(self):
        self.letters: list[DeadLetter] = []

    def put(self, letter):
        self.letters.append(letter)


def test_nacked_message_comes_back_after_growing_backoff_then_dead_letters_with_reason():
    clock = FakeClock()
    letters = RecordingLetters()
    bus = Bus(letters, clock=clock, max_attempts=4, min_backoff=1, max_backoff=3)
    bus.publish(Topic.WALLETS, b'{"v":1}', {"wallet": "0xabc"})
    due_times = []
    for _ in range(4):
        d = None
        while d is None:
            d = bus.get(Topic.WALLETS, timeout=0)
            if d is None:
                clock.advance(0.25)
        due_times.append(clock.monotonic())
        bus.settle(d, judge(SourceUnavailable("HTTP 503 from the API")))
    gaps = [b - a for a, b in itertools.pairwise(due_times)]
    assert gaps == sorted(gaps) and gaps[0] >= 1 and max(gaps) <= 3.25
    assert bus.get(Topic.WALLETS, timeout=0) is None and bus.idle()
    [letter] = letters.letters
    assert (letter.error_class, letter.attempts, letter.wallet) == ("SourceUnavailable", 4, "0xabc")
    assert "503" in letter.error and letter.data == '{"v":1}'


def test_ack_removes_and_idle_tracks_outstanding():
    bus = Bus(RecordingLetters(), clock=FakeClock())
    bus.publish(Topic.FILES, b"x", {})
    d = bus.get(Topic.FILES, timeout=0)
    assert not bus.idle()
    bus.settle(d, DONE)
    assert bus.idle()


def test_batch_get_returns_what_is_due():
    bus = Bus(RecordingLetters(), clock=FakeClock())
    for i in range(5):
        bus.publish(Topic.FILES, str(i).encode(), {})
    assert [d.data for d in bus.get_batch(Topic.FILES, 3, 0)] == [b"0", b"1", b"2"]


def test_batch_get_takes_what_is_due_without_waiting_to_fill_the_batch():
    """The embedded loader asks for up to 50 files: it gets the two queued at once, not after `wait`
    (its clock here never moves, so a get that waited to fill the batch would never return)."""
    bus = Bus(RecordingLetters(), clock=FakeClock())
    bus.publish(Topic.FILES, b"a", {})
    bus.publish(Topic.FILES, b"b", {})
    got: list[bytes] = []
    getter = threading.Thread(
        target=lambda: got.extend(d.data for d in bus.get_batch(Topic.FILES, 50, 5.0)), daemon=True
    )
    getter.start()
    getter.join(10)
    assert not getter.is_alive() and got == [b"a", b"b"]
