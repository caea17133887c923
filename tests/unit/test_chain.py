"""design rule 3: complete only when the loaded parts chain from the start to a final part."""

from shared.core.chain import chain_state
from shared.ports.warehouse import Segment


def seg(part, cin, cout, final=False, uri=None):
    return Segment("w", "r", part, uri or f"u{part}-{cin}-{cout}", 10, final, cin, cout)


def test_nothing_loaded_starts_at_part_zero():
    state = chain_state([])
    assert (state.complete, state.resume_part, state.resume_cursor) == (False, 0, None)


def test_final_part_alone_is_not_complete_while_earlier_parts_are_missing():
    state = chain_state([seg(2, "c2", None, final=True)])
    assert not state.complete


def test_out_of_order_parts_complete_once_the_gap_fills():
    parts = [seg(2, "c2", None, final=True), seg(0, None, "c1")]
    assert not chain_state(parts).complete
    assert chain_state([*parts, seg(1, "c1", "c2")]).complete


def test_resume_from_the_end_of_the_committed_chain():
    state = chain_state([seg(0, None, "c1"), seg(1, "c1", "c2"), seg(3, "c9", "c10")])
    assert (state.resume_part, state.resume_cursor) == (2, "c2")


def test_a_stale_final_part_from_another_attempt_cannot_bridge_a_gap():
    # First attempt: parts 0 [start..c1], 1 [c1..c2] (lost), 2 [c2..end]. The retry of part 1 stopped
    # earlier, at c1b: the chain start→c1→c1b does not reach c2, so the wallet is not complete.
    parts = [seg(0, None, "c1"), seg(2, "c2", None, final=True), seg(1, "c1", "c1b")]
    state = chain_state(parts)
    assert not state.complete
    assert (state.resume_part, state.resume_cursor) == (2, "c1b")


def test_duplicates_do_not_change_the_outcome():
    parts = [seg(0, None, "c1"), seg(0, None, "c1"), seg(1, "c1", None, final=True)]
    assert chain_state(parts).complete and chain_state(parts).final_part == 1
