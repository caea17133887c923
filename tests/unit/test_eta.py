"""The display's ETA (shared/embedded/eta.py): requests left over the observed pace, never sooner
than the biggest wallet's own chain of pages, and labelled an estimate whenever some size is guessed."""

from __future__ import annotations

from shared.embedded.eta import Eta, estimate
from shared.embedded.observed import WalletProgress
from shared.embedded.progress import Snapshot, log_lines

NOW = 1_000.0


def wallet(pages: int, expected: int | None, seconds_ago: float, name: str = "0x" + "b" * 40) -> WalletProgress:
    rows = None if expected is None else expected * 1000
    return WalletProgress(name, pages, pages * 1000, expected, rows, 1, False, NOW - seconds_ago, True)


WHALE = wallet(pages=50, expected=100, seconds_ago=50)  # 1 page/s: 50 s to go on its own
SMALL = wallet(pages=2, expected=12, seconds_ago=1)


def test_with_every_wallet_left_in_flight_and_of_known_size_the_eta_is_not_an_estimate():
    eta = estimate(2, [WHALE, SMALL], mean_pages=None, pace=1.0, now=NOW)
    assert eta == Eta(seconds=60.0, estimated=False, known=60, guessed=0)  # 60 requests at 1 page/s


def test_the_eta_is_never_sooner_than_the_biggest_wallet_can_finish_at_its_own_pace():
    # At 10 pages/s the 60 requests take 6 s, but the whale's pages come one after another at 1/s.
    assert estimate(2, [WHALE, SMALL], mean_pages=None, pace=10.0, now=NOW).seconds == 50.0


def test_wallets_not_started_are_guessed_at_the_mean_size_seen_and_the_eta_says_it_is_an_estimate():
    eta = estimate(5, [WHALE, SMALL], mean_pages=20.0, pace=10.0, now=NOW)
    assert (eta.known, eta.guessed, eta.estimated) == (60, 60, True)  # 3 wallets not started x 20 pages
    assert eta.seconds == 50.0


def test_a_wallet_whose_api_gives_no_total_is_guessed_at_the_mean_less_what_it_did():
    unknown = wallet(pages=4, expected=None, seconds_ago=4)
    eta = estimate(1, [unknown], mean_pages=10.0, pace=2.0, now=NOW)
    assert (eta.known, eta.guessed, eta.seconds, eta.estimated) == (0, 6, 3.0, True)


def test_with_no_page_lately_there_is_no_eta_and_with_nothing_left_it_is_zero():
    assert estimate(2, [WHALE, SMALL], mean_pages=None, pace=None, now=NOW).seconds is None
    assert estimate(0, [], mean_pages=None, pace=None, now=NOW) == Eta(0.0, False, 0, 0)


def test_the_log_line_labels_a_guessed_eta_as_an_estimate_and_a_known_one_plainly():
    def line(eta: Eta) -> str:
        snap = Snapshot(3, 10, 0, 1234, 2, 47.94, 50.0, 0, 75.0, eta, [WHALE], 0)
        return log_lines(snap)[0]

    assert "47.9/50 req/s" in line(Eta(125.0, True, 10, 5)) and "ETA ~2m05s (estimate)" in line(Eta(125.0, True, 10, 5))
    assert line(Eta(125.0, False, 10, 0)).endswith("ETA 2m05s")
    assert line(Eta(None, True, 0, 5)).endswith("ETA -")
